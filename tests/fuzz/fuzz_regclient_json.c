/*
 * libFuzzer target for regclient's JSON parsers: the input goes through the
 * presign (single and parts), token, OCI error, manifest, oci-layout and
 * index builders. Invariants the header promises are checked with abort(),
 * so a violation is a crash like any memory error: accepted URLs are
 * absolute http(s), header names are tokens and values carry no CR/LF,
 * tokens are visible ASCII, error fields carry no control character,
 * descriptors have sha256 digests and sizes >= 0, and a built index parses
 * back as an index with the same descriptors.
 *
 *   make fuzz (libFuzzer) or build/test/fuzz_regclient_json DIR (replay)
 */
#include "regclient.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_clean(const char *s, size_t cap)
{
	size_t i, n = strnlen(s, cap);

	if (n == cap)
		abort(); /* not NUL-terminated */
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			abort();
}

static void check_url(const char *u)
{
	if (!u || (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) ||
	    strlen(u) > S3D_REG_URL_MAX || strpbrk(u, " \r\n\t"))
		abort();
}

static void check_headers(const s3d_reg_presign *p)
{
	size_t i;

	if (p->nheaders > S3D_REG_MAX_HEADERS)
		abort();
	for (i = 0; i < p->nheaders; i++) {
		if (!p->headers[i].name[0] || strpbrk(p->headers[i].name, " :\r\n\t") ||
		    strpbrk(p->headers[i].value, "\r\n"))
			abort();
	}
}

static void presign(const uint8_t *data, size_t size)
{
	s3d_reg_presign p;
	s3d_error err;
	int first, count, i;

	s3d_reg_presign_init(&p);
	s3d_error_clear(&err);
	if (s3d_reg_parse_presign_single(data, size, &p, &err) == S3D_OK) {
		check_url(p.url);
		check_headers(&p);
	}
	check_clean(err.message, sizeof(err.message));
	/* the part range comes from the input's length: any JSON can be tried */
	first = 1 + (int)(size % 7);
	count = 1 + (int)(size % 3);
	if (s3d_reg_parse_presign_parts(data, size, first, count, &p, &err) == S3D_OK) {
		if (p.nparts != count || p.first_part != first || p.part_size < 1 ||
		    p.part_size > (5LL << 30))
			abort();
		for (i = 0; i < count; i++)
			check_url(p.part_urls[i]);
		check_headers(&p);
	} else if (p.part_urls || p.url || p.headers) {
		abort(); /* cleaned on failure */
	}
	s3d_reg_presign_cleanup(&p);
}

static void token_and_error(const uint8_t *data, size_t size)
{
	s3d_buf tok;
	s3d_error err;
	size_t i;

	s3d_buf_init(&tok, S3D_REG_TOKEN_MAX);
	if (s3d_reg_parse_token(data, size, &tok, NULL) == S3D_OK) {
		if (tok.len == 0 || tok.len > S3D_REG_TOKEN_MAX)
			abort();
		for (i = 0; i < tok.len; i++)
			if (tok.ptr[i] <= 0x20 || tok.ptr[i] >= 0x7f)
				abort();
	}
	s3d_buf_cleanup(&tok);

	memset(&err, 0, sizeof(err));
	err.http_status = 499;
	if (s3d_reg_parse_error(data, size, &err) == S3D_OK) {
		if (!err.code[0] || err.http_status != 499)
			abort();
		check_clean(err.code, sizeof(err.code));
		check_clean(err.message, sizeof(err.message));
		check_clean(err.request_id, sizeof(err.request_id));
	} else if (err.code[0] || err.message[0]) {
		abort(); /* untouched on failure */
	}
}

static void check_manifest(const s3d_reg_manifest *m)
{
	size_t i;

	if (m->ndescs > S3D_REG_MAX_DESCS || (!m->is_index && m->ndescs < 1))
		abort();
	for (i = 0; i < m->ndescs; i++) {
		if (!s3d_reg_valid_digest(m->descs[i].digest) || m->descs[i].size < 0 ||
		    !m->descs[i].media_type[0] || strpbrk(m->descs[i].media_type, " \r\n"))
			abort();
	}
}

static void manifests(const uint8_t *data, size_t size)
{
	s3d_reg_manifest m, back;
	s3d_buf out;
	size_t i;

	s3d_reg_manifest_init(&m);
	s3d_reg_manifest_init(&back);
	if (s3d_reg_parse_manifest(data, size, &m, NULL) == S3D_OK)
		check_manifest(&m);
	(void)s3d_reg_parse_oci_layout(data, size, NULL);
	s3d_buf_init(&out, S3D_REG_JSON_MAX);
	if (s3d_reg_build_index(data, size, &out, NULL) == S3D_OK) {
		if (!m.is_index || s3d_reg_parse_manifest(out.ptr, out.len, &back, NULL) != S3D_OK ||
		    !back.is_index || !s3d_reg_is_index_type(back.media_type) ||
		    back.ndescs != m.ndescs)
			abort();
		for (i = 0; i < m.ndescs; i++)
			if (strcmp(m.descs[i].digest, back.descs[i].digest) != 0 ||
			    m.descs[i].size != back.descs[i].size)
				abort();
	}
	s3d_buf_cleanup(&out);
	s3d_reg_manifest_cleanup(&m);
	s3d_reg_manifest_cleanup(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	presign(data, size);
	token_and_error(data, size);
	manifests(data, size);
	return 0;
}
