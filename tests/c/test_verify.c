/*
 * Streaming SHA-256 verification against a live S3-compatible server
 * (versitygw through tests/with-s3.sh), plus a loopback fault server that
 * cuts, stretches and lies about ranges. Every digest is compared with
 * OpenSSL's digest of the same bytes computed here.
 */
#include "t.h"

#include "s3_client.h"
#include "s3direct.h"
#include "verify.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MiB (1024u * 1024u)

static char bucket[64];

static s3d_client *client_at(const char *endpoint, int retries)
{
	s3d_client_config cfg;
	s3d_client *c = NULL;

	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = endpoint;
	cfg.region = t_env("S3D_TEST_REGION");
	cfg.access_key = t_env("S3D_TEST_ACCESS_KEY");
	cfg.secret_key = t_env("S3D_TEST_SECRET_KEY");
	cfg.max_retries = retries;
	cfg.retry_base_ms = 5;
	cfg.retry_max_ms = 50;
	cfg.retry_deadline_ms = 20000;
	if (s3d_client_new(&cfg, &c) != S3D_OK)
		return NULL;
	return c;
}

static s3d_client *client(void)
{
	return client_at(t_env("S3D_TEST_ENDPOINT"), 3);
}

static void fill_data(uint8_t *p, size_t n, unsigned seed)
{
	size_t i;

	for (i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

static void sha256(const void *p, size_t n, uint8_t md[32])
{
	unsigned int len = 0;

	EVP_Digest(n ? p : (const void *)"", n, md, &len, EVP_sha256(), NULL);
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
	sha256(data, n, want);
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
	int fd, port;
	int cut_first;      /* the first GET of the range starting here is cut mid-body */
	int ignore_range;   /* answer 200 with the whole body */
	int lie_total;      /* Content-Range claims this total instead */
	int no_if_match;    /* GETs that came without If-Match */
	int gets;
	char ranges[32][32];
	uint8_t body[FAULT_BODY];
};

static void *fault_main(void *arg)
{
	struct fault *f = arg;
	char req[8192], hdr[512];
	int cfd;

	while ((cfd = accept(f->fd, NULL, NULL)) >= 0) {
		ssize_t n = recv(cfd, req, sizeof(req) - 1, 0);
		char *r;
		long first = 0, last = FAULT_BODY - 1;
		size_t len, send_len;

		if (n <= 0) {
			close(cfd);
			continue;
		}
		req[n] = 0;
		if (strncmp(req, "QUIT", 4) == 0) {
			close(cfd);
			break;
		}
		if (strncmp(req, "HEAD", 4) == 0) {
			snprintf(hdr, sizeof(hdr), "HTTP/1.1 200 OK\r\nETag: \"e1\"\r\n"
				 "Content-Length: %d\r\nConnection: close\r\n\r\n", FAULT_BODY);
			send(cfd, hdr, strlen(hdr), MSG_NOSIGNAL);
			close(cfd);
			continue;
		}
		if (!strcasestr(req, "\nIf-Match: \"e1\""))
			f->no_if_match++;
		r = strcasestr(req, "\nRange: bytes=");
		if (r) {
			if (f->gets < 32)
				sscanf(r + 14, "%31[^\r\n]", f->ranges[f->gets]);
			sscanf(r + 14, "%ld-%ld", &first, &last);
		}
		f->gets++;
		if (f->ignore_range) {
			first = 0;
			last = FAULT_BODY - 1;
			snprintf(hdr, sizeof(hdr), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
				 "Connection: close\r\n\r\n", FAULT_BODY);
		} else {
			snprintf(hdr, sizeof(hdr), "HTTP/1.1 206 Partial Content\r\n"
				 "Content-Range: bytes %ld-%ld/%d\r\nContent-Length: %ld\r\n"
				 "Connection: close\r\n\r\n", first, last,
				 f->lie_total ? f->lie_total : FAULT_BODY, last - first + 1);
		}
		len = (size_t)(last - first + 1);
		send_len = len;
		if (f->cut_first >= 0 && first == f->cut_first) {
			send_len = len / 2; /* then the connection drops */
			f->cut_first = -1;
		}
		send(cfd, hdr, strlen(hdr), MSG_NOSIGNAL);
		send(cfd, f->body + first, send_len, MSG_NOSIGNAL);
		close(cfd);
	}
	return NULL;
}

static int fault_start(struct fault *f, pthread_t *th)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);

	fill_data(f->body, FAULT_BODY, 11);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (f->fd < 0 || bind(f->fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(f->fd, 16) != 0 || getsockname(f->fd, (struct sockaddr *)&a, &alen) != 0)
		return -1;
	f->port = ntohs(a.sin_port);
	return pthread_create(th, NULL, fault_main, f);
}

static void fault_stop(struct fault *f, pthread_t th)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)f->port);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
		send(fd, "QUIT", 4, MSG_NOSIGNAL);
	if (fd >= 0)
		close(fd);
	pthread_join(th, NULL);
	close(f->fd);
}

static void test_faults(void)
{
	s3d_verify_config cfg = { .range_size = 16, .max_in_flight = 2 };
	struct fault f = { .cut_first = 32 };
	uint8_t want[32], got[32];
	char endpoint[64];
	s3d_verify_stats st;
	int64_t size = 0;
	s3d_client *c;
	s3d_error err;
	pthread_t th;
	int i, retried = 0;

	T_REQUIRE(fault_start(&f, &th) == 0);
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", f.port);
	c = client_at(endpoint, 3);
	T_REQUIRE(c);
	sha256(f.body, FAULT_BODY, want);

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
	c = client_at(endpoint, 0);
	T_REQUIRE(c);
	f.cut_first = 0;
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_TRANSPORT, s3d_verify_sha256(c, "bkt", "k", &cfg, got, &size, &err));
	T_TRUE(err.curl_code != 0);
	T_EQ_INT(1, err.attempts);
	s3d_client_free(c);
	fault_stop(&f, th);
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
	fill_data(data, n, 1);
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
	fill_data(data, n, 2);
	s3d_error_clear(&err);
	T_REQUIRE(s3d_mpu_new(c, bucket, "mpu", NULL, 1, &mcfg, &m, &err) == S3D_OK);
	T_EQ_INT(S3D_OK, s3d_mpu_write(m, data, n, &err));
	T_EQ_INT(S3D_OK, s3d_mpu_complete(m, NULL, 0, &info, &err));
	s3d_mpu_free(m);
	T_TRUE(strchr(info.etag, '-') != NULL);
	T_EQ_INT(S3D_OK, s3d_verify_sha256_stats(c, bucket, "mpu", &cfg, got, &size, &st, &err));
	sha256(data, n, want);
	T_EQ_MEM(want, 32, got, 32);
	T_EQ_INT(n, size);
	T_EQ_INT(3, st.ranges);
	free(data);
	s3d_client_free(c);
}

/* ---- the run's bucket ---- */

static int remove_bucket(s3d_client *c, s3d_error *err)
{
	static const char *const keys[] = { "empty", "one", "dir/five mib+17", "three",
					    "mpu" };
	s3d_req r;

	s3d_delete_objects(c, bucket, keys, sizeof(keys) / sizeof(keys[0]), NULL);
	memset(&r, 0, sizeof(r));
	r.method = "DELETE";
	r.bucket = bucket;
	r.retryable = 1;
	r.range_first = r.range_last = -1;
	return s3d_client_perform(c, &r, NULL, err);
}

int main(void)
{
	uint8_t rnd[6];
	s3d_client *c;
	s3d_error err;
	int rc;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return 1;
	snprintf(bucket, sizeof(bucket), "s3d-verify-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
		 rnd[2], rnd[3], rnd[4], rnd[5]);
	c = client();
	s3d_error_clear(&err);
	if (!c || s3d_create_bucket(c, bucket, &err) != S3D_OK) {
		fprintf(stderr, "FATAL: cannot create test bucket %s: %s\n", bucket, err.message);
		printf("verify: 0 passed, 1 failed\n");
		s3d_client_free(c);
		return 1;
	}
	T_RUN(test_bad_arguments);
	T_RUN(test_missing_key_and_bucket);
	T_RUN(test_faults);
	T_RUN(test_empty_and_one_byte);
	T_RUN(test_many_ranges_within_bound);
	T_RUN(test_multipart_object);
	s3d_error_clear(&err);
	rc = remove_bucket(c, &err);
	if (rc != S3D_OK) {
		char text[512];

		s3d_error_format(&err, rc, text, sizeof(text));
		fprintf(stderr, "warning: bucket %s not removed: %s\n", bucket, text);
	}
	s3d_client_free(c);
	curl_global_cleanup();
	return t_done("verify");
}
