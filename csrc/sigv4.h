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
/*
 * SHA-256 of the file at fd, read with pread from offset 0: want bytes
 * (S3D_E_IO if the file ends before), or to its end when want < 0. *total
 * gets the bytes hashed, *sys_errno the errno of a failed read (0 when the
 * file ended early); either may be NULL.
 */
int s3d_sha256_fd(int fd, int64_t want, uint8_t md[32], int64_t *total, int *sys_errno);
/* Formats t as YYYYMMDDTHHMMSSZ into out[17]. */
int s3d_sigv4_amz_date(time_t t, char out[17]);

#endif
