/* AWS Signature Version 4, staged (see s3direct.h for the public API). */
#ifndef S3D_SIGV4_H
#define S3D_SIGV4_H
#include "s3direct.h"

#define S3D_SIGV4_MAX_PARAMS 64    /* query parameters, and headers, per request */
#define S3D_SIGV4_MAX_TEXT (256u * 1024u)

/* Lower-case hex of n bytes into out[2 * n + 1]. */
void s3d_hex(const uint8_t *in, size_t n, char *out);
/* Lower-case hex SHA-256 of data into out[65]. */
int s3d_sha256_hex(const void *data, size_t len, char out[65]);
/* Formats t as YYYYMMDDTHHMMSSZ into out[17]. */
int s3d_sigv4_amz_date(time_t t, char out[17]);

#endif
