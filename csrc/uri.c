#include "uri.h"

#include <string.h>

static int unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
	       c == '~';
}

int s3d_uri_encode(s3d_buf *out, const char *s, size_t n, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	char esc[3];
	size_t i, run;
	int rc;

	for (i = 0; i < n;) {
		/* copy the longest run of bytes that need no escaping at once */
		for (run = i; run < n; run++) {
			unsigned char c = (unsigned char)s[run];
			if (!unreserved(c) && !(keep_slash && c == '/'))
				break;
		}
		if (run > i) {
			rc = s3d_buf_append(out, s + i, run - i);
			if (rc != S3D_OK)
				return rc;
			i = run;
			continue;
		}
		esc[0] = '%';
		esc[1] = hex[(unsigned char)s[i] >> 4];
		esc[2] = hex[(unsigned char)s[i] & 15];
		rc = s3d_buf_append(out, esc, 3);
		if (rc != S3D_OK)
			return rc;
		i++;
	}
	/* an empty input still leaves a valid (empty) C string */
	return s3d_buf_reserve(out, 0);
}

/*
 * RFC 3986 remove_dot_segments plus collapsing of empty segments, as the AWS
 * SigV4 test suite expects for services other than S3. The result always
 * starts with '/' and keeps a trailing '/' when the input had one.
 */
int s3d_uri_normalize_path(s3d_buf *out, const char *path, size_t n)
{
	size_t i = 0, start, seglen, mark;
	int trailing = n > 0 && path[n - 1] == '/';
	int rc;

	rc = s3d_buf_appendc(out, '/');
	mark = out->len;
	while (rc == S3D_OK && i < n) {
		while (i < n && path[i] == '/')
			i++;
		start = i;
		while (i < n && path[i] != '/')
			i++;
		seglen = i - start;
		if (seglen == 0 || (seglen == 1 && path[start] == '.'))
			continue;
		if (seglen == 2 && path[start] == '.' && path[start + 1] == '.') {
			/* drop the last output segment, never above the root */
			while (out->len > mark && out->ptr[out->len - 1] != '/')
				out->len--;
			if (out->len > mark)
				out->len--;
			out->ptr[out->len] = 0;
			continue;
		}
		if (out->len > mark)
			rc = s3d_buf_appendc(out, '/');
		if (rc == S3D_OK)
			rc = s3d_buf_append(out, path + start, seglen);
	}
	if (rc == S3D_OK && trailing && out->len > mark)
		rc = s3d_buf_appendc(out, '/');
	return rc;
}
