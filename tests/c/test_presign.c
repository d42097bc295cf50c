/*
 * The presigned upload service's presign, status and cancel (presign.c)
 * against a live S3 server (versitygw started by tests/with-s3.sh), used the
 * way the registry uses it: a driver on the run's bucket, the stock upload
 * made as distribution makes it (PutContent of .../_uploads/<uuid>/startedat),
 * a service with its index in a temp directory; the URLs are then used with
 * plain libcurl PUTs, as a client would. Hostile requests first.
 */
#include "t.h"
#include "t_s3.h"
#include "t_svc.h"

#include "upload.h"

#include <poll.h>
#include <unistd.h>

#define ROOT "reg"
#define MiB (1024ll * 1024)

static s3d_driver *drv;  /* the registry's driver */
static s3d_driver *drv2; /* a second registry process's driver */

/* ---- helpers ---------------------------------------------------------------- */

static void rq_init(s3d_presign_request *rq, const char *repo, const char *uuid)
{
	memset(rq, 0, sizeof(*rq));
	rq->repo = repo;
	rq->uuid = uuid;
	rq->size = -1;
}

static void rq_parts(s3d_presign_request *rq, int first, int count)
{
	rq->multipart = 1;
	rq->first_part = first;
	rq->parts = count;
}

/* s3d_service_presign with a fresh result (cleaned by the caller) and err. */
static int presign(s3d_service *svc, const s3d_presign_request *rq, s3d_presign_result *r,
		   s3d_error *err)
{
	s3d_error_clear(err);
	return s3d_service_presign(svc, rq, r, err);
}

/* A result header's value, or NULL. */
static const char *header_of(const s3d_presign_result *r, const char *name)
{
	const char *p = (const char *)r->headers.ptr;
	size_t i;

	for (i = 0; p && i < r->nheaders; i++) {
		const char *v = p + strlen(p) + 1;

		if (strcmp(p, name) == 0)
			return v;
		p = v + strlen(v) + 1;
	}
	return NULL;
}

/* An S3 answer's <Code>, for messages. */
static const char *code_of(const s3d_buf *resp)
{
	static char code[64];
	const char *s = strstr(s3d_buf_str(resp), "<Code>"), *e;

	code[0] = 0;
	if (s && (e = strstr(s, "</Code>")) != NULL)
		t_copy_cut(code, sizeof(code), s + 6, (size_t)(e - s - 6));
	return code;
}

static void temp_key(char *out, size_t cap, const char *uuid)
{
	snprintf(out, cap, ROOT "/_s3direct/uploads/%s", uuid);
}

static void marker_key(char *out, size_t cap, const char *uuid)
{
	snprintf(out, cap, ROOT "/_s3direct/sessions/%s", uuid);
}

static void blob_key(char *out, size_t cap, const char *digest)
{
	snprintf(out, cap, ROOT "/docker/registry/v2/blobs/sha256/%.2s/%s/data", digest + 7,
		 digest + 7);
}

/* Writes n bytes through the driver's writer at the upload's data path
 * (what a stock PATCH does), then closes (commit: commits instead). */
static int patch_data(const char *repo, const char *uuid, size_t n, int commit)
{
	char path[512];
	s3d_writer *w = NULL;
	s3d_error err;
	uint8_t *p = t_make_pattern(n, 3);
	int rc;

	t_upload_path(path, sizeof(path), repo, uuid, "data");
	rc = p ? s3d_writer_open(drv, path, 0, &w, &err) : S3D_E_NOMEM;
	if (rc == S3D_OK && n)
		rc = s3d_writer_write(w, p, n, &err);
	if (rc == S3D_OK)
		rc = commit ? s3d_writer_commit(w, &err) : s3d_writer_close(w, &err);
	s3d_writer_free(w);
	free(p);
	return rc;
}

/* ---- hostile requests ---------------------------------------------------------- */

static void test_hostile_arguments(void)
{
	s3d_service *svc = t_svc_open(drv, NULL);
	s3d_presign_request rq;
	s3d_presign_result r;
	s3d_upload_status st;
	s3d_session s;
	s3d_error err;
	char uuid[40], longname[300];

	T_REQUIRE(svc);
	T_REQUIRE(t_stock_upload(drv, "it/app", uuid) == 0);
	s3d_presign_result_init(&r);
	rq_init(&rq, "it/app", uuid);
	T_EQ_INT(S3D_E_INVAL, s3d_service_presign(NULL, &rq, &r, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_service_presign(svc, NULL, &r, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_service_presign(svc, &rq, NULL, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_service_status(svc, "it/app", uuid, NULL, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_service_status(NULL, "it/app", uuid, &st, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_service_cancel(NULL, "it/app", uuid, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_service_lookup(svc, "it/app", uuid, NULL, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_service_sweep(NULL, 0, NULL, &err));

	/* names */
	rq.repo = "It/App";
	T_EQ_INT(S3D_E_INVAL, presign(svc, &rq, &r, &err));
	rq.repo = "it//app";
	T_EQ_INT(S3D_E_INVAL, presign(svc, &rq, &r, &err));
	rq.repo = "";
	T_EQ_INT(S3D_E_INVAL, presign(svc, &rq, &r, &err));
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	rq.repo = longname;
	T_EQ_INT(S3D_E_INVAL, presign(svc, &rq, &r, &err));
	rq.repo = NULL;
	T_EQ_INT(S3D_E_INVAL, presign(svc, &rq, &r, &err));
	rq_init(&rq, "it/app", "../x");
	T_EQ_INT(S3D_E_NOTFOUND, presign(svc, &rq, &r, &err));
	rq.uuid = "";
	T_EQ_INT(S3D_E_NOTFOUND, presign(svc, &rq, &r, &err));
	rq.uuid = NULL;
	T_EQ_INT(S3D_E_NOTFOUND, presign(svc, &rq, &r, &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_service_lookup(svc, "it/app", "a/b", &s, &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_service_status(svc, "it/app", "a b", &st, &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_service_cancel(svc, "it/app", "%2e", &err));

	/* digests: malformed, then well-formed but not sha256 */
	rq_init(&rq, "it/app", uuid);
	{
		static const char *bad[] = {
			"sha256:xyz",
			"sha256:",
			"sha256",
			":abc",
			"SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
			"sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
			"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
			"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555",
			"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g",
		};
		size_t i;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			rq.digest = bad[i];
			T_EQ_INT(S3D_E_DIGEST, presign(svc, &rq, &r, &err));
			T_TRUE(err.message[0] != 0);
		}
	}
	rq.digest = "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
		    "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";
	T_EQ_INT(S3D_E_UNSUPPORTED, presign(svc, &rq, &r, &err));
	T_TRUE(strstr(err.message, "sha512") != NULL);
	rq.multipart = 1;
	rq.parts = 1;
	T_EQ_INT(S3D_E_UNSUPPORTED, presign(svc, &rq, &r, &err));

	/* sizes */
	rq_init(&rq, "it/app", uuid);
	rq.size = -2;
	T_EQ_INT(S3D_E_INVAL, presign(svc, &rq, &r, &err));
	rq.size = 5 * 1024 * MiB + 1; /* over one PUT */
	T_EQ_INT(S3D_E_INVAL, presign(svc, &rq, &r, &err));
	rq_parts(&rq, 1, 1);
	rq.size = 5 * 1024 * MiB * 10000 + 1;
	T_EQ_INT(S3D_E_INVAL, presign(svc, &rq, &r, &err));

	/* part counts */
#define BAD_PARTS(first, count)                                            \
	do {                                                               \
		rq_init(&rq, "it/app", uuid);                              \
		rq_parts(&rq, first, count);                               \
		T_EQ_INT(S3D_E_INVAL, presign(svc, &rq, &r, &err));        \
		T_TRUE(err.message[0] != 0);                               \
	} while (0)
	BAD_PARTS(1, 0);
	BAD_PARTS(1, -1);
	BAD_PARTS(1, 1001);
	BAD_PARTS(-1, 1);
	BAD_PARTS(10001, 1);
	BAD_PARTS(9999, 3);
	BAD_PARTS(INT32_MAX, 1000);
#undef BAD_PARTS

	/* none of it opened a session */
	T_EQ_INT(S3D_E_NOTFOUND, s3d_index_get(s3d_service_index(svc), uuid, &s, &err));
	{
		char mk[256];

		marker_key(mk, sizeof(mk), uuid);
		T_TRUE(!t_exists(mk));
	}
	s3d_presign_result_cleanup(&r);
	s3d_service_free(svc);
	s3d_service_free(NULL);
}

static void test_refused_without_fresh_stock_upload(void)
{
	s3d_service *svc = t_svc_open(drv, NULL);
	s3d_presign_request rq;
	s3d_presign_result r;
	s3d_error err;
	char uuid[40], tail[256], path[512];
	s3d_buf k, tk;

	T_REQUIRE(svc);
	s3d_presign_result_init(&r);
	s3d_buf_init(&k, 2048);
	s3d_buf_init(&tk, 2048);

	/* no stock upload at all */
	t_uuid(uuid);
	rq_init(&rq, "it/app", uuid);
	T_EQ_INT(S3D_E_NOTFOUND, presign(svc, &rq, &r, &err));
	T_TRUE(err.message[0] != 0);
	rq_parts(&rq, 1, 1);
	T_EQ_INT(S3D_E_NOTFOUND, presign(svc, &rq, &r, &err));

	/* the stock upload of another repository */
	T_REQUIRE(t_stock_upload(drv, "it/app", uuid) == 0);
	rq_init(&rq, "it/other", uuid);
	T_EQ_INT(S3D_E_NOTFOUND, presign(svc, &rq, &r, &err));

	/* PATCH data in a tail object (under 5 MiB, closed) */
	T_REQUIRE(t_stock_upload(drv, "it/app", uuid) == 0);
	T_REQUIRE(patch_data("it/app", uuid, 1000, 0) == S3D_OK);
	rq_init(&rq, "it/app", uuid);
	T_EQ_INT(S3D_E_STATE, presign(svc, &rq, &r, &err));
	T_TRUE(strstr(err.message, "PATCH") != NULL);
	rq_parts(&rq, 1, 2);
	T_EQ_INT(S3D_E_STATE, presign(svc, &rq, &r, &err));

	/* PATCH data committed as the data object */
	T_REQUIRE(t_stock_upload(drv, "it/app", uuid) == 0);
	T_REQUIRE(patch_data("it/app", uuid, 10, 1) == S3D_OK);
	rq_init(&rq, "it/app", uuid);
	T_EQ_INT(S3D_E_STATE, presign(svc, &rq, &r, &err));

	/* PATCH data as parts of the writer's multipart upload, no tail */
	T_REQUIRE(t_stock_upload(drv, "it/app", uuid) == 0);
	T_REQUIRE(patch_data("it/app", uuid, (size_t)(10 * MiB), 0) == S3D_OK);
	t_upload_path(path, sizeof(path), "it/app", uuid, "data");
	T_REQUIRE(s3d_driver_key(drv, path, &k) == S3D_OK);
	T_EQ_INT(1, t_s3_uploads_of(t_svc.admin, t_svc.bucket, s3d_buf_str(&k), NULL, 0));
	T_REQUIRE(s3d_upload_tail_key(drv, s3d_buf_str(&k), &tk) == S3D_OK);
	snprintf(tail, sizeof(tail), "%s", s3d_buf_str(&tk));
	s3d_delete_object(t_svc.admin, t_svc.bucket, tail, &err);
	T_TRUE(!t_exists(tail));
	T_EQ_INT(S3D_E_STATE, presign(svc, &rq, &r, &err));
	/* the probe changed nothing: the writer's upload is still there */
	T_EQ_INT(1, t_s3_uploads_of(t_svc.admin, t_svc.bucket, s3d_buf_str(&k), NULL, 0));

	/* the stock POST's empty data file is no PATCH data */
	T_REQUIRE(t_stock_upload(drv, "it/app", uuid) == 0);
	T_REQUIRE(patch_data("it/app", uuid, 0, 1) == S3D_OK);
	rq_init(&rq, "it/app", uuid);
	T_EQ_INT(S3D_OK, presign(svc, &rq, &r, &err));
	T_EQ_INT(S3D_MODE_SINGLE, r.session.mode);

	s3d_buf_cleanup(&tk);
	s3d_buf_cleanup(&k);
	s3d_presign_result_cleanup(&r);
	s3d_service_free(svc);
}

static void test_quota_refusals(void)
{
	s3d_service_config cfg;
	s3d_service *svc;
	s3d_presign_request rq;
	s3d_presign_result r;
	s3d_session s;
	s3d_error err;
	char uuid[40], digest[80], key[256];
	uint8_t data[100];

	t_svc_config(&cfg);
	cfg.max_blob_size = 1000;
	svc = t_svc_open(drv, &cfg);
	T_REQUIRE(svc);
	s3d_presign_result_init(&r);
	T_REQUIRE(t_stock_upload(drv, "it/app", uuid) == 0);
	rq_init(&rq, "it/app", uuid);
	rq.size = 1001;
	T_EQ_INT(S3D_E_QUOTA, presign(svc, &rq, &r, &err));
	T_TRUE(strstr(err.message, "maxblobsize") != NULL);
	rq_parts(&rq, 1, 1);
	T_EQ_INT(S3D_E_QUOTA, presign(svc, &rq, &r, &err));
	T_TRUE(strstr(err.message, "maxblobsize") != NULL);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_index_get(s3d_service_index(svc), uuid, &s, &err));

	/* at the limit: opened */
	rq_init(&rq, "it/app", uuid);
	rq.size = 1000;
	T_EQ_INT(S3D_OK, presign(svc, &rq, &r, &err));
	T_EQ_STR("1000", header_of(&r, "content-length"));

	/* a digest without a size, under a size limit: not direct (finalize
	 * checks the size before placing the blob), still checksummed */
	T_REQUIRE(t_stock_upload(drv, "it/app", uuid) == 0);
	t_fill(data, sizeof(data), 5);
	t_digest_of(data, sizeof(data), digest, NULL);
	rq_init(&rq, "it/app", uuid);
	rq.digest = digest;
	T_EQ_INT(S3D_OK, presign(svc, &rq, &r, &err));
	T_EQ_INT(0, r.session.direct);
	temp_key(key, sizeof(key), uuid);
	T_EQ_STR(key, r.session.key);
	T_TRUE(header_of(&r, "x-amz-checksum-sha256") != NULL);
	T_TRUE(header_of(&r, "content-length") == NULL);
	T_EQ_INT(200, t_http_put(s3d_buf_str(&r.url), &r, NULL, data, sizeof(data), NULL));
	T_TRUE(t_exists(key));

	s3d_service_free(svc);

	/* a repository quota: blobs linked so far count */
	t_svc_config(&cfg);
	cfg.repo_quota = 1000;
	svc = t_svc_open(drv, &cfg);
	T_REQUIRE(svc);
	T_REQUIRE(t_stock_upload(drv, "it/quota", uuid) == 0);
	rq_init(&rq, "it/quota", uuid);
	rq.size = 1001;
	T_EQ_INT(S3D_E_QUOTA, presign(svc, &rq, &r, &err));
	T_TRUE(strstr(err.message, "repoquota") != NULL);
	{
		char blob[256], link[256];
		uint8_t linked[600];

		t_fill(linked, sizeof(linked), 6);
		t_digest_of(linked, sizeof(linked), digest, NULL);
		snprintf(blob, sizeof(blob), "/docker/registry/v2/blobs/sha256/%.2s/%s/data",
			 digest + 7, digest + 7);
		snprintf(link, sizeof(link),
			 "/docker/registry/v2/repositories/it/quota/_layers/sha256/%s/link",
			 digest + 7);
		T_REQUIRE(s3d_driver_put_content(drv, blob, linked, sizeof(linked), &err) == S3D_OK);
		T_REQUIRE(s3d_driver_put_content(drv, link, digest, strlen(digest), &err) == S3D_OK);
	}
	rq.size = 401;
	T_EQ_INT(S3D_E_QUOTA, presign(svc, &rq, &r, &err));
	T_TRUE(strstr(err.message, "repoquota") != NULL);
	T_TRUE(strstr(err.message, "600") != NULL);
	/* another repository has its own quota */
	T_REQUIRE(t_stock_upload(drv, "it/app", uuid) == 0);
	rq.repo = "it/app";
	T_EQ_INT(S3D_OK, presign(svc, &rq, &r, &err));
	T_REQUIRE(t_stock_upload(drv, "it/quota", uuid) == 0);
	rq.repo = "it/quota";
	rq.size = 400;
	T_EQ_INT(S3D_OK, presign(svc, &rq, &r, &err));
	T_EQ_STR("400", header_of(&r, "content-length"));

	s3d_presign_result_cleanup(&r);
	s3d_service_free(svc);
}

/* ---- single PUT ---------------------------------------------------------------- */

static void test_single_without_digest(void)
{
	s3d_service *svc = t_svc_open(drv, NULL);
	s3d_presign_request rq;
	s3d_presign_result r;
	s3d_upload_status st;
	s3d_session s, m;
	s3d_error err;
	s3d_buf got, resp;
	char uuid[40], key[256], meta[128], mk[256];
	uint8_t *data = t_make_pattern(3000, 11);
	time_t t0 = time(NULL);

	T_REQUIRE(svc && data);
	s3d_presign_result_init(&r);
	s3d_buf_init(&got, 1 << 20);
	s3d_buf_init(&resp, 1 << 16);
	T_REQUIRE(t_stock_upload(drv, "it/app", uuid) == 0);
	rq_init(&rq, "it/app", uuid);
	rq.user = "alice";
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	temp_key(key, sizeof(key), uuid);
	T_EQ_STR(key, r.session.key);
	T_EQ_STR(uuid, r.session.uuid);
	T_EQ_STR("it/app", r.session.repo);
	T_EQ_STR("alice", r.session.user);
	T_EQ_INT(S3D_SESSION_PENDING, r.session.status);
	T_EQ_INT(S3D_MODE_SINGLE, r.session.mode);
	T_EQ_INT(0, r.session.direct);
	T_EQ_INT(-1, r.session.declared_size);
	T_EQ_STR("", r.session.declared_digest);
	T_TRUE(r.session.created >= t0 && r.session.created <= time(NULL));
	T_EQ_INT(r.session.created + 86400, r.session.expires);
	T_TRUE(r.expires_at >= t0 + 3600 && r.expires_at <= time(NULL) + 3600);
	T_EQ_INT(0, r.nparts);
	T_EQ_INT(1, r.nheaders);
	snprintf(meta, sizeof(meta), "session:%s", uuid);
	T_EQ_STR(meta, header_of(&r, "x-amz-meta-s3direct"));
	T_TRUE(strncmp(s3d_buf_str(&r.url), t_env("S3D_TEST_ENDPOINT"),
		       strlen(t_env("S3D_TEST_ENDPOINT"))) == 0);
	T_TRUE(strstr(s3d_buf_str(&r.url), "X-Amz-Signature=") != NULL);
	T_TRUE(strstr(s3d_buf_str(&r.url), uuid) != NULL);

	/* committed: the index and the marker hold the record */
	T_EQ_INT(S3D_OK, s3d_index_get(s3d_service_index(svc), uuid, &s, &err));
	T_EQ_STR(key, s.key);
	marker_key(mk, sizeof(mk), uuid);
	T_TRUE(t_exists(mk));
	T_EQ_INT(S3D_OK, s3d_svc_marker_get(svc, uuid, &m, &err));
	T_EQ_STR(key, m.key);
	T_EQ_INT(S3D_SESSION_PENDING, m.status);

	/* nothing stored yet */
	memset(&st, 0, sizeof(st));
	T_EQ_INT(S3D_OK, s3d_service_status(svc, "it/app", uuid, &st, &err));
	T_EQ_INT(0, st.stored);
	T_EQ_INT(0, st.nparts);
	s3d_upload_status_cleanup(&st);

	/* the signed metadata header is required */
	T_EQ_INT(403,
		 t_http_put(s3d_buf_str(&r.url), &r, "x-amz-meta-s3direct", data, 3000, &resp));
	T_TRUE(!t_exists(key));

	T_EQ_INT(200, t_http_put(s3d_buf_str(&r.url), &r, NULL, data, 3000, &resp));
	T_EQ_INT(S3D_OK, t_get_object(key, &got));
	T_EQ_MEM(data, 3000, got.ptr, got.len);
	{
		s3d_obj_info info;

		memset(&info, 0, sizeof(info));
		T_EQ_INT(S3D_OK, s3d_head_object(t_svc.admin, t_svc.bucket, key, 0, &info, &err));
		T_EQ_INT(3000, info.size);
		T_EQ_STR(meta, info.meta_s3direct);
	}
	memset(&st, 0, sizeof(st));
	T_EQ_INT(S3D_OK, s3d_service_status(svc, "it/app", uuid, &st, &err));
	T_EQ_INT(3000, st.stored);
	T_EQ_INT(S3D_SESSION_PENDING, st.session.status);
	s3d_upload_status_cleanup(&st);

	/* a refresh: same session and key, a fresh URL */
	rq.now = time(NULL) + 5;
	T_EQ_INT(S3D_OK, presign(svc, &rq, &r, &err));
	T_EQ_STR(key, r.session.key);
	T_EQ_INT(s.created, r.session.created);
	T_EQ_INT(rq.now, r.session.updated);
	T_EQ_INT(S3D_OK, s3d_index_get(s3d_service_index(svc), uuid, &s, &err));
	T_EQ_INT(rq.now, s.updated);

	/* the refresh in two steps, as the Go middleware runs it: the commit is
	 * queued, the notification pipe tells when it is done */
	rq.now = time(NULL) + 6;
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_INVAL, s3d_service_presign_resume(svc, &rq, &r, &err)); /* none pending */
	T_EQ_INT(S3D_PENDING, s3d_service_presign_start(svc, &rq, &r, &err));
	T_TRUE(r.pending != NULL && r.ticket > 0);
	T_EQ_INT(S3D_E_INVAL, s3d_service_presign_start(svc, &rq, &r, &err)); /* one at a time */
	{
		s3d_index *ix = s3d_service_index(svc);
		struct pollfd pfd = { s3d_index_notify_fd(ix), POLLIN, 0 };
		char c;

		while (s3d_index_committed(ix) < r.ticket) {
			T_REQUIRE(poll(&pfd, 1, 10000) == 1);
			while (read(pfd.fd, &c, 1) == 1)
				;
		}
	}
	T_EQ_INT(S3D_OK, s3d_service_presign_resume(svc, &rq, &r, &err));
	T_TRUE(r.pending == NULL);
	T_EQ_STR(key, r.session.key);
	T_EQ_INT(rq.now, r.session.updated);
	T_TRUE(strstr(s3d_buf_str(&r.url), "X-Amz-Signature=") != NULL);
	T_TRUE(r.expires_at >= rq.now + 3600 - 1 && r.expires_at <= rq.now + 3600);
	T_EQ_INT(S3D_OK, s3d_index_get(s3d_service_index(svc), uuid, &s, &err));
	T_EQ_INT(rq.now, s.updated);
	/* a pending commit that is never resumed is collected by the cleanup */
	rq.now++;
	T_EQ_INT(S3D_PENDING, s3d_service_presign_start(svc, &rq, &r, &err));
	s3d_presign_result_cleanup(&r);
	s3d_presign_result_init(&r);
	T_EQ_INT(S3D_OK, s3d_index_get(s3d_service_index(svc), uuid, &s, &err));
	T_EQ_INT(rq.now, s.updated);

	s3d_buf_cleanup(&resp);
	s3d_buf_cleanup(&got);
	free(data);
	s3d_presign_result_cleanup(&r);
	s3d_service_free(svc);
}

/* A conditional marker write that S3 refuses (another ETag, or the marker
 * deleted meanwhile) is a conflict, whether or not the caller wants detail. */
static void test_marker_put_if_refused(void)
{
	s3d_service *svc = t_svc_open(drv, NULL);
	s3d_presign_request rq;
	s3d_presign_result r;
	s3d_session m;
	s3d_error err;
	char uuid[40], mk[256], etag[136];

	T_REQUIRE(svc);
	s3d_presign_result_init(&r);
	T_REQUIRE(t_stock_upload(drv, "it/marker", uuid) == 0);
	rq_init(&rq, "it/marker", uuid);
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	T_EQ_INT(S3D_OK, s3d_svc_marker_get_etag(svc, uuid, &m, etag, &err));
	T_EQ_INT(S3D_E_CONFLICT, s3d_svc_marker_put_if(svc, &m, "\"0123\"", NULL, &err));
	T_EQ_INT(S3D_E_CONFLICT, s3d_svc_marker_put_if(svc, &m, "\"0123\"", NULL, NULL));
	T_EQ_INT(S3D_OK, s3d_svc_marker_put_if(svc, &m, etag, etag, &err));
	marker_key(mk, sizeof(mk), uuid);
	T_EQ_INT(S3D_OK, s3d_delete_object(t_svc.admin, t_svc.bucket, mk, &err));
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_CONFLICT, s3d_svc_marker_put_if(svc, &m, etag, NULL, &err));
	T_TRUE(strstr(err.message, "changed in another registry process") != NULL);
	T_TRUE(!t_exists(mk)); /* nothing written */
	s3d_presign_result_cleanup(&r);
	s3d_service_free(svc);
}

/* One character of url changed: the signature's first hex digit, or the
 * character `back` places before the '?' (inside the key). */
static void tamper(char *url, int in_key, int back)
{
	char *p = in_key ? strchr(url, '?') : strstr(url, "X-Amz-Signature=");

	if (!p)
		return;
	p = in_key ? p - back : p + strlen("X-Amz-Signature=");
	*p = *p == '0' ? '1' : '0';
}

static void test_single_with_digest_is_direct(void)
{
	s3d_service *svc = t_svc_open(drv, NULL);
	s3d_presign_request rq;
	s3d_presign_result r;
	s3d_upload_status st;
	s3d_obj_info info;
	s3d_error err;
	s3d_buf resp, got;
	char uuid[40], digest[80], b64[64], key[256], meta[128], url[16384], other[256];
	uint8_t *data = t_make_pattern(4096, 21), *wrong = t_make_pattern(4096, 22);

	T_REQUIRE(svc && data && wrong);
	s3d_presign_result_init(&r);
	s3d_buf_init(&resp, 1 << 16);
	s3d_buf_init(&got, 1 << 20);
	t_digest_of(data, 4096, digest, b64);
	blob_key(key, sizeof(key), digest);
	T_REQUIRE(t_stock_upload(drv, "it/app", uuid) == 0);
	snprintf(meta, sizeof(meta), "session:%s", uuid);
	rq_init(&rq, "it/app", uuid);
	rq.digest = digest;
	rq.size = 4096;
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	T_EQ_INT(1, r.session.direct);
	T_EQ_STR(key, r.session.key);
	T_EQ_STR(digest, r.session.declared_digest);
	T_EQ_INT(4096, r.session.declared_size);
	T_EQ_STR("4096", header_of(&r, "content-length"));
	T_EQ_STR(b64, header_of(&r, "x-amz-checksum-sha256"));
	T_EQ_STR(meta, header_of(&r, "x-amz-meta-s3direct"));
	T_EQ_INT(3, r.nheaders);
	T_TRUE(strlen(s3d_buf_str(&r.url)) < sizeof(url));
	snprintf(url, sizeof(url), "%s", s3d_buf_str(&r.url));

	/* other bytes of the same length: S3 checks the signed checksum */
	T_EQ_INT(400, t_http_put(url, &r, NULL, wrong, 4096, &resp));
	fprintf(stderr, "    wrong bytes: %s\n", code_of(&resp));
	T_TRUE(!t_exists(key));
	/* the checksum header is signed: dropping it is refused too */
	T_EQ_INT(403, t_http_put(url, &r, "x-amz-checksum-sha256", wrong, 4096, &resp));
	T_TRUE(!t_exists(key));
	/* a shorter body than the signed length */
	{
		long code = t_http_put(url, &r, NULL, data, 4095, &resp);

		T_TRUE(code >= 400 && code < 500);
		T_TRUE(!t_exists(key));
	}
	/* nothing stored: status says so */
	memset(&st, 0, sizeof(st));
	T_EQ_INT(S3D_OK, s3d_service_status(svc, "it/app", uuid, &st, &err));
	T_EQ_INT(0, st.stored);
	s3d_upload_status_cleanup(&st);

	/* a tampered signature, a tampered key */
	tamper(url, 0, 0);
	T_EQ_INT(403, t_http_put(url, &r, NULL, data, 4096, &resp));
	T_TRUE(!t_exists(key));
	snprintf(url, sizeof(url), "%s", s3d_buf_str(&r.url));
	tamper(url, 1, 6); /* the last hex digit of the digest directory */
	T_EQ_INT(403, t_http_put(url, &r, NULL, data, 4096, &resp));
	/* the same character of the key: nothing there either */
	snprintf(other, sizeof(other), "%s", key);
	other[strlen(other) - 6] = key[strlen(key) - 6] == '0' ? '1' : '0';
	T_TRUE(!t_exists(other));
	T_TRUE(!t_exists(key));

	/* the right bytes land at the blob's key, stamped with the session */
	snprintf(url, sizeof(url), "%s", s3d_buf_str(&r.url));
	T_EQ_INT(200, t_http_put(url, &r, NULL, data, 4096, &resp));
	memset(&info, 0, sizeof(info));
	T_EQ_INT(S3D_OK, s3d_head_object(t_svc.admin, t_svc.bucket, key, 1, &info, &err));
	T_EQ_INT(4096, info.size);
	T_EQ_STR(meta, info.meta_s3direct);
	T_EQ_STR(b64, info.checksum_sha256);
	T_EQ_INT(S3D_OK, t_get_object(key, &got));
	T_EQ_MEM(data, 4096, got.ptr, got.len);
	memset(&st, 0, sizeof(st));
	T_EQ_INT(S3D_OK, s3d_service_status(svc, "it/app", uuid, &st, &err));
	T_EQ_INT(4096, st.stored);
	s3d_upload_status_cleanup(&st);

	/* a digest without a size, no quota: direct, length not signed */
	T_REQUIRE(t_stock_upload(drv, "it/app", uuid) == 0);
	rq_init(&rq, "it/app", uuid);
	rq.digest = digest;
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	T_EQ_INT(1, r.session.direct);
	T_EQ_STR(key, r.session.key);
	T_TRUE(header_of(&r, "content-length") == NULL);
	T_EQ_STR(b64, header_of(&r, "x-amz-checksum-sha256"));
	/* this session did not write the blob (another did): nothing stored */
	memset(&st, 0, sizeof(st));
	T_EQ_INT(S3D_OK, s3d_service_status(svc, "it/app", uuid, &st, &err));
	T_EQ_INT(0, st.stored);
	s3d_upload_status_cleanup(&st);
	/* a size declared in the second call but not the first: refused */
	rq.size = 4096;
	T_EQ_INT(S3D_E_STATE, presign(svc, &rq, &r, &err));

	s3d_buf_cleanup(&got);
	s3d_buf_cleanup(&resp);
	free(data);
	free(wrong);
	s3d_presign_result_cleanup(&r);
	s3d_service_free(svc);
}

/* The driver's object options apply to presigned objects too: signed, so a
 * client cannot drop them. */
static void test_driver_put_options_signed(void)
{
	s3d_driver_config dc;
	s3d_driver *d = NULL;
	s3d_service *svc;
	s3d_presign_request rq;
	s3d_presign_result r;
	s3d_error err;
	s3d_buf resp;
	char uuid[40], key[256];
	uint8_t data[10] = "0123456789";

	t_s3_driver_config(&dc, NULL, t_svc.bucket, ROOT);
	dc.put.storage_class = "STANDARD";
	T_REQUIRE(s3d_driver_new(&dc, &d, &err) == S3D_OK);
	svc = t_svc_open(d, NULL);
	T_REQUIRE(svc);
	s3d_presign_result_init(&r);
	s3d_buf_init(&resp, 1 << 16);
	T_REQUIRE(t_stock_upload(d, "it/app", uuid) == 0);
	rq_init(&rq, "it/app", uuid);
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	T_EQ_INT(2, r.nheaders);
	T_EQ_STR("STANDARD", header_of(&r, "x-amz-storage-class"));
	temp_key(key, sizeof(key), uuid);
	T_EQ_INT(403, t_http_put(s3d_buf_str(&r.url), &r, "x-amz-storage-class", data, 10, &resp));
	T_TRUE(!t_exists(key));
	T_EQ_INT(200, t_http_put(s3d_buf_str(&r.url), &r, NULL, data, 10, &resp));
	T_TRUE(t_exists(key));

	s3d_buf_cleanup(&resp);
	s3d_presign_result_cleanup(&r);
	s3d_service_free(svc);
	s3d_driver_free(d);
}

static void test_expired_urls(void)
{
	s3d_service_config cfg;
	s3d_service *svc = t_svc_open(drv, NULL), *short_svc;
	s3d_presign_request rq;
	s3d_presign_result r;
	s3d_upload_status st;
	s3d_error err;
	s3d_buf resp;
	char uuid[40], key[256];
	uint8_t data[64];
	time_t now;

	T_REQUIRE(svc);
	s3d_presign_result_init(&r);
	s3d_buf_init(&resp, 1 << 16);
	t_fill(data, sizeof(data), 9);

	/* signed two hours ago for one hour */
	T_REQUIRE(t_stock_upload(drv, "it/app", uuid) == 0);
	rq_init(&rq, "it/app", uuid);
	rq.now = time(NULL) - 7200;
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	T_EQ_INT(rq.now + 3600, r.expires_at);
	T_TRUE(r.expires_at < time(NULL));
	T_EQ_INT(403, t_http_put(s3d_buf_str(&r.url), &r, NULL, data, sizeof(data), &resp));
	fprintf(stderr, "    expired: %s\n", code_of(&resp));
	temp_key(key, sizeof(key), uuid);
	T_TRUE(!t_exists(key));
	/* a fresh one works */
	rq.now = 0;
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	T_EQ_INT(200, t_http_put(s3d_buf_str(&r.url), &r, NULL, data, sizeof(data), &resp));
	T_TRUE(t_exists(key));

	/* multipart URLs expire too */
	T_REQUIRE(t_stock_upload(drv, "it/app", uuid) == 0);
	rq_init(&rq, "it/app", uuid);
	rq_parts(&rq, 1, 1);
	rq.now = time(NULL) - 7200;
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	T_EQ_INT(403, t_http_put(t_part_url(&r, 0), NULL, NULL, data, sizeof(data), &resp));

	/* URLs never outlive the session; past its end: EXPIRED */
	t_svc_config(&cfg);
	cfg.session_ttl = 100;
	short_svc = t_svc_open(drv, &cfg);
	T_REQUIRE(short_svc);
	T_REQUIRE(t_stock_upload(drv, "it/app", uuid) == 0);
	now = time(NULL);
	rq_init(&rq, "it/app", uuid);
	rq.now = now;
	T_REQUIRE(presign(short_svc, &rq, &r, &err) == S3D_OK);
	T_EQ_INT(now + 100, r.expires_at);
	T_EQ_INT(now + 100, r.session.expires);
	rq.now = now + 60;
	T_REQUIRE(presign(short_svc, &rq, &r, &err) == S3D_OK);
	T_EQ_INT(now + 100, r.expires_at);
	rq.now = now + 100;
	T_EQ_INT(S3D_E_EXPIRED, presign(short_svc, &rq, &r, &err));
	T_TRUE(strstr(err.message, "expired") != NULL);
	/* status of a session past its end */
	rq_init(&rq, "it/app", uuid);
	T_REQUIRE(t_stock_upload(drv, "it/app", uuid) == 0);
	rq.now = time(NULL) - 200;
	T_REQUIRE(presign(short_svc, &rq, &r, &err) == S3D_OK);
	memset(&st, 0, sizeof(st));
	T_EQ_INT(S3D_E_EXPIRED, s3d_service_status(short_svc, "it/app", uuid, &st, &err));
	s3d_upload_status_cleanup(&st);
	rq.now = 0;
	T_EQ_INT(S3D_E_EXPIRED, presign(short_svc, &rq, &r, &err));

	s3d_buf_cleanup(&resp);
	s3d_presign_result_cleanup(&r);
	s3d_service_free(short_svc);
	s3d_service_free(svc);
}

/* ---- multipart ------------------------------------------------------------------ */

static void test_multipart(void)
{
	s3d_service_config cfg;
	s3d_service *svc;
	s3d_presign_request rq;
	s3d_presign_result r;
	s3d_upload_status st;
	s3d_error err;
	s3d_buf resp;
	char uuid[40], key[256], id[512], u3[16384];
	uint8_t *data = t_make_pattern(3000, 31);

	t_svc_config(&cfg);
	cfg.part_size = 5 * MiB;
	svc = t_svc_open(drv, &cfg);
	T_REQUIRE(svc && data);
	s3d_presign_result_init(&r);
	s3d_buf_init(&resp, 1 << 16);
	T_REQUIRE(t_stock_upload(drv, "it/app", uuid) == 0);
	temp_key(key, sizeof(key), uuid);

	rq_init(&rq, "it/app", uuid);
	rq_parts(&rq, 0, 2);
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	T_EQ_INT(S3D_SESSION_UPLOADING, r.session.status);
	T_EQ_INT(S3D_MODE_MULTIPART, r.session.mode);
	T_EQ_INT(0, r.session.direct);
	T_EQ_STR(key, r.session.key);
	T_TRUE(r.session.upload_id[0] != 0);
	T_EQ_INT(5 * MiB, r.part_size);
	T_EQ_INT(5 * MiB, r.session.part_size);
	T_EQ_INT(1, r.first_part);
	T_EQ_INT(2, r.nparts);
	T_EQ_INT(0, r.nheaders);
	T_EQ_STR("", s3d_buf_str(&r.url));
	T_TRUE(t_part_url(&r, 0) && strstr(t_part_url(&r, 0), "partNumber=1&") != NULL);
	T_TRUE(t_part_url(&r, 1) && strstr(t_part_url(&r, 1), "partNumber=2&") != NULL);
	T_TRUE(t_part_url(&r, 2) == NULL);
	/* exactly one upload opened, the recorded one */
	T_EQ_INT(1, t_s3_uploads_of(t_svc.admin, t_svc.bucket, key, id, sizeof(id)));
	T_EQ_STR(id, r.session.upload_id);

	/* part 1 */
	T_EQ_INT(200, t_http_put(t_part_url(&r, 0), NULL, NULL, data, 1000, &resp));

	/* more URLs: the same upload */
	rq_parts(&rq, 3, 2);
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	T_EQ_STR(id, r.session.upload_id);
	T_EQ_INT(3, r.first_part);
	T_EQ_INT(2, r.nparts);
	T_TRUE(t_part_url(&r, 0) && strstr(t_part_url(&r, 0), "partNumber=3&") != NULL);
	T_TRUE(t_part_url(&r, 1) && strstr(t_part_url(&r, 1), "partNumber=4&") != NULL);
	T_EQ_INT(1, t_s3_uploads_of(t_svc.admin, t_svc.bucket, key, NULL, 0));
	snprintf(u3, sizeof(u3), "%s", t_part_url(&r, 0));
	T_EQ_INT(200, t_http_put(u3, NULL, NULL, data + 1000, 500, &resp));

	memset(&st, 0, sizeof(st));
	T_REQUIRE(s3d_service_status(svc, "it/app", uuid, &st, &err) == S3D_OK);
	T_EQ_INT(S3D_SESSION_UPLOADING, st.session.status);
	T_EQ_INT(2, st.nparts);
	T_EQ_INT(1500, st.stored);
	if (st.nparts == 2) {
		T_EQ_INT(1, st.parts[0].number);
		T_EQ_INT(1000, st.parts[0].size);
		T_TRUE(st.parts[0].etag[0] != 0);
		T_EQ_INT(3, st.parts[1].number);
		T_EQ_INT(500, st.parts[1].size);
	}
	s3d_upload_status_cleanup(&st);

	/* a part sent again (client retry) replaces the first */
	rq_parts(&rq, 1, 1);
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	T_EQ_INT(200, t_http_put(t_part_url(&r, 0), NULL, NULL, data, 3000, &resp));
	memset(&st, 0, sizeof(st));
	T_REQUIRE(s3d_service_status(svc, "it/app", uuid, &st, &err) == S3D_OK);
	T_EQ_INT(2, st.nparts);
	T_EQ_INT(3500, st.stored);
	T_TRUE(st.nparts == 2 && st.parts[0].size == 3000);
	s3d_upload_status_cleanup(&st);

	/* the last part numbers */
	rq_parts(&rq, 9999, 2);
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	T_TRUE(t_part_url(&r, 1) && strstr(t_part_url(&r, 1), "partNumber=10000&") != NULL);
	/* a full page of 1000 URLs */
	rq_parts(&rq, 1, 1000);
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	T_EQ_INT(1000, r.nparts);
	T_TRUE(t_part_url(&r, 999) && strstr(t_part_url(&r, 999), "partNumber=1000&") != NULL);
	T_EQ_INT(1, t_s3_uploads_of(t_svc.admin, t_svc.bucket, key, NULL, 0));

	/* a declared size grows the part size to fit 10,000 parts (whole MiB) */
	T_REQUIRE(t_stock_upload(drv, "it/app", uuid) == 0);
	rq_init(&rq, "it/app", uuid);
	rq_parts(&rq, 1, 1);
	rq.size = 200 * 1024 * MiB;
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	T_EQ_INT(21 * MiB, r.part_size);
	T_EQ_INT(200 * 1024 * MiB, r.session.declared_size);
	/* part URLs sign no header: the client sends just the body */
	T_EQ_INT(0, r.nheaders);
	rq_parts(&rq, 2, 1);
	rq.size = -1; /* omitted: as opened */
	T_EQ_INT(S3D_OK, presign(svc, &rq, &r, &err));
	rq.size = 1;
	T_EQ_INT(S3D_E_STATE, presign(svc, &rq, &r, &err));

	s3d_buf_cleanup(&resp);
	free(data);
	s3d_presign_result_cleanup(&r);
	s3d_service_free(svc);
}

static void test_declarations_are_fixed(void)
{
	s3d_service *svc = t_svc_open(drv, NULL);
	s3d_presign_request rq;
	s3d_presign_result r;
	s3d_error err;
	char uuid[40], uuid2[40], d1[80], d2[80];
	uint8_t a[10], b[10];

	T_REQUIRE(svc);
	s3d_presign_result_init(&r);
	t_fill(a, sizeof(a), 1);
	t_fill(b, sizeof(b), 2);
	t_digest_of(a, sizeof(a), d1, NULL);
	t_digest_of(b, sizeof(b), d2, NULL);

	/* single, then multipart */
	T_REQUIRE(t_stock_upload(drv, "it/app", uuid) == 0);
	rq_init(&rq, "it/app", uuid);
	rq.digest = d1;
	rq.size = 10;
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	rq_parts(&rq, 1, 1);
	T_EQ_INT(S3D_E_STATE, presign(svc, &rq, &r, &err));
	T_TRUE(strstr(err.message, "single") != NULL);
	rq.multipart = 0;
	rq.digest = d2;
	T_EQ_INT(S3D_E_STATE, presign(svc, &rq, &r, &err));
	T_TRUE(strstr(err.message, d1) != NULL);
	rq.digest = d1;
	rq.size = 11;
	T_EQ_INT(S3D_E_STATE, presign(svc, &rq, &r, &err));
	/* omitted: as opened */
	rq.digest = NULL;
	rq.size = -1;
	T_EQ_INT(S3D_OK, presign(svc, &rq, &r, &err));
	T_EQ_STR(d1, r.session.declared_digest);
	T_EQ_STR("10", header_of(&r, "content-length"));
	T_TRUE(header_of(&r, "x-amz-checksum-sha256") != NULL);

	/* multipart, then single */
	T_REQUIRE(t_stock_upload(drv, "it/app", uuid2) == 0);
	rq_init(&rq, "it/app", uuid2);
	rq_parts(&rq, 1, 1);
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	rq.multipart = 0;
	T_EQ_INT(S3D_E_STATE, presign(svc, &rq, &r, &err));
	T_TRUE(strstr(err.message, "multipart") != NULL);
	/* a digest declared later than the first call */
	rq_parts(&rq, 1, 1);
	rq.digest = d1;
	T_EQ_INT(S3D_E_STATE, presign(svc, &rq, &r, &err));

	s3d_presign_result_cleanup(&r);
	s3d_service_free(svc);
}

static void test_wrong_repository(void)
{
	s3d_service *svc = t_svc_open(drv, NULL);
	s3d_presign_request rq;
	s3d_presign_result r;
	s3d_upload_status st;
	s3d_session s;
	s3d_error err;
	char uuid[40];

	T_REQUIRE(svc);
	s3d_presign_result_init(&r);
	T_REQUIRE(t_stock_upload(drv, "it/app", uuid) == 0);
	rq_init(&rq, "it/app", uuid);
	rq_parts(&rq, 1, 1);
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);

	rq.repo = "it/other";
	T_EQ_INT(S3D_E_NOTFOUND, presign(svc, &rq, &r, &err));
	rq.repo = "it/app/sub";
	T_EQ_INT(S3D_E_NOTFOUND, presign(svc, &rq, &r, &err));
	memset(&st, 0, sizeof(st));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_service_status(svc, "it/other", uuid, &st, &err));
	s3d_upload_status_cleanup(&st);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_service_lookup(svc, "it/other", uuid, &s, &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_service_lookup(svc, NULL, uuid, &s, &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_service_cancel(svc, "it/other", uuid, &err));
	/* and the session is untouched */
	T_EQ_INT(S3D_OK, s3d_service_lookup(svc, "it/app", uuid, &s, &err));
	T_EQ_INT(S3D_SESSION_UPLOADING, s.status);
	T_EQ_INT(1, t_s3_uploads_of(t_svc.admin, t_svc.bucket, s.key, NULL, 0));

	s3d_presign_result_cleanup(&r);
	s3d_service_free(svc);
}

/* ---- cancel ------------------------------------------------------------------------ */

static void test_cancel(void)
{
	s3d_service *svc = t_svc_open(drv, NULL);
	s3d_presign_request rq;
	s3d_presign_result r;
	s3d_upload_status st;
	s3d_session s;
	s3d_stat sst;
	s3d_error err;
	s3d_buf resp;
	char uuid[40], uuid2[40], uuid3[40], key[256], mk[256], path[512], digest[80],
		bkey[256], part2[16384];
	uint8_t data[2000];

	T_REQUIRE(svc);
	s3d_presign_result_init(&r);
	s3d_buf_init(&resp, 1 << 16);
	t_fill(data, sizeof(data), 41);

	/* multipart with a part stored */
	T_REQUIRE(t_stock_upload(drv, "it/app", uuid) == 0);
	rq_init(&rq, "it/app", uuid);
	rq_parts(&rq, 1, 2);
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	T_EQ_INT(200, t_http_put(t_part_url(&r, 0), NULL, NULL, data, 1000, &resp));
	snprintf(part2, sizeof(part2), "%s", t_part_url(&r, 1));
	temp_key(key, sizeof(key), uuid);
	marker_key(mk, sizeof(mk), uuid);
	T_EQ_INT(1, t_s3_uploads_of(t_svc.admin, t_svc.bucket, key, NULL, 0));
	T_TRUE(t_exists(mk));

	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_service_cancel(svc, "it/app", uuid, &err));
	T_EQ_INT(0, t_s3_uploads_of(t_svc.admin, t_svc.bucket, key, NULL, 0));
	T_EQ_INT(0, t_uploads_under(key));
	T_EQ_INT(0, t_objects_under(key));
	T_TRUE(!t_exists(mk));
	t_upload_path(path, sizeof(path), "it/app", uuid, "startedat");
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_stat(drv, path, &sst, &err));
	T_EQ_INT(S3D_OK, s3d_index_get(s3d_service_index(svc), uuid, &s, &err));
	T_EQ_INT(S3D_SESSION_CANCELLED, s.status);
	/* the URLs handed out are dead */
	T_EQ_INT(404, t_http_put(part2, NULL, NULL, data, 1000, &resp));
	/* and the session is unknown from then on */
	rq_parts(&rq, 1, 1);
	T_EQ_INT(S3D_E_NOTFOUND, presign(svc, &rq, &r, &err));
	rq.multipart = 0;
	T_EQ_INT(S3D_E_NOTFOUND, presign(svc, &rq, &r, &err));
	memset(&st, 0, sizeof(st));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_service_status(svc, "it/app", uuid, &st, &err));
	s3d_upload_status_cleanup(&st);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_service_cancel(svc, "it/app", uuid, &err));

	/* single with bytes at the temp key */
	T_REQUIRE(t_stock_upload(drv, "it/app", uuid2) == 0);
	rq_init(&rq, "it/app", uuid2);
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	T_EQ_INT(200, t_http_put(s3d_buf_str(&r.url), &r, NULL, data, sizeof(data), &resp));
	temp_key(key, sizeof(key), uuid2);
	T_TRUE(t_exists(key));
	T_EQ_INT(S3D_OK, s3d_service_cancel(svc, "it/app", uuid2, &err));
	T_TRUE(!t_exists(key));
	marker_key(mk, sizeof(mk), uuid2);
	T_TRUE(!t_exists(mk));
	T_EQ_INT(S3D_E_NOTFOUND, presign(svc, &rq, &r, &err));

	/* a direct upload's key is a blob: cancel leaves it */
	T_REQUIRE(t_stock_upload(drv, "it/app", uuid3) == 0);
	t_digest_of(data, sizeof(data), digest, NULL);
	blob_key(bkey, sizeof(bkey), digest);
	rq_init(&rq, "it/app", uuid3);
	rq.digest = digest;
	rq.size = sizeof(data);
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	T_EQ_INT(200, t_http_put(s3d_buf_str(&r.url), &r, NULL, data, sizeof(data), &resp));
	T_EQ_INT(S3D_OK, s3d_service_cancel(svc, "it/app", uuid3, &err));
	T_TRUE(t_exists(bkey));
	marker_key(mk, sizeof(mk), uuid3);
	T_TRUE(!t_exists(mk));

	/* a stock upload that was never presigned is no session to cancel */
	T_REQUIRE(t_stock_upload(drv, "it/app", uuid3) == 0);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_service_cancel(svc, "it/app", uuid3, &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_service_status(svc, "it/app", uuid3, &st, &err));
	t_upload_path(path, sizeof(path), "it/app", uuid3, "startedat");
	T_EQ_INT(S3D_OK, s3d_driver_stat(drv, path, &sst, &err));

	s3d_buf_cleanup(&resp);
	s3d_presign_result_cleanup(&r);
	s3d_service_free(svc);
}

/* ---- several registry processes ------------------------------------------------------ */

static void test_second_instance(void)
{
	s3d_service *a = t_svc_open(drv, NULL), *b = t_svc_open(drv2, NULL);
	s3d_presign_request rq;
	s3d_presign_result r;
	s3d_upload_status st;
	s3d_session s;
	s3d_error err;
	s3d_buf resp;
	char mp[40], single[40], key[256], id[512];
	uint8_t data[1500];

	T_REQUIRE(a && b);
	s3d_presign_result_init(&r);
	s3d_buf_init(&resp, 1 << 16);
	t_fill(data, sizeof(data), 51);

	/* a opens a multipart session and stores part 1 */
	T_REQUIRE(t_stock_upload(drv, "it/app", mp) == 0);
	rq_init(&rq, "it/app", mp);
	rq_parts(&rq, 1, 1);
	T_REQUIRE(presign(a, &rq, &r, &err) == S3D_OK);
	snprintf(id, sizeof(id), "%s", r.session.upload_id);
	T_EQ_INT(200, t_http_put(t_part_url(&r, 0), NULL, NULL, data, 1000, &resp));

	/* b knows nothing locally, finds it through the marker, caches it */
	T_EQ_INT(S3D_E_NOTFOUND, s3d_index_get(s3d_service_index(b), mp, &s, &err));
	T_EQ_INT(S3D_OK, s3d_service_lookup(b, "it/app", mp, &s, &err));
	T_EQ_STR(id, s.upload_id);
	T_EQ_INT(S3D_SESSION_UPLOADING, s.status);
	T_EQ_INT(S3D_OK, s3d_index_get(s3d_service_index(b), mp, &s, &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_service_lookup(b, "it/other", mp, &s, &err));
	memset(&st, 0, sizeof(st));
	T_EQ_INT(S3D_OK, s3d_service_status(b, "it/app", mp, &st, &err));
	T_EQ_INT(1, st.nparts);
	T_EQ_INT(1000, st.stored);
	s3d_upload_status_cleanup(&st);
	/* b hands out further parts of the same upload */
	rq_parts(&rq, 2, 1);
	T_REQUIRE(presign(b, &rq, &r, &err) == S3D_OK);
	T_EQ_STR(id, r.session.upload_id);
	T_EQ_INT(200, t_http_put(t_part_url(&r, 0), NULL, NULL, data + 1000, 500, &resp));
	temp_key(key, sizeof(key), mp);
	T_EQ_INT(1, t_s3_uploads_of(t_svc.admin, t_svc.bucket, key, NULL, 0));
	memset(&st, 0, sizeof(st));
	T_EQ_INT(S3D_OK, s3d_service_status(a, "it/app", mp, &st, &err));
	T_EQ_INT(2, st.nparts);
	T_EQ_INT(1500, st.stored);
	s3d_upload_status_cleanup(&st);

	/* a single session opened by a, presigned and used through b */
	T_REQUIRE(t_stock_upload(drv, "it/app", single) == 0);
	rq_init(&rq, "it/app", single);
	T_REQUIRE(presign(a, &rq, &r, &err) == S3D_OK);
	T_REQUIRE(presign(b, &rq, &r, &err) == S3D_OK);
	temp_key(key, sizeof(key), single);
	T_EQ_STR(key, r.session.key);
	T_EQ_INT(200, t_http_put(s3d_buf_str(&r.url), &r, NULL, data, sizeof(data), &resp));
	memset(&st, 0, sizeof(st));
	T_EQ_INT(S3D_OK, s3d_service_status(a, "it/app", single, &st, &err));
	T_EQ_INT(1500, st.stored);
	s3d_upload_status_cleanup(&st);
	/* b cannot change what a opened */
	rq_parts(&rq, 1, 1);
	T_EQ_INT(S3D_E_STATE, presign(b, &rq, &r, &err));

	/* b cancels. a's presign answers from its index (no S3 round trip on
	 * the hot path): the URLs it still hands out lead to the aborted
	 * upload, which S3 refuses; status, cancel and finalize follow S3 */
	T_EQ_INT(S3D_OK, s3d_service_cancel(b, "it/app", mp, &err));
	temp_key(key, sizeof(key), mp);
	T_EQ_INT(0, t_uploads_under(key));
	rq_init(&rq, "it/app", mp);
	rq_parts(&rq, 3, 1);
	T_EQ_INT(S3D_OK, presign(a, &rq, &r, &err));
	T_EQ_INT(404, t_http_put(t_part_url(&r, 0), NULL, NULL, "x", 1, &resp));
	T_EQ_INT(0, t_uploads_under(key));
	memset(&st, 0, sizeof(st));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_service_status(a, "it/app", mp, &st, &err));
	s3d_upload_status_cleanup(&st);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_service_cancel(a, "it/app", mp, &err));
	/* the same for the single session, cancelled by a this time */
	T_EQ_INT(S3D_OK, s3d_service_cancel(a, "it/app", single, &err));
	memset(&st, 0, sizeof(st));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_service_status(b, "it/app", single, &st, &err));
	s3d_upload_status_cleanup(&st);
	{
		s3d_finalize_result fr;

		T_EQ_INT(S3D_E_NOTFOUND, s3d_service_finalize(b, "it/app", single,
			 "sha256:0000000000000000000000000000000000000000000000000000000000000000",
			 0, &fr, &err));
	}

	s3d_buf_cleanup(&resp);
	s3d_presign_result_cleanup(&r);
	s3d_service_free(b);
	s3d_service_free(a);
}

/* ---- main -------------------------------------------------------------------------- */

int main(void)
{
	int rc = 1;

	if (t_svc_begin("presign", "pre") != 0)
		return 1;
	drv = t_svc_driver(NULL, ROOT);
	drv2 = t_svc_driver(NULL, ROOT);
	if (!drv || !drv2) {
		printf("presign: 0 passed, 1 failed\n");
		goto out;
	}
	T_RUN(test_hostile_arguments);
	T_RUN(test_refused_without_fresh_stock_upload);
	T_RUN(test_quota_refusals);
	T_RUN(test_single_without_digest);
	T_RUN(test_marker_put_if_refused);
	T_RUN(test_single_with_digest_is_direct);
	T_RUN(test_driver_put_options_signed);
	T_RUN(test_expired_urls);
	T_RUN(test_multipart);
	T_RUN(test_declarations_are_fixed);
	T_RUN(test_wrong_repository);
	T_RUN(test_cancel);
	T_RUN(test_second_instance);
	rc = t_done("presign");
out:
	s3d_driver_free(drv2);
	s3d_driver_free(drv);
	t_svc_end();
	return rc;
}
