/* Bounded byte buffers (declared in s3direct.h) and small helpers on them. */
#ifndef S3D_BUF_H
#define S3D_BUF_H
#include "s3direct.h"

#define S3D_BUF_STR_MAX (64u * 1024u) /* default ceiling for small strings */

/* Copies a NUL-terminated string into a fixed field; S3D_E_TOOBIG if it does not fit. */
int s3d_strlcpy(char *dst, size_t cap, const char *src, size_t n);

#endif
