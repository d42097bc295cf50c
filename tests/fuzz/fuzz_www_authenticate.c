/*
 * libFuzzer target for s3d_reg_parse_challenge (WWW-Authenticate values).
 * Checked with abort(): an accepted value yields a Bearer or Basic
 * challenge whose fields are NUL-terminated and free of control
 * characters (they go into URLs and terminals); a refused one leaves the
 * output zeroed; and a value is parsed the same whatever follows its n
 * bytes (no read past n).
 *
 *   make fuzz (libFuzzer) or build/test/fuzz_www_authenticate DIR (replay)
 */
#include "regclient.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_field(const char *s, size_t cap)
{
	size_t i, n = strnlen(s, cap);

	if (n == cap)
		abort();
	for (i = 0; i < n; i++)
		if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const s3d_reg_challenge zero;
	s3d_reg_challenge ch, again;
	char *copy;
	int rc;

	rc = s3d_reg_parse_challenge((const char *)data, size, &ch);
	if (rc == S3D_OK) {
		if (ch.scheme != S3D_REG_AUTH_BASIC && ch.scheme != S3D_REG_AUTH_BEARER)
			abort();
		check_field(ch.realm, sizeof(ch.realm));
		check_field(ch.service, sizeof(ch.service));
		check_field(ch.scope, sizeof(ch.scope));
		check_field(ch.error, sizeof(ch.error));
	} else if (memcmp(&ch, &zero, sizeof(ch)) != 0) {
		abort();
	}
	/* the same bytes followed by junk, parsed with the same n */
	copy = malloc(size + 8);
	if (!copy)
		return 0;
	if (size)
		memcpy(copy, data, size);
	memcpy(copy + size, "\"x=,\\\r\n", 8);
	if (s3d_reg_parse_challenge(copy, size, &again) != rc ||
	    memcmp(&ch, &again, sizeof(ch)) != 0)
		abort();
	free(copy);
	return 0;
}
