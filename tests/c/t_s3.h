/*
 * Helpers shared by the C tests that talk to S3 (include after t.h):
 *
 *   - clients and driver configurations from the environment that
 *     tests/with-s3.sh exports (S3D_TEST_ENDPOINT, _REGION, _ACCESS_KEY,
 *     _SECRET_KEY), with a test's short retry backoff;
 *   - a per-run bucket with a random name, and its removal;
 *   - deterministic data, SHA-256 (raw, base64, streaming sink);
 *   - list callbacks that count;
 *   - a loopback fault server: the core listens on 127.0.0.1:<any port>,
 *     accepts in a thread, reads each request (head and body) and hands its
 *     head to the test's handler with the socket to answer on; helpers pick
 *     the request line, Range and If-Match and send canned answers.
 *
 *   static void answer(void *ud, int fd, const char *req, size_t len) { ... }
 *   struct t_fault_server srv;
 *   T_REQUIRE(t_fault_start(&srv, answer, &state) == 0);
 *   c = t_s3_client(srv.endpoint, 3, 0);  ...  t_fault_stop(&srv);
 *
 * Every function is static inline: a test uses what it needs.
 */
#ifndef S3D_TEST_T_S3_H
#define S3D_TEST_T_S3_H

#include "t.h"

#include "s3_client.h"
#include "s3direct.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- clients ---------------------------------------------------------------- */

/* cfg zeroed, then endpoint (NULL: $S3D_TEST_ENDPOINT), region and keys from
 * the environment; everything else the library's default. */
static inline void t_s3_config(s3d_client_config *cfg, const char *endpoint)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->endpoint = endpoint ? endpoint : t_env("S3D_TEST_ENDPOINT");
	cfg->region = t_env("S3D_TEST_REGION");
	cfg->access_key = t_env("S3D_TEST_ACCESS_KEY");
	cfg->secret_key = t_env("S3D_TEST_SECRET_KEY");
}

/* retries retries (0: none, -1: none either) with a test's backoff of 5 ms up
 * to 50 ms; deadline_ms bounds all attempts of one call (0: the default). */
static inline void t_s3_retries(s3d_client_config *cfg, int retries, long deadline_ms)
{
	cfg->max_retries = retries;
	cfg->retry_base_ms = 5;
	cfg->retry_max_ms = 50;
	cfg->retry_deadline_ms = deadline_ms;
}

/* NULL when the configuration is refused. */
static inline s3d_client *t_s3_client_new(const s3d_client_config *cfg)
{
	s3d_client *c = NULL;

	if (s3d_client_new(cfg, &c) != S3D_OK)
		return NULL;
	return c;
}

/* A client of endpoint (NULL: the live server) with t_s3_retries. */
static inline s3d_client *t_s3_client(const char *endpoint, int retries, long deadline_ms)
{
	s3d_client_config cfg;

	t_s3_config(&cfg, endpoint);
	t_s3_retries(&cfg, retries, deadline_ms);
	return t_s3_client_new(&cfg);
}

/* A client of the live server with the library's defaults throughout. */
static inline s3d_client *t_s3_plain_client(void)
{
	s3d_client_config cfg;

	t_s3_config(&cfg, NULL);
	return t_s3_client_new(&cfg);
}

/* A driver configuration: the client as t_s3_client(endpoint, 3, 0), bucket
 * and root; the driver's own settings zero (defaults). */
static inline void t_s3_driver_config(s3d_driver_config *cfg, const char *endpoint,
				      const char *bucket, const char *root)
{
	memset(cfg, 0, sizeof(*cfg));
	t_s3_config(&cfg->client, endpoint);
	t_s3_retries(&cfg->client, 3, 0);
	cfg->bucket = bucket;
	cfg->root = root;
}

/* ---- the run's bucket -------------------------------------------------------- */

/*
 * Names a bucket "s3d-<tag>-<12 random hex digits>" into name and creates it
 * with c. 0 on success; otherwise prints why and the suite's closing line
 * "<suite>: 0 passed, 1 failed" (the caller exits 1) and returns -1.
 */
static inline int t_s3_new_bucket(const char *suite, s3d_client *c, const char *tag,
				  char *name, size_t cap)
{
	uint8_t rnd[6];
	s3d_error err;
	int rc = S3D_E_INVAL;

	s3d_error_clear(&err);
	name[0] = 0;
	if (RAND_bytes(rnd, sizeof(rnd)) == 1) {
		snprintf(name, cap, "s3d-%s-%02x%02x%02x%02x%02x%02x", tag, rnd[0], rnd[1],
			 rnd[2], rnd[3], rnd[4], rnd[5]);
		if (c)
			rc = s3d_create_bucket(c, name, &err);
	}
	if (rc == S3D_OK)
		return 0;
	fprintf(stderr, "FATAL: cannot create test bucket %s: %s\n", name, err.message);
	printf("%s: 0 passed, 1 failed\n", suite);
	return -1;
}

struct t_s3_sweep {
	s3d_client *c;
	const char *bucket;
};

/* A list callback that deletes objects and aborts uploads. */
static inline int t_s3_sweep_entry(void *ud, const s3d_list_entry *e)
{
	struct t_s3_sweep *s = ud;

	if (e->kind == S3D_ENTRY_OBJECT)
		s3d_delete_object(s->c, s->bucket, e->key, NULL);
	else if (e->kind == S3D_ENTRY_UPLOAD)
		s3d_abort_multipart(s->c, s->bucket, e->key, e->upload_id, NULL);
	return 0;
}

/*
 * Empties bucket and deletes it: its multipart uploads aborted, keys (the
 * ones the test knows it made, may be none) deleted in one batch, then
 * whatever a listing still shows. The DELETE's result.
 */
static inline int t_s3_remove_bucket(s3d_client *c, const char *bucket,
				     const char *const *keys, size_t nkeys, s3d_error *err)
{
	struct t_s3_sweep s = { c, bucket };
	s3d_req r;

	s3d_list_multipart_uploads(c, bucket, NULL, t_s3_sweep_entry, &s, NULL);
	if (nkeys)
		s3d_delete_objects(c, bucket, keys, nkeys, NULL);
	s3d_list_objects(c, bucket, NULL, t_s3_sweep_entry, &s, NULL);
	memset(&r, 0, sizeof(r));
	r.method = "DELETE";
	r.bucket = bucket;
	r.retryable = 1;
	r.range_first = r.range_last = -1;
	return s3d_client_perform(c, &r, NULL, err);
}

/* t_s3_remove_bucket, with a warning on stderr when the bucket stays. */
static inline void t_s3_drop_bucket(s3d_client *c, const char *bucket,
				    const char *const *keys, size_t nkeys)
{
	s3d_error err;
	char text[512];
	int rc;

	s3d_error_clear(&err);
	rc = t_s3_remove_bucket(c, bucket, keys, nkeys, &err);
	if (rc != S3D_OK) {
		s3d_error_format(&err, rc, text, sizeof(text));
		fprintf(stderr, "warning: bucket %s not removed: %s\n", bucket, text);
	}
}

/* Multipart uploads of exactly key (-1 on a listing error); id (when not
 * NULL) gets the id of one of them. */
struct t_s3_uploads {
	const char *key;
	int n;
	char id[512];
};

static inline int t_s3_scan_uploads(void *ud, const s3d_list_entry *e)
{
	struct t_s3_uploads *u = ud;

	if (e->kind == S3D_ENTRY_UPLOAD && strcmp(e->key, u->key) == 0) {
		u->n++;
		snprintf(u->id, sizeof(u->id), "%s", e->upload_id);
	}
	return 0;
}

static inline int t_s3_uploads_of(s3d_client *c, const char *bucket, const char *key,
				  char *id, size_t cap)
{
	struct t_s3_uploads u;
	s3d_list_opts o;
	s3d_error err;

	memset(&u, 0, sizeof(u));
	u.key = key;
	memset(&o, 0, sizeof(o));
	o.prefix = key;
	s3d_error_clear(&err);
	if (s3d_list_multipart_uploads(c, bucket, &o, t_s3_scan_uploads, &u, &err) != S3D_OK)
		return -1;
	if (id)
		snprintf(id, cap, "%s", u.id);
	return u.n;
}

/* A list callback that counts every entry into the int at ud. */
static inline int t_count_entry(void *ud, const s3d_list_entry *e)
{
	(void)e;
	(*(int *)ud)++;
	return 0;
}

/* ---- data ------------------------------------------------------------------ */

/* n bytes of a linear congruential stream started at seed. */
static inline void t_fill(uint8_t *p, size_t n, unsigned seed)
{
	size_t i;

	for (i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

/* Byte i of a stream that any offset can start at (a mixed counter). */
static inline uint8_t t_pattern_at(uint64_t i, unsigned seed)
{
	uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;

	x ^= x >> 29;
	x *= 0xBF58476D1CE4E5B9ull;
	return (uint8_t)(x >> 32);
}

/* Bytes off..off+n-1 of the t_pattern_at stream. */
static inline void t_fill_pattern(uint8_t *p, size_t n, uint64_t off, unsigned seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = t_pattern_at(off + i, seed);
}

/* The first n bytes of the t_pattern_at stream, malloc'd (NULL when out of
 * memory; never NULL for n == 0 otherwise). */
static inline uint8_t *t_make_pattern(size_t n, unsigned seed)
{
	uint8_t *p = malloc(n ? n : 1);

	if (p)
		t_fill_pattern(p, n, 0, seed);
	return p;
}

/* ---- SHA-256 ----------------------------------------------------------------- */

static inline void t_sha256(const void *p, size_t n, uint8_t md[32])
{
	unsigned int len = 0;

	EVP_Digest(n ? p : (const void *)"", n, md, &len, EVP_sha256(), NULL);
}

/* The base64 of the digest, as x-amz-checksum-sha256 carries it. */
static inline void t_sha256_b64(const void *p, size_t n, char out[64])
{
	uint8_t md[32];

	t_sha256(p, n, md);
	s3d_base64(md, 32, out, 64);
}

/* A streaming digest that is also an s3d sink (s3d_get_object). */
struct t_sha256_sink {
	EVP_MD_CTX *ctx;
	int64_t n;
};

/* 0 when ready; t_sha256_sink_final frees it in either case. */
static inline int t_sha256_sink_init(struct t_sha256_sink *h)
{
	h->n = 0;
	h->ctx = EVP_MD_CTX_new();
	return h->ctx && EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

static inline int t_sha256_sink(void *ud, const uint8_t *p, size_t n)
{
	struct t_sha256_sink *h = ud;

	h->n += (int64_t)n;
	return EVP_DigestUpdate(h->ctx, p, n) == 1 ? 0 : 1;
}

static inline void t_sha256_sink_final(struct t_sha256_sink *h, uint8_t md[32])
{
	unsigned int len = 0;

	if (h->ctx)
		EVP_DigestFinal_ex(h->ctx, md, &len);
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
}

/* ---- loopback fault server ------------------------------------------------------- */

/*
 * Called on the server's thread once per connection with the request's head
 * (request line and headers, NUL-terminated; the body was read and dropped)
 * and the connection's socket; the core closes the socket afterwards, so
 * every answer is "Connection: close". ud is the test's own state.
 */
typedef void (*t_fault_handler)(void *ud, int fd, const char *req, size_t len);

struct t_fault_server {
	int fd, port;
	char endpoint[64]; /* "http://127.0.0.1:<port>" */
	pthread_t thread;
	atomic_int stopping;
	t_fault_handler handle;
	void *ud;
};

/* Reads the head into req (up to cap - 1 bytes, NUL-terminated) and drops a
 * Content-Length body. 0, or -1 when the peer closed before the end. */
static inline int t_fault_read_request(int fd, char *req, size_t cap, size_t *len)
{
	char *end = NULL, *cl, sink[65536];
	size_t n = 0;
	ssize_t got;
	long body, clen;

	req[0] = 0;
	while (!end && n + 1 < cap) {
		got = recv(fd, req + n, cap - 1 - n, 0);
		if (got <= 0)
			return -1;
		n += (size_t)got;
		req[n] = 0;
		end = strstr(req, "\r\n\r\n");
	}
	if (!end)
		return -1;
	*len = (size_t)(end + 4 - req);
	cl = strcasestr(req, "\ncontent-length:");
	clen = cl && cl < end ? atol(cl + 16) : 0;
	body = (long)(n - *len);
	while (body < clen) {
		size_t want = (size_t)(clen - body) < sizeof(sink) ? (size_t)(clen - body)
								    : sizeof(sink);

		got = recv(fd, sink, want, 0);
		if (got <= 0)
			return -1;
		body += got;
	}
	req[*len] = 0;
	return 0;
}

static inline void *t_fault_main(void *arg)
{
	struct t_fault_server *s = arg;
	char req[8192];
	size_t len;
	int cfd;

	for (;;) {
		cfd = accept(s->fd, NULL, NULL);
		if (cfd < 0) {
			if (errno == EINTR && !atomic_load(&s->stopping))
				continue;
			break;
		}
		if (atomic_load(&s->stopping)) {
			close(cfd);
			break;
		}
		if (t_fault_read_request(cfd, req, sizeof(req), &len) == 0)
			s->handle(s->ud, cfd, req, len);
		close(cfd);
	}
	return NULL;
}

/* Listens on 127.0.0.1 at a free port and starts accepting. 0 or -1. */
static inline int t_fault_start(struct t_fault_server *s, t_fault_handler handle, void *ud)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);

	memset(s, 0, sizeof(*s));
	atomic_init(&s->stopping, 0);
	s->handle = handle;
	s->ud = ud;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (s->fd < 0)
		return -1;
	if (bind(s->fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s->fd, 16) != 0 ||
	    getsockname(s->fd, (struct sockaddr *)&a, &alen) != 0)
		goto fail;
	s->port = ntohs(a.sin_port);
	snprintf(s->endpoint, sizeof(s->endpoint), "http://127.0.0.1:%d", s->port);
	if (pthread_create(&s->thread, NULL, t_fault_main, s) != 0)
		goto fail;
	return 0;
fail:
	close(s->fd);
	s->fd = -1;
	return -1;
}

/* Stops accepting (the flag, then a connection of its own to wake accept),
 * joins the thread and closes the socket. */
static inline void t_fault_stop(struct t_fault_server *s)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	atomic_store(&s->stopping, 1);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)s->port);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		shutdown(s->fd, SHUT_RDWR); /* accept fails instead */
	if (fd >= 0)
		close(fd);
	pthread_join(s->thread, NULL);
	close(s->fd);
	s->fd = -1;
}

/* At most cap - 1 bytes of the n at p into out, NUL-terminated. */
static inline void t_copy_cut(char *out, size_t cap, const char *p, size_t n)
{
	if (cap == 0)
		return;
	if (n > cap - 1)
		n = cap - 1;
	memcpy(out, p, n);
	out[n] = 0;
}

/* The request line's method and target (each cut to its cap). 0, or -1 when
 * the head has no request line. */
static inline int t_req_line(const char *req, char *method, size_t mcap, char *target,
			     size_t tcap)
{
	const char *sp = strchr(req, ' '), *sp2, *eol = strstr(req, "\r\n");

	if (!sp || !eol || sp > eol)
		return -1;
	sp2 = memchr(sp + 1, ' ', (size_t)(eol - sp - 1));
	if (!sp2)
		return -1;
	t_copy_cut(method, mcap, req, (size_t)(sp - req));
	t_copy_cut(target, tcap, sp + 1, (size_t)(sp2 - sp - 1));
	return 0;
}

/* The value of header name (case-insensitive, not the request line) into out
 * (cut to cap); 1 when present, else 0 and "". */
static inline int t_req_header(const char *req, const char *name, char *out, size_t cap)
{
	const char *p = strstr(req, "\r\n");
	size_t nl = strlen(name), vl;

	if (cap)
		out[0] = 0;
	while (p && p[2] != '\r' && p[2] != 0) {
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;

			while (*v == ' ' || *v == '\t')
				v++;
			vl = strcspn(v, "\r\n");
			t_copy_cut(out, cap, v, vl);
			return 1;
		}
		p = strstr(p, "\r\n");
	}
	return 0;
}

/* A Range header's "first-" or "first-last" (after "bytes="); 1 when present. */
static inline int t_req_range(const char *req, char *out, size_t cap)
{
	char v[128];

	if (cap)
		out[0] = 0;
	if (!t_req_header(req, "Range", v, sizeof(v)) || strncmp(v, "bytes=", 6) != 0)
		return 0;
	t_copy_cut(out, cap, v + 6, strlen(v + 6));
	return 1;
}

/* The If-Match header (quotes kept); 1 when present. */
static inline int t_req_if_match(const char *req, char *out, size_t cap)
{
	return t_req_header(req, "If-Match", out, cap);
}

/* Sends all of p (until the peer goes away). */
static inline void t_send_all(int fd, const void *p, size_t n)
{
	const uint8_t *c = p;
	ssize_t k;

	while (n > 0 && (k = send(fd, c, n, MSG_NOSIGNAL)) > 0) {
		c += k;
		n -= (size_t)k;
	}
}

/* Status line ("206 Partial Content"), extra header lines (each ending in
 * \r\n, or NULL), Content-Length and Connection: close; the body is the
 * caller's (it may send fewer bytes than it announced). */
static inline void t_send_head(int fd, const char *status, const char *extra,
			       size_t content_length)
{
	char out[1024];

	snprintf(out, sizeof(out), "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n",
		 status, extra ? extra : "", content_length);
	t_send_all(fd, out, strlen(out));
}

/* A whole answer: t_send_head, then len bytes of body. */
static inline void t_send_answer(int fd, const char *status, const char *extra,
				 const void *body, size_t len)
{
	t_send_head(fd, status, extra, len);
	t_send_all(fd, body, len);
}

/* An S3 error document with code; request_id (or NULL) as x-amz-request-id. */
static inline void t_send_s3_error(int fd, const char *status, const char *code,
				   const char *request_id)
{
	char body[256], extra[256];

	snprintf(body, sizeof(body), "<Error><Code>%s</Code><Message>fault</Message></Error>",
		 code);
	snprintf(extra, sizeof(extra), "Content-Type: application/xml\r\n%s%s%s",
		 request_id ? "x-amz-request-id: " : "", request_id ? request_id : "",
		 request_id ? "\r\n" : "");
	t_send_answer(fd, status, extra, body, strlen(body));
}

/* t_req_line for a fault handler: a head without a request line is answered
 * 400 here (-1; the handler returns). */
static inline int t_fault_req_line(int fd, const char *req, char *method, size_t mcap,
				   char *target, size_t tcap)
{
	if (t_req_line(req, method, mcap, target, tcap) == 0)
		return 0;
	t_send_answer(fd, "400 Bad Request", NULL, NULL, 0);
	return -1;
}

#endif
