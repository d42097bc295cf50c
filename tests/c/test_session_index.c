/*
 * session_index: the record format (hostile input first, then exact round
 * trips of random records) and the LMDB index (bad paths, compare-and-set,
 * durability across close and SIGKILL, scans, expiry consistency, map
 * growth from a tiny map, group commit under 16 threads).
 */
#include "t.h"

#include "buf.h"
#include "s3direct.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAGIC "s3direct-session 1\n"
#define ENC_MAX (64u * 1024u)

static char tmproot[PATH_MAX - 64];

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rng_state = 0x5e55104d1dull; /* fixed seed: reproducible */

static uint64_t rng(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static void mk(s3d_session *s, const char *uuid, int status, int64_t expires)
{
	s3d_session_init(s);
	snprintf(s->uuid, sizeof(s->uuid), "%s", uuid);
	snprintf(s->repo, sizeof(s->repo), "library/ubuntu");
	snprintf(s->key, sizeof(s->key), "docker/registry/v2/blobs/x");
	s->status = status;
	s->created = 1000;
	s->expires = expires;
	s->updated = 1000;
}

static int session_eq(const s3d_session *a, const s3d_session *b)
{
	return !strcmp(a->uuid, b->uuid) && !strcmp(a->repo, b->repo) &&
	       !strcmp(a->user, b->user) && a->status == b->status && a->mode == b->mode &&
	       a->direct == b->direct && !strcmp(a->key, b->key) &&
	       !strcmp(a->upload_id, b->upload_id) &&
	       !strcmp(a->declared_digest, b->declared_digest) &&
	       a->declared_size == b->declared_size &&
	       !strcmp(a->final_digest, b->final_digest) && a->final_size == b->final_size &&
	       a->part_size == b->part_size && a->created == b->created &&
	       a->expires == b->expires && a->updated == b->updated &&
	       !strcmp(a->detail, b->detail);
}

static int decode_str(const char *text, s3d_session *out)
{
	return s3d_session_decode((const uint8_t *)text, strlen(text), out);
}

/*
 * Decodes a valid record in which the line of field name is replaced by
 * "name=value" (value NULL: the line is dropped); a name the record does
 * not have is appended.
 */
static int decode_with(const char *name, const char *value, s3d_session *out)
{
	s3d_session s;
	s3d_buf enc, res;
	char *line, *save = NULL;
	size_t nlen = strlen(name);
	int found = 0, rc;

	mk(&s, "u-1", S3D_SESSION_PENDING, 5000);
	s3d_buf_init(&enc, ENC_MAX);
	s3d_buf_init(&res, ENC_MAX);
	if (s3d_session_encode(&s, &enc) != S3D_OK)
		abort();
	for (line = strtok_r((char *)enc.ptr, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, name, nlen) && line[nlen] == '=') {
			found = 1;
			if (value)
				s3d_buf_printf(&res, "%s=%s\n", name, value);
			continue;
		}
		s3d_buf_printf(&res, "%s\n", line);
	}
	if (!found && value)
		s3d_buf_printf(&res, "%s=%s\n", name, value);
	rc = s3d_session_decode(res.ptr, res.len, out);
	s3d_buf_cleanup(&enc);
	s3d_buf_cleanup(&res);
	return rc;
}

static void path_of(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", tmproot, name);
}

static s3d_index *open_ix(const char *name, size_t map, int no_sync)
{
	s3d_index_config cfg = { 0 };
	s3d_index *ix = NULL;
	s3d_error err;
	char path[PATH_MAX];
	int rc;

	path_of(path, sizeof(path), name);
	cfg.path = path;
	cfg.map_size = map;
	cfg.no_sync = no_sync;
	s3d_error_clear(&err);
	rc = s3d_index_open(&cfg, &ix, &err);
	if (rc != S3D_OK)
		fprintf(stderr, "  open %s: %s: %s\n", path, s3d_strerror(rc), err.message);
	return ix;
}

/* ---- records: hostile input ---------------------------------------------- */

static void test_decode_garbage(void)
{
	static const char *const bad[] = {
		"",
		"s3direct-session 1",             /* no newline */
		"s3direct-session 2\nuuid=a\n",   /* unknown version */
		"s3direct-session 10\nuuid=a\n",
		"s3direct-session 1 \nuuid=a\n",
		"S3DIRECT-SESSION 1\nuuid=a\n",
		"s3direct-session 1\r\nuuid=a\r\n",
		"\ns3direct-session 1\n",
		"uuid=a\nstatus=1\n",
		"<xml/>",
		"s3direct-session 1\n\n",
		"s3direct-session 1\nnoequals\n",
		"s3direct-session 1\n=value\n",
	};
	s3d_session s;
	uint8_t junk[512];
	size_t i, j;

	T_EQ_INT(S3D_E_PROTOCOL, s3d_session_decode(NULL, 0, &s));
	T_EQ_INT(S3D_E_INVAL, s3d_session_decode(NULL, 5, &s));
	T_EQ_INT(S3D_E_INVAL, s3d_session_decode((const uint8_t *)"x", 1, NULL));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (decode_str(bad[i], &s) != S3D_E_PROTOCOL)
			T_FAIL_("decoded garbage #%zu [%s]", i, bad[i]);
	/* a version line, then random bytes */
	for (i = 0; i < 2000; i++) {
		size_t n = sizeof(MAGIC) - 1 + rng() % (sizeof(junk) - sizeof(MAGIC));

		memcpy(junk, MAGIC, sizeof(MAGIC) - 1);
		for (j = sizeof(MAGIC) - 1; j < n; j++)
			junk[j] = (uint8_t)rng();
		T_EQ_INT(S3D_E_PROTOCOL, s3d_session_decode(junk, n, &s));
	}
	/* a NUL byte anywhere in a valid record */
	T_EQ_INT(S3D_E_PROTOCOL,
		 s3d_session_decode((const uint8_t *)MAGIC "uuid=a\0b\n", sizeof(MAGIC) + 8, &s));
}

static void test_decode_truncated(void)
{
	s3d_session s, got;
	s3d_buf enc;
	size_t n;

	mk(&s, "trunc", S3D_SESSION_UPLOADING, 77);
	s3d_buf_init(&enc, ENC_MAX);
	T_REQUIRE(s3d_session_encode(&s, &enc) == S3D_OK);
	/* every proper prefix, including those cut at a line boundary */
	for (n = 0; n < enc.len; n++)
		if (s3d_session_decode(enc.ptr, n, &got) != S3D_E_PROTOCOL)
			T_FAIL_("prefix of %zu of %zu bytes decoded", n, enc.len);
	T_EQ_INT(S3D_OK, s3d_session_decode(enc.ptr, enc.len, &got));
	T_TRUE(session_eq(&s, &got));
	/* every field dropped in turn */
	T_EQ_INT(S3D_E_PROTOCOL, decode_with("uuid", NULL, &got));
	T_EQ_INT(S3D_E_PROTOCOL, decode_with("status", NULL, &got));
	T_EQ_INT(S3D_E_PROTOCOL, decode_with("detail", NULL, &got));
	T_EQ_INT(S3D_E_PROTOCOL, decode_with("expires", NULL, &got));
	T_EQ_INT(S3D_E_PROTOCOL, decode_with("uuid", "", &got));
	s3d_buf_cleanup(&enc);
}

/* A value of exactly the field's room decodes; one byte more never does. */
static void check_field_limit(const char *name, size_t size)
{
	char *v = malloc(3 * size + 1);
	s3d_session got;
	size_t i;

	memset(v, 'a', size - 1);
	v[size - 1] = 0;
	if (decode_with(name, v, &got) != S3D_OK)
		T_FAIL_("%s of %zu bytes refused", name, size - 1);
	memset(v, 'a', size);
	v[size] = 0;
	if (decode_with(name, v, &got) != S3D_E_PROTOCOL)
		T_FAIL_("%s of %zu bytes (room %zu) accepted", name, size, size - 1);
	for (i = 0; i < size; i++) /* the same, escaped */
		memcpy(v + 3 * i, "%C3", 3);
	v[3 * size] = 0;
	if (decode_with(name, v, &got) != S3D_E_PROTOCOL)
		T_FAIL_("%s of %zu escaped bytes accepted", name, size);
	free(v);
}

static void test_decode_oversized_fields(void)
{
	s3d_session s;

	check_field_limit("uuid", sizeof(s.uuid));
	check_field_limit("repo", sizeof(s.repo));
	check_field_limit("user", sizeof(s.user));
	check_field_limit("key", sizeof(s.key));
	check_field_limit("upload_id", sizeof(s.upload_id));
	check_field_limit("declared_digest", sizeof(s.declared_digest));
	check_field_limit("final_digest", sizeof(s.final_digest));
	check_field_limit("detail", sizeof(s.detail));
}

static void test_decode_bad_escapes(void)
{
	static const char *const bad[] = {
		"%", "%4", "a%", "%G1", "%1G", "%%41", "%00", "a b", "a=b", "a+b",
		"\x80", "\xff", "\t", "a\"b", "%4 ", "%-1",
	};
	s3d_session got;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (decode_with("repo", bad[i], &got) != S3D_E_PROTOCOL)
			T_FAIL_("repo [%s] accepted", bad[i]);
		if (decode_with("future_field", bad[i], &got) != S3D_E_PROTOCOL)
			T_FAIL_("unknown field [%s] accepted", bad[i]);
	}
	T_EQ_INT(S3D_OK, decode_with("repo", "a%2fb%2Fc%3d%0A%25", &got));
	T_EQ_STR("a/b/c=\n%", got.repo);
	T_EQ_INT(S3D_OK, decode_with("repo", "", &got));
	T_EQ_STR("", got.repo);
}

static void test_decode_bad_numbers(void)
{
	static const struct { const char *name, *value; } bad[] = {
		{ "status", "0" }, { "status", "8" }, { "status", "-1" }, { "status", "" },
		{ "status", "1x" }, { "status", "%201" }, { "status", "+1" }, { "status", "0x1" },
		{ "status", "99999999999999999999" }, { "status", "4294967297" },
		{ "mode", "3" }, { "mode", "-1" }, { "direct", "2" },
		{ "declared_size", "-2" }, { "final_size", "-9223372036854775808" },
		{ "part_size", "-1" }, { "created", "-1" }, { "expires", "-5" },
		{ "updated", "9223372036854775808" }, { "expires", "1e3" }, { "expires", "-" },
		{ "expires", "1.5" }, { "expires", "%00" },
	};
	s3d_session got;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (decode_with(bad[i].name, bad[i].value, &got) != S3D_E_PROTOCOL)
			T_FAIL_("%s=[%s] accepted", bad[i].name, bad[i].value);
	T_EQ_INT(S3D_OK, decode_with("expires", "9223372036854775807", &got));
	T_EQ_INT(INT64_MAX, got.expires);
	T_EQ_INT(S3D_OK, decode_with("declared_size", "-1", &got));
	T_EQ_INT(-1, got.declared_size);
	T_EQ_INT(S3D_OK, decode_with("status", "7", &got));
	T_EQ_INT(S3D_SESSION_EXPIRED, got.status);
}

static void test_decode_structure_limits(void)
{
	s3d_session got;
	s3d_buf b;
	int i;

	/* a duplicate known field is ambiguous; an unknown one is skipped */
	T_EQ_INT(S3D_E_PROTOCOL, decode_with("status", "1\nstatus=2", &got));
	T_EQ_INT(S3D_E_PROTOCOL, decode_with("uuid", "a\nuuid=b", &got));
	T_EQ_INT(S3D_OK, decode_with("future_field", "x%20y", &got));
	T_EQ_STR("u-1", got.uuid);
	T_EQ_INT(S3D_OK, decode_with("future", "1\nfuture=2", &got));
	T_EQ_INT(S3D_E_PROTOCOL, decode_with("Future", "1", &got));
	T_EQ_INT(S3D_E_PROTOCOL, decode_with("fu ture", "1", &got));
	/* many small unknown lines: 200 are fine, 300 too many */
	s3d_buf_init(&b, 1u << 20);
	s3d_buf_appendc(&b, '1');
	for (i = 0; i < 300; i++) {
		s3d_buf_printf(&b, "\nx%d=1", i);
		if (i == 199)
			T_EQ_INT(S3D_OK, decode_with("x", (const char *)b.ptr, &got));
	}
	T_EQ_INT(S3D_E_PROTOCOL, decode_with("x", (const char *)b.ptr, &got));
	/* one big unknown field: 10 KiB are fine, 17 KiB too many bytes */
	s3d_buf_reset(&b);
	for (i = 0; i < 17 * 1024; i++) {
		s3d_buf_appendc(&b, 'a');
		if (i == 10 * 1024)
			T_EQ_INT(S3D_OK, decode_with("big", (const char *)b.ptr, &got));
	}
	T_EQ_INT(S3D_E_PROTOCOL, decode_with("big", (const char *)b.ptr, &got));
	s3d_buf_cleanup(&b);
}

static void test_encode_refuses(void)
{
	s3d_session s;
	s3d_buf b;

	s3d_buf_init(&b, ENC_MAX);
	mk(&s, "e", S3D_SESSION_PENDING, 1);
	T_EQ_INT(S3D_E_INVAL, s3d_session_encode(NULL, &b));
	T_EQ_INT(S3D_E_INVAL, s3d_session_encode(&s, NULL));
	memset(s.repo, 'r', sizeof(s.repo)); /* no NUL: refused, not truncated */
	T_EQ_INT(S3D_E_TOOBIG, s3d_session_encode(&s, &b));
	mk(&s, "", S3D_SESSION_PENDING, 1);
	T_EQ_INT(S3D_E_INVAL, s3d_session_encode(&s, &b));
	mk(&s, "e", 0, 1);
	T_EQ_INT(S3D_E_INVAL, s3d_session_encode(&s, &b));
	mk(&s, "e", S3D_SESSION_STATUS_MAX + 1, 1);
	T_EQ_INT(S3D_E_INVAL, s3d_session_encode(&s, &b));
	mk(&s, "e", S3D_SESSION_PENDING, -1);
	T_EQ_INT(S3D_E_INVAL, s3d_session_encode(&s, &b));
	mk(&s, "e", S3D_SESSION_PENDING, 1);
	s.mode = 3;
	T_EQ_INT(S3D_E_INVAL, s3d_session_encode(&s, &b));
	T_EQ_INT(0, b.len);
	/* a buffer too small keeps what it had */
	s3d_buf_cleanup(&b);
	s3d_buf_init(&b, 40);
	s3d_buf_appendz(&b, "keep");
	mk(&s, "e", S3D_SESSION_PENDING, 1);
	T_EQ_INT(S3D_E_TOOBIG, s3d_session_encode(&s, &b));
	T_EQ_STR("keep", s3d_buf_str(&b));
	s3d_buf_cleanup(&b);
}

/* ---- records: round trips ------------------------------------------------- */

static void rand_str(char *dst, size_t size)
{
	static const char special[] = "=\n%% \t/+&?#\r~";
	static const char *const utf8[] = { "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x90\xb3" };
	size_t n = rng() % size, i = 0, k;
	const char *u;

	while (i < n) {
		switch (rng() % 4) {
		case 0:
			dst[i++] = special[rng() % (sizeof(special) - 1)];
			break;
		case 1:
			u = utf8[rng() % 3];
			k = strlen(u);
			if (i + k > n)
				goto done;
			memcpy(dst + i, u, k);
			i += k;
			break;
		default:
			dst[i++] = (char)(1 + rng() % 255);
		}
	}
done:
	dst[i] = 0;
}

/* min, INT64_MAX, or anything non-negative (min is -1 or 0) */
static int64_t rand_i64(int64_t min)
{
	switch (rng() % 4) {
	case 0:
		return min;
	case 1:
		return INT64_MAX;
	case 2:
		return (int64_t)(rng() % 100000);
	default:
		return (int64_t)(rng() >> 1);
	}
}

static void rand_session(s3d_session *s)
{
	s3d_session_init(s);
	do
		rand_str(s->uuid, sizeof(s->uuid));
	while (!s->uuid[0]);
	rand_str(s->repo, sizeof(s->repo));
	rand_str(s->user, sizeof(s->user));
	s->status = 1 + (int)(rng() % S3D_SESSION_STATUS_MAX);
	s->mode = (int)(rng() % 3);
	s->direct = (int)(rng() % 2);
	rand_str(s->key, sizeof(s->key));
	rand_str(s->upload_id, sizeof(s->upload_id));
	rand_str(s->declared_digest, sizeof(s->declared_digest));
	s->declared_size = rand_i64(-1);
	rand_str(s->final_digest, sizeof(s->final_digest));
	s->final_size = rand_i64(-1);
	s->part_size = rand_i64(0);
	s->created = rand_i64(0);
	s->expires = rand_i64(0);
	s->updated = rand_i64(0);
	rand_str(s->detail, sizeof(s->detail));
}

static int count_lines(const s3d_buf *b)
{
	size_t i;
	int n = 0;

	for (i = 0; i < b->len; i++)
		n += b->ptr[i] == '\n';
	return n;
}

static void test_round_trip_random(void)
{
	s3d_session s, got;
	s3d_buf enc, again;
	int i, bad = 0;

	s3d_buf_init(&enc, ENC_MAX);
	s3d_buf_init(&again, ENC_MAX);
	for (i = 0; i < 3000 && bad < 5; i++) {
		rand_session(&s);
		s3d_buf_reset(&enc);
		s3d_buf_reset(&again);
		if (s3d_session_encode(&s, &enc) != S3D_OK ||
		    s3d_session_decode(enc.ptr, enc.len, &got) != S3D_OK ||
		    !session_eq(&s, &got) || s3d_session_encode(&got, &again) != S3D_OK ||
		    enc.len != again.len || memcmp(enc.ptr, again.ptr, enc.len) != 0) {
			T_FAIL_("record %d does not round-trip", i);
			bad++;
		}
		/* one line per field after the version line: no raw newline inside */
		if (count_lines(&enc) != 18 || memchr(enc.ptr, 0, enc.len))
			T_FAIL_("record %d: %d lines", i, count_lines(&enc));
	}
	s3d_buf_cleanup(&enc);
	s3d_buf_cleanup(&again);
}

static void test_round_trip_largest(void)
{
	s3d_session s, got;
	s3d_buf enc;

	/* every string full of bytes that are escaped: the largest encoding */
	mk(&s, "", S3D_SESSION_COMPLETED, INT64_MAX);
	memset(s.uuid, 0xff, sizeof(s.uuid) - 1);
	memset(s.repo, '=', sizeof(s.repo) - 1);
	memset(s.user, '\n', sizeof(s.user) - 1);
	memset(s.key, '%', sizeof(s.key) - 1);
	memset(s.upload_id, ' ', sizeof(s.upload_id) - 1);
	memset(s.declared_digest, 0x80, sizeof(s.declared_digest) - 1);
	memset(s.final_digest, 0x01, sizeof(s.final_digest) - 1);
	memset(s.detail, '\r', sizeof(s.detail) - 1);
	s.declared_size = s.final_size = s.part_size = INT64_MAX;
	s.created = s.updated = INT64_MAX;
	s3d_buf_init(&enc, ENC_MAX);
	T_REQUIRE(s3d_session_encode(&s, &enc) == S3D_OK);
	T_TRUE(enc.len <= 16 * 1024);
	T_EQ_INT(S3D_OK, s3d_session_decode(enc.ptr, enc.len, &got));
	T_TRUE(session_eq(&s, &got));
	s3d_buf_cleanup(&enc);
}

static void test_status_names(void)
{
	T_EQ_STR("pending", s3d_session_status_name(S3D_SESSION_PENDING));
	T_EQ_STR("finalizing", s3d_session_status_name(S3D_SESSION_FINALIZING));
	T_EQ_STR("expired", s3d_session_status_name(S3D_SESSION_EXPIRED));
	T_EQ_STR("unknown", s3d_session_status_name(0));
	T_EQ_STR("unknown", s3d_session_status_name(S3D_SESSION_STATUS_MAX + 1));
	T_EQ_STR("unknown", s3d_session_status_name(-1));
}

/* ---- index: hostile -------------------------------------------------------- */

static void test_open_bad_paths(void)
{
	s3d_index_config cfg = { 0 };
	s3d_index *ix = (s3d_index *)1;
	s3d_error err;
	char file[PATH_MAX], path[PATH_MAX + 16];
	FILE *f;

	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_INVAL, s3d_index_open(NULL, &ix, &err));
	T_TRUE(ix == NULL);
	T_EQ_INT(S3D_E_INVAL, s3d_index_open(&cfg, &ix, &err));
	cfg.path = "";
	T_EQ_INT(S3D_E_INVAL, s3d_index_open(&cfg, &ix, &err));
	T_EQ_INT(S3D_E_INVAL, s3d_index_open(&cfg, NULL, &err));

	path_of(file, sizeof(file), "plainfile");
	f = fopen(file, "w");
	T_REQUIRE(f != NULL);
	fclose(f);
	cfg.path = file; /* a file, not a directory */
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_IO, s3d_index_open(&cfg, &ix, &err));
	T_EQ_INT(ENOTDIR, err.sys_errno);
	snprintf(path, sizeof(path), "%s/below/idx", file); /* below a file */
	cfg.path = path;
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_IO, s3d_index_open(&cfg, &ix, &err));
	T_EQ_INT(ENOTDIR, err.sys_errno);
	T_TRUE(strstr(err.message, "below") != NULL);
	cfg.path = "/proc/s3d-no-such-index/x"; /* unwritable, even for root */
	T_TRUE(s3d_index_open(&cfg, &ix, NULL) == S3D_E_IO);
	T_TRUE(ix == NULL);
	if (geteuid() != 0) { /* a read-only directory stops only non-root */
		path_of(path, sizeof(path), "readonly");
		T_REQUIRE(mkdir(path, 0500) == 0);
		cfg.path = path;
		s3d_error_clear(&err);
		T_EQ_INT(S3D_E_STORE, s3d_index_open(&cfg, &ix, &err));
		T_TRUE(err.message[0] != 0);
		chmod(path, 0700);
	}
}

static void test_open_creates_private_dir(void)
{
	char path[PATH_MAX];
	struct stat st;
	s3d_index *ix = open_ix("new/nested/idx", 0, 1);

	T_REQUIRE(ix != NULL);
	path_of(path, sizeof(path), "new/nested/idx");
	T_REQUIRE(stat(path, &st) == 0);
	T_TRUE(S_ISDIR(st.st_mode));
	T_EQ_INT(0700, st.st_mode & 0777);
	s3d_index_close(ix);
	ix = open_ix("new/nested/idx/", 0, 1); /* again, trailing slash */
	T_TRUE(ix != NULL);
	s3d_index_close(ix);
	s3d_index_close(NULL);
}

static void test_index_hostile_calls(void)
{
	char longid[200];
	s3d_index *ix = open_ix("hostile", 0, 1);
	s3d_session s, got;
	s3d_error err;

	T_REQUIRE(ix != NULL);
	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = 0;
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_index_get(ix, "nope", &got, &err));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_index_get(ix, "", &got, NULL));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_index_get(ix, longid, &got, NULL));
	T_EQ_INT(S3D_E_INVAL, s3d_index_get(ix, NULL, &got, NULL));
	T_EQ_INT(S3D_E_INVAL, s3d_index_get(NULL, "a", &got, NULL));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_index_delete(ix, "nope", NULL));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_index_delete(ix, longid, NULL));
	T_EQ_INT(S3D_E_INVAL, s3d_index_put(ix, NULL, S3D_INDEX_ANY, NULL, NULL));
	mk(&s, "bad", 0, 10); /* invalid status: refused before the queue */
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_INVAL, s3d_index_put(ix, &s, S3D_INDEX_ANY, NULL, &err));
	T_TRUE(err.message[0] != 0);
	mk(&s, "bad", S3D_SESSION_PENDING, 10);
	memset(s.detail, 'd', sizeof(s.detail));
	T_EQ_INT(S3D_E_TOOBIG, s3d_index_put(ix, &s, S3D_INDEX_ANY, NULL, NULL));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_index_get(ix, "bad", &got, NULL));
	T_EQ_INT(S3D_E_INVAL, s3d_index_scan(ix, NULL, NULL, NULL));
	T_EQ_INT(S3D_E_INVAL, s3d_index_scan_expired(ix, 5, S3D_INDEX_ANY, NULL, NULL, NULL));
	s3d_index_close(ix);
}

/* ---- index: compare-and-set and durability --------------------------------- */

static void test_cas_semantics(void)
{
	s3d_index *ix = open_ix("cas", 0, 1);
	s3d_session s, cur, got;
	s3d_error err;
	unsigned pending = S3D_SESSION_BIT(S3D_SESSION_PENDING);

	T_REQUIRE(ix != NULL);
	mk(&s, "cas-1", S3D_SESSION_PENDING, 100);
	/* absent, but the mask does not allow it */
	mk(&cur, "junk", S3D_SESSION_FAILED, 1);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_CONFLICT, s3d_index_put(ix, &s, pending, &cur, &err));
	T_EQ_INT(0, cur.status); /* "no record" */
	T_EQ_STR("", cur.uuid);
	T_TRUE(strstr(err.message, "absent") != NULL);
	T_EQ_INT(S3D_E_NOTFOUND, s3d_index_get(ix, "cas-1", &got, NULL));
	/* absent allowed */
	T_EQ_INT(S3D_OK, s3d_index_put(ix, &s, S3D_INDEX_ABSENT, &cur, NULL));
	T_EQ_INT(S3D_OK, s3d_index_get(ix, "cas-1", &got, NULL));
	T_TRUE(session_eq(&s, &got));
	/* created only once */
	s.status = S3D_SESSION_UPLOADING;
	T_EQ_INT(S3D_E_CONFLICT, s3d_index_put(ix, &s, S3D_INDEX_ABSENT, &cur, NULL));
	T_EQ_INT(S3D_SESSION_PENDING, cur.status);
	T_EQ_STR("cas-1", cur.uuid);
	T_EQ_INT(S3D_E_CONFLICT, s3d_index_put(ix, &s, S3D_INDEX_ABSENT, NULL, NULL));
	/* status masks */
	T_EQ_INT(S3D_E_CONFLICT,
		 s3d_index_put(ix, &s, S3D_SESSION_BIT(S3D_SESSION_UPLOADING), &cur, NULL));
	T_EQ_INT(S3D_SESSION_PENDING, cur.status);
	T_EQ_INT(S3D_E_CONFLICT, s3d_index_put(ix, &s, 0, &cur, NULL));
	T_EQ_INT(S3D_OK, s3d_index_put(ix, &s, pending | S3D_INDEX_ABSENT, &cur, NULL));
	T_EQ_INT(S3D_OK, s3d_index_get(ix, "cas-1", &got, NULL));
	T_EQ_INT(S3D_SESSION_UPLOADING, got.status);
	s.status = S3D_SESSION_COMPLETED;
	snprintf(s.final_digest, sizeof(s.final_digest), "sha256:abc");
	T_EQ_INT(S3D_OK, s3d_index_put(ix, &s, S3D_INDEX_ANY, NULL, NULL));
	T_EQ_INT(S3D_E_CONFLICT, s3d_index_put(ix, &s, pending, &cur, NULL));
	T_TRUE(session_eq(&s, &cur));
	/* delete, then absent again */
	T_EQ_INT(S3D_OK, s3d_index_delete(ix, "cas-1", NULL));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_index_delete(ix, "cas-1", NULL));
	T_EQ_INT(S3D_E_NOTFOUND, s3d_index_get(ix, "cas-1", &got, NULL));
	T_EQ_INT(S3D_OK, s3d_index_put(ix, &s, S3D_INDEX_ABSENT, NULL, NULL));
	s3d_index_close(ix);
}

static void test_durable_reopen(void)
{
	s3d_index *ix = open_ix("durable", 0, 0);
	s3d_session s, got;

	T_REQUIRE(ix != NULL);
	rand_session(&s);
	T_EQ_INT(S3D_OK, s3d_index_put(ix, &s, S3D_INDEX_ABSENT, NULL, NULL));
	s3d_index_close(ix);
	ix = open_ix("durable", 0, 0);
	T_REQUIRE(ix != NULL);
	T_EQ_INT(S3D_OK, s3d_index_get(ix, s.uuid, &got, NULL));
	T_TRUE(session_eq(&s, &got));
	s3d_index_close(ix);
}

/* The child puts, tells the parent, and is killed before it can close. */
static void killed_child(int wfd)
{
	s3d_index *ix = open_ix("killed", 0, 0);
	s3d_session s;
	char ok = 1;

	mk(&s, "survivor", S3D_SESSION_UPLOADING, 4242);
	snprintf(s.upload_id, sizeof(s.upload_id), "upload=1/2");
	if (!ix || s3d_index_put(ix, &s, S3D_INDEX_ABSENT, NULL, NULL) != S3D_OK)
		ok = 0;
	if (write(wfd, &ok, 1) != 1)
		_exit(2);
	for (;;)
		pause();
}

static void test_put_survives_sigkill(void)
{
	s3d_index *ix;
	s3d_session got;
	int fds[2], status = 0;
	char ok = 0;
	pid_t pid;

	T_REQUIRE(pipe(fds) == 0);
	fflush(NULL);
	pid = fork();
	T_REQUIRE(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		killed_child(fds[1]);
	}
	close(fds[1]);
	T_EQ_INT(1, read(fds[0], &ok, 1));
	close(fds[0]);
	T_EQ_INT(0, kill(pid, SIGKILL));
	T_EQ_INT(pid, waitpid(pid, &status, 0));
	T_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	T_REQUIRE(ok == 1);
	ix = open_ix("killed", 0, 0);
	T_REQUIRE(ix != NULL);
	T_EQ_INT(S3D_OK, s3d_index_get(ix, "survivor", &got, NULL));
	T_EQ_INT(S3D_SESSION_UPLOADING, got.status);
	T_EQ_STR("upload=1/2", got.upload_id);
	T_EQ_INT(4242, got.expires);
	s3d_index_close(ix);
}

/* ---- index: scans ------------------------------------------------------------ */

struct collect {
	char uuids[200][72];
	int64_t expires[200];
	int n;
	int stop_at;
	s3d_index *ix;     /* set: each record is marked expired from inside fn */
	int put_failed;
};

static int collect_fn(void *ud, const s3d_session *s)
{
	struct collect *c = ud;
	s3d_session upd;

	if (c->n < 200) {
		snprintf(c->uuids[c->n], sizeof(c->uuids[0]), "%s", s->uuid);
		c->expires[c->n] = s->expires;
	}
	c->n++;
	if (c->ix) {
		upd = *s;
		upd.status = S3D_SESSION_EXPIRED;
		if (s3d_index_put(c->ix, &upd, S3D_SESSION_BIT(s->status), NULL, NULL) != S3D_OK)
			c->put_failed++;
	}
	return c->stop_at && c->n == c->stop_at;
}

static void test_scan_order_and_stop(void)
{
	s3d_index *ix = open_ix("scan", 0, 1);
	static struct collect c;
	s3d_session s;
	char id[32];
	int i, order_ok = 1;

	T_REQUIRE(ix != NULL);
	memset(&c, 0, sizeof(c));
	T_EQ_INT(S3D_OK, s3d_index_scan(ix, collect_fn, &c, NULL));
	T_EQ_INT(0, c.n);
	for (i = 0; i < 150; i++) { /* inserted out of order, more than a batch */
		snprintf(id, sizeof(id), "id-%03d", (i * 37) % 150);
		mk(&s, id, S3D_SESSION_PENDING, 1000 + i);
		T_EQ_INT(S3D_OK, s3d_index_put(ix, &s, S3D_INDEX_ABSENT, NULL, NULL));
	}
	T_EQ_INT(S3D_OK, s3d_index_scan(ix, collect_fn, &c, NULL));
	T_EQ_INT(150, c.n);
	for (i = 0; i < 150 && i < c.n; i++) {
		snprintf(id, sizeof(id), "id-%03d", i);
		order_ok &= !strcmp(id, c.uuids[i]);
	}
	T_TRUE(order_ok);
	memset(&c, 0, sizeof(c));
	c.stop_at = 40; /* stops in the second batch, and the call succeeds */
	T_EQ_INT(S3D_OK, s3d_index_scan(ix, collect_fn, &c, NULL));
	T_EQ_INT(40, c.n);
	s3d_index_close(ix);
}

static void test_scan_expired_order_filter_stop(void)
{
	static const struct { const char *id; int64_t exp; int st; } recs[] = {
		{ "e-late", 300, S3D_SESSION_PENDING },
		{ "e-b", 100, S3D_SESSION_PENDING },
		{ "e-a", 100, S3D_SESSION_UPLOADING },
		{ "e-old", 50, S3D_SESSION_PENDING },
		{ "e-done", 60, S3D_SESSION_COMPLETED },
		{ "e-now", 200, S3D_SESSION_FINALIZING },
		{ "e-zero", 0, S3D_SESSION_PENDING },
	};
	unsigned live = S3D_SESSION_BIT(S3D_SESSION_PENDING) |
			S3D_SESSION_BIT(S3D_SESSION_UPLOADING) |
			S3D_SESSION_BIT(S3D_SESSION_FINALIZING);
	s3d_index *ix = open_ix("expired", 0, 1);
	static struct collect c;
	s3d_session s;
	size_t i;

	T_REQUIRE(ix != NULL);
	for (i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
		mk(&s, recs[i].id, recs[i].st, recs[i].exp);
		T_EQ_INT(S3D_OK, s3d_index_put(ix, &s, S3D_INDEX_ABSENT, NULL, NULL));
	}
	memset(&c, 0, sizeof(c));
	T_EQ_INT(S3D_OK, s3d_index_scan_expired(ix, 200, live, collect_fn, &c, NULL));
	T_EQ_INT(5, c.n); /* oldest first, ties in uuid order, stops at now */
	T_EQ_STR("e-zero", c.uuids[0]);
	T_EQ_STR("e-old", c.uuids[1]);
	T_EQ_STR("e-a", c.uuids[2]);
	T_EQ_STR("e-b", c.uuids[3]);
	T_EQ_STR("e-now", c.uuids[4]);
	memset(&c, 0, sizeof(c));
	T_EQ_INT(S3D_OK, s3d_index_scan_expired(ix, 99, S3D_INDEX_ANY, collect_fn, &c, NULL));
	T_EQ_INT(3, c.n);
	T_EQ_STR("e-done", c.uuids[2]);
	memset(&c, 0, sizeof(c));
	c.stop_at = 2;
	T_EQ_INT(S3D_OK, s3d_index_scan_expired(ix, 1000, S3D_INDEX_ANY, collect_fn, &c, NULL));
	T_EQ_INT(2, c.n);
	memset(&c, 0, sizeof(c));
	T_EQ_INT(S3D_OK, s3d_index_scan_expired(ix, -1, S3D_INDEX_ANY, collect_fn, &c, NULL));
	T_EQ_INT(0, c.n);
	T_EQ_INT(S3D_OK, s3d_index_scan_expired(ix, 1000, 0, collect_fn, &c, NULL));
	T_EQ_INT(0, c.n);
	s3d_index_close(ix);
}

/* fn writes to the index while the scan goes on, over several batches. */
static void test_scan_expired_fn_may_put(void)
{
	unsigned pending = S3D_SESSION_BIT(S3D_SESSION_PENDING);
	s3d_index *ix = open_ix("sweep", 0, 1);
	static struct collect c;
	s3d_session s;
	char id[32];
	int i;

	T_REQUIRE(ix != NULL);
	for (i = 0; i < 100; i++) {
		snprintf(id, sizeof(id), "sw-%03d", i);
		mk(&s, id, S3D_SESSION_PENDING, 10 + i % 7);
		T_EQ_INT(S3D_OK, s3d_index_put(ix, &s, S3D_INDEX_ABSENT, NULL, NULL));
	}
	memset(&c, 0, sizeof(c));
	c.ix = ix;
	T_EQ_INT(S3D_OK, s3d_index_scan_expired(ix, 100, pending, collect_fn, &c, NULL));
	T_EQ_INT(100, c.n);
	T_EQ_INT(0, c.put_failed);
	for (i = 1; i < 100 && i < c.n; i++)
		if (c.expires[i] < c.expires[i - 1])
			T_FAIL_("record %d out of expiry order", i);
	memset(&c, 0, sizeof(c));
	T_EQ_INT(S3D_OK, s3d_index_scan_expired(ix, 100, pending, collect_fn, &c, NULL));
	T_EQ_INT(0, c.n); /* all expired now */
	T_EQ_INT(S3D_OK, s3d_index_get(ix, "sw-042", &s, NULL));
	T_EQ_INT(S3D_SESSION_EXPIRED, s.status);
	s3d_index_close(ix);
}

struct match {
	const char *uuid;
	int n;
};

static int match_fn(void *ud, const s3d_session *s)
{
	struct match *m = ud;

	m->n += !strcmp(m->uuid, s->uuid);
	return 0;
}

/* How often scan_expired reports uuid at now: the entries pointing at it. */
static int count_expiry(s3d_index *ix, const char *uuid, int64_t now)
{
	struct match m = { uuid, 0 };

	if (s3d_index_scan_expired(ix, now, S3D_INDEX_ANY, match_fn, &m, NULL) != S3D_OK)
		return -1;
	return m.n;
}

static void test_expiry_follows_updates(void)
{
	s3d_index *ix = open_ix("consist", 0, 1);
	s3d_session s;

	T_REQUIRE(ix != NULL);
	mk(&s, "x-1", S3D_SESSION_PENDING, 100);
	T_EQ_INT(S3D_OK, s3d_index_put(ix, &s, S3D_INDEX_ABSENT, NULL, NULL));
	T_EQ_INT(1, count_expiry(ix, "x-1", 150));
	s.expires = 500; /* moves: never found at its old time, once at its new */
	T_EQ_INT(S3D_OK, s3d_index_put(ix, &s, S3D_INDEX_ANY, NULL, NULL));
	T_EQ_INT(0, count_expiry(ix, "x-1", 150));
	T_EQ_INT(1, count_expiry(ix, "x-1", 500));
	T_EQ_INT(1, count_expiry(ix, "x-1", INT64_MAX));
	s.status = S3D_SESSION_UPLOADING; /* same expires, other status */
	T_EQ_INT(S3D_OK, s3d_index_put(ix, &s, S3D_INDEX_ANY, NULL, NULL));
	T_EQ_INT(1, count_expiry(ix, "x-1", INT64_MAX));
	s.expires = 20; /* earlier */
	T_EQ_INT(S3D_OK, s3d_index_put(ix, &s, S3D_INDEX_ANY, NULL, NULL));
	T_EQ_INT(1, count_expiry(ix, "x-1", 20));
	T_EQ_INT(1, count_expiry(ix, "x-1", INT64_MAX));
	/* a lost compare-and-set changes nothing */
	s.expires = 900;
	T_EQ_INT(S3D_E_CONFLICT, s3d_index_put(ix, &s, S3D_INDEX_ABSENT, NULL, NULL));
	T_EQ_INT(1, count_expiry(ix, "x-1", 20));
	T_EQ_INT(S3D_OK, s3d_index_delete(ix, "x-1", NULL));
	T_EQ_INT(0, count_expiry(ix, "x-1", INT64_MAX));
	/* put again after delete: one entry, no ghost of the old one */
	T_EQ_INT(S3D_OK, s3d_index_put(ix, &s, S3D_INDEX_ABSENT, NULL, NULL));
	T_EQ_INT(0, count_expiry(ix, "x-1", 899));
	T_EQ_INT(1, count_expiry(ix, "x-1", INT64_MAX));
	s3d_index_close(ix);
}

/* ---- index: map growth ---------------------------------------------------- */

static void fill_big(s3d_session *s, int i)
{
	char id[32];

	snprintf(id, sizeof(id), "big-%05d", i);
	mk(s, id, S3D_SESSION_PENDING, 1000 + i);
	memset(s->key, 'k', sizeof(s->key) - 1);
	memset(s->upload_id, '/', sizeof(s->upload_id) - 1);
}

static void test_map_grows(void)
{
	enum { N = 4000 };
	s3d_index *ix = open_ix("tiny", 64 * 1024, 1);
	s3d_session s, got;
	int i, bad = 0;

	T_REQUIRE(ix != NULL);
	for (i = 0; i < N && !bad; i++) {
		fill_big(&s, i);
		if (s3d_index_put(ix, &s, S3D_INDEX_ABSENT, NULL, NULL) != S3D_OK) {
			T_FAIL_("put %d failed", i);
			bad = 1;
		}
	}
	s3d_index_close(ix);
	/* reopened as tiny: the map is only as big as the data, and grows again */
	ix = open_ix("tiny", 64 * 1024, 1);
	T_REQUIRE(ix != NULL);
	for (i = 0; i < N && !bad; i += 97) {
		fill_big(&s, i);
		if (s3d_index_get(ix, s.uuid, &got, NULL) != S3D_OK || !session_eq(&s, &got)) {
			T_FAIL_("record %d lost", i);
			bad = 1;
		}
	}
	for (i = N; i < N + 500 && !bad; i++) {
		fill_big(&s, i);
		if (s3d_index_put(ix, &s, S3D_INDEX_ABSENT, NULL, NULL) != S3D_OK) {
			T_FAIL_("put %d after reopen failed", i);
			bad = 1;
		}
	}
	T_EQ_INT(1, count_expiry(ix, "big-04499", INT64_MAX));
	s3d_index_close(ix);
}

/* ---- index: group commit ---------------------------------------------------- */

enum { THREADS = 16, PER_THREAD = 500 };

struct gc {
	s3d_index *ix;
	int id;
	int errors;
	int wins;
	atomic_int *winners; /* PER_THREAD slots: the winning thread id + 1 */
	atomic_int *nwins;
};

static void *gc_thread(void *arg)
{
	struct gc *g = arg;
	s3d_session s, cur;
	char id[32];
	int i, rc;

	for (i = 0; i < PER_THREAD; i++) {
		snprintf(id, sizeof(id), "d-%02d-%03d", g->id, i);
		mk(&s, id, S3D_SESSION_PENDING, 1000 + i);
		if (s3d_index_put(g->ix, &s, S3D_INDEX_ABSENT, NULL, NULL) != S3D_OK)
			g->errors++;
		/* everyone races for the shared session i: exactly one wins */
		snprintf(id, sizeof(id), "shared-%03d", i);
		mk(&s, id, S3D_SESSION_FINALIZING, 2000 + i);
		snprintf(s.user, sizeof(s.user), "thread-%d", g->id);
		rc = s3d_index_put(g->ix, &s, S3D_SESSION_BIT(S3D_SESSION_PENDING), &cur, NULL);
		if (rc == S3D_OK) {
			g->wins++;
			atomic_fetch_add(&g->nwins[i], 1);
			atomic_store(&g->winners[i], g->id + 1);
		} else if (rc != S3D_E_CONFLICT || cur.status != S3D_SESSION_FINALIZING ||
			   strncmp(cur.user, "thread-", 7) != 0) {
			g->errors++;
		}
	}
	return NULL;
}

static int count_fn(void *ud, const s3d_session *s)
{
	(void)s;
	(*(int *)ud)++;
	return 0;
}

static void test_group_commit(void)
{
	static atomic_int winners[PER_THREAD], nwins[PER_THREAD];
	s3d_index *ix = open_ix("group", 0, 0); /* synced: commits are shared */
	struct gc g[THREADS];
	pthread_t th[THREADS];
	s3d_session s;
	char id[32], user[32];
	int i, errors = 0, wins = 0, count = 0, bad = 0;

	T_REQUIRE(ix != NULL);
	for (i = 0; i < PER_THREAD; i++) {
		snprintf(id, sizeof(id), "shared-%03d", i);
		mk(&s, id, S3D_SESSION_PENDING, 2000 + i);
		T_EQ_INT(S3D_OK, s3d_index_put(ix, &s, S3D_INDEX_ABSENT, NULL, NULL));
		atomic_init(&winners[i], 0);
		atomic_init(&nwins[i], 0);
	}
	for (i = 0; i < THREADS; i++) {
		g[i] = (struct gc){ ix, i, 0, 0, winners, nwins };
		T_REQUIRE(pthread_create(&th[i], NULL, gc_thread, &g[i]) == 0);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		errors += g[i].errors;
		wins += g[i].wins;
	}
	T_EQ_INT(0, errors);
	T_EQ_INT(PER_THREAD, wins);
	for (i = 0; i < PER_THREAD && !bad; i++) {
		snprintf(id, sizeof(id), "shared-%03d", i);
		snprintf(user, sizeof(user), "thread-%d", atomic_load(&winners[i]) - 1);
		if (atomic_load(&nwins[i]) != 1 || s3d_index_get(ix, id, &s, NULL) != S3D_OK ||
		    s.status != S3D_SESSION_FINALIZING || strcmp(s.user, user) != 0) {
			T_FAIL_("shared session %d: %d winners, stored user %s", i,
				atomic_load(&nwins[i]), s.user);
			bad = 1;
		}
	}
	T_EQ_INT(S3D_OK, s3d_index_scan(ix, count_fn, &count, NULL));
	T_EQ_INT(THREADS * PER_THREAD + PER_THREAD, count);
	s3d_index_close(ix);
}

/* ---- index: queued puts (s3d_index_put_start) ------------------------------ */

/* Waits (10 s at most) until the notification pipe is readable, drains it. */
static int wait_notified(s3d_index *ix)
{
	struct pollfd pfd = { s3d_index_notify_fd(ix), POLLIN, 0 };
	char buf[64];
	int n = poll(&pfd, 1, 10000);

	if (n != 1 || !(pfd.revents & POLLIN))
		return -1;
	while (read(pfd.fd, buf, sizeof(buf)) > 0)
		;
	return 0;
}

static void test_put_start(void)
{
	s3d_index *ix = open_ix("start", 0, 0); /* synced */
	s3d_index_op *op[3], *bad;
	s3d_session s, cur, got;
	s3d_error err;
	uint64_t t[3];
	char id[16];
	int i, fl;

	T_REQUIRE(ix != NULL);
	T_TRUE(s3d_index_notify_fd(ix) >= 0);
	fl = fcntl(s3d_index_notify_fd(ix), F_GETFL);
	T_TRUE(fl >= 0 && (fl & O_NONBLOCK));
	T_EQ_INT(-1, s3d_index_notify_fd(NULL));
	/* nothing committed, nothing to read */
	T_EQ_INT(0, (int)s3d_index_committed(ix));
	{
		char c;

		T_EQ_INT(-1, (int)read(s3d_index_notify_fd(ix), &c, 1));
		T_EQ_INT(EAGAIN, errno);
	}
	for (i = 0; i < 3; i++) {
		snprintf(id, sizeof(id), "q-%d", i);
		mk(&s, id, S3D_SESSION_PENDING, 500 + i);
		T_EQ_INT(S3D_OK, s3d_index_put_start(ix, &s, S3D_INDEX_ABSENT, &op[i], &t[i], NULL));
		T_TRUE(op[i] != NULL);
		T_TRUE(i == 0 || t[i] > t[i - 1]);
	}
	/* the pipe tells when the last ticket is committed; earlier ones are too */
	while (s3d_index_committed(ix) < t[2])
		T_REQUIRE(wait_notified(ix) == 0);
	for (i = 0; i < 3; i++) {
		T_EQ_INT(S3D_OK, s3d_index_op_finish(op[i], NULL, NULL));
		snprintf(id, sizeof(id), "q-%d", i);
		T_EQ_INT(S3D_OK, s3d_index_get(ix, id, &got, NULL));
		T_EQ_INT(500 + i, got.expires);
	}
	/* a conflict comes back with the stored record, as from s3d_index_put */
	mk(&s, "q-1", S3D_SESSION_UPLOADING, 900);
	T_EQ_INT(S3D_OK, s3d_index_put_start(ix, &s, S3D_INDEX_ABSENT, &op[0], &t[0], NULL));
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_CONFLICT, s3d_index_op_finish(op[0], &cur, &err)); /* waits */
	T_EQ_INT(S3D_SESSION_PENDING, cur.status);
	T_EQ_INT(501, cur.expires);
	T_TRUE(strstr(err.message, "pending") != NULL);
	T_TRUE(s3d_index_committed(ix) >= t[0]);
	/* finished at once: it waits for its commit */
	T_EQ_INT(S3D_OK, s3d_index_put_start(ix, &s, S3D_SESSION_BIT(S3D_SESSION_PENDING), &op[0],
					     &t[0], NULL));
	T_EQ_INT(S3D_OK, s3d_index_op_finish(op[0], NULL, NULL));
	T_EQ_INT(S3D_OK, s3d_index_get(ix, "q-1", &got, NULL));
	T_EQ_INT(S3D_SESSION_UPLOADING, got.status);
	/* refused before anything is queued */
	s3d_error_clear(&err);
	T_EQ_INT(S3D_E_INVAL, s3d_index_put_start(NULL, &s, S3D_INDEX_ANY, &bad, &t[0], &err));
	T_EQ_INT(S3D_E_INVAL, s3d_index_put_start(ix, NULL, S3D_INDEX_ANY, &bad, &t[0], &err));
	T_EQ_INT(S3D_E_INVAL, s3d_index_put_start(ix, &s, S3D_INDEX_ANY, NULL, &t[0], &err));
	T_EQ_INT(S3D_E_INVAL, s3d_index_put_start(ix, &s, S3D_INDEX_ANY, &bad, NULL, &err));
	memset(s.uuid, 'u', sizeof(s.uuid)); /* no terminator */
	bad = (s3d_index_op *)&s;
	T_EQ_INT(S3D_E_INVAL, s3d_index_put_start(ix, &s, S3D_INDEX_ANY, &bad, &t[0], &err));
	T_TRUE(bad == NULL);
	T_EQ_INT(S3D_E_INVAL, s3d_index_op_finish(NULL, NULL, &err));
	s3d_index_close(ix);
}

/* Queued and waited puts from many threads share commits; each one's
 * outcome comes back to it. */
struct qp {
	s3d_index *ix;
	int id;
	int errors;
};

static void *qp_thread(void *arg)
{
	struct qp *q = arg;
	s3d_index_op *op;
	s3d_session s, got;
	uint64_t t;
	char id[32];
	int i;

	for (i = 0; i < 200; i++) {
		snprintf(id, sizeof(id), "qp-%02d-%03d", q->id, i);
		mk(&s, id, S3D_SESSION_PENDING, 3000 + i);
		if (i % 2 == 0) {
			if (s3d_index_put(q->ix, &s, S3D_INDEX_ABSENT, NULL, NULL) != S3D_OK)
				q->errors++;
		} else if (s3d_index_put_start(q->ix, &s, S3D_INDEX_ABSENT, &op, &t, NULL) != S3D_OK ||
			   s3d_index_op_finish(op, NULL, NULL) != S3D_OK) {
			q->errors++;
		}
		if (i % 2 == 1 && s3d_index_committed(q->ix) < t)
			q->errors++;
		if (s3d_index_get(q->ix, id, &got, NULL) != S3D_OK || got.expires != 3000 + i)
			q->errors++;
	}
	return NULL;
}

static void test_put_start_concurrent(void)
{
	s3d_index *ix = open_ix("start-mt", 0, 0);
	struct qp q[8];
	pthread_t th[8];
	int i, errors = 0, count = 0;

	T_REQUIRE(ix != NULL);
	for (i = 0; i < 8; i++) {
		q[i] = (struct qp){ ix, i, 0 };
		T_REQUIRE(pthread_create(&th[i], NULL, qp_thread, &q[i]) == 0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		errors += q[i].errors;
	}
	T_EQ_INT(0, errors);
	T_EQ_INT(S3D_OK, s3d_index_scan(ix, count_fn, &count, NULL));
	T_EQ_INT(8 * 200, count);
	T_EQ_INT(0, wait_notified(ix)); /* queued puts were committed: bytes wait */
	s3d_index_close(ix);
}

/* ---- main ------------------------------------------------------------------ */

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(tmproot, sizeof(tmproot), "%s/s3d-test-session-index-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(tmproot)) {
		perror("mkdtemp");
		printf("session_index: 0 passed, 1 failed\n");
		return 1;
	}
	T_RUN(test_decode_garbage);
	T_RUN(test_decode_truncated);
	T_RUN(test_decode_oversized_fields);
	T_RUN(test_decode_bad_escapes);
	T_RUN(test_decode_bad_numbers);
	T_RUN(test_decode_structure_limits);
	T_RUN(test_encode_refuses);
	T_RUN(test_round_trip_random);
	T_RUN(test_round_trip_largest);
	T_RUN(test_status_names);
	T_RUN(test_open_bad_paths);
	T_RUN(test_open_creates_private_dir);
	T_RUN(test_index_hostile_calls);
	T_RUN(test_cas_semantics);
	T_RUN(test_durable_reopen);
	T_RUN(test_put_survives_sigkill);
	T_RUN(test_scan_order_and_stop);
	T_RUN(test_scan_expired_order_filter_stop);
	T_RUN(test_scan_expired_fn_may_put);
	T_RUN(test_expiry_follows_updates);
	T_RUN(test_map_grows);
	T_RUN(test_group_commit);
	T_RUN(test_put_start);
	T_RUN(test_put_start_concurrent);
	nftw(tmproot, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return t_done("session_index");
}
