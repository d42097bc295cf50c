/* Error codes, their text, and the s3d_error detail helpers. */
#ifndef S3D_ERR_H
#define S3D_ERR_H
#include "s3direct.h"

#include <stdarg.h>

/* Records a local (non-S3) failure in err (may be NULL); returns rc. */
int s3d_err_set(s3d_error *err, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* s3d_err_set with a va_list. */
int s3d_err_vset(s3d_error *err, int rc, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

#endif
