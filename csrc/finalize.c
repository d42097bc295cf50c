/*
 * Finalize of a presigned upload session (s3d_service_finalize) and the
 * repository usage the quotas need (s3d_service_repo_usage).
 *
 * A finalize first claims the session (open -> FINALIZING, a compare-and-set
 * in the index, then the marker), so exactly one of concurrent finalizes works
 * on the bytes. Then, from what S3 holds and never from client claims:
 *
 *   multipart  the parts S3 lists are checked (sizes, limits) and the upload
 *              completed into the temp object;
 *   temp       (single PUT or completed multipart) the object is hashed, by
 *              S3's stored SHA-256 when it was enforced at upload, else by a
 *              streaming read; then deduplicated against the blob store or
 *              copied server-side to its content-addressed key, the copy
 *              pinned to the ETag that was hashed;
 *   direct     (single PUT with a declared digest) the bytes already are at
 *              the content-addressed key: only the object this session wrote
 *              (x-amz-meta-s3direct) counts, so knowing a digest links
 *              nothing.
 *
 * The blob is then linked into the repository exactly as distribution's
 * blob writer does (the layer link holding the digest), the stock upload
 * directory and the marker removed, and the session marked completed.
 *
 * Outcomes: a refusal of the bytes (digest, size, quota) marks the session
 * failed and removes what it uploaded (never a shared blob); "nothing
 * uploaded yet" and transient failures give the session back as it was, so
 * the client can upload or retry.
 */
#include "service.h"

#include "buf.h"
#include "err.h"
#include "s3_client.h"
#include "sigv4.h"
#include "verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_MAX 2048
#define MAX_SINGLE_COPY (5ll * 1024 * 1024 * 1024)

struct fin {
	s3d_service *svc;
	s3d_session s;           /* the claimed record (FINALIZING) */
	int prior_status;        /* status before the claim */
	const char *digest;
	uint8_t raw[32];
	char b64[48];
	char meta[sizeof(S3D_SVC_META_PREFIX) + 72];
	int64_t now;
	int refused;             /* the bytes are refused: the session fails (else
				  * a failed finalize gives the session back) */
	s3d_svc_marker_seen seen; /* the marker as the lookup read it */
	char claim_etag[136];    /* the marker this claim wrote */
	int completed;           /* this finalize completed the multipart upload */
	s3d_finalize_result *out;
};

/* ------------------------------------------------------------ helpers */

/* The bytes are refused: the session fails (err set, rc returned). */
#define REFUSE(f, err, rc, ...) ((f)->refused = 1, s3d_err_set((err), (rc), __VA_ARGS__))

static void fill_result(s3d_finalize_result *out, const char *digest, int64_t size)
{
	snprintf(out->digest, sizeof(out->digest), "%s", digest);
	out->size = size;
}

/* The checks on the real size, before any byte is placed. */
static int check_size(struct fin *f, int64_t size, s3d_error *err)
{
	const s3d_service_config *c = &f->svc->cfg;

	if (c->max_blob_size > 0 && size > c->max_blob_size)
		return REFUSE(f, err, S3D_E_QUOTA, "blob of %lld bytes exceeds maxblobsize (%lld bytes)",
			      (long long)size, (long long)c->max_blob_size);
	if (f->s.declared_size >= 0 && size != f->s.declared_size)
		return REFUSE(f, err, S3D_E_INVAL, "the upload holds %lld bytes but %lld were declared",
			      (long long)size, (long long)f->s.declared_size);
	return S3D_OK;
}

/* One HEAD of the link's key: a driver stat would add a LIST for the
 * directory case on every miss (the usual answer). */
static int link_exists(struct fin *f, int *yes, s3d_error *err)
{
	s3d_buf path, key;
	int rc;

	*yes = 0;
	s3d_buf_init(&path, KEY_MAX);
	s3d_buf_init(&key, KEY_MAX);
	rc = s3d_svc_link_path(f->s.repo, f->digest, &path);
	if (rc == S3D_OK)
		rc = s3d_driver_key(f->svc->d, s3d_buf_str(&path), &key);
	if (rc != S3D_OK)
		s3d_err_set(err, rc, "cannot name the layer link");
	else
		rc = s3d_head_object(f->svc->d->client, f->svc->d->bucket, s3d_buf_str(&key), 0,
				     NULL, err);
	if (rc == S3D_OK)
		*yes = 1;
	else if (rc == S3D_E_NOTFOUND)
		rc = S3D_OK;
	s3d_buf_cleanup(&key);
	s3d_buf_cleanup(&path);
	return rc;
}

/* The repository quota on the real size; a blob linked already costs nothing. */
static int check_repo_quota(struct fin *f, int64_t size, s3d_error *err)
{
	int64_t quota = f->svc->cfg.repo_quota, used = 0;
	int linked, rc;

	if (quota <= 0)
		return S3D_OK;
	rc = link_exists(f, &linked, err);
	if (rc != S3D_OK || linked)
		return rc;
	rc = s3d_service_repo_usage(f->svc, f->s.repo, &used, err);
	if (rc != S3D_OK)
		return rc;
	if (size > quota - used)
		return REFUSE(f, err, S3D_E_QUOTA,
			      "repository %s would exceed repoquota (%lld used of %lld bytes)",
			      f->s.repo, (long long)used, (long long)quota);
	return S3D_OK;
}

static int digest_mismatch(struct fin *f, const uint8_t got[32], s3d_error *err)
{
	char hex[65];

	s3d_hex(got, 32, hex);
	return REFUSE(f, err, S3D_E_DIGEST, "digest mismatch: the uploaded bytes have digest "
		      "sha256:%s, not %s", hex, f->digest);
}

/*
 * A conditional request (If-Match on the ETag that was checked) failed: the
 * client replaced its upload during the finalize. Nothing was placed; the
 * session goes back and a new finalize checks the new bytes.
 */
static int changed_meanwhile(int rc, s3d_error *err)
{
	if (rc != S3D_E_S3 || !err || err->http_status != 412)
		return rc;
	s3d_error_clear(err);
	return s3d_err_set(err, S3D_E_CONFLICT,
			   "the upload changed during finalize: finalize again");
}

/*
 * Verifies the object at key (info from a HEAD with checksum mode): S3's
 * stored full-object SHA-256 when it has one, else a streaming read pinned
 * to info->etag (verify.c's If-Match: a replaced object fails).
 */
static int verify_object(struct fin *f, const char *key, const s3d_obj_info *info,
			 s3d_error *err)
{
	uint8_t got[32];
	int64_t size = -1;
	int rc;

	if (info->checksum_sha256[0] && strcmp(info->checksum_sha256, f->b64) == 0 &&
	    strcmp(info->checksum_type, "COMPOSITE") != 0) {
		f->out->verified_by = S3D_VERIFIED_CHECKSUM;
		return S3D_OK;
	}
	rc = s3d_verify_sha256_of(f->svc->d->client, f->svc->d->bucket, key, &f->svc->cfg.verify,
				  info, got, &size, err);
	if (rc != S3D_OK)
		return changed_meanwhile(rc, err);
	if (size != info->size)
		return s3d_err_set(err, S3D_E_CONFLICT,
				   "the uploaded object changed during verification");
	f->out->verified_by = S3D_VERIFIED_STREAM;
	if (memcmp(got, f->raw, 32) != 0)
		return digest_mismatch(f, got, err);
	return S3D_OK;
}

/* Links the blob into the repository the way distribution's blob writer
 * does: repositories/<repo>/_layers/sha256/<hex>/link holding the digest. */
static int link_blob(struct fin *f, s3d_error *err)
{
	s3d_buf path;
	int rc;

	s3d_buf_init(&path, KEY_MAX);
	rc = s3d_svc_link_path(f->s.repo, f->digest, &path);
	if (rc == S3D_OK)
		rc = s3d_driver_put_content(f->svc->d, s3d_buf_str(&path), f->digest,
					    strlen(f->digest), err);
	s3d_buf_cleanup(&path);
	return rc;
}

/* ------------------------------------------------------------ direct */

/* A single PUT straight to the blob's key: the object must be the one this
 * session wrote (its metadata names the session). */
static int finalize_direct(struct fin *f, s3d_error *err)
{
	s3d_obj_info info;
	s3d_error e;
	int rc;

	memset(&info, 0, sizeof(info));
	rc = s3d_head_object(f->svc->d->client, f->svc->d->bucket, f->s.key, 1, &info, err);
	if (rc == S3D_E_NOTFOUND || (rc == S3D_OK && strcmp(info.meta_s3direct, f->meta) != 0)) {
		s3d_error_clear(err);
		return s3d_err_set(err, S3D_E_STATE,
				   "nothing was uploaded for this session: PUT the bytes to the "
				   "presigned URL first");
	}
	if (rc != S3D_OK)
		return rc;
	rc = check_size(f, info.size, err);
	if (rc == S3D_OK)
		rc = check_repo_quota(f, info.size, err);
	if (rc == S3D_OK)
		rc = verify_object(f, f->s.key, &info, err);
	if (rc == S3D_E_DIGEST) {
		/* a server that did not enforce the signed checksum stored other
		 * bytes at the content address: they are this session's, remove */
		s3d_error_clear(&e);
		s3d_delete_object(f->svc->d->client, f->svc->d->bucket, f->s.key, &e);
	}
	if (rc == S3D_OK)
		fill_result(f->out, f->digest, info.size);
	return rc;
}

/* --------------------------------------------------------- multipart */

/*
 * Completes the session's multipart upload from the parts S3 lists; info
 * then describes the temp object (the completion's ETag and checksum, the
 * listed total as size) and f->completed is set. An upload that is gone was
 * completed by an earlier finalize of this session that stopped before the
 * end: the temp object then holds the bytes.
 */
static int complete_upload(struct fin *f, s3d_obj_info *info, s3d_error *err)
{
	s3d_service *svc = f->svc;
	s3d_part *v = NULL;
	size_t n = 0;
	int64_t total = 0;
	size_t i;
	int rc;

	if (!f->s.upload_id[0])
		return s3d_err_set(err, S3D_E_STATE, "no part was presigned for this session");
	rc = s3d_list_parts_all(svc->d->client, svc->d->bucket, f->s.key, f->s.upload_id, &v,
				&n, err);
	if (rc == S3D_E_NOTFOUND)
		return S3D_OK; /* completed before: the temp object follows */
	if (rc != S3D_OK)
		goto out;
	if (n == 0) {
		rc = s3d_err_set(err, S3D_E_STATE, "no part was uploaded for this session");
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (v[i].size < 0 || (i + 1 < n && v[i].size < (int64_t)S3D_MIN_PART)) {
			/* S3 would refuse the completion (EntityTooSmall); the
			 * client can upload the part again */
			rc = s3d_err_set(err, S3D_E_STATE,
					 "part %d holds %lld bytes: every part but the last "
					 "must hold at least 5 MiB",
					 v[i].number, (long long)v[i].size);
			goto out;
		}
		total += v[i].size;
	}
	/* refused before the completion makes the bytes one object */
	rc = check_size(f, total, err);
	if (rc == S3D_OK)
		rc = check_repo_quota(f, total, err);
	if (rc == S3D_OK)
		rc = s3d_complete_multipart(svc->d->client, svc->d->bucket, f->s.key,
					    f->s.upload_id, v, n, info, err);
	if (rc == S3D_OK) {
		info->size = total; /* the answer's own length is no object size */
		f->completed = 1;
	}
out:
	free(v);
	return rc;
}

/* -------------------------------------------------------------- temp */

/* Places the verified temp object at its content-addressed key: nothing to
 * do when the blob store has it already (deduplicated), else a server-side
 * copy, the single copy pinned to the ETag that was hashed. */
static int place_blob(struct fin *f, const s3d_obj_info *info, s3d_error *err)
{
	s3d_service *svc = f->svc;
	s3d_obj_info have;
	s3d_put_opts po;
	s3d_kv h[1];
	s3d_buf blob;
	int rc;

	s3d_buf_init(&blob, KEY_MAX);
	rc = s3d_svc_blob_key(svc, f->digest, &blob);
	if (rc != S3D_OK)
		goto out;
	memset(&have, 0, sizeof(have));
	rc = s3d_head_object(svc->d->client, svc->d->bucket, s3d_buf_str(&blob), 0, &have, err);
	if (rc == S3D_OK && have.size == info->size) {
		f->out->deduplicated = 1;
		goto out;
	}
	if (rc != S3D_OK && rc != S3D_E_NOTFOUND)
		goto out;
	if (info->size <= MAX_SINGLE_COPY && info->etag[0]) {
		po = *s3d_driver_put_opts(svc->d);
		h[0].name = "x-amz-copy-source-if-match";
		h[0].value = info->etag;
		po.headers = h;
		po.nheaders = 1;
		rc = s3d_copy_object(svc->d->client, svc->d->bucket, f->s.key, svc->d->bucket,
				     s3d_buf_str(&blob), &po, NULL, err);
		rc = changed_meanwhile(rc, err);
	} else {
		/* beyond one copy only a completed multipart upload: its key
		 * takes no more writes (no single PUT URL exists for it) */
		rc = s3d_driver_copy_key(svc->d, f->s.key, s3d_buf_str(&blob), info->size, err);
	}
out:
	s3d_buf_cleanup(&blob);
	return rc;
}

/* The temp object's HEAD (with checksums) and the checks on its size. */
static int head_temp(struct fin *f, s3d_obj_info *info, s3d_error *err)
{
	s3d_service *svc = f->svc;
	int rc;

	memset(info, 0, sizeof(*info));
	rc = s3d_head_object(svc->d->client, svc->d->bucket, f->s.key, 1, info, err);
	if (rc == S3D_E_NOTFOUND && f->s.mode == S3D_MODE_MULTIPART) {
		/* the multipart upload was completed (maybe by us) and its object
		 * taken, or aborted, by another request in another process (the
		 * index is node-local; S3 servers without atomic conditional
		 * writes let two claims through): its outcome decides */
		s3d_error_clear(err);
		return s3d_err_set(err, S3D_E_CONFLICT,
				   "the upload session is being finalized or cancelled by another "
				   "request");
	}
	if (rc == S3D_E_NOTFOUND) {
		s3d_error_clear(err);
		return s3d_err_set(err, S3D_E_STATE,
				   "nothing was uploaded for this session: PUT the bytes to the "
				   "presigned URL first");
	}
	if (rc == S3D_OK && info->size < 0)
		rc = s3d_err_set(err, S3D_E_PROTOCOL, "HEAD of the upload without a size");
	if (rc == S3D_OK)
		rc = check_size(f, info->size, err);
	if (rc == S3D_OK)
		rc = check_repo_quota(f, info->size, err);
	return rc;
}

static int finalize_temp(struct fin *f, s3d_error *err)
{
	s3d_obj_info info;
	int rc = S3D_OK;

	memset(&info, 0, sizeof(info));
	if (f->s.mode == S3D_MODE_MULTIPART)
		rc = complete_upload(f, &info, err);
	/* a completion in this call checked the listed total already, and its
	 * answer describes the object */
	if (rc == S3D_OK && !f->completed)
		rc = head_temp(f, &info, err);
	if (rc == S3D_OK)
		rc = verify_object(f, f->s.key, &info, err);
	if (rc == S3D_OK)
		rc = place_blob(f, &info, err);
	if (rc == S3D_OK)
		fill_result(f->out, f->digest, info.size);
	return rc;
}

/* ------------------------------------------------------------- claim */

static int completed_result(const s3d_session *s, const char *digest,
			    s3d_finalize_result *out, s3d_error *err)
{
	if (strcmp(s->final_digest, digest) != 0)
		return s3d_err_set(err, S3D_E_NOTFOUND,
				   "upload unknown: the session was completed with another digest");
	fill_result(out, s->final_digest, s->final_size);
	out->repeated = 1;
	return S3D_OK;
}

/* The session as a finalize may take it; *done when it is a repeat. */
static int check_claimable(struct fin *f, const s3d_session *s, int *done, s3d_error *err)
{
	int rc;

	*done = 0;
	if (s->status == S3D_SESSION_COMPLETED) {
		*done = 1;
		return completed_result(s, f->digest, f->out, err);
	}
	if (s->status == S3D_SESSION_FINALIZING) {
		/* a stale claim is taken over, even past the session's end */
		if (s->updated + f->svc->cfg.finalize_stale > f->now)
			return s3d_err_set(err, S3D_E_CONFLICT, "the upload session is being "
					   "finalized by another request");
	} else {
		/* past its end any other session is expired first (failed or
		 * cancelled ones too) */
		if (s->expires <= f->now)
			return s3d_err_set(err, S3D_E_EXPIRED, "the upload session expired");
		rc = s3d_svc_check_open(s, f->now, err);
		if (rc != S3D_OK)
			return rc;
	}
	if (s->mode == S3D_MODE_NONE)
		return s3d_err_set(err, S3D_E_STATE, "no URL was presigned for this session");
	return S3D_OK;
}

/*
 * The claim across registry processes: the index is node-local, so the
 * marker is rewritten conditionally on the ETag it had while it still
 * showed the session open (or a stale claim). Of two processes claiming at
 * once, S3 lets exactly one write (412 for the other: CONFLICT). The
 * marker the lookup read serves (any change since fails the condition); it
 * is read here only when the lookup answered from the index alone.
 */
static int claim_marker(struct fin *f, s3d_error *err)
{
	const s3d_session *m = &f->seen.rec;
	int rc;

	if (!f->seen.read) {
		rc = s3d_svc_marker_get_etag(f->svc, f->s.uuid, &f->seen.rec, f->seen.etag, err);
		if (rc == S3D_E_NOTFOUND)
			return s3d_err_set(err, S3D_E_NOTFOUND, "upload unknown: the session "
					   "ended in another registry process");
		if (rc != S3D_OK)
			return rc;
		f->seen.read = 1;
	}
	if (m->status == S3D_SESSION_FINALIZING && m->updated + f->svc->cfg.finalize_stale > f->now)
		return s3d_err_set(err, S3D_E_CONFLICT,
				   "the upload session is being finalized by another request");
	if (!(S3D_SESSION_BIT(m->status) &
	      (S3D_SVC_OPEN | S3D_SESSION_BIT(S3D_SESSION_FINALIZING))))
		return s3d_err_set(err, S3D_E_NOTFOUND, "upload unknown: the session is %s",
				   s3d_session_status_name(m->status));
	return s3d_svc_marker_put_if(f->svc, &f->s, f->seen.etag, f->claim_etag, err);
}

static int claim(struct fin *f, const s3d_session *s, int *done, s3d_error *err)
{
	unsigned from = S3D_SVC_OPEN;
	s3d_session cur;
	int rc;

	rc = check_claimable(f, s, done, err);
	if (rc != S3D_OK || *done)
		return rc;
	if (s->status == S3D_SESSION_FINALIZING) /* stale: taken over */
		from = S3D_SESSION_BIT(S3D_SESSION_FINALIZING);
	f->s = *s;
	f->prior_status = s->status == S3D_SESSION_FINALIZING
				  ? (s->upload_id[0] ? S3D_SESSION_UPLOADING : S3D_SESSION_PENDING)
				  : s->status;
	f->s.status = S3D_SESSION_FINALIZING;
	f->s.updated = f->now;
	/*
	 * The index first, then the marker: a marker naming a claim that the
	 * index has not taken yet would be read back by a concurrent lookup,
	 * cached as the index record, and make this claim lose against itself
	 * (every finalize then answers CONFLICT until the claim is stale).
	 */
	s3d_session_init(&cur);
	rc = s3d_index_put(f->svc->ix, &f->s, from, &cur, err);
	if (rc == S3D_OK) {
		rc = claim_marker(f, err);
		if (rc != S3D_OK) { /* nothing done: the session as it was */
			s3d_error e;

			s3d_error_clear(&e);
			s3d_index_put(f->svc->ix, s, S3D_SESSION_BIT(S3D_SESSION_FINALIZING), NULL,
				      &e);
		}
	} else if (rc == S3D_E_CONFLICT) {
		/* the winner's record decides: a completion with this digest is
		 * the same result, anything else a clear refusal */
		rc = check_claimable(f, &cur, done, err);
		if (rc == S3D_OK && !*done)
			rc = s3d_err_set(err, S3D_E_CONFLICT,
					 "the upload session changed concurrently; try again");
	}
	return rc;
}

/* ----------------------------------------------------------- outcome */

static int mark_completed(struct fin *f, s3d_error *err)
{
	s3d_session next = f->s;

	next.status = S3D_SESSION_COMPLETED;
	next.updated = f->now;
	next.upload_id[0] = 0;
	next.detail[0] = 0;
	snprintf(next.final_digest, sizeof(next.final_digest), "%s", f->out->digest);
	next.final_size = f->out->size;
	return s3d_index_put(f->svc->ix, &next, S3D_SESSION_BIT(S3D_SESSION_FINALIZING), NULL,
			     err);
}

/* The bytes were refused: removed (never a shared blob), session failed. */
static void mark_failed(struct fin *f, const s3d_error *why)
{
	s3d_session next = f->s;
	s3d_error e;

	s3d_error_clear(&e);
	s3d_svc_discard_bytes(f->svc, &f->s, NULL, &e);
	s3d_svc_remove_upload(f->svc, &f->s, &e);
	next.status = S3D_SESSION_FAILED;
	next.updated = f->now;
	snprintf(next.detail, sizeof(next.detail), "%s", why->message);
	s3d_index_put(f->svc->ix, &next, S3D_SESSION_BIT(S3D_SESSION_FINALIZING), NULL, &e);
}

/* Nothing happened for good: the session is open again as it was. */
static void give_back(struct fin *f)
{
	s3d_session next = f->s;
	s3d_error e;

	s3d_error_clear(&e);
	next.status = f->prior_status;
	next.updated = f->now;
	/* the marker only if it still is this claim's: never resurrect a
	 * session another process completed or ended meanwhile */
	s3d_svc_marker_put_if(f->svc, &next, f->claim_etag, NULL, &e);
	s3d_error_clear(&e);
	s3d_index_put(f->svc->ix, &next, S3D_SESSION_BIT(S3D_SESSION_FINALIZING), NULL, &e);
}

/*
 * A finalize that found the bytes gone (another request finalized the
 * session meanwhile, in another registry process): when the blob is linked
 * in the repository under this digest, that is the same result.
 */
static int linked_meanwhile(struct fin *f)
{
	s3d_obj_info info;
	s3d_buf blob;
	s3d_error e;
	int linked = 0, rc;

	s3d_error_clear(&e);
	if (link_exists(f, &linked, &e) != S3D_OK || !linked)
		return 0;
	s3d_buf_init(&blob, KEY_MAX);
	memset(&info, 0, sizeof(info));
	rc = s3d_svc_blob_key(f->svc, f->digest, &blob);
	if (rc == S3D_OK)
		rc = s3d_head_object(f->svc->d->client, f->svc->d->bucket, s3d_buf_str(&blob), 0,
				     &info, &e);
	s3d_buf_cleanup(&blob);
	if (rc != S3D_OK)
		return 0;
	fill_result(f->out, f->digest, info.size);
	f->out->repeated = 1;
	return 1;
}

int s3d_service_finalize(s3d_service *svc, const char *repo, const char *uuid,
			 const char *digest, time_t now, s3d_finalize_result *out,
			 s3d_error *err)
{
	struct fin f;
	s3d_session s;
	int rc, done = 0;

	if (!svc || !out || !digest)
		return s3d_err_set(err, S3D_E_INVAL, "missing argument");
	memset(out, 0, sizeof(*out));
	memset(&f, 0, sizeof(f));
	f.svc = svc;
	f.digest = digest;
	f.out = out;
	f.now = (int64_t)(now ? now : time(NULL));
	rc = s3d_svc_check_repo(repo, err);
	if (rc == S3D_OK)
		rc = s3d_svc_parse_digest(digest, f.raw, err);
	if (rc == S3D_OK && s3d_base64(f.raw, sizeof(f.raw), f.b64, sizeof(f.b64)) != S3D_OK)
		rc = s3d_err_set(err, S3D_E_INVAL, "cannot encode the digest");
	if (rc == S3D_OK)
		rc = s3d_svc_lookup(svc, repo, uuid, 1, &s, &f.seen, err);
	if (rc == S3D_OK)
		rc = claim(&f, &s, &done, err);
	if (rc != S3D_OK || done)
		return rc;
	snprintf(f.meta, sizeof(f.meta), "%s%s", S3D_SVC_META_PREFIX, f.s.uuid);

	if (f.s.declared_digest[0] && strcmp(f.s.declared_digest, digest) != 0)
		rc = REFUSE(&f, err, S3D_E_DIGEST, "digest %s differs from the digest declared at presign",
			    digest);
	else if (f.s.direct)
		rc = finalize_direct(&f, err);
	else
		rc = finalize_temp(&f, err);
	if (rc == S3D_OK)
		rc = link_blob(&f, err);
	if (rc == S3D_OK) {
		/* the temp object went to the blob store (or was a duplicate) */
		s3d_error e;

		s3d_error_clear(&e);
		s3d_svc_discard_bytes(svc, &f.s, NULL, &e);
		/* completed in the index before the marker goes: a concurrent
		 * finalize then finds the completion, never a session whose
		 * marker vanished */
		mark_completed(&f, &e);
		s3d_svc_remove_upload(svc, &f.s, &e);
		/* linked: the result stands even when the bookkeeping failed
		 * (the sweeper removes what is left) */
		return S3D_OK;
	}
	if (f.refused) {
		mark_failed(&f, err);
	} else {
		give_back(&f);
		if ((rc == S3D_E_NOTFOUND || rc == S3D_E_STATE) && linked_meanwhile(&f)) {
			s3d_error_clear(err);
			return S3D_OK;
		}
		if (rc == S3D_E_NOTFOUND)
			rc = s3d_err_set(err, rc, "upload unknown: the session's bytes are gone "
					 "(finalized or cancelled by another request)");
	}
	memset(out, 0, sizeof(*out));
	return rc;
}

/* --------------------------------------------------------- repo usage */

struct usage {
	s3d_service *svc;
	int64_t bytes;
	size_t prefix_len;
	int rc;
	s3d_error *err;
};

/* One layer link <prefix><hex>/link: the blob's size from its HEAD. */
static int add_layer(void *ud, const s3d_list_entry *e)
{
	struct usage *u = ud;
	const char *hex = e->key + u->prefix_len;
	char digest[80];
	s3d_obj_info info;
	s3d_buf key;
	int rc;

	if (e->kind != S3D_ENTRY_OBJECT || strlen(e->key) < u->prefix_len ||
	    strlen(hex) != 64 + strlen("/link") || strcmp(hex + 64, "/link") != 0)
		return 0;
	snprintf(digest, sizeof(digest), "sha256:%.64s", hex);
	s3d_buf_init(&key, KEY_MAX);
	rc = s3d_svc_blob_key(u->svc, digest, &key);
	if (rc == S3D_OK) {
		memset(&info, 0, sizeof(info));
		rc = s3d_head_object(u->svc->d->client, u->svc->d->bucket, s3d_buf_str(&key), 0,
				     &info, u->err);
	}
	s3d_buf_cleanup(&key);
	if (rc == S3D_E_NOTFOUND || rc == S3D_E_DIGEST) /* dangling or foreign link */
		return 0;
	if (rc != S3D_OK) {
		u->rc = rc;
		return 1;
	}
	u->bytes += info.size > 0 ? info.size : 0;
	return 0;
}

int s3d_service_repo_usage(s3d_service *svc, const char *repo, int64_t *bytes,
			   s3d_error *err)
{
	struct usage u;
	s3d_list_opts o;
	s3d_buf prefix;
	int rc;

	if (!svc || !bytes)
		return s3d_err_set(err, S3D_E_INVAL, "missing argument");
	*bytes = 0;
	rc = s3d_svc_check_repo(repo, err);
	if (rc != S3D_OK)
		return rc;
	s3d_buf_init(&prefix, KEY_MAX);
	rc = s3d_buf_printf(&prefix, "%s%srepositories/%s/_layers/sha256/", svc->d->root,
			    S3D_SVC_REGISTRY_DIR, repo);
	memset(&u, 0, sizeof(u));
	u.svc = svc;
	u.prefix_len = prefix.len;
	u.err = err;
	memset(&o, 0, sizeof(o));
	o.prefix = s3d_buf_str(&prefix);
	if (rc == S3D_OK)
		rc = s3d_list_objects(svc->d->client, svc->d->bucket, &o, add_layer, &u, err);
	if (rc == S3D_OK)
		rc = u.rc;
	if (rc == S3D_OK)
		*bytes = u.bytes;
	s3d_buf_cleanup(&prefix);
	return rc;
}
