/*
 * The driver's Reader (reader.c): against a live S3-compatible server
 * (versitygw from tests/with-s3.sh) for offsets, ends and large objects read
 * in tiny and big pieces, and against a loopback fault server that cuts
 * bodies, refuses ranges, throttles and replaces the object mid-stream.
 */
#include "t.h"
#include "t_s3.h"

#include "s3direct.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <unistd.h>

static char bucket[64];

/* A driver with root "it/root" in bkt at endpoint (NULL: the live server). */
static s3d_driver *driver_at(const char *endpoint, const char *bkt, int retries)
{
	s3d_driver_config cfg;
	s3d_driver *d = NULL;
	s3d_error err;

	t_s3_driver_config(&cfg, endpoint, bkt, "it/root");
	cfg.client.max_retries = retries;
	if (s3d_driver_new(&cfg, &d, &err) != S3D_OK)
		return NULL;
	return d;
}

static s3d_driver *driver(void)
{
	return driver_at(NULL, bucket, 3);
}

/* Reads everything with reads of at most cap bytes into out (bounded). */
static int read_all(s3d_reader *r, size_t cap, s3d_buf *out, s3d_error *err)
{
	uint8_t *tmp = malloc(cap);
	size_t n = 0;
	long guard = 0;
	int rc = tmp ? S3D_OK : S3D_E_NOMEM;

	s3d_buf_reset(out);
	while (rc == S3D_OK && guard++ < 100000000L) {
		rc = s3d_reader_read(r, tmp, cap, &n, err);
		if (rc != S3D_OK || n == 0)
			break;
		rc = s3d_buf_append(out, tmp, n);
	}
	free(tmp);
	return rc;
}

static int open_read(s3d_driver *d, const char *path, int64_t off, size_t cap, s3d_buf *out,
		     s3d_error *err)
{
	s3d_reader *r = NULL;
	int rc = s3d_reader_open(d, path, off, &r, err);

	if (rc == S3D_OK)
		rc = read_all(r, cap, out, err);
	s3d_reader_free(r);
	return rc;
}

/* ---- hostile first ---- */

static void test_hostile(void)
{
	s3d_driver *d = driver();
	s3d_reader *r = NULL;
	s3d_error err;
	uint8_t b[8];
	size_t n = 5;

	T_REQUIRE(d);
	T_EQ_INT(S3D_E_INVAL, s3d_reader_open(NULL, "/x", 0, &r, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_reader_open(d, "/x", -1, &r, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_reader_open(d, "/", 0, &r, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_reader_open(d, "x", 0, &r, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_reader_open(d, "/x", 0, NULL, &err));
	T_TRUE(r == NULL);

	/* TestReadNonexistentStream: missing at open, at any offset */
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_reader_open(d, "/rd/missing", 0, &r, &err));
	T_EQ_INT(404, err.http_status);
	T_TRUE(r == NULL);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_reader_open(d, "/rd/missing", 64, &r, &err));
	T_TRUE(r == NULL);
	/* a directory is no object; the private area does not exist */
	T_EQ_INT(S3D_OK, s3d_driver_put_content(d, "/rd/dir/f", "x", 1, &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_reader_open(d, "/rd/dir", 0, &r, &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_reader_open(d, "/_s3direct/tails/x", 0, &r, &err));

	/* bad read arguments */
	T_EQ_INT(S3D_OK, s3d_reader_open(d, "/rd/dir/f", 0, &r, &err));
	T_REQUIRE(r != NULL);
	T_EQ_INT(S3D_E_INVAL, s3d_reader_read(r, b, 0, &n, &err));
	T_EQ_INT(0, n);
	T_EQ_INT(S3D_E_INVAL, s3d_reader_read(r, NULL, 8, &n, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_reader_read(r, b, 8, NULL, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_reader_read(NULL, b, 8, &n, &err));
	T_EQ_INT(S3D_OK, s3d_reader_read(r, b, 8, &n, &err));
	T_EQ_INT(1, n);
	s3d_reader_free(r);
	s3d_reader_free(NULL);
	T_EQ_INT(S3D_OK, s3d_driver_delete(d, "/rd", &err));
	s3d_driver_free(d);
}

/* ---- offsets and ends (TestReaderWithOffset) ---- */

static void test_offsets(void)
{
	s3d_driver *d = driver();
	s3d_reader *r = NULL;
	s3d_error err;
	s3d_buf b;
	uint8_t data[96], tmp[32];
	size_t n = 9;

	T_REQUIRE(d);
	s3d_buf_init(&b, 1 << 20);
	t_fill(data, sizeof(data), 5);
	T_EQ_INT(S3D_OK, s3d_driver_put_content(d, "/ro/file", data, sizeof(data), &err));

	T_EQ_INT(S3D_OK, open_read(d, "/ro/file", 0, 4096, &b, &err));
	T_EQ_MEM(data, 96, b.ptr, b.len);
	T_EQ_INT(S3D_OK, open_read(d, "/ro/file", 32, 4096, &b, &err));
	T_EQ_MEM(data + 32, 64, b.ptr, b.len);
	T_EQ_INT(S3D_OK, open_read(d, "/ro/file", 64, 5, &b, &err));
	T_EQ_MEM(data + 64, 32, b.ptr, b.len);

	/* at the end: an empty reader that stays at its end */
	T_EQ_INT(S3D_OK, s3d_reader_open(d, "/ro/file", 96, &r, &err));
	T_REQUIRE(r != NULL);
	T_EQ_INT(S3D_OK, s3d_reader_read(r, tmp, sizeof(tmp), &n, &err));
	T_EQ_INT(0, n);
	T_EQ_INT(S3D_OK, s3d_reader_read(r, tmp, sizeof(tmp), &n, &err));
	T_EQ_INT(0, n);
	s3d_reader_free(r);

	/* N-1: one byte, then the end, then the end again */
	T_EQ_INT(S3D_OK, s3d_reader_open(d, "/ro/file", 95, &r, &err));
	T_REQUIRE(r != NULL);
	T_EQ_INT(S3D_OK, s3d_reader_read(r, tmp, sizeof(tmp), &n, &err));
	T_EQ_INT(1, n);
	T_EQ_INT(data[95], tmp[0]);
	T_EQ_INT(S3D_OK, s3d_reader_read(r, tmp, sizeof(tmp), &n, &err));
	T_EQ_INT(0, n);
	T_EQ_INT(S3D_OK, s3d_reader_read(r, tmp, sizeof(tmp), &n, &err));
	T_EQ_INT(0, n);
	s3d_reader_free(r);

	/* past the end: empty too (s3-aws turns InvalidRange into an empty reader) */
	T_EQ_INT(S3D_OK, open_read(d, "/ro/file", 97, 16, &b, &err));
	T_EQ_INT(0, b.len);
	T_EQ_INT(S3D_OK, open_read(d, "/ro/file", (int64_t)1 << 40, 16, &b, &err));
	T_EQ_INT(0, b.len);

	/* an empty object, from 0 and past its end */
	T_EQ_INT(S3D_OK, s3d_driver_put_content(d, "/ro/empty", NULL, 0, &err));
	T_EQ_INT(S3D_OK, open_read(d, "/ro/empty", 0, 16, &b, &err));
	T_EQ_INT(0, b.len);
	T_EQ_INT(S3D_OK, open_read(d, "/ro/empty", 1, 16, &b, &err));
	T_EQ_INT(0, b.len);

	T_EQ_INT(S3D_OK, s3d_driver_delete(d, "/ro", &err));
	s3d_buf_cleanup(&b);
	s3d_driver_free(d);
}

/* ---- large objects: many pauses of the bounded buffer ---- */

#define BIG_SIZE (12u * 1024u * 1024u + 777u)

struct conc {
	s3d_driver *d;
	const uint8_t *data;
	int64_t off;
	size_t cap;
	int ok;
};

static void *conc_read(void *arg)
{
	struct conc *c = arg;
	s3d_error err;
	s3d_buf b;

	s3d_buf_init(&b, BIG_SIZE);
	c->ok = open_read(c->d, "/rl/big", c->off, c->cap, &b, &err) == S3D_OK &&
		b.len == BIG_SIZE - (size_t)c->off &&
		memcmp(b.ptr, c->data + c->off, b.len) == 0;
	s3d_buf_cleanup(&b);
	return NULL;
}

static void test_large(void)
{
	s3d_driver *d = driver();
	s3d_reader *r = NULL;
	s3d_error err;
	s3d_buf b;
	uint8_t *data = malloc(BIG_SIZE), md[32], md2[32], tmp[7];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t n = 0, total = 0;
	int rc = S3D_OK, i;

	T_REQUIRE(d && data && ctx);
	t_fill(data, BIG_SIZE, 99);
	EVP_Digest(data, BIG_SIZE, md, &mdlen, EVP_sha256(), NULL);
	T_EQ_INT(S3D_OK, s3d_driver_put_content(d, "/rl/big", data, BIG_SIZE, &err));

	/* 7 bytes at a time, hashed as they come */
	T_EQ_INT(1, EVP_DigestInit_ex(ctx, EVP_sha256(), NULL));
	T_EQ_INT(S3D_OK, s3d_reader_open(d, "/rl/big", 0, &r, &err));
	T_REQUIRE(r != NULL);
	while ((rc = s3d_reader_read(r, tmp, sizeof(tmp), &n, &err)) == S3D_OK && n > 0) {
		EVP_DigestUpdate(ctx, tmp, n);
		total += n;
		if (total == 3u << 20)
			sleep(1); /* a slow consumer: the transfer waits paused */
	}
	T_EQ_INT(S3D_OK, rc);
	T_EQ_INT(BIG_SIZE, total);
	T_EQ_INT(1, EVP_DigestFinal_ex(ctx, md2, &mdlen));
	T_EQ_MEM(md, 32, md2, 32);
	s3d_reader_free(r);

	/* big reads, from the middle */
	s3d_buf_init(&b, BIG_SIZE);
	T_EQ_INT(S3D_OK, open_read(d, "/rl/big", 5000001, 3u << 20, &b, &err));
	T_EQ_MEM(data + 5000001, BIG_SIZE - 5000001, b.ptr, b.len);

	/* abandoned mid-stream: freed while paused with data pending */
	T_EQ_INT(S3D_OK, s3d_reader_open(d, "/rl/big", 1, &r, &err));
	T_EQ_INT(S3D_OK, s3d_reader_read(r, tmp, sizeof(tmp), &n, &err));
	T_EQ_MEM(data + 1, 7, tmp, n);
	s3d_reader_free(r);

	/* concurrent readers at different offsets (TestConcurrentStreamReads) */
	{
		pthread_t th[4];
		struct conc c[4];

		for (i = 0; i < 4; i++) {
			c[i].d = d;
			c[i].data = data;
			c[i].off = (int64_t)i * (BIG_SIZE / 4) + i;
			c[i].cap = (size_t)(32 << (i * 4));
			c[i].ok = 0;
			T_EQ_INT(0, pthread_create(&th[i], NULL, conc_read, &c[i]));
		}
		for (i = 0; i < 4; i++) {
			pthread_join(th[i], NULL);
			T_TRUE(c[i].ok);
		}
	}

	T_EQ_INT(S3D_OK, s3d_driver_delete(d, "/rl", &err));
	s3d_buf_cleanup(&b);
	EVP_MD_CTX_free(ctx);
	free(data);
	s3d_driver_free(d);
}

/* ---- fault injection: a loopback server that misbehaves on purpose ---- */

#define FAULT_SIZE (300u * 1024u + 17u)

struct fault {
	int cuts;             /* GETs of the object cut after cut_after bytes */
	size_t cut_after;
	int fail_first;       /* GETs of the object answered 503 SlowDown */
	int ignore_range;     /* answer 200 with the whole body to a Range */
	int replaced;         /* the object changed: If-Match fails */
	int gets;             /* GETs of the object seen */
	char first_range[64];
	char last_range[64];
	char last_if_match[64];
};

static uint8_t fault_byte(size_t i)
{
	return (uint8_t)(i * 7u + i / 251u);
}

static void send_object(struct fault *f, int fd, long first)
{
	static uint8_t body[FAULT_SIZE];
	char extra[256];
	size_t i, len;

	for (i = 0; i < FAULT_SIZE; i++)
		body[i] = fault_byte(i);
	if (f->ignore_range)
		first = 0;
	len = FAULT_SIZE - (size_t)first;
	if (first > 0 || (f->ignore_range && f->last_range[0])) {
		snprintf(extra, sizeof(extra), "Content-Range: bytes %ld-%zu/%u\r\nETag: \"e1\"\r\n",
			 first, (size_t)FAULT_SIZE - 1, FAULT_SIZE);
		t_send_head(fd, f->ignore_range ? "200 OK" : "206 Partial Content", extra, len);
	} else {
		t_send_head(fd, "200 OK", "ETag: \"e1\"\r\n", len);
	}
	if (f->cuts > 0) {
		f->cuts--;
		len = f->cut_after < len ? f->cut_after : len;
	}
	t_send_all(fd, body + first, len);
}

static void fault_answer(void *ud, int fd, const char *req, size_t len)
{
	static const char list[] = "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";
	struct fault *f = ud;
	long first;

	(void)len;
	if (strstr(req, "list-type=2")) {
		t_send_answer(fd, "200 OK", "Content-Type: application/xml\r\n", list,
			      strlen(list));
		return;
	}
	f->gets++;
	t_req_range(req, f->last_range, sizeof(f->last_range));
	first = atol(f->last_range);
	if (f->gets == 1)
		snprintf(f->first_range, sizeof(f->first_range), "%s", f->last_range);
	t_req_if_match(req, f->last_if_match, sizeof(f->last_if_match));
	if (strstr(req, "/missing"))
		t_send_s3_error(fd, "404 Not Found", "NoSuchKey", NULL);
	else if (f->fail_first > 0) {
		f->fail_first--;
		t_send_s3_error(fd, "503 Slow Down", "SlowDown", NULL);
	} else if (f->replaced && f->last_if_match[0])
		t_send_s3_error(fd, "412 Precondition Failed", "PreconditionFailed", NULL);
	else if (first >= (long)FAULT_SIZE)
		t_send_s3_error(fd, "416 Requested Range Not Satisfiable", "InvalidRange", NULL);
	else
		send_object(f, fd, first);
}

static s3d_driver *fault_driver(const struct t_fault_server *srv, int retries)
{
	return driver_at(srv->endpoint, "fault", retries);
}

static int fault_body_ok(const s3d_buf *b, size_t from)
{
	size_t i;

	if (b->len != FAULT_SIZE - from)
		return 0;
	for (i = 0; i < b->len; i++)
		if (b->ptr[i] != fault_byte(from + i))
			return 0;
	return 1;
}

static void fault_reset(struct fault *f)
{
	f->cuts = 0;
	f->cut_after = 0;
	f->fail_first = 0;
	f->ignore_range = 0;
	f->replaced = 0;
	f->gets = 0;
	f->first_range[0] = f->last_range[0] = f->last_if_match[0] = 0;
}

static void test_faults(void)
{
	struct fault f;
	struct t_fault_server srv;
	s3d_driver *d;
	s3d_reader *r = NULL;
	s3d_error err;
	s3d_buf b;
	char want[64];

	memset(&f, 0, sizeof(f));
	T_REQUIRE(t_fault_start(&srv, fault_answer, &f) == 0);
	d = fault_driver(&srv, 2);
	s3d_buf_init(&b, 1 << 20);
	T_REQUIRE(d);

	/* sanity: a clean read */
	fault_reset(&f);
	T_EQ_INT(S3D_OK, open_read(d, "/obj", 0, 1000, &b, &err));
	T_TRUE(fault_body_ok(&b, 0));
	T_EQ_INT(1, f.gets);
	T_EQ_STR("", f.first_range);

	/* a body cut mid-way resumes after the bytes delivered, on the same object */
	fault_reset(&f);
	f.cuts = 1;
	f.cut_after = 100000;
	T_EQ_INT(S3D_OK, open_read(d, "/obj", 0, 4096, &b, &err));
	T_TRUE(fault_body_ok(&b, 0));
	T_EQ_INT(2, f.gets);
	T_EQ_STR("100000-", f.last_range);
	T_EQ_STR("\"e1\"", f.last_if_match);

	/* from an offset, cut twice */
	fault_reset(&f);
	f.cuts = 2;
	f.cut_after = 70000;
	T_EQ_INT(S3D_OK, open_read(d, "/obj", 1000, 333, &b, &err));
	T_TRUE(fault_body_ok(&b, 1000));
	T_EQ_INT(3, f.gets);
	T_EQ_STR("1000-", f.first_range);
	T_EQ_STR("141000-", f.last_range);

	/* more cuts than retries: each cut made progress, so the budget renews */
	fault_reset(&f);
	f.cuts = 6;
	f.cut_after = 20000;
	T_EQ_INT(S3D_OK, open_read(d, "/obj", 0, 65536, &b, &err));
	T_TRUE(fault_body_ok(&b, 0));
	T_EQ_INT(7, f.gets);

	/* cuts without progress exhaust the retries: the bytes before, then the error */
	fault_reset(&f);
	f.cuts = 100;
	f.cut_after = 0;
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_TRANSPORT, s3d_reader_open(d, "/obj", 0, &r, &err));
	T_TRUE(r == NULL);
	T_EQ_INT(3, f.gets);
	T_TRUE(err.curl_code != 0);

	/* throttled at open: retried */
	fault_reset(&f);
	f.fail_first = 2;
	T_EQ_INT(S3D_OK, open_read(d, "/obj", 0, 4096, &b, &err));
	T_TRUE(fault_body_ok(&b, 0));
	T_EQ_INT(3, f.gets);
	fault_reset(&f);
	f.fail_first = 5;
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_S3, s3d_reader_open(d, "/obj", 0, &r, &err));
	T_EQ_STR("SlowDown", err.code);
	T_EQ_INT(503, err.http_status);

	/* the object replaced between cut and resume: an error, never a splice */
	fault_reset(&f);
	f.cuts = 1;
	f.cut_after = 50000;
	f.replaced = 1;
	T_EQ_INT(S3D_OK, s3d_reader_open(d, "/obj", 0, &r, &err));
	T_REQUIRE(r != NULL);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_S3, read_all(r, 4096, &b, &err));
	T_EQ_INT(50000, b.len);
	T_EQ_INT(412, err.http_status);
	T_EQ_INT(S3D_E_S3, read_all(r, 4096, &b, &err)); /* the failure sticks */
	s3d_reader_free(r);

	/* a server that ignores Range must not hand out the wrong bytes */
	fault_reset(&f);
	f.ignore_range = 1;
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_PROTOCOL, s3d_reader_open(d, "/obj", 10, &r, &err));
	T_TRUE(r == NULL);

	/* ends and absence */
	fault_reset(&f);
	snprintf(want, sizeof(want), "%u-", FAULT_SIZE);
	T_EQ_INT(S3D_OK, open_read(d, "/obj", FAULT_SIZE, 16, &b, &err));
	T_EQ_INT(0, b.len);
	T_EQ_STR(want, f.last_range);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_reader_open(d, "/missing", 0, &r, &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_reader_open(d, "/missing", 5, &r, &err));

	s3d_driver_free(d);

	/* no retries at all: the first cut is final */
	fault_reset(&f);
	d = fault_driver(&srv, -1);
	T_REQUIRE(d);
	f.cuts = 1;
	f.cut_after = 10000;
	T_EQ_INT(S3D_OK, s3d_reader_open(d, "/obj", 0, &r, &err));
	T_REQUIRE(r != NULL);
	T_EQ_INT(S3D_E_TRANSPORT, read_all(r, 100000, &b, &err));
	T_EQ_INT(10000, b.len);
	s3d_reader_free(r);
	s3d_driver_free(d);

	s3d_buf_cleanup(&b);
	t_fault_stop(&srv);
}

int main(void)
{
	s3d_client *c = t_s3_plain_client();

	if (t_s3_new_bucket("reader", c, "reader", bucket, sizeof(bucket)) != 0) {
		s3d_client_free(c);
		return 1;
	}
	s3d_client_free(c);
	T_RUN(test_hostile);
	T_RUN(test_offsets);
	T_RUN(test_large);
	T_RUN(test_faults);
	curl_global_cleanup();
	return t_done("reader");
}
