/* Bounded byte buffers (declared in s3direct.h) and small helpers on them. */
#ifndef S3D_BUF_H
#define S3D_BUF_H
#include "s3direct.h"

#define S3D_BUF_STR_MAX (64u * 1024u) /* default ceiling for small strings */

#include <string.h>

/* s3d_buf_append with the common case inline (room already there). The
 * ceiling still holds: cap never exceeds max + 1. */
static inline int s3d_buf_put(s3d_buf *b, const void *p, size_t n)
{
	if (b->ptr && n < b->cap - b->len) {
		memcpy(b->ptr + b->len, p, n);
		b->len += n;
		b->ptr[b->len] = 0;
		return S3D_OK;
	}
	return s3d_buf_append(b, p, n);
}

static inline int s3d_buf_putc(s3d_buf *b, char c)
{
	if (b->ptr && 1 < b->cap - b->len) {
		b->ptr[b->len++] = (uint8_t)c;
		b->ptr[b->len] = 0;
		return S3D_OK;
	}
	return s3d_buf_append(b, &c, 1);
}

/* Copies a NUL-terminated string into a fixed field; S3D_E_TOOBIG if it does not fit. */
int s3d_strlcpy(char *dst, size_t cap, const char *src, size_t n);

#endif
