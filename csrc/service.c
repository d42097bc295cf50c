/*
 * The presigned upload service object: configuration, the keys and paths a
 * session touches, the session marker in S3 and the lookup that joins the
 * node-local index with it.
 */
#include "service.h"

#include "err.h"

#include <stdlib.h>
#include <string.h>

#define MARKER_MAX (16u * 1024u)
#define DEF_URL_EXPIRES 3600
#define DEF_SESSION_TTL 86400
#define DEF_PART_SIZE (64ll * 1024 * 1024)
#define DEF_FINALIZE_STALE 900

static int apply_defaults(s3d_service_config *c, s3d_error *err)
{
	if (c->url_expires == 0)
		c->url_expires = DEF_URL_EXPIRES;
	if (c->session_ttl == 0)
		c->session_ttl = DEF_SESSION_TTL;
	if (c->part_size == 0)
		c->part_size = DEF_PART_SIZE;
	if (c->finalize_stale == 0)
		c->finalize_stale = DEF_FINALIZE_STALE;
	if (c->url_expires < S3D_PRESIGN_MIN_EXPIRES || c->url_expires > S3D_PRESIGN_MAX_EXPIRES)
		return s3d_err_set(err, S3D_E_INVAL, "presigned URL lifetime must be 1 s to 7 days");
	if (c->session_ttl < 1)
		return s3d_err_set(err, S3D_E_INVAL, "session lifetime must be positive");
	if (c->part_size < (int64_t)S3D_MIN_PART || c->part_size > 5ll * 1024 * 1024 * 1024)
		return s3d_err_set(err, S3D_E_INVAL, "part size must be 5 MiB to 5 GiB");
	if (c->max_blob_size < 0 || c->repo_quota < 0 || c->finalize_stale < 1)
		return s3d_err_set(err, S3D_E_INVAL, "negative size limit or quota");
	return S3D_OK;
}

int s3d_service_new(s3d_driver *d, const s3d_service_config *cfg,
		    s3d_service **out, s3d_error *err)
{
	s3d_service *svc;
	int rc;

	if (!d || !cfg || !out)
		return s3d_err_set(err, S3D_E_INVAL, "missing argument");
	*out = NULL;
	svc = calloc(1, sizeof(*svc));
	if (!svc)
		return s3d_err_set(err, S3D_E_NOMEM, "out of memory");
	svc->d = d;
	svc->cfg = *cfg;
	rc = apply_defaults(&svc->cfg, err);
	if (rc == S3D_OK)
		rc = s3d_index_open(&svc->cfg.index, &svc->ix, err);
	if (rc != S3D_OK) {
		free(svc);
		return rc;
	}
	/* the path string is the caller's: keep no pointer to it */
	svc->cfg.index.path = NULL;
	*out = svc;
	return S3D_OK;
}

void s3d_service_free(s3d_service *svc)
{
	if (!svc)
		return;
	s3d_index_close(svc->ix);
	free(svc);
}

s3d_index *s3d_service_index(s3d_service *svc)
{
	return svc ? svc->ix : NULL;
}

/* ------------------------------------------------------------------ names */

static int is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component of the OCI name grammar:
 * [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)* */
static int check_component(const char *p, size_t n)
{
	size_t i = 0, run;

	if (n == 0 || !is_lower_alnum(p[0]) || !is_lower_alnum(p[n - 1]))
		return 0;
	while (i < n) {
		if (is_lower_alnum(p[i])) {
			i++;
			continue;
		}
		run = 0;
		while (i + run < n && !is_lower_alnum(p[i + run]))
			run++;
		if (p[i] == '-') {
			if (strspn(p + i, "-") < run)
				return 0;
		} else if (p[i] == '_') {
			if (run > 2 || strspn(p + i, "_") != run)
				return 0;
		} else if (p[i] != '.' || run != 1) {
			return 0;
		}
		i += run;
	}
	return 1;
}

int s3d_svc_check_repo(const char *repo, s3d_error *err)
{
	const char *p, *slash;
	size_t n;

	if (!repo || !*repo || strlen(repo) > 255)
		return s3d_err_set(err, S3D_E_INVAL, "invalid repository name");
	for (p = repo;; p = slash + 1) {
		slash = strchr(p, '/');
		n = slash ? (size_t)(slash - p) : strlen(p);
		if (!check_component(p, n))
			return s3d_err_set(err, S3D_E_INVAL, "invalid repository name");
		if (!slash)
			break;
	}
	return S3D_OK;
}

int s3d_svc_check_uuid(const char *uuid, s3d_error *err)
{
	size_t n = uuid ? strlen(uuid) : 0;

	if (n == 0 || n > 64 ||
	    strspn(uuid, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != n)
		return s3d_err_set(err, S3D_E_INVAL, "invalid upload uuid");
	return S3D_OK;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int s3d_svc_parse_digest(const char *digest, uint8_t raw[32], s3d_error *err)
{
	const char *colon = digest ? strchr(digest, ':') : NULL;
	size_t alg_len, i;

	if (!colon || colon == digest || colon[1] == 0)
		return s3d_err_set(err, S3D_E_DIGEST, "malformed digest: want sha256:<64 hex digits>");
	alg_len = (size_t)(colon - digest);
	/* OCI algorithm grammar: [a-z0-9]+ ([+._-][a-z0-9]+)* */
	if (strspn(digest, "abcdefghijklmnopqrstuvwxyz0123456789+._-") != alg_len)
		return s3d_err_set(err, S3D_E_DIGEST, "malformed digest algorithm");
	if (alg_len != 6 || memcmp(digest, "sha256", 6) != 0)
		return s3d_err_set(err, S3D_E_UNSUPPORTED,
				   "digest algorithm %.*s is not supported: use sha256",
				   (int)(alg_len > 32 ? 32 : alg_len), digest);
	if (strlen(colon + 1) != 64)
		return s3d_err_set(err, S3D_E_DIGEST, "malformed sha256 digest: want 64 lower-case hex digits");
	for (i = 0; i < 32; i++) {
		int hi = hexval(colon[1 + 2 * i]), lo = hexval(colon[2 + 2 * i]);

		if (hi < 0 || lo < 0)
			return s3d_err_set(err, S3D_E_DIGEST,
					   "malformed sha256 digest: want 64 lower-case hex digits");
		if (raw)
			raw[i] = (uint8_t)(hi << 4 | lo);
	}
	return S3D_OK;
}

int s3d_svc_check_open(const s3d_session *s, int64_t now, s3d_error *err)
{
	if ((S3D_SESSION_BIT(s->status) & S3D_SVC_TERMINAL) && s->status != S3D_SESSION_EXPIRED)
		return s3d_err_set(err, S3D_E_NOTFOUND, "upload unknown: the session is %s",
				   s3d_session_status_name(s->status));
	if (s->status == S3D_SESSION_EXPIRED || now >= s->expires)
		return s3d_err_set(err, S3D_E_EXPIRED, "the upload session expired");
	if (s->status == S3D_SESSION_FINALIZING)
		return s3d_err_set(err, S3D_E_CONFLICT, "the upload session is being finalized");
	return S3D_OK;
}

/* ------------------------------------------------------------ keys, paths */

static int root_key(const s3d_service *svc, const char *dir, const char *name,
		    s3d_buf *out)
{
	s3d_buf_reset(out);
	return s3d_buf_printf(out, "%s%s%s", svc->d->root, dir, name);
}

int s3d_svc_temp_key(const s3d_service *svc, const char *uuid, s3d_buf *out)
{
	int rc = s3d_svc_check_uuid(uuid, NULL);

	return rc ? rc : root_key(svc, S3D_SVC_UPLOADS_DIR, uuid, out);
}

int s3d_svc_marker_key(const s3d_service *svc, const char *uuid, s3d_buf *out)
{
	int rc = s3d_svc_check_uuid(uuid, NULL);

	return rc ? rc : root_key(svc, S3D_SVC_SESSIONS_DIR, uuid, out);
}

int s3d_svc_blob_path(const char *digest, s3d_buf *out)
{
	int rc = s3d_svc_parse_digest(digest, NULL, NULL);

	if (rc != S3D_OK)
		return rc;
	s3d_buf_reset(out);
	/* blobs/sha256/<first two hex>/<hex>/data */
	return s3d_buf_printf(out, "/%sblobs/sha256/%.2s/%s/data", S3D_SVC_REGISTRY_DIR,
			      digest + 7, digest + 7);
}

int s3d_svc_blob_key(const s3d_service *svc, const char *digest, s3d_buf *out)
{
	s3d_buf path;
	int rc;

	s3d_buf_init(&path, 512);
	rc = s3d_svc_blob_path(digest, &path);
	if (rc == S3D_OK)
		rc = s3d_driver_key(svc->d, s3d_buf_str(&path), out);
	s3d_buf_cleanup(&path);
	return rc;
}

int s3d_svc_link_path(const char *repo, const char *digest, s3d_buf *out)
{
	int rc = s3d_svc_check_repo(repo, NULL);

	if (rc == S3D_OK)
		rc = s3d_svc_parse_digest(digest, NULL, NULL);
	if (rc != S3D_OK)
		return rc;
	s3d_buf_reset(out);
	return s3d_buf_printf(out, "/%srepositories/%s/_layers/sha256/%s/link",
			      S3D_SVC_REGISTRY_DIR, repo, digest + 7);
}

int s3d_svc_upload_dir(const char *repo, const char *uuid, s3d_buf *out)
{
	int rc = s3d_svc_check_repo(repo, NULL);

	if (rc == S3D_OK)
		rc = s3d_svc_check_uuid(uuid, NULL);
	if (rc != S3D_OK)
		return rc;
	s3d_buf_reset(out);
	return s3d_buf_printf(out, "/%srepositories/%s/_uploads/%s", S3D_SVC_REGISTRY_DIR,
			      repo, uuid);
}

int s3d_svc_startedat_path(const char *repo, const char *uuid, s3d_buf *out)
{
	int rc = s3d_svc_upload_dir(repo, uuid, out);

	return rc ? rc : s3d_buf_appendz(out, "/startedat");
}

/* ----------------------------------------------------------------- marker */

int s3d_svc_marker_put_if(s3d_service *svc, const s3d_session *s, const char *if_match,
			  char etag_out[136], s3d_error *err)
{
	s3d_obj_info info;
	s3d_put_opts po;
	s3d_error e;
	s3d_kv h[1];
	s3d_buf key, body;
	int rc;

	s3d_buf_init(&key, 2048);
	s3d_buf_init(&body, MARKER_MAX);
	po = *s3d_driver_put_opts(svc->d);
	if (if_match && *if_match) {
		h[0].name = "If-Match";
		h[0].value = if_match;
		po.headers = h;
		po.nheaders = 1;
	}
	rc = s3d_svc_marker_key(svc, s->uuid, &key);
	if (rc == S3D_OK)
		rc = s3d_session_encode(s, &body);
	if (rc == S3D_OK) {
		memset(&info, 0, sizeof(info));
		s3d_error_clear(&e);
		rc = s3d_put_object(svc->d->client, svc->d->bucket, s3d_buf_str(&key),
				    body.ptr ? body.ptr : (const uint8_t *)"", body.len, &po, &info, &e);
		if (rc == S3D_OK && etag_out)
			memcpy(etag_out, info.etag, sizeof(info.etag));
		/* PreconditionFailed: another process rewrote it; NoSuchKey
		 * (some servers, If-Match on a deleted key; the client maps a 404
		 * to S3D_E_NOTFOUND): it ended */
		if (if_match && *if_match &&
		    (rc == S3D_E_NOTFOUND || (rc == S3D_E_S3 && e.http_status == 412)))
			rc = s3d_err_set(&e, S3D_E_CONFLICT,
					 "the upload session changed in another registry process");
		if (rc != S3D_OK && err)
			*err = e;
	} else {
		s3d_err_set(err, rc, "cannot encode session marker");
	}
	s3d_buf_cleanup(&body);
	s3d_buf_cleanup(&key);
	return rc;
}

int s3d_svc_marker_put(s3d_service *svc, const s3d_session *s, s3d_error *err)
{
	return s3d_svc_marker_put_if(svc, s, NULL, NULL, err);
}

static int collect(void *ud, const uint8_t *p, size_t n)
{
	return s3d_buf_append(ud, p, n) != S3D_OK;
}

int s3d_svc_marker_get(s3d_service *svc, const char *uuid, s3d_session *out,
		       s3d_error *err)
{
	return s3d_svc_marker_get_etag(svc, uuid, out, NULL, err);
}

int s3d_svc_marker_get_etag(s3d_service *svc, const char *uuid, s3d_session *out,
			    char etag[136], s3d_error *err)
{
	s3d_obj_info info;
	s3d_buf key, body;
	s3d_error e;
	int rc;

	memset(&info, 0, sizeof(info));
	s3d_error_clear(&e);
	s3d_buf_init(&key, 2048);
	s3d_buf_init(&body, MARKER_MAX);
	rc = s3d_svc_marker_key(svc, uuid, &key);
	if (rc == S3D_OK)
		rc = s3d_get_object(svc->d->client, svc->d->bucket, s3d_buf_str(&key), 0, -1,
				    collect, &body, &info, &e);
	if (rc == S3D_OK && etag)
		memcpy(etag, info.etag, sizeof(info.etag));
	if (rc == S3D_E_S3 && e.http_status == 404)
		rc = S3D_E_NOTFOUND;
	if (rc == S3D_OK) {
		rc = s3d_session_decode(body.ptr, body.len, out);
		if (rc != S3D_OK)
			s3d_err_set(&e, rc, "malformed session marker %s", s3d_buf_str(&key));
		else if (strcmp(out->uuid, uuid) != 0)
			rc = s3d_err_set(&e, S3D_E_PROTOCOL, "session marker %s names another session",
					 s3d_buf_str(&key));
	}
	if (rc != S3D_OK && err)
		*err = e;
	s3d_buf_cleanup(&body);
	s3d_buf_cleanup(&key);
	return rc;
}

int s3d_svc_marker_delete(s3d_service *svc, const char *uuid, s3d_error *err)
{
	s3d_buf key;
	int rc;

	s3d_buf_init(&key, 2048);
	rc = s3d_svc_marker_key(svc, uuid, &key);
	if (rc == S3D_OK)
		rc = s3d_delete_object(svc->d->client, svc->d->bucket, s3d_buf_str(&key), err);
	if (rc == S3D_E_NOTFOUND)
		rc = S3D_OK;
	s3d_buf_cleanup(&key);
	return rc;
}

/* ----------------------------------------------------------------- lookup */

static int from_marker(s3d_service *svc, const char *uuid, const s3d_session *cached,
		       s3d_session *out, s3d_svc_marker_seen *seen, s3d_error *err)
{
	char etag[136] = "";
	int rc = s3d_svc_marker_get_etag(svc, uuid, out, etag, err);

	if (rc == S3D_E_NOTFOUND)
		return s3d_err_set(err, rc, "upload session %s is unknown or ended", uuid);
	if (rc != S3D_OK)
		return rc;
	if (seen) {
		seen->read = 1;
		seen->rec = *out;
		memcpy(seen->etag, etag, sizeof(etag));
	}
	/* the index's record stands unless the marker is newer: a marker read
	 * just before this process changed the record must not undo it */
	if (cached && (out->updated < cached->updated ||
		       (out->updated == cached->updated &&
			(cached->status == S3D_SESSION_FINALIZING ||
			 memcmp(cached, out, sizeof(*out)) == 0)))) {
		*out = *cached;
		return S3D_OK;
	}
	/* cache what S3 says, if the index did not change since it was read */
	rc = s3d_index_put(svc->ix, out,
			   cached ? S3D_SESSION_BIT(cached->status) : S3D_INDEX_ABSENT, NULL, err);
	/* a terminal record written meanwhile wins: report it */
	if (rc == S3D_E_CONFLICT)
		rc = s3d_index_get(svc->ix, uuid, out, err);
	return rc;
}

int s3d_svc_lookup(s3d_service *svc, const char *repo, const char *uuid,
		   int fresh, s3d_session *out, s3d_svc_marker_seen *seen, s3d_error *err)
{
	s3d_session cached;
	int rc, have;

	if (seen)
		memset(seen, 0, sizeof(*seen));
	rc = s3d_svc_check_uuid(uuid, err);
	if (rc != S3D_OK)
		return s3d_err_set(err, S3D_E_NOTFOUND, "upload session %s is unknown", uuid ? uuid : "");
	rc = s3d_index_get(svc->ix, uuid, &cached, err);
	if (rc != S3D_OK && rc != S3D_E_NOTFOUND)
		return rc;
	have = rc == S3D_OK;
	if (have && ((S3D_SESSION_BIT(cached.status) & S3D_SVC_TERMINAL) || !fresh))
		*out = cached;
	else
		rc = from_marker(svc, uuid, have ? &cached : NULL, out, seen, err);
	if (rc != S3D_OK)
		return rc;
	if (!repo || strcmp(out->repo, repo) != 0)
		return s3d_err_set(err, S3D_E_NOTFOUND, "upload session %s is unknown in this repository",
				   uuid);
	return S3D_OK;
}

int s3d_svc_save(s3d_service *svc, const s3d_session *s, unsigned from_mask,
		 s3d_session *current, s3d_error *err)
{
	s3d_session cur;
	s3d_error e;
	int rc;

	s3d_session_init(&cur);
	rc = s3d_svc_marker_put(svc, s, err);
	if (rc == S3D_OK)
		rc = s3d_index_put(svc->ix, s, from_mask, &cur, err);
	/* the marker just written is the loser's: put the winner's back (best
	 * effort), or S3 would be behind the index */
	if (rc == S3D_E_CONFLICT && strcmp(cur.uuid, s->uuid) == 0) {
		s3d_error_clear(&e);
		s3d_svc_marker_put(svc, &cur, &e);
	}
	if (rc == S3D_E_CONFLICT && current)
		*current = cur;
	return rc;
}

/* ---------------------------------------------------------------- cleanup */

struct abort_ctx {
	s3d_service *svc;
	const char *key;
	s3d_sweep_stats *st;
	int rc;
	s3d_error *err;
};

static int abort_listed(void *ud, const s3d_list_entry *e)
{
	struct abort_ctx *a = ud;
	int rc;

	/* MinIO lists uploads of the exact key only; others by prefix */
	if (e->kind != S3D_ENTRY_UPLOAD || strcmp(e->key, a->key) != 0)
		return 0;
	rc = s3d_abort_multipart(a->svc->d->client, a->svc->d->bucket, e->key, e->upload_id,
				 a->err);
	if (rc == S3D_OK && a->st)
		a->st->aborted_uploads++;
	else if (rc != S3D_OK && rc != S3D_E_NOTFOUND) /* NoSuchUpload: gone already */
		a->rc = rc;
	return 0;
}

int s3d_svc_discard_bytes(s3d_service *svc, const s3d_session *s,
			  s3d_sweep_stats *st, s3d_error *err)
{
	struct abort_ctx a;
	s3d_list_opts o;
	s3d_buf temp;
	int rc;

	/* a direct upload's key is the blob itself, and its temp key is never
	 * written: nothing of it is removed here */
	if (s->direct)
		return S3D_OK;
	s3d_buf_init(&temp, 2048);
	rc = s3d_svc_temp_key(svc, s->uuid, &temp);
	if (rc != S3D_OK)
		goto out;
	memset(&a, 0, sizeof(a));
	a.svc = svc;
	a.key = s3d_buf_str(&temp);
	a.st = st;
	a.err = err;
	memset(&o, 0, sizeof(o));
	o.prefix = a.key;
	/* every upload of the temp key: the recorded one and any a crashed
	 * presign opened without recording it (only a multipart session's
	 * presign opens one) */
	if (s->mode != S3D_MODE_SINGLE)
		rc = s3d_list_multipart_uploads(svc->d->client, svc->d->bucket, &o, abort_listed,
						&a, err);
	if (rc == S3D_OK)
		rc = a.rc;
	if (rc != S3D_OK)
		goto out;
	rc = s3d_delete_object(svc->d->client, svc->d->bucket, a.key, err);
	if (rc == S3D_E_NOTFOUND)
		rc = S3D_OK;
out:
	s3d_buf_cleanup(&temp);
	return rc;
}

int s3d_svc_remove_upload(s3d_service *svc, const s3d_session *s, s3d_error *err)
{
	s3d_buf dir;
	int rc;

	s3d_buf_init(&dir, 2048);
	rc = s3d_svc_upload_dir(s->repo, s->uuid, &dir);
	if (rc == S3D_OK)
		rc = s3d_driver_delete(svc->d, s3d_buf_str(&dir), err);
	if (rc == S3D_E_NOTFOUND)
		rc = S3D_OK;
	if (rc == S3D_OK)
		rc = s3d_svc_marker_delete(svc, s->uuid, err);
	s3d_buf_cleanup(&dir);
	return rc;
}

int s3d_service_lookup(s3d_service *svc, const char *repo, const char *uuid,
		       s3d_session *out, s3d_error *err)
{
	if (!svc || !out)
		return s3d_err_set(err, S3D_E_INVAL, "missing argument");
	return s3d_svc_lookup(svc, repo, uuid, 0, out, NULL, err);
}
