/*
 * libFuzzer target for the session record codec (session_index.c): any
 * input either fails to decode or decodes into a record whose strings are
 * terminated within their fields and whose numbers are in range, and which
 * encodes and decodes back to the same record. Violations abort().
 *
 *   clang -fsanitize=fuzzer,address,undefined ... fuzz_session_decode.c libs3direct
 *   gcc -fsanitize=address,undefined ... fuzz_session_decode.c replay_main.c libs3direct
 */
#include "s3direct.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TERMINATED(f) (memchr((f), 0, sizeof(f)) != NULL)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	s3d_session a, b;
	s3d_buf enc;

	memset(&a, 0xa5, sizeof(a));
	if (s3d_session_decode(data, size, &a) != S3D_OK)
		return 0;
	if (!TERMINATED(a.uuid) || !a.uuid[0] || !TERMINATED(a.repo) || !TERMINATED(a.user) ||
	    !TERMINATED(a.key) || !TERMINATED(a.upload_id) || !TERMINATED(a.declared_digest) ||
	    !TERMINATED(a.final_digest) || !TERMINATED(a.detail))
		abort();
	if (a.status < S3D_SESSION_PENDING || a.status > S3D_SESSION_STATUS_MAX ||
	    a.mode < S3D_MODE_NONE || a.mode > S3D_MODE_MULTIPART || (a.direct != 0 && a.direct != 1) ||
	    a.declared_size < -1 || a.final_size < -1 || a.part_size < 0 || a.created < 0 ||
	    a.expires < 0 || a.updated < 0)
		abort();
	s3d_buf_init(&enc, 64u * 1024u);
	if (s3d_session_encode(&a, &enc) != S3D_OK)
		abort();
	memset(&b, 0x5a, sizeof(b));
	if (s3d_session_decode(enc.ptr, enc.len, &b) != S3D_OK)
		abort();
	/* field by field: padding bytes of the struct are not part of a record */
	if (strcmp(a.uuid, b.uuid) || strcmp(a.repo, b.repo) || strcmp(a.user, b.user) ||
	    strcmp(a.key, b.key) || strcmp(a.upload_id, b.upload_id) ||
	    strcmp(a.declared_digest, b.declared_digest) || strcmp(a.final_digest, b.final_digest) ||
	    strcmp(a.detail, b.detail) || a.status != b.status || a.mode != b.mode ||
	    a.direct != b.direct || a.declared_size != b.declared_size ||
	    a.final_size != b.final_size || a.part_size != b.part_size || a.created != b.created ||
	    a.expires != b.expires || a.updated != b.updated)
		abort();
	s3d_buf_cleanup(&enc);
	return 0;
}
