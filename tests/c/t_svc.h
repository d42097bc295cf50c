/*
 * Helpers shared by the C tests of the presigned upload service (presign,
 * finalize, sweep) against a live S3 server (include after t.h and t_s3.h):
 *
 *   - the run: t_svc_begin makes the run's plain client (t_svc.admin), its
 *     bucket (t_svc.bucket) and a temp directory for the services' indexes
 *     (t_svc.tmproot); t_svc_end removes them all;
 *   - drivers on the run's bucket (any endpoint, any root) and services on a
 *     driver, each with a fresh index below the temp directory and, unless
 *     the caller passes its own, the run's default configuration
 *     (t_svc.config: index.no_sync; a test adds its own defaults);
 *   - sessions opened as the registry opens them: a random UUID and the stock
 *     upload's startedat (what distribution's POST writes), by the driver;
 *   - presign results used as a client uses them: part URLs, and a plain
 *     libcurl PUT of bytes to a URL with the result's headers (one of them
 *     left out on request), the answer's body kept on request;
 *   - digests "sha256:<hex>" (and base64) of bytes or of a finished SHA-256;
 *   - the run's bucket, with the run's client: a plain PUT; checks of whether
 *     a key exists, of objects and multipart uploads below a prefix, of an
 *     object's bytes.
 *
 *   int main(void) {
 *       if (t_svc_begin("presign", "pre") != 0) return 1;
 *       t_svc.config.session_ttl = 3600;
 *       drv = t_svc_driver(NULL, "reg");
 *       ... T_RUN(test_x); rc = t_done("presign"); ...
 *       s3d_driver_free(drv); t_svc_end(); return rc;
 *   }
 *   static void test_x(void) {
 *       s3d_service *svc = t_svc_open(drv, NULL);
 *       T_REQUIRE(t_stock_upload(drv, "it/app", uuid) == 0); ...
 *       T_EQ_INT(200, t_http_put(s3d_buf_str(&r.url), &r, NULL, data, n, NULL));
 *       T_TRUE(t_exists(key));
 *   }
 *
 * Every function is static inline: a test uses what it needs.
 */
#ifndef S3D_TEST_T_SVC_H
#define S3D_TEST_T_SVC_H

#include "t.h"
#include "t_s3.h"

#include "driver.h"
#include "s3direct.h"
#include "service.h"

#include <curl/curl.h>
#include <ftw.h>
#include <limits.h>
#include <sys/stat.h>

/* ---- the run ------------------------------------------------------------------ */

struct t_svc_run {
	s3d_client *admin;           /* plain client for setup and checks */
	char bucket[64];             /* the run's bucket */
	char tmproot[PATH_MAX - 64]; /* the indexes' directories ("": none) */
	int nindex;                  /* indexes opened so far */
	s3d_service_config config;   /* t_svc_open's default */
};

static struct t_svc_run t_svc;

static inline int t_svc_rm_entry(const char *p, const struct stat *st, int flag,
				 struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

/* Removes the temp directory, the bucket (emptied) and the client. */
static inline void t_svc_end(void)
{
	if (t_svc.tmproot[0])
		nftw(t_svc.tmproot, t_svc_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	t_svc.tmproot[0] = 0;
	if (t_svc.admin && t_svc.bucket[0])
		t_s3_drop_bucket(t_svc.admin, t_svc.bucket, NULL, 0);
	s3d_client_free(t_svc.admin);
	t_svc.admin = NULL;
	curl_global_cleanup();
}

/*
 * libcurl, the client, a bucket "s3d-<tag>-<random>" and a temp directory
 * $TMPDIR/s3d-test-<suite>-XXXXXX; t_svc.config zeroed but index.no_sync.
 * 0 on success; otherwise prints why and "<suite>: 0 passed, 1 failed",
 * undoes what it made and returns -1 (the caller exits 1).
 */
static inline int t_svc_begin(const char *suite, const char *tag)
{
	const char *tmp = getenv("TMPDIR");

	curl_global_init(CURL_GLOBAL_DEFAULT);
	memset(&t_svc, 0, sizeof(t_svc));
	t_svc.config.index.no_sync = 1;
	t_svc.admin = t_s3_plain_client();
	if (t_s3_new_bucket(suite, t_svc.admin, tag, t_svc.bucket, sizeof(t_svc.bucket)) != 0) {
		t_svc.bucket[0] = 0;
		t_svc_end();
		return -1;
	}
	snprintf(t_svc.tmproot, sizeof(t_svc.tmproot), "%s/s3d-test-%s-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp", suite);
	if (!mkdtemp(t_svc.tmproot)) {
		perror("mkdtemp");
		printf("%s: 0 passed, 1 failed\n", suite);
		t_svc.tmproot[0] = 0;
		t_svc_end();
		return -1;
	}
	return 0;
}

/* ---- drivers and services ---------------------------------------------------- */

/* A driver on the run's bucket through endpoint (NULL: the live server),
 * below root ("": the bucket's top). NULL, with why on stderr, when refused. */
static inline s3d_driver *t_svc_driver(const char *endpoint, const char *root)
{
	s3d_driver_config cfg;
	s3d_driver *d = NULL;
	s3d_error err;

	t_s3_driver_config(&cfg, endpoint, t_svc.bucket, root);
	s3d_error_clear(&err);
	if (s3d_driver_new(&cfg, &d, &err) != S3D_OK)
		fprintf(stderr, "  driver: %s\n", err.message);
	return d;
}

/* cfg set to the run's default service configuration. */
static inline void t_svc_config(s3d_service_config *cfg)
{
	*cfg = t_svc.config;
}

/* A service on d with cfg (NULL: t_svc.config) and a fresh index directory;
 * NULL, with why on stderr, when d is NULL or the service is refused. */
static inline s3d_service *t_svc_open(s3d_driver *d, const s3d_service_config *cfg)
{
	s3d_service_config c = cfg ? *cfg : t_svc.config;
	s3d_service *svc = NULL;
	s3d_error err;
	char path[PATH_MAX];

	if (!d)
		return NULL;
	snprintf(path, sizeof(path), "%s/index-%d", t_svc.tmproot, ++t_svc.nindex);
	c.index.path = path;
	s3d_error_clear(&err);
	if (s3d_service_new(d, &c, &svc, &err) != S3D_OK) {
		fprintf(stderr, "  service_new: %s\n", err.message);
		return NULL;
	}
	return svc;
}

/* ---- sessions ------------------------------------------------------------------ */

/* A random UUID (lower-case, 36 characters). */
static inline void t_uuid(char out[40])
{
	uint8_t r[16];

	if (RAND_bytes(r, sizeof(r)) != 1)
		memset(r, 0x5a, sizeof(r));
	snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
		 r[12], r[13], r[14], r[15]);
}

/* The driver path of file name of the stock upload repo/uuid. */
static inline void t_upload_path(char *out, size_t cap, const char *repo, const char *uuid,
				 const char *name)
{
	snprintf(out, cap, "/docker/registry/v2/repositories/%s/_uploads/%s/%s", repo, uuid,
		 name);
}

/* The stock POST through d: a new uuid, distribution's startedat written.
 * 0 on success. */
static inline int t_stock_upload(s3d_driver *d, const char *repo, char uuid[40])
{
	const char *t = "2026-01-01T00:00:00.000000000Z";
	char path[512];
	s3d_error err;

	t_uuid(uuid);
	t_upload_path(path, sizeof(path), repo, uuid, "startedat");
	return s3d_driver_put_content(d, path, t, strlen(t), &err) == S3D_OK ? 0 : -1;
}

/* ---- presigned URLs, as a client uses them -------------------------------------- */

/* Part URL i (0-based) of a multipart result, or NULL. */
static inline const char *t_part_url(const s3d_presign_result *r, int i)
{
	const char *p = (const char *)r->part_urls.ptr;
	int k;

	if (!p || i < 0 || i >= r->nparts)
		return NULL;
	for (k = 0; k < i; k++)
		p += strlen(p) + 1;
	return p;
}

struct t_put_src {
	const uint8_t *p;
	size_t n, off;
};

static inline size_t t_put_read(char *buf, size_t size, size_t nmemb, void *ud)
{
	struct t_put_src *s = ud;
	size_t n = size * nmemb;

	if (n > s->n - s->off)
		n = s->n - s->off;
	memcpy(buf, s->p + s->off, n);
	s->off += n;
	return n;
}

/* The answer's body into the s3d_buf at ud (bounded: a long one is cut), or
 * dropped when ud is NULL. */
static inline size_t t_put_answer(char *p, size_t size, size_t nmemb, void *ud)
{
	if (ud)
		s3d_buf_append(ud, p, size * nmemb);
	return size * nmemb;
}

/*
 * A plain client's PUT of len bytes to url with every header of r (NULL:
 * none) but skip (NULL: none skipped); curl sets Content-Length from the
 * body and sends no Expect. The HTTP status, or -1 when the transfer failed;
 * the answer's body into resp (reset first) unless resp is NULL.
 */
static inline long t_http_put(const char *url, const s3d_presign_result *r, const char *skip,
			      const void *data, size_t len, s3d_buf *resp)
{
	struct curl_slist *h = NULL, *t;
	struct t_put_src src = { data, len, 0 };
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
	curl_easy_setopt(c, CURLOPT_READFUNCTION, t_put_read);
	curl_easy_setopt(c, CURLOPT_READDATA, &src);
	curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, t_put_answer);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
out:
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return status;
}

/* ---- digests --------------------------------------------------------------------- */

/* "sha256:<hex of md>". */
static inline void t_digest_hex(const uint8_t md[32], char out[80])
{
	int i;

	strcpy(out, "sha256:");
	for (i = 0; i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

/* The digest of n bytes at p into out, and its base64 into b64 (when not
 * NULL), as x-amz-checksum-sha256 carries it. */
static inline void t_digest_of(const void *p, size_t n, char out[80], char b64[64])
{
	uint8_t md[32];

	t_sha256(p, n, md);
	t_digest_hex(md, out);
	if (b64)
		t_sha256_b64(p, n, b64);
}

/* ---- the run's bucket ------------------------------------------------------------ */

/* Whether key exists (HEAD). */
static inline int t_exists(const char *key)
{
	s3d_error err;

	return s3d_head_object(t_svc.admin, t_svc.bucket, key, 0, NULL, &err) == S3D_OK;
}

/* Objects below prefix, -1 on error. */
static inline int t_objects_under(const char *prefix)
{
	s3d_list_opts o;
	s3d_error err;
	int n = 0;

	memset(&o, 0, sizeof(o));
	o.prefix = prefix;
	return s3d_list_objects(t_svc.admin, t_svc.bucket, &o, t_count_entry, &n, &err) == S3D_OK
		       ? n
		       : -1;
}

struct t_up_count {
	const char *prefix;
	int n;
};

static inline int t_count_upload(void *ud, const s3d_list_entry *e)
{
	struct t_up_count *u = ud;

	if (e->kind == S3D_ENTRY_UPLOAD && strncmp(e->key, u->prefix, strlen(u->prefix)) == 0)
		u->n++;
	return 0;
}

/* Multipart uploads whose key starts with prefix, -1 on error. */
static inline int t_uploads_under(const char *prefix)
{
	struct t_up_count u = { prefix, 0 };
	s3d_list_opts o;
	s3d_error err;

	memset(&o, 0, sizeof(o));
	o.prefix = prefix;
	return s3d_list_multipart_uploads(t_svc.admin, t_svc.bucket, &o, t_count_upload, &u,
					  &err) == S3D_OK
		       ? u.n
		       : -1;
}

/* A plain PUT of len bytes at key; the PUT's result. */
static inline int t_put_object(const char *key, const void *data, size_t len)
{
	s3d_error err;

	return s3d_put_object(t_svc.admin, t_svc.bucket, key, data, len, NULL, NULL, &err);
}

static inline int t_collect(void *ud, const uint8_t *p, size_t n)
{
	return s3d_buf_append(ud, p, n) != S3D_OK;
}

/* The whole object at key into out (reset first); the GET's result. */
static inline int t_get_object(const char *key, s3d_buf *out)
{
	s3d_error err;

	s3d_buf_reset(out);
	return s3d_get_object(t_svc.admin, t_svc.bucket, key, 0, -1, t_collect, out, NULL, &err);
}

#endif
