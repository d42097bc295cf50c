/*
 * Finalize of presigned upload sessions (finalize.c) against a live S3
 * server (versitygw started by tests/with-s3.sh), set up as the registry
 * sets it up: a driver on the run's bucket, the stock upload made as
 * distribution makes it (PutContent of .../_uploads/<uuid>/startedat), a
 * service with its index in a temp directory, the presigned URLs used with
 * plain libcurl PUTs as a client would. Hostile finalizes first; the race
 * guard runs through a loopback proxy that replaces the uploaded object just
 * before finalize's server-side copy.
 */
#include "t.h"
#include "t_s3.h"
#include "t_svc.h"

#include <netdb.h>
#include <poll.h>
#include <stdarg.h>

#define MiB (1024ll * 1024)
#define REG "docker/registry/v2/"

static s3d_driver *drv; /* the registry's driver (root "") */

/* ---- setup helpers ---------------------------------------------------------- */

static int presign(s3d_service *svc, const char *repo, const char *uuid, const char *digest,
		   int64_t size, int parts, time_t now, s3d_presign_result *r, s3d_error *err)
{
	s3d_presign_request rq;

	memset(&rq, 0, sizeof(rq));
	rq.repo = repo;
	rq.uuid = uuid;
	rq.digest = digest;
	rq.size = size;
	rq.now = now;
	if (parts > 0) {
		rq.multipart = 1;
		rq.first_part = 1;
		rq.parts = parts;
	}
	s3d_error_clear(err);
	return s3d_service_presign(svc, &rq, r, err);
}

/* n bytes of the stream seed into data, their digest into dg. */
static void fill(uint8_t *data, size_t n, unsigned seed, char dg[80])
{
	t_fill(data, n, seed);
	t_digest_of(data, n, dg, NULL);
}

static int fin(s3d_service *svc, const char *repo, const char *uuid, const char *digest,
	       time_t now, s3d_finalize_result *out, s3d_error *err)
{
	s3d_error_clear(err);
	return s3d_service_finalize(svc, repo, uuid, digest, now, out, err);
}

/*
 * A fresh single-PUT session of repo (stock upload, presign with the declared
 * digest/size, which may be NULL/-1) with data (NULL: nothing uploaded). The
 * uuid into uuid. 0 on success.
 */
static int single_session(s3d_service *svc, const char *repo, const char *decl_digest,
			  int64_t decl_size, const void *data, size_t len, char uuid[40],
			  int *direct)
{
	s3d_presign_result r;
	s3d_error err;
	long st = 200;
	int rc;

	if (t_stock_upload(drv, repo, uuid) != 0)
		return -1;
	s3d_presign_result_init(&r);
	rc = presign(svc, repo, uuid, decl_digest, decl_size, 0, 0, &r, &err);
	if (rc != S3D_OK)
		fprintf(stderr, "  presign: %s: %s\n", s3d_strerror(rc), err.message);
	if (rc == S3D_OK && direct)
		*direct = r.session.direct;
	if (rc == S3D_OK && data)
		st = t_http_put(s3d_buf_str(&r.url), &r, NULL, data, len, NULL);
	if (st != 200)
		fprintf(stderr, "  presigned PUT: HTTP %ld\n", st);
	s3d_presign_result_cleanup(&r);
	return rc == S3D_OK && st == 200 ? 0 : -1;
}

/* ---- S3 checks -------------------------------------------------------------- */

static void blob_key(char *out, size_t cap, const char *digest)
{
	snprintf(out, cap, REG "blobs/sha256/%.2s/%s/data", digest + 7, digest + 7);
}

static void link_key(char *out, size_t cap, const char *repo, const char *digest)
{
	snprintf(out, cap, REG "repositories/%s/_layers/sha256/%s/link", repo, digest + 7);
}

static void temp_key(char *out, size_t cap, const char *uuid)
{
	snprintf(out, cap, "_s3direct/uploads/%s", uuid);
}

static void marker_key(char *out, size_t cap, const char *uuid)
{
	snprintf(out, cap, "_s3direct/sessions/%s", uuid);
}

/* 1 when the object at key hashes to digest (streamed, any size). */
static int holds_digest(const char *key, const char *digest, int64_t *size)
{
	struct t_sha256_sink h;
	uint8_t md[32];
	char got[80];
	s3d_error err;
	int rc;

	if (t_sha256_sink_init(&h) != 0) {
		t_sha256_sink_final(&h, md);
		return 0;
	}
	rc = s3d_get_object(t_svc.admin, t_svc.bucket, key, 0, -1, t_sha256_sink, &h, NULL, &err);
	if (size)
		*size = h.n;
	t_sha256_sink_final(&h, md);
	if (rc != S3D_OK)
		return 0;
	t_digest_hex(md, got);
	return strcmp(got, digest) == 0;
}

/* The layer link's content, or "" when absent. */
static const char *link_of(const char *repo, const char *digest)
{
	static char out[256];
	char key[512];
	s3d_buf b;

	out[0] = 0;
	link_key(key, sizeof(key), repo, digest);
	s3d_buf_init(&b, 4096);
	if (t_get_object(key, &b) == S3D_OK)
		snprintf(out, sizeof(out), "%s", s3d_buf_str(&b));
	s3d_buf_cleanup(&b);
	return out;
}

/* Objects of the stock upload directory of repo/uuid. */
static int upload_dir_objects(const char *repo, const char *uuid)
{
	char p[512];

	snprintf(p, sizeof(p), REG "repositories/%s/_uploads/%s/", repo, uuid);
	return t_objects_under(p);
}

static int uploads_of_temp(const char *uuid)
{
	char key[256];

	temp_key(key, sizeof(key), uuid);
	return t_s3_uploads_of(t_svc.admin, t_svc.bucket, key, NULL, 0);
}

/* The index record's status (-1 when absent), record into s when not NULL. */
static int index_status(s3d_service *svc, const char *uuid, s3d_session *s)
{
	s3d_session tmp;
	s3d_error err;

	if (!s)
		s = &tmp;
	return s3d_index_get(s3d_service_index(svc), uuid, s, &err) == S3D_OK ? s->status : -1;
}

static void object_info(const char *key, s3d_obj_info *info)
{
	s3d_error err;

	memset(info, 0, sizeof(*info));
	s3d_head_object(t_svc.admin, t_svc.bucket, key, 0, info, &err);
}

/* ---- hostile first ---------------------------------------------------------- */

static void test_hostile(void)
{
	s3d_service *svc = t_svc_open(drv, NULL), *other;
	s3d_finalize_result res;
	s3d_session s;
	s3d_error err;
	char uuid[40], stock[40], dg[80], dg2[80], bad[128];
	uint8_t data[1000];

	T_REQUIRE(svc != NULL);
	other = t_svc_open(drv, NULL);
	T_REQUIRE(other != NULL);
	fill(data, sizeof(data), 1, dg);
	t_digest_of(data, 10, dg2, NULL);
	T_REQUIRE(single_session(svc, "hostile/a", NULL, -1, data, sizeof(data), uuid, NULL) == 0);

	T_EQ_INT(S3D_E_INVAL, s3d_service_finalize(NULL, "hostile/a", uuid, dg, 0, &res, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_service_finalize(svc, "hostile/a", uuid, NULL, 0, &res, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_service_finalize(svc, "hostile/a", uuid, dg, 0, NULL, &err));
	T_EQ_INT(S3D_E_INVAL, fin(svc, NULL, uuid, dg, 0, &res, &err));
	T_EQ_INT(S3D_E_INVAL, fin(svc, "Hostile/A", uuid, dg, 0, &res, &err));
	T_EQ_INT(S3D_E_INVAL, fin(svc, "hostile/../a", uuid, dg, 0, &res, &err));
	T_EQ_INT(S3D_E_NOTFOUND, fin(svc, "hostile/a", NULL, dg, 0, &res, &err));
	T_EQ_INT(S3D_E_NOTFOUND, fin(svc, "hostile/a", "../../x", dg, 0, &res, &err));
	T_EQ_INT(S3D_E_NOTFOUND, fin(svc, "hostile/a", "", dg, 0, &res, &err));
	/* malformed and unsupported digests: refused before anything is touched */
	T_EQ_INT(S3D_E_DIGEST, fin(svc, "hostile/a", uuid, "sha256:abc", 0, &res, &err));
	T_EQ_INT(S3D_E_DIGEST, fin(svc, "hostile/a", uuid, "", 0, &res, &err));
	snprintf(bad, sizeof(bad), "sha256:%s", dg + 7);
	bad[7] = 'G';
	T_EQ_INT(S3D_E_DIGEST, fin(svc, "hostile/a", uuid, bad, 0, &res, &err));
	/* upper-case hex is not a canonical digest */
	snprintf(bad, sizeof(bad), "sha256:%.32s%.32s", "ABCDEF0123456789ABCDEF0123456789",
		 "ABCDEF0123456789ABCDEF0123456789");
	T_EQ_INT(S3D_E_DIGEST, fin(svc, "hostile/a", uuid, bad, 0, &res, &err));
	snprintf(bad, sizeof(bad), "%s0", dg);
	T_EQ_INT(S3D_E_DIGEST, fin(svc, "hostile/a", uuid, bad, 0, &res, &err));
	T_EQ_INT(S3D_E_UNSUPPORTED,
		 fin(svc, "hostile/a", uuid, "sha512:0123456789abcdef", 0, &res, &err));
	T_TRUE(strstr(err.message, "sha256") != NULL);
	/* unknown session, a stock upload that never presigned, another repo */
	t_uuid(stock);
	T_EQ_INT(S3D_E_NOTFOUND, fin(svc, "hostile/a", stock, dg, 0, &res, &err));
	T_REQUIRE(t_stock_upload(drv, "hostile/a", stock) == 0);
	T_EQ_INT(S3D_E_NOTFOUND, fin(svc, "hostile/a", stock, dg, 0, &res, &err));
	T_EQ_INT(S3D_E_NOTFOUND, fin(svc, "hostile/b", uuid, dg, 0, &res, &err));
	T_EQ_INT(S3D_E_NOTFOUND, fin(other, "hostile/b", uuid, dg, 0, &res, &err));
	/* none of that changed the session */
	T_EQ_INT(S3D_SESSION_PENDING, index_status(svc, uuid, &s));
	temp_key(bad, sizeof(bad), uuid);
	T_TRUE(t_exists(bad));
	T_EQ_INT(0, res.size); /* the result is zeroed on failure */
	T_EQ_STR("", res.digest);

	/* a finalize digest other than the declared one is a digest error */
	{
		char u2[40];

		T_REQUIRE(single_session(svc, "hostile/a", dg, (int64_t)sizeof(data), data,
					 sizeof(data), u2, NULL) == 0);
		T_EQ_INT(S3D_E_DIGEST, fin(svc, "hostile/a", u2, dg2, 0, &res, &err));
		T_TRUE(strstr(err.message, "declared") != NULL);
		T_EQ_STR("", link_of("hostile/a", dg2));
		T_EQ_STR("", link_of("hostile/a", dg));
		T_EQ_INT(S3D_SESSION_FAILED, index_status(svc, u2, NULL));
		T_EQ_INT(S3D_E_NOTFOUND, fin(svc, "hostile/a", u2, dg, 0, &res, &err));
	}
	/* the first session is intact: it still finalizes */
	T_EQ_INT(S3D_OK, fin(svc, "hostile/a", uuid, dg, 0, &res, &err));
	T_EQ_STR(dg, link_of("hostile/a", dg));
	s3d_service_free(other);
	s3d_service_free(svc);
}

/* ---- direct ----------------------------------------------------------------- */

static void test_direct(void)
{
	s3d_service *svc = t_svc_open(drv, NULL);
	s3d_finalize_result res;
	s3d_session s;
	s3d_error err;
	char uuid[40], dg[80], dg2[80], key[512];
	uint8_t data[4321];
	int direct = 0;
	int64_t n = 0;

	T_REQUIRE(svc != NULL);
	fill(data, sizeof(data), 2, dg);
	t_digest_of(data, 1, dg2, NULL);
	T_REQUIRE(single_session(svc, "direct/app", dg, (int64_t)sizeof(data), data, sizeof(data),
				 uuid, &direct) == 0);
	T_EQ_INT(1, direct);
	/* the bytes already are at the blob's key: no temp object */
	temp_key(key, sizeof(key), uuid);
	T_TRUE(!t_exists(key));

	memset(&res, 0x55, sizeof(res));
	T_EQ_INT(S3D_OK, fin(svc, "direct/app", uuid, dg, 0, &res, &err));
	T_EQ_STR(dg, res.digest);
	T_EQ_INT(sizeof(data), res.size);
	T_EQ_INT(0, res.repeated);
	T_EQ_INT(0, res.deduplicated);
	/* versitygw returns the SHA-256 it enforced at upload (checksum mode) */
	T_EQ_INT(S3D_VERIFIED_CHECKSUM, res.verified_by);
	blob_key(key, sizeof(key), dg);
	T_TRUE(holds_digest(key, dg, &n));
	T_EQ_INT(sizeof(data), n);
	T_EQ_STR(dg, link_of("direct/app", dg));
	T_EQ_INT(0, upload_dir_objects("direct/app", uuid));
	marker_key(key, sizeof(key), uuid);
	T_TRUE(!t_exists(key));
	T_EQ_INT(S3D_SESSION_COMPLETED, index_status(svc, uuid, &s));
	T_EQ_STR(dg, s.final_digest);
	T_EQ_INT(sizeof(data), s.final_size);
	T_EQ_STR("", s.upload_id);
	/* the blob is what the stock API reads */
	{
		char path[512];
		s3d_stat st;

		snprintf(path, sizeof(path), "/" REG "blobs/sha256/%.2s/%s/data", dg + 7, dg + 7);
		T_EQ_INT(S3D_OK, s3d_driver_stat(drv, path, &st, &err));
		T_EQ_INT(sizeof(data), st.size);
	}

	/* a repeat is the same answer */
	memset(&res, 0, sizeof(res));
	T_EQ_INT(S3D_OK, fin(svc, "direct/app", uuid, dg, 0, &res, &err));
	T_EQ_INT(1, res.repeated);
	T_EQ_STR(dg, res.digest);
	T_EQ_INT(sizeof(data), res.size);
	/* another digest after completion: the session is unknown for it */
	T_EQ_INT(S3D_E_NOTFOUND, fin(svc, "direct/app", uuid, dg2, 0, &res, &err));
	T_EQ_INT(0, res.repeated);
	T_EQ_STR("", link_of("direct/app", dg2));
	T_EQ_INT(S3D_SESSION_COMPLETED, index_status(svc, uuid, NULL));
	s3d_service_free(svc);
}

/* ---- single PUT without digest ---------------------------------------------- */

static void test_single_stream(void)
{
	s3d_service *svc = t_svc_open(drv, NULL);
	s3d_finalize_result res;
	s3d_session s;
	s3d_error err;
	char uuid[40], dg[80], other[80], key[512];
	uint8_t data[70000];
	int direct = 1;

	T_REQUIRE(svc != NULL);
	fill(data, sizeof(data), 3, dg);
	T_REQUIRE(single_session(svc, "single/app", NULL, -1, data, sizeof(data), uuid, &direct) ==
		  0);
	T_EQ_INT(0, direct);
	temp_key(key, sizeof(key), uuid);
	T_TRUE(t_exists(key));
	T_EQ_INT(S3D_OK, fin(svc, "single/app", uuid, dg, 0, &res, &err));
	T_EQ_INT(S3D_VERIFIED_STREAM, res.verified_by);
	T_EQ_INT(0, res.deduplicated);
	T_EQ_INT(sizeof(data), res.size);
	T_TRUE(!t_exists(key));
	blob_key(key, sizeof(key), dg);
	T_TRUE(holds_digest(key, dg, NULL));
	T_EQ_STR(dg, link_of("single/app", dg));
	T_EQ_INT(0, upload_dir_objects("single/app", uuid));
	T_EQ_INT(S3D_SESSION_COMPLETED, index_status(svc, uuid, &s));
	T_EQ_STR(dg, s.final_digest);

	/* the wrong digest: refused, nothing linked, bytes removed, failed */
	t_fill(data, sizeof(data), 33);
	t_digest_of(data, 100, other, NULL); /* not the digest of what is uploaded */
	T_REQUIRE(single_session(svc, "single/app", NULL, -1, data, sizeof(data), uuid, NULL) == 0);
	T_EQ_INT(S3D_E_DIGEST, fin(svc, "single/app", uuid, other, 0, &res, &err));
	T_TRUE(strstr(err.message, "mismatch") != NULL);
	T_EQ_STR("", link_of("single/app", other));
	blob_key(key, sizeof(key), other);
	T_TRUE(!t_exists(key));
	t_digest_of(data, sizeof(data), dg, NULL);
	blob_key(key, sizeof(key), dg);
	T_TRUE(!t_exists(key));
	temp_key(key, sizeof(key), uuid);
	T_TRUE(!t_exists(key));
	T_EQ_INT(0, upload_dir_objects("single/app", uuid));
	T_EQ_INT(S3D_SESSION_FAILED, index_status(svc, uuid, &s));
	T_TRUE(strstr(s.detail, "mismatch") != NULL);
	T_EQ_INT(S3D_E_NOTFOUND, fin(svc, "single/app", uuid, other, 0, &res, &err));
	T_EQ_INT(S3D_E_NOTFOUND, fin(svc, "single/app", uuid, dg, 0, &res, &err));
	T_EQ_STR("", link_of("single/app", dg));

	/* nothing uploaded yet: STATE, and the session stays open for the PUT */
	T_REQUIRE(single_session(svc, "single/app", NULL, -1, NULL, 0, uuid, NULL) == 0);
	T_EQ_INT(S3D_E_STATE, fin(svc, "single/app", uuid, dg, 0, &res, &err));
	T_TRUE(strstr(err.message, "PUT the bytes") != NULL);
	T_EQ_INT(S3D_SESSION_PENDING, index_status(svc, uuid, NULL));
	{
		s3d_presign_result r;

		s3d_presign_result_init(&r);
		T_EQ_INT(S3D_OK, presign(svc, "single/app", uuid, NULL, -1, 0, 0, &r, &err));
		T_EQ_INT(200, t_http_put(s3d_buf_str(&r.url), &r, NULL, data, sizeof(data), NULL));
		s3d_presign_result_cleanup(&r);
	}
	T_EQ_INT(S3D_OK, fin(svc, "single/app", uuid, dg, 0, &res, &err));
	T_EQ_STR(dg, link_of("single/app", dg));

	/* the stock upload purger removed the upload directory: no matter */
	fill(data, sizeof(data), 34, dg);
	T_REQUIRE(single_session(svc, "single/app", NULL, -1, data, sizeof(data), uuid, NULL) == 0);
	{
		char dir[512];

		snprintf(dir, sizeof(dir), "/" REG "repositories/single/app/_uploads/%s", uuid);
		T_EQ_INT(S3D_OK, s3d_driver_delete(drv, dir, &err));
	}
	T_EQ_INT(S3D_OK, fin(svc, "single/app", uuid, dg, 0, &res, &err));
	T_EQ_STR(dg, link_of("single/app", dg));
	marker_key(key, sizeof(key), uuid);
	T_TRUE(!t_exists(key));
	s3d_service_free(svc);
}

/* ---- knowing a digest ------------------------------------------------------- */

static void test_knowing_digest(void)
{
	s3d_service *svc = t_svc_open(drv, NULL);
	s3d_finalize_result res;
	s3d_presign_result r;
	s3d_obj_info before, after;
	s3d_error err;
	char ua[40], ub[40], dg[80], key[512];
	uint8_t data[5000];
	int direct = 0;

	T_REQUIRE(svc != NULL);
	fill(data, sizeof(data), 4, dg);
	T_REQUIRE(single_session(svc, "know/a", dg, (int64_t)sizeof(data), data, sizeof(data), ua,
				 NULL) == 0);
	T_REQUIRE(fin(svc, "know/a", ua, dg, 0, &res, &err) == S3D_OK);
	blob_key(key, sizeof(key), dg);
	object_info(key, &before);
	T_TRUE(before.etag[0] != 0);

	/* repo B declares the digest and uploads nothing */
	T_REQUIRE(single_session(svc, "know/b", dg, (int64_t)sizeof(data), NULL, 0, ub, &direct) ==
		  0);
	T_EQ_INT(1, direct);
	T_EQ_INT(S3D_E_STATE, fin(svc, "know/b", ub, dg, 0, &res, &err));
	T_EQ_STR("", link_of("know/b", dg));
	object_info(key, &after);
	T_EQ_STR(before.etag, after.etag);
	T_EQ_STR(before.meta_s3direct, after.meta_s3direct);
	T_EQ_INT(before.last_modified, after.last_modified);
	T_TRUE(holds_digest(key, dg, NULL));
	T_EQ_STR(dg, link_of("know/a", dg));
	/* also without the declared size, and with a declared digest finalized again */
	T_EQ_INT(S3D_E_STATE, fin(svc, "know/b", ub, dg, 0, &res, &err));
	T_EQ_INT(S3D_SESSION_PENDING, index_status(svc, ub, NULL));
	T_EQ_INT(1, upload_dir_objects("know/b", ub));

	/* still open: the upload, then the finalize, work */
	s3d_presign_result_init(&r);
	T_EQ_INT(S3D_OK, presign(svc, "know/b", ub, dg, (int64_t)sizeof(data), 0, 0, &r, &err));
	T_EQ_INT(200, t_http_put(s3d_buf_str(&r.url), &r, NULL, data, sizeof(data), NULL));
	s3d_presign_result_cleanup(&r);
	T_EQ_INT(S3D_OK, fin(svc, "know/b", ub, dg, 0, &res, &err));
	T_EQ_INT(0, res.repeated);
	T_EQ_STR(dg, link_of("know/b", dg));
	T_TRUE(holds_digest(key, dg, NULL));

	/* a temp session that knows the digest but uploads nothing links nothing
	 * either, although the blob is stored (no dedup without bytes) */
	{
		s3d_service_config c;
		s3d_service *q;
		char uc[40];

		t_svc_config(&c);
		c.max_blob_size = 1 << 20; /* no size declared: not direct */
		q = t_svc_open(drv, &c);
		T_REQUIRE(q != NULL);
		T_REQUIRE(single_session(q, "know/c", dg, -1, NULL, 0, uc, &direct) == 0);
		T_EQ_INT(0, direct);
		T_EQ_INT(S3D_E_STATE, fin(q, "know/c", uc, dg, 0, &res, &err));
		T_EQ_STR("", link_of("know/c", dg));
		s3d_service_free(q);
	}
	s3d_service_free(svc);
}

/* ---- dedup ------------------------------------------------------------------ */

static void test_dedup(void)
{
	s3d_service *svc = t_svc_open(drv, NULL);
	s3d_finalize_result res;
	s3d_error err;
	s3d_obj_info before, after;
	char u1[40], u2[40], dg[80], key[512];
	uint8_t data[30000];
	int64_t n = 0;

	T_REQUIRE(svc != NULL);
	fill(data, sizeof(data), 5, dg);
	T_REQUIRE(single_session(svc, "dedup/a", NULL, -1, data, sizeof(data), u1, NULL) == 0);
	T_REQUIRE(single_session(svc, "dedup/b", NULL, -1, data, sizeof(data), u2, NULL) == 0);
	T_EQ_INT(S3D_OK, fin(svc, "dedup/a", u1, dg, 0, &res, &err));
	T_EQ_INT(0, res.deduplicated);
	blob_key(key, sizeof(key), dg);
	object_info(key, &before);
	T_EQ_INT(S3D_OK, fin(svc, "dedup/b", u2, dg, 0, &res, &err));
	T_EQ_INT(1, res.deduplicated);
	T_EQ_INT(sizeof(data), res.size);
	T_EQ_INT(S3D_VERIFIED_STREAM, res.verified_by);
	object_info(key, &after);
	T_EQ_STR(before.etag, after.etag);
	T_TRUE(holds_digest(key, dg, &n));
	T_EQ_INT(sizeof(data), n);
	T_EQ_STR(dg, link_of("dedup/a", dg));
	T_EQ_STR(dg, link_of("dedup/b", dg));
	temp_key(key, sizeof(key), u2);
	T_TRUE(!t_exists(key));
	temp_key(key, sizeof(key), u1);
	T_TRUE(!t_exists(key));
	s3d_service_free(svc);
}

/* ---- multipart -------------------------------------------------------------- */

/* Stock upload + multipart presign of nparts URLs; sizes[i] bytes of the
 * pattern stream (seed) sent to part i+1 (sizes[i] < 0: not sent). */
static int mp_session(s3d_service *svc, const char *repo, int64_t decl_size, int nparts,
		      const int64_t *sizes, unsigned seed, char uuid[40], char digest[80])
{
	s3d_presign_result r;
	struct t_sha256_sink h;
	s3d_error err;
	uint8_t md[32], *buf;
	int64_t off = 0;
	int i, rc, ok = 1;

	if (t_stock_upload(drv, repo, uuid) != 0)
		return -1;
	s3d_presign_result_init(&r);
	rc = presign(svc, repo, uuid, NULL, decl_size, nparts, 0, &r, &err);
	if (rc != S3D_OK) {
		fprintf(stderr, "  presign parts: %s\n", err.message);
		s3d_presign_result_cleanup(&r);
		return -1;
	}
	if (t_sha256_sink_init(&h) != 0)
		ok = 0;
	for (i = 0; ok && i < nparts; i++) {
		if (sizes[i] < 0)
			continue;
		buf = malloc((size_t)sizes[i] + 1);
		if (!buf) {
			ok = 0;
			break;
		}
		t_fill_pattern(buf, (size_t)sizes[i], (uint64_t)off, seed);
		off += sizes[i];
		t_sha256_sink(&h, buf, (size_t)sizes[i]);
		if (t_http_put(t_part_url(&r, i), NULL, NULL, buf, (size_t)sizes[i], NULL) != 200)
			ok = 0;
		free(buf);
	}
	t_sha256_sink_final(&h, md);
	t_digest_hex(md, digest);
	s3d_presign_result_cleanup(&r);
	return ok ? 0 : -1;
}

static void test_multipart(void)
{
	s3d_service *svc = t_svc_open(drv, NULL);
	s3d_finalize_result res;
	s3d_session s;
	s3d_error err;
	char uuid[40], dg[80], key[512];
	int64_t three[3] = { 5 * MiB, 5 * MiB, 1 }, n = 0;
	int64_t small_mid[3] = { 5 * MiB, 1 * MiB, 1 };
	int64_t none[2] = { -1, -1 };

	T_REQUIRE(svc != NULL);
	T_REQUIRE(mp_session(svc, "mp/app", -1, 3, three, 7, uuid, dg) == 0);
	T_EQ_INT(S3D_SESSION_UPLOADING, index_status(svc, uuid, NULL));
	T_EQ_INT(S3D_OK, fin(svc, "mp/app", uuid, dg, 0, &res, &err));
	T_EQ_INT(10 * MiB + 1, res.size);
	T_EQ_INT(S3D_VERIFIED_STREAM, res.verified_by);
	T_EQ_INT(0, res.deduplicated);
	blob_key(key, sizeof(key), dg);
	T_TRUE(holds_digest(key, dg, &n));
	T_EQ_INT(10 * MiB + 1, n);
	T_EQ_STR(dg, link_of("mp/app", dg));
	temp_key(key, sizeof(key), uuid);
	T_TRUE(!t_exists(key));
	T_EQ_INT(0, uploads_of_temp(uuid));
	T_EQ_INT(0, upload_dir_objects("mp/app", uuid));
	T_EQ_INT(S3D_SESSION_COMPLETED, index_status(svc, uuid, &s));
	T_EQ_INT(10 * MiB + 1, s.final_size);
	T_EQ_STR("", s.upload_id);

	/* a part under 5 MiB in the middle: STATE, the session still open */
	T_REQUIRE(mp_session(svc, "mp/app", -1, 3, small_mid, 8, uuid, dg) == 0);
	T_EQ_INT(S3D_E_STATE, fin(svc, "mp/app", uuid, dg, 0, &res, &err));
	T_TRUE(strstr(err.message, "part 2") != NULL);
	T_TRUE(strstr(err.message, "5 MiB") != NULL);
	T_EQ_INT(S3D_SESSION_UPLOADING, index_status(svc, uuid, &s));
	T_TRUE(s.upload_id[0] != 0);
	T_EQ_INT(1, uploads_of_temp(uuid));
	T_EQ_STR("", link_of("mp/app", dg));
	/* part 2 sent again in full: the upload completes */
	{
		s3d_presign_result r;
		struct t_sha256_sink h;
		uint8_t *buf = malloc((size_t)(10 * MiB + 1)), md[32];
		char d2[80];

		T_REQUIRE(buf != NULL);
		t_fill_pattern(buf, (size_t)(10 * MiB + 1), 0, 8);
		s3d_presign_result_init(&r);
		T_EQ_INT(S3D_OK, presign(svc, "mp/app", uuid, NULL, -1, 3, 0, &r, &err));
		T_EQ_INT(200, t_http_put(t_part_url(&r, 1), NULL, NULL, buf + 5 * MiB,
					 (size_t)(5 * MiB), NULL));
		T_EQ_INT(200, t_http_put(t_part_url(&r, 2), NULL, NULL, buf + 10 * MiB, 1, NULL));
		s3d_presign_result_cleanup(&r);
		T_REQUIRE(t_sha256_sink_init(&h) == 0);
		t_sha256_sink(&h, buf, (size_t)(10 * MiB + 1));
		t_sha256_sink_final(&h, md);
		t_digest_hex(md, d2);
		free(buf);
		T_EQ_INT(S3D_OK, fin(svc, "mp/app", uuid, d2, 0, &res, &err));
		T_EQ_INT(10 * MiB + 1, res.size);
		blob_key(key, sizeof(key), d2);
		T_TRUE(holds_digest(key, d2, NULL));
		T_EQ_STR(d2, link_of("mp/app", d2));
	}

	/* no part: STATE, still open */
	T_REQUIRE(mp_session(svc, "mp/app", -1, 2, none, 9, uuid, dg) == 0);
	T_EQ_INT(S3D_E_STATE, fin(svc, "mp/app", uuid, dg, 0, &res, &err));
	T_EQ_INT(S3D_SESSION_UPLOADING, index_status(svc, uuid, NULL));
	T_EQ_INT(1, uploads_of_temp(uuid));

	/* a declared size the parts do not hold: refused, FAILED, bytes removed */
	{
		int64_t two[2] = { 5 * MiB, 10 };

		T_REQUIRE(mp_session(svc, "mp/app", 5 * MiB + 11, 2, two, 10, uuid, dg) == 0);
		T_EQ_INT(S3D_E_INVAL, fin(svc, "mp/app", uuid, dg, 0, &res, &err));
		T_TRUE(strstr(err.message, "declared") != NULL);
		T_EQ_INT(S3D_SESSION_FAILED, index_status(svc, uuid, NULL));
		T_EQ_INT(0, uploads_of_temp(uuid));
		temp_key(key, sizeof(key), uuid);
		T_TRUE(!t_exists(key));
		T_EQ_INT(0, upload_dir_objects("mp/app", uuid));
		T_EQ_STR("", link_of("mp/app", dg));
		blob_key(key, sizeof(key), dg);
		T_TRUE(!t_exists(key));
	}
	s3d_service_free(svc);
}

/* ---- quotas ----------------------------------------------------------------- */

static void test_quotas(void)
{
	s3d_service_config c;
	s3d_service *svc;
	s3d_finalize_result res;
	s3d_error err;
	char uuid[40], dx[80], dy[80], dz[80], key[512];
	uint8_t x[2000], y[1500], z[1000];
	int64_t used = -1;

	/* max_blob_size below the real, undeclared size */
	t_svc_config(&c);
	c.max_blob_size = 1000;
	svc = t_svc_open(drv, &c);
	T_REQUIRE(svc != NULL);
	fill(x, sizeof(x), 11, dx);
	T_REQUIRE(single_session(svc, "quota/max", NULL, -1, x, sizeof(x), uuid, NULL) == 0);
	T_EQ_INT(S3D_E_QUOTA, fin(svc, "quota/max", uuid, dx, 0, &res, &err));
	T_TRUE(strstr(err.message, "maxblobsize") != NULL);
	T_EQ_STR("", link_of("quota/max", dx));
	blob_key(key, sizeof(key), dx);
	T_TRUE(!t_exists(key));
	temp_key(key, sizeof(key), uuid);
	T_TRUE(!t_exists(key));
	T_EQ_INT(0, upload_dir_objects("quota/max", uuid));
	T_EQ_INT(S3D_SESSION_FAILED, index_status(svc, uuid, NULL));
	/* at the limit it passes */
	T_REQUIRE(single_session(svc, "quota/max", NULL, -1, x, 1000, uuid, NULL) == 0);
	t_digest_of(x, 1000, dz, NULL);
	T_EQ_INT(S3D_OK, fin(svc, "quota/max", uuid, dz, 0, &res, &err));
	s3d_service_free(svc);

	/* repository quota */
	t_svc_config(&c);
	c.repo_quota = 3000;
	svc = t_svc_open(drv, &c);
	T_REQUIRE(svc != NULL);
	fill(y, sizeof(y), 12, dy);
	fill(z, sizeof(z), 13, dz);
	T_EQ_INT(S3D_OK, s3d_service_repo_usage(svc, "quota/repo", &used, &err));
	T_EQ_INT(0, used);
	T_REQUIRE(single_session(svc, "quota/repo", NULL, -1, x, sizeof(x), uuid, NULL) == 0);
	T_EQ_INT(S3D_OK, fin(svc, "quota/repo", uuid, dx, 0, &res, &err));
	T_EQ_INT(S3D_OK, s3d_service_repo_usage(svc, "quota/repo", &used, &err));
	T_EQ_INT(2000, used);
	/* 2000 + 1500 > 3000 */
	T_REQUIRE(single_session(svc, "quota/repo", NULL, -1, y, sizeof(y), uuid, NULL) == 0);
	T_EQ_INT(S3D_E_QUOTA, fin(svc, "quota/repo", uuid, dy, 0, &res, &err));
	T_TRUE(strstr(err.message, "repoquota") != NULL);
	T_EQ_STR("", link_of("quota/repo", dy));
	blob_key(key, sizeof(key), dy);
	T_TRUE(!t_exists(key));
	temp_key(key, sizeof(key), uuid);
	T_TRUE(!t_exists(key));
	T_EQ_INT(S3D_SESSION_FAILED, index_status(svc, uuid, NULL));
	/* the blob linked already does not count twice */
	T_REQUIRE(single_session(svc, "quota/repo", NULL, -1, x, sizeof(x), uuid, NULL) == 0);
	T_EQ_INT(S3D_OK, fin(svc, "quota/repo", uuid, dx, 0, &res, &err));
	T_EQ_INT(1, res.deduplicated);
	T_EQ_INT(S3D_OK, s3d_service_repo_usage(svc, "quota/repo", &used, &err));
	T_EQ_INT(2000, used);
	/* exactly up to the quota */
	T_REQUIRE(single_session(svc, "quota/repo", NULL, -1, z, sizeof(z), uuid, NULL) == 0);
	T_EQ_INT(S3D_OK, fin(svc, "quota/repo", uuid, dz, 0, &res, &err));
	T_EQ_INT(S3D_OK, s3d_service_repo_usage(svc, "quota/repo", &used, &err));
	T_EQ_INT(3000, used);
	/* another repository has its own budget, linking the same blob */
	T_REQUIRE(single_session(svc, "quota/other", NULL, -1, x, sizeof(x), uuid, NULL) == 0);
	T_EQ_INT(S3D_OK, fin(svc, "quota/other", uuid, dx, 0, &res, &err));
	T_EQ_INT(S3D_OK, s3d_service_repo_usage(svc, "quota/other", &used, &err));
	T_EQ_INT(2000, used);
	/* a dangling link (blob gone) costs nothing */
	{
		char lk[512];

		link_key(lk, sizeof(lk), "quota/dangle", dy);
		T_REQUIRE(t_put_object(lk, dy, strlen(dy)) == S3D_OK);
		T_EQ_INT(S3D_OK, s3d_service_repo_usage(svc, "quota/dangle", &used, &err));
		T_EQ_INT(0, used);
	}
	T_EQ_INT(S3D_E_INVAL, s3d_service_repo_usage(svc, "Bad Repo", &used, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_service_repo_usage(NULL, "quota/repo", &used, &err));

	/* a declared digest with no declared size under a quota: a temp upload
	 * whose checksum S3 enforced; finalize trusts it and copies */
	{
		s3d_service_config c2;
		s3d_service *q;
		char u[40];
		int direct = 1;

		t_svc_config(&c2);
		c2.repo_quota = 1 << 20;
		q = t_svc_open(drv, &c2);
		T_REQUIRE(q != NULL);
		T_REQUIRE(single_session(q, "quota/cs", dy, -1, y, sizeof(y), u, &direct) == 0);
		T_EQ_INT(0, direct);
		T_EQ_INT(S3D_OK, fin(q, "quota/cs", u, dy, 0, &res, &err));
		T_EQ_INT(S3D_VERIFIED_CHECKSUM, res.verified_by);
		blob_key(key, sizeof(key), dy);
		T_TRUE(holds_digest(key, dy, NULL));
		T_EQ_STR(dy, link_of("quota/cs", dy));
		temp_key(key, sizeof(key), u);
		T_TRUE(!t_exists(key));
		s3d_service_free(q);
	}
	s3d_service_free(svc);
}

/* ---- concurrency ------------------------------------------------------------ */

#define NTHREADS 8

struct racer {
	s3d_service *svc;
	const char *repo, *uuid, *digest;
	pthread_barrier_t *start;
	int rc;
	s3d_finalize_result res;
	s3d_error err;
};

static void *race_main(void *arg)
{
	struct racer *r = arg;

	pthread_barrier_wait(r->start);
	r->rc = fin(r->svc, r->repo, r->uuid, r->digest, 0, &r->res, &r->err);
	return NULL;
}

/* NTHREADS finalizes of one session at once; returns 0 when the outcome is
 * one winner and only repeats or conflicts besides. */
static int race_once(s3d_service *svc, const char *repo, const char *uuid, const char *dg)
{
	struct racer r[NTHREADS];
	pthread_t th[NTHREADS];
	pthread_barrier_t start;
	int i, won = 0, repeated = 0, conflict = 0, other = 0, started = 0;

	if (pthread_barrier_init(&start, NULL, NTHREADS) != 0)
		return -1;
	for (i = 0; i < NTHREADS; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].svc = svc;
		r[i].repo = repo;
		r[i].uuid = uuid;
		r[i].digest = dg;
		r[i].start = &start;
		if (pthread_create(&th[i], NULL, race_main, &r[i]) != 0)
			break;
		started++;
	}
	if (started != NTHREADS) {
		/* cannot happen short of resource exhaustion: release the waiters */
		fprintf(stderr, "FATAL: pthread_create failed\n");
		printf("finalize: 0 passed, 1 failed\n");
		exit(1);
	}
	for (i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&start);
	for (i = 0; i < NTHREADS; i++) {
		if (r[i].rc == S3D_OK && !r[i].res.repeated)
			won++;
		else if (r[i].rc == S3D_OK)
			repeated++;
		else if (r[i].rc == S3D_E_CONFLICT)
			conflict++;
		else {
			other++;
			fprintf(stderr, "  racer %d: %s: %s\n", i, s3d_strerror(r[i].rc),
				r[i].err.message);
		}
		if (r[i].rc == S3D_OK && strcmp(r[i].res.digest, dg) != 0)
			other++;
	}
	fprintf(stderr, "  race: %d won, %d repeated, %d conflict, %d other\n", won, repeated,
		conflict, other);
	return won == 1 && other == 0 ? 0 : -1;
}

static void test_concurrent(void)
{
	s3d_service *svc = t_svc_open(drv, NULL);
	s3d_finalize_result res;
	s3d_error err;
	char uuid[40], dg[80], key[512];
	uint8_t *data = malloc(256 * 1024);
	int round, bad = 0;

	T_REQUIRE(svc != NULL && data != NULL);
	for (round = 0; round < 6; round++) {
		int direct = round % 3 == 2;

		fill(data, 256 * 1024, 100u + (unsigned)round, dg);
		T_REQUIRE(single_session(svc, "race/app", direct ? dg : NULL,
					 direct ? 256 * 1024 : -1, data, 256 * 1024, uuid,
					 NULL) == 0);
		if (race_once(svc, "race/app", uuid, dg) != 0)
			bad++;
		blob_key(key, sizeof(key), dg);
		T_TRUE(holds_digest(key, dg, NULL));
		T_EQ_STR(dg, link_of("race/app", dg));
		T_EQ_INT(S3D_SESSION_COMPLETED, index_status(svc, uuid, NULL));
		T_EQ_INT(S3D_OK, fin(svc, "race/app", uuid, dg, 0, &res, &err));
		T_EQ_INT(1, res.repeated);
	}
	T_EQ_INT(0, bad);
	free(data);
	s3d_service_free(svc);
}

/* ---- crash recovery --------------------------------------------------------- */

/* Writes s as FINALIZING updated at `updated` into the index and, when
 * marker, the S3 marker: what a finalize that died after its claim leaves. */
static int fake_claim(s3d_service *svc, const char *uuid, int64_t updated, int marker)
{
	s3d_session s;
	s3d_error err;
	int rc;

	s3d_error_clear(&err);
	rc = s3d_index_get(s3d_service_index(svc), uuid, &s, &err);
	if (rc != S3D_OK)
		return rc;
	s.status = S3D_SESSION_FINALIZING;
	s.updated = updated;
	if (marker)
		rc = s3d_svc_marker_put(svc, &s, &err);
	if (rc == S3D_OK)
		rc = s3d_index_put(s3d_service_index(svc), &s, S3D_INDEX_ANY, NULL, &err);
	return rc;
}

/* The parts of a listing, for completing an upload by hand (at most 16). */
struct part_acc {
	s3d_part v[16];
	size_t n;
};

static int add_part(void *ud, const s3d_list_entry *e)
{
	struct part_acc *a = ud;
	s3d_part *p;

	if (e->kind != S3D_ENTRY_PART || a->n == 16)
		return 0;
	p = &a->v[a->n++];
	memset(p, 0, sizeof(*p));
	p->number = e->part_number;
	p->size = e->size;
	snprintf(p->etag, sizeof(p->etag), "%s", e->etag ? e->etag : "");
	return 0;
}

/*
 * A multipart session of repo (mp_session: two parts of sizes, pattern seed)
 * whose upload is then completed by hand, as a finalize that died after the
 * completion leaves it; its temp key into tk. 0 on success.
 */
static int mp_completed(s3d_service *svc, const char *repo, const int64_t sizes[2],
			unsigned seed, char uuid[40], char dg[80], char tk[512])
{
	struct part_acc acc;
	s3d_session s;
	s3d_error err;
	int rc;

	if (mp_session(svc, repo, -1, 2, sizes, seed, uuid, dg) != 0 ||
	    index_status(svc, uuid, &s) != S3D_SESSION_UPLOADING)
		return -1;
	temp_key(tk, 512, uuid);
	memset(&acc, 0, sizeof(acc));
	s3d_error_clear(&err);
	rc = s3d_list_parts(t_svc.admin, t_svc.bucket, tk, s.upload_id, NULL, add_part, &acc,
			    &err);
	if (rc == S3D_OK && acc.n == 2)
		rc = s3d_complete_multipart(t_svc.admin, t_svc.bucket, tk, s.upload_id, acc.v, 2,
					    NULL, &err);
	else if (rc == S3D_OK)
		rc = S3D_E_STATE;
	if (rc != S3D_OK)
		fprintf(stderr, "  completing by hand: %zu parts: %s\n", acc.n, err.message);
	return rc == S3D_OK ? 0 : -1;
}

static void test_crash_recovery(void)
{
	s3d_service *svc = t_svc_open(drv, NULL);
	s3d_finalize_result res;
	s3d_session s;
	s3d_error err;
	char uuid[40], dg[80], key[512];
	uint8_t data[9000];
	time_t now = time(NULL);

	T_REQUIRE(svc != NULL);
	/* stale claim: taken over */
	fill(data, sizeof(data), 21, dg);
	T_REQUIRE(single_session(svc, "crash/app", NULL, -1, data, sizeof(data), uuid, NULL) == 0);
	T_REQUIRE(fake_claim(svc, uuid, (int64_t)now - 901, 1) == S3D_OK);
	T_EQ_INT(S3D_OK, fin(svc, "crash/app", uuid, dg, 0, &res, &err));
	T_EQ_INT(0, res.repeated);
	T_EQ_STR(dg, link_of("crash/app", dg));
	T_EQ_INT(S3D_SESSION_COMPLETED, index_status(svc, uuid, NULL));

	/* fresh claim: CONFLICT, until it is stale */
	fill(data, sizeof(data), 22, dg);
	T_REQUIRE(single_session(svc, "crash/app", NULL, -1, data, sizeof(data), uuid, NULL) == 0);
	T_REQUIRE(fake_claim(svc, uuid, (int64_t)now, 1) == S3D_OK);
	T_EQ_INT(S3D_E_CONFLICT, fin(svc, "crash/app", uuid, dg, 0, &res, &err));
	T_EQ_INT(S3D_E_CONFLICT, fin(svc, "crash/app", uuid, dg, now + 899, &res, &err));
	T_EQ_INT(S3D_SESSION_FINALIZING, index_status(svc, uuid, &s));
	T_EQ_INT(now, s.updated);
	T_EQ_STR("", link_of("crash/app", dg));
	T_EQ_INT(S3D_OK, fin(svc, "crash/app", uuid, dg, now + 901, &res, &err));
	T_EQ_STR(dg, link_of("crash/app", dg));

	/* a fresh claim in the index only (a crash between the claim's index
	 * write and its marker write; the marker still says open) holds too */
	fill(data, sizeof(data), 23, dg);
	T_REQUIRE(single_session(svc, "crash/app", NULL, -1, data, sizeof(data), uuid, NULL) == 0);
	T_REQUIRE(fake_claim(svc, uuid, (int64_t)time(NULL), 0) == S3D_OK);
	T_EQ_INT(S3D_E_CONFLICT, fin(svc, "crash/app", uuid, dg, 0, &res, &err));
	T_EQ_STR("", link_of("crash/app", dg));

	/* a multipart session whose upload was completed before the crash */
	{
		int64_t sizes[2] = { 5 * MiB, 100 };
		char tk[512];

		T_REQUIRE(mp_completed(svc, "crash/mp", sizes, 24, uuid, dg, tk) == 0);
		T_REQUIRE(fake_claim(svc, uuid, (int64_t)now - 1000, 1) == S3D_OK);
		T_EQ_INT(S3D_OK, fin(svc, "crash/mp", uuid, dg, 0, &res, &err));
		T_EQ_INT(5 * MiB + 100, res.size);
		blob_key(key, sizeof(key), dg);
		T_TRUE(holds_digest(key, dg, NULL));
		T_EQ_STR(dg, link_of("crash/mp", dg));
		T_TRUE(!t_exists(tk));
		T_EQ_INT(0, uploads_of_temp(uuid));
		T_EQ_INT(S3D_SESSION_COMPLETED, index_status(svc, uuid, NULL));

		/* the same without a claim left behind (the session still open) */
		sizes[1] = 200;
		T_REQUIRE(mp_completed(svc, "crash/mp", sizes, 25, uuid, dg, tk) == 0);
		T_EQ_INT(S3D_OK, fin(svc, "crash/mp", uuid, dg, 0, &res, &err));
		T_EQ_INT(5 * MiB + 200, res.size);
		blob_key(key, sizeof(key), dg);
		T_TRUE(holds_digest(key, dg, NULL));
		T_TRUE(!t_exists(tk));
	}
	s3d_service_free(svc);
}

/*
 * A finalize that completed the multipart upload and failed later gives the
 * session back open: status then finds no upload but the temp object, and
 * reports its bytes (a retried finalize takes them); with neither, the
 * session ended.
 */
static void test_status_after_completion(void)
{
	s3d_service *svc = t_svc_open(drv, NULL);
	s3d_finalize_result res;
	s3d_upload_status st;
	s3d_session s;
	s3d_error err;
	char uuid[40], dg[80], tk[512];
	int64_t sizes[2] = { 5 * MiB, 300 };

	T_REQUIRE(svc != NULL);
	T_REQUIRE(mp_completed(svc, "stat/mp", sizes, 26, uuid, dg, tk) == 0);
	memset(&st, 0, sizeof(st));
	T_EQ_INT(S3D_OK, s3d_service_status(svc, "stat/mp", uuid, &st, &err));
	T_EQ_INT(S3D_SESSION_UPLOADING, st.session.status);
	T_EQ_INT(5 * MiB + 300, st.stored);
	T_EQ_INT(0, st.nparts);
	T_TRUE(st.parts == NULL);
	s3d_upload_status_cleanup(&st);
	T_EQ_INT(S3D_OK, fin(svc, "stat/mp", uuid, dg, 0, &res, &err));
	T_EQ_INT(5 * MiB + 300, res.size);
	T_EQ_STR(dg, link_of("stat/mp", dg));

	/* the upload gone and no temp object: ended (elsewhere) */
	T_REQUIRE(mp_completed(svc, "stat/mp", sizes, 27, uuid, dg, tk) == 0);
	T_REQUIRE(index_status(svc, uuid, &s) == S3D_SESSION_UPLOADING);
	T_REQUIRE(s3d_delete_object(t_svc.admin, t_svc.bucket, tk, &err) == S3D_OK);
	memset(&st, 0, sizeof(st));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_service_status(svc, "stat/mp", uuid, &st, &err));
	T_TRUE(strstr(err.message, "ended") != NULL);
	T_EQ_INT(0, st.stored);
	s3d_upload_status_cleanup(&st);
	s3d_service_free(svc);
}

/* ---- another registry process ---------------------------------------------- */

static void test_second_service(void)
{
	s3d_driver *d2 = t_svc_driver(NULL, "");
	s3d_service *svc = t_svc_open(drv, NULL), *svc2 = d2 ? t_svc_open(d2, NULL) : NULL;
	s3d_finalize_result res;
	s3d_session s;
	s3d_error err;
	char uuid[40], dg[80], key[512];
	uint8_t data[12345];
	int64_t sizes[2] = { 5 * MiB, 7 };

	T_REQUIRE(svc != NULL && svc2 != NULL);
	/* single PUT presigned on the first, finalized on the second */
	fill(data, sizeof(data), 31, dg);
	T_REQUIRE(single_session(svc, "two/app", NULL, -1, data, sizeof(data), uuid, NULL) == 0);
	T_EQ_INT(-1, index_status(svc2, uuid, NULL));
	T_EQ_INT(S3D_OK, fin(svc2, "two/app", uuid, dg, 0, &res, &err));
	T_EQ_INT(0, res.repeated);
	T_EQ_STR(dg, link_of("two/app", dg));
	T_EQ_INT(S3D_SESSION_COMPLETED, index_status(svc2, uuid, &s));
	T_EQ_STR(dg, s.final_digest);
	temp_key(key, sizeof(key), uuid);
	T_TRUE(!t_exists(key));
	marker_key(key, sizeof(key), uuid);
	T_TRUE(!t_exists(key));
	/* the first process learns from the marker's absence that it ended */
	T_EQ_INT(S3D_E_NOTFOUND, fin(svc, "two/app", uuid, dg, 0, &res, &err));
	T_EQ_INT(S3D_OK, fin(svc2, "two/app", uuid, dg, 0, &res, &err));
	T_EQ_INT(1, res.repeated);

	/* multipart: the upload id travels in the marker */
	T_REQUIRE(mp_session(svc, "two/mp", -1, 2, sizes, 32, uuid, dg) == 0);
	T_EQ_INT(S3D_OK, fin(svc2, "two/mp", uuid, dg, 0, &res, &err));
	T_EQ_INT(5 * MiB + 7, res.size);
	blob_key(key, sizeof(key), dg);
	T_TRUE(holds_digest(key, dg, NULL));
	T_EQ_STR(dg, link_of("two/mp", dg));
	T_EQ_INT(0, uploads_of_temp(uuid));

	/* a claim by the first process is seen by the second (its marker) */
	fill(data, sizeof(data), 33, dg);
	T_REQUIRE(single_session(svc, "two/app", NULL, -1, data, sizeof(data), uuid, NULL) == 0);
	T_REQUIRE(fake_claim(svc, uuid, (int64_t)time(NULL), 1) == S3D_OK);
	T_EQ_INT(S3D_E_CONFLICT, fin(svc2, "two/app", uuid, dg, 0, &res, &err));
	T_EQ_STR("", link_of("two/app", dg));
	s3d_service_free(svc2);
	s3d_service_free(svc);
	s3d_driver_free(d2);
}

/* ---- expiry ----------------------------------------------------------------- */

static void test_expired(void)
{
	s3d_service *svc = t_svc_open(drv, NULL);
	s3d_finalize_result res;
	s3d_presign_result r;
	s3d_session s;
	s3d_error err;
	char uuid[40], dg[80];
	uint8_t data[3000];
	time_t now = time(NULL);

	T_REQUIRE(svc != NULL);
	fill(data, sizeof(data), 41, dg);
	/* opened a day and a bit ago: its end has passed */
	T_REQUIRE(t_stock_upload(drv, "exp/app", uuid) == 0);
	s3d_presign_result_init(&r);
	T_EQ_INT(S3D_OK, presign(svc, "exp/app", uuid, NULL, -1, 0, now - 86400 - 60, &r, &err));
	s3d_presign_result_cleanup(&r);
	T_EQ_INT(S3D_SESSION_PENDING, index_status(svc, uuid, &s));
	T_TRUE(s.expires <= (int64_t)now);
	T_EQ_INT(S3D_E_EXPIRED, fin(svc, "exp/app", uuid, dg, 0, &res, &err));
	T_TRUE(strstr(err.message, "expired") != NULL);
	T_EQ_STR("", link_of("exp/app", dg));

	/* a live session finalized at a time after its end */
	T_REQUIRE(single_session(svc, "exp/app", NULL, -1, data, sizeof(data), uuid, NULL) == 0);
	T_REQUIRE(index_status(svc, uuid, &s) == S3D_SESSION_PENDING);
	T_EQ_INT(S3D_E_EXPIRED, fin(svc, "exp/app", uuid, dg, (time_t)s.expires, &res, &err));
	T_EQ_INT(S3D_E_EXPIRED, fin(svc, "exp/app", uuid, dg, (time_t)s.expires + 1, &res, &err));
	T_EQ_STR("", link_of("exp/app", dg));
	/* one second before its end it still finalizes */
	T_EQ_INT(S3D_OK, fin(svc, "exp/app", uuid, dg, (time_t)s.expires - 1, &res, &err));
	T_EQ_STR(dg, link_of("exp/app", dg));
	s3d_service_free(svc);
}

/* ---- the race guard: a loopback proxy -------------------------------------- */

/*
 * A TCP proxy in front of the S3 server: every connection is piped both ways
 * by its own thread; when the client side sends needle for the first time,
 * hook runs before those bytes are passed on.
 */
#define PROXY_CONNS 256

struct proxy {
	int lfd, port;
	char endpoint[64];
	struct sockaddr_in up;
	pthread_t acceptor;
	atomic_int stop;
	pthread_mutex_t mu;
	pthread_t conns[PROXY_CONNS];
	int nconns;
	const char *needle;
	void (*hook)(void *ud);
	void *ud;
	atomic_int fired;
};

struct pconn {
	struct proxy *p;
	int cfd;
};

/*
 * The request lines the proxies passed on ("METHOD target"), for counting
 * round trips. A request line opens the first chunk of a request: the
 * client sends the next request only after the answer to the last one.
 */
#define REQLOG_MAX 1024

static struct {
	pthread_mutex_t mu;
	int n;
	char line[REQLOG_MAX][512];
} reqlog = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void reqlog_add(const char *p, size_t n)
{
	static const char *const methods[] = { "GET ", "PUT ", "HEAD ", "POST ", "DELETE " };
	const char *eol = memmem(p, n, " HTTP/1.1\r\n", 11);
	size_t i;

	for (i = 0; eol && i < sizeof(methods) / sizeof(methods[0]); i++) {
		if (n < strlen(methods[i]) || memcmp(p, methods[i], strlen(methods[i])) != 0)
			continue;
		pthread_mutex_lock(&reqlog.mu);
		if (reqlog.n < REQLOG_MAX) {
			snprintf(reqlog.line[reqlog.n], sizeof(reqlog.line[0]), "%.*s",
				 (int)(eol - p), p);
			reqlog.n++;
		}
		pthread_mutex_unlock(&reqlog.mu);
		return;
	}
}

static void reqlog_reset(void)
{
	pthread_mutex_lock(&reqlog.mu);
	reqlog.n = 0;
	pthread_mutex_unlock(&reqlog.mu);
}

/* Logged requests of method (NULL: any) whose target holds every one of
 * the NULL-terminated substrings. */
static int reqs(const char *method, ...)
{
	const char *sub;
	va_list ap;
	int i, count = 0, ok;
	size_t ml = method ? strlen(method) : 0;

	pthread_mutex_lock(&reqlog.mu);
	for (i = 0; i < reqlog.n; i++) {
		if (method &&
		    (strncmp(reqlog.line[i], method, ml) != 0 || reqlog.line[i][ml] != ' '))
			continue;
		ok = 1;
		va_start(ap, method);
		while (ok && (sub = va_arg(ap, const char *)) != NULL)
			ok = strstr(reqlog.line[i], sub) != NULL;
		va_end(ap);
		count += ok;
	}
	pthread_mutex_unlock(&reqlog.mu);
	return count;
}

static int send_full(int fd, const char *p, size_t n)
{
	ssize_t k;

	while (n > 0) {
		k = send(fd, p, n, MSG_NOSIGNAL);
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static void *pconn_main(void *arg)
{
	struct pconn *c = arg;
	struct proxy *p = c->p;
	struct pollfd fds[2];
	char buf[65536];
	int ufd = socket(AF_INET, SOCK_STREAM, 0), polls;
	ssize_t n;

	if (ufd < 0 || connect(ufd, (struct sockaddr *)&p->up, sizeof(p->up)) != 0)
		goto out;
	/* bounded: 100 ms polls for at most 120 s */
	for (polls = 0; polls < 1200 && !atomic_load(&p->stop); polls++) {
		fds[0].fd = c->cfd;
		fds[0].events = POLLIN;
		fds[1].fd = ufd;
		fds[1].events = POLLIN;
		if (poll(fds, 2, 100) < 0)
			break;
		if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			n = recv(c->cfd, buf, sizeof(buf), 0);
			if (n <= 0)
				break;
			reqlog_add(buf, (size_t)n);
			if (p->needle && memmem(buf, (size_t)n, p->needle, strlen(p->needle)) &&
			    atomic_exchange(&p->fired, 1) == 0)
				p->hook(p->ud);
			if (send_full(ufd, buf, (size_t)n) != 0)
				break;
		}
		if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			n = recv(ufd, buf, sizeof(buf), 0);
			if (n <= 0)
				break;
			if (send_full(c->cfd, buf, (size_t)n) != 0)
				break;
		}
	}
out:
	if (ufd >= 0)
		close(ufd);
	close(c->cfd);
	free(c);
	return NULL;
}

static void *proxy_accept(void *arg)
{
	struct proxy *p = arg;
	struct pconn *c;
	int fd;

	for (;;) {
		fd = accept(p->lfd, NULL, NULL);
		if (fd < 0 || atomic_load(&p->stop)) {
			if (fd >= 0)
				close(fd);
			break;
		}
		c = malloc(sizeof(*c));
		pthread_mutex_lock(&p->mu);
		if (!c || p->nconns == PROXY_CONNS) {
			pthread_mutex_unlock(&p->mu);
			free(c);
			close(fd);
			continue;
		}
		c->p = p;
		c->cfd = fd;
		if (pthread_create(&p->conns[p->nconns], NULL, pconn_main, c) == 0)
			p->nconns++;
		else {
			free(c);
			close(fd);
		}
		pthread_mutex_unlock(&p->mu);
	}
	return NULL;
}

/* 0 when listening on 127.0.0.1 in front of $S3D_TEST_ENDPOINT. */
static int proxy_start(struct proxy *p, const char *needle, void (*hook)(void *), void *ud)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	char host[64];
	int port = 0;

	memset(p, 0, sizeof(*p));
	atomic_init(&p->stop, 0);
	atomic_init(&p->fired, 0);
	pthread_mutex_init(&p->mu, NULL);
	p->needle = needle;
	p->hook = hook;
	p->ud = ud;
	if (sscanf(t_env("S3D_TEST_ENDPOINT"), "http://%63[^:]:%d", host, &port) != 2)
		return -1;
	p->up.sin_family = AF_INET;
	p->up.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &p->up.sin_addr) != 1)
		return -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	p->lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (p->lfd < 0)
		return -1;
	if (bind(p->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(p->lfd, 64) != 0 ||
	    getsockname(p->lfd, (struct sockaddr *)&a, &alen) != 0 ||
	    pthread_create(&p->acceptor, NULL, proxy_accept, p) != 0) {
		close(p->lfd);
		return -1;
	}
	p->port = ntohs(a.sin_port);
	snprintf(p->endpoint, sizeof(p->endpoint), "http://127.0.0.1:%d", p->port);
	return 0;
}

static void proxy_stop(struct proxy *p)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0), i;

	atomic_store(&p->stop, 1);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)p->port);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		shutdown(p->lfd, SHUT_RDWR);
	if (fd >= 0)
		close(fd);
	pthread_join(p->acceptor, NULL);
	for (i = 0; i < p->nconns; i++)
		pthread_join(p->conns[i], NULL);
	close(p->lfd);
	pthread_mutex_destroy(&p->mu);
}

struct replace {
	const char *key;
	const uint8_t *data;
	size_t len;
	int rc;
};

/* The hook: another PUT of the temp object, straight to the server. */
static void replace_object(void *ud)
{
	struct replace *r = ud;

	r->rc = t_put_object(r->key, r->data, r->len);
}

/*
 * The temp object is replaced (through the proxy's hook) when finalize sends
 * the request that carries needle: the finalize must answer CONFLICT, place
 * and link nothing, and give the session back.
 */
static void guard_case(const char *needle)
{
	struct proxy px;
	struct replace rep;
	s3d_driver *pd = NULL;
	s3d_service *svc = NULL;
	s3d_finalize_result res;
	s3d_presign_result r;
	s3d_error err;
	char uuid[40], da[80], db[80], key[512], tk[512];
	uint8_t a[40000], b[40000];
	int rc;

	fill(a, sizeof(a), 53, da);
	fill(b, sizeof(b), 54, db);
	T_REQUIRE(proxy_start(&px, needle, replace_object, &rep) == 0);
	pd = t_svc_driver(px.endpoint, "");
	svc = pd ? t_svc_open(pd, NULL) : NULL;
	if (!svc) {
		T_TRUE(svc != NULL);
		goto out;
	}
	T_REQUIRE(t_stock_upload(drv, "guard/app", uuid) == 0);
	temp_key(tk, sizeof(tk), uuid);
	rep.key = tk;
	rep.data = b;
	rep.len = sizeof(b);
	rep.rc = -1;
	s3d_presign_result_init(&r);
	rc = presign(svc, "guard/app", uuid, NULL, -1, 0, 0, &r, &err);
	T_EQ_INT(S3D_OK, rc);
	if (rc == S3D_OK)
		T_EQ_INT(200, t_http_put(s3d_buf_str(&r.url), &r, NULL, a, sizeof(a), NULL));
	s3d_presign_result_cleanup(&r);
	rc = fin(svc, "guard/app", uuid, da, 0, &res, &err);
	T_EQ_INT(1, atomic_load(&px.fired));
	T_EQ_INT(S3D_OK, rep.rc);
	T_EQ_INT(S3D_E_CONFLICT, rc);
	T_TRUE(strstr(err.message, "changed") != NULL);
	blob_key(key, sizeof(key), da);
	T_TRUE(!t_exists(key));
	T_EQ_STR("", link_of("guard/app", da));
	T_EQ_STR("", link_of("guard/app", db));
	/* the session is open again and holds the new bytes */
	T_EQ_INT(S3D_SESSION_PENDING, index_status(svc, uuid, NULL));
	T_EQ_INT(S3D_E_DIGEST, fin(svc, "guard/app", uuid, da, 0, &res, &err));
	T_EQ_STR("", link_of("guard/app", da));
	T_TRUE(!t_exists(key));
out:
	s3d_service_free(svc);
	s3d_driver_free(pd);
	proxy_stop(&px);
}

static void test_race_guard(void)
{
	s3d_service *svc = NULL;
	s3d_finalize_result res;
	s3d_upload_status st;
	s3d_presign_result r;
	s3d_error err;
	char uuid[40], da[80], db[80], key[512];
	uint8_t a[40000], b[40000];

	fill(a, sizeof(a), 51, da);
	fill(b, sizeof(b), 52, db);

	/* replaced between status and finalize: only bytes hashing to the
	 * digest are linked */
	svc = t_svc_open(drv, NULL);
	T_REQUIRE(svc != NULL);
	T_REQUIRE(t_stock_upload(drv, "guard/app", uuid) == 0);
	s3d_presign_result_init(&r);
	T_REQUIRE(presign(svc, "guard/app", uuid, NULL, -1, 0, 0, &r, &err) == S3D_OK);
	T_EQ_INT(200, t_http_put(s3d_buf_str(&r.url), &r, NULL, a, sizeof(a), NULL));
	memset(&st, 0, sizeof(st));
	T_EQ_INT(S3D_OK, s3d_service_status(svc, "guard/app", uuid, &st, &err));
	T_EQ_INT(sizeof(a), st.stored);
	s3d_upload_status_cleanup(&st);
	T_EQ_INT(200, t_http_put(s3d_buf_str(&r.url), &r, NULL, b, sizeof(b), NULL));
	s3d_presign_result_cleanup(&r);
	T_EQ_INT(S3D_E_DIGEST, fin(svc, "guard/app", uuid, da, 0, &res, &err));
	T_EQ_STR("", link_of("guard/app", da));
	T_EQ_STR("", link_of("guard/app", db));
	blob_key(key, sizeof(key), da);
	T_TRUE(!t_exists(key));
	blob_key(key, sizeof(key), db);
	T_TRUE(!t_exists(key));
	s3d_service_free(svc);

	guard_case("\r\nx-amz-copy-source:"); /* after verification, before the copy */
	guard_case("\r\nRange: bytes=");      /* during the streaming verification */
}

/* With S3D_TEST_REQLOG=1 in the environment: the logged requests. */
static void reqlog_dump(const char *what)
{
	int i;

	if (!getenv("S3D_TEST_REQLOG"))
		return;
	pthread_mutex_lock(&reqlog.mu);
	fprintf(stderr, "  %s: %d requests\n", what, reqlog.n);
	for (i = 0; i < reqlog.n; i++)
		fprintf(stderr, "    %s\n", reqlog.line[i]);
	pthread_mutex_unlock(&reqlog.mu);
}

/*
 * The S3 round trips of one finalize of each kind (single PUT to the temp
 * key, direct, multipart), through the proxy's request log; a repository
 * quota makes the layer link checks run. The marker is read once (by the
 * lookup), a missing link costs one HEAD (no LIST), only a multipart
 * session's clean-up lists uploads, a direct one deletes no temp key.
 */
static void test_round_trips(void)
{
	s3d_service_config c;
	s3d_driver *pd = NULL;
	s3d_service *svc = NULL;
	s3d_finalize_result res;
	s3d_error err;
	struct proxy px;
	char uuid[40], dg[80], mk[512], tk[512];
	uint8_t data[20000];
	int64_t sizes[2] = { 5 * MiB, 9 };
	int direct = 0;

	T_REQUIRE(proxy_start(&px, NULL, NULL, NULL) == 0);
	t_svc_config(&c);
	c.repo_quota = 1ll << 40;
	pd = t_svc_driver(px.endpoint, "");
	svc = pd ? t_svc_open(pd, &c) : NULL;
	if (!svc) {
		T_TRUE(svc != NULL);
		goto out;
	}

	/* single PUT to the temp key */
	fill(data, sizeof(data), 61, dg);
	T_REQUIRE(single_session(svc, "trips/app", NULL, -1, data, sizeof(data), uuid,
				 &direct) == 0);
	T_EQ_INT(0, direct);
	marker_key(mk, sizeof(mk), uuid);
	temp_key(tk, sizeof(tk), uuid);
	reqlog_reset();
	T_EQ_INT(S3D_OK, fin(svc, "trips/app", uuid, dg, 0, &res, &err));
	reqlog_dump("single");
	T_EQ_INT(1, reqs("GET", mk, NULL));
	/* one HEAD of the temp object; the verification reads it pinned to
	 * that HEAD's ETag */
	T_EQ_INT(1, reqs("HEAD", tk, NULL));
	T_EQ_INT(1, reqs("HEAD", "/link", NULL));
	T_EQ_INT(0, reqs("GET", "%2Flink%2F", NULL));
	T_EQ_INT(0, reqs("GET", "uploads=", "prefix=_s3direct%2Fuploads", NULL));
	/* the stock upload's directory: its writers' leftovers listed once */
	T_EQ_INT(1, reqs("GET", "uploads=", "_uploads%2F", NULL));
	T_EQ_INT(1, reqs("DELETE", tk, NULL));

	/* direct */
	fill(data, sizeof(data), 62, dg);
	T_REQUIRE(single_session(svc, "trips/app", dg, sizeof(data), data, sizeof(data), uuid,
				 &direct) == 0);
	T_EQ_INT(1, direct);
	marker_key(mk, sizeof(mk), uuid);
	temp_key(tk, sizeof(tk), uuid);
	reqlog_reset();
	T_EQ_INT(S3D_OK, fin(svc, "trips/app", uuid, dg, 0, &res, &err));
	reqlog_dump("direct");
	T_EQ_INT(1, reqs("GET", mk, NULL));
	T_EQ_INT(1, reqs("HEAD", "/link", NULL));
	T_EQ_INT(0, reqs("GET", "%2Flink%2F", NULL));
	T_EQ_INT(0, reqs(NULL, "uploads=", "prefix=_s3direct%2Fuploads", NULL));
	T_EQ_INT(0, reqs(NULL, tk, NULL));

	/* multipart */
	T_REQUIRE(mp_session(svc, "trips/mp", -1, 2, sizes, 63, uuid, dg) == 0);
	marker_key(mk, sizeof(mk), uuid);
	temp_key(tk, sizeof(tk), uuid);
	reqlog_reset();
	T_EQ_INT(S3D_OK, fin(svc, "trips/mp", uuid, dg, 0, &res, &err));
	T_EQ_INT(5 * MiB + 9, res.size);
	reqlog_dump("multipart");
	T_EQ_INT(1, reqs("GET", mk, NULL));
	/* the size checks once, on the listed parts: one link HEAD */
	T_EQ_INT(1, reqs("HEAD", "/link", NULL));
	T_EQ_INT(0, reqs("GET", "%2Flink%2F", NULL));
	/* the completion describes the object, and the verification reads it
	 * pinned to the completion's ETag: no HEAD */
	T_EQ_INT(0, reqs("HEAD", tk, NULL));
	T_EQ_INT(1, reqs("GET", "uploads=", "prefix=_s3direct%2Fuploads", NULL));

	/* a direct session cancelled: nothing listed or deleted at a temp key */
	fill(data, sizeof(data), 64, dg);
	T_REQUIRE(single_session(svc, "trips/app", dg, sizeof(data), NULL, 0, uuid, &direct) == 0);
	T_EQ_INT(1, direct);
	temp_key(tk, sizeof(tk), uuid);
	reqlog_reset();
	T_EQ_INT(S3D_OK, s3d_service_cancel(svc, "trips/app", uuid, &err));
	reqlog_dump("cancel direct");
	T_EQ_INT(0, reqs(NULL, "uploads=", "prefix=_s3direct%2Fuploads", NULL));
	T_EQ_INT(0, reqs(NULL, tk, NULL));
out:
	s3d_service_free(svc);
	s3d_driver_free(pd);
	proxy_stop(&px);
}

int main(void)
{
	int rc = 1;

	if (t_svc_begin("finalize", "fin") != 0)
		return 1;
	t_svc.config.part_size = 5 * MiB;
	drv = t_svc_driver(NULL, "");
	if (!drv) {
		printf("finalize: 0 passed, 1 failed\n");
		goto out;
	}
	T_RUN(test_hostile);
	T_RUN(test_direct);
	T_RUN(test_single_stream);
	T_RUN(test_knowing_digest);
	T_RUN(test_dedup);
	T_RUN(test_multipart);
	T_RUN(test_quotas);
	T_RUN(test_concurrent);
	T_RUN(test_crash_recovery);
	T_RUN(test_status_after_completion);
	T_RUN(test_second_service);
	T_RUN(test_expired);
	T_RUN(test_race_guard);
	T_RUN(test_round_trips);
	rc = t_done("finalize");
out:
	s3d_driver_free(drv);
	t_svc_end();
	return rc;
}
