/*
 * Session records and the node-local session index.
 *
 * Records use a versioned line format ("s3direct-session 1", then one
 * name=value line per field, values percent-encoded) shared with the S3
 * session marker. A record may come from another process or another version
 * of this code, so decoding is strict and bounded: only what the encoder
 * writes is accepted, unknown fields are skipped (they must still be
 * well-formed), and nothing is ever truncated to fit.
 *
 * The index is one LMDB environment with two named databases, kept
 * consistent in every write transaction: "sessions" (uuid -> record) and
 * "expiry" (8-byte big-endian expires + uuid -> empty), which scan_expired
 * walks oldest first. Writes go through one queue and one committer thread,
 * which takes every queued operation and applies them, in queue order, in
 * one transaction (group commit: one fsync for the batch). A caller either
 * waits for its write (s3d_index_put) or queues it and goes on
 * (s3d_index_put_start): a cgo caller then waits in Go for the notification
 * pipe instead of holding a Go processor blocked in C through the fsync. No
 * transaction outlives a call; every transaction holds the map lock shared,
 * and growing the map holds it exclusively, because LMDB may only remap
 * while this process has no transaction open.
 */
#include "buf.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define SESSION_MAGIC "s3direct-session 1"
#define DECODE_MAX (16u * 1024u)      /* every record encode makes fits */
#define DECODE_LINES_MAX 256
#define ENCODE_MAX DECODE_MAX
#define MAP_DEFAULT ((size_t)64 << 20)
/* 16 GiB on 64-bit; 1 GiB where size_t cannot hold that. */
#define MAP_CEILING ((size_t)1 << (sizeof(size_t) > 4 ? 34 : 30))
#define MAX_READERS 512
#define SCAN_BATCH 32                 /* records handed to fn per read txn */
#define SCAN_VISIT_MAX 4096           /* entries looked at per read txn */
#define KEY_MAX 512                   /* LMDB's default maximum key size */
#define XKEY_LEN (8 + sizeof(((s3d_session *)0)->uuid))

/* ------------------------------------------------------------------------ */
/* Records                                                                  */
/* ------------------------------------------------------------------------ */

enum ftype { F_STR, F_INT, F_I64 };

struct field {
	const char *name;
	enum ftype type;
	size_t off;
	size_t size;     /* F_STR: the array, with its NUL */
	int64_t min, max; /* numbers */
};

#define FSTR(f) { #f, F_STR, offsetof(s3d_session, f), sizeof(((s3d_session *)0)->f), 0, 0 }
#define FINT(f, lo, hi) { #f, F_INT, offsetof(s3d_session, f), sizeof(int), lo, hi }
#define FI64(f, lo, hi) { #f, F_I64, offsetof(s3d_session, f), sizeof(int64_t), lo, hi }

/* Encoding order. Fewer than 32 entries (a bit each in decode's seen mask). */
static const struct field fields[] = {
	FSTR(uuid),
	FSTR(repo),
	FSTR(user),
	FINT(status, S3D_SESSION_PENDING, S3D_SESSION_STATUS_MAX),
	FINT(mode, S3D_MODE_NONE, S3D_MODE_MULTIPART),
	FINT(direct, 0, 1),
	FSTR(key),
	FSTR(upload_id),
	FSTR(declared_digest),
	FI64(declared_size, -1, INT64_MAX),
	FSTR(final_digest),
	FI64(final_size, -1, INT64_MAX),
	FI64(part_size, 0, INT64_MAX),
	/* never negative: expires orders the expiry keys as unsigned bytes */
	FI64(created, 0, INT64_MAX),
	FI64(expires, 0, INT64_MAX),
	FI64(updated, 0, INT64_MAX),
	FSTR(detail),
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))
_Static_assert(NFIELDS < 32, "decode's seen mask has a bit per field");

static const char *const status_names[] = {
	[S3D_SESSION_PENDING] = "pending",
	[S3D_SESSION_UPLOADING] = "uploading",
	[S3D_SESSION_FINALIZING] = "finalizing",
	[S3D_SESSION_COMPLETED] = "completed",
	[S3D_SESSION_FAILED] = "failed",
	[S3D_SESSION_CANCELLED] = "cancelled",
	[S3D_SESSION_EXPIRED] = "expired",
};

const char *s3d_session_status_name(int status)
{
	if (status < S3D_SESSION_PENDING || status > S3D_SESSION_STATUS_MAX)
		return "unknown";
	return status_names[status];
}

void s3d_session_init(s3d_session *s)
{
	memset(s, 0, sizeof(*s));
	s->declared_size = -1;
	s->final_size = -1;
}

static int64_t fnum_get(const s3d_session *s, const struct field *f)
{
	const char *p = (const char *)s + f->off;

	return f->type == F_INT ? *(const int *)(const void *)p : *(const int64_t *)(const void *)p;
}

static void fnum_set(s3d_session *s, const struct field *f, int64_t v)
{
	char *p = (char *)s + f->off;

	if (f->type == F_INT)
		*(int *)(void *)p = (int)v; /* v was range-checked against the field */
	else
		*(int64_t *)(void *)p = v;
}

/* What encode accepts is exactly what decode gives back: TOOBIG for a string
 * without its NUL inside the field, INVAL for a value out of range. */
static int session_check(const s3d_session *s)
{
	const struct field *f;
	int64_t v;
	size_t i;

	for (i = 0; i < NFIELDS; i++) {
		f = &fields[i];
		if (f->type == F_STR) {
			if (!memchr((const char *)s + f->off, 0, f->size))
				return S3D_E_TOOBIG;
			continue;
		}
		v = fnum_get(s, f);
		if (v < f->min || v > f->max)
			return S3D_E_INVAL;
	}
	return s->uuid[0] ? S3D_OK : S3D_E_INVAL;
}

static int encode_field(const s3d_session *s, const struct field *f, s3d_buf *out)
{
	const char *v;
	int rc = s3d_buf_appendz(out, f->name);

	if (rc == S3D_OK)
		rc = s3d_buf_appendc(out, '=');
	if (rc != S3D_OK)
		return rc;
	if (f->type == F_STR) {
		v = (const char *)s + f->off;
		rc = s3d_uri_encode(out, v, strlen(v), 1);
	} else {
		rc = s3d_buf_printf(out, "%" PRId64, fnum_get(s, f));
	}
	return rc == S3D_OK ? s3d_buf_appendc(out, '\n') : rc;
}

int s3d_session_encode(const s3d_session *s, s3d_buf *out)
{
	size_t start, i;
	int rc;

	if (!s || !out)
		return S3D_E_INVAL;
	rc = session_check(s);
	if (rc != S3D_OK)
		return rc;
	start = out->len;
	rc = s3d_buf_appendz(out, SESSION_MAGIC "\n");
	for (i = 0; rc == S3D_OK && i < NFIELDS; i++)
		rc = encode_field(s, &fields[i], out);
	if (rc != S3D_OK && out->ptr) {
		out->len = start; /* nothing half-written stays behind */
		out->ptr[start] = 0;
	}
	return rc;
}

static int hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Bytes the encoder writes unescaped: RFC 3986 unreserved, and '/'. */
static int plain_char(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~' || c == '/';
}

static int name_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
	       c == '.';
}

/*
 * Percent-decodes v[0..n) into dst, which holds cap bytes with the NUL
 * (dst NULL: validate only). A value that does not fit, a malformed escape,
 * an escaped NUL or any byte the encoder would have escaped is refused.
 */
static int pct_decode(const uint8_t *v, size_t n, char *dst, size_t cap)
{
	size_t i, o = 0;
	int hi, lo;
	uint8_t c;

	for (i = 0; i < n; i++, o++) {
		c = v[i];
		if (c == '%') {
			if (n - i < 3 || (hi = hexval(v[i + 1])) < 0 ||
			    (lo = hexval(v[i + 2])) < 0)
				return S3D_E_PROTOCOL;
			c = (uint8_t)(hi << 4 | lo);
			if (c == 0)
				return S3D_E_PROTOCOL;
			i += 2;
		} else if (!plain_char(c)) {
			return S3D_E_PROTOCOL;
		}
		if (dst && o + 1 >= cap)
			return S3D_E_PROTOCOL;
		if (dst)
			dst[o] = (char)c;
	}
	if (dst)
		dst[o] = 0;
	return S3D_OK;
}

/* A decimal integer in [f->min, f->max], nothing before or after it. */
static int parse_num(const uint8_t *v, size_t n, const struct field *f, int64_t *out)
{
	char tmp[32], *end;
	long long x;

	if (pct_decode(v, n, tmp, sizeof(tmp)) != S3D_OK)
		return S3D_E_PROTOCOL;
	if (tmp[0] != '-' && (tmp[0] < '0' || tmp[0] > '9'))
		return S3D_E_PROTOCOL; /* strtoll would skip spaces and take '+' */
	errno = 0;
	x = strtoll(tmp, &end, 10);
	if (errno != 0 || end == tmp || *end != 0 || x < f->min || x > f->max)
		return S3D_E_PROTOCOL;
	*out = (int64_t)x;
	return S3D_OK;
}

static int field_find(const uint8_t *name, size_t n)
{
	size_t i;

	for (i = 0; i < NFIELDS; i++)
		if (strlen(fields[i].name) == n && memcmp(fields[i].name, name, n) == 0)
			return (int)i;
	return -1;
}

/* One "name=value" line (without its '\n'). */
static int decode_line(const uint8_t *p, size_t n, s3d_session *out, uint32_t *seen)
{
	const uint8_t *eq = memchr(p, '=', n);
	const struct field *f;
	size_t nlen, i;
	int64_t num;
	int idx, rc;

	if (!eq || eq == p)
		return S3D_E_PROTOCOL;
	nlen = (size_t)(eq - p);
	for (i = 0; i < nlen; i++)
		if (!name_char(p[i]))
			return S3D_E_PROTOCOL;
	idx = field_find(p, nlen);
	if (idx < 0) /* a newer writer's field: skipped, but well-formed */
		return pct_decode(eq + 1, n - nlen - 1, NULL, 0);
	if (*seen & (1u << idx))
		return S3D_E_PROTOCOL;
	*seen |= 1u << idx;
	f = &fields[idx];
	if (f->type == F_STR)
		return pct_decode(eq + 1, n - nlen - 1, (char *)out + f->off, f->size);
	rc = parse_num(eq + 1, n - nlen - 1, f, &num);
	if (rc == S3D_OK)
		fnum_set(out, f, num);
	return rc;
}

int s3d_session_decode(const uint8_t *p, size_t n, s3d_session *out)
{
	const size_t mlen = sizeof(SESSION_MAGIC) - 1;
	const uint8_t *nl;
	uint32_t seen = 0;
	size_t pos, lines = 0;
	int rc = S3D_OK;

	if (!out || (!p && n))
		return S3D_E_INVAL;
	s3d_session_init(out);
	if (n > DECODE_MAX || n <= mlen || memcmp(p, SESSION_MAGIC, mlen) != 0 ||
	    p[mlen] != '\n')
		return S3D_E_PROTOCOL;
	pos = mlen + 1;
	while (rc == S3D_OK && pos < n) {
		/* every line ends with '\n': a record cut mid-line is refused */
		nl = memchr(p + pos, '\n', n - pos);
		if (!nl || ++lines > DECODE_LINES_MAX)
			return S3D_E_PROTOCOL;
		rc = decode_line(p + pos, (size_t)(nl - (p + pos)), out, &seen);
		pos = (size_t)(nl - p) + 1;
	}
	/* every field of version 1 is required: a record cut at a line
	 * boundary is refused too (and uuid, status must be valid) */
	if (rc == S3D_OK && (seen != (1u << NFIELDS) - 1 || session_check(out) != S3D_OK))
		rc = S3D_E_PROTOCOL;
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Index: environment, transactions, map                                    */
/* ------------------------------------------------------------------------ */

enum op_kind { OP_PUT, OP_DELETE };

/* One queued write; lives on its caller's stack (s3d_index_put) or on the
 * heap (s3d_index_put_start) until its owner has seen it done. */
struct op {
	struct op *next;
	enum op_kind kind;
	char uuid[sizeof(((s3d_session *)0)->uuid)];
	uint64_t seq;           /* queue order; committed once ix->committed >= seq */
	int notify;             /* write to the notification pipe when done */
	s3d_buf rec;            /* OP_PUT: the encoded record */
	int64_t expires;        /* OP_PUT */
	unsigned from_mask;     /* OP_PUT */
	int settled;            /* rc is final (no retry of the batch changes it) */
	int done;               /* the committer is finished with it */
	int rc;
	s3d_session current;    /* the stored record, for a conflict */
	s3d_error err;
};

struct s3d_index {
	MDB_env *env;
	MDB_dbi sessions;
	MDB_dbi expiry;
	pthread_rwlock_t map_lock; /* shared: any transaction; exclusive: remap */
	pthread_mutex_t q_lock;
	pthread_cond_t q_cond;     /* a batch was committed */
	pthread_cond_t work_cond;  /* the queue is not empty, or stopping */
	struct op *q_head;
	struct op **q_tail;
	uint64_t queued;           /* seq of the last op queued */
	uint64_t committed;        /* seq of the last op done (under q_lock) */
	int stopping;
	int committer_running;
	pthread_t committer;
	int notify_fd[2];          /* pipe: a byte after each batch with a notify op */
};

/* The one place an LMDB error becomes ours. */
static int store_err(s3d_error *err, int mrc, const char *what)
{
	return s3d_err_set(err, S3D_E_STORE, "%s: %s", what, mdb_strerror(mrc));
}

static int io_err(s3d_error *err, int e, const char *what, const char *path)
{
	if (err)
		err->sys_errno = e;
	return s3d_err_set(err, S3D_E_IO, "%s %s: %s", what, path, strerror(e));
}

/* mkdir -p, new directories 0700; the path must end up a directory. */
static int mkdir_p(const char *path, s3d_error *err)
{
	char tmp[PATH_MAX];
	size_t n = strlen(path), i;
	struct stat st;

	if (n == 0 || n >= sizeof(tmp))
		return s3d_err_set(err, S3D_E_INVAL, "index path is empty or too long");
	memcpy(tmp, path, n + 1);
	for (i = 1; i <= n; i++) {
		if (tmp[i] != '/' && tmp[i] != 0)
			continue;
		tmp[i] = 0;
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
			return io_err(err, errno, "mkdir", tmp);
		tmp[i] = path[i];
	}
	if (stat(path, &st) != 0)
		return io_err(err, errno, "stat", path);
	if (!S_ISDIR(st.st_mode))
		return io_err(err, ENOTDIR, "index directory", path);
	return S3D_OK;
}

/* Sets the map size with no transaction of this process open (0: adopt the
 * size another process set). */
static int map_set(s3d_index *ix, size_t size)
{
	int mrc;

	pthread_rwlock_wrlock(&ix->map_lock);
	mrc = mdb_env_set_mapsize(ix->env, size);
	pthread_rwlock_unlock(&ix->map_lock);
	return mrc;
}

/* Doubles the map up to MAP_CEILING; MDB_MAP_FULL once there. Only the
 * committer grows the map, so two growths never race. */
static int map_grow(s3d_index *ix)
{
	MDB_envinfo info;
	int mrc = mdb_env_info(ix->env, &info);

	if (mrc != 0)
		return mrc;
	if (info.me_mapsize >= MAP_CEILING)
		return MDB_MAP_FULL;
	return map_set(ix, info.me_mapsize > MAP_CEILING / 2 ? MAP_CEILING
							     : info.me_mapsize * 2);
}

/* Begins a transaction holding the map lock shared until txn_end (or the
 * caller's commit and unlock). Stale readers are cleared once; a map grown
 * by another process is adopted once. */
static int txn_begin(s3d_index *ix, unsigned flags, MDB_txn **txn, s3d_error *err)
{
	int checked = 0, resized = 0, dead, mrc;

	for (;;) {
		pthread_rwlock_rdlock(&ix->map_lock);
		mrc = mdb_txn_begin(ix->env, NULL, flags, txn);
		if (mrc == 0)
			return S3D_OK;
		pthread_rwlock_unlock(&ix->map_lock);
		if (mrc == MDB_READERS_FULL && !checked) {
			checked = 1;
			mrc = mdb_reader_check(ix->env, &dead);
		} else if (mrc == MDB_MAP_RESIZED && !resized) {
			resized = 1;
			mrc = map_set(ix, 0);
		}
		if (mrc != 0)
			break;
	}
	*txn = NULL;
	return store_err(err, mrc, "mdb_txn_begin");
}

static void txn_end(s3d_index *ix, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&ix->map_lock);
}

static int index_alloc(s3d_index **out, s3d_error *err)
{
	pthread_rwlockattr_t a;
	s3d_index *ix = calloc(1, sizeof(*ix));
	int ok = 0;

	if (!ix)
		return s3d_err_set(err, S3D_E_NOMEM, "index: out of memory");
	/* writer preference: a steady stream of readers must not starve a remap */
	if (pthread_rwlockattr_init(&a) == 0) {
		pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		ok = pthread_rwlock_init(&ix->map_lock, &a) == 0;
		pthread_rwlockattr_destroy(&a);
	}
	if (ok && pthread_mutex_init(&ix->q_lock, NULL) != 0) {
		pthread_rwlock_destroy(&ix->map_lock);
		ok = 0;
	}
	if (ok && pthread_cond_init(&ix->q_cond, NULL) != 0) {
		pthread_mutex_destroy(&ix->q_lock);
		pthread_rwlock_destroy(&ix->map_lock);
		ok = 0;
	}
	if (ok && pthread_cond_init(&ix->work_cond, NULL) != 0) {
		pthread_cond_destroy(&ix->q_cond);
		pthread_mutex_destroy(&ix->q_lock);
		pthread_rwlock_destroy(&ix->map_lock);
		ok = 0;
	}
	if (!ok) {
		free(ix);
		return s3d_err_set(err, S3D_E_NOMEM, "index: cannot initialize locks");
	}
	ix->q_tail = &ix->q_head;
	ix->notify_fd[0] = ix->notify_fd[1] = -1;
	*out = ix;
	return S3D_OK;
}

static int env_open(s3d_index *ix, const s3d_index_config *cfg, s3d_error *err)
{
	unsigned flags = MDB_NOTLS | (cfg->no_sync ? MDB_NOSYNC : 0);
	size_t map = cfg->map_size ? cfg->map_size : MAP_DEFAULT;
	int mrc = mdb_env_create(&ix->env);

	if (mrc != 0) {
		ix->env = NULL;
		return store_err(err, mrc, "mdb_env_create");
	}
	if ((mrc = mdb_env_set_maxdbs(ix->env, 2)) != 0 ||
	    (mrc = mdb_env_set_maxreaders(ix->env, MAX_READERS)) != 0 ||
	    (mrc = mdb_env_set_mapsize(ix->env, map)) != 0 ||
	    (mrc = mdb_env_open(ix->env, cfg->path, flags, 0600)) != 0)
		return store_err(err, mrc, cfg->path);
	return S3D_OK;
}

static int dbs_open(s3d_index *ix, s3d_error *err)
{
	MDB_txn *txn;
	int mrc, rc, grown = 0;

	for (;;) {
		rc = txn_begin(ix, 0, &txn, err);
		if (rc != S3D_OK)
			return rc;
		mrc = mdb_dbi_open(txn, "sessions", MDB_CREATE, &ix->sessions);
		if (mrc == 0)
			mrc = mdb_dbi_open(txn, "expiry", MDB_CREATE, &ix->expiry);
		if (mrc == 0)
			mrc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
		pthread_rwlock_unlock(&ix->map_lock);
		/* a map reopened at its data size has no room for a first write */
		if (mrc != MDB_MAP_FULL || grown++ || (mrc = map_grow(ix)) != 0)
			break;
	}
	return mrc ? store_err(err, mrc, "opening the session databases") : S3D_OK;
}

static void *committer_main(void *arg);

/* The notification pipe (both ends non-blocking) and the committer thread. */
static int committer_start(s3d_index *ix, s3d_error *err)
{
	int e;

	if (pipe2(ix->notify_fd, O_NONBLOCK | O_CLOEXEC) != 0) {
		ix->notify_fd[0] = ix->notify_fd[1] = -1;
		return io_err(err, errno, "pipe", "for commit notifications");
	}
	e = pthread_create(&ix->committer, NULL, committer_main, ix);
	if (e != 0)
		return io_err(err, e, "pthread_create", "of the index committer");
	ix->committer_running = 1;
	return S3D_OK;
}

int s3d_index_open(const s3d_index_config *cfg, s3d_index **out, s3d_error *err)
{
	s3d_index *ix = NULL;
	int rc;

	if (!out)
		return s3d_err_set(err, S3D_E_INVAL, "index: no output handle");
	*out = NULL;
	if (!cfg || !cfg->path)
		return s3d_err_set(err, S3D_E_INVAL, "index: no path");
	rc = mkdir_p(cfg->path, err);
	if (rc == S3D_OK)
		rc = index_alloc(&ix, err);
	if (rc == S3D_OK)
		rc = env_open(ix, cfg, err);
	if (rc == S3D_OK)
		rc = dbs_open(ix, err);
	if (rc == S3D_OK)
		rc = committer_start(ix, err);
	if (rc == S3D_OK) {
		*out = ix;
		ix = NULL;
	}
	s3d_index_close(ix);
	return rc;
}

void s3d_index_close(s3d_index *ix)
{
	if (!ix)
		return;
	if (ix->committer_running) {
		pthread_mutex_lock(&ix->q_lock);
		ix->stopping = 1;
		pthread_cond_signal(&ix->work_cond);
		pthread_mutex_unlock(&ix->q_lock);
		pthread_join(ix->committer, NULL);
	}
	if (ix->notify_fd[0] >= 0)
		close(ix->notify_fd[0]);
	if (ix->notify_fd[1] >= 0)
		close(ix->notify_fd[1]);
	if (ix->env)
		mdb_env_close(ix->env);
	pthread_cond_destroy(&ix->work_cond);
	pthread_cond_destroy(&ix->q_cond);
	pthread_mutex_destroy(&ix->q_lock);
	pthread_rwlock_destroy(&ix->map_lock);
	free(ix);
}

/* ------------------------------------------------------------------------ */
/* Index: reads                                                             */
/* ------------------------------------------------------------------------ */

/* The sessions key of uuid; 0 when uuid cannot be one (empty, too long). */
static int uuid_key(const char *uuid, MDB_val *k)
{
	size_t n = strlen(uuid);

	k->mv_data = (void *)uuid;
	k->mv_size = n;
	return n > 0 && n < sizeof(((s3d_session *)0)->uuid);
}

/* expires (never negative) big-endian, then the uuid: byte order is time order. */
static MDB_val expiry_key(uint8_t *buf, int64_t expires, const char *uuid)
{
	uint64_t e = (uint64_t)expires;
	size_t n = strlen(uuid), i;
	MDB_val k;

	for (i = 0; i < 8; i++)
		buf[i] = (uint8_t)(e >> (56 - 8 * i));
	memcpy(buf + 8, uuid, n);
	k.mv_data = buf;
	k.mv_size = 8 + n;
	return k;
}

/* Copies a stored record out of LMDB's map. */
static int record_decode(const MDB_val *v, s3d_session *out, s3d_error *err)
{
	if (s3d_session_decode(v->mv_data, v->mv_size, out) != S3D_OK)
		return s3d_err_set(err, S3D_E_STORE, "a stored session record does not decode");
	return S3D_OK;
}

int s3d_index_get(s3d_index *ix, const char *uuid, s3d_session *out, s3d_error *err)
{
	MDB_txn *txn = NULL;
	MDB_val k, v;
	int rc, mrc;

	if (!ix || !uuid || !out)
		return s3d_err_set(err, S3D_E_INVAL, "index_get: missing argument");
	if (!uuid_key(uuid, &k))
		return s3d_err_set(err, S3D_E_NOTFOUND, "no such session");
	rc = txn_begin(ix, MDB_RDONLY, &txn, err);
	if (rc != S3D_OK)
		goto out;
	mrc = mdb_get(txn, ix->sessions, &k, &v);
	if (mrc == MDB_NOTFOUND)
		rc = s3d_err_set(err, S3D_E_NOTFOUND, "no such session");
	else if (mrc != 0)
		rc = store_err(err, mrc, "mdb_get");
	else
		rc = record_decode(&v, out, err);
out:
	if (txn)
		txn_end(ix, txn);
	return rc;
}

/* One scan: a batch of copies at a time, resumed after the last key seen. */
struct scan {
	int expiry;             /* walking "expiry" (else "sessions") */
	int64_t now;
	unsigned mask;
	s3d_session *recs;      /* SCAN_BATCH */
	size_t n;
	uint8_t last[KEY_MAX];
	size_t last_len;
	int started;
	int end;
};

/* Takes the entry (k, v) into the batch when it qualifies. */
static int scan_take(s3d_index *ix, MDB_txn *txn, struct scan *sc, const MDB_val *k,
		     MDB_val *v, s3d_error *err)
{
	s3d_session *s = &sc->recs[sc->n];
	uint64_t e = 0;
	MDB_val uk;
	size_t i;
	int mrc;

	if (sc->expiry) {
		if (k->mv_size <= 8 || k->mv_size > XKEY_LEN)
			return s3d_err_set(err, S3D_E_STORE, "malformed expiry key");
		for (i = 0; i < 8; i++)
			e = e << 8 | ((const uint8_t *)k->mv_data)[i];
		if (e > (uint64_t)sc->now) {
			sc->end = 1;
			return S3D_OK;
		}
		uk.mv_data = (uint8_t *)k->mv_data + 8;
		uk.mv_size = k->mv_size - 8;
		mrc = mdb_get(txn, ix->sessions, &uk, v);
		if (mrc == MDB_NOTFOUND)
			return S3D_OK; /* cannot happen: both change in one txn */
		if (mrc != 0)
			return store_err(err, mrc, "mdb_get");
	}
	/* a record this version cannot read (a newer writer's) must not stop
	 * every later scan: it is skipped here and reported by get */
	if (s3d_session_decode(v->mv_data, v->mv_size, s) != S3D_OK)
		return S3D_OK;
	if (!sc->expiry ||
	    (s->expires <= sc->now && (sc->mask & S3D_SESSION_BIT(s->status))))
		sc->n++;
	return S3D_OK;
}

/* Positions c on the first key after the last one seen. */
static int scan_seek(struct scan *sc, MDB_cursor *c, MDB_val *k, MDB_val *v)
{
	int mrc;

	if (!sc->started)
		return mdb_cursor_get(c, k, v, MDB_FIRST);
	k->mv_data = sc->last;
	k->mv_size = sc->last_len;
	mrc = mdb_cursor_get(c, k, v, MDB_SET_RANGE);
	if (mrc == 0 && k->mv_size == sc->last_len && memcmp(k->mv_data, sc->last, sc->last_len) == 0)
		mrc = mdb_cursor_get(c, k, v, MDB_NEXT);
	return mrc;
}

/* Refills sc->recs in one read transaction. */
static int scan_fill(s3d_index *ix, struct scan *sc, s3d_error *err)
{
	MDB_txn *txn = NULL;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	size_t visited = 0;
	int rc, mrc;

	sc->n = 0;
	rc = txn_begin(ix, MDB_RDONLY, &txn, err);
	if (rc != S3D_OK)
		goto out;
	mrc = mdb_cursor_open(txn, sc->expiry ? ix->expiry : ix->sessions, &c);
	if (mrc == 0)
		mrc = scan_seek(sc, c, &k, &v);
	while (mrc == 0 && rc == S3D_OK && !sc->end && sc->n < SCAN_BATCH &&
	       visited++ < SCAN_VISIT_MAX) {
		if (k.mv_size > sizeof(sc->last)) {
			rc = s3d_err_set(err, S3D_E_STORE, "index key too long");
			break;
		}
		rc = scan_take(ix, txn, sc, &k, &v, err);
		memcpy(sc->last, k.mv_data, k.mv_size);
		sc->last_len = k.mv_size;
		sc->started = 1;
		if (rc == S3D_OK && !sc->end && sc->n < SCAN_BATCH)
			mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	if (mrc == MDB_NOTFOUND)
		sc->end = 1;
	else if (mrc != 0 && rc == S3D_OK)
		rc = store_err(err, mrc, "mdb_cursor_get");
out:
	if (c)
		mdb_cursor_close(c);
	if (txn)
		txn_end(ix, txn);
	return rc;
}

/* Calls fn outside any transaction, so fn may write to the index. */
static int scan_run(s3d_index *ix, struct scan *sc, s3d_session_fn fn, void *ud,
		    s3d_error *err)
{
	int rc = S3D_OK, stop = 0;
	size_t i;

	if (!ix || !fn)
		return s3d_err_set(err, S3D_E_INVAL, "index scan: missing argument");
	sc->recs = malloc(SCAN_BATCH * sizeof(*sc->recs));
	if (!sc->recs)
		return s3d_err_set(err, S3D_E_NOMEM, "index scan: out of memory");
	while (rc == S3D_OK && !stop && !sc->end) {
		rc = scan_fill(ix, sc, err);
		for (i = 0; rc == S3D_OK && !stop && i < sc->n; i++)
			stop = fn(ud, &sc->recs[i]) != 0;
	}
	free(sc->recs);
	return rc;
}

int s3d_index_scan(s3d_index *ix, s3d_session_fn fn, void *ud, s3d_error *err)
{
	struct scan sc;

	memset(&sc, 0, sizeof(sc));
	return scan_run(ix, &sc, fn, ud, err);
}

int s3d_index_scan_expired(s3d_index *ix, int64_t now, unsigned status_mask,
			   s3d_session_fn fn, void *ud, s3d_error *err)
{
	struct scan sc;

	memset(&sc, 0, sizeof(sc));
	sc.expiry = 1;
	sc.now = now;
	sc.mask = status_mask;
	if (ix && fn && now < 0)
		return S3D_OK; /* no record expires before 0 */
	return scan_run(ix, &sc, fn, ud, err);
}

/* ------------------------------------------------------------------------ */
/* Index: writes (group commit)                                             */
/* ------------------------------------------------------------------------ */

static int expiry_del(s3d_index *ix, MDB_txn *txn, int64_t expires, const char *uuid)
{
	uint8_t buf[XKEY_LEN];
	MDB_val k = expiry_key(buf, expires, uuid);
	int mrc = mdb_del(txn, ix->expiry, &k, NULL);

	return mrc == MDB_NOTFOUND ? 0 : mrc;
}

static int expiry_put(s3d_index *ix, MDB_txn *txn, int64_t expires, const char *uuid)
{
	uint8_t buf[XKEY_LEN];
	MDB_val k = expiry_key(buf, expires, uuid), v = { 0, NULL };

	return mdb_put(txn, ix->expiry, &k, &v, 0);
}

/*
 * The compare-and-set of one put, against everything earlier in the
 * transaction. Decides o->rc and returns 0, or returns the LMDB error of a
 * write (the transaction is then unusable).
 */
static int op_put(s3d_index *ix, MDB_txn *txn, struct op *o)
{
	MDB_val k, v;
	int mrc, found;

	uuid_key(o->uuid, &k);
	mrc = mdb_get(txn, ix->sessions, &k, &v);
	if (mrc != 0 && mrc != MDB_NOTFOUND)
		return mrc;
	found = mrc == 0;
	s3d_session_init(&o->current);
	if (found && record_decode(&v, &o->current, &o->err) != S3D_OK) {
		o->rc = S3D_E_STORE;
		return 0;
	}
	if (found ? !(o->from_mask & S3D_SESSION_BIT(o->current.status))
		  : !(o->from_mask & S3D_INDEX_ABSENT)) {
		o->rc = s3d_err_set(&o->err, S3D_E_CONFLICT, "session is %s",
				    found ? s3d_session_status_name(o->current.status) : "absent");
		return 0;
	}
	if (!found || o->current.expires != o->expires) {
		if (found && (mrc = expiry_del(ix, txn, o->current.expires, o->uuid)) != 0)
			return mrc;
		if ((mrc = expiry_put(ix, txn, o->expires, o->uuid)) != 0)
			return mrc;
	}
	v.mv_data = o->rec.ptr;
	v.mv_size = o->rec.len;
	if ((mrc = mdb_put(txn, ix->sessions, &k, &v, 0)) != 0)
		return mrc;
	o->rc = S3D_OK;
	return 0;
}

static int op_delete(s3d_index *ix, MDB_txn *txn, struct op *o)
{
	MDB_val k, v;
	int mrc;

	uuid_key(o->uuid, &k);
	mrc = mdb_get(txn, ix->sessions, &k, &v);
	if (mrc == MDB_NOTFOUND) {
		o->rc = s3d_err_set(&o->err, S3D_E_NOTFOUND, "no such session");
		return 0;
	}
	if (mrc != 0)
		return mrc;
	/* a record that does not decode is still deleted; its expiry entry
	 * (if any) is then skipped by scan_expired */
	if (s3d_session_decode(v.mv_data, v.mv_size, &o->current) == S3D_OK &&
	    (mrc = expiry_del(ix, txn, o->current.expires, o->uuid)) != 0)
		return mrc;
	if ((mrc = mdb_del(txn, ix->sessions, &k, NULL)) != 0)
		return mrc;
	o->rc = S3D_OK;
	return 0;
}

static void batch_settle(struct op *head, int rc, const s3d_error *e)
{
	struct op *o;

	for (o = head; o; o = o->next) {
		if (o->settled)
			continue;
		o->settled = 1;
		if (rc != S3D_OK) {
			o->rc = rc;
			o->err = *e;
		}
	}
}

/*
 * Applies every unsettled op in one write transaction and commits. An op
 * whose own write fails is settled with that error and the others run again
 * without it; a full map is grown and the whole batch runs again; a failed
 * commit fails every op. Each round settles an op, grows the map, or ends.
 */
static void batch_commit(s3d_index *ix, struct op *head)
{
	struct op *o, *bad;
	MDB_txn *txn;
	s3d_error e;
	int rc = S3D_E_STORE, mrc;

	for (;;) {
		s3d_error_clear(&e);
		if (txn_begin(ix, 0, &txn, &e) != S3D_OK)
			break;
		for (o = head, bad = NULL, mrc = 0; o && mrc == 0; o = o->next) {
			if (o->settled)
				continue;
			s3d_error_clear(&o->err);
			mrc = o->kind == OP_PUT ? op_put(ix, txn, o) : op_delete(ix, txn, o);
			bad = mrc ? o : NULL;
		}
		if (mrc == 0)
			mrc = mdb_txn_commit(txn); /* frees txn, even on failure */
		else
			mdb_txn_abort(txn);
		pthread_rwlock_unlock(&ix->map_lock);
		if (mrc == MDB_MAP_FULL) {
			if ((mrc = map_grow(ix)) == 0)
				continue;
			store_err(&e, mrc, "growing the session index");
			break;
		}
		if (mrc == 0) {
			rc = S3D_OK;
			break;
		}
		store_err(&e, mrc, bad ? "writing a session" : "committing sessions");
		if (!bad)
			break;
		bad->settled = 1;
		bad->rc = S3D_E_STORE;
		bad->err = e;
	}
	batch_settle(head, rc, &e);
}

/*
 * The committer thread: takes the whole queue, commits it as one batch,
 * marks it done (owners read their op only after taking q_lock, so none has
 * left while the batch is walked), wakes the waiting callers, and writes a
 * byte to the notification pipe when an op of the batch asked for it (a full
 * pipe already holds unread bytes: the reader then sees the newer count).
 * On close it drains the queue before it stops.
 */
static void *committer_main(void *arg)
{
	s3d_index *ix = arg;
	struct op *batch, *b;
	int notify;
	ssize_t wr;

	pthread_mutex_lock(&ix->q_lock);
	for (;;) {
		while (!ix->q_head && !ix->stopping)
			pthread_cond_wait(&ix->work_cond, &ix->q_lock);
		if (!ix->q_head)
			break;
		batch = ix->q_head;
		ix->q_head = NULL;
		ix->q_tail = &ix->q_head;
		pthread_mutex_unlock(&ix->q_lock);
		batch_commit(ix, batch);
		pthread_mutex_lock(&ix->q_lock);
		notify = 0;
		for (b = batch; b; b = b->next) {
			b->done = 1;
			notify |= b->notify;
			ix->committed = b->seq;
		}
		pthread_cond_broadcast(&ix->q_cond);
		if (notify) {
			wr = write(ix->notify_fd[1], "c", 1);
			(void)wr; /* EAGAIN: unread bytes are there already */
		}
	}
	pthread_mutex_unlock(&ix->q_lock);
	return NULL;
}

/* Queues o for the committer. */
static void queue_add(s3d_index *ix, struct op *o)
{
	pthread_mutex_lock(&ix->q_lock);
	o->next = NULL;
	o->seq = ++ix->queued;
	*ix->q_tail = o;
	ix->q_tail = &o->next;
	pthread_cond_signal(&ix->work_cond);
	pthread_mutex_unlock(&ix->q_lock);
}

/* Returns once the committer has applied o. */
static int queue_wait(s3d_index *ix, struct op *o)
{
	pthread_mutex_lock(&ix->q_lock);
	while (!o->done)
		pthread_cond_wait(&ix->q_cond, &ix->q_lock);
	pthread_mutex_unlock(&ix->q_lock);
	return o->rc;
}

static int queue_run(s3d_index *ix, struct op *o)
{
	queue_add(ix, o);
	return queue_wait(ix, o);
}

static void op_init(struct op *o, enum op_kind kind, const char *uuid)
{
	memset(o, 0, sizeof(*o));
	o->kind = kind;
	/* callers check that uuid fits (uuid_key, put_init) */
	memcpy(o->uuid, uuid, strnlen(uuid, sizeof(o->uuid) - 1));
	s3d_buf_init(&o->rec, ENCODE_MAX);
}

/* The put of s; o->rec to be cleaned up whatever the result. */
static int put_init(struct op *o, const s3d_session *s, unsigned from_mask, s3d_error *err)
{
	int rc;

	op_init(o, OP_PUT, s->uuid);
	/* what uuid_key accepts: an empty key would fail the whole batch */
	if (!s->uuid[0] || strnlen(s->uuid, sizeof(s->uuid)) >= sizeof(s->uuid))
		return s3d_err_set(err, S3D_E_INVAL, "invalid session record: uuid empty or too long");
	rc = s3d_session_encode(s, &o->rec);
	if (rc != S3D_OK)
		return s3d_err_set(err, rc, "invalid session record: %s", s3d_strerror(rc));
	o->expires = s->expires;
	o->from_mask = from_mask;
	return S3D_OK;
}

/* A done put's outcome, in the caller's terms. */
static int put_result(const struct op *o, s3d_session *current, s3d_error *err)
{
	if (o->rc == S3D_E_CONFLICT && current)
		*current = o->current;
	if (o->rc != S3D_OK && err)
		*err = o->err;
	return o->rc;
}

int s3d_index_put(s3d_index *ix, const s3d_session *s, unsigned from_mask,
		  s3d_session *current, s3d_error *err)
{
	struct op o;
	int rc;

	if (!ix || !s)
		return s3d_err_set(err, S3D_E_INVAL, "index_put: missing argument");
	rc = put_init(&o, s, from_mask, err);
	if (rc == S3D_OK) {
		queue_run(ix, &o);
		rc = put_result(&o, current, err);
	}
	s3d_buf_cleanup(&o.rec);
	return rc;
}

struct s3d_index_op {
	struct op o; /* first: the committer sees a struct op */
	s3d_index *ix;
};

int s3d_index_put_start(s3d_index *ix, const s3d_session *s, unsigned from_mask,
			s3d_index_op **out, uint64_t *ticket, s3d_error *err)
{
	s3d_index_op *op;
	int rc;

	if (!ix || !s || !out || !ticket)
		return s3d_err_set(err, S3D_E_INVAL, "index_put_start: missing argument");
	*out = NULL;
	op = malloc(sizeof(*op));
	if (!op)
		return s3d_err_set(err, S3D_E_NOMEM, "index_put_start: out of memory");
	rc = put_init(&op->o, s, from_mask, err);
	if (rc != S3D_OK) {
		s3d_buf_cleanup(&op->o.rec);
		free(op);
		return rc;
	}
	op->ix = ix;
	op->o.notify = 1;
	queue_add(ix, &op->o);
	*ticket = op->o.seq; /* set under q_lock, never changed after */
	*out = op;
	return S3D_OK;
}

int s3d_index_op_finish(s3d_index_op *op, s3d_session *current, s3d_error *err)
{
	int rc;

	if (!op)
		return s3d_err_set(err, S3D_E_INVAL, "index_op_finish: no operation");
	queue_wait(op->ix, &op->o);
	rc = put_result(&op->o, current, err);
	s3d_buf_cleanup(&op->o.rec);
	free(op);
	return rc;
}

uint64_t s3d_index_committed(s3d_index *ix)
{
	uint64_t v;

	pthread_mutex_lock(&ix->q_lock);
	v = ix->committed;
	pthread_mutex_unlock(&ix->q_lock);
	return v;
}

int s3d_index_notify_fd(const s3d_index *ix)
{
	return ix ? ix->notify_fd[0] : -1;
}

int s3d_index_delete(s3d_index *ix, const char *uuid, s3d_error *err)
{
	struct op o;
	MDB_val k;
	int rc;

	if (!ix || !uuid)
		return s3d_err_set(err, S3D_E_INVAL, "index_delete: missing argument");
	if (!uuid_key(uuid, &k))
		return s3d_err_set(err, S3D_E_NOTFOUND, "no such session");
	op_init(&o, OP_DELETE, uuid);
	rc = queue_run(ix, &o);
	if (rc != S3D_OK && err)
		*err = o.err;
	s3d_buf_cleanup(&o.rec);
	return rc;
}
