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

#include "driver.h"
#include "s3direct.h"
#include "service.h"
#include "upload.h"

#include <curl/curl.h>
#include <ftw.h>
#include <limits.h>
#include <sys/stat.h>

#define ROOT "reg"
#define MiB (1024ll * 1024)

static char bucket[64];
static char tmproot[PATH_MAX - 64];
static s3d_client *admin;   /* plain client for checks */
static s3d_driver *drv;     /* the registry's driver */
static s3d_driver *drv2;    /* a second registry process's driver */
static int svc_seq;

/* ---- helpers ---------------------------------------------------------------- */

static void new_uuid(char out[40])
{
	uint8_t r[16];

	if (RAND_bytes(r, sizeof(r)) != 1)
		memset(r, 0x5a, sizeof(r));
	snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
		 r[12], r[13], r[14], r[15]);
}

static void svc_config(s3d_service_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->index.no_sync = 1;
}

/* A service on d with cfg (NULL: defaults) and a fresh index directory. */
static s3d_service *open_svc_on(s3d_driver *d, const s3d_service_config *cfg)
{
	s3d_service_config c;
	s3d_service *svc = NULL;
	s3d_error err;
	char path[PATH_MAX];

	if (cfg)
		c = *cfg;
	else
		svc_config(&c);
	snprintf(path, sizeof(path), "%s/index-%d", tmproot, ++svc_seq);
	c.index.path = path;
	s3d_error_clear(&err);
	if (s3d_service_new(d, &c, &svc, &err) != S3D_OK) {
		fprintf(stderr, "  service_new: %s\n", err.message);
		return NULL;
	}
	return svc;
}

static s3d_service *open_svc(const s3d_service_config *cfg)
{
	return open_svc_on(drv, cfg);
}

static void data_path(char *out, size_t cap, const char *repo, const char *uuid,
		      const char *name)
{
	snprintf(out, cap, "/docker/registry/v2/repositories/%s/_uploads/%s/%s", repo, uuid,
		 name);
}

/* The stock POST: distribution writes startedat. 0 on success. */
static int stock_upload(const char *repo, char uuid[40])
{
	char path[512];
	const char *t = "2026-01-01T00:00:00.000000000Z";
	s3d_error err;

	new_uuid(uuid);
	data_path(path, sizeof(path), repo, uuid, "startedat");
	return s3d_driver_put_content(drv, path, t, strlen(t), &err) == S3D_OK ? 0 : -1;
}

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

/* Part URL i (0-based) of a multipart result, or NULL. */
static const char *part_url(const s3d_presign_result *r, int i)
{
	const char *p = (const char *)r->part_urls.ptr;
	int k;

	if (!p || i < 0 || i >= r->nparts)
		return NULL;
	for (k = 0; k < i; k++)
		p += strlen(p) + 1;
	return p;
}

struct put_src {
	const uint8_t *p;
	size_t n, off;
};

static size_t put_read(char *buf, size_t size, size_t nmemb, void *ud)
{
	struct put_src *s = ud;
	size_t n = size * nmemb;

	if (n > s->n - s->off)
		n = s->n - s->off;
	memcpy(buf, s->p + s->off, n);
	s->off += n;
	return n;
}

static size_t resp_sink(char *p, size_t size, size_t nmemb, void *ud)
{
	s3d_buf_append(ud, p, size * nmemb); /* bounded: a long answer is cut */
	return size * nmemb;
}

/*
 * A plain client's PUT of len bytes to url with the headers of r (NULL: none)
 * but skip (may be NULL); curl sets Content-Length from the body. The HTTP
 * status, or -1 when the transfer failed; the answer's body into resp.
 */
static long http_put(const char *url, const s3d_presign_result *r, const char *skip,
		     const void *data, size_t len, s3d_buf *resp)
{
	struct curl_slist *h = NULL, *t;
	struct put_src src = { data, len, 0 };
	const char *p = r ? (const char *)r->headers.ptr : NULL;
	char line[1024];
	long status = -1;
	size_t i;
	CURL *c = curl_easy_init();

	if (!c)
		return -1;
	if (resp)
		s3d_buf_reset(resp);
	for (i = 0; p && i < r->nheaders; i++) {
		const char *v = p + strlen(p) + 1;

		if (strcmp(p, "content-length") != 0 && (!skip || strcmp(p, skip) != 0)) {
			snprintf(line, sizeof(line), "%s: %s", p, v);
			t = curl_slist_append(h, line);
			if (!t)
				goto out;
			h = t;
		}
		p = v + strlen(v) + 1;
	}
	t = curl_slist_append(h, "Expect:");
	if (!t)
		goto out;
	h = t;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, put_read);
	curl_easy_setopt(c, CURLOPT_READDATA, &src);
	curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, resp_sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	if (!resp)
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, NULL);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
out:
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return status;
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

/* Whether key exists (HEAD). */
static int exists(const char *key)
{
	s3d_error err;

	return s3d_head_object(admin, bucket, key, 0, NULL, &err) == S3D_OK;
}

/* Object count below prefix, -1 on error. */
static int objects_under(const char *prefix)
{
	s3d_list_opts o;
	s3d_error err;
	int n = 0;

	memset(&o, 0, sizeof(o));
	o.prefix = prefix;
	return s3d_list_objects(admin, bucket, &o, t_count_entry, &n, &err) == S3D_OK ? n : -1;
}

/* Multipart uploads whose key starts with prefix, -1 on error. */
struct up_count {
	const char *prefix;
	int n;
};

static int count_upload(void *ud, const s3d_list_entry *e)
{
	struct up_count *u = ud;

	if (e->kind == S3D_ENTRY_UPLOAD && strncmp(e->key, u->prefix, strlen(u->prefix)) == 0)
		u->n++;
	return 0;
}

static int uploads_under(const char *prefix)
{
	struct up_count u = { prefix, 0 };
	s3d_list_opts o;
	s3d_error err;

	memset(&o, 0, sizeof(o));
	o.prefix = prefix;
	return s3d_list_multipart_uploads(admin, bucket, &o, count_upload, &u, &err) == S3D_OK
		       ? u.n
		       : -1;
}

static void temp_key(char *out, size_t cap, const char *uuid)
{
	snprintf(out, cap, ROOT "/_s3direct/uploads/%s", uuid);
}

static void marker_key(char *out, size_t cap, const char *uuid)
{
	snprintf(out, cap, ROOT "/_s3direct/sessions/%s", uuid);
}

static void digest_of(const void *p, size_t n, char out[80], char b64[64])
{
	uint8_t md[32];
	int i;

	t_sha256(p, n, md);
	strcpy(out, "sha256:");
	for (i = 0; i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
	if (b64)
		t_sha256_b64(p, n, b64);
}

static void blob_key(char *out, size_t cap, const char *digest)
{
	snprintf(out, cap, ROOT "/docker/registry/v2/blobs/sha256/%.2s/%s/data", digest + 7,
		 digest + 7);
}

static int collect(void *ud, const uint8_t *p, size_t n)
{
	return s3d_buf_append(ud, p, n) != S3D_OK;
}

/* The whole object at key into out (reset first). */
static int get_obj(const char *key, s3d_buf *out)
{
	s3d_error err;

	s3d_buf_reset(out);
	return s3d_get_object(admin, bucket, key, 0, -1, collect, out, NULL, &err);
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

	data_path(path, sizeof(path), repo, uuid, "data");
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
	s3d_service *svc = open_svc(NULL);
	s3d_presign_request rq;
	s3d_presign_result r;
	s3d_upload_status st;
	s3d_session s;
	s3d_error err;
	char uuid[40], longname[300];

	T_REQUIRE(svc);
	T_REQUIRE(stock_upload("it/app", uuid) == 0);
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
		T_TRUE(!exists(mk));
	}
	s3d_presign_result_cleanup(&r);
	s3d_service_free(svc);
	s3d_service_free(NULL);
}

static void test_refused_without_fresh_stock_upload(void)
{
	s3d_service *svc = open_svc(NULL);
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
	new_uuid(uuid);
	rq_init(&rq, "it/app", uuid);
	T_EQ_INT(S3D_E_NOTFOUND, presign(svc, &rq, &r, &err));
	T_TRUE(err.message[0] != 0);
	rq_parts(&rq, 1, 1);
	T_EQ_INT(S3D_E_NOTFOUND, presign(svc, &rq, &r, &err));

	/* the stock upload of another repository */
	T_REQUIRE(stock_upload("it/app", uuid) == 0);
	rq_init(&rq, "it/other", uuid);
	T_EQ_INT(S3D_E_NOTFOUND, presign(svc, &rq, &r, &err));

	/* PATCH data in a tail object (under 5 MiB, closed) */
	T_REQUIRE(stock_upload("it/app", uuid) == 0);
	T_REQUIRE(patch_data("it/app", uuid, 1000, 0) == S3D_OK);
	rq_init(&rq, "it/app", uuid);
	T_EQ_INT(S3D_E_STATE, presign(svc, &rq, &r, &err));
	T_TRUE(strstr(err.message, "PATCH") != NULL);
	rq_parts(&rq, 1, 2);
	T_EQ_INT(S3D_E_STATE, presign(svc, &rq, &r, &err));

	/* PATCH data committed as the data object */
	T_REQUIRE(stock_upload("it/app", uuid) == 0);
	T_REQUIRE(patch_data("it/app", uuid, 10, 1) == S3D_OK);
	rq_init(&rq, "it/app", uuid);
	T_EQ_INT(S3D_E_STATE, presign(svc, &rq, &r, &err));

	/* PATCH data as parts of the writer's multipart upload, no tail */
	T_REQUIRE(stock_upload("it/app", uuid) == 0);
	T_REQUIRE(patch_data("it/app", uuid, (size_t)(10 * MiB), 0) == S3D_OK);
	data_path(path, sizeof(path), "it/app", uuid, "data");
	T_REQUIRE(s3d_driver_key(drv, path, &k) == S3D_OK);
	T_EQ_INT(1, t_s3_uploads_of(admin, bucket, s3d_buf_str(&k), NULL, 0));
	T_REQUIRE(s3d_upload_tail_key(drv, s3d_buf_str(&k), &tk) == S3D_OK);
	snprintf(tail, sizeof(tail), "%s", s3d_buf_str(&tk));
	s3d_delete_object(admin, bucket, tail, &err);
	T_TRUE(!exists(tail));
	T_EQ_INT(S3D_E_STATE, presign(svc, &rq, &r, &err));
	/* the probe changed nothing: the writer's upload is still there */
	T_EQ_INT(1, t_s3_uploads_of(admin, bucket, s3d_buf_str(&k), NULL, 0));

	/* the stock POST's empty data file is no PATCH data */
	T_REQUIRE(stock_upload("it/app", uuid) == 0);
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

	svc_config(&cfg);
	cfg.max_blob_size = 1000;
	svc = open_svc(&cfg);
	T_REQUIRE(svc);
	s3d_presign_result_init(&r);
	T_REQUIRE(stock_upload("it/app", uuid) == 0);
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
	T_REQUIRE(stock_upload("it/app", uuid) == 0);
	t_fill(data, sizeof(data), 5);
	digest_of(data, sizeof(data), digest, NULL);
	rq_init(&rq, "it/app", uuid);
	rq.digest = digest;
	T_EQ_INT(S3D_OK, presign(svc, &rq, &r, &err));
	T_EQ_INT(0, r.session.direct);
	temp_key(key, sizeof(key), uuid);
	T_EQ_STR(key, r.session.key);
	T_TRUE(header_of(&r, "x-amz-checksum-sha256") != NULL);
	T_TRUE(header_of(&r, "content-length") == NULL);
	T_EQ_INT(200, http_put(s3d_buf_str(&r.url), &r, NULL, data, sizeof(data), NULL));
	T_TRUE(exists(key));

	s3d_service_free(svc);

	/* a repository quota: blobs linked so far count */
	svc_config(&cfg);
	cfg.repo_quota = 1000;
	svc = open_svc(&cfg);
	T_REQUIRE(svc);
	T_REQUIRE(stock_upload("it/quota", uuid) == 0);
	rq_init(&rq, "it/quota", uuid);
	rq.size = 1001;
	T_EQ_INT(S3D_E_QUOTA, presign(svc, &rq, &r, &err));
	T_TRUE(strstr(err.message, "repoquota") != NULL);
	{
		char blob[256], link[256];
		uint8_t linked[600];

		t_fill(linked, sizeof(linked), 6);
		digest_of(linked, sizeof(linked), digest, NULL);
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
	T_REQUIRE(stock_upload("it/app", uuid) == 0);
	rq.repo = "it/app";
	T_EQ_INT(S3D_OK, presign(svc, &rq, &r, &err));
	T_REQUIRE(stock_upload("it/quota", uuid) == 0);
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
	s3d_service *svc = open_svc(NULL);
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
	T_REQUIRE(stock_upload("it/app", uuid) == 0);
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
	T_TRUE(exists(mk));
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
	T_EQ_INT(403, http_put(s3d_buf_str(&r.url), &r, "x-amz-meta-s3direct", data, 3000, &resp));
	T_TRUE(!exists(key));

	T_EQ_INT(200, http_put(s3d_buf_str(&r.url), &r, NULL, data, 3000, &resp));
	T_EQ_INT(S3D_OK, get_obj(key, &got));
	T_EQ_MEM(data, 3000, got.ptr, got.len);
	{
		s3d_obj_info info;

		memset(&info, 0, sizeof(info));
		T_EQ_INT(S3D_OK, s3d_head_object(admin, bucket, key, 0, &info, &err));
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

	s3d_buf_cleanup(&resp);
	s3d_buf_cleanup(&got);
	free(data);
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
	s3d_service *svc = open_svc(NULL);
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
	digest_of(data, 4096, digest, b64);
	blob_key(key, sizeof(key), digest);
	T_REQUIRE(stock_upload("it/app", uuid) == 0);
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
	T_EQ_INT(400, http_put(url, &r, NULL, wrong, 4096, &resp));
	fprintf(stderr, "    wrong bytes: %s\n", code_of(&resp));
	T_TRUE(!exists(key));
	/* the checksum header is signed: dropping it is refused too */
	T_EQ_INT(403, http_put(url, &r, "x-amz-checksum-sha256", wrong, 4096, &resp));
	T_TRUE(!exists(key));
	/* a shorter body than the signed length */
	{
		long code = http_put(url, &r, NULL, data, 4095, &resp);

		T_TRUE(code >= 400 && code < 500);
		T_TRUE(!exists(key));
	}
	/* nothing stored: status says so */
	memset(&st, 0, sizeof(st));
	T_EQ_INT(S3D_OK, s3d_service_status(svc, "it/app", uuid, &st, &err));
	T_EQ_INT(0, st.stored);
	s3d_upload_status_cleanup(&st);

	/* a tampered signature, a tampered key */
	tamper(url, 0, 0);
	T_EQ_INT(403, http_put(url, &r, NULL, data, 4096, &resp));
	T_TRUE(!exists(key));
	snprintf(url, sizeof(url), "%s", s3d_buf_str(&r.url));
	tamper(url, 1, 6); /* the last hex digit of the digest directory */
	T_EQ_INT(403, http_put(url, &r, NULL, data, 4096, &resp));
	/* the same character of the key: nothing there either */
	snprintf(other, sizeof(other), "%s", key);
	other[strlen(other) - 6] = key[strlen(key) - 6] == '0' ? '1' : '0';
	T_TRUE(!exists(other));
	T_TRUE(!exists(key));

	/* the right bytes land at the blob's key, stamped with the session */
	snprintf(url, sizeof(url), "%s", s3d_buf_str(&r.url));
	T_EQ_INT(200, http_put(url, &r, NULL, data, 4096, &resp));
	memset(&info, 0, sizeof(info));
	T_EQ_INT(S3D_OK, s3d_head_object(admin, bucket, key, 1, &info, &err));
	T_EQ_INT(4096, info.size);
	T_EQ_STR(meta, info.meta_s3direct);
	T_EQ_STR(b64, info.checksum_sha256);
	T_EQ_INT(S3D_OK, get_obj(key, &got));
	T_EQ_MEM(data, 4096, got.ptr, got.len);
	memset(&st, 0, sizeof(st));
	T_EQ_INT(S3D_OK, s3d_service_status(svc, "it/app", uuid, &st, &err));
	T_EQ_INT(4096, st.stored);
	s3d_upload_status_cleanup(&st);

	/* a digest without a size, no quota: direct, length not signed */
	T_REQUIRE(stock_upload("it/app", uuid) == 0);
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
	char uuid[40], key[256], path[512];
	const char *t = "2026-01-01T00:00:00Z";
	uint8_t data[10] = "0123456789";

	t_s3_driver_config(&dc, NULL, bucket, ROOT);
	dc.put.storage_class = "STANDARD";
	T_REQUIRE(s3d_driver_new(&dc, &d, &err) == S3D_OK);
	svc = open_svc_on(d, NULL);
	T_REQUIRE(svc);
	s3d_presign_result_init(&r);
	s3d_buf_init(&resp, 1 << 16);
	new_uuid(uuid);
	data_path(path, sizeof(path), "it/app", uuid, "startedat");
	T_REQUIRE(s3d_driver_put_content(d, path, t, strlen(t), &err) == S3D_OK);
	rq_init(&rq, "it/app", uuid);
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	T_EQ_INT(2, r.nheaders);
	T_EQ_STR("STANDARD", header_of(&r, "x-amz-storage-class"));
	temp_key(key, sizeof(key), uuid);
	T_EQ_INT(403, http_put(s3d_buf_str(&r.url), &r, "x-amz-storage-class", data, 10, &resp));
	T_TRUE(!exists(key));
	T_EQ_INT(200, http_put(s3d_buf_str(&r.url), &r, NULL, data, 10, &resp));
	T_TRUE(exists(key));

	s3d_buf_cleanup(&resp);
	s3d_presign_result_cleanup(&r);
	s3d_service_free(svc);
	s3d_driver_free(d);
}

static void test_expired_urls(void)
{
	s3d_service_config cfg;
	s3d_service *svc = open_svc(NULL), *short_svc;
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
	T_REQUIRE(stock_upload("it/app", uuid) == 0);
	rq_init(&rq, "it/app", uuid);
	rq.now = time(NULL) - 7200;
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	T_EQ_INT(rq.now + 3600, r.expires_at);
	T_TRUE(r.expires_at < time(NULL));
	T_EQ_INT(403, http_put(s3d_buf_str(&r.url), &r, NULL, data, sizeof(data), &resp));
	fprintf(stderr, "    expired: %s\n", code_of(&resp));
	temp_key(key, sizeof(key), uuid);
	T_TRUE(!exists(key));
	/* a fresh one works */
	rq.now = 0;
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	T_EQ_INT(200, http_put(s3d_buf_str(&r.url), &r, NULL, data, sizeof(data), &resp));
	T_TRUE(exists(key));

	/* multipart URLs expire too */
	T_REQUIRE(stock_upload("it/app", uuid) == 0);
	rq_init(&rq, "it/app", uuid);
	rq_parts(&rq, 1, 1);
	rq.now = time(NULL) - 7200;
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	T_EQ_INT(403, http_put(part_url(&r, 0), NULL, NULL, data, sizeof(data), &resp));

	/* URLs never outlive the session; past its end: EXPIRED */
	svc_config(&cfg);
	cfg.session_ttl = 100;
	short_svc = open_svc(&cfg);
	T_REQUIRE(short_svc);
	T_REQUIRE(stock_upload("it/app", uuid) == 0);
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
	T_REQUIRE(stock_upload("it/app", uuid) == 0);
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

	svc_config(&cfg);
	cfg.part_size = 5 * MiB;
	svc = open_svc(&cfg);
	T_REQUIRE(svc && data);
	s3d_presign_result_init(&r);
	s3d_buf_init(&resp, 1 << 16);
	T_REQUIRE(stock_upload("it/app", uuid) == 0);
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
	T_TRUE(part_url(&r, 0) && strstr(part_url(&r, 0), "partNumber=1&") != NULL);
	T_TRUE(part_url(&r, 1) && strstr(part_url(&r, 1), "partNumber=2&") != NULL);
	T_TRUE(part_url(&r, 2) == NULL);
	/* exactly one upload opened, the recorded one */
	T_EQ_INT(1, t_s3_uploads_of(admin, bucket, key, id, sizeof(id)));
	T_EQ_STR(id, r.session.upload_id);

	/* part 1 */
	T_EQ_INT(200, http_put(part_url(&r, 0), NULL, NULL, data, 1000, &resp));

	/* more URLs: the same upload */
	rq_parts(&rq, 3, 2);
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	T_EQ_STR(id, r.session.upload_id);
	T_EQ_INT(3, r.first_part);
	T_EQ_INT(2, r.nparts);
	T_TRUE(part_url(&r, 0) && strstr(part_url(&r, 0), "partNumber=3&") != NULL);
	T_TRUE(part_url(&r, 1) && strstr(part_url(&r, 1), "partNumber=4&") != NULL);
	T_EQ_INT(1, t_s3_uploads_of(admin, bucket, key, NULL, 0));
	snprintf(u3, sizeof(u3), "%s", part_url(&r, 0));
	T_EQ_INT(200, http_put(u3, NULL, NULL, data + 1000, 500, &resp));

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
	T_EQ_INT(200, http_put(part_url(&r, 0), NULL, NULL, data, 3000, &resp));
	memset(&st, 0, sizeof(st));
	T_REQUIRE(s3d_service_status(svc, "it/app", uuid, &st, &err) == S3D_OK);
	T_EQ_INT(2, st.nparts);
	T_EQ_INT(3500, st.stored);
	T_TRUE(st.nparts == 2 && st.parts[0].size == 3000);
	s3d_upload_status_cleanup(&st);

	/* the last part numbers */
	rq_parts(&rq, 9999, 2);
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	T_TRUE(part_url(&r, 1) && strstr(part_url(&r, 1), "partNumber=10000&") != NULL);
	/* a full page of 1000 URLs */
	rq_parts(&rq, 1, 1000);
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	T_EQ_INT(1000, r.nparts);
	T_TRUE(part_url(&r, 999) && strstr(part_url(&r, 999), "partNumber=1000&") != NULL);
	T_EQ_INT(1, t_s3_uploads_of(admin, bucket, key, NULL, 0));

	/* a declared size grows the part size to fit 10,000 parts (whole MiB) */
	T_REQUIRE(stock_upload("it/app", uuid) == 0);
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
	s3d_service *svc = open_svc(NULL);
	s3d_presign_request rq;
	s3d_presign_result r;
	s3d_error err;
	char uuid[40], uuid2[40], d1[80], d2[80];
	uint8_t a[10], b[10];

	T_REQUIRE(svc);
	s3d_presign_result_init(&r);
	t_fill(a, sizeof(a), 1);
	t_fill(b, sizeof(b), 2);
	digest_of(a, sizeof(a), d1, NULL);
	digest_of(b, sizeof(b), d2, NULL);

	/* single, then multipart */
	T_REQUIRE(stock_upload("it/app", uuid) == 0);
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
	T_REQUIRE(stock_upload("it/app", uuid2) == 0);
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
	s3d_service *svc = open_svc(NULL);
	s3d_presign_request rq;
	s3d_presign_result r;
	s3d_upload_status st;
	s3d_session s;
	s3d_error err;
	char uuid[40];

	T_REQUIRE(svc);
	s3d_presign_result_init(&r);
	T_REQUIRE(stock_upload("it/app", uuid) == 0);
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
	T_EQ_INT(1, t_s3_uploads_of(admin, bucket, s.key, NULL, 0));

	s3d_presign_result_cleanup(&r);
	s3d_service_free(svc);
}

/* ---- cancel ------------------------------------------------------------------------ */

static void test_cancel(void)
{
	s3d_service *svc = open_svc(NULL);
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
	T_REQUIRE(stock_upload("it/app", uuid) == 0);
	rq_init(&rq, "it/app", uuid);
	rq_parts(&rq, 1, 2);
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	T_EQ_INT(200, http_put(part_url(&r, 0), NULL, NULL, data, 1000, &resp));
	snprintf(part2, sizeof(part2), "%s", part_url(&r, 1));
	temp_key(key, sizeof(key), uuid);
	marker_key(mk, sizeof(mk), uuid);
	T_EQ_INT(1, t_s3_uploads_of(admin, bucket, key, NULL, 0));
	T_TRUE(exists(mk));

	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_service_cancel(svc, "it/app", uuid, &err));
	T_EQ_INT(0, t_s3_uploads_of(admin, bucket, key, NULL, 0));
	T_EQ_INT(0, uploads_under(key));
	T_EQ_INT(0, objects_under(key));
	T_TRUE(!exists(mk));
	data_path(path, sizeof(path), "it/app", uuid, "startedat");
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_stat(drv, path, &sst, &err));
	T_EQ_INT(S3D_OK, s3d_index_get(s3d_service_index(svc), uuid, &s, &err));
	T_EQ_INT(S3D_SESSION_CANCELLED, s.status);
	/* the URLs handed out are dead */
	T_EQ_INT(404, http_put(part2, NULL, NULL, data, 1000, &resp));
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
	T_REQUIRE(stock_upload("it/app", uuid2) == 0);
	rq_init(&rq, "it/app", uuid2);
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	T_EQ_INT(200, http_put(s3d_buf_str(&r.url), &r, NULL, data, sizeof(data), &resp));
	temp_key(key, sizeof(key), uuid2);
	T_TRUE(exists(key));
	T_EQ_INT(S3D_OK, s3d_service_cancel(svc, "it/app", uuid2, &err));
	T_TRUE(!exists(key));
	marker_key(mk, sizeof(mk), uuid2);
	T_TRUE(!exists(mk));
	T_EQ_INT(S3D_E_NOTFOUND, presign(svc, &rq, &r, &err));

	/* a direct upload's key is a blob: cancel leaves it */
	T_REQUIRE(stock_upload("it/app", uuid3) == 0);
	digest_of(data, sizeof(data), digest, NULL);
	blob_key(bkey, sizeof(bkey), digest);
	rq_init(&rq, "it/app", uuid3);
	rq.digest = digest;
	rq.size = sizeof(data);
	T_REQUIRE(presign(svc, &rq, &r, &err) == S3D_OK);
	T_EQ_INT(200, http_put(s3d_buf_str(&r.url), &r, NULL, data, sizeof(data), &resp));
	T_EQ_INT(S3D_OK, s3d_service_cancel(svc, "it/app", uuid3, &err));
	T_TRUE(exists(bkey));
	marker_key(mk, sizeof(mk), uuid3);
	T_TRUE(!exists(mk));

	/* a stock upload that was never presigned is no session to cancel */
	T_REQUIRE(stock_upload("it/app", uuid3) == 0);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_service_cancel(svc, "it/app", uuid3, &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_service_status(svc, "it/app", uuid3, &st, &err));
	data_path(path, sizeof(path), "it/app", uuid3, "startedat");
	T_EQ_INT(S3D_OK, s3d_driver_stat(drv, path, &sst, &err));

	s3d_buf_cleanup(&resp);
	s3d_presign_result_cleanup(&r);
	s3d_service_free(svc);
}

/* ---- several registry processes ------------------------------------------------------ */

static void test_second_instance(void)
{
	s3d_service *a = open_svc(NULL), *b = open_svc_on(drv2, NULL);
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
	T_REQUIRE(stock_upload("it/app", mp) == 0);
	rq_init(&rq, "it/app", mp);
	rq_parts(&rq, 1, 1);
	T_REQUIRE(presign(a, &rq, &r, &err) == S3D_OK);
	snprintf(id, sizeof(id), "%s", r.session.upload_id);
	T_EQ_INT(200, http_put(part_url(&r, 0), NULL, NULL, data, 1000, &resp));

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
	T_EQ_INT(200, http_put(part_url(&r, 0), NULL, NULL, data + 1000, 500, &resp));
	temp_key(key, sizeof(key), mp);
	T_EQ_INT(1, t_s3_uploads_of(admin, bucket, key, NULL, 0));
	memset(&st, 0, sizeof(st));
	T_EQ_INT(S3D_OK, s3d_service_status(a, "it/app", mp, &st, &err));
	T_EQ_INT(2, st.nparts);
	T_EQ_INT(1500, st.stored);
	s3d_upload_status_cleanup(&st);

	/* a single session opened by a, presigned and used through b */
	T_REQUIRE(stock_upload("it/app", single) == 0);
	rq_init(&rq, "it/app", single);
	T_REQUIRE(presign(a, &rq, &r, &err) == S3D_OK);
	T_REQUIRE(presign(b, &rq, &r, &err) == S3D_OK);
	temp_key(key, sizeof(key), single);
	T_EQ_STR(key, r.session.key);
	T_EQ_INT(200, http_put(s3d_buf_str(&r.url), &r, NULL, data, sizeof(data), &resp));
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
	T_EQ_INT(0, uploads_under(key));
	rq_init(&rq, "it/app", mp);
	rq_parts(&rq, 3, 1);
	T_EQ_INT(S3D_OK, presign(a, &rq, &r, &err));
	T_EQ_INT(404, http_put(part_url(&r, 0), NULL, NULL, "x", 1, &resp));
	T_EQ_INT(0, uploads_under(key));
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

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static s3d_driver *new_driver(void)
{
	s3d_driver_config cfg;
	s3d_driver *d = NULL;
	s3d_error err;

	t_s3_driver_config(&cfg, NULL, bucket, ROOT);
	s3d_error_clear(&err);
	if (s3d_driver_new(&cfg, &d, &err) != S3D_OK)
		fprintf(stderr, "FATAL: driver: %s\n", err.message);
	return d;
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	int rc = 1;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	admin = t_s3_plain_client();
	if (t_s3_new_bucket("presign", admin, "pre", bucket, sizeof(bucket)) != 0) {
		s3d_client_free(admin);
		return 1;
	}
	snprintf(tmproot, sizeof(tmproot), "%s/s3d-test-presign-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	drv = new_driver();
	drv2 = new_driver();
	if (!mkdtemp(tmproot) || !drv || !drv2) {
		perror("setup");
		printf("presign: 0 passed, 1 failed\n");
		goto out;
	}
	T_RUN(test_hostile_arguments);
	T_RUN(test_refused_without_fresh_stock_upload);
	T_RUN(test_quota_refusals);
	T_RUN(test_single_without_digest);
	T_RUN(test_single_with_digest_is_direct);
	T_RUN(test_driver_put_options_signed);
	T_RUN(test_expired_urls);
	T_RUN(test_multipart);
	T_RUN(test_declarations_are_fixed);
	T_RUN(test_wrong_repository);
	T_RUN(test_cancel);
	T_RUN(test_second_instance);
	rc = t_done("presign");
	nftw(tmproot, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
out:
	s3d_driver_free(drv2);
	s3d_driver_free(drv);
	t_s3_drop_bucket(admin, bucket, NULL, 0);
	s3d_client_free(admin);
	curl_global_cleanup();
	return rc;
}
