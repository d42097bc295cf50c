/*
 * The S3 client against a live S3-compatible server (versitygw started by
 * tests/with-s3.sh), plus a small loopback fault server for retry paths.
 */
#include "t.h"
#include "t_s3.h"

#include "s3direct.h"
#include "s3_client.h"

#include <curl/curl.h>
#include <pthread.h>
#include <time.h>

static char bucket[64];

static s3d_client *client_with(const char *endpoint, const char *secret, int retries)
{
	s3d_client_config cfg;

	t_s3_config(&cfg, endpoint);
	cfg.secret_key = secret;
	t_s3_retries(&cfg, retries, 10000);
	return t_s3_client_new(&cfg);
}

static s3d_client *client(void)
{
	return client_with(t_env("S3D_TEST_ENDPOINT"), t_env("S3D_TEST_SECRET_KEY"), 3);
}

/* ---- sinks ---- */

static int sink_buf(void *ud, const uint8_t *p, size_t n)
{
	return s3d_buf_append(ud, p, n) == S3D_OK ? 0 : 1;
}

static int get_all(s3d_client *c, const char *key, s3d_buf *out, s3d_error *err)
{
	s3d_buf_reset(out);
	return s3d_get_object(c, bucket, key, 0, -1, sink_buf, out, NULL, err);
}

/* ---- hostile inputs first ---- */

static void test_bad_config_and_arguments(void)
{
	s3d_client_config cfg;
	s3d_client *c = NULL;
	s3d_error err;
	char longkey[1100];
	s3d_buf b;

	memset(&cfg, 0, sizeof(cfg));
	T_EQ_INT(S3D_E_INVAL, s3d_client_new(&cfg, &c));
	cfg.access_key = "a";
	cfg.secret_key = "b";
	cfg.endpoint = "ftp://127.0.0.1:21";
	T_EQ_INT(S3D_E_INVAL, s3d_client_new(&cfg, &c));
	cfg.endpoint = "http://127.0.0.1:9000/prefix";
	T_EQ_INT(S3D_E_INVAL, s3d_client_new(&cfg, &c));
	cfg.endpoint = "not a url";
	T_EQ_INT(S3D_E_INVAL, s3d_client_new(&cfg, &c));
	T_TRUE(c == NULL);

	c = client();
	T_REQUIRE(c);
	s3d_buf_init(&b, 1024);
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = 0;
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_TOOBIG, s3d_put_object(c, bucket, longkey, "x", 1, NULL, NULL, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_put_object(c, "", "k", "x", 1, NULL, NULL, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_put_object(c, bucket, "", "x", 1, NULL, NULL, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_put_object(c, bucket, "k", NULL, 1, NULL, NULL, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_get_object(c, bucket, "k", -1, -1, sink_buf, &b, NULL, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_upload_part(c, bucket, "k", "id", 0, "x", 1, NULL, NULL, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_upload_part(c, bucket, "k", "id", 10001, "x", 1, NULL, NULL, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_complete_multipart(c, bucket, "k", "id", NULL, 0, NULL, &err));
	s3d_buf_cleanup(&b);
	s3d_client_free(c);
}

static void test_errors_carry_code_and_request_id(void)
{
	s3d_client *c = client(), *bad;
	s3d_obj_info info;
	s3d_error err;
	s3d_buf b;

	T_REQUIRE(c);
	s3d_buf_init(&b, 1024);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_NOTFOUND, get_all(c, "no/such/key", &b, &err));
	T_EQ_STR("NoSuchKey", err.code);
	T_EQ_INT(404, err.http_status);
	T_TRUE(err.request_id[0] != 0);
	T_TRUE(strstr(err.resource, "GET ") == err.resource);
	T_EQ_INT(0, b.len); /* the error body never reaches the sink */

	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_head_object(c, bucket, "no/such/key", 0, &info, &err));
	T_EQ_INT(404, err.http_status);

	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_put_object(c, "s3d-no-such-bucket-x", "k", "x", 1,
						NULL, NULL, &err));
	T_EQ_STR("NoSuchBucket", err.code);

	bad = client_with(t_env("S3D_TEST_ENDPOINT"), "wrong-secret", 3);
	T_REQUIRE(bad);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_S3, s3d_put_object(bad, bucket, "k", "x", 1, NULL, NULL, &err));
	T_EQ_STR("SignatureDoesNotMatch", err.code);
	T_EQ_INT(403, err.http_status);
	T_EQ_INT(1, err.attempts); /* never retried */
	s3d_client_free(bad);
	s3d_buf_cleanup(&b);
	s3d_client_free(c);
}

struct seen { int n; const char *const *keys; size_t nkeys; int hits; };

static int seen_key(void *ud, const s3d_list_entry *e)
{
	struct seen *sn = ud;
	size_t i;

	for (i = 0; i < sn->nkeys; i++)
		if (strcmp(sn->keys[i], e->key) == 0)
			sn->hits++;
	sn->n++;
	return 0;
}

static void test_put_get_head_delete_odd_keys(void)
{
	static const char *keys[] = { "plain", "with space", "plus+sign", "per%cent",
				      "amp&eq=q?hash#", "a//double/slash", "tilde~_-.",
				      "unicode/\xe1\x88\xb4/\xc3\xa9t\xc3\xa9", "semi;colon,comma",
				      "star*paren()", "./dot/../segments" };
	s3d_client *c = client();
	s3d_obj_info info;
	s3d_error err;
	s3d_buf b;
	size_t i;

	T_REQUIRE(c);
	s3d_buf_init(&b, 1 << 20);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		s3d_put_opts po = { .content_type = "text/plain" };
		s3d_error_clear(&err);
		T_EQ_INT(S3D_OK, s3d_put_object(c, bucket, keys[i], keys[i], strlen(keys[i]),
						&po, &info, &err));
		T_TRUE(info.etag[0] == '"');
		T_EQ_INT(S3D_OK, get_all(c, keys[i], &b, &err));
		T_EQ_STR(keys[i], s3d_buf_str(&b));
		T_EQ_INT(S3D_OK, s3d_head_object(c, bucket, keys[i], 0, &info, &err));
		T_EQ_INT((long long)strlen(keys[i]), info.size);
		T_EQ_STR("text/plain", info.content_type);
		T_TRUE(info.last_modified > 1700000000);
		T_EQ_INT(S3D_OK, s3d_delete_object(c, bucket, keys[i], &err));
		T_EQ_INT(S3D_E_NOTFOUND, s3d_head_object(c, bucket, keys[i], 0, &info, &err));
	}
	/* listing gives the odd keys back exactly (encoding-type=url round trip) */
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		T_EQ_INT(S3D_OK, s3d_put_object(c, bucket, keys[i], "x", 1, NULL, NULL, &err));
	{
		struct seen sn = { 0, keys, sizeof(keys) / sizeof(keys[0]), 0 };
		s3d_list_opts lo;

		memset(&lo, 0, sizeof(lo));
		T_EQ_INT(S3D_OK, s3d_list_objects(c, bucket, &lo, seen_key, &sn, &err));
		T_EQ_INT((long long)(sizeof(keys) / sizeof(keys[0])) - 2, sn.hits); /* two keys the posix backend rewrites */
	}
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		s3d_delete_object(c, bucket, keys[i], &err);
	/* an empty object */
	T_EQ_INT(S3D_OK, s3d_put_object(c, bucket, "empty", NULL, 0, NULL, NULL, &err));
	T_EQ_INT(S3D_OK, get_all(c, "empty", &b, &err));
	T_EQ_INT(0, b.len);
	T_EQ_INT(S3D_OK, s3d_head_object(c, bucket, "empty", 0, &info, &err));
	T_EQ_INT(0, info.size);
	T_EQ_INT(S3D_OK, s3d_delete_object(c, bucket, "empty", &err));
	s3d_buf_cleanup(&b);
	s3d_client_free(c);
}

static void test_ranges(void)
{
	s3d_client *c = client();
	s3d_obj_info info;
	s3d_error err;
	s3d_buf b;

	T_REQUIRE(c);
	s3d_buf_init(&b, 1024);
	T_REQUIRE(s3d_put_object(c, bucket, "range", "0123456789", 10, NULL, NULL, &err) == S3D_OK);
	T_EQ_INT(S3D_OK, s3d_get_object(c, bucket, "range", 3, 4, sink_buf, &b, &info, &err));
	T_EQ_STR("3456", s3d_buf_str(&b));
	T_EQ_INT(10, info.size); /* whole size from Content-Range */
	s3d_buf_reset(&b);
	T_EQ_INT(S3D_OK, s3d_get_object(c, bucket, "range", 7, -1, sink_buf, &b, NULL, &err));
	T_EQ_STR("789", s3d_buf_str(&b));
	s3d_buf_reset(&b);
	T_EQ_INT(S3D_OK, s3d_get_object(c, bucket, "range", 8, 100, sink_buf, &b, NULL, &err));
	T_EQ_STR("89", s3d_buf_str(&b));
	s3d_buf_reset(&b);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_S3, s3d_get_object(c, bucket, "range", 10, -1, sink_buf, &b, NULL, &err));
	T_EQ_STR("InvalidRange", err.code);
	T_EQ_INT(416, err.http_status);
	T_EQ_INT(S3D_OK, s3d_get_object(c, bucket, "range", 5, 0, sink_buf, &b, NULL, &err));
	T_EQ_INT(0, b.len);
	s3d_delete_object(c, bucket, "range", &err);
	s3d_buf_cleanup(&b);
	s3d_client_free(c);
}

struct mem_stream {
	const uint8_t *p;
	size_t len, off;
	int rewinds;
};

static size_t mem_read(void *ud, uint8_t *p, size_t cap)
{
	struct mem_stream *s = ud;
	size_t n = s->len - s->off < cap ? s->len - s->off : cap;

	if (n > 777)
		n = 777; /* odd read sizes */
	memcpy(p, s->p + s->off, n);
	s->off += n;
	return n;
}

static int mem_rewind(void *ud)
{
	struct mem_stream *s = ud;
	s->off = 0;
	s->rewinds++;
	return 0;
}

static void test_stream_put_and_checksums(void)
{
	s3d_client *c = client();
	size_t n = 300000;
	uint8_t *data = malloc(n);
	struct mem_stream ms = { .len = n };
	s3d_put_opts po;
	s3d_obj_info info;
	s3d_error err;
	char b64[64];
	s3d_buf b;

	T_REQUIRE(c && data);
	t_fill(data, n, 7);
	ms.p = data;
	s3d_buf_init(&b, 1 << 20);
	T_EQ_INT(S3D_OK, s3d_put_object_stream(c, bucket, "stream", (int64_t)n, mem_read,
					       mem_rewind, &ms, NULL, NULL, &err));
	T_EQ_INT(S3D_OK, get_all(c, "stream", &b, &err));
	T_EQ_MEM(data, n, b.ptr, b.len);

	/* the store verifies a declared SHA-256 */
	t_sha256_b64(data, n, b64);
	memset(&po, 0, sizeof(po));
	po.checksum_sha256 = b64;
	T_EQ_INT(S3D_OK, s3d_put_object(c, bucket, "sum", data, n, &po, NULL, &err));
	T_EQ_INT(S3D_OK, s3d_head_object(c, bucket, "sum", 1, &info, &err));
	T_EQ_STR(b64, info.checksum_sha256);
	data[0] ^= 1;
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_S3, s3d_put_object(c, bucket, "sum-bad", data, n, &po, NULL, &err));
	T_EQ_STR("BadDigest", err.code);
	T_EQ_INT(400, err.http_status);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_head_object(c, bucket, "sum-bad", 0, &info, &err));
	s3d_delete_object(c, bucket, "sum", &err);
	s3d_delete_object(c, bucket, "stream", &err);
	s3d_buf_cleanup(&b);
	free(data);
	s3d_client_free(c);
}

static void test_copy(void)
{
	s3d_client *c = client();
	s3d_obj_info info;
	s3d_error err;
	s3d_buf b;

	T_REQUIRE(c);
	s3d_buf_init(&b, 1024);
	T_REQUIRE(s3d_put_object(c, bucket, "src key+1", "copy me", 7, NULL, NULL, &err) == S3D_OK);
	T_EQ_INT(S3D_OK, s3d_copy_object(c, bucket, "src key+1", bucket, "dst/k", NULL, &info, &err));
	T_TRUE(info.etag[0] != 0);
	T_EQ_INT(S3D_OK, get_all(c, "dst/k", &b, &err));
	T_EQ_STR("copy me", s3d_buf_str(&b));
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_copy_object(c, bucket, "missing", bucket, "dst/x", NULL, NULL, &err));
	T_EQ_STR("NoSuchKey", err.code);
	s3d_delete_object(c, bucket, "src key+1", &err);
	s3d_delete_object(c, bucket, "dst/k", &err);
	s3d_buf_cleanup(&b);
	s3d_client_free(c);
}

struct counter {
	int n, stop_at;
	int64_t bytes;
	int numbers_ok, last_number;
};

static int count_entry(void *ud, const s3d_list_entry *e)
{
	struct counter *k = ud;

	k->n++;
	k->bytes += e->size;
	if (e->kind == S3D_ENTRY_PART) {
		if (e->part_number != k->last_number + 1)
			k->numbers_ok = 0;
		k->last_number = e->part_number;
	}
	return k->stop_at && k->n >= k->stop_at;
}

static void test_multipart_ops(void)
{
	const size_t five = 5u << 20;
	s3d_client *c = client();
	uint8_t *data = malloc(2 * five + 1024);
	s3d_part parts[3], bad[1];
	s3d_list_opts lo;
	struct counter k = { .numbers_ok = 1 };
	s3d_buf id, b;
	s3d_error err;
	char b64[64];
	size_t total = 2 * five + 1024;

	T_REQUIRE(c && data);
	t_fill(data, total, 3);
	s3d_buf_init(&id, 4096);
	s3d_buf_init(&b, 32u << 20);
	T_REQUIRE(s3d_create_multipart(c, bucket, "mp/obj", NULL, &id, &err) == S3D_OK);
	T_TRUE(id.len > 0);
	T_EQ_INT(S3D_OK, s3d_upload_part(c, bucket, "mp/obj", s3d_buf_str(&id), 1, data, five, NULL, &parts[0], &err));
	T_EQ_INT(S3D_OK, s3d_upload_part(c, bucket, "mp/obj", s3d_buf_str(&id), 2, data + five, five, NULL, &parts[1], &err));
	T_EQ_INT(S3D_OK, s3d_upload_part(c, bucket, "mp/obj", s3d_buf_str(&id), 3, data + 2 * five, 1024, NULL, &parts[2], &err));
	memset(&lo, 0, sizeof(lo));
	T_EQ_INT(S3D_OK, s3d_list_parts(c, bucket, "mp/obj", s3d_buf_str(&id), &lo, count_entry, &k, &err));
	T_EQ_INT(3, k.n);
	T_EQ_INT((long long)total, k.bytes);
	T_TRUE(k.numbers_ok);

	/* a part the store does not hold is refused */
	bad[0] = parts[0];
	snprintf(bad[0].etag, sizeof(bad[0].etag), "\"0123456789abcdef0123456789abcdef\"");
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_S3, s3d_complete_multipart(c, bucket, "mp/obj", s3d_buf_str(&id), bad, 1, NULL, &err));
	T_TRUE(strcmp(err.code, "InvalidPart") == 0 || strcmp(err.code, "EntityTooSmall") == 0);

	T_EQ_INT(S3D_OK, s3d_complete_multipart(c, bucket, "mp/obj", s3d_buf_str(&id), parts, 3, NULL, &err));
	T_EQ_INT(S3D_OK, get_all(c, "mp/obj", &b, &err));
	T_EQ_MEM(data, total, b.ptr, b.len);

	/* the upload is gone */
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_upload_part(c, bucket, "mp/obj", s3d_buf_str(&id), 4, data, 1, NULL, NULL, &err));
	T_EQ_STR("NoSuchUpload", err.code);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_abort_multipart(c, bucket, "mp/obj", "bogus-upload-id", &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_list_parts(c, bucket, "mp/obj", "bogus-upload-id", NULL, count_entry, &k, &err));

	/* UploadPartCopy: rebuild the object from two ranges of itself */
	T_REQUIRE(s3d_create_multipart(c, bucket, "mp/copy", NULL, &id, &err) == S3D_OK);
	T_EQ_INT(S3D_OK, s3d_upload_part_copy(c, bucket, "mp/copy", s3d_buf_str(&id), 1, bucket, "mp/obj", 0, (int64_t)five - 1, &parts[0], &err));
	T_EQ_INT(S3D_OK, s3d_upload_part_copy(c, bucket, "mp/copy", s3d_buf_str(&id), 2, bucket, "mp/obj", (int64_t)five, (int64_t)total - 1, &parts[1], &err));
	T_EQ_INT(S3D_OK, s3d_complete_multipart(c, bucket, "mp/copy", s3d_buf_str(&id), parts, 2, NULL, &err));
	T_EQ_INT(S3D_OK, get_all(c, "mp/copy", &b, &err));
	T_EQ_MEM(data, total, b.ptr, b.len);

	/* per-part SHA-256 checksums: right accepted, wrong refused */
	{
		s3d_put_opts po = { .checksum_algorithm = "SHA256" };
		T_REQUIRE(s3d_create_multipart(c, bucket, "mp/sum", &po, &id, &err) == S3D_OK);
		t_sha256_b64(data, 1024, b64);
		T_EQ_INT(S3D_OK, s3d_upload_part(c, bucket, "mp/sum", s3d_buf_str(&id), 1, data, 1024, b64, &parts[0], &err));
		s3d_error_clear(&err);
		T_EQ_INT(S3D_E_S3, s3d_upload_part(c, bucket, "mp/sum", s3d_buf_str(&id), 2, data + 1, 1024, b64, NULL, &err));
		T_EQ_STR("BadDigest", err.code);
		T_EQ_INT(S3D_OK, s3d_abort_multipart(c, bucket, "mp/sum", s3d_buf_str(&id), &err));
	}
	s3d_delete_object(c, bucket, "mp/obj", &err);
	s3d_delete_object(c, bucket, "mp/copy", &err);
	s3d_buf_cleanup(&id);
	s3d_buf_cleanup(&b);
	free(data);
	s3d_client_free(c);
}

static void test_list_parts_past_1000(void)
{
	s3d_client *c = client();
	struct counter k = { .numbers_ok = 1 };
	s3d_list_opts lo;
	s3d_buf id, cont;
	s3d_error err;
	int i, ok = 1;

	T_REQUIRE(c);
	s3d_buf_init(&id, 4096);
	s3d_buf_init(&cont, 4096);
	T_REQUIRE(s3d_create_multipart(c, bucket, "many-parts", NULL, &id, &err) == S3D_OK);
	for (i = 1; i <= 1005 && ok; i++)
		ok = s3d_upload_part(c, bucket, "many-parts", s3d_buf_str(&id), i, "p", 1, NULL, NULL, &err) == S3D_OK;
	T_TRUE(ok);
	memset(&lo, 0, sizeof(lo));
	T_EQ_INT(S3D_OK, s3d_list_parts(c, bucket, "many-parts", s3d_buf_str(&id), &lo, count_entry, &k, &err));
	T_EQ_INT(1005, k.n);
	T_TRUE(k.numbers_ok);
	/* one page at a time, driven by the caller */
	memset(&k, 0, sizeof(k));
	k.numbers_ok = 1;
	lo.single_page = 1;
	lo.max_keys = 400;
	lo.continuation = &cont;
	for (i = 0; i < 10; i++) {
		T_EQ_INT(S3D_OK, s3d_list_parts(c, bucket, "many-parts", s3d_buf_str(&id), &lo, count_entry, &k, &err));
		if (cont.len == 0)
			break;
	}
	T_EQ_INT(2, i); /* 400 + 400 + 205 */
	T_EQ_INT(1005, k.n);
	T_TRUE(k.numbers_ok);
	/* all pages into one array, ascending, with sizes and ETags */
	{
		s3d_part *v = NULL;
		size_t n = 0, j;
		int sorted = 1;

		T_EQ_INT(S3D_OK, s3d_list_parts_all(c, bucket, "many-parts", s3d_buf_str(&id), &v,
						    &n, &err));
		T_EQ_INT(1005, (int)n);
		for (j = 0; v && j < n; j++)
			sorted &= v[j].number == (int)j + 1 && v[j].size == 1 && v[j].etag[0];
		T_TRUE(sorted);
		free(v);
		T_EQ_INT(S3D_E_INVAL, s3d_list_parts_all(c, bucket, "many-parts", s3d_buf_str(&id),
							  NULL, &n, &err));
	}
	T_EQ_INT(S3D_OK, s3d_abort_multipart(c, bucket, "many-parts", s3d_buf_str(&id), &err));
	{
		s3d_part *v = (s3d_part *)&err; /* reset to NULL on failure */
		size_t n = 7;

		T_EQ_INT(S3D_E_NOTFOUND, s3d_list_parts_all(c, bucket, "many-parts",
							     s3d_buf_str(&id), &v, &n, &err));
		T_TRUE(v == NULL && n == 0);
	}
	s3d_buf_cleanup(&id);
	s3d_buf_cleanup(&cont);
	s3d_client_free(c);
}

static void test_list_objects_past_1000_and_batch_delete(void)
{
	enum { N = 1003 };
	s3d_client *c = client();
	static char names[N][32];
	const char *keys[N];
	struct counter k = { 0 };
	s3d_list_opts lo;
	s3d_error err;
	s3d_buf cont;
	int i, ok = 1;

	T_REQUIRE(c);
	for (i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "many/%s/%04d", i % 2 ? "odd" : "even", i);
		keys[i] = names[i];
		if (ok)
			ok = s3d_put_object(c, bucket, keys[i], "x", 1, NULL, NULL, &err) == S3D_OK;
	}
	T_REQUIRE(ok);
	memset(&lo, 0, sizeof(lo));
	lo.prefix = "many/";
	T_EQ_INT(S3D_OK, s3d_list_objects(c, bucket, &lo, count_entry, &k, &err));
	T_EQ_INT(N, k.n);
	T_EQ_INT(N, k.bytes);
	/* delimiter: two common prefixes */
	memset(&k, 0, sizeof(k));
	lo.delimiter = "/";
	T_EQ_INT(S3D_OK, s3d_list_objects(c, bucket, &lo, count_entry, &k, &err));
	T_EQ_INT(2, k.n);
	/* callback stops early */
	memset(&k, 0, sizeof(k));
	k.stop_at = 10;
	lo.delimiter = NULL;
	T_EQ_INT(S3D_OK, s3d_list_objects(c, bucket, &lo, count_entry, &k, &err));
	T_EQ_INT(10, k.n);
	/* caller-driven pages with a continuation token; start-after */
	s3d_buf_init(&cont, 8192);
	memset(&k, 0, sizeof(k));
	lo.single_page = 1;
	lo.max_keys = 500;
	lo.continuation = &cont;
	lo.start_after = "many/even/0100";
	for (i = 0; i < 10; i++) {
		T_EQ_INT(S3D_OK, s3d_list_objects(c, bucket, &lo, count_entry, &k, &err));
		if (!cont.len)
			break;
	}
	T_EQ_INT(N - 51, k.n); /* even 0000..0100 skipped */

	T_EQ_INT(S3D_OK, s3d_delete_objects(c, bucket, keys, N, &err));
	memset(&k, 0, sizeof(k));
	memset(&lo, 0, sizeof(lo));
	lo.prefix = "many/";
	T_EQ_INT(S3D_OK, s3d_list_objects(c, bucket, &lo, count_entry, &k, &err));
	T_EQ_INT(0, k.n);
	s3d_buf_cleanup(&cont);
	s3d_client_free(c);
}

static void test_list_multipart_uploads(void)
{
	s3d_client *c = client();
	struct counter k = { 0 };
	s3d_list_opts lo;
	s3d_buf ids[3];
	s3d_error err;
	char key[32];
	int i;

	T_REQUIRE(c);
	for (i = 0; i < 3; i++) {
		s3d_buf_init(&ids[i], 4096);
		snprintf(key, sizeof(key), "uploads/u%d", i);
		T_EQ_INT(S3D_OK, s3d_create_multipart(c, bucket, key, NULL, &ids[i], &err));
	}
	memset(&lo, 0, sizeof(lo));
	lo.prefix = "uploads/";
	T_EQ_INT(S3D_OK, s3d_list_multipart_uploads(c, bucket, &lo, count_entry, &k, &err));
	T_EQ_INT(3, k.n);
	for (i = 0; i < 3; i++) {
		snprintf(key, sizeof(key), "uploads/u%d", i);
		T_EQ_INT(S3D_OK, s3d_abort_multipart(c, bucket, key, s3d_buf_str(&ids[i]), &err));
		s3d_buf_cleanup(&ids[i]);
	}
	memset(&k, 0, sizeof(k));
	T_EQ_INT(S3D_OK, s3d_list_multipart_uploads(c, bucket, &lo, count_entry, &k, &err));
	T_EQ_INT(0, k.n);
	s3d_client_free(c);
}

/* ---- presigned URLs, used the way an uploader would: plain libcurl ---- */

struct http_result {
	long status;
	s3d_buf body;
};

static size_t http_sink(char *p, size_t sz, size_t n, void *ud)
{
	return s3d_buf_append(ud, p, sz * n) == S3D_OK ? sz * n : 0;
}

static long http(const char *method, const char *url, const char *hdr,
		 const void *body, size_t len, s3d_buf *resp)
{
	CURL *e = curl_easy_init();
	struct curl_slist *h = NULL;
	long st = 0;

	s3d_buf_reset(resp);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_sink);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, resp);
	if (hdr)
		h = curl_slist_append(h, hdr);
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	if (strcmp(method, "PUT") == 0) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)len);
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	}
	if (curl_easy_perform(e) == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &st);
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
	return st;
}

static void test_presigned_urls(void)
{
	s3d_client *c = client();
	const char *body = "presigned body";
	char b64[64], hdr[128];
	s3d_kv sum[1];
	s3d_buf url, resp;
	s3d_error err;
	char *sig;

	T_REQUIRE(c);
	s3d_buf_init(&url, 16384);
	s3d_buf_init(&resp, 1 << 20);
	T_REQUIRE(s3d_put_object(c, bucket, "pre/get me", "hello", 5, NULL, NULL, &err) == S3D_OK);

	T_EQ_INT(S3D_OK, s3d_client_presign(c, "GET", bucket, "pre/get me", NULL, 0, 0, 300, &url));
	T_EQ_INT(200, http("GET", s3d_buf_str(&url), NULL, NULL, 0, &resp));
	T_EQ_STR("hello", s3d_buf_str(&resp));
	T_EQ_INT(200, http("GET", s3d_buf_str(&url), NULL, NULL, 0, &resp));
	/* scoped to the method: a PUT with the GET URL is refused */
	T_EQ_INT(403, http("PUT", s3d_buf_str(&url), NULL, "x", 1, &resp));
	/* tampered signature */
	sig = strstr((char *)url.ptr, "X-Amz-Signature=") + 16;
	*sig = *sig == 'a' ? 'b' : 'a';
	T_EQ_INT(403, http("GET", s3d_buf_str(&url), NULL, NULL, 0, &resp));
	T_TRUE(strstr(s3d_buf_str(&resp), "SignatureDoesNotMatch") != NULL);

	/* expired: signed two hours ago, valid one hour */
	s3d_buf_reset(&url);
	T_EQ_INT(S3D_OK, s3d_client_presign(c, "GET", bucket, "pre/get me", NULL, 0, time(NULL) - 7200, 3600, &url));
	T_EQ_INT(403, http("GET", s3d_buf_str(&url), NULL, NULL, 0, &resp));
	T_TRUE(strstr(s3d_buf_str(&resp), "AccessDenied") != NULL ||
	       strstr(s3d_buf_str(&resp), "Expired") != NULL);

	/* presigned PUT with a signed x-amz-checksum-sha256 */
	t_sha256_b64(body, strlen(body), b64);
	sum[0].name = "x-amz-checksum-sha256";
	sum[0].value = b64;
	snprintf(hdr, sizeof(hdr), "x-amz-checksum-sha256: %s", b64);
	s3d_buf_reset(&url);
	T_EQ_INT(S3D_OK, s3d_client_presign(c, "PUT", bucket, "pre/put", sum, 1, 0, 300, &url));
	T_TRUE(strstr(s3d_buf_str(&url), "x-amz-checksum-sha256") != NULL); /* in SignedHeaders */
	T_EQ_INT(403, http("PUT", s3d_buf_str(&url), NULL, body, strlen(body), &resp)); /* header missing */
	T_EQ_INT(400, http("PUT", s3d_buf_str(&url), hdr, "tampered body!", 14, &resp));
	T_TRUE(strstr(s3d_buf_str(&resp), "BadDigest") != NULL);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_head_object(c, bucket, "pre/put", 0, NULL, &err));
	T_EQ_INT(200, http("PUT", s3d_buf_str(&url), hdr, body, strlen(body), &resp));
	T_EQ_INT(S3D_OK, get_all(c, "pre/put", &resp, &err));
	T_EQ_STR(body, s3d_buf_str(&resp));

	/* scoped to the key: the same query on another key is refused */
	{
		char *other = strstr((char *)url.ptr, "pre/put");
		memcpy(other, "pre/pux", 7);
		T_EQ_INT(403, http("PUT", s3d_buf_str(&url), hdr, body, strlen(body), &resp));
	}
	s3d_delete_object(c, bucket, "pre/get me", &err);
	s3d_delete_object(c, bucket, "pre/put", &err);
	s3d_buf_cleanup(&url);
	s3d_buf_cleanup(&resp);
	s3d_client_free(c);
}

/* ---- concurrency: one client, many threads ---- */

static void *worker(void *arg)
{
	s3d_client *c = arg;
	char key[64], val[64];
	s3d_buf b;
	s3d_error err;
	long ok = 1;
	int i;

	s3d_buf_init(&b, 1024);
	for (i = 0; i < 20 && ok; i++) {
		/* flat keys: versitygw's posix backend races on shared parent
		   directories being created and removed by other threads */
		snprintf(key, sizeof(key), "conc-%lx-%d", (unsigned long)pthread_self(), i);
		snprintf(val, sizeof(val), "value %d", i);
		ok = s3d_put_object(c, bucket, key, val, strlen(val), NULL, NULL, &err) == S3D_OK &&
		     get_all(c, key, &b, &err) == S3D_OK && strcmp(s3d_buf_str(&b), val) == 0 &&
		     s3d_delete_object(c, bucket, key, &err) == S3D_OK;
		if (!ok) {
			char msg[1024];
			s3d_error_format(&err, S3D_E_S3, msg, sizeof(msg));
			fprintf(stderr, "  worker %s: %s [%s]\n", key, msg, s3d_buf_str(&b));
		}
	}
	s3d_buf_cleanup(&b);
	return (void *)ok;
}

static void test_concurrent_use(void)
{
	s3d_client *c = client();
	pthread_t th[8];
	void *ok;
	int i;

	T_REQUIRE(c);
	for (i = 0; i < 8; i++)
		T_EQ_INT(0, pthread_create(&th[i], NULL, worker, c));
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], &ok);
		T_TRUE(ok == (void *)1);
	}
	s3d_client_free(c);
}

/* ---- fault injection: a loopback server that misbehaves on purpose ---- */

struct fault {
	int fail_first;    /* answer 503 SlowDown to this many requests */
	int drop_after;    /* on the first good GET, send this many bytes then close */
	int ignore_range;  /* answer 200 with the whole body even to a Range */
	char last_if_match[64];
	int requests;
	char last_range[64];
};

static void fault_answer(void *ud, int fd, const char *req, size_t len)
{
	static const char body[] = "0123456789abcdefghij";
	struct fault *f = ud;
	char extra[128], id[32];
	long first;

	(void)len;
	f->requests++;
	t_req_if_match(req, f->last_if_match, sizeof(f->last_if_match));
	t_req_range(req, f->last_range, sizeof(f->last_range));
	first = atol(f->last_range);
	if (f->fail_first > 0) {
		f->fail_first--;
		snprintf(id, sizeof(id), "FAULT%d", f->requests);
		t_send_s3_error(fd, "503 Slow Down", "SlowDown", id);
	} else if (f->drop_after > 0) {
		t_send_head(fd, "200 OK", "ETag: \"v1\"\r\n", 20);
		t_send_all(fd, body, (size_t)f->drop_after);
		f->drop_after = 0;
	} else if (f->ignore_range) {
		t_send_answer(fd, "200 OK", "ETag: \"v1\"\r\n", body, 20);
	} else {
		snprintf(extra, sizeof(extra), "Content-Range: bytes %ld-19/20\r\n", first);
		t_send_answer(fd, first ? "206 Partial Content" : "200 OK", extra, body + first,
			      strlen(body + first));
	}
}

static void test_retries_and_resume(void)
{
	struct fault f = { .fail_first = 2 };
	struct t_fault_server srv;
	const char *endpoint = srv.endpoint; /* kept after the stop */
	s3d_client *c;
	s3d_error err;
	s3d_buf b;

	T_REQUIRE(t_fault_start(&srv, fault_answer, &f) == 0);
	s3d_buf_init(&b, 1024);

	/* two 503 SlowDown, then success */
	c = client_with(endpoint, "secret", 3);
	T_REQUIRE(c);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, get_all(c, "k", &b, &err));
	T_EQ_STR("0123456789abcdefghij", s3d_buf_str(&b));
	T_EQ_INT(3, err.attempts);
	s3d_client_free(c);

	/* retries exhausted: the last S3 error is reported with its request id */
	f.fail_first = 5;
	c = client_with(endpoint, "secret", 1);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_S3, get_all(c, "k", &b, &err));
	T_EQ_STR("SlowDown", err.code);
	T_EQ_INT(503, err.http_status);
	T_EQ_INT(2, err.attempts);
	T_TRUE(strncmp(err.request_id, "FAULT", 5) == 0);
	s3d_client_free(c);

	/* a connection cut mid-body resumes with a Range after the bytes seen */
	f.fail_first = 0;
	f.drop_after = 7;
	c = client_with(endpoint, "secret", 3);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, get_all(c, "k", &b, &err));
	T_EQ_STR("0123456789abcdefghij", s3d_buf_str(&b));
	T_EQ_STR("7-", f.last_range);
	T_EQ_STR("\"v1\"", f.last_if_match); /* the same object, or nothing */
	T_EQ_INT(2, err.attempts);
	s3d_client_free(c);

	/* a server that ignores Range on the resume: refused, never spliced */
	f.drop_after = 7;
	f.ignore_range = 1;
	c = client_with(endpoint, "secret", 3);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_PROTOCOL, get_all(c, "k", &b, &err));
	T_EQ_INT(7, b.len); /* only the bytes of the first answer */
	f.ignore_range = 0;
	s3d_client_free(c);

	/* a non-repeatable stream is not retried */
	{
		struct mem_stream ms = { .p = (const uint8_t *)"abc", .len = 3 };
		f.fail_first = 1;
		c = client_with(endpoint, "secret", 3);
		s3d_error_clear(&err);
		T_EQ_INT(S3D_E_S3, s3d_put_object_stream(c, "bkt", "k", 3, mem_read, NULL, &ms,
							 NULL, NULL, &err));
		T_EQ_INT(1, err.attempts);
		s3d_client_free(c);
	}
	t_fault_stop(&srv);

	/* nobody listening: a transport error, retried, then reported */
	c = client_with(endpoint, "secret", 2);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_TRANSPORT, get_all(c, "k", &b, &err));
	T_TRUE(err.curl_code != 0);
	T_EQ_INT(3, err.attempts);
	s3d_client_free(c);
	s3d_buf_cleanup(&b);
}

int main(void)
{
	s3d_client *c;

	c = client();
	if (t_s3_new_bucket("s3_client", c, "client", bucket, sizeof(bucket)) != 0) {
		s3d_client_free(c);
		return 1;
	}
	T_RUN(test_bad_config_and_arguments);
	T_RUN(test_errors_carry_code_and_request_id);
	T_RUN(test_put_get_head_delete_odd_keys);
	T_RUN(test_ranges);
	T_RUN(test_stream_put_and_checksums);
	T_RUN(test_copy);
	T_RUN(test_multipart_ops);
	T_RUN(test_list_parts_past_1000);
	T_RUN(test_list_objects_past_1000_and_batch_delete);
	T_RUN(test_list_multipart_uploads);
	T_RUN(test_presigned_urls);
	T_RUN(test_concurrent_use);
	T_RUN(test_retries_and_resume);
	s3d_client_free(c);
	curl_global_cleanup();
	return t_done("s3_client");
}
