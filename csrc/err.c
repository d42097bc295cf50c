#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const messages[] = {
	[S3D_E_NOMEM - S3D_E_NOMEM] = "out of memory",
	[S3D_E_INVAL - S3D_E_NOMEM] = "invalid argument",
	[S3D_E_TOOBIG - S3D_E_NOMEM] = "size limit exceeded",
	[S3D_E_CRYPTO - S3D_E_NOMEM] = "cryptography failure",
	[S3D_E_TRANSPORT - S3D_E_NOMEM] = "transport failure",
	[S3D_E_TIMEOUT - S3D_E_NOMEM] = "timed out",
	[S3D_E_S3 - S3D_E_NOMEM] = "S3 error",
	[S3D_E_PROTOCOL - S3D_E_NOMEM] = "malformed S3 response",
	[S3D_E_ABORTED - S3D_E_NOMEM] = "aborted by callback",
	[S3D_E_DIGEST - S3D_E_NOMEM] = "digest mismatch",
	[S3D_E_IO - S3D_E_NOMEM] = "local I/O error",
	[S3D_E_NOTFOUND - S3D_E_NOMEM] = "not found",
	[S3D_E_CONFLICT - S3D_E_NOMEM] = "conflicting concurrent change",
	[S3D_E_STORE - S3D_E_NOMEM] = "session index failure",
	[S3D_E_EXPIRED - S3D_E_NOMEM] = "upload session expired",
	[S3D_E_STATE - S3D_E_NOMEM] = "invalid upload session state",
	[S3D_E_UNSUPPORTED - S3D_E_NOMEM] = "unsupported",
	[S3D_E_QUOTA - S3D_E_NOMEM] = "quota exceeded",
};

const char *s3d_strerror(int rc)
{
	if (rc == S3D_OK)
		return "success";
	if (rc >= S3D_E_NOMEM && rc < S3D_E_LAST)
		return messages[rc - S3D_E_NOMEM];
	return "unknown error";
}

void s3d_error_clear(s3d_error *err)
{
	if (err)
		memset(err, 0, sizeof(*err));
}

int s3d_err_vset(s3d_error *err, int rc, const char *fmt, va_list ap)
{
	if (err)
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
	return rc;
}

int s3d_err_set(s3d_error *err, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	s3d_err_vset(err, rc, fmt, ap);
	va_end(ap);
	return rc;
}

void s3d_error_format(const s3d_error *err, int rc, char *out, size_t cap)
{
	if (!out || cap == 0)
		return;
	if (!err || (!err->code[0] && !err->message[0] && !err->http_status)) {
		snprintf(out, cap, "%s", s3d_strerror(rc));
		return;
	}
	if (err->code[0] || err->http_status)
		snprintf(out, cap, "%s: %s (HTTP %d, request id %s%s%s)",
			 err->code[0] ? err->code : s3d_strerror(rc),
			 err->message[0] ? err->message : s3d_strerror(rc),
			 err->http_status,
			 err->request_id[0] ? err->request_id : "-",
			 err->resource[0] ? ", " : "", err->resource);
	else
		snprintf(out, cap, "%s: %s%s%s", s3d_strerror(rc), err->message,
			 err->resource[0] ? ", " : "", err->resource);
}
