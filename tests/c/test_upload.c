/*
 * The driver's writer (upload.c) against a live S3-compatible server
 * (versitygw through tests/with-s3.sh): hostile state changes first, then the
 * patterns distribution's driver suite and the registry's upload handlers
 * use. Every test works in this run's own bucket, removed at the end.
 * Part size 5 MiB, 2 parts in flight unless a test says otherwise.
 */
#include "t.h"
#include "t_s3.h"

#include "driver.h"
#include "s3_client.h"
#include "s3direct.h"
#include "upload.h"

#define MiB (1024u * 1024u)
#define PART (5u * MiB)
#define ROOT "reg"

static char bucket[64];
static s3d_driver *g_d; /* the run's driver; its client inspects S3 */

static s3d_driver *driver_with(size_t part_size, int in_flight)
{
	s3d_driver_config cfg;
	s3d_driver *d = NULL;
	s3d_error err;

	t_s3_driver_config(&cfg, NULL, bucket, ROOT);
	cfg.part_size = part_size;
	cfg.parts_in_flight = in_flight;
	s3d_error_clear(&err);
	if (s3d_driver_new(&cfg, &d, &err) != S3D_OK) {
		fprintf(stderr, "  driver: %s\n", err.message);
		return NULL;
	}
	return d;
}

static s3d_client *cli(void)
{
	return s3d_driver_client(g_d);
}

/* ---- S3 inspection ---- */

static void key_of(const char *path, char *out, size_t cap)
{
	s3d_buf k;

	s3d_buf_init(&k, 2048);
	if (s3d_driver_key(g_d, path, &k) == S3D_OK)
		snprintf(out, cap, "%s", s3d_buf_str(&k));
	else
		snprintf(out, cap, "?");
	s3d_buf_cleanup(&k);
}

static void tail_of(const char *path, char *out, size_t cap)
{
	char key[1100];
	s3d_buf t;

	key_of(path, key, sizeof(key));
	s3d_buf_init(&t, 2048);
	if (s3d_upload_tail_key(g_d, key, &t) == S3D_OK)
		snprintf(out, cap, "%s", s3d_buf_str(&t));
	else
		snprintf(out, cap, "?");
	s3d_buf_cleanup(&t);
}

/* Size of the object at key, -1 when there is none, -2 on another error. */
static int64_t head_size(const char *key)
{
	s3d_obj_info info;
	s3d_error err;
	int rc;

	s3d_error_clear(&err);
	rc = s3d_head_object(cli(), bucket, key, 0, &info, &err);
	if (rc == S3D_E_NOTFOUND)
		return -1;
	return rc == S3D_OK ? info.size : -2;
}

static int64_t path_size(const char *path)
{
	char key[1100];

	key_of(path, key, sizeof(key));
	return head_size(key);
}

static int64_t tail_size(const char *path)
{
	char tail[1100];

	tail_of(path, tail, sizeof(tail));
	return head_size(tail);
}

/* Multipart uploads of exactly key (-1 on a listing error); id gets one. */
static int uploads_of_key(const char *key, char *id, size_t cap)
{
	return t_s3_uploads_of(cli(), bucket, key, id, cap);
}

static int uploads_of(const char *path)
{
	char key[1100];

	key_of(path, key, sizeof(key));
	return uploads_of_key(key, NULL, 0);
}

/* The committed object at path holds exactly want (compared by SHA-256). */
static void check_content(const char *path, const uint8_t *want, size_t n)
{
	struct t_sha256_sink h;
	uint8_t got[32], exp[32];
	char key[1100];
	s3d_error err;

	key_of(path, key, sizeof(key));
	T_REQUIRE(t_sha256_sink_init(&h) == 0);
	s3d_error_clear(&err);
	T_EQ_INT(n, head_size(key));
	if (n > 0)
		T_EQ_INT(S3D_OK, s3d_get_object(cli(), bucket, key, 0, -1, t_sha256_sink, &h, NULL, &err));
	t_sha256_sink_final(&h, got);
	t_sha256(want, n, exp);
	T_EQ_INT(n, h.n);
	T_EQ_MEM(exp, 32, got, 32);
}

/* ---- writer helpers ---- */

static s3d_writer *wopen(s3d_driver *d, const char *path, int append)
{
	s3d_writer *w = NULL;
	s3d_error err;
	char text[512];
	int rc;

	s3d_error_clear(&err);
	rc = s3d_writer_open(d, path, append, &w, &err);
	if (rc != S3D_OK) {
		s3d_error_format(&err, rc, text, sizeof(text));
		fprintf(stderr, "  open %s (append %d): %s\n", path, append, text);
	}
	return w;
}

/* Writes n bytes in pieces of chunk; S3D_OK or the first failure. */
static int wwrite(s3d_writer *w, const uint8_t *p, size_t n, size_t chunk)
{
	s3d_error err;
	char text[512];
	size_t k;
	int rc = S3D_OK;

	while (rc == S3D_OK && n > 0) {
		k = n < chunk ? n : chunk;
		s3d_error_clear(&err);
		rc = s3d_writer_write(w, p, k, &err);
		if (rc != S3D_OK) {
			s3d_error_format(&err, rc, text, sizeof(text));
			fprintf(stderr, "  write: %s\n", text);
		}
		p += k;
		n -= k;
	}
	return rc;
}

static int wdo(int (*fn)(s3d_writer *, s3d_error *), s3d_writer *w, const char *what)
{
	s3d_error err;
	char text[512];
	int rc;

	s3d_error_clear(&err);
	rc = fn(w, &err);
	if (rc != S3D_OK) {
		s3d_error_format(&err, rc, text, sizeof(text));
		fprintf(stderr, "  %s: %s\n", what, text);
	}
	return rc;
}

#define WCLOSE(w) wdo(s3d_writer_close, (w), "close")
#define WCOMMIT(w) wdo(s3d_writer_commit, (w), "commit")
#define WCANCEL(w) wdo(s3d_writer_cancel, (w), "cancel")

static void remove_path(const char *path)
{
	s3d_error err;

	s3d_error_clear(&err);
	s3d_driver_delete(g_d, path, &err);
}

/* ---- hostile cases first ---- */

static void test_bad_arguments(void)
{
	s3d_writer *w = (s3d_writer *)1;
	s3d_error err;

	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_INVAL, s3d_writer_open(NULL, "/x", 0, &w, &err));
	T_TRUE(w == NULL);
	T_EQ_INT(S3D_E_INVAL, s3d_writer_open(g_d, NULL, 0, &w, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_writer_open(g_d, "/x", 0, NULL, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_writer_open(g_d, "relative", 1, &w, &err));
	T_TRUE(w == NULL);
	T_TRUE(err.message[0] != 0);
	T_EQ_INT(S3D_E_INVAL, s3d_writer_write(NULL, "x", 1, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_writer_close(NULL, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_writer_commit(NULL, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_writer_cancel(NULL, &err));
	T_EQ_INT(0, s3d_writer_size(NULL));
	T_EQ_INT(0, s3d_writer_peak_memory(NULL));
	s3d_writer_free(NULL);
	/* NULL data: refused with bytes, harmless without */
	w = wopen(g_d, "/hostile/null", 0);
	T_REQUIRE(w);
	T_EQ_INT(S3D_E_INVAL, s3d_writer_write(w, NULL, 3, &err));
	T_EQ_INT(S3D_OK, s3d_writer_write(w, NULL, 0, &err));
	T_EQ_INT(0, s3d_writer_size(w));
	T_EQ_INT(S3D_OK, WCANCEL(w));
	s3d_writer_free(w);
}

static void test_after_commit(void)
{
	s3d_writer *w = wopen(g_d, "/hostile/committed", 0);
	s3d_error err;

	T_REQUIRE(w);
	T_EQ_INT(S3D_OK, wwrite(w, (const uint8_t *)"abc", 3, 3));
	T_EQ_INT(S3D_OK, WCOMMIT(w));
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_INVAL, s3d_writer_write(w, "d", 1, &err));
	T_TRUE(strstr(err.message, "already committed") != NULL);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_INVAL, s3d_writer_commit(w, &err)); /* double commit */
	T_TRUE(strstr(err.message, "already committed") != NULL);
	T_EQ_INT(S3D_E_INVAL, s3d_writer_cancel(w, &err));
	T_EQ_INT(S3D_OK, s3d_writer_close(w, &err)); /* the suite's Commit then Close */
	T_EQ_INT(S3D_OK, s3d_writer_close(w, &err));
	T_EQ_INT(3, s3d_writer_size(w));
	s3d_writer_free(w);
	check_content("/hostile/committed", (const uint8_t *)"abc", 3);
	remove_path("/hostile/committed");
}

static void test_after_cancel(void)
{
	s3d_writer *w = wopen(g_d, "/hostile/cancelled", 0);
	s3d_error err;

	T_REQUIRE(w);
	T_EQ_INT(S3D_OK, wwrite(w, (const uint8_t *)"abc", 3, 3));
	T_EQ_INT(S3D_OK, WCANCEL(w));
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_INVAL, s3d_writer_write(w, "d", 1, &err));
	T_TRUE(strstr(err.message, "already cancelled") != NULL);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_INVAL, s3d_writer_commit(w, &err));
	T_TRUE(strstr(err.message, "already cancelled") != NULL);
	T_EQ_INT(S3D_E_INVAL, s3d_writer_cancel(w, &err));
	T_EQ_INT(S3D_OK, s3d_writer_close(w, &err));
	s3d_writer_free(w);
	T_EQ_INT(-1, path_size("/hostile/cancelled"));
	T_EQ_INT(-1, tail_size("/hostile/cancelled"));
}

static void test_after_close(void)
{
	s3d_writer *w = wopen(g_d, "/hostile/closed", 0);
	s3d_error err;

	T_REQUIRE(w);
	T_EQ_INT(S3D_OK, wwrite(w, (const uint8_t *)"abcde", 5, 5));
	T_EQ_INT(S3D_OK, WCLOSE(w));
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_INVAL, s3d_writer_write(w, "f", 1, &err));
	T_TRUE(strstr(err.message, "already closed") != NULL);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_INVAL, s3d_writer_close(w, &err));
	T_TRUE(strstr(err.message, "already closed") != NULL);
	T_EQ_INT(S3D_E_INVAL, s3d_writer_commit(w, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_writer_cancel(w, &err));
	T_EQ_INT(5, s3d_writer_size(w));
	s3d_writer_free(w);
	/* what Close kept is there for the next writer, which cleans up */
	T_EQ_INT(5, tail_size("/hostile/closed"));
	w = wopen(g_d, "/hostile/closed", 1);
	T_REQUIRE(w);
	T_EQ_INT(5, s3d_writer_size(w));
	T_EQ_INT(S3D_OK, WCANCEL(w));
	s3d_writer_free(w);
	T_EQ_INT(-1, tail_size("/hostile/closed"));
}

/* A writer freed without Close keeps what S3 already has; nothing else. */
static void test_free_without_close(void)
{
	uint8_t *data = t_make_pattern(PART + 10, 31);
	s3d_writer *w;
	int64_t size;

	T_REQUIRE(data);
	w = wopen(g_d, "/hostile/abandoned", 0);
	T_REQUIRE(w);
	T_EQ_INT(S3D_OK, wwrite(w, data, PART + 10, MiB));
	/* part 1 may or may not have reached S3 (transfers move only inside
	 * writer calls); the 10 bytes after it never did */
	s3d_writer_free(w);
	w = wopen(g_d, "/hostile/abandoned", 1);
	T_REQUIRE(w);
	size = s3d_writer_size(w);
	T_TRUE(size == 0 || size == PART);
	T_EQ_INT(S3D_OK, WCOMMIT(w));
	s3d_writer_free(w);
	check_content("/hostile/abandoned", data, (size_t)size);
	remove_path("/hostile/abandoned");
	free(data);
}

/* ---- the small-blob path ---- */

static void test_small_commit_never_creates_upload(void)
{
	const char *path = "/small/blob";
	size_t n = 4 * MiB + 77;
	uint8_t *data = t_make_pattern(n, 1);
	s3d_writer *w;

	T_REQUIRE(data);
	w = wopen(g_d, path, 0);
	T_REQUIRE(w);
	T_EQ_INT(S3D_OK, wwrite(w, data, 1000, 1000));
	T_EQ_INT(0, uploads_of(path));
	T_EQ_INT(S3D_OK, wwrite(w, data + 1000, n - 1000, 64 * 1024));
	T_EQ_INT(n, s3d_writer_size(w));
	T_EQ_INT(0, uploads_of(path));
	T_EQ_INT(S3D_OK, WCOMMIT(w));
	T_EQ_INT(0, uploads_of(path));
	T_EQ_INT(-1, tail_size(path));
	T_TRUE(s3d_writer_peak_memory(w) <= PART);
	T_EQ_INT(S3D_OK, WCLOSE(w));
	s3d_writer_free(w);
	check_content(path, data, n);
	remove_path(path);
	free(data);
}

/* ---- distribution's testContinueStreamAppend ---- */

static void continue_append(const char *path, size_t chunk, int small)
{
	uint8_t *data = t_make_pattern(3 * chunk, (unsigned)chunk);
	s3d_writer *w;
	int i;

	T_REQUIRE(data);
	w = wopen(g_d, path, 0);
	T_REQUIRE(w);
	T_EQ_INT(S3D_OK, wwrite(w, data, chunk, chunk));
	T_EQ_INT(S3D_OK, WCLOSE(w));
	T_EQ_INT(chunk, s3d_writer_size(w));
	s3d_writer_free(w);
	for (i = 1; i < 3; i++) {
		if (small)
			T_EQ_INT(0, uploads_of(path));
		w = wopen(g_d, path, 1);
		T_REQUIRE(w);
		T_EQ_INT(i * chunk, s3d_writer_size(w));
		T_EQ_INT(S3D_OK, wwrite(w, data + i * chunk, chunk, chunk));
		T_EQ_INT(S3D_OK, i == 2 ? WCOMMIT(w) : WCLOSE(w));
		if (i == 2)
			T_EQ_INT(S3D_OK, WCLOSE(w));
		T_EQ_INT((i + 1) * chunk, s3d_writer_size(w));
		T_TRUE(s3d_writer_peak_memory(w) <= 3 * (size_t)PART);
		s3d_writer_free(w);
	}
	check_content(path, data, 3 * chunk);
	T_EQ_INT(0, uploads_of(path));
	T_EQ_INT(-1, tail_size(path));
	remove_path(path);
	free(data);
}

static void test_continue_append_small(void)
{
	continue_append("/suite/append-small", 32, 1);
}

static void test_continue_append_large(void)
{
	continue_append("/suite/append-large", 10 * MiB, 0);
}

/* ---- a second process: another driver instance, same bucket and root ---- */

static void test_second_process(void)
{
	const char *path = "/procs/data";
	size_t n = 11 * MiB + 105;
	uint8_t *data = t_make_pattern(n, 7);
	s3d_driver *d2 = driver_with(PART, 2);
	s3d_writer *w;

	T_REQUIRE(data && d2);
	w = wopen(g_d, path, 0); /* process 1: a part and a 2 MiB + 5 tail */
	T_REQUIRE(w);
	T_EQ_INT(S3D_OK, wwrite(w, data, 7 * MiB + 5, 3 * MiB));
	T_EQ_INT(S3D_OK, WCLOSE(w));
	s3d_writer_free(w);
	T_EQ_INT(2 * MiB + 5, tail_size(path));
	w = wopen(d2, path, 1); /* process 2 goes on from S3 alone */
	T_REQUIRE(w);
	T_EQ_INT(7 * MiB + 5, s3d_writer_size(w));
	T_EQ_INT(S3D_OK, wwrite(w, data + 7 * MiB + 5, 4 * MiB, MiB));
	T_EQ_INT(S3D_OK, WCLOSE(w));
	s3d_writer_free(w);
	T_EQ_INT(MiB + 5, tail_size(path));
	w = wopen(g_d, path, 1); /* and back to process 1, which commits */
	T_REQUIRE(w);
	T_EQ_INT(11 * MiB + 5, s3d_writer_size(w));
	T_EQ_INT(S3D_OK, wwrite(w, data + 11 * MiB + 5, 100, 100));
	T_EQ_INT(S3D_OK, WCOMMIT(w));
	s3d_writer_free(w);
	check_content(path, data, n);
	T_EQ_INT(0, uploads_of(path));
	T_EQ_INT(-1, tail_size(path));
	remove_path(path);
	s3d_driver_free(d2);
	free(data);
}

/* ---- zero bytes, then append (TestWriteZeroByte{Stream,Content}ThenAppend) ---- */

static void test_zero_then_append(void)
{
	const char *path = "/zero/stream", *path2 = "/zero/content";
	uint8_t *data = t_make_pattern(32, 3);
	char key[1100];
	s3d_writer *w;
	s3d_error err;

	T_REQUIRE(data);
	w = wopen(g_d, path, 0);
	T_REQUIRE(w);
	T_EQ_INT(S3D_OK, WCOMMIT(w));
	T_EQ_INT(S3D_OK, WCLOSE(w));
	T_EQ_INT(0, s3d_writer_size(w));
	s3d_writer_free(w);
	T_EQ_INT(0, path_size(path));
	T_EQ_INT(0, uploads_of(path));
	w = wopen(g_d, path, 1);
	T_REQUIRE(w);
	T_EQ_INT(0, s3d_writer_size(w));
	T_EQ_INT(S3D_OK, wwrite(w, data, 32, 32));
	T_EQ_INT(S3D_OK, WCOMMIT(w));
	T_EQ_INT(S3D_OK, WCLOSE(w));
	T_EQ_INT(32, s3d_writer_size(w));
	s3d_writer_free(w);
	check_content(path, data, 32);

	/* PutContent(nil), then append */
	key_of(path2, key, sizeof(key));
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_put_object(cli(), bucket, key, NULL, 0, NULL, NULL, &err));
	w = wopen(g_d, path2, 1);
	T_REQUIRE(w);
	T_EQ_INT(0, s3d_writer_size(w));
	T_EQ_INT(S3D_OK, wwrite(w, data, 32, 32));
	T_EQ_INT(S3D_OK, WCOMMIT(w));
	s3d_writer_free(w);
	check_content(path2, data, 32);
	T_EQ_INT(0, uploads_of(path2));
	remove_path("/zero");
	free(data);
}

/* Appending where nothing exists starts empty (the registry never does it). */
static void test_append_to_nothing(void)
{
	const char *path = "/nothing/here";
	s3d_writer *w = wopen(g_d, path, 1);

	T_REQUIRE(w);
	T_EQ_INT(0, s3d_writer_size(w));
	T_EQ_INT(S3D_OK, wwrite(w, (const uint8_t *)"xyz", 3, 3));
	T_EQ_INT(S3D_OK, WCOMMIT(w));
	s3d_writer_free(w);
	check_content(path, (const uint8_t *)"xyz", 3);
	remove_path(path);
}

/* ---- appending to committed objects ---- */

static void test_append_to_committed(void)
{
	const char *big = "/committed/big", *small = "/committed/small";
	size_t base = 6 * MiB, extra = MiB + 3;
	uint8_t *data = t_make_pattern(base + extra, 11);
	char key[1100];
	s3d_writer *w;
	s3d_error err;

	T_REQUIRE(data);
	/* >= 5 MiB: copied server-side as part 1 of a new upload */
	key_of(big, key, sizeof(key));
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_put_object(cli(), bucket, key, data, base, NULL, NULL, &err));
	w = wopen(g_d, big, 1);
	T_REQUIRE(w);
	T_EQ_INT(base, s3d_writer_size(w));
	T_EQ_INT(1, uploads_of(big));
	T_EQ_INT(S3D_OK, wwrite(w, data + base, extra, extra));
	T_EQ_INT(S3D_OK, WCLOSE(w));
	s3d_writer_free(w);
	T_EQ_INT(extra, tail_size(big));
	T_EQ_INT(base, path_size(big)); /* the committed object stays until Commit */
	w = wopen(g_d, big, 1);
	T_REQUIRE(w);
	T_EQ_INT(base + extra, s3d_writer_size(w));
	T_EQ_INT(S3D_OK, WCOMMIT(w));
	s3d_writer_free(w);
	check_content(big, data, base + extra);
	T_EQ_INT(0, uploads_of(big));
	T_EQ_INT(-1, tail_size(big));

	/* < 5 MiB: read back into the buffer, no upload */
	key_of(small, key, sizeof(key));
	T_EQ_INT(S3D_OK, s3d_put_object(cli(), bucket, key, data, 100, NULL, NULL, &err));
	w = wopen(g_d, small, 1);
	T_REQUIRE(w);
	T_EQ_INT(100, s3d_writer_size(w));
	T_EQ_INT(0, uploads_of(small));
	T_EQ_INT(S3D_OK, WCLOSE(w)); /* nothing new: nothing written anywhere */
	T_EQ_INT(-1, tail_size(small));
	s3d_writer_free(w);
	w = wopen(g_d, small, 1);
	T_REQUIRE(w);
	T_EQ_INT(100, s3d_writer_size(w));
	T_EQ_INT(S3D_OK, wwrite(w, data + 100, 50, 7));
	T_EQ_INT(S3D_OK, WCOMMIT(w));
	s3d_writer_free(w);
	check_content(small, data, 150);
	T_EQ_INT(0, uploads_of(small));
	remove_path("/committed");
	free(data);
}

/* ---- stale tails ---- */

static void test_stale_tail_ignored(void)
{
	const char *path = "/stale/data";
	uint8_t *data = t_make_pattern(2 * PART, 13), *other = t_make_pattern(PART, 14);
	char key[1100], id[512];
	s3d_writer *w;
	s3d_part part;
	s3d_error err;

	T_REQUIRE(data && other);
	w = wopen(g_d, path, 0);
	T_REQUIRE(w);
	T_EQ_INT(S3D_OK, wwrite(w, data, PART + 1000, MiB));
	T_EQ_INT(S3D_OK, WCLOSE(w)); /* part 1 + a tail stamped <id>:5 MiB */
	s3d_writer_free(w);
	T_EQ_INT(1000, tail_size(path));
	/* someone adds part 2 by hand: the tail no longer follows the parts */
	key_of(path, key, sizeof(key));
	T_EQ_INT(1, uploads_of_key(key, id, sizeof(id)));
	memcpy(data + PART, other, PART);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_upload_part(cli(), bucket, key, id, 2, other, PART, NULL, &part, &err));
	w = wopen(g_d, path, 1);
	T_REQUIRE(w);
	T_EQ_INT(2 * PART, s3d_writer_size(w)); /* the sum of the parts, no tail */
	T_EQ_INT(-1, tail_size(path));          /* and the stale tail is gone */
	T_EQ_INT(S3D_OK, WCOMMIT(w));
	s3d_writer_free(w);
	check_content(path, data, 2 * PART);
	remove_path(path);
	free(data);
	free(other);
}

/* A tail without our stamp, or stamped for an upload that is gone, is ignored:
 * the writer goes on after the committed object. */
static void test_foreign_tails_ignored(void)
{
	const char *path = "/stale/foreign";
	char key[1100], tail[1100];
	s3d_kv meta[] = { { S3D_UPLOAD_STAMP_HEADER, "gone-upload:0" } };
	s3d_put_opts po;
	s3d_writer *w;
	s3d_error err;

	key_of(path, key, sizeof(key));
	tail_of(path, tail, sizeof(tail));
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_put_object(cli(), bucket, key, "base", 4, NULL, NULL, &err));
	T_EQ_INT(S3D_OK, s3d_put_object(cli(), bucket, tail, "junk", 4, NULL, NULL, &err));
	w = wopen(g_d, path, 1);
	T_REQUIRE(w);
	T_EQ_INT(4, s3d_writer_size(w));
	T_EQ_INT(-1, head_size(tail));
	T_EQ_INT(S3D_OK, WCLOSE(w));
	s3d_writer_free(w);

	memset(&po, 0, sizeof(po));
	po.headers = meta;
	po.nheaders = 1;
	T_EQ_INT(S3D_OK, s3d_put_object(cli(), bucket, tail, "junk", 4, &po, NULL, &err));
	w = wopen(g_d, path, 1);
	T_REQUIRE(w);
	T_EQ_INT(4, s3d_writer_size(w));
	T_EQ_INT(-1, head_size(tail));
	T_EQ_INT(S3D_OK, wwrite(w, (const uint8_t *)"+more", 5, 5));
	T_EQ_INT(S3D_OK, WCOMMIT(w));
	s3d_writer_free(w);
	check_content(path, (const uint8_t *)"base+more", 9);
	remove_path(path);
}

/* An upload without a part (its first part failed) carries no byte: it is
 * dropped, and a tail stamped for "no upload" is still the file. */
static void test_empty_upload_dropped(void)
{
	const char *path = "/stale/empty-upload";
	char key[1100], tail[1100];
	s3d_kv meta[] = { { S3D_UPLOAD_STAMP_HEADER, "-:0" } };
	s3d_put_opts po;
	s3d_buf id;
	s3d_writer *w;
	s3d_error err;

	key_of(path, key, sizeof(key));
	tail_of(path, tail, sizeof(tail));
	s3d_buf_init(&id, 4096);
	memset(&po, 0, sizeof(po));
	po.headers = meta;
	po.nheaders = 1;
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_put_object(cli(), bucket, tail, "abc", 3, &po, NULL, &err));
	T_EQ_INT(S3D_OK, s3d_create_multipart(cli(), bucket, key, NULL, &id, &err));
	w = wopen(g_d, path, 1);
	T_REQUIRE(w);
	T_EQ_INT(3, s3d_writer_size(w));
	T_EQ_INT(0, uploads_of(path));
	T_EQ_INT(S3D_OK, wwrite(w, (const uint8_t *)"def", 3, 3));
	T_EQ_INT(S3D_OK, WCOMMIT(w));
	s3d_writer_free(w);
	check_content(path, (const uint8_t *)"abcdef", 6);
	T_EQ_INT(-1, head_size(tail));
	s3d_buf_cleanup(&id);
	remove_path(path);
}

/* The upload vanishes behind the writer's back: Commit reports S3's answer,
 * leaves no upload, and the writer is done. */
static void test_commit_after_upload_vanished(void)
{
	const char *path = "/vanished/data";
	uint8_t *data = t_make_pattern(6 * MiB, 37);
	char key[1100], id[512], text[512];
	s3d_writer *w;
	s3d_error err;
	int rc;

	T_REQUIRE(data);
	w = wopen(g_d, path, 0);
	T_REQUIRE(w);
	T_EQ_INT(S3D_OK, wwrite(w, data, 6 * MiB, MiB));
	T_EQ_INT(S3D_OK, WCLOSE(w));
	s3d_writer_free(w);
	w = wopen(g_d, path, 1);
	T_REQUIRE(w);
	T_EQ_INT(6 * MiB, s3d_writer_size(w));
	key_of(path, key, sizeof(key));
	T_EQ_INT(1, uploads_of_key(key, id, sizeof(id)));
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_abort_multipart(cli(), bucket, key, id, &err));
	s3d_error_clear(&err);
	rc = s3d_writer_commit(w, &err);
	T_TRUE(rc == S3D_E_NOTFOUND || rc == S3D_E_S3);
	T_EQ_STR("NoSuchUpload", err.code);
	s3d_error_format(&err, rc, text, sizeof(text));
	fprintf(stderr, "  (expected) %s\n", text);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_INVAL, s3d_writer_commit(w, &err));
	T_TRUE(strstr(err.message, "the commit failed") != NULL);
	T_EQ_INT(S3D_OK, s3d_writer_close(w, &err));
	s3d_writer_free(w);
	T_EQ_INT(0, uploads_of(path));
	T_EQ_INT(-1, path_size(path));
	/* the tail is stale now (its upload is gone): the next writer drops it */
	T_EQ_INT(MiB, tail_size(path));
	w = wopen(g_d, path, 1);
	T_REQUIRE(w);
	T_EQ_INT(0, s3d_writer_size(w));
	T_EQ_INT(-1, tail_size(path));
	T_EQ_INT(S3D_OK, WCANCEL(w));
	s3d_writer_free(w);

	/* distribution cleans up a failed Commit with Cancel: allowed, once */
	w = wopen(g_d, path, 0);
	T_REQUIRE(w);
	T_EQ_INT(S3D_OK, wwrite(w, data, 6 * MiB, MiB));
	T_EQ_INT(1, uploads_of_key(key, id, sizeof(id)));
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_abort_multipart(cli(), bucket, key, id, &err));
	T_TRUE(s3d_writer_commit(w, &err) != S3D_OK);
	T_EQ_INT(S3D_OK, WCANCEL(w));
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_INVAL, s3d_writer_cancel(w, &err));
	T_TRUE(strstr(err.message, "already cancelled") != NULL);
	T_EQ_INT(S3D_OK, s3d_writer_close(w, &err));
	s3d_writer_free(w);
	T_EQ_INT(0, uploads_of(path));
	T_EQ_INT(-1, tail_size(path));
	T_EQ_INT(-1, path_size(path));
	free(data);
}

/* ---- cancel ---- */

static void test_cancel_removes_everything(void)
{
	const char *path = "/cancel/data";
	uint8_t *data = t_make_pattern(6 * MiB, 17);
	s3d_writer *w;

	T_REQUIRE(data);
	w = wopen(g_d, path, 0);
	T_REQUIRE(w);
	T_EQ_INT(S3D_OK, wwrite(w, data, 6 * MiB, MiB));
	T_EQ_INT(S3D_OK, WCLOSE(w));
	s3d_writer_free(w);
	T_EQ_INT(1, uploads_of(path));
	T_EQ_INT(MiB, tail_size(path));
	w = wopen(g_d, path, 1);
	T_REQUIRE(w);
	T_EQ_INT(6 * MiB, s3d_writer_size(w));
	T_EQ_INT(S3D_OK, WCANCEL(w));
	T_EQ_INT(S3D_OK, WCLOSE(w));
	s3d_writer_free(w);
	T_EQ_INT(0, uploads_of(path));
	T_EQ_INT(-1, tail_size(path));
	T_EQ_INT(-1, path_size(path));

	/* straight from writing, parts in flight */
	w = wopen(g_d, path, 0);
	T_REQUIRE(w);
	T_EQ_INT(S3D_OK, wwrite(w, data, 6 * MiB, 3 * MiB));
	T_EQ_INT(S3D_OK, WCANCEL(w));
	s3d_writer_free(w);
	T_EQ_INT(0, uploads_of(path));
	T_EQ_INT(-1, tail_size(path));
	T_EQ_INT(-1, path_size(path));
	free(data);
}

/* ---- open(append=0) starts clean ---- */

static void test_fresh_open_aborts_dangling(void)
{
	const char *path = "/fresh/data";
	char key[1100], longer[1200], tail[1100];
	s3d_buf id, id2;
	s3d_writer *w;
	s3d_error err;

	key_of(path, key, sizeof(key));
	tail_of(path, tail, sizeof(tail));
	snprintf(longer, sizeof(longer), "%s2", key); /* shares the prefix: not ours */
	s3d_buf_init(&id, 4096);
	s3d_buf_init(&id2, 4096);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_put_object(cli(), bucket, key, "old", 3, NULL, NULL, &err));
	T_EQ_INT(S3D_OK, s3d_create_multipart(cli(), bucket, key, NULL, &id, &err));
	T_EQ_INT(S3D_OK, s3d_create_multipart(cli(), bucket, longer, NULL, &id2, &err));
	T_EQ_INT(S3D_OK, s3d_put_object(cli(), bucket, tail, "junk", 4, NULL, NULL, &err));
	w = wopen(g_d, path, 0);
	T_REQUIRE(w);
	T_EQ_INT(0, s3d_writer_size(w));
	T_EQ_INT(0, uploads_of_key(key, NULL, 0));
	T_EQ_INT(1, uploads_of_key(longer, NULL, 0));
	T_EQ_INT(-1, head_size(tail));
	T_EQ_INT(3, head_size(key)); /* the committed object stays until Commit */
	T_EQ_INT(S3D_OK, wwrite(w, (const uint8_t *)"new", 3, 3));
	T_EQ_INT(S3D_OK, WCOMMIT(w));
	s3d_writer_free(w);
	check_content(path, (const uint8_t *)"new", 3);
	T_EQ_INT(S3D_OK, s3d_abort_multipart(cli(), bucket, longer, s3d_buf_str(&id2), &err));
	s3d_buf_cleanup(&id);
	s3d_buf_cleanup(&id2);
	remove_path(path);
}

/* Several uploads of one key: the newest wins, the others are aborted. Its
 * last part is short, so the writer can commit it but not append. */
static void test_newest_upload_wins(void)
{
	const char *path = "/several/data";
	struct timespec pause = { 1, 200000000L }; /* Initiated has second resolution */
	char key[1100];
	s3d_buf a, b;
	s3d_writer *w;
	s3d_part part;
	s3d_error err;

	key_of(path, key, sizeof(key));
	s3d_buf_init(&a, 4096);
	s3d_buf_init(&b, 4096);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_create_multipart(cli(), bucket, key, NULL, &a, &err));
	T_EQ_INT(S3D_OK, s3d_upload_part(cli(), bucket, key, s3d_buf_str(&a), 1, "older", 5,
					 NULL, &part, &err));
	nanosleep(&pause, NULL);
	T_EQ_INT(S3D_OK, s3d_create_multipart(cli(), bucket, key, NULL, &b, &err));
	T_EQ_INT(S3D_OK, s3d_upload_part(cli(), bucket, key, s3d_buf_str(&b), 1, "newer!", 6,
					 NULL, &part, &err));
	T_EQ_INT(2, uploads_of(path));
	w = wopen(g_d, path, 1);
	T_REQUIRE(w);
	T_EQ_INT(6, s3d_writer_size(w));
	T_EQ_INT(1, uploads_of(path));
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_PROTOCOL, s3d_writer_write(w, "x", 1, &err));
	T_TRUE(strstr(err.message, "under 5 MiB") != NULL);
	T_EQ_INT(S3D_OK, WCOMMIT(w));
	s3d_writer_free(w);
	check_content(path, (const uint8_t *)"newer!", 6);
	T_EQ_INT(0, uploads_of(path));
	s3d_buf_cleanup(&a);
	s3d_buf_cleanup(&b);
	remove_path(path);
}

/* ---- irregular writes and the memory bound ---- */

static void test_irregular_writes(void)
{
	static const size_t sizes[] = { 1, 22, 20 }; /* OCI conformance PATCHes */
	const char *path = "/irregular/data";
	size_t step = MiB + 3, n = 43 + 14 * step, off = 0, i, peak;
	uint8_t *data = t_make_pattern(n, 19);
	s3d_writer *w;
	int round;

	T_REQUIRE(data);
	w = wopen(g_d, path, 0);
	T_REQUIRE(w);
	for (i = 0; i < 3; i++) {
		T_EQ_INT(S3D_OK, wwrite(w, data + off, sizes[i], sizes[i]));
		off += sizes[i];
		T_EQ_INT(S3D_OK, WCLOSE(w));
		s3d_writer_free(w);
		w = wopen(g_d, path, 1);
		T_REQUIRE(w);
		T_EQ_INT(off, s3d_writer_size(w));
	}
	T_EQ_INT(0, uploads_of(path));
	for (round = 0; round < 2; round++) { /* 7 writes of 1 MiB + 3, then reopen */
		for (i = 0; i < 7; i++) {
			T_EQ_INT(S3D_OK, wwrite(w, data + off, step, step));
			off += step;
		}
		peak = s3d_writer_peak_memory(w);
		T_TRUE(peak > 0 && peak <= 3 * (size_t)PART);
		if (round == 0) {
			T_EQ_INT(S3D_OK, WCLOSE(w));
			s3d_writer_free(w);
			w = wopen(g_d, path, 1);
			T_REQUIRE(w);
			T_EQ_INT(off, s3d_writer_size(w));
		}
	}
	T_EQ_INT(n, off);
	T_EQ_INT(S3D_OK, WCOMMIT(w));
	T_EQ_INT(n, s3d_writer_size(w));
	s3d_writer_free(w);
	check_content(path, data, n);
	remove_path(path);
	free(data);
}

static void test_peak_memory_bound(void)
{
	const char *path = "/memory/data";
	size_t n = 16 * MiB + 9, peak;
	uint8_t *data = t_make_pattern(n, 23);
	s3d_driver *d1 = driver_with(PART, 1);
	s3d_writer *w;

	T_REQUIRE(data && d1);
	w = wopen(g_d, path, 0); /* 2 in flight: at most 3 part buffers */
	T_REQUIRE(w);
	T_EQ_INT(S3D_OK, wwrite(w, data, n, 256 * 1024 + 1));
	peak = s3d_writer_peak_memory(w);
	fprintf(stderr, "  2 in flight: peak %zu bytes (bound %zu)\n", peak, 3 * (size_t)PART);
	T_TRUE(peak >= 2 * (size_t)PART && peak <= 3 * (size_t)PART);
	T_EQ_INT(S3D_OK, WCOMMIT(w));
	s3d_writer_free(w);
	check_content(path, data, n);

	w = wopen(d1, path, 0); /* exactly one part: the buffer, handed over, counts once */
	T_REQUIRE(w);
	T_EQ_INT(S3D_OK, wwrite(w, data, PART, 1 * MiB));
	peak = s3d_writer_peak_memory(w);
	fprintf(stderr, "  one part written: peak %zu bytes (bound %zu)\n", peak, (size_t)PART);
	T_TRUE(peak >= PART && peak <= PART);
	T_EQ_INT(S3D_OK, WCOMMIT(w));
	s3d_writer_free(w);
	check_content(path, data, PART);

	w = wopen(d1, path, 0); /* 1 in flight: at most 2 */
	T_REQUIRE(w);
	T_EQ_INT(S3D_OK, wwrite(w, data, 11 * MiB, 3 * MiB));
	peak = s3d_writer_peak_memory(w);
	fprintf(stderr, "  1 in flight: peak %zu bytes (bound %zu)\n", peak, 2 * (size_t)PART);
	T_TRUE(peak >= PART && peak <= 2 * (size_t)PART);
	T_EQ_INT(S3D_OK, WCOMMIT(w));
	s3d_writer_free(w);
	check_content(path, data, 11 * MiB);
	remove_path(path);
	s3d_driver_free(d1);
	free(data);
}

/* With parts over 5 MiB, a rest of >= 5 MiB at Close is a part, not a tail. */
static void test_large_rest_becomes_part(void)
{
	const char *path = "/rest/data";
	size_t n = 9 * MiB + 1;
	uint8_t *data = t_make_pattern(n, 29);
	s3d_driver *d8 = driver_with(8 * MiB, 2);
	s3d_writer *w;

	T_REQUIRE(data && d8);
	w = wopen(d8, path, 0);
	T_REQUIRE(w);
	T_EQ_INT(S3D_OK, wwrite(w, data, 6 * MiB, MiB));
	T_EQ_INT(0, uploads_of(path));
	T_EQ_INT(S3D_OK, WCLOSE(w));
	s3d_writer_free(w);
	T_EQ_INT(1, uploads_of(path));
	T_EQ_INT(-1, tail_size(path));
	w = wopen(d8, path, 1);
	T_REQUIRE(w);
	T_EQ_INT(6 * MiB, s3d_writer_size(w));
	T_EQ_INT(S3D_OK, wwrite(w, data + 6 * MiB, 3 * MiB, MiB));
	T_EQ_INT(S3D_OK, WCLOSE(w));
	s3d_writer_free(w);
	T_EQ_INT(3 * MiB, tail_size(path));
	w = wopen(d8, path, 1);
	T_REQUIRE(w);
	T_EQ_INT(9 * MiB, s3d_writer_size(w));
	T_EQ_INT(S3D_OK, wwrite(w, data + 9 * MiB, 1, 1));
	T_EQ_INT(S3D_OK, WCOMMIT(w));
	s3d_writer_free(w);
	check_content(path, data, n);
	T_EQ_INT(0, uploads_of(path));
	T_EQ_INT(-1, tail_size(path));
	remove_path(path);
	s3d_driver_free(d8);
	free(data);
}

/* Writes n bytes of data to a fresh writer at path and closes it. */
static void write_closed(const char *path, const uint8_t *data, size_t n)
{
	s3d_writer *w = wopen(g_d, path, 0);

	T_REQUIRE(w);
	T_EQ_INT(S3D_OK, wwrite(w, data, n, MiB));
	T_EQ_INT(S3D_OK, WCLOSE(w));
	s3d_writer_free(w);
}

/*
 * A Delete of a directory (the stock upload purger's) takes the unfinished
 * uploads below it along: multipart uploads and tails, mirrored or hashed.
 * A sibling directory's upload stays and goes on.
 */
static void test_delete_takes_unfinished_uploads(void)
{
	const char *small = "/gone/_uploads/a/data", *big = "/gone/_uploads/b/data";
	const char *whole = "/gone/_uploads/d/data"; /* parts only, no tail */
	const char *other = "/gone-not/_uploads/c/data";
	char lng[1100], key[1100], tail[1100], seg[201];
	uint8_t *data = t_make_pattern(PART + MiB, 23);
	s3d_writer *w;
	s3d_error err;
	size_t rl = strlen(ROOT) + 1;

	T_REQUIRE(data);
	/* a path whose key fits S3 but is too long for a tail name: hashed */
	memset(seg, 'x', 200);
	seg[200] = 0;
	snprintf(lng, sizeof(lng), "/gone/%s/%s/%s/%s/%s/%.*s", seg, seg, seg, seg, seg,
		 (int)(1020 - rl - 5 - 5 * 201), seg);
	key_of(lng, key, sizeof(key));
	T_EQ_INT(1020, (int64_t)strlen(key));
	tail_of(lng, tail, sizeof(tail));
	T_EQ_INT(0, strncmp(tail, ROOT "/" S3D_UPLOAD_TAIL_HASHED_PREFIX,
			    strlen(ROOT "/" S3D_UPLOAD_TAIL_HASHED_PREFIX)));
	tail_of(small, tail, sizeof(tail));
	T_EQ_STR(ROOT "/" S3D_DRIVER_TAIL_PREFIX "gone!_uploads!a!data", tail);

	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_put_object(cli(), bucket, ROOT "/gone/_uploads/a/startedat", "t", 1,
					NULL, NULL, &err));
	write_closed(small, data, MiB);
	write_closed(big, data, PART + MiB);
	write_closed(lng, data, PART + MiB);
	write_closed(whole, data, PART);
	write_closed(other, data, PART + MiB);
	T_EQ_INT(MiB, tail_size(small));
	T_EQ_INT(1, uploads_of(big));
	T_EQ_INT(MiB, tail_size(big));
	T_EQ_INT(1, uploads_of(lng));
	T_EQ_INT(MiB, tail_size(lng));
	T_EQ_INT(1, uploads_of(whole));
	T_EQ_INT(-1, tail_size(whole));

	T_EQ_INT(S3D_OK, s3d_driver_delete(g_d, "/gone", &err));
	T_EQ_INT(0, uploads_of(whole));
	T_EQ_INT(-1, tail_size(small));
	T_EQ_INT(0, uploads_of(big));
	T_EQ_INT(-1, tail_size(big));
	T_EQ_INT(0, uploads_of(lng));
	T_EQ_INT(-1, tail_size(lng));
	T_EQ_INT(-1, head_size(ROOT "/gone/_uploads/a/startedat"));
	w = wopen(g_d, small, 1);
	T_REQUIRE(w);
	T_EQ_INT(0, s3d_writer_size(w));
	T_EQ_INT(S3D_OK, WCANCEL(w));
	s3d_writer_free(w);

	/* the sibling's upload ("/gone-not" starts with "/gone") is whole */
	T_EQ_INT(1, uploads_of(other));
	T_EQ_INT(MiB, tail_size(other));
	w = wopen(g_d, other, 1);
	T_REQUIRE(w);
	T_EQ_INT(PART + MiB, s3d_writer_size(w));
	T_EQ_INT(S3D_OK, WCOMMIT(w));
	s3d_writer_free(w);
	check_content(other, data, PART + MiB);

	/* a Delete of an unfinished upload's own path: gone, and not found */
	write_closed(big, data, PART + MiB);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_driver_delete(g_d, big, &err));
	T_EQ_INT(0, uploads_of(big));
	T_EQ_INT(-1, tail_size(big));
	remove_path("/gone-not");
	free(data);
}

/*
 * A Close that fails (S3 refuses the tail's PUT) leaves the writer reporting
 * the size a later open finds, not the bytes it was given: the registry
 * ignores Close's error and hands Size() to the client as the upload's
 * offset. Against a loopback fault server that plays S3 and stores nothing.
 */
struct close_fault {
	pthread_mutex_t mu;
	int tail_puts;
};

static void close_fault_answer(void *ud, int fd, const char *req, size_t len)
{
	struct close_fault *f = ud;
	char method[16], target[2048];
	const char *body;

	(void)len;
	if (t_fault_req_line(fd, req, method, sizeof(method), target, sizeof(target)) != 0)
		return;
	pthread_mutex_lock(&f->mu);
	if (strcmp(method, "GET") == 0 && strstr(target, "uploads")) {
		body = "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>"
		       "</ListMultipartUploadsResult>";
		t_send_answer(fd, "200 OK", NULL, body, strlen(body));
	} else if (strcmp(method, "GET") == 0 && strstr(target, "list-type=2")) {
		body = "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";
		t_send_answer(fd, "200 OK", NULL, body, strlen(body));
	} else if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
		t_send_s3_error(fd, "404 Not Found", "NoSuchKey", "FAULTGET");
	} else if (strcmp(method, "DELETE") == 0) {
		t_send_answer(fd, "204 No Content", NULL, NULL, 0);
	} else {
		if (strcmp(method, "PUT") == 0 && strstr(target, "_s3direct/tails/up"))
			f->tail_puts++;
		t_send_s3_error(fd, "403 Forbidden", "AccessDenied", "FAULTPUT");
	}
	pthread_mutex_unlock(&f->mu);
}

static void test_failed_close_reports_durable_size(void)
{
	struct close_fault f;
	struct t_fault_server srv;
	s3d_driver_config cfg;
	s3d_driver *d = NULL;
	s3d_writer *w = NULL;
	s3d_error err;
	uint8_t *data = t_make_pattern(MiB, 29);

	T_REQUIRE(data);
	memset(&f, 0, sizeof(f));
	pthread_mutex_init(&f.mu, NULL);
	T_REQUIRE(t_fault_start(&srv, close_fault_answer, &f) == 0);
	t_s3_driver_config(&cfg, srv.endpoint, "b", "r");
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_driver_new(&cfg, &d, &err));
	if (d && (w = wopen(d, "/up/data", 0)) != NULL) {
		T_EQ_INT(S3D_OK, wwrite(w, data, MiB, MiB));
		T_EQ_INT(MiB, s3d_writer_size(w));
		s3d_error_clear(&err);
		T_EQ_INT(S3D_E_S3, s3d_writer_close(w, &err));
		T_EQ_STR("AccessDenied", err.code);
		T_EQ_INT(1, f.tail_puts);
		T_EQ_INT(0, s3d_writer_size(w)); /* S3 holds nothing of it */
		s3d_writer_free(w);
	}
	s3d_driver_free(d);
	t_fault_stop(&srv);
	pthread_mutex_destroy(&f.mu);
	free(data);
}

static int count_tails(void *ud, const s3d_list_entry *e)
{
	int *n = ud;

	/* the tails area's directory marker stays by design */
	if (strcmp(e->key, ROOT "/" S3D_DRIVER_TAIL_PREFIX) != 0)
		(*n)++;
	return 0;
}

/* Every test cleaned up after itself: no tail and no upload is left. */
static void test_nothing_left_behind(void)
{
	s3d_list_opts o;
	s3d_error err;
	int n = 0;

	memset(&o, 0, sizeof(o));
	o.prefix = ROOT "/" S3D_DRIVER_PRIVATE_DIR "/";
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_list_objects(cli(), bucket, &o, count_tails, &n, &err));
	T_EQ_INT(0, n);
	T_EQ_INT(S3D_OK, s3d_head_object(cli(), bucket, ROOT "/" S3D_DRIVER_TAIL_PREFIX, 0, NULL, &err));
	o.prefix = ROOT "/";
	T_EQ_INT(S3D_OK, s3d_list_multipart_uploads(cli(), bucket, &o, t_count_entry, &n, &err));
	T_EQ_INT(0, n);
}

/* ---- the run's bucket ---- */

int main(void)
{
	s3d_client *c = t_s3_plain_client();

	if (t_s3_new_bucket("upload", c, "up", bucket, sizeof(bucket)) != 0) {
		s3d_client_free(c);
		return 1;
	}
	if (!(g_d = driver_with(PART, 2))) {
		fprintf(stderr, "FATAL: cannot make the driver for bucket %s\n", bucket);
		printf("upload: 0 passed, 1 failed\n");
		s3d_client_free(c);
		return 1;
	}
	T_RUN(test_bad_arguments);
	T_RUN(test_after_commit);
	T_RUN(test_after_cancel);
	T_RUN(test_after_close);
	T_RUN(test_free_without_close);
	T_RUN(test_small_commit_never_creates_upload);
	T_RUN(test_continue_append_small);
	T_RUN(test_continue_append_large);
	T_RUN(test_second_process);
	T_RUN(test_zero_then_append);
	T_RUN(test_append_to_nothing);
	T_RUN(test_append_to_committed);
	T_RUN(test_stale_tail_ignored);
	T_RUN(test_foreign_tails_ignored);
	T_RUN(test_empty_upload_dropped);
	T_RUN(test_commit_after_upload_vanished);
	T_RUN(test_cancel_removes_everything);
	T_RUN(test_delete_takes_unfinished_uploads);
	T_RUN(test_failed_close_reports_durable_size);
	T_RUN(test_fresh_open_aborts_dangling);
	T_RUN(test_newest_upload_wins);
	T_RUN(test_irregular_writes);
	T_RUN(test_peak_memory_bound);
	T_RUN(test_large_rest_becomes_part);
	T_RUN(test_nothing_left_behind);
	s3d_driver_free(g_d);
	t_s3_drop_bucket(c, bucket, NULL, 0);
	s3d_client_free(c);
	curl_global_cleanup();
	return t_done("upload");
}
