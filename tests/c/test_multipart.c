/*
 * Parallel multipart upload against a live S3-compatible server (versitygw
 * through tests/with-s3.sh), plus a loopback fault server for the retry path.
 * Every test works in this run's own bucket, removed at the end.
 */
#include "t.h"

#include "multipart.h"
#include "s3_client.h"
#include "s3direct.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MiB (1024u * 1024u)
#define PART (5u * MiB)

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

/* ---- data: a deterministic byte stream, hashed on both sides ---- */

static uint8_t data_at(uint64_t i, unsigned seed)
{
	uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;

	x ^= x >> 29;
	x *= 0xBF58476D1CE4E5B9ull;
	return (uint8_t)(x >> 32);
}

static void fill_data(uint8_t *p, size_t n, uint64_t off, unsigned seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = data_at(off + i, seed);
}

static void sha256(const void *p, size_t n, uint8_t md[32])
{
	unsigned int len = 0;

	EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
}

static void sha256_b64(const void *p, size_t n, char out[64])
{
	uint8_t md[32];

	sha256(p, n, md);
	s3d_base64(md, 32, out, 64);
}

struct hasher {
	EVP_MD_CTX *ctx;
	int64_t n;
};

static int hash_sink(void *ud, const uint8_t *p, size_t n)
{
	struct hasher *h = ud;

	h->n += (int64_t)n;
	return EVP_DigestUpdate(h->ctx, p, n) == 1 ? 0 : 1;
}

/* Downloads key and checks its bytes (by SHA-256) and its size against want. */
static void check_object(s3d_client *c, const char *key, const uint8_t *want, size_t n)
{
	struct hasher h = { EVP_MD_CTX_new(), 0 };
	uint8_t got[32], exp[32];
	unsigned int len = 0;
	s3d_obj_info info;
	s3d_error err;

	T_REQUIRE(h.ctx && EVP_DigestInit_ex(h.ctx, EVP_sha256(), NULL) == 1);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_get_object(c, bucket, key, 0, -1, hash_sink, &h, NULL, &err));
	EVP_DigestFinal_ex(h.ctx, got, &len);
	EVP_MD_CTX_free(h.ctx);
	sha256(want, n, exp);
	T_EQ_INT(n, h.n);
	T_EQ_MEM(exp, 32, got, 32);
	T_EQ_INT(S3D_OK, s3d_head_object(c, bucket, key, 0, &info, &err));
	T_EQ_INT(n, info.size);
}

/* ---- listing helpers ---- */

struct uploads {
	const char *key;
	int n;
};

static int count_uploads(void *ud, const s3d_list_entry *e)
{
	struct uploads *u = ud;

	if (e->kind == S3D_ENTRY_UPLOAD && strcmp(e->key, u->key) == 0)
		u->n++;
	return 0;
}

static int uploads_for(s3d_client *c, const char *key)
{
	struct uploads u = { key, 0 };
	s3d_list_opts o;
	s3d_error err;

	memset(&o, 0, sizeof(o));
	o.prefix = key;
	if (s3d_list_multipart_uploads(c, bucket, &o, count_uploads, &u, &err) != S3D_OK)
		return -1;
	return u.n;
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
	fill_data(data, PART, 0, 9);
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
	fill_data(data, PART + 10, 0, 1);
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
	T_EQ_INT(S3D_E_NOTFOUND, s3d_get_object(c, bucket, key, 0, -1, hash_sink, NULL, NULL, &err));
	free(data);
	s3d_client_free(c);
}

/* ---- fault server: UploadPart answers 503 SlowDown to the first attempts ---- */

struct fault {
	int fd, port;
	int fail_parts;    /* this many UploadPart requests get a 503 */
	int part_requests; /* UploadPart requests seen */
	int completes;
};

static int read_request(int cfd, char *hdr, size_t cap, long *clen)
{
	size_t n = 0;
	char *end = NULL, *cl, buf[65536];
	ssize_t got;
	long body;

	while (!end && n + 1 < cap) {
		got = recv(cfd, hdr + n, cap - 1 - n, 0);
		if (got <= 0)
			return -1;
		n += (size_t)got;
		hdr[n] = 0;
		end = strstr(hdr, "\r\n\r\n");
	}
	if (!end)
		return -1;
	cl = strcasestr(hdr, "\ncontent-length:");
	*clen = cl ? atol(cl + 16) : 0;
	body = (long)(n - (size_t)(end + 4 - hdr));
	while (body < *clen) {
		size_t want = (size_t)(*clen - body) < sizeof(buf) ? (size_t)(*clen - body) : sizeof(buf);

		got = recv(cfd, buf, want, 0);
		if (got <= 0)
			return -1;
		body += got;
	}
	return 0;
}

static void *fault_main(void *arg)
{
	struct fault *f = arg;
	char req[8192], out[1024];
	const char *body;
	long clen;
	int cfd;

	while ((cfd = accept(f->fd, NULL, NULL)) >= 0) {
		if (read_request(cfd, req, sizeof(req), &clen) != 0) {
			close(cfd);
			continue;
		}
		if (strncmp(req, "QUIT", 4) == 0) {
			close(cfd);
			break;
		}
		if (strncmp(req, "POST", 4) == 0 && strstr(req, "?uploads")) {
			body = "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
			       "<UploadId>FAULTUPLOAD</UploadId></InitiateMultipartUploadResult>";
			snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
				 "Connection: close\r\n\r\n%s", strlen(body), body);
		} else if (strncmp(req, "PUT", 3) == 0 && strstr(req, "partNumber=")) {
			int pn = atoi(strstr(req, "partNumber=") + 11);

			if (f->part_requests++ < f->fail_parts) {
				body = "<Error><Code>SlowDown</Code><Message>slow</Message></Error>";
				snprintf(out, sizeof(out), "HTTP/1.1 503 Slow Down\r\n"
					 "x-amz-request-id: FAULT%d\r\nContent-Length: %zu\r\n"
					 "Connection: close\r\n\r\n%s", f->part_requests,
					 strlen(body), body);
			} else {
				snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\nETag: \"etag-%d\"\r\n"
					 "Content-Length: 0\r\nConnection: close\r\n\r\n", pn);
			}
		} else if (strncmp(req, "POST", 4) == 0 && strstr(req, "uploadId=")) {
			f->completes++;
			body = "<CompleteMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
			       "<ETag>\"final-2\"</ETag></CompleteMultipartUploadResult>";
			snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
				 "Connection: close\r\n\r\n%s", strlen(body), body);
		} else {
			snprintf(out, sizeof(out), "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
				 "Connection: close\r\n\r\n");
		}
		send(cfd, out, strlen(out), MSG_NOSIGNAL);
		close(cfd);
	}
	return NULL;
}

static int fault_start(struct fault *f, pthread_t *th)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);

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
		send(fd, "QUIT\r\n\r\n", 8, MSG_NOSIGNAL);
	if (fd >= 0)
		close(fd);
	pthread_join(th, NULL);
	close(f->fd);
}

static void test_part_retries(void)
{
	s3d_mpu_config cfg = { .part_size = PART, .max_in_flight = 2 };
	struct fault f = { .fail_parts = 2 };
	const s3d_part *parts = NULL;
	size_t nparts = 0;
	char endpoint[64];
	s3d_obj_info info;
	s3d_client *c;
	s3d_mpu *m = NULL;
	s3d_error err;
	pthread_t th;
	uint8_t *data = calloc(1, PART + 100);

	T_REQUIRE(data);
	T_REQUIRE(fault_start(&f, &th) == 0);
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", f.port);

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
	fault_stop(&f, th);
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
	fill_data(data, total, 0, 2);
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
	fill_data(data, total, 0, 3);
	s3d_error_clear(&err);
	T_REQUIRE(s3d_mpu_new(c, bucket, key, NULL, 1, &cfg, &m, &err) == S3D_OK);
	snprintf(upload_id, sizeof(upload_id), "%s", s3d_mpu_upload_id(m));
	T_EQ_INT(S3D_OK, s3d_mpu_write(m, data, 2 * PART, &err));
	T_EQ_INT(S3D_OK, s3d_mpu_drain(m, &parts, &nparts, &err));
	T_REQUIRE(nparts == 2);
	for (i = 0; i < 2; i++) {
		sha256_b64(data + i * PART, PART, sum);
		T_EQ_INT(i + 1, parts[i].number);
		T_EQ_STR(sum, parts[i].checksum_sha256);
	}
	s3d_mpu_free(m); /* not completed: the upload stays for later */
	T_EQ_INT(1, uploads_for(c, key));

	memset(&prior, 0, sizeof(prior));
	T_EQ_INT(S3D_OK, s3d_list_parts(c, bucket, key, upload_id, NULL, collect_part, &prior, &err));
	T_REQUIRE(prior.n == 2);
	for (i = 0; i < 2; i++) {
		sha256_b64(data + i * PART, PART, sum);
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
	fill_data(data, n, 0, 4);
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
	fill_data(data, n, 0, 5);
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

static int delete_key(void *ud, const s3d_list_entry *e)
{
	s3d_client *c = ud;

	if (e->kind == S3D_ENTRY_OBJECT)
		s3d_delete_object(c, bucket, e->key, NULL);
	else if (e->kind == S3D_ENTRY_UPLOAD)
		s3d_abort_multipart(c, bucket, e->key, e->upload_id, NULL);
	return 0;
}

static int remove_bucket(s3d_client *c, s3d_error *err)
{
	s3d_req r;

	static const char *const keys[] = { "abort/me", "dir/irregular object", "resumed",
					    "empty-mpu", "small-file", "big-file", "k" };

	s3d_list_multipart_uploads(c, bucket, NULL, delete_key, c, NULL);
	/* the keys this file creates, then whatever a failed test left */
	s3d_delete_objects(c, bucket, keys, sizeof(keys) / sizeof(keys[0]), NULL);
	s3d_list_objects(c, bucket, NULL, delete_key, c, NULL);
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
	snprintf(bucket, sizeof(bucket), "s3d-mpu-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
		 rnd[2], rnd[3], rnd[4], rnd[5]);
	c = client();
	s3d_error_clear(&err);
	if (!c || s3d_create_bucket(c, bucket, &err) != S3D_OK) {
		fprintf(stderr, "FATAL: cannot create test bucket %s: %s\n", bucket, err.message);
		printf("multipart: 0 passed, 1 failed\n");
		s3d_client_free(c);
		return 1;
	}
	T_RUN(test_bad_arguments);
	T_RUN(test_upload_file_bad_paths);
	T_RUN(test_missing_bucket);
	T_RUN(test_abort_leaves_nothing);
	T_RUN(test_part_retries);
	T_RUN(test_irregular_writes_within_window);
	T_RUN(test_resume_with_checksums);
	T_RUN(test_empty_upload);
	T_RUN(test_upload_file_small);
	T_RUN(test_upload_file_multipart);
	s3d_error_clear(&err);
	rc = remove_bucket(c, &err);
	if (rc != S3D_OK) {
		char text[512];

		s3d_error_format(&err, rc, text, sizeof(text));
		fprintf(stderr, "warning: bucket %s not removed: %s\n", bucket, text);
	}
	s3d_client_free(c);
	curl_global_cleanup();
	return t_done("multipart");
}
