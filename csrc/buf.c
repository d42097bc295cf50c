#include "buf.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void s3d_buf_init(s3d_buf *b, size_t max)
{
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

int s3d_buf_reserve(s3d_buf *b, size_t n)
{
	size_t need, ncap;
	uint8_t *p;

	if (n > b->max || b->len > b->max - n)
		return S3D_E_TOOBIG;
	need = b->len + n + 1; /* room for the terminator */
	if (need <= b->cap)
		return S3D_OK;
	ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	if (ncap > b->max + 1)
		ncap = b->max + 1;
	p = realloc(b->ptr, ncap);
	if (!p)
		return S3D_E_NOMEM;
	b->ptr = p;
	b->cap = ncap;
	return S3D_OK;
}

int s3d_buf_append(s3d_buf *b, const void *p, size_t n)
{
	int rc = s3d_buf_reserve(b, n);

	if (rc != S3D_OK)
		return rc;
	if (n)
		memcpy(b->ptr + b->len, p, n);
	b->len += n;
	b->ptr[b->len] = 0;
	return S3D_OK;
}

int s3d_buf_appendz(s3d_buf *b, const char *s)
{
	return s3d_buf_append(b, s, strlen(s));
}

int s3d_buf_appendc(s3d_buf *b, char c)
{
	return s3d_buf_append(b, &c, 1);
}

int s3d_buf_printf(s3d_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return S3D_E_INVAL;
	rc = s3d_buf_reserve(b, (size_t)n);
	if (rc != S3D_OK)
		return rc;
	va_start(ap, fmt);
	vsnprintf((char *)b->ptr + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return S3D_OK;
}

const char *s3d_buf_str(const s3d_buf *b)
{
	return b->ptr ? (const char *)b->ptr : "";
}

s3d_view s3d_buf_view(const s3d_buf *b)
{
	s3d_view v = { b->ptr, b->len };
	return v;
}

void s3d_buf_reset(s3d_buf *b)
{
	b->len = 0;
	if (b->ptr)
		b->ptr[0] = 0;
}

void s3d_buf_cleanup(s3d_buf *b)
{
	free(b->ptr);
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
}

void s3d_buf_cleanup_wipe(s3d_buf *b)
{
	if (b->ptr)
		OPENSSL_cleanse(b->ptr, b->cap);
	s3d_buf_cleanup(b);
}

int s3d_strlcpy(char *dst, size_t cap, const char *src, size_t n)
{
	if (cap == 0)
		return S3D_E_TOOBIG;
	if (n >= cap) {
		dst[0] = 0;
		return S3D_E_TOOBIG;
	}
	memcpy(dst, src, n);
	dst[n] = 0;
	return S3D_OK;
}
