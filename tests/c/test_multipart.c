/*
 * Parallel multipart upload against a live S3-compatible server (versitygw
 * through tests/with-s3.sh), plus a loopback fault server for the retry path.
 * Every test works in this run's own bucket, removed at the end.
 */
#include "t.h"
#include "t_s3.h"

#include "multipart.h"
#include "s3_client.h"
#include "s3direct.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#define MiB (1024u * 1024u)
#define PART (5u * MiB)

static char bucket[64];

static s3d_client *client_at(const char *endpoint, int retries)
{
	return t_s3_client(endpoint, retries, 20000);
}

static s3d_client *client(void)
{
	return client_at(NULL, 3);
}

/* Downloads key and checks its bytes (by SHA-256) and its size against want. */
static void check_object(s3d_client *c, const char *key, const uint8_t *want, size_t n)
{
	struct t_sha256_sink h;
	uint8_t got[32], exp[32];
	s3d_obj_info info;
	s3d_error err;

	T_REQUIRE(t_sha256_sink_init(&h) == 0);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_get_object(c, bucket, key, 0, -1, t_sha256_sink, &h, NULL, &err));
	t_sha256_sink_final(&h, got);
	t_sha256(want, n, exp);
	T_EQ_INT(n, h.n);
	T_EQ_MEM(exp, 32, got, 32);
	T_EQ_INT(S3D_OK, s3d_head_object(c, bucket, key, 0, &info, &err));
	T_EQ_INT(n, info.size);
}

/* ---- listing helpers ---- */

static int uploads_for(s3d_client *c, const char *key)
{
	return t_s3_uploads_of(c, bucket, key, NULL, 0);
}

struct part_list {
	s3d_part p[16];
	size_t n;
};

static int collect_part(void *ud, const s3d_list_entry *e)
{
	struct part_list *l = ud;
	s3d_part *p;

	if (e->kind != S3D_ENTRY_PART || l->n >= 16)
		return 1;
	p = &l->p[l->n++];
	memset(p, 0, sizeof(*p));
	p->number = e->part_number;
	p->size = e->size;
	snprintf(p->etag, sizeof(p->etag), "%s", e->etag);
	snprintf(p->checksum_sha256, sizeof(p->checksum_sha256), "%s",
		 e->checksum_sha256 ? e->checksum_sha256 : "");
	return 0;
}

/* ---- hostile cases first ---- */

static void test_bad_arguments(void)
{
	s3d_mpu_config cfg;
	s3d_client *c = client();
	s3d_mpu *m = (s3d_mpu *)1;
	s3d_error err;

	T_REQUIRE(c);
	memset(&cfg, 0, sizeof(cfg));
	s3d_error_clear(&err);
	cfg.part_size = PART - 1; /* S3 refuses parts under 5 MiB but the last */
	T_EQ_INT(S3D_E_INVAL, s3d_mpu_new(c, bucket, "k", NULL, 1, &cfg, &m, &err));
	T_TRUE(m == NULL);
	T_TRUE(err.message[0] != 0);
	cfg.part_size = 1;
	T_EQ_INT(S3D_E_INVAL, s3d_mpu_new(c, bucket, "k", NULL, 1, &cfg, &m, &err));
	cfg.part_size = (size_t)6 * 1024 * MiB; /* over S3's 5 GiB */
	T_EQ_INT(S3D_E_INVAL, s3d_mpu_new(c, bucket, "k", NULL, 1, &cfg, &m, &err));
	cfg.part_size = PART;
	cfg.max_in_flight = -1;
	T_EQ_INT(S3D_E_INVAL, s3d_mpu_new(c, bucket, "k", NULL, 1, &cfg, &m, &err));
	cfg.max_in_flight = S3D_MPU_MAX_IN_FLIGHT + 1;
	T_EQ_INT(S3D_E_INVAL, s3d_mpu_new(c, bucket, "k", NULL, 1, &cfg, &m, &err));
	cfg.max_in_flight = 2;
	/* a new upload starts at 1; a continued one needs an id and 1..10000 */
	T_EQ_INT(S3D_E_INVAL, s3d_mpu_new(c, bucket, "k", NULL, 3, &cfg, &m, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_mpu_new(c, bucket, "k", "", 3, &cfg, &m, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_mpu_new(c, bucket, "k", "id", 0, &cfg, &m, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_mpu_new(c, bucket, "k", "id", 10001, &cfg, &m, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_mpu_new(c, bucket, "", NULL, 1, &cfg, &m, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_mpu_new(c, NULL, "k", NULL, 1, &cfg, &m, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_mpu_new(c, bucket, "k", NULL, 1, &cfg, NULL, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_mpu_write(NULL, "x", 1, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_mpu_complete(NULL, NULL, 0, NULL, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_mpu_abort(NULL, &err));
	T_TRUE(s3d_mpu_upload_id(NULL) == NULL);
	T_EQ_INT(0, s3d_mpu_peak_memory(NULL));
	s3d_mpu_free(NULL);
	cfg.part_size = PART - 1;
	T_EQ_INT(S3D_E_INVAL, s3d_upload_file(c, bucket, "k", "/dev/null", &cfg, NULL, NULL, &err));
	s3d_client_free(c);
}

static void test_upload_file_bad_paths(void)
{
	s3d_client *c = client();
	s3d_error err;
	size_t peak = 123;

	T_REQUIRE(c);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_IO, s3d_upload_file(c, bucket, "k", "/nonexistent/s3d-file", NULL, NULL,
					   &peak, &err));
	T_EQ_INT(ENOENT, err.sys_errno);
	T_EQ_INT(0, peak);
	T_EQ_INT(S3D_E_INVAL, s3d_upload_file(c, bucket, "k", "/tmp", NULL, NULL, &peak, &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_head_object(c, bucket, "k", 0, NULL, &err));
	s3d_client_free(c);
}

static void test_missing_bucket(void)
{
	s3d_client *c = client();
	s3d_mpu *m = NULL;
	s3d_error err;
	char nobucket[80], path[] = "/tmp/s3d-mpu-XXXXXX", text[512];
	uint8_t *data = malloc(PART);
	int rc, fd;

	T_REQUIRE(c && data);
	snprintf(nobucket, sizeof(nobucket), "%s-missing", bucket);
	s3d_error_clear(&err);
	rc = s3d_mpu_new(c, nobucket, "k", NULL, 1, NULL, &m, &err);
	T_TRUE(rc == S3D_E_NOTFOUND || rc == S3D_E_S3);
	T_TRUE(m == NULL);
	T_EQ_STR("NoSuchBucket", err.code);
	T_EQ_INT(404, err.http_status);
	s3d_error_format(&err, rc, text, sizeof(text));
	fprintf(stderr, "  (expected) %s\n", text);

	/* the MPU path of s3d_upload_file reports it the same way */
	fd = mkstemp(path);
	T_REQUIRE(fd >= 0);
	t_fill_pattern(data, PART, 0, 9);
	T_TRUE(write(fd, data, PART) == (ssize_t)PART);
	close(fd);
	s3d_error_clear(&err);
	rc = s3d_upload_file(c, nobucket, "k", path, NULL, NULL, NULL, &err);
	T_TRUE(rc == S3D_E_NOTFOUND || rc == S3D_E_S3);
	T_EQ_STR("NoSuchBucket", err.code);
	unlink(path);
	free(data);
	s3d_client_free(c);
}

static void test_abort_leaves_nothing(void)
{
	s3d_mpu_config cfg = { .part_size = PART, .max_in_flight = 2 };
	const char *key = "abort/me";
	s3d_client *c = client();
	s3d_mpu *m = NULL;
	s3d_error err;
	uint8_t *data = malloc(PART + 10);

	T_REQUIRE(c && data);
	t_fill_pattern(data, PART + 10, 0, 1);
	s3d_error_clear(&err);
	T_REQUIRE(s3d_mpu_new(c, bucket, key, NULL, 1, &cfg, &m, &err) == S3D_OK);
	T_TRUE(strlen(s3d_mpu_upload_id(m)) > 0);
	T_EQ_INT(1, uploads_for(c, key));
	/* one full part goes out at once; abort while it may still be in flight */
	T_EQ_INT(S3D_OK, s3d_mpu_write(m, data, PART + 10, &err));
	T_EQ_INT(S3D_OK, s3d_mpu_abort(m, &err));
	T_EQ_INT(S3D_E_ABORTED, s3d_mpu_write(m, data, 1, &err));
	T_EQ_INT(S3D_E_ABORTED, s3d_mpu_complete(m, NULL, 0, NULL, &err));
	s3d_mpu_free(m);
	T_EQ_INT(0, uploads_for(c, key));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_head_object(c, bucket, key, 0, NULL, &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_get_object(c, bucket, key, 0, -1, t_sha256_sink, NULL, NULL, &err));
	free(data);
	s3d_client_free(c);
}

/* ---- fault server: UploadPart answers 503 SlowDown to the first attempts ---- */

struct fault {
	int fail_parts;    /* this many UploadPart requests get a 503 */
	int part_requests; /* UploadPart requests seen */
	int completes;
};

static void fault_answer(void *ud, int fd, const char *req, size_t len)
{
	struct fault *f = ud;
	char method[16], target[1024], etag[32], id[32];
	const char *body, *pn;

	(void)len;
	if (t_fault_req_line(fd, req, method, sizeof(method), target, sizeof(target)) != 0)
		return;
	pn = strstr(target, "partNumber=");
	if (strcmp(method, "POST") == 0 && strstr(target, "?uploads")) {
		body = "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
		       "<UploadId>FAULTUPLOAD</UploadId></InitiateMultipartUploadResult>";
		t_send_answer(fd, "200 OK", NULL, body, strlen(body));
	} else if (strcmp(method, "PUT") == 0 && pn) {
		if (f->part_requests++ < f->fail_parts) {
			snprintf(id, sizeof(id), "FAULT%d", f->part_requests);
			t_send_s3_error(fd, "503 Slow Down", "SlowDown", id);
		} else {
			snprintf(etag, sizeof(etag), "ETag: \"etag-%d\"\r\n", atoi(pn + 11));
			t_send_answer(fd, "200 OK", etag, NULL, 0);
		}
	} else if (strcmp(method, "POST") == 0 && strstr(target, "uploadId=")) {
		f->completes++;
		body = "<CompleteMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
		       "<ETag>\"final-2\"</ETag></CompleteMultipartUploadResult>";
		t_send_answer(fd, "200 OK", NULL, body, strlen(body));
	} else {
		t_send_answer(fd, "400 Bad Request", NULL, NULL, 0);
	}
}

static void test_part_retries(void)
{
	s3d_mpu_config cfg = { .part_size = PART, .max_in_flight = 2 };
	struct fault f = { .fail_parts = 2 };
	struct t_fault_server srv;
	const char *endpoint = srv.endpoint;
	const s3d_part *parts = NULL;
	size_t nparts = 0;
	s3d_obj_info info;
	s3d_client *c;
	s3d_mpu *m = NULL;
	s3d_error err;
	uint8_t *data = calloc(1, PART + 100);

	T_REQUIRE(data);
	T_REQUIRE(t_fault_start(&srv, fault_answer, &f) == 0);

	/* two 503s on parts: retried in the multi loop, then the upload completes */
	c = client_at(endpoint, 3);
	T_REQUIRE(c);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_mpu_new(c, "bkt", "k", NULL, 1, &cfg, &m, &err));
	T_EQ_STR("FAULTUPLOAD", s3d_mpu_upload_id(m));
	T_EQ_INT(S3D_OK, s3d_mpu_write(m, data, PART + 100, &err));
	T_EQ_INT(S3D_OK, s3d_mpu_drain(m, &parts, &nparts, &err));
	T_EQ_INT(1, nparts);
	T_EQ_INT(S3D_OK, s3d_mpu_complete(m, NULL, 0, &info, &err));
	T_EQ_STR("\"final-2\"", info.etag);
	T_EQ_INT(4, f.part_requests);
	T_EQ_INT(1, f.completes);
	s3d_mpu_free(m);
	s3d_client_free(c);

	/* retries exhausted: the part's S3 error sticks to every later call */
	f.part_requests = 0;
	f.fail_parts = 100;
	c = client_at(endpoint, 1);
	T_REQUIRE(c);
	m = NULL;
	T_EQ_INT(S3D_OK, s3d_mpu_new(c, "bkt", "k", NULL, 1, &cfg, &m, &err));
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_mpu_write(m, data, PART, &err));
	T_EQ_INT(S3D_E_S3, s3d_mpu_drain(m, &parts, &nparts, &err));
	T_EQ_STR("SlowDown", err.code);
	T_EQ_INT(503, err.http_status);
	T_EQ_INT(2, err.attempts);
	T_TRUE(strncmp(err.request_id, "FAULT", 5) == 0);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_S3, s3d_mpu_write(m, data, 1, &err));
	T_EQ_STR("SlowDown", err.code);
	T_EQ_INT(S3D_E_S3, s3d_mpu_complete(m, NULL, 0, NULL, &err));
	T_EQ_INT(1, f.completes);
	s3d_mpu_free(m);
	s3d_client_free(c);
	t_fault_stop(&srv);
	free(data);
}

/* ---- against the server ---- */

static void test_irregular_writes_within_window(void)
{
	static const size_t sizes[] = { 1, 22, MiB + 3, 4093, 3 * MiB + 1, 0, 65536, 7 * MiB + 11 };
	s3d_mpu_config cfg = { .part_size = PART, .max_in_flight = 2 };
	const size_t total = 3 * PART + MiB + 3; /* 3 full parts and a short last one */
	const char *key = "dir/irregular object";
	const s3d_part *parts = NULL;
	size_t nparts = 0, off = 0, i = 0, n;
	s3d_obj_info info;
	s3d_client *c = client();
	s3d_mpu *m = NULL;
	s3d_error err;
	uint8_t *data = malloc(total);

	T_REQUIRE(c && data);
	t_fill_pattern(data, total, 0, 2);
	s3d_error_clear(&err);
	T_REQUIRE(s3d_mpu_new(c, bucket, key, NULL, 0, &cfg, &m, &err) == S3D_OK);
	while (off < total) {
		n = sizes[i++ % (sizeof(sizes) / sizeof(sizes[0]))];
		if (n > total - off)
			n = total - off;
		T_EQ_INT(S3D_OK, s3d_mpu_write(m, data + off, n, &err));
		off += n;
		T_TRUE(s3d_mpu_peak_memory(m) <= 3 * (size_t)PART);
	}
	T_EQ_INT(S3D_OK, s3d_mpu_write(m, NULL, 0, &err));
	T_EQ_INT(S3D_OK, s3d_mpu_drain(m, &parts, &nparts, &err));
	T_EQ_INT(3, nparts);
	for (i = 0; i < nparts; i++) {
		T_EQ_INT(i + 1, parts[i].number);
		T_EQ_INT(PART, parts[i].size);
		T_TRUE(parts[i].etag[0] != 0);
		T_EQ_STR("", parts[i].checksum_sha256);
	}
	T_EQ_INT(S3D_OK, s3d_mpu_complete(m, NULL, 0, &info, &err));
	T_TRUE(info.etag[0] != 0);
	fprintf(stderr, "  peak part memory %zu bytes (bound %zu), %d parts in flight at most\n",
		s3d_mpu_peak_memory(m), 3 * (size_t)PART, s3d_mpu_in_flight_peak(m));
	T_TRUE(s3d_mpu_peak_memory(m) >= PART);
	T_TRUE(s3d_mpu_peak_memory(m) <= 3 * (size_t)PART);
	T_TRUE(s3d_mpu_in_flight_peak(m) >= 1 && s3d_mpu_in_flight_peak(m) <= 2);
	/* a completed upload takes nothing more */
	T_EQ_INT(S3D_E_INVAL, s3d_mpu_write(m, data, 1, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_mpu_complete(m, NULL, 0, NULL, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_mpu_abort(m, &err));
	s3d_mpu_free(m);
	check_object(c, key, data, total);
	T_EQ_INT(0, uploads_for(c, key));
	free(data);
	s3d_client_free(c);
}

/*
 * A shared budget: each upload's first buffer is its own, further ones come
 * from the budget and go back to it. Budget of one part, 4 slots: at most 2
 * buffers, so at most 2 parts in flight; budget 0: one part at a time. Two
 * uploads share one budget, and it is whole again after both.
 */
static void budget_upload(s3d_client *c, s3d_part_budget *b, const char *key,
			  const uint8_t *data, size_t total, size_t max_mem, int max_flight)
{
	s3d_mpu_config cfg = { .part_size = PART, .max_in_flight = 4, .budget = b };
	s3d_mpu *m = NULL;
	s3d_error err;
	size_t off;

	s3d_error_clear(&err);
	T_REQUIRE(s3d_mpu_new(c, bucket, key, NULL, 0, &cfg, &m, &err) == S3D_OK);
	for (off = 0; off < total; off += MiB + 7)
		T_EQ_INT(S3D_OK, s3d_mpu_write(m, data + off, total - off < MiB + 7 ? total - off : MiB + 7,
					       &err));
	T_EQ_INT(S3D_OK, s3d_mpu_complete(m, NULL, 0, NULL, &err));
	fprintf(stderr, "  %s: peak %zu bytes (bound %zu), %d in flight (bound %d)\n", key,
		s3d_mpu_peak_memory(m), max_mem, s3d_mpu_in_flight_peak(m), max_flight);
	T_TRUE(s3d_mpu_peak_memory(m) >= PART && s3d_mpu_peak_memory(m) <= max_mem);
	T_TRUE(s3d_mpu_in_flight_peak(m) >= 1 && s3d_mpu_in_flight_peak(m) <= max_flight);
	s3d_mpu_free(m);
	check_object(c, key, data, total);
}

static void test_shared_budget(void)
{
	const size_t total = 6 * PART + 12345;
	s3d_part_budget *one = NULL, *none = NULL;
	s3d_mpu_config cfg = { .part_size = PART, .max_in_flight = 4 };
	s3d_client *c = client();
	uint8_t *data = malloc(total);
	s3d_mpu *m1 = NULL, *m2 = NULL;
	s3d_error err;
	size_t off;

	T_REQUIRE(c && data);
	t_fill_pattern(data, total, 0, 9);
	T_EQ_INT(S3D_E_INVAL, s3d_part_budget_new(PART, NULL));
	T_EQ_INT(0, s3d_part_budget_available(NULL));
	T_REQUIRE(s3d_part_budget_new(PART, &one) == S3D_OK);
	T_REQUIRE(s3d_part_budget_new(0, &none) == S3D_OK);
	budget_upload(c, one, "budget/one", data, total, 2 * (size_t)PART, 2);
	T_EQ_INT(PART, s3d_part_budget_available(one));
	budget_upload(c, none, "budget/none", data, total, PART, 1);
	T_EQ_INT(0, s3d_part_budget_available(none));

	/* two uploads, one share between them, written in turns */
	cfg.budget = one;
	s3d_error_clear(&err);
	T_REQUIRE(s3d_mpu_new(c, bucket, "budget/a", NULL, 0, &cfg, &m1, &err) == S3D_OK);
	T_REQUIRE(s3d_mpu_new(c, bucket, "budget/b", NULL, 0, &cfg, &m2, &err) == S3D_OK);
	for (off = 0; off < total; off += PART / 2) {
		size_t n = total - off < PART / 2 ? total - off : PART / 2;

		T_EQ_INT(S3D_OK, s3d_mpu_write(m1, data + off, n, &err));
		T_EQ_INT(S3D_OK, s3d_mpu_write(m2, data + off, n, &err));
		T_TRUE(s3d_mpu_peak_memory(m1) + s3d_mpu_peak_memory(m2) <= 4 * (size_t)PART);
	}
	T_EQ_INT(S3D_OK, s3d_mpu_complete(m1, NULL, 0, NULL, &err));
	T_EQ_INT(S3D_OK, s3d_mpu_complete(m2, NULL, 0, NULL, &err));
	/* together never more than their own buffers and the one share */
	fprintf(stderr, "  two uploads: in flight %d and %d\n", s3d_mpu_in_flight_peak(m1),
		s3d_mpu_in_flight_peak(m2));
	T_TRUE(s3d_mpu_in_flight_peak(m1) + s3d_mpu_in_flight_peak(m2) <= 4);
	s3d_mpu_free(m1);
	s3d_mpu_free(m2);
	T_EQ_INT(PART, s3d_part_budget_available(one));
	check_object(c, "budget/a", data, total);
	check_object(c, "budget/b", data, total);
	/* an aborted upload gives its share back too */
	T_REQUIRE(s3d_mpu_new(c, bucket, "budget/abort", NULL, 0, &cfg, &m1, &err) == S3D_OK);
	T_EQ_INT(S3D_OK, s3d_mpu_write(m1, data, 3 * PART, &err));
	T_EQ_INT(S3D_OK, s3d_mpu_abort(m1, &err));
	s3d_mpu_free(m1);
	T_EQ_INT(PART, s3d_part_budget_available(one));
	T_EQ_INT(0, uploads_for(c, "budget/abort"));
	s3d_part_budget_free(one);
	s3d_part_budget_free(none);
	s3d_part_budget_free(NULL);
	free(data);
	s3d_client_free(c);
}

/* A filled buffer handed over (no copy) becomes the upload's first part. */
static void test_adopt(void)
{
	s3d_mpu_config cfg = { .part_size = PART, .max_in_flight = 2 };
	const size_t total = PART + 3 * MiB;
	s3d_client *c = client();
	uint8_t *data = malloc(total), *buf = s3d_part_buf_new(PART), *extra;
	s3d_mpu *m = NULL;
	s3d_error err;

	T_REQUIRE(c && data && buf);
	t_fill_pattern(data, total, 0, 4);
	memcpy(buf, data, PART);
	s3d_error_clear(&err);
	T_REQUIRE(s3d_mpu_new(c, bucket, "adopt/full", NULL, 0, &cfg, &m, &err) == S3D_OK);
	T_EQ_INT(S3D_OK, s3d_mpu_adopt(m, buf, PART, &err)); /* full: sent at once */
	T_EQ_INT(S3D_OK, s3d_mpu_write(m, data + PART, total - PART, &err));
	/* only before the upload has a buffer; the buffer is freed either way */
	extra = s3d_part_buf_new(PART);
	T_REQUIRE(extra != NULL);
	T_EQ_INT(S3D_E_INVAL, s3d_mpu_adopt(m, extra, 1, &err));
	T_EQ_INT(S3D_OK, s3d_mpu_complete(m, NULL, 0, NULL, &err));
	T_TRUE(s3d_mpu_peak_memory(m) <= 3 * (size_t)PART);
	s3d_mpu_free(m);
	check_object(c, "adopt/full", data, total);

	buf = s3d_part_buf_new(PART); /* a partly filled one: the rest follows */
	T_REQUIRE(buf != NULL);
	memcpy(buf, data, 1000);
	T_REQUIRE(s3d_mpu_new(c, bucket, "adopt/partial", NULL, 0, &cfg, &m, &err) == S3D_OK);
	T_EQ_INT(S3D_OK, s3d_mpu_adopt(m, buf, 1000, &err));
	T_EQ_INT(S3D_OK, s3d_mpu_write(m, data + 1000, total - 1000, &err));
	T_EQ_INT(S3D_OK, s3d_mpu_complete(m, NULL, 0, NULL, &err));
	s3d_mpu_free(m);
	check_object(c, "adopt/partial", data, total);
	T_EQ_INT(S3D_E_INVAL, s3d_mpu_adopt(NULL, NULL, 1, &err));
	free(data);
	s3d_client_free(c);
}

/* Two parts sent and persisted by one handle; a second handle continues the
 * same upload from part 3 with the parts ListParts reports. Parts carry
 * x-amz-checksum-sha256 (the server checks each one). */
static void test_resume_with_checksums(void)
{
	s3d_mpu_config cfg = { .part_size = PART, .max_in_flight = 3, .checksum_sha256 = 1 };
	const size_t total = 2 * PART + 4099;
	const char *key = "resumed";
	const s3d_part *parts = NULL;
	struct part_list prior;
	char upload_id[2048], sum[64];
	size_t nparts = 0, i;
	s3d_client *c = client();
	s3d_mpu *m = NULL;
	s3d_error err;
	uint8_t *data = malloc(total);

	T_REQUIRE(c && data);
	t_fill_pattern(data, total, 0, 3);
	s3d_error_clear(&err);
	T_REQUIRE(s3d_mpu_new(c, bucket, key, NULL, 1, &cfg, &m, &err) == S3D_OK);
	snprintf(upload_id, sizeof(upload_id), "%s", s3d_mpu_upload_id(m));
	T_EQ_INT(S3D_OK, s3d_mpu_write(m, data, 2 * PART, &err));
	T_EQ_INT(S3D_OK, s3d_mpu_drain(m, &parts, &nparts, &err));
	T_REQUIRE(nparts == 2);
	for (i = 0; i < 2; i++) {
		t_sha256_b64(data + i * PART, PART, sum);
		T_EQ_INT(i + 1, parts[i].number);
		T_EQ_STR(sum, parts[i].checksum_sha256);
	}
	s3d_mpu_free(m); /* not completed: the upload stays for later */
	T_EQ_INT(1, uploads_for(c, key));

	memset(&prior, 0, sizeof(prior));
	T_EQ_INT(S3D_OK, s3d_list_parts(c, bucket, key, upload_id, NULL, collect_part, &prior, &err));
	T_REQUIRE(prior.n == 2);
	for (i = 0; i < 2; i++) {
		t_sha256_b64(data + i * PART, PART, sum);
		T_EQ_INT(i + 1, prior.p[i].number);
		T_EQ_INT(PART, prior.p[i].size);
		T_EQ_STR(sum, prior.p[i].checksum_sha256);
	}

	m = NULL;
	T_REQUIRE(s3d_mpu_new(c, bucket, key, upload_id, 3, &cfg, &m, &err) == S3D_OK);
	T_EQ_STR(upload_id, s3d_mpu_upload_id(m));
	T_EQ_INT(S3D_OK, s3d_mpu_write(m, data + 2 * PART, total - 2 * PART, &err));
	T_EQ_INT(S3D_OK, s3d_mpu_complete(m, prior.p, prior.n, NULL, &err));
	T_EQ_INT(S3D_OK, s3d_mpu_drain(m, &parts, &nparts, &err));
	T_EQ_INT(1, nparts);
	T_EQ_INT(3, parts[0].number);
	T_EQ_INT(4099, parts[0].size);
	s3d_mpu_free(m);
	check_object(c, key, data, total);
	T_EQ_INT(0, uploads_for(c, key));
	free(data);
	s3d_client_free(c);
}

static void test_empty_upload(void)
{
	s3d_mpu_config cfg = { .part_size = PART };
	const char *key = "empty-mpu";
	s3d_client *c = client();
	s3d_mpu *m = NULL;
	s3d_error err;

	T_REQUIRE(c);
	s3d_error_clear(&err);
	T_REQUIRE(s3d_mpu_new(c, bucket, key, NULL, 1, &cfg, &m, &err) == S3D_OK);
	T_EQ_INT(S3D_OK, s3d_mpu_complete(m, NULL, 0, NULL, &err));
	T_EQ_INT(0, s3d_mpu_peak_memory(m)); /* no buffer for no bytes */
	s3d_mpu_free(m);
	check_object(c, key, (const uint8_t *)"", 0);
	s3d_client_free(c);
}

static int write_file(char *path, const uint8_t *p, size_t n)
{
	int fd = mkstemp(path);
	int ok;

	if (fd < 0)
		return -1;
	ok = write(fd, p, n) == (ssize_t)n;
	close(fd);
	return ok ? 0 : -1;
}

static void test_upload_file_small(void)
{
	s3d_mpu_config cfg = { .part_size = PART, .checksum_sha256 = 1 };
	char path[] = "/tmp/s3d-small-XXXXXX";
	const size_t n = 300 * 1024 + 7;
	s3d_obj_info info;
	s3d_client *c = client();
	s3d_error err;
	size_t peak = 1;
	uint8_t *data = malloc(n);

	T_REQUIRE(c && data);
	t_fill_pattern(data, n, 0, 4);
	T_REQUIRE(write_file(path, data, n) == 0);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_upload_file(c, bucket, "small-file", path, &cfg, &info, &peak, &err));
	T_EQ_INT(0, peak); /* one PutObject streamed from the file: no part buffers */
	T_TRUE(info.etag[0] == '"' && !strchr(info.etag, '-'));
	check_object(c, "small-file", data, n);
	T_EQ_INT(0, uploads_for(c, "small-file"));
	unlink(path);
	free(data);
	s3d_client_free(c);
}

static void test_upload_file_multipart(void)
{
	s3d_mpu_config cfg = { .part_size = PART, .max_in_flight = 3 };
	char path[] = "/tmp/s3d-big-XXXXXX";
	const size_t n = 21 * MiB;
	s3d_obj_info info;
	s3d_client *c = client();
	s3d_error err;
	size_t peak = 0;
	uint8_t *data = malloc(n);

	T_REQUIRE(c && data);
	t_fill_pattern(data, n, 0, 5);
	T_REQUIRE(write_file(path, data, n) == 0);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_upload_file(c, bucket, "big-file", path, &cfg, &info, &peak, &err));
	fprintf(stderr, "  upload_file: peak part memory %zu bytes (bound %zu)\n", peak,
		4 * (size_t)PART);
	T_TRUE(peak >= PART && peak <= 4 * (size_t)PART);
	T_TRUE(info.etag[0] != 0);
	check_object(c, "big-file", data, n);
	T_EQ_INT(0, uploads_for(c, "big-file"));
	unlink(path);
	free(data);
	s3d_client_free(c);
}

/* ---- the run's bucket ---- */

int main(void)
{
	static const char *const keys[] = { "abort/me", "dir/irregular object", "resumed",
					    "empty-mpu", "small-file", "big-file", "k" };
	s3d_client *c = client();

	if (t_s3_new_bucket("multipart", c, "mpu", bucket, sizeof(bucket)) != 0) {
		s3d_client_free(c);
		return 1;
	}
	T_RUN(test_bad_arguments);
	T_RUN(test_upload_file_bad_paths);
	T_RUN(test_missing_bucket);
	T_RUN(test_abort_leaves_nothing);
	T_RUN(test_part_retries);
	T_RUN(test_irregular_writes_within_window);
	T_RUN(test_shared_budget);
	T_RUN(test_adopt);
	T_RUN(test_resume_with_checksums);
	T_RUN(test_empty_upload);
	T_RUN(test_upload_file_small);
	T_RUN(test_upload_file_multipart);
	/* the keys this file creates, then whatever a failed test left */
	t_s3_drop_bucket(c, bucket, keys, sizeof(keys) / sizeof(keys[0]));
	s3d_client_free(c);
	curl_global_cleanup();
	return t_done("multipart");
}
