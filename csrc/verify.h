/*
 * Streaming SHA-256 verification (public API in s3direct.h): parallel ranged
 * GETs on one curl multi handle, hashed strictly in order. The variant here
 * also reports what the run cost, for tests and benchmarks.
 */
#ifndef S3D_VERIFY_H
#define S3D_VERIFY_H

#include "s3direct.h"

#define S3D_VERIFY_DEFAULT_RANGE (8u * 1024u * 1024u)
#define S3D_VERIFY_MAX_RANGE (1024u * 1024u * 1024u)
#define S3D_VERIFY_DEFAULT_IN_FLIGHT 4
#define S3D_VERIFY_MAX_IN_FLIGHT 64

typedef struct s3d_verify_stats {
	int64_t ranges;        /* ranges fetched and hashed */
	int64_t attempts;      /* GET attempts, retries included */
	int in_flight_peak;    /* most GETs running at once */
	size_t peak_memory;    /* bytes of range buffers held (allocated up front) */
} s3d_verify_stats;

/*
 * s3d_verify_sha256 of the object a HEAD just described (info: its size and
 * ETag), without another HEAD: every range is read If-Match that ETag, so an
 * object replaced since fails (412).
 */
int s3d_verify_sha256_of(s3d_client *c, const char *bucket, const char *key,
			 const s3d_verify_config *cfg, const s3d_obj_info *info,
			 uint8_t digest[32], int64_t *size_out, s3d_error *err);

/* s3d_verify_sha256 that also fills stats (may be NULL; zeroed first). */
int s3d_verify_sha256_stats(s3d_client *c, const char *bucket, const char *key,
			    const s3d_verify_config *cfg, uint8_t digest[32],
			    int64_t *size_out, s3d_verify_stats *stats,
			    s3d_error *err);

#endif
