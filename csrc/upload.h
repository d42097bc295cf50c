/*
 * The registry's FileWriter (public API in s3direct.h): what upload.c keeps
 * in S3 between a Close and a later open, for driver.c and the tests.
 *
 * State of a path whose key is K, all of it in S3:
 *   - at most one multipart upload of K (ListMultipartUploads prefix=K,
 *     Key == K; the newest wins, others are aborted when found), holding
 *     parts 1..N, every one >= 5 MiB;
 *   - at most one tail object, the bytes after the parts (< 5 MiB), at
 *     tail_key(K) (see s3d_upload_tail_key) with x-amz-meta-s3direct: "<upload-id or '->:<offset>",
 *     offset = bytes in the parts before it. A tail whose stamp does not
 *     match the upload found and its parts' sum is stale and ignored.
 *   - the committed object K (only appended to when neither of the above exists).
 */
#ifndef S3D_UPLOAD_H
#define S3D_UPLOAD_H

#include "driver.h"

#define S3D_UPLOAD_STAMP_HEADER "x-amz-meta-s3direct"

#define S3D_UPLOAD_KEY_MAX 1024   /* S3's longest key */
#define S3D_UPLOAD_TAIL_NAME_MAX 240 /* one file name on a file-system store */
#define S3D_UPLOAD_TAIL_SEP '!'   /* stands for '/': never in a path's key */
#define S3D_UPLOAD_TAIL_HASHED_PREFIX "_s3direct/tails-by-hash/" /* below root */

/*
 * Tail key of key (which starts with the driver's root) into out (reset
 * first): <root>_s3direct/tails/<key without the root, '/' as '!'>. Every
 * tail is one name in one directory (which s3d_driver_mark_tails marks):
 * stores that map keys onto a file system (versitygw's posix backend)
 * remove a directory once its last object goes, and a PUT into a directory
 * being removed fails (409 ExistingObjectIsDirectory), which nested tails of
 * concurrent uploads of one repository would race into. The tails of every
 * path below a directory share its prefix, so a Delete of the directory
 * finds them. A key longer than S3D_UPLOAD_TAIL_NAME_MAX below the root (or
 * too long for S3): <root>_s3direct/tails-by-hash/<hex SHA-256 of key>.
 */
int s3d_upload_tail_key(const s3d_driver *d, const char *key, s3d_buf *out);

#endif
