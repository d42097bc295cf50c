/*
 * Internal view of the presigned upload service shared by service.c
 * (configuration, keys, session lookup and persistence), presign.c
 * (presign, status, cancel), finalize.c (finalize, repository usage) and
 * sweep.c (expiry).
 */
#ifndef S3D_SERVICE_H
#define S3D_SERVICE_H

#include "driver.h"
#include "s3direct.h"

#define S3D_SVC_SESSIONS_DIR "_s3direct/sessions/" /* below root: markers */
#define S3D_SVC_UPLOADS_DIR "_s3direct/uploads/"   /* below root: temp objects */
#define S3D_SVC_REGISTRY_DIR "docker/registry/v2/"  /* distribution's layout */
#define S3D_SVC_META_PREFIX "session:"             /* x-amz-meta-s3direct value */
#define S3D_SVC_MAX_PARTS 10000
#define S3D_SVC_MAX_PART_URLS 1000                 /* per presign call */

struct s3d_service {
	s3d_driver *d;              /* borrowed */
	s3d_index *ix;
	s3d_service_config cfg;     /* defaults applied */
};

/* Statuses after which a session never changes again. */
#define S3D_SVC_TERMINAL                                                      \
	(S3D_SESSION_BIT(S3D_SESSION_COMPLETED) |                             \
	 S3D_SESSION_BIT(S3D_SESSION_FAILED) |                                \
	 S3D_SESSION_BIT(S3D_SESSION_CANCELLED) |                             \
	 S3D_SESSION_BIT(S3D_SESSION_EXPIRED))
/* Statuses of a session still taking bytes. */
#define S3D_SVC_OPEN                                                          \
	(S3D_SESSION_BIT(S3D_SESSION_PENDING) |                               \
	 S3D_SESSION_BIT(S3D_SESSION_UPLOADING))

/*
 * Whether session s still takes bytes at now (unix seconds; INT64_MIN: its
 * end is not checked): S3D_OK for a pending or uploading session. Else err
 * says why: S3D_E_NOTFOUND when completed, failed or cancelled;
 * S3D_E_EXPIRED when expired or at its end; S3D_E_CONFLICT while a finalize
 * holds it. Callers that answer otherwise for one of these handle it first
 * (or map the code after).
 */
int s3d_svc_check_open(const s3d_session *s, int64_t now, s3d_error *err);

/* Names: S3D_E_INVAL (with a message in err) when malformed. The repository
 * follows the OCI name grammar (at most 255 bytes); the uuid is 1..64 of
 * [A-Za-z0-9-_]. */
int s3d_svc_check_repo(const char *repo, s3d_error *err);
int s3d_svc_check_uuid(const char *uuid, s3d_error *err);
/*
 * A "sha256:<64 lower-case hex>" digest into raw (may be NULL).
 * S3D_E_UNSUPPORTED for another well-formed algorithm (sha512:...),
 * S3D_E_DIGEST when malformed; err says why.
 */
int s3d_svc_parse_digest(const char *digest, uint8_t raw[32], s3d_error *err);

/* Object keys (with the root). */
int s3d_svc_temp_key(const s3d_service *svc, const char *uuid, s3d_buf *out);
int s3d_svc_marker_key(const s3d_service *svc, const char *uuid, s3d_buf *out);
int s3d_svc_blob_key(const s3d_service *svc, const char *digest, s3d_buf *out);
/* Driver paths ("/docker/registry/v2/..."), for the s3d_driver_* calls. */
int s3d_svc_blob_path(const char *digest, s3d_buf *out);
int s3d_svc_link_path(const char *repo, const char *digest, s3d_buf *out);
int s3d_svc_upload_dir(const char *repo, const char *uuid, s3d_buf *out);
int s3d_svc_startedat_path(const char *repo, const char *uuid, s3d_buf *out);

/* The session marker in S3 (the record, s3d_session_encode'd). */
int s3d_svc_marker_put(s3d_service *svc, const s3d_session *s, s3d_error *err);
/* The same, written only when the marker's ETag still is if_match
 * (conditional write; NULL or "": unconditional). S3D_E_CONFLICT when
 * another process rewrote or removed it meanwhile. etag_out (may be NULL)
 * receives the new marker's ETag. */
int s3d_svc_marker_put_if(s3d_service *svc, const s3d_session *s, const char *if_match,
			  char etag_out[136], s3d_error *err);
/* S3D_E_NOTFOUND when absent. */
int s3d_svc_marker_get(s3d_service *svc, const char *uuid, s3d_session *out,
		       s3d_error *err);
/* The same, with the marker's ETag (quotes included) into etag. */
int s3d_svc_marker_get_etag(s3d_service *svc, const char *uuid, s3d_session *out,
			    char etag[136], s3d_error *err);
/* Absent is fine. */
int s3d_svc_marker_delete(s3d_service *svc, const char *uuid, s3d_error *err);

/* The marker as a lookup read it (a conditional rewrite needs its ETag). */
typedef struct s3d_svc_marker_seen {
	int read;               /* 0: the answer came from the index alone */
	s3d_session rec;        /* the marker's own record (out may differ) */
	char etag[136];         /* its ETag, quotes included ("" unknown) */
} s3d_svc_marker_seen;

/*
 * The session uuid of repo. fresh = 0: the index first, the marker on a
 * miss (then cached in the index). fresh = 1 (before a state change): the
 * marker is read even when the index has an open record; an open index
 * record whose marker is gone ended in another process: S3D_E_NOTFOUND.
 * Terminal records of the index are returned as they are.
 * S3D_E_NOTFOUND also when the session belongs to another repository.
 * seen (may be NULL) tells whether the marker was read, and what it held.
 */
int s3d_svc_lookup(s3d_service *svc, const char *repo, const char *uuid,
		   int fresh, s3d_session *out, s3d_svc_marker_seen *seen, s3d_error *err);

/*
 * Persists s: the marker first (so S3 is never behind the index for an
 * open session), then the index with the compare-and-set from_mask
 * (S3D_E_CONFLICT with current filled when it loses).
 */
int s3d_svc_save(s3d_service *svc, const s3d_session *s, unsigned from_mask,
		 s3d_session *current, s3d_error *err);

/*
 * Removes the bytes a session uploaded: aborts its multipart upload (the
 * recorded one, or any found for the temp key; multipart sessions only)
 * and deletes its temp object. Nothing for a direct session: its key is a
 * content-addressed blob, never deleted here. Counts aborted uploads in st
 * (may be NULL); a deleted temp object is not counted (S3 answers a delete
 * of an absent key alike). Absent pieces are fine.
 */
int s3d_svc_discard_bytes(s3d_service *svc, const s3d_session *s,
			  s3d_sweep_stats *st, s3d_error *err);
/* Deletes the stock upload directory and the marker (absent is fine). */
int s3d_svc_remove_upload(s3d_service *svc, const s3d_session *s, s3d_error *err);

#endif
