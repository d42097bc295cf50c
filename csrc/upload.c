/*
 * The registry's FileWriter on S3 (public API in s3direct.h; what lives in
 * S3 between a Close and the next open is described in upload.h).
 *
 * A writer is in one of four states: OPEN, CLOSED, COMMITTED, CANCELLED.
 * While OPEN its bytes are in one of two places:
 *   - pend: a buffer of at most part_size bytes while no multipart upload
 *     exists. A small blob never leaves it: Commit is one PutObject.
 *   - the mpu (s3d_mpu, parallel parts), from the moment pend holds a full
 *     part (CreateMultipartUpload then) or from open when an upload already
 *     exists (continued after its last part; no request to set it up).
 * Close persists what the parts do not hold: a final-so-far part when it is
 * >= 5 MiB, else the tail object stamped with the upload and offset it
 * follows. Commit completes (or puts), then removes the tail. Cancel aborts
 * and removes the tail. Nothing needed by a later open stays in memory.
 */
#include "upload.h"

#include "buf.h"
#include "err.h"
#include "multipart.h"
#include "s3_client.h"
#include "sigv4.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_BUF_MAX 2048
#define ID_MAX 4096               /* upload ids we accept (multipart.c's bound) */
#define STAMP_MAX (ID_MAX + 32)
#define UPLOADS_MAX 10000         /* uploads of one key tracked at open */
#define COPY_PART_MAX ((int64_t)5 * 1024 * 1024 * 1024) /* UploadPartCopy limit */
#define DEFAULT_PART (10u * 1024u * 1024u)
#define DEFAULT_IN_FLIGHT 2

enum wstate { W_OPEN, W_CLOSED, W_COMMITTED, W_CANCELLED };

/* Bytes held while no upload exists. Not an s3d_buf: no terminator, so a
 * full part is exactly part_size bytes of memory. */
struct pend {
	uint8_t *ptr;
	size_t len, cap, max;
};

struct s3d_writer {
	s3d_driver *d;
	s3d_client *c;
	const char *bucket;
	s3d_buf key;
	s3d_buf tail_key;
	s3d_buf upload_id;      /* "" while no multipart upload exists */
	s3d_part *prior;        /* parts on the server before this writer (sorted, 1..n) */
	size_t nprior;
	int64_t prior_bytes;
	s3d_mpu *mpu;           /* this writer's parts; exists exactly when upload_id is set */
	int first_part;         /* number of the mpu's first part */
	int submitted;          /* full parts handed to the mpu */
	size_t fill;            /* bytes in the mpu's filling part buffer */
	struct pend pend;
	s3d_mpu_config mcfg;
	int64_t size;
	int64_t opened_size;
	int state;
	int commit_failed;
	int tail_present;       /* a tail object exists (found at open or written) */
	int short_last;         /* the last prior part is < 5 MiB: nothing may follow */
	size_t peak;
};

/* ---- errors ---- */

static int wfail(const s3d_writer *w, s3d_error *err, int rc, const char *op,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* A local failure: err cleared, resource and message filled. */
static int wfail(const s3d_writer *w, s3d_error *err, int rc, const char *op,
		 const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return rc;
	s3d_error_clear(err);
	snprintf(err->resource, sizeof(err->resource), "%s %s/%s", op,
		 w ? w->bucket : "", w ? s3d_buf_str(&w->key) : "");
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return rc;
}

static int check_state(const s3d_writer *w, const char *op, s3d_error *err)
{
	switch (w->state) {
	case W_OPEN:
		return S3D_OK;
	case W_CLOSED:
		return wfail(w, err, S3D_E_INVAL, op, "writer already closed");
	case W_COMMITTED:
		return wfail(w, err, S3D_E_INVAL, op, "writer already committed%s",
			     w->commit_failed ? " (the commit failed)" : "");
	default:
		return wfail(w, err, S3D_E_INVAL, op, "writer already cancelled");
	}
}

/* ---- pend ---- */

/*
 * pend is one part buffer (s3d_part_buf_new(part_size)), mapped at the first
 * byte: only the pages written become resident, and a full pend is handed
 * to the upload as its first part buffer instead of being copied.
 */
static int pend_append(struct pend *b, const void *p, size_t n)
{
	if (n > b->max - b->len)
		return S3D_E_TOOBIG;
	if (!b->ptr && n) {
		b->ptr = s3d_part_buf_new(b->max);
		if (!b->ptr)
			return S3D_E_NOMEM;
		b->cap = b->max;
	}
	/* huge pages only for a writer past 2 MiB: small blobs stay 4 KiB pages */
	if (b->len <= S3D_HUGE_PAGE && b->len + n > S3D_HUGE_PAGE)
		s3d_part_buf_huge(b->ptr, b->cap);
	if (n)
		memcpy(b->ptr + b->len, p, n);
	b->len += n;
	return S3D_OK;
}

static void pend_free(struct pend *b)
{
	s3d_part_buf_free(b->ptr, b->cap);
	b->ptr = NULL;
	b->len = b->cap = 0;
}

static int pend_sink(void *ud, const uint8_t *p, size_t n)
{
	return pend_append(ud, p, n) == S3D_OK ? 0 : 1;
}

static void note_memory(s3d_writer *w)
{
	size_t m = w->pend.len + s3d_mpu_peak_memory(w->mpu);

	if (m > w->peak)
		w->peak = m;
}

/* ---- tail object ---- */

int s3d_upload_tail_key(const s3d_driver *d, const char *key, s3d_buf *out)
{
	size_t rl, n, i;
	char hex[65];
	int rc;

	if (!d || !key || !out)
		return S3D_E_INVAL;
	rl = strlen(d->root);
	if (strncmp(key, d->root, rl) != 0)
		return S3D_E_INVAL;
	s3d_buf_reset(out);
	n = strlen(key + rl);
	if (n <= S3D_UPLOAD_TAIL_NAME_MAX &&
	    rl + strlen(S3D_DRIVER_TAIL_PREFIX) + n <= S3D_UPLOAD_KEY_MAX) {
		rc = s3d_buf_printf(out, "%s%s%s", d->root, S3D_DRIVER_TAIL_PREFIX, key + rl);
		for (i = out->len - n; rc == S3D_OK && i < out->len; i++)
			if (out->ptr[i] == '/')
				out->ptr[i] = S3D_UPLOAD_TAIL_SEP;
		return rc;
	}
	rc = s3d_sha256_hex(key, strlen(key), hex);
	if (rc != S3D_OK)
		return rc;
	return s3d_buf_printf(out, "%s%s%s", d->root, S3D_UPLOAD_TAIL_HASHED_PREFIX, hex);
}

static const char *upload_name(const s3d_writer *w)
{
	return w->upload_id.len ? s3d_buf_str(&w->upload_id) : "-";
}

/* "<upload id or ->:<offset>" matches what this writer found in S3. */
static int stamp_matches(const s3d_writer *w, const char *stamp)
{
	const char *colon = strrchr(stamp, ':'), *id = upload_name(w), *p;
	long long off = 0;

	if (!colon || (size_t)(colon - stamp) != strlen(id) ||
	    memcmp(stamp, id, strlen(id)) != 0 || !colon[1])
		return 0;
	for (p = colon + 1; *p; p++) {
		if (*p < '0' || *p > '9' || off > (INT64_MAX - 9) / 10)
			return 0;
		off = off * 10 + (*p - '0');
	}
	return off == w->prior_bytes;
}

/* GET of the tail into pend, with its stamp (x-amz-meta-s3direct). */
static int tail_get(s3d_writer *w, s3d_buf *stamp, int *found, s3d_error *err)
{
	s3d_obj_info info;
	int rc;

	*found = 0;
	memset(&info, 0, sizeof(info));
	rc = s3d_get_object(w->c, w->bucket, s3d_buf_str(&w->tail_key), 0, -1, pend_sink,
			    &w->pend, &info, err);
	if (rc == S3D_E_ABORTED) /* only pend_sink stops: the tail is over part_size */
		return wfail(w, err, S3D_E_TOOBIG, "GET", "tail object %s is larger than a part",
			     s3d_buf_str(&w->tail_key));
	if (rc == S3D_E_NOTFOUND)
		return S3D_OK;
	if (rc != S3D_OK)
		return rc;
	*found = 1;
	s3d_buf_reset(stamp);
	if (s3d_buf_appendz(stamp, info.meta_s3direct) != S3D_OK)
		s3d_buf_reset(stamp); /* an over-long stamp is no stamp of ours */
	return S3D_OK;
}

static int tail_put(s3d_writer *w, int64_t offset, const uint8_t *p, size_t n, s3d_error *err)
{
	const s3d_put_opts *base = s3d_driver_put_opts(w->d);
	s3d_kv h[S3D_MAX_REQ_HEADERS];
	s3d_put_opts po;
	s3d_buf stamp;
	size_t i;
	int rc;

	memset(&po, 0, sizeof(po));
	if (base)
		po = *base;
	if (po.nheaders >= S3D_MAX_REQ_HEADERS)
		return wfail(w, err, S3D_E_TOOBIG, "PUT", "too many extra headers for the tail");
	for (i = 0; i < po.nheaders; i++)
		h[i] = po.headers[i];
	s3d_buf_init(&stamp, STAMP_MAX);
	rc = s3d_buf_printf(&stamp, "%s:%lld", upload_name(w), (long long)offset);
	h[po.nheaders].name = S3D_UPLOAD_STAMP_HEADER;
	h[po.nheaders].value = s3d_buf_str(&stamp);
	po.headers = h;
	po.nheaders++;
	po.checksum_sha256 = NULL;
	po.checksum_algorithm = NULL;
	if (rc != S3D_OK) {
		wfail(w, err, rc, "PUT", "tail stamp too long");
	} else {
		s3d_driver_mark_tails(w->d);
		rc = s3d_put_object(w->c, w->bucket, s3d_buf_str(&w->tail_key), p, n, &po, NULL, err);
	}
	if (rc == S3D_OK)
		w->tail_present = 1;
	s3d_buf_cleanup(&stamp);
	return rc;
}

static int tail_delete(s3d_writer *w, s3d_error *err)
{
	int rc = s3d_delete_object(w->c, w->bucket, s3d_buf_str(&w->tail_key), err);

	if (rc == S3D_E_NOTFOUND)
		rc = S3D_OK;
	if (rc == S3D_OK)
		w->tail_present = 0;
	return rc;
}

/* The tail request of an open runs beside the upload listing: it touches
 * only pend and its own fields. Without a thread it runs inline. */
struct tail_job {
	s3d_writer *w;
	int get;                /* 1: GET into pend; 0: DELETE */
	int rc;
	int found;
	int threaded;
	s3d_buf stamp;
	s3d_error err;
	pthread_t thread;
};

static void *tail_job_run(void *ud)
{
	struct tail_job *j = ud;

	if (j->get)
		j->rc = tail_get(j->w, &j->stamp, &j->found, &j->err);
	else
		j->rc = s3d_delete_object(j->w->c, j->w->bucket, s3d_buf_str(&j->w->tail_key),
					  &j->err);
	return NULL;
}

static void tail_job_start(struct tail_job *j, s3d_writer *w, int get)
{
	memset(j, 0, sizeof(*j));
	j->w = w;
	j->get = get;
	s3d_buf_init(&j->stamp, STAMP_MAX);
	if (pthread_create(&j->thread, NULL, tail_job_run, j) == 0)
		j->threaded = 1;
	else
		tail_job_run(j);
}

static void tail_job_wait(struct tail_job *j)
{
	if (j->threaded)
		pthread_join(j->thread, NULL);
	j->threaded = 0;
}

/* ---- uploads and parts ---- */

struct upload_ref {
	char *id;
	int64_t initiated;
};

struct upload_scan {
	const char *key;
	struct upload_ref *v;
	size_t n, cap;
	int rc;
};

static int scan_upload(void *ud, const s3d_list_entry *e)
{
	struct upload_scan *s = ud;
	struct upload_ref *v;

	if (e->kind != S3D_ENTRY_UPLOAD || !e->key || strcmp(e->key, s->key) != 0 ||
	    !e->upload_id || !*e->upload_id)
		return 0;
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 4;

		if (s->n >= UPLOADS_MAX) {
			s->rc = S3D_E_TOOBIG;
			return 1;
		}
		v = realloc(s->v, ncap * sizeof(*v));
		if (!v) {
			s->rc = S3D_E_NOMEM;
			return 1;
		}
		s->v = v;
		s->cap = ncap;
	}
	s->v[s->n].id = strdup(e->upload_id);
	if (!s->v[s->n].id) {
		s->rc = S3D_E_NOMEM;
		return 1;
	}
	s->v[s->n++].initiated = e->last_modified;
	return 0;
}

static void uploads_free(struct upload_scan *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->v[i].id);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* Multipart uploads of exactly this key (the prefix also matches longer keys). */
static int uploads_of(s3d_writer *w, struct upload_scan *s, s3d_error *err)
{
	s3d_list_opts o;
	int rc;

	memset(s, 0, sizeof(*s));
	s->key = s3d_buf_str(&w->key);
	memset(&o, 0, sizeof(o));
	o.prefix = s->key;
	rc = s3d_list_multipart_uploads(w->c, w->bucket, &o, scan_upload, s, err);
	if (rc == S3D_OK && s->rc != S3D_OK)
		rc = wfail(w, err, s->rc, "LIST", "%s",
			   s->rc == S3D_E_TOOBIG ? "more than 10000 multipart uploads of one key"
						 : "out of memory");
	return rc;
}

/* Aborts every upload in s but keep (NULL: all). An upload already gone is fine;
 * every abort is tried, the first failure is reported. */
static int abort_others(s3d_writer *w, const struct upload_scan *s, const char *keep,
			s3d_error *err)
{
	s3d_error e;
	size_t i;
	int rc = S3D_OK, arc;

	for (i = 0; i < s->n; i++) {
		if (keep && strcmp(s->v[i].id, keep) == 0)
			continue;
		s3d_error_clear(&e);
		arc = s3d_abort_multipart(w->c, w->bucket, s3d_buf_str(&w->key), s->v[i].id, &e);
		if (arc != S3D_OK && arc != S3D_E_NOTFOUND && rc == S3D_OK) {
			rc = arc;
			if (err)
				*err = e;
		}
	}
	return rc;
}


/*
 * Parts of the upload in upload_id, all pages. Only 1..n without a gap count:
 * a part after a gap (one that failed while later ones went through) holds
 * bytes that do not follow the others; it is left out (Complete ignores
 * parts it is not given, and a later part with its number overwrites it).
 */
static int load_parts(s3d_writer *w, s3d_error *err)
{
	size_t i;
	int rc;

	free(w->prior);
	w->prior = NULL;
	w->nprior = 0;
	w->prior_bytes = 0;
	rc = s3d_list_parts_all(w->c, w->bucket, s3d_buf_str(&w->key), s3d_buf_str(&w->upload_id),
				&w->prior, &w->nprior, err);
	if (rc == S3D_E_TOOBIG || rc == S3D_E_NOMEM)
		rc = wfail(w, err, rc, "LIST", "%s",
			   rc == S3D_E_TOOBIG ? "more than 10000 parts" : "out of memory");
	if (rc != S3D_OK)
		return rc;
	for (i = 0; i < w->nprior && w->prior[i].number == (int)i + 1; i++) {
		if (w->prior[i].size < 0 || !w->prior[i].etag[0])
			return wfail(w, err, S3D_E_PROTOCOL, "LIST",
				     "part %d of upload %s has no size or ETag",
				     w->prior[i].number, s3d_buf_str(&w->upload_id));
		w->prior_bytes += w->prior[i].size;
	}
	w->nprior = i;
	for (i = 0; i + 1 < w->nprior; i++)
		if (w->prior[i].size < (int64_t)S3D_MIN_PART)
			return wfail(w, err, S3D_E_PROTOCOL, "LIST",
				     "part %d of upload %s has %lld bytes: under 5 MiB and not the last",
				     w->prior[i].number, s3d_buf_str(&w->upload_id),
				     (long long)w->prior[i].size);
	w->short_last = w->nprior > 0 && w->prior[w->nprior - 1].size < (int64_t)S3D_MIN_PART;
	return S3D_OK;
}

/*
 * The upload to continue: the newest of this key's (the others aborted).
 * One without a usable part carries no byte: it is aborted as well, and the
 * writer goes on as if there was none.
 */
static int find_upload(s3d_writer *w, s3d_error *err)
{
	struct upload_scan s;
	size_t i, best = 0;
	int rc = uploads_of(w, &s, err);

	for (i = 1; rc == S3D_OK && i < s.n; i++)
		if (s.v[i].initiated >= s.v[best].initiated)
			best = i;
	if (rc == S3D_OK && s.n > 0) {
		rc = s3d_buf_appendz(&w->upload_id, s.v[best].id);
		if (rc != S3D_OK)
			rc = wfail(w, err, rc, "LIST", "upload id too long");
	}
	if (rc == S3D_OK && s.n > 1)
		rc = abort_others(w, &s, s.v[best].id, err);
	if (rc == S3D_OK && w->upload_id.len)
		rc = load_parts(w, err);
	if (rc == S3D_OK && w->upload_id.len && w->nprior == 0) {
		rc = s3d_abort_multipart(w->c, w->bucket, s3d_buf_str(&w->key),
					 s3d_buf_str(&w->upload_id), err);
		if (rc == S3D_E_NOTFOUND)
			rc = S3D_OK;
		s3d_buf_reset(&w->upload_id);
		w->short_last = 0;
	}
	uploads_free(&s);
	return rc;
}

/* ---- moving bytes into parts ---- */

static void account(s3d_writer *w, size_t n)
{
	size_t ps = w->mcfg.part_size;

	w->submitted += (int)((w->fill + n) / ps);
	w->fill = (w->fill + n) % ps;
}

/* Copies n bytes into the mpu's part buffers (full parts go out on their own). */
static int mpu_put(s3d_writer *w, const uint8_t *p, size_t n, int count, s3d_error *err)
{
	uint8_t *dst = NULL;
	size_t room = 0;
	int rc = S3D_OK;

	while (rc == S3D_OK && n > 0) {
		rc = s3d_mpu_buffer(w->mpu, &dst, &room, err);
		if (rc != S3D_OK)
			break;
		if (room > n)
			room = n;
		memcpy(dst, p, room);
		rc = s3d_mpu_commit(w->mpu, room, err);
		if (rc != S3D_OK)
			break;
		account(w, room);
		if (count)
			w->size += (int64_t)room;
		p += room;
		n -= room;
	}
	note_memory(w);
	return rc;
}

/* Hands pend's buffer to the (new) mpu as its first part buffer. */
static int pend_to_mpu(s3d_writer *w, s3d_error *err)
{
	size_t n = w->pend.len;
	int rc = S3D_OK;

	if (w->pend.ptr) {
		rc = s3d_mpu_adopt(w->mpu, w->pend.ptr, n, err); /* takes the buffer */
		w->pend.ptr = NULL;
		if (rc == S3D_OK)
			account(w, n);
	}
	pend_free(&w->pend);
	note_memory(w); /* the adopted buffer now counts in the mpu's memory */
	return rc;
}

/* pend holds a full part: the upload starts now (lazily, never earlier). */
static int mpu_start_new(s3d_writer *w, s3d_error *err)
{
	s3d_error e;
	int rc = s3d_mpu_new(w->c, w->bucket, s3d_buf_str(&w->key), NULL, 1, &w->mcfg,
			     &w->mpu, err);

	if (rc != S3D_OK)
		return rc;
	w->first_part = 1;
	s3d_buf_reset(&w->upload_id);
	rc = s3d_buf_appendz(&w->upload_id, s3d_mpu_upload_id(w->mpu));
	if (rc != S3D_OK) { /* cannot happen (same bound as multipart.c): undo, keep pend */
		s3d_error_clear(&e);
		s3d_mpu_abort(w->mpu, &e);
		s3d_mpu_free(w->mpu);
		w->mpu = NULL;
		s3d_buf_reset(&w->upload_id);
		return wfail(w, err, rc, "POST", "upload id too long");
	}
	return pend_to_mpu(w, err);
}

/* An upload exists: continue it after its parts (no request), the tail first. */
static int mpu_continue(s3d_writer *w, s3d_error *err)
{
	int first = (int)w->nprior + 1;
	int rc = s3d_mpu_new(w->c, w->bucket, s3d_buf_str(&w->key), s3d_buf_str(&w->upload_id),
			     first, &w->mcfg, &w->mpu, err);

	if (rc != S3D_OK)
		return rc;
	w->first_part = first;
	return pend_to_mpu(w, err);
}

/* ---- continuing a committed object ---- */

static int add_prior(s3d_writer *w, const s3d_part *p, size_t *cap)
{
	s3d_part *v;

	if (w->nprior == *cap) {
		size_t ncap = *cap ? *cap * 2 : 4;

		v = realloc(w->prior, ncap * sizeof(*v));
		if (!v)
			return S3D_E_NOMEM;
		w->prior = v;
		*cap = ncap;
	}
	w->prior[w->nprior++] = *p;
	w->prior_bytes += p->size;
	return S3D_OK;
}

/* Server-side copy of the object as the upload's first parts (<= 5 GiB each,
 * equal sizes, so every one is >= 5 MiB as the object is). */
static int copy_committed(s3d_writer *w, int64_t size, s3d_error *err)
{
	int64_t nparts = (size + COPY_PART_MAX - 1) / COPY_PART_MAX, each, first = 0;
	s3d_error e;
	s3d_part p;
	size_t cap = 0;
	int i, rc;

	rc = s3d_create_multipart(w->c, w->bucket, s3d_buf_str(&w->key), s3d_driver_put_opts(w->d),
				  &w->upload_id, err);
	if (rc != S3D_OK)
		return rc;
	each = (size + nparts - 1) / nparts;
	for (i = 1; rc == S3D_OK && first < size; i++) {
		int64_t last = first + each - 1 < size - 1 ? first + each - 1 : size - 1;

		rc = s3d_upload_part_copy(w->c, w->bucket, s3d_buf_str(&w->key),
					  s3d_buf_str(&w->upload_id), i, w->bucket,
					  s3d_buf_str(&w->key), first, last, &p, err);
		if (rc == S3D_OK && (rc = add_prior(w, &p, &cap)) != S3D_OK)
			wfail(w, err, rc, "PUT", "out of memory");
		first = last + 1;
	}
	if (rc != S3D_OK) { /* leave no upload behind that a later open would adopt */
		s3d_error_clear(&e);
		s3d_abort_multipart(w->c, w->bucket, s3d_buf_str(&w->key),
				    s3d_buf_str(&w->upload_id), &e);
		s3d_buf_reset(&w->upload_id);
		w->nprior = 0;
		w->prior_bytes = 0;
	}
	return rc;
}

/* No upload and no tail: go on after the committed object, if any. */
static int continue_committed(s3d_writer *w, s3d_error *err)
{
	s3d_obj_info info;
	int rc;

	memset(&info, 0, sizeof(info));
	rc = s3d_head_object(w->c, w->bucket, s3d_buf_str(&w->key), 0, &info, err);
	if (rc == S3D_E_NOTFOUND)
		return S3D_OK; /* nothing at all: an empty start */
	if (rc != S3D_OK || info.size <= 0)
		return rc;
	if (info.size >= (int64_t)S3D_MIN_PART)
		return copy_committed(w, info.size, err);
	rc = s3d_get_object(w->c, w->bucket, s3d_buf_str(&w->key), 0, -1, pend_sink, &w->pend,
			    NULL, err);
	if (rc == S3D_E_ABORTED)
		rc = wfail(w, err, S3D_E_TOOBIG, "GET", "object grew past a part while read");
	return rc;
}

/* ---- open ---- */

/* A new file: no upload of this key and no tail survive. */
static int open_fresh(s3d_writer *w, s3d_error *err)
{
	struct upload_scan s;
	struct tail_job j;
	int rc;

	tail_job_start(&j, w, 0);
	rc = uploads_of(w, &s, err);
	if (rc == S3D_OK)
		rc = abort_others(w, &s, NULL, err);
	uploads_free(&s);
	tail_job_wait(&j);
	if (j.rc == S3D_E_NOTFOUND)
		j.rc = S3D_OK;
	if (rc == S3D_OK && j.rc != S3D_OK) {
		rc = j.rc;
		if (err)
			*err = j.err;
	}
	s3d_buf_cleanup(&j.stamp);
	return rc;
}

/* Where the file stands in S3: upload + parts, tail, or a committed object. */
static int open_append(s3d_writer *w, s3d_error *err)
{
	struct tail_job j;
	int rc, tail_ok = 0;

	tail_job_start(&j, w, 1); /* GET tail into pend while the upload is looked up */
	rc = find_upload(w, err);
	tail_job_wait(&j);
	if (rc == S3D_OK && j.rc != S3D_OK) {
		rc = j.rc;
		if (err)
			*err = j.err;
	}
	if (rc == S3D_OK && j.found) {
		w->tail_present = 1;
		tail_ok = stamp_matches(w, s3d_buf_str(&j.stamp));
		if (!tail_ok) { /* stale: left by a writer whose later parts or commit superseded it */
			pend_free(&w->pend);
			rc = tail_delete(w, err);
		} else if (w->short_last) {
			rc = wfail(w, err, S3D_E_PROTOCOL, "GET",
				   "upload %s ends with a part under 5 MiB and has a tail",
				   s3d_buf_str(&w->upload_id));
		}
	}
	s3d_buf_cleanup(&j.stamp);
	if (rc == S3D_OK && !w->upload_id.len && !tail_ok)
		rc = continue_committed(w, err);
	note_memory(w);
	w->size = w->prior_bytes + (int64_t)w->pend.len;
	if (rc == S3D_OK && w->upload_id.len)
		rc = mpu_continue(w, err);
	return rc;
}

int s3d_writer_open(s3d_driver *d, const char *path, int append, s3d_writer **out,
		    s3d_error *err)
{
	s3d_writer *w;
	int rc;

	if (!out)
		return wfail(NULL, err, S3D_E_INVAL, "OPEN", "no out parameter");
	*out = NULL;
	if (!d || !path)
		return wfail(NULL, err, S3D_E_INVAL, "OPEN", "no driver or path");
	w = calloc(1, sizeof(*w));
	if (!w)
		return wfail(NULL, err, S3D_E_NOMEM, "OPEN", "out of memory");
	w->d = d;
	w->c = d->client;
	w->bucket = d->bucket;
	w->state = W_OPEN;
	s3d_buf_init(&w->key, KEY_BUF_MAX);
	s3d_buf_init(&w->tail_key, KEY_BUF_MAX);
	s3d_buf_init(&w->upload_id, ID_MAX);
	w->mcfg.part_size = d->cfg.part_size ? d->cfg.part_size : DEFAULT_PART;
	w->mcfg.max_in_flight = d->cfg.parts_in_flight > 0 ? d->cfg.parts_in_flight
							   : DEFAULT_IN_FLIGHT;
	w->mcfg.put_opts = s3d_driver_put_opts(d);
	w->mcfg.budget = d->budget;
	w->pend.max = w->mcfg.part_size;
	rc = s3d_driver_key(d, path, &w->key);
	if (rc != S3D_OK)
		rc = wfail(w, err, rc, "OPEN", "invalid path %s", path);
	else if (w->mcfg.part_size < S3D_MIN_PART)
		rc = wfail(w, err, S3D_E_INVAL, "OPEN", "part size under 5 MiB");
	else if ((rc = s3d_upload_tail_key(d, s3d_buf_str(&w->key), &w->tail_key)) != S3D_OK)
		rc = wfail(w, err, rc, "OPEN", "cannot name the tail object");
	if (rc == S3D_OK)
		rc = append ? open_append(w, err) : open_fresh(w, err);
	if (rc != S3D_OK) {
		s3d_writer_free(w);
		return rc;
	}
	w->opened_size = w->size;
	*out = w;
	return S3D_OK;
}

/* ---- write ---- */

int s3d_writer_write(s3d_writer *w, const void *p, size_t n, s3d_error *err)
{
	const uint8_t *src = p;
	size_t k;
	int rc;

	if (!w)
		return wfail(NULL, err, S3D_E_INVAL, "WRITE", "no writer");
	rc = check_state(w, "WRITE", err);
	if (rc != S3D_OK || n == 0)
		return rc;
	if (!p)
		return wfail(w, err, S3D_E_INVAL, "WRITE", "NULL data");
	if (w->short_last)
		return wfail(w, err, S3D_E_PROTOCOL, "WRITE",
			     "upload %s ends with a part under 5 MiB: nothing can follow it",
			     s3d_buf_str(&w->upload_id));
	while (n > 0) {
		if (w->mpu)
			return mpu_put(w, src, n, 1, err);
		if (w->pend.len < w->pend.max) {
			k = w->pend.max - w->pend.len < n ? w->pend.max - w->pend.len : n;
			rc = pend_append(&w->pend, src, k);
			if (rc != S3D_OK)
				return wfail(w, err, rc, "WRITE", "out of memory");
			note_memory(w);
			w->size += (int64_t)k;
			src += k;
			n -= k;
		}
		if (w->pend.len == w->pend.max && (rc = mpu_start_new(w, err)) != S3D_OK)
			return rc;
	}
	return S3D_OK;
}

int64_t s3d_writer_size(const s3d_writer *w)
{
	return w ? w->size : 0;
}

size_t s3d_writer_peak_memory(const s3d_writer *w)
{
	size_t m;

	if (!w)
		return 0;
	m = w->pend.len + s3d_mpu_peak_memory(w->mpu);
	return m > w->peak ? m : w->peak;
}

/* ---- close ---- */

/* R bytes left after the parts: a part when S3 takes it as one, else the tail. */
static int persist_rest(s3d_writer *w, int part_number, int64_t offset, const uint8_t *p,
			size_t r, s3d_error *err)
{
	s3d_part part;
	int rc;

	if (r >= S3D_MIN_PART) {
		rc = s3d_upload_part(w->c, w->bucket, s3d_buf_str(&w->key),
				     s3d_buf_str(&w->upload_id), part_number, p, r, NULL, &part, err);
		if (rc == S3D_OK && w->tail_present)
			rc = tail_delete(w, err);
		return rc;
	}
	if (r > 0)
		return tail_put(w, offset, p, r, err);
	return w->tail_present ? tail_delete(w, err) : S3D_OK;
}

static int close_pend(s3d_writer *w, s3d_error *err)
{
	s3d_error e;
	int rc;

	if (w->pend.len < S3D_MIN_PART)
		return persist_rest(w, 1, 0, w->pend.ptr, w->pend.len, err);
	/* a part size over 5 MiB left a part's worth: it becomes part 1 */
	rc = s3d_create_multipart(w->c, w->bucket, s3d_buf_str(&w->key), s3d_driver_put_opts(w->d),
				  &w->upload_id, err);
	if (rc != S3D_OK)
		return rc;
	rc = persist_rest(w, 1, 0, w->pend.ptr, w->pend.len, err);
	if (rc != S3D_OK) {
		s3d_error_clear(&e);
		s3d_abort_multipart(w->c, w->bucket, s3d_buf_str(&w->key),
				    s3d_buf_str(&w->upload_id), &e);
		s3d_buf_reset(&w->upload_id);
	}
	return rc;
}

static int close_mpu(s3d_writer *w, s3d_error *err)
{
	const s3d_part *parts = NULL;
	uint8_t *p = NULL;
	size_t np = 0, room = 0, i;
	int64_t offset = w->prior_bytes;
	int rc = s3d_mpu_drain(w->mpu, &parts, &np, err);

	if (rc != S3D_OK)
		return rc;
	if (np != (size_t)w->submitted)
		return wfail(w, err, S3D_E_PROTOCOL, "CLOSE", "%zu parts sent, %d expected", np,
			     w->submitted);
	for (i = 0; i < np; i++)
		offset += parts[i].size;
	if (w->fill > 0) {
		/* the filling buffer starts fill bytes before its free room */
		rc = s3d_mpu_buffer(w->mpu, &p, &room, err);
		if (rc != S3D_OK)
			return rc;
		if (room != w->mcfg.part_size - w->fill)
			return wfail(w, err, S3D_E_PROTOCOL, "CLOSE", "part buffer out of step");
		p -= w->fill;
	}
	return persist_rest(w, w->first_part + (int)np, offset, p, w->fill, err);
}

/*
 * After a failed Close: the size a later Writer(append) will find (a probe
 * opens one), which the writer reports from then on. distribution's upload
 * handlers ignore Close's error and give the client Size() as the upload's
 * offset: bytes S3 does not hold would be promised, and the client's next
 * request refused (416, "upload resumed at wrong offset"). With the true
 * offset a client resends the rest. When the probe fails too, the size
 * stays.
 */
static void durable_size(s3d_writer *w)
{
	s3d_writer *probe = NULL;
	s3d_buf path;
	s3d_error e;

	s3d_buf_init(&path, KEY_BUF_MAX);
	s3d_error_clear(&e);
	if (s3d_driver_path_of(w->d, (const char *)w->key.ptr, w->key.len, &path) == S3D_OK &&
	    s3d_writer_open(w->d, s3d_buf_str(&path), 1, &probe, &e) == S3D_OK)
		w->size = probe->size;
	s3d_writer_free(probe); /* never closed: it changes nothing */
	s3d_buf_cleanup(&path);
}

int s3d_writer_close(s3d_writer *w, s3d_error *err)
{
	int rc = S3D_OK;

	if (!w)
		return wfail(NULL, err, S3D_E_INVAL, "CLOSE", "no writer");
	if (w->state == W_COMMITTED || w->state == W_CANCELLED)
		return S3D_OK; /* distribution closes every writer, committed or not */
	if (w->state == W_CLOSED)
		return check_state(w, "CLOSE", err);
	w->state = W_CLOSED;
	if (w->size != w->opened_size) /* else S3 already holds exactly this */
		rc = w->mpu ? close_mpu(w, err) : close_pend(w, err);
	note_memory(w);
	pend_free(&w->pend);
	s3d_mpu_free(w->mpu);
	w->mpu = NULL;
	if (rc != S3D_OK)
		durable_size(w);
	return rc;
}

/* ---- commit and cancel ---- */

/*
 * A Complete whose answer was lost and whose retry found the upload gone
 * (NoSuchUpload): the object is ours if it has this writer's size and its
 * multipart ETag ("...-N") counts our parts.
 */
static int completed_anyway(s3d_writer *w)
{
	const s3d_part *parts = NULL;
	const char *dash;
	s3d_obj_info info;
	s3d_error e;
	size_t np = 0;
	char want[32];

	s3d_error_clear(&e);
	memset(&info, 0, sizeof(info));
	if (s3d_mpu_drain(w->mpu, &parts, &np, &e) != S3D_OK ||
	    s3d_head_object(w->c, w->bucket, s3d_buf_str(&w->key), 0, &info, &e) != S3D_OK ||
	    info.size != w->size)
		return 0;
	snprintf(want, sizeof(want), "-%zu\"", w->nprior + np);
	dash = strrchr(info.etag, '-');
	return dash && strcmp(dash, want) == 0;
}

int s3d_writer_commit(s3d_writer *w, s3d_error *err)
{
	s3d_error e;
	int rc;

	if (!w)
		return wfail(NULL, err, S3D_E_INVAL, "COMMIT", "no writer");
	rc = check_state(w, "COMMIT", err);
	if (rc != S3D_OK)
		return rc;
	w->state = W_COMMITTED;
	if (w->mpu) {
		rc = s3d_mpu_complete(w->mpu, w->prior, w->nprior, NULL, err);
		if (rc == S3D_E_NOTFOUND && completed_anyway(w)) {
			rc = S3D_OK;
		} else if (rc != S3D_OK) {
			s3d_error_clear(&e);
			s3d_mpu_abort(w->mpu, &e);
		}
	} else if (w->upload_id.len) { /* cannot happen: an upload always has its mpu */
		rc = wfail(w, err, S3D_E_PROTOCOL, "COMMIT", "upload %s without its parts",
			   s3d_buf_str(&w->upload_id));
	} else {
		/* never an upload: the small-blob path, one PutObject (maybe empty) */
		rc = s3d_put_object(w->c, w->bucket, s3d_buf_str(&w->key),
				    w->pend.ptr ? w->pend.ptr : (const uint8_t *)"", w->pend.len,
				    s3d_driver_put_opts(w->d), NULL, err);
	}
	if (rc == S3D_OK && w->tail_present)
		rc = tail_delete(w, err);
	w->commit_failed = rc != S3D_OK;
	note_memory(w);
	pend_free(&w->pend);
	s3d_mpu_free(w->mpu);
	w->mpu = NULL;
	return rc;
}

int s3d_writer_cancel(s3d_writer *w, s3d_error *err)
{
	s3d_error e;
	int rc, trc;

	if (!w)
		return wfail(NULL, err, S3D_E_INVAL, "CANCEL", "no writer");
	/* after a failed Commit, distribution cleans up with Cancel: let it */
	if (!(w->state == W_COMMITTED && w->commit_failed) &&
	    (rc = check_state(w, "CANCEL", err)) != S3D_OK)
		return rc;
	w->state = W_CANCELLED;
	rc = S3D_OK;
	if (w->mpu)
		rc = s3d_mpu_abort(w->mpu, err);
	else if (w->upload_id.len)
		rc = s3d_abort_multipart(w->c, w->bucket, s3d_buf_str(&w->key),
					 s3d_buf_str(&w->upload_id), err);
	if (rc == S3D_E_NOTFOUND) /* gone already */
		rc = S3D_OK;
	/* whether or not this writer saw one: a tail must not outlive a cancel */
	s3d_error_clear(&e);
	trc = tail_delete(w, &e);
	if (rc == S3D_OK && trc != S3D_OK) {
		rc = trc;
		if (err)
			*err = e;
	}
	note_memory(w);
	pend_free(&w->pend);
	s3d_mpu_free(w->mpu);
	w->mpu = NULL;
	return rc;
}

void s3d_writer_free(s3d_writer *w)
{
	if (!w)
		return;
	s3d_mpu_free(w->mpu);
	pend_free(&w->pend);
	s3d_buf_cleanup(&w->key);
	s3d_buf_cleanup(&w->tail_key);
	s3d_buf_cleanup(&w->upload_id);
	free(w->prior);
	free(w);
}
