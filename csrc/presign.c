/*
 * Presigned upload sessions: presign (open a session, hand out fresh URLs),
 * status (what S3 holds) and cancel. The record lives in the index and, for
 * other processes, in the S3 session marker (service.c).
 *
 * A presign call runs: check the request, find or create the session, open
 * its multipart upload once (multipart mode), commit the record to the
 * index, sign the URLs. A concurrent change seen at the commit makes the
 * call start over once.
 */
#include "service.h"

#include "buf.h"
#include "err.h"
#include "s3_client.h"
#include "upload.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define URL_MAX (16u * 1024u)
#define HEADERS_MAX (8u * 1024u)
#define PART_URLS_MAX ((size_t)S3D_SVC_MAX_PART_URLS * URL_MAX)
#define KEY_BUF_MAX 2048
#define MiB (1024ll * 1024)
#define MAX_PART_SIZE (5ll * 1024 * MiB)  /* S3's UploadPart and single PUT limit */
#define PRESIGN_ATTEMPTS 2

void s3d_presign_result_init(s3d_presign_result *r)
{
	memset(r, 0, sizeof(*r));
	s3d_buf_init(&r->url, URL_MAX);
	s3d_buf_init(&r->headers, HEADERS_MAX);
	s3d_buf_init(&r->part_urls, PART_URLS_MAX);
	s3d_session_init(&r->session);
}

void s3d_presign_result_cleanup(s3d_presign_result *r)
{
	if (!r)
		return;
	if (r->pending)
		s3d_index_op_finish(r->pending, NULL, NULL);
	r->pending = NULL;
	s3d_buf_cleanup(&r->url);
	s3d_buf_cleanup(&r->headers);
	s3d_buf_cleanup(&r->part_urls);
}

void s3d_upload_status_cleanup(s3d_upload_status *st)
{
	if (!st)
		return;
	free(st->parts);
	st->parts = NULL;
	st->nparts = 0;
}

static time_t now_of(time_t now)
{
	return now ? now : time(NULL);
}

/* ------------------------------------------------------------- requests */

/* A presign request after its checks: digest "" when none declared. */
struct preq {
	const s3d_presign_request *rq;
	const char *digest;
	uint8_t raw[32];
	int first, count;
	time_t now;
};

static int check_parts(const s3d_presign_request *rq, struct preq *p, s3d_error *err)
{
	p->first = rq->first_part ? rq->first_part : 1;
	p->count = rq->parts;
	if (p->count < 1 || p->count > S3D_SVC_MAX_PART_URLS)
		return s3d_err_set(err, S3D_E_INVAL, "parts must be 1 to %d", S3D_SVC_MAX_PART_URLS);
	if (p->first < 1 || p->first > S3D_SVC_MAX_PARTS)
		return s3d_err_set(err, S3D_E_INVAL, "first_part must be 1 to %d", S3D_SVC_MAX_PARTS);
	if (p->first - 1 + p->count > S3D_SVC_MAX_PARTS)
		return s3d_err_set(err, S3D_E_INVAL, "part numbers end at %d", S3D_SVC_MAX_PARTS);
	return S3D_OK;
}

static int check_request(const s3d_presign_request *rq, struct preq *p, s3d_error *err)
{
	int rc;

	memset(p, 0, sizeof(*p));
	p->rq = rq;
	p->now = now_of(rq->now);
	rc = s3d_svc_check_repo(rq->repo, err);
	if (rc != S3D_OK)
		return rc;
	if (s3d_svc_check_uuid(rq->uuid, err) != S3D_OK)
		return s3d_err_set(err, S3D_E_NOTFOUND, "upload unknown");
	p->digest = rq->digest ? rq->digest : "";
	if (*p->digest && (rc = s3d_svc_parse_digest(p->digest, p->raw, err)) != S3D_OK)
		return rc;
	if (rq->size < -1)
		return s3d_err_set(err, S3D_E_INVAL, "invalid size %lld", (long long)rq->size);
	if (!rq->multipart && rq->size > MAX_PART_SIZE)
		return s3d_err_set(err, S3D_E_INVAL,
				   "a single PUT takes at most 5 GiB: presign parts instead");
	if (rq->multipart && rq->size > MAX_PART_SIZE * S3D_SVC_MAX_PARTS)
		return s3d_err_set(err, S3D_E_INVAL, "size too large for %d parts",
				   S3D_SVC_MAX_PARTS);
	return rq->multipart ? check_parts(rq, p, err) : S3D_OK;
}

/* ---------------------------------------------------------- new session */

static int exists_sized(s3d_service *svc, const char *key, int *yes, s3d_error *err)
{
	s3d_obj_info info;
	int rc;

	memset(&info, 0, sizeof(info));
	rc = s3d_head_object(svc->d->client, svc->d->bucket, key, 0, &info, err);
	if (rc == S3D_E_NOTFOUND)
		return S3D_OK;
	if (rc == S3D_OK && info.size != 0)
		*yes = 1;
	return rc;
}

static int count_entry(void *ud, const s3d_list_entry *e)
{
	(void)e;
	(*(int *)ud)++;
	return 0;
}

struct part_probe {
	s3d_service *svc;
	const char *key;
	int found;
	int rc;
	s3d_error *err;
};

/* An upload of exactly the key with at least one part holds PATCH bytes. */
static int probe_upload(void *ud, const s3d_list_entry *e)
{
	struct part_probe *p = ud;
	s3d_list_opts o;
	int n = 0;

	if (e->kind != S3D_ENTRY_UPLOAD || strcmp(e->key, p->key) != 0)
		return 0;
	memset(&o, 0, sizeof(o));
	o.max_keys = 1;
	o.single_page = 1;
	p->rc = s3d_list_parts(p->svc->d->client, p->svc->d->bucket, e->key, e->upload_id, &o,
			       count_entry, &n, p->err);
	if (p->rc == S3D_E_NOTFOUND) /* aborted meanwhile */
		p->rc = S3D_OK;
	p->found = n > 0;
	return p->found || p->rc != S3D_OK;
}

/*
 * Whether the stock upload's data file received bytes, read-only:
 * s3d_writer_open(append) is not (it aborts stray uploads, deletes stale
 * tails and turns a committed object of 5 MiB or more into a new multipart
 * upload that s3d_writer_free would leave behind). The writer's state is
 * upload.h's: parts of an upload of the key, a tail object, or the object.
 */
static int has_patch_data(s3d_service *svc, const char *repo, const char *uuid, int *yes,
			  s3d_error *err)
{
	struct part_probe p;
	s3d_list_opts o;
	s3d_buf path, key, tail;
	int rc;

	*yes = 0;
	s3d_buf_init(&path, KEY_BUF_MAX);
	s3d_buf_init(&key, KEY_BUF_MAX);
	s3d_buf_init(&tail, KEY_BUF_MAX);
	rc = s3d_svc_upload_dir(repo, uuid, &path);
	if (rc == S3D_OK)
		rc = s3d_buf_appendz(&path, "/data");
	if (rc == S3D_OK)
		rc = s3d_driver_key(svc->d, s3d_buf_str(&path), &key);
	if (rc == S3D_OK)
		rc = s3d_upload_tail_key(svc->d, s3d_buf_str(&key), &tail);
	if (rc != S3D_OK) {
		s3d_err_set(err, rc, "cannot name the upload's data");
		goto out;
	}
	memset(&p, 0, sizeof(p));
	p.svc = svc;
	p.key = s3d_buf_str(&key);
	p.err = err;
	memset(&o, 0, sizeof(o));
	o.prefix = p.key;
	rc = s3d_list_multipart_uploads(svc->d->client, svc->d->bucket, &o, probe_upload, &p, err);
	if (rc == S3D_OK)
		rc = p.rc;
	*yes = p.found;
	if (rc == S3D_OK && !*yes)
		rc = exists_sized(svc, s3d_buf_str(&tail), yes, err);
	if (rc == S3D_OK && !*yes)
		rc = exists_sized(svc, s3d_buf_str(&key), yes, err);
out:
	s3d_buf_cleanup(&tail);
	s3d_buf_cleanup(&key);
	s3d_buf_cleanup(&path);
	return rc;
}

/* The stock upload exists under repo and has received no PATCH data. */
static int check_stock_upload(s3d_service *svc, const char *repo, const char *uuid,
			      s3d_error *err)
{
	s3d_stat st;
	s3d_buf path;
	int rc, data = 0;

	s3d_buf_init(&path, KEY_BUF_MAX);
	rc = s3d_svc_startedat_path(repo, uuid, &path);
	if (rc == S3D_OK)
		rc = s3d_driver_stat(svc->d, s3d_buf_str(&path), &st, err);
	if (rc == S3D_OK && st.is_dir)
		rc = S3D_E_NOTFOUND;
	if (rc == S3D_E_NOTFOUND)
		rc = s3d_err_set(err, rc, "upload unknown");
	if (rc == S3D_OK)
		rc = has_patch_data(svc, repo, uuid, &data, err);
	if (rc == S3D_OK && data)
		rc = s3d_err_set(err, S3D_E_STATE,
				 "upload already received data through PATCH; "
				 "presigning is only for fresh sessions");
	s3d_buf_cleanup(&path);
	return rc;
}

static int check_quotas(s3d_service *svc, const char *repo, int64_t size, s3d_error *err)
{
	int64_t used = 0, add = size > 0 ? size : 0;
	int rc;

	if (svc->cfg.max_blob_size > 0 && size > svc->cfg.max_blob_size)
		return s3d_err_set(err, S3D_E_QUOTA,
				   "declared size %lld exceeds maxblobsize (%lld bytes)",
				   (long long)size, (long long)svc->cfg.max_blob_size);
	if (svc->cfg.repo_quota <= 0)
		return S3D_OK;
	rc = s3d_service_repo_usage(svc, repo, &used, err);
	if (rc != S3D_OK)
		return rc;
	if (used > svc->cfg.repo_quota - add)
		return s3d_err_set(err, S3D_E_QUOTA,
				   "repository %s would exceed repoquota (%lld of %lld bytes used)",
				   repo, (long long)used, (long long)svc->cfg.repo_quota);
	return S3D_OK;
}

static int fill_record(s3d_service *svc, const struct preq *p, s3d_session *s, s3d_error *err)
{
	const s3d_presign_request *rq = p->rq;
	const char *user = rq->user ? rq->user : "";
	s3d_buf key;
	int rc;

	s3d_session_init(s);
	s->status = S3D_SESSION_PENDING;
	s->mode = rq->multipart ? S3D_MODE_MULTIPART : S3D_MODE_SINGLE;
	s->direct = !rq->multipart && *p->digest &&
		    (rq->size >= 0 || (svc->cfg.max_blob_size == 0 && svc->cfg.repo_quota == 0));
	s->declared_size = rq->size;
	s->created = s->updated = (int64_t)p->now;
	s->expires = (int64_t)p->now + svc->cfg.session_ttl;
	s3d_buf_init(&key, KEY_BUF_MAX);
	rc = s->direct ? s3d_svc_blob_key(svc, p->digest, &key)
		       : s3d_svc_temp_key(svc, rq->uuid, &key);
	if (rc == S3D_OK)
		rc = s3d_strlcpy(s->key, sizeof(s->key), s3d_buf_str(&key), key.len);
	if (rc == S3D_OK)
		rc = s3d_strlcpy(s->uuid, sizeof(s->uuid), rq->uuid, strlen(rq->uuid));
	if (rc == S3D_OK)
		rc = s3d_strlcpy(s->repo, sizeof(s->repo), rq->repo, strlen(rq->repo));
	if (rc == S3D_OK)
		rc = s3d_strlcpy(s->declared_digest, sizeof(s->declared_digest), p->digest,
				 strlen(p->digest));
	if (rc == S3D_OK && s3d_strlcpy(s->user, sizeof(s->user), user, strlen(user)) != S3D_OK)
		rc = s3d_err_set(err, S3D_E_INVAL, "user name too long");
	else if (rc != S3D_OK)
		s3d_err_set(err, rc, "session key or name too long");
	s3d_buf_cleanup(&key);
	return rc;
}

/* First presign of a stock upload. CONFLICT: created concurrently, *s then
 * holds the winner's record. */
static int create_session(s3d_service *svc, const struct preq *p, s3d_session *s,
			  s3d_error *err)
{
	s3d_session cur;
	int rc = check_stock_upload(svc, p->rq->repo, p->rq->uuid, err);

	if (rc == S3D_OK)
		rc = check_quotas(svc, p->rq->repo, p->rq->size, err);
	if (rc == S3D_OK)
		rc = fill_record(svc, p, s, err);
	if (rc == S3D_OK)
		rc = s3d_svc_save(svc, s, S3D_INDEX_ABSENT, &cur, err);
	if (rc == S3D_E_CONFLICT)
		*s = cur;
	return rc;
}

/* ----------------------------------------------------- existing session */

static const char *mode_name(int mode)
{
	return mode == S3D_MODE_MULTIPART ? "multipart" : "a single PUT";
}

/* The record allows this presign: open, same repository, mode, digest, size.
 * An omitted digest or size means "as opened". */
static int check_existing(const struct preq *p, const s3d_session *s, s3d_error *err)
{
	const s3d_presign_request *rq = p->rq;
	int want_mode = rq->multipart ? S3D_MODE_MULTIPART : S3D_MODE_SINGLE;
	int rc;

	if (strcmp(s->repo, rq->repo) != 0)
		return s3d_err_set(err, S3D_E_NOTFOUND, "upload unknown");
	/* an ended session is unknown as status, cancel and finalize say, and
	 * as every other process says once the stock upload and the marker
	 * are gone */
	rc = s3d_svc_check_open(s, (int64_t)p->now, err);
	if (rc != S3D_OK)
		return rc;
	if (s->status != S3D_SESSION_PENDING && s->status != S3D_SESSION_UPLOADING)
		return s3d_err_set(err, S3D_E_STATE, "the upload session is in an unknown state");
	if (s->mode != want_mode)
		return s3d_err_set(err, S3D_E_STATE, "the session was opened for %s",
				   mode_name(s->mode));
	if (*p->digest && strcmp(p->digest, s->declared_digest) != 0)
		return s3d_err_set(err, S3D_E_STATE, "the session was opened with digest \"%s\"",
				   s->declared_digest);
	if (rq->size >= 0 && rq->size != s->declared_size)
		return s3d_err_set(err, S3D_E_STATE, "the session was opened with size %lld",
				   (long long)s->declared_size);
	return S3D_OK;
}

/* ------------------------------------------------------------ multipart */

static int64_t round_mib(int64_t n)
{
	return (n + MiB - 1) / MiB * MiB;
}

static int64_t part_size_for(const s3d_service *svc, int64_t size)
{
	int64_t ps = round_mib(svc->cfg.part_size), need;

	if (size > 0) {
		need = round_mib((size + S3D_SVC_MAX_PARTS - 1) / S3D_SVC_MAX_PARTS);
		if (need > ps)
			ps = need;
	}
	return ps > MAX_PART_SIZE ? MAX_PART_SIZE : ps;
}

static void abort_quietly(s3d_service *svc, const char *key, const char *upload_id)
{
	s3d_error e;

	s3d_error_clear(&e);
	s3d_abort_multipart(svc->d->client, svc->d->bucket, key, upload_id, &e);
}

static void restore_marker(s3d_service *svc, const s3d_session *prev)
{
	s3d_error e;

	s3d_error_clear(&e);
	s3d_svc_marker_put(svc, prev, &e);
}

/* Opens the session's multipart upload (PENDING -> UPLOADING). A lost race
 * with a concurrent presign aborts ours and takes the winner's record. */
static int open_multipart(s3d_service *svc, const struct preq *p, s3d_session *s,
			  s3d_error *err)
{
	s3d_session next = *s, cur;
	s3d_buf id;
	int rc;

	s3d_buf_init(&id, sizeof(s->upload_id) - 1);
	rc = s3d_create_multipart(svc->d->client, svc->d->bucket, s->key,
				  s3d_driver_put_opts(svc->d), &id, err);
	if (rc == S3D_E_TOOBIG)
		rc = s3d_err_set(err, rc, "multipart upload id too long");
	if (rc != S3D_OK)
		goto out;
	memcpy(next.upload_id, id.ptr, id.len + 1);
	next.part_size = part_size_for(svc, s->declared_size);
	next.status = S3D_SESSION_UPLOADING;
	next.updated = (int64_t)p->now;
	rc = s3d_svc_save(svc, &next, S3D_SESSION_BIT(S3D_SESSION_PENDING), &cur, err);
	/* a lookup may have copied our own marker into the index between the
	 * two writes: that is our upload, not a concurrent one */
	if (rc == S3D_E_CONFLICT && cur.status == S3D_SESSION_UPLOADING &&
	    strcmp(cur.upload_id, next.upload_id) == 0)
		rc = S3D_OK;
	/* the index refused otherwise than by a lost race: the marker, written
	 * first, names the upload about to be aborted, and presigns on every
	 * node would adopt it; it goes back to the record it replaced (a lost
	 * race's winner was put back by the save) */
	if (rc != S3D_OK && rc != S3D_E_CONFLICT)
		restore_marker(svc, s);
	if (rc != S3D_OK && !(rc == S3D_E_CONFLICT && strcmp(cur.upload_id, next.upload_id) == 0))
		abort_quietly(svc, s->key, s3d_buf_str(&id));
	if (rc == S3D_OK) {
		*s = next;
	} else if (rc == S3D_E_CONFLICT) {
		*s = cur;
		rc = check_existing(p, s, err);
		if (rc == S3D_OK && (s->status != S3D_SESSION_UPLOADING || !s->upload_id[0]))
			rc = s3d_err_set(err, S3D_E_CONFLICT, "the upload session changed concurrently");
	}
out:
	s3d_buf_cleanup(&id);
	return rc;
}

/* -------------------------------------------------------------- signing */

static int add_header(s3d_presign_result *out, s3d_kv *h, size_t *n, const char *name,
		      const char *value)
{
	int rc;

	if (!value || !*value)
		return S3D_OK;
	h[*n].name = name;
	h[(*n)++].value = value;
	rc = s3d_buf_append(&out->headers, name, strlen(name) + 1);
	if (rc == S3D_OK)
		rc = s3d_buf_append(&out->headers, value, strlen(value) + 1);
	if (rc == S3D_OK)
		out->nheaders++;
	return rc;
}

/* One PUT: the headers the client must send are signed into the URL. The
 * driver's storage class, ACL and encryption apply to this object too. */
static int sign_single(s3d_service *svc, const s3d_session *s, time_t now, int64_t life,
		       s3d_presign_result *out)
{
	const s3d_put_opts *po = s3d_driver_put_opts(svc->d);
	char b64[48] = "", len[24] = "", meta[sizeof(S3D_SVC_META_PREFIX) + sizeof(s->uuid)];
	uint8_t raw[32];
	s3d_kv h[8];
	size_t n = 0;
	int rc = S3D_OK;

	if (s->declared_digest[0] && s3d_svc_parse_digest(s->declared_digest, raw, NULL) == S3D_OK)
		rc = s3d_base64(raw, sizeof(raw), b64, sizeof(b64));
	if (s->declared_size >= 0)
		snprintf(len, sizeof(len), "%lld", (long long)s->declared_size);
	snprintf(meta, sizeof(meta), "%s%s", S3D_SVC_META_PREFIX, s->uuid);
	if (rc == S3D_OK)
		rc = add_header(out, h, &n, "content-length", len);
	if (rc == S3D_OK)
		rc = add_header(out, h, &n, "x-amz-checksum-sha256", b64);
	if (rc == S3D_OK)
		rc = add_header(out, h, &n, "x-amz-meta-s3direct", meta);
	if (rc == S3D_OK && po)
		rc = add_header(out, h, &n, "x-amz-storage-class", po->storage_class);
	if (rc == S3D_OK && po)
		rc = add_header(out, h, &n, "x-amz-acl", po->acl);
	if (rc == S3D_OK && po)
		rc = add_header(out, h, &n, "x-amz-server-side-encryption", po->sse);
	if (rc == S3D_OK && po)
		rc = add_header(out, h, &n, "x-amz-server-side-encryption-aws-kms-key-id",
				po->sse_kms_key_id);
	if (rc == S3D_OK)
		rc = s3d_client_presign(svc->d->client, "PUT", svc->d->bucket, s->key, h, n, now,
					life, &out->url);
	return rc;
}

/* UploadPart URLs: no signed header, the client sends just the body. */
static int sign_parts(s3d_service *svc, const s3d_session *s, const struct preq *p,
		      int64_t life, s3d_presign_result *out)
{
	char num[16];
	s3d_kv q[2] = { { "partNumber", num }, { "uploadId", s->upload_id } };
	int i, rc = S3D_OK;

	for (i = 0; rc == S3D_OK && i < p->count; i++) {
		snprintf(num, sizeof(num), "%d", p->first + i);
		rc = s3d_client_presign_query(svc->d->client, "PUT", svc->d->bucket, s->key, q, 2,
					      NULL, 0, p->now, life, &out->part_urls);
		if (rc == S3D_OK)
			rc = s3d_buf_appendc(&out->part_urls, 0);
	}
	if (rc == S3D_OK) {
		out->first_part = p->first;
		out->nparts = p->count;
		out->part_size = s->part_size;
	}
	return rc;
}

static void reset_result(s3d_presign_result *out)
{
	s3d_buf_reset(&out->url);
	s3d_buf_reset(&out->headers);
	s3d_buf_reset(&out->part_urls);
	out->nheaders = 0;
	out->first_part = out->nparts = 0;
	out->part_size = 0;
	out->expires_at = 0;
}

/* The URLs of out->session, valid until the session's end at the latest. */
static int sign_urls(s3d_service *svc, const struct preq *p, s3d_presign_result *out,
		     s3d_error *err)
{
	const s3d_session *s = &out->session;
	int64_t life = svc->cfg.url_expires;
	int rc;

	if (s->expires - (int64_t)p->now < life)
		life = s->expires - (int64_t)p->now;
	if (life < S3D_PRESIGN_MIN_EXPIRES)
		return s3d_err_set(err, S3D_E_EXPIRED, "the upload session expired");
	reset_result(out);
	rc = s->mode == S3D_MODE_MULTIPART ? sign_parts(svc, s, p, life, out)
					   : sign_single(svc, s, p->now, life, out);
	if (rc != S3D_OK)
		return s3d_err_set(err, rc, "cannot sign the upload URLs");
	out->expires_at = (int64_t)p->now + life;
	return S3D_OK;
}

/* -------------------------------------------------------------- presign */

/*
 * The session for a presign: the node's index first (the hot path makes no
 * S3 request; a session ended by another process is then still served
 * here, but its URLs lead to an aborted upload or to bytes no finalize
 * will take, which the sweeper removes), S3's marker on a miss or while a
 * multipart session has no upload yet.
 */
static int lookup_for_presign(s3d_service *svc, const char *repo, const char *uuid,
			      s3d_session *s, s3d_error *err)
{
	s3d_svc_marker_seen seen;
	int rc = s3d_svc_lookup(svc, repo, uuid, 0, s, &seen, err);

	/* no second read when the first one went to the marker already */
	if (rc == S3D_OK && !seen.read && s->mode == S3D_MODE_MULTIPART && !s->upload_id[0] &&
	    s->status == S3D_SESSION_PENDING)
		rc = s3d_svc_lookup(svc, repo, uuid, 1, s, NULL, err);
	return rc;
}

/*
 * Finds or creates the session and opens its upload (both committed before
 * they return). A refresh, which changes only the record's update time,
 * queues its commit instead: S3D_PENDING, with out->pending and
 * out->ticket set and out->session the record to sign.
 */
static int presign_once(s3d_service *svc, const struct preq *p, s3d_presign_result *out,
			s3d_error *err)
{
	s3d_session *s = &out->session;
	int rc = lookup_for_presign(svc, p->rq->repo, p->rq->uuid, s, err);
	int saved = 0;

	if (rc == S3D_E_NOTFOUND) {
		rc = create_session(svc, p, s, err);
		saved = rc == S3D_OK;
		if (rc == S3D_E_CONFLICT)
			rc = check_existing(p, s, err);
	} else if (rc == S3D_OK) {
		rc = check_existing(p, s, err);
	}
	if (rc == S3D_OK && s->mode == S3D_MODE_MULTIPART && !s->upload_id[0]) {
		rc = open_multipart(svc, p, s, err);
		saved = rc == S3D_OK;
	}
	if (rc != S3D_OK || saved)
		return rc;
	/* each presign is a durable commit; no marker rewrite on a refresh */
	s->updated = (int64_t)p->now;
	rc = s3d_index_put_start(svc->ix, s, S3D_SESSION_BIT(s->status), &out->pending,
				 &out->ticket, err);
	return rc == S3D_OK ? S3D_PENDING : rc;
}

/* A presign attempt (out->attempt counts them). */
static int presign_attempt(s3d_service *svc, const s3d_presign_request *rq,
			   s3d_presign_result *out, s3d_error *err)
{
	struct preq p;
	int rc = check_request(rq, &p, err);

	if (rc == S3D_OK)
		rc = presign_once(svc, &p, out, err);
	if (rc == S3D_OK)
		rc = sign_urls(svc, &p, out, err);
	return rc;
}

int s3d_service_presign_start(s3d_service *svc, const s3d_presign_request *rq,
			      s3d_presign_result *out, s3d_error *err)
{
	if (!svc || !rq || !out)
		return s3d_err_set(err, S3D_E_INVAL, "missing argument");
	if (out->pending)
		return s3d_err_set(err, S3D_E_INVAL, "a presign is pending on this result");
	out->attempt = 0;
	return presign_attempt(svc, rq, out, err);
}

int s3d_service_presign_resume(s3d_service *svc, const s3d_presign_request *rq,
			       s3d_presign_result *out, s3d_error *err)
{
	struct preq p;
	int rc;

	if (!svc || !rq || !out)
		return s3d_err_set(err, S3D_E_INVAL, "missing argument");
	if (!out->pending)
		return s3d_err_set(err, S3D_E_INVAL, "no presign is pending on this result");
	rc = s3d_index_op_finish(out->pending, NULL, err);
	out->pending = NULL;
	if (rc == S3D_E_CONFLICT && ++out->attempt < PRESIGN_ATTEMPTS) {
		/* changed since the lookup: one more look */
		return presign_attempt(svc, rq, out, err);
	}
	if (rc == S3D_E_CONFLICT)
		return s3d_err_set(err, rc, "the upload session changed concurrently; try again");
	if (rc == S3D_OK)
		rc = check_request(rq, &p, err);
	if (rc == S3D_OK)
		rc = sign_urls(svc, &p, out, err);
	return rc;
}

int s3d_service_presign(s3d_service *svc, const s3d_presign_request *rq,
			s3d_presign_result *out, s3d_error *err)
{
	int rc = s3d_service_presign_start(svc, rq, out, err);

	while (rc == S3D_PENDING)
		rc = s3d_service_presign_resume(svc, rq, out, err);
	return rc;
}

/* --------------------------------------------------------------- status */

/*
 * The parts S3 holds for the session's upload. An upload gone while the
 * session is open was completed by a finalize that failed after it (the
 * temp object holds the bytes, a new finalize takes them) or ended
 * elsewhere; during a finalize it is the completion.
 */
static int stored_parts(s3d_service *svc, s3d_upload_status *out, s3d_error *err)
{
	const s3d_session *s = &out->session;
	s3d_obj_info info;
	size_t i;
	int rc;

	rc = s3d_list_parts_all(svc->d->client, svc->d->bucket, s->key, s->upload_id,
				&out->parts, &out->nparts, err);
	if (rc == S3D_E_NOTFOUND && s->status == S3D_SESSION_FINALIZING)
		return S3D_OK;
	if (rc == S3D_E_NOTFOUND) {
		/* a multipart session's key is its temp key */
		memset(&info, 0, sizeof(info));
		rc = s3d_head_object(svc->d->client, svc->d->bucket, s->key, 0, &info, err);
		if (rc == S3D_OK) {
			out->stored = info.size > 0 ? info.size : 0;
			return S3D_OK;
		}
		if (rc == S3D_E_NOTFOUND)
			s3d_err_set(err, rc, "upload session %s ended", s->uuid);
	}
	if (rc != S3D_OK)
		return rc;
	for (i = 0; i < out->nparts; i++)
		out->stored += out->parts[i].size > 0 ? out->parts[i].size : 0;
	return S3D_OK;
}

/* The single PUT's object; at a blob's key only when this session wrote it. */
static int stored_single(s3d_service *svc, s3d_upload_status *out, s3d_error *err)
{
	const s3d_session *s = &out->session;
	char meta[sizeof(S3D_SVC_META_PREFIX) + sizeof(s->uuid)];
	s3d_obj_info info;
	int rc;

	memset(&info, 0, sizeof(info));
	rc = s3d_head_object(svc->d->client, svc->d->bucket, s->key, 0, &info, err);
	if (rc == S3D_E_NOTFOUND)
		return S3D_OK;
	if (rc != S3D_OK)
		return rc;
	snprintf(meta, sizeof(meta), "%s%s", S3D_SVC_META_PREFIX, s->uuid);
	if (!s->direct || strcmp(info.meta_s3direct, meta) == 0)
		out->stored = info.size > 0 ? info.size : 0;
	return S3D_OK;
}

int s3d_service_status(s3d_service *svc, const char *repo, const char *uuid,
		       s3d_upload_status *out, s3d_error *err)
{
	s3d_session *s;
	int rc;

	if (!svc || !out)
		return s3d_err_set(err, S3D_E_INVAL, "missing argument");
	memset(out, 0, sizeof(*out));
	s = &out->session;
	rc = s3d_svc_check_repo(repo, err);
	if (rc == S3D_OK)
		rc = s3d_svc_lookup(svc, repo, uuid, 1, s, NULL, err);
	if (rc == S3D_OK)
		rc = s3d_svc_check_open(s, (int64_t)time(NULL), err);
	if (rc == S3D_E_CONFLICT) { /* a finalize in progress: reported as such */
		s3d_error_clear(err);
		rc = S3D_OK;
	}
	if (rc != S3D_OK)
		return rc;
	if (s->mode == S3D_MODE_MULTIPART && s->upload_id[0])
		rc = stored_parts(svc, out, err);
	else if (s->mode == S3D_MODE_SINGLE)
		rc = stored_single(svc, out, err);
	return rc;
}

/* --------------------------------------------------------------- cancel */

/*
 * The index is claimed first (open -> CANCELLED): a finalize that takes the
 * session meanwhile makes the cancel lose, before any byte is touched. A
 * clean-up failing after the claim leaves the marker, which the sweeper
 * follows once the session's time is up.
 */
int s3d_service_cancel(s3d_service *svc, const char *repo, const char *uuid,
		       s3d_error *err)
{
	s3d_session s, next, cur;
	int rc, cancelled;

	if (!svc)
		return s3d_err_set(err, S3D_E_INVAL, "missing argument");
	rc = s3d_svc_check_repo(repo, err);
	if (rc == S3D_OK)
		rc = s3d_svc_lookup(svc, repo, uuid, 1, &s, NULL, err);
	/* a session past its end can still be cancelled; once expired it is
	 * as unknown as any ended one */
	if (rc == S3D_OK)
		rc = s3d_svc_check_open(&s, INT64_MIN, err);
	if (rc == S3D_E_EXPIRED)
		rc = s3d_err_set(err, S3D_E_NOTFOUND, "upload unknown: the session is %s",
				 s3d_session_status_name(s.status));
	if (rc != S3D_OK)
		return rc;
	s3d_session_init(&cur);
	next = s;
	next.status = S3D_SESSION_CANCELLED;
	next.updated = (int64_t)time(NULL);
	snprintf(next.detail, sizeof(next.detail), "cancelled");
	rc = s3d_index_put(svc->ix, &next, S3D_SVC_OPEN, &cur, err);
	if (rc == S3D_E_CONFLICT)
		return cur.status == S3D_SESSION_FINALIZING
			       ? s3d_err_set(err, rc, "the upload session is being finalized")
			       : s3d_err_set(err, S3D_E_NOTFOUND, "upload unknown: the session is %s",
					     s3d_session_status_name(cur.status));
	cancelled = rc == S3D_OK;
	if (rc == S3D_OK)
		rc = s3d_svc_discard_bytes(svc, &s, NULL, err);
	if (rc == S3D_OK)
		rc = s3d_svc_remove_upload(svc, &s, err);
	if (rc != S3D_OK && cancelled) {
		/* cancelled in the index but stopped half-way: tell the other
		 * processes through the marker too (best effort); the sweeper
		 * removes what is left of a cancelled session */
		s3d_error e;

		s3d_error_clear(&e);
		s3d_svc_marker_put(svc, &next, &e);
	}
	return rc;
}
