/*
 * Streaming SHA-256 verification against a live S3-compatible server
 * (versitygw through tests/with-s3.sh), plus a loopback fault server that
 * cuts, stretches and lies about ranges. Every digest is compared with
 * OpenSSL's digest of the same bytes computed here.
 */
#include "t.h"
#include "t_s3.h"

#include "s3_client.h"
#include "s3direct.h"
#include "verify.h"

#define MiB (1024u * 1024u)

static char bucket[64];

static s3d_client *client_at(const char *endpoint, int retries)
{
	return t_s3_client(endpoint, retries, 20000);
}

static s3d_client *client(void)
{
	return client_at(NULL, 3);
}

/* Puts n bytes at key, verifies them with cfg and compares with OpenSSL. */
static void put_and_verify(s3d_client *c, const char *key, const uint8_t *data, size_t n,
			   const s3d_verify_config *cfg, s3d_verify_stats *st)
{
	uint8_t want[32], got[32];
	int64_t size = -1;
	s3d_error err;

	s3d_error_clear(&err);
	T_REQUIRE(s3d_put_object(c, bucket, key, data, n, NULL, NULL, &err) == S3D_OK);
	memset(got, 0, sizeof(got));
	T_EQ_INT(S3D_OK, s3d_verify_sha256_stats(c, bucket, key, cfg, got, &size, st, &err));
	t_sha256(data, n, want);
	T_EQ_MEM(want, 32, got, 32);
	T_EQ_INT(n, size);
}

/* ---- hostile cases first ---- */

static void test_bad_arguments(void)
{
	s3d_verify_config cfg = { 0, 0 };
	s3d_client *c = client();
	uint8_t md[32];
	int64_t size = 0;
	s3d_error err;

	T_REQUIRE(c);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_INVAL, s3d_verify_sha256(NULL, bucket, "k", NULL, md, &size, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_verify_sha256(c, NULL, "k", NULL, md, &size, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_verify_sha256(c, bucket, NULL, NULL, md, &size, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_verify_sha256(c, bucket, "k", NULL, NULL, &size, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_verify_sha256(c, bucket, "", NULL, md, &size, &err));
	cfg.max_in_flight = -1;
	T_EQ_INT(S3D_E_INVAL, s3d_verify_sha256(c, bucket, "k", &cfg, md, &size, &err));
	cfg.max_in_flight = S3D_VERIFY_MAX_IN_FLIGHT + 1;
	T_EQ_INT(S3D_E_INVAL, s3d_verify_sha256(c, bucket, "k", &cfg, md, &size, &err));
	cfg.max_in_flight = 1;
	cfg.range_size = (size_t)S3D_VERIFY_MAX_RANGE + 1;
	T_EQ_INT(S3D_E_INVAL, s3d_verify_sha256(c, bucket, "k", &cfg, md, &size, &err));
	T_EQ_INT(0, size);
	s3d_client_free(c);
}

static void test_missing_key_and_bucket(void)
{
	s3d_client *c = client();
	char nobucket[80];
	s3d_verify_stats st;
	uint8_t md[32];
	int64_t size = 7;
	s3d_error err;

	T_REQUIRE(c);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_verify_sha256_stats(c, bucket, "no/such/key", NULL, md, &size,
							 &st, &err));
	T_EQ_INT(404, err.http_status);
	T_EQ_INT(7, size);
	T_EQ_INT(0, st.attempts);
	snprintf(nobucket, sizeof(nobucket), "%s-missing", bucket);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_verify_sha256(c, nobucket, "k", NULL, md, &size, &err));
	T_EQ_INT(404, err.http_status);
	s3d_client_free(c);
}

/* ---- fault server: ranges cut short, stretched, or from a changed object ---- */

#define FAULT_BODY 64

struct fault {
	int cut_first;      /* the first GET of the range starting here is cut mid-body */
	int ignore_range;   /* answer 200 with the whole body */
	int lie_total;      /* Content-Range claims this total instead */
	int no_if_match;    /* GETs that came without If-Match */
	int gets;
	char ranges[32][32];
	uint8_t body[FAULT_BODY];
};

static void fault_answer(void *ud, int fd, const char *req, size_t len)
{
	struct fault *f = ud;
	char range[32], if_match[64], extra[128];
	long first = 0, last = FAULT_BODY - 1;
	size_t n, send_n;

	(void)len;
	if (strncmp(req, "HEAD ", 5) == 0) {
		t_send_head(fd, "200 OK", "ETag: \"e1\"\r\n", FAULT_BODY);
		return;
	}
	if (!t_req_if_match(req, if_match, sizeof(if_match)) || strcmp(if_match, "\"e1\"") != 0)
		f->no_if_match++;
	if (t_req_range(req, range, sizeof(range))) {
		if (f->gets < 32)
			snprintf(f->ranges[f->gets], sizeof(f->ranges[0]), "%s", range);
		sscanf(range, "%ld-%ld", &first, &last);
	}
	f->gets++;
	if (f->ignore_range) {
		first = 0;
		last = FAULT_BODY - 1;
		t_send_head(fd, "200 OK", NULL, FAULT_BODY);
	} else {
		snprintf(extra, sizeof(extra), "Content-Range: bytes %ld-%ld/%d\r\n", first, last,
			 f->lie_total ? f->lie_total : FAULT_BODY);
		t_send_head(fd, "206 Partial Content", extra, (size_t)(last - first + 1));
	}
	n = (size_t)(last - first + 1);
	send_n = n;
	if (f->cut_first >= 0 && first == f->cut_first) {
		send_n = n / 2; /* then the connection drops */
		f->cut_first = -1;
	}
	t_send_all(fd, f->body + first, send_n);
}

static void test_faults(void)
{
	s3d_verify_config cfg = { .range_size = 16, .max_in_flight = 2 };
	struct fault f = { .cut_first = 32 };
	struct t_fault_server srv;
	uint8_t want[32], got[32];
	s3d_verify_stats st;
	int64_t size = 0;
	s3d_client *c;
	s3d_error err;
	int i, retried = 0;

	t_fill(f.body, FAULT_BODY, 11);
	T_REQUIRE(t_fault_start(&srv, fault_answer, &f) == 0);
	c = client_at(srv.endpoint, 3);
	T_REQUIRE(c);
	t_sha256(f.body, FAULT_BODY, want);

	/* a range cut mid-body is fetched again from its own first byte */
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_verify_sha256_stats(c, "bkt", "k", &cfg, got, &size, &st, &err));
	T_EQ_MEM(want, 32, got, 32);
	T_EQ_INT(FAULT_BODY, size);
	T_EQ_INT(4, st.ranges);
	T_EQ_INT(5, st.attempts);
	T_EQ_INT(5, f.gets);
	T_TRUE(st.in_flight_peak >= 1 && st.in_flight_peak <= 2);
	T_EQ_INT(32, st.peak_memory);
	for (i = 0; i < f.gets && i < 32; i++)
		retried += strcmp(f.ranges[i], "32-47") == 0;
	T_EQ_INT(2, retried); /* never "40-47": the range restarts, not resumes */
	T_EQ_INT(0, f.no_if_match);

	/* a server that ignores Range sends more than a range holds */
	f.ignore_range = 1;
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_PROTOCOL, s3d_verify_sha256(c, "bkt", "k", &cfg, got, &size, &err));
	T_TRUE(err.message[0] != 0);
	f.ignore_range = 0;

	/* the object changed size under us */
	f.lie_total = FAULT_BODY + 1;
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_PROTOCOL, s3d_verify_sha256(c, "bkt", "k", &cfg, got, &size, &err));
	f.lie_total = 0;

	/* retries exhausted on a cut range: a transport error */
	s3d_client_free(c);
	c = client_at(srv.endpoint, 0);
	T_REQUIRE(c);
	f.cut_first = 0;
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_TRANSPORT, s3d_verify_sha256(c, "bkt", "k", &cfg, got, &size, &err));
	T_TRUE(err.curl_code != 0);
	T_EQ_INT(1, err.attempts);
	s3d_client_free(c);
	t_fault_stop(&srv);
}

/* ---- against the server ---- */

static void test_empty_and_one_byte(void)
{
	s3d_client *c = client();
	s3d_verify_stats st;

	T_REQUIRE(c);
	put_and_verify(c, "empty", (const uint8_t *)"", 0, NULL, &st);
	T_EQ_INT(0, st.attempts); /* HEAD only */
	T_EQ_INT(0, st.peak_memory);
	put_and_verify(c, "one", (const uint8_t *)"x", 1, NULL, &st);
	T_EQ_INT(1, st.ranges);
	T_EQ_INT(1, st.peak_memory);
	s3d_client_free(c);
}

static void test_many_ranges_within_bound(void)
{
	s3d_verify_config cfg = { .range_size = MiB, .max_in_flight = 3 };
	const size_t n = 5 * MiB + 17;
	s3d_client *c = client();
	s3d_verify_stats st;
	uint8_t *data = malloc(n);

	T_REQUIRE(c && data);
	t_fill(data, n, 1);
	put_and_verify(c, "dir/five mib+17", data, n, &cfg, &st);
	fprintf(stderr, "  %lld ranges, %lld GETs, %d in flight at most, %zu bytes of buffers\n",
		(long long)st.ranges, (long long)st.attempts, st.in_flight_peak, st.peak_memory);
	T_EQ_INT(6, st.ranges);
	T_EQ_INT(6, st.attempts);
	T_TRUE(st.in_flight_peak >= 1 && st.in_flight_peak <= 3);
	T_EQ_INT(3 * MiB, st.peak_memory);

	/* one range bigger than the object: one GET, a buffer of the object's size */
	cfg.range_size = 0;
	cfg.max_in_flight = 0;
	put_and_verify(c, "dir/five mib+17", data, n, &cfg, &st);
	T_EQ_INT(1, st.ranges);
	T_EQ_INT(n, st.peak_memory);

	/* ranges that divide the object exactly; fewer ranges than slots */
	cfg.range_size = MiB;
	cfg.max_in_flight = 8;
	put_and_verify(c, "three", data, 3 * MiB, &cfg, &st);
	T_EQ_INT(3, st.ranges);
	T_TRUE(st.in_flight_peak <= 3);
	T_EQ_INT(3 * MiB, st.peak_memory);
	free(data);
	s3d_client_free(c);
}

/* A multipart object (ETag "...-2") checks the same; If-Match takes that ETag. */
static void test_multipart_object(void)
{
	s3d_verify_config cfg = { .range_size = 2 * MiB, .max_in_flight = 2 };
	s3d_mpu_config mcfg = { .part_size = 5 * MiB, .max_in_flight = 2 };
	const size_t n = 5 * MiB + 1;
	uint8_t want[32], got[32];
	s3d_verify_stats st;
	s3d_obj_info info;
	int64_t size = 0;
	s3d_client *c = client();
	s3d_mpu *m = NULL;
	s3d_error err;
	uint8_t *data = malloc(n);

	T_REQUIRE(c && data);
	t_fill(data, n, 2);
	s3d_error_clear(&err);
	T_REQUIRE(s3d_mpu_new(c, bucket, "mpu", NULL, 1, &mcfg, &m, &err) == S3D_OK);
	T_EQ_INT(S3D_OK, s3d_mpu_write(m, data, n, &err));
	T_EQ_INT(S3D_OK, s3d_mpu_complete(m, NULL, 0, &info, &err));
	s3d_mpu_free(m);
	T_TRUE(strchr(info.etag, '-') != NULL);
	T_EQ_INT(S3D_OK, s3d_verify_sha256_stats(c, bucket, "mpu", &cfg, got, &size, &st, &err));
	t_sha256(data, n, want);
	T_EQ_MEM(want, 32, got, 32);
	T_EQ_INT(n, size);
	T_EQ_INT(3, st.ranges);
	free(data);
	s3d_client_free(c);
}

/* ---- the run's bucket ---- */

int main(void)
{
	static const char *const keys[] = { "empty", "one", "dir/five mib+17", "three",
					    "mpu" };
	s3d_client *c = client();

	if (t_s3_new_bucket("verify", c, "verify", bucket, sizeof(bucket)) != 0) {
		s3d_client_free(c);
		return 1;
	}
	T_RUN(test_bad_arguments);
	T_RUN(test_missing_key_and_bucket);
	T_RUN(test_faults);
	T_RUN(test_empty_and_one_byte);
	T_RUN(test_many_ranges_within_bound);
	T_RUN(test_multipart_object);
	t_s3_drop_bucket(c, bucket, keys, sizeof(keys) / sizeof(keys[0]));
	s3d_client_free(c);
	curl_global_cleanup();
	return t_done("verify");
}
