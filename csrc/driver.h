/*
 * Internal view of the storage driver shared by driver.c (metadata
 * operations), reader.c (streaming reads) and upload.c (the writer).
 */
#ifndef S3D_DRIVER_H
#define S3D_DRIVER_H

#include "s3direct.h"

#define S3D_DRIVER_TAIL_PREFIX "_s3direct/tails/" /* below root */
#define S3D_DRIVER_PRIVATE_DIR "_s3direct"        /* hidden from List/Stat/Walk */
#define S3D_MIN_PART (5u * 1024u * 1024u)

struct s3d_driver {
	s3d_client *client;
	char bucket[256];
	char root[1024];        /* "" or "a/b/" (always ends with '/' when set) */
	s3d_driver_config cfg;  /* numeric options; string fields point below */
	char storage_class[64];
	char acl[64];
	char sse[32];
	char sse_kms_key_id[256];
	int tails_marked;       /* s3d_driver_mark_tails ran (atomic) */
	s3d_part_budget *budget; /* the writers' shared part buffers, or NULL */
};

/* The put options every object of this driver carries (NULL fields unset). */
const s3d_put_opts *s3d_driver_put_opts(const s3d_driver *d);
/* Driver path of a key below root (inverse of s3d_driver_key). */
int s3d_driver_path_of(const s3d_driver *d, const char *key, size_t keylen, s3d_buf *out);
/* Writes the tails area's directory marker once per driver (best effort). */
void s3d_driver_mark_tails(s3d_driver *d);
/* 1 when key lies in the driver's private area (never listed). */
int s3d_driver_is_private(const s3d_driver *d, const char *key);
/*
 * Server-side copy of object key src to key dst (keys, not driver paths:
 * private keys are allowed), size bytes: one CopyObject up to the copy
 * threshold, parallel UploadPartCopy beyond. The destination gets the
 * driver's put options.
 */
int s3d_driver_copy_key(s3d_driver *d, const char *src, const char *dst, int64_t size,
			s3d_error *err);

#endif
