/*
 * Expiry of presigned upload sessions, in three passes, each safe to repeat
 * and to run from several processes at once:
 *   1. the node's index: open (and stale finalizing) sessions past their end;
 *   2. the S3 markers: sessions of every process on the bucket;
 *   3. orphans: temp objects and multipart uploads under the uploads prefix
 *      with no marker, older than the session TTL (a crash between a
 *      marker's removal and the bytes', or bytes never recorded).
 * A session is claimed in the index first (its status -> EXPIRED), then its
 * bytes, stock upload directory and marker go; a clean-up that fails leaves
 * the marker, so pass 2 of a later sweep finishes it.
 */
#include "service.h"

#include "buf.h"
#include "err.h"

#include <stdio.h>
#include <string.h>

#define KEY_BUF_MAX 2048
#define LIST_PAGE 1000
#define LIST_PAGES_MAX 1000000L

struct sweeper {
	s3d_service *svc;
	int64_t now;
	s3d_sweep_stats *st;
	int done;               /* steps that succeeded */
	int first_rc;
	s3d_error first_err;
	const char *prefix;     /* of the listing in progress */
	s3d_buf last;           /* its last key (the next page starts after it) */
};

/* Counts one step: a success, or an error (the first one kept). */
static void note(struct sweeper *w, int rc, const s3d_error *e)
{
	if (rc == S3D_OK) {
		w->done++;
		return;
	}
	w->st->errors++;
	if (w->first_rc == S3D_OK) {
		w->first_rc = rc;
		if (e)
			w->first_err = *e;
	}
}

/* A finalize holds the session and may still be working. */
static int finalize_fresh(const struct sweeper *w, const s3d_session *s)
{
	return s->status == S3D_SESSION_FINALIZING &&
	       s->updated + w->svc->cfg.finalize_stale > w->now;
}

/* The index record s -> EXPIRED, from the status it has. CONFLICT: it
 * changed meanwhile (another sweeper, a finalize). */
static int mark_expired(struct sweeper *w, const s3d_session *s, s3d_error *e)
{
	s3d_session next = *s;

	next.status = S3D_SESSION_EXPIRED;
	next.updated = w->now;
	snprintf(next.detail, sizeof(next.detail), "expired");
	return s3d_index_put(w->svc->ix, &next, S3D_SESSION_BIT(s->status), NULL, e);
}

/* *there = whether key (of name_fn for uuid) exists. */
static int key_exists(struct sweeper *w, const char *uuid,
		      int (*name_fn)(const s3d_service *, const char *, s3d_buf *), int *there,
		      s3d_error *e)
{
	s3d_buf key;
	int rc;

	*there = 0;
	s3d_buf_init(&key, KEY_BUF_MAX);
	rc = name_fn(w->svc, uuid, &key);
	if (rc == S3D_OK)
		rc = s3d_head_object(w->svc->d->client, w->svc->d->bucket, s3d_buf_str(&key), 0,
				     NULL, e);
	*there = rc == S3D_OK;
	if (rc == S3D_E_NOTFOUND)
		rc = S3D_OK;
	s3d_buf_cleanup(&key);
	return rc;
}

/*
 * Bytes, stock upload directory and marker of s. S3 answers a delete of an
 * absent key as a success, so the stats count the temp object and the
 * marker only when they were there (marker_seen: it was just read). A
 * direct session never wrote its temp key.
 */
static int clean_session(struct sweeper *w, const s3d_session *s, int marker_seen,
			 s3d_error *e)
{
	s3d_sweep_stats local;
	int rc = S3D_OK, temp = 0, marker = marker_seen;

	memset(&local, 0, sizeof(local));
	if (!s->direct)
		rc = key_exists(w, s->uuid, s3d_svc_temp_key, &temp, e);
	if (rc == S3D_OK && !marker_seen)
		rc = key_exists(w, s->uuid, s3d_svc_marker_key, &marker, e);
	if (rc == S3D_OK) {
		rc = s3d_svc_discard_bytes(w->svc, s, &local, e);
		w->st->aborted_uploads += local.aborted_uploads;
	}
	if (rc == S3D_OK) {
		w->st->deleted_objects += temp;
		rc = s3d_svc_remove_upload(w->svc, s, e);
	}
	if (rc == S3D_OK)
		w->st->deleted_objects += marker;
	return rc;
}

/* ------------------------------------------------------ 1. the index */

static int sweep_indexed(void *ud, const s3d_session *s)
{
	struct sweeper *w = ud;
	s3d_error e;
	int rc;

	if (finalize_fresh(w, s))
		return 0;
	s3d_error_clear(&e);
	rc = mark_expired(w, s, &e);
	if (rc == S3D_E_CONFLICT)
		return 0;
	if (rc == S3D_OK) {
		w->st->expired++;
		rc = clean_session(w, s, 0, &e);
	}
	note(w, rc, &e);
	return 0;
}

/* An ended session one TTL past its end (and its last change): its record
 * leaves the index. */
static int prune_ended(void *ud, const s3d_session *s)
{
	struct sweeper *w = ud;
	s3d_error e;
	int rc;

	/* and ended a TTL ago: a session expired just now keeps its record */
	if (s->updated > w->now - w->svc->cfg.session_ttl)
		return 0;
	s3d_error_clear(&e);
	rc = s3d_index_delete(w->svc->ix, s->uuid, &e);
	if (rc == S3D_OK)
		w->st->pruned++;
	note(w, rc == S3D_E_NOTFOUND ? S3D_OK : rc, &e);
	return 0;
}

/* ------------------------------------------------------ listing pages */

/*
 * Every object below prefix, a page at a time, each page started after the
 * last key of the previous one (the callbacks delete what they list: a
 * continuation token is not kept stable across deletes by every server).
 */
static int list_all(struct sweeper *w, const char *prefix, s3d_list_fn fn, s3d_error *err)
{
	s3d_list_opts o;
	s3d_buf token, after;
	long pages = 0;
	int rc = S3D_OK, more = 1;

	s3d_buf_init(&token, 8192);
	s3d_buf_init(&after, KEY_BUF_MAX);
	w->prefix = prefix;
	while (rc == S3D_OK && more && pages++ < LIST_PAGES_MAX) {
		memset(&o, 0, sizeof(o));
		o.prefix = prefix;
		o.start_after = after.len ? s3d_buf_str(&after) : NULL;
		o.max_keys = LIST_PAGE;
		o.single_page = 1;
		o.continuation = &token;
		s3d_buf_reset(&token);
		s3d_buf_reset(&w->last);
		rc = s3d_list_objects(w->svc->d->client, w->svc->d->bucket, &o, fn, w, err);
		more = token.len > 0 && w->last.len > 0;
		if (rc == S3D_OK && more) {
			s3d_buf_reset(&after);
			rc = s3d_buf_append(&after, w->last.ptr, w->last.len);
		}
	}
	s3d_buf_cleanup(&token);
	s3d_buf_cleanup(&after);
	return rc;
}

/* The uuid named by a key below w->prefix, or NULL (not one of ours). */
static const char *listed_uuid(struct sweeper *w, const s3d_list_entry *e)
{
	size_t n = strlen(w->prefix);
	const char *uuid;

	s3d_buf_reset(&w->last);
	if (s3d_buf_appendz(&w->last, e->key) != S3D_OK)
		s3d_buf_reset(&w->last); /* cannot be: keys are at most 1 KiB */
	if (e->kind != S3D_ENTRY_OBJECT && e->kind != S3D_ENTRY_UPLOAD)
		return NULL;
	if (strncmp(e->key, w->prefix, n) != 0)
		return NULL;
	uuid = e->key + n;
	return s3d_svc_check_uuid(uuid, NULL) == S3D_OK ? uuid : NULL;
}

/* ------------------------------------------------------ 2. the markers */

/* A marker that does not decode: removed once it is older than any
 * session could be. */
static void sweep_bad_marker(struct sweeper *w, const s3d_list_entry *e, const char *uuid)
{
	s3d_error e2;
	int rc;

	if (!e->last_modified || e->last_modified + w->svc->cfg.session_ttl > w->now)
		return;
	s3d_error_clear(&e2);
	rc = s3d_svc_marker_delete(w->svc, uuid, &e2);
	if (rc == S3D_OK)
		w->st->deleted_objects++;
	note(w, rc, &e2);
}

/*
 * The session of an expired marker. Its index record, when this node has
 * one, is claimed first unless it already ended; a fresh finalize (by the
 * record or the marker) keeps it.
 */
static int sweep_marked(struct sweeper *w, const s3d_session *m, s3d_error *e)
{
	s3d_session ix;
	int rc = s3d_index_get(w->svc->ix, m->uuid, &ix, e), counted = 0;

	if (rc == S3D_E_NOTFOUND) {
		counted = !(S3D_SESSION_BIT(m->status) & S3D_SVC_TERMINAL);
		rc = S3D_OK;
	} else if (rc == S3D_OK && finalize_fresh(w, &ix)) {
		return S3D_OK;
	} else if (rc == S3D_OK && !(S3D_SESSION_BIT(ix.status) & S3D_SVC_TERMINAL)) {
		rc = mark_expired(w, &ix, e);
		if (rc == S3D_E_CONFLICT)
			return S3D_OK; /* changed meanwhile: the next sweep looks again */
		counted = rc == S3D_OK;
	}
	if (rc != S3D_OK)
		return rc;
	w->st->expired += counted;
	return clean_session(w, m, 1, e);
}

static int sweep_marker(void *ud, const s3d_list_entry *e)
{
	struct sweeper *w = ud;
	const char *uuid = listed_uuid(w, e);
	s3d_session m;
	s3d_error e2;
	int rc;

	if (!uuid)
		return 0;
	s3d_error_clear(&e2);
	rc = s3d_svc_marker_get(w->svc, uuid, &m, &e2);
	if (rc == S3D_E_NOTFOUND)
		return 0; /* ended meanwhile */
	if (rc == S3D_E_PROTOCOL) {
		sweep_bad_marker(w, e, uuid);
		return 0;
	}
	if (rc == S3D_OK && (m.expires > w->now || finalize_fresh(w, &m)))
		return 0;
	if (rc == S3D_OK)
		rc = sweep_marked(w, &m, &e2);
	note(w, rc, &e2);
	return 0;
}

/* ------------------------------------------------------ 3. orphans */

/* 1 when the uuid's marker exists, 0 when not, -1 on error (in e). */
static int has_marker(struct sweeper *w, const char *uuid, s3d_error *e)
{
	s3d_buf key;
	int rc;

	s3d_buf_init(&key, KEY_BUF_MAX);
	rc = s3d_svc_marker_key(w->svc, uuid, &key);
	if (rc == S3D_OK)
		rc = s3d_head_object(w->svc->d->client, w->svc->d->bucket, s3d_buf_str(&key), 0,
				     NULL, e);
	s3d_buf_cleanup(&key);
	if (rc == S3D_E_NOTFOUND)
		return 0;
	if (rc != S3D_OK) {
		note(w, rc, e);
		return -1;
	}
	return 1;
}

/* Older than any session could be (0: the server did not say: kept). */
static int orphan_age(const struct sweeper *w, int64_t t)
{
	return t > 0 && t + w->svc->cfg.session_ttl <= w->now;
}

static int sweep_temp_object(void *ud, const s3d_list_entry *e)
{
	struct sweeper *w = ud;
	const char *uuid = listed_uuid(w, e);
	s3d_error e2;
	int rc;

	if (!uuid || !orphan_age(w, e->last_modified))
		return 0;
	s3d_error_clear(&e2);
	if (has_marker(w, uuid, &e2) != 0)
		return 0;
	rc = s3d_delete_object(w->svc->d->client, w->svc->d->bucket, e->key, &e2);
	if (rc == S3D_OK)
		w->st->deleted_objects++;
	note(w, rc == S3D_E_NOTFOUND ? S3D_OK : rc, &e2);
	return 0;
}

static int sweep_temp_upload(void *ud, const s3d_list_entry *e)
{
	struct sweeper *w = ud;
	const char *uuid = listed_uuid(w, e);
	s3d_error e2;
	int rc;

	if (!uuid || e->kind != S3D_ENTRY_UPLOAD || !orphan_age(w, e->last_modified))
		return 0;
	s3d_error_clear(&e2);
	if (has_marker(w, uuid, &e2) != 0)
		return 0;
	rc = s3d_abort_multipart(w->svc->d->client, w->svc->d->bucket, e->key, e->upload_id, &e2);
	if (rc == S3D_OK)
		w->st->aborted_uploads++;
	note(w, rc == S3D_E_NOTFOUND ? S3D_OK : rc, &e2);
	return 0;
}

static void sweep_orphans(struct sweeper *w, const char *prefix)
{
	s3d_list_opts o;
	s3d_error e;
	int rc;

	s3d_error_clear(&e);
	rc = list_all(w, prefix, sweep_temp_object, &e);
	note(w, rc, &e);
	/* uploads pages go by key and upload id markers: stable under aborts */
	memset(&o, 0, sizeof(o));
	o.prefix = prefix;
	w->prefix = prefix;
	s3d_error_clear(&e);
	rc = s3d_list_multipart_uploads(w->svc->d->client, w->svc->d->bucket, &o,
					sweep_temp_upload, w, &e);
	note(w, rc, &e);
}

/* ------------------------------------------------------ the sweep */

static int sweep_passes(struct sweeper *w, s3d_error *err)
{
	s3d_buf sessions, uploads;
	s3d_error e;
	int rc;

	s3d_buf_init(&sessions, KEY_BUF_MAX);
	s3d_buf_init(&uploads, KEY_BUF_MAX);
	rc = s3d_buf_printf(&sessions, "%s%s", w->svc->d->root, S3D_SVC_SESSIONS_DIR);
	if (rc == S3D_OK)
		rc = s3d_buf_printf(&uploads, "%s%s", w->svc->d->root, S3D_SVC_UPLOADS_DIR);
	if (rc != S3D_OK) {
		s3d_err_set(err, rc, "root directory too long");
		goto out;
	}
	s3d_error_clear(&e);
	rc = s3d_index_scan_expired(w->svc->ix, w->now, S3D_SVC_OPEN |
				    S3D_SESSION_BIT(S3D_SESSION_FINALIZING), sweep_indexed, w, &e);
	note(w, rc, &e);
	s3d_error_clear(&e);
	rc = s3d_index_scan_expired(w->svc->ix, w->now - w->svc->cfg.session_ttl,
				    S3D_SVC_TERMINAL, prune_ended, w, &e);
	note(w, rc, &e);
	s3d_error_clear(&e);
	rc = list_all(w, s3d_buf_str(&sessions), sweep_marker, &e);
	note(w, rc, &e);
	sweep_orphans(w, s3d_buf_str(&uploads));
	/* a hard error only when nothing could be done at all */
	rc = w->done == 0 ? w->first_rc : S3D_OK;
	if (rc != S3D_OK && err)
		*err = w->first_err;
out:
	s3d_buf_cleanup(&sessions);
	s3d_buf_cleanup(&uploads);
	return rc;
}

int s3d_service_sweep(s3d_service *svc, time_t now, s3d_sweep_stats *st, s3d_error *err)
{
	struct sweeper w;
	s3d_sweep_stats local;
	int rc;

	if (!svc)
		return s3d_err_set(err, S3D_E_INVAL, "missing argument");
	memset(&w, 0, sizeof(w));
	memset(&local, 0, sizeof(local));
	w.svc = svc;
	w.now = (int64_t)(now ? now : time(NULL));
	w.st = st ? st : &local;
	memset(w.st, 0, sizeof(*w.st));
	s3d_error_clear(&w.first_err);
	s3d_buf_init(&w.last, KEY_BUF_MAX);
	rc = sweep_passes(&w, err);
	s3d_buf_cleanup(&w.last);
	return rc;
}
