#include "uri.h"

#include "buf.h"

#include <string.h>

/* 1 for A-Z a-z 0-9 - _ . ~ (never escaped), 2 for '/', 0 otherwise */
static const unsigned char plain[256] = {
	['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1, ['/'] = 2,
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
	['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1,
	['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,
	['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,
	['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1,
	['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,
	['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
	['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

int s3d_uri_encode(s3d_buf *out, const char *s, size_t n, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;
	uint8_t *w;
	int rc;

	/* room for the worst case up front, then write in place */
	if (n <= out->max / 3 && s3d_buf_reserve(out, 3 * n) == S3D_OK) {
		w = out->ptr + out->len;
		for (i = 0; i < n; i++) {
			unsigned char c = (unsigned char)s[i];
			unsigned char k = plain[c];

			if (k == 1 || (k == 2 && keep_slash)) {
				*w++ = c;
			} else {
				w[0] = '%';
				w[1] = (uint8_t)hex[c >> 4];
				w[2] = (uint8_t)hex[c & 15];
				w += 3;
			}
		}
		out->len = (size_t)(w - out->ptr);
		out->ptr[out->len] = 0;
		return S3D_OK;
	}
	/* near the ceiling: byte by byte, refusing only what does not fit */
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		unsigned char k = plain[c];
		char esc[3] = { '%', hex[c >> 4], hex[c & 15] };

		if (k == 1 || (k == 2 && keep_slash))
			rc = s3d_buf_putc(out, (char)c);
		else
			rc = s3d_buf_put(out, esc, 3);
		if (rc != S3D_OK)
			return rc;
	}
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
