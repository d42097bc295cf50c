/*
 * What s3d's commands share (csrc/s3d.c and the files of csrc/cli/): the
 * synopses in their usage texts, number parsing and the error line.
 */
#ifndef S3D_CLI_COMMON_H
#define S3D_CLI_COMMON_H

#include "s3direct.h"

/* Synopses, each line after "usage: " or 7 blanks (the alignment of the
 * continuation lines counts on it). */
#define S3D_CLI_PUSH_BLOB_SYNOPSIS                                      \
	"s3d push-blob --registry URL [--user USER:PASS] REPO FILE\n"   \
	"                     [--part-size BYTES] [--concurrency N]\n"
#define S3D_CLI_PUSH_SYNOPSIS \
	"s3d push --registry URL [--user USER:PASS] OCI_LAYOUT_DIR REPO:TAG\n"
#define S3D_CLI_GC_SYNOPSIS "s3d gc --config REGISTRY_CONFIG [--json]\n"
#define S3D_CLI_SESSIONS_SYNOPSIS \
	"s3d sessions --config REGISTRY_CONFIG [--json] [--index-only]\n"

/* A whole decimal number into *out: 1, or 0 (empty, trailing bytes, out
 * of range). */
int s3d_cli_parse_ll(const char *s, long long *out);

/*
 * "s3d[ CMD]: [WHAT: ]TEXT" on stderr (cmd and what may be NULL); returns 1,
 * the exit code of a runtime error. s3d_cli_fail's TEXT is
 * s3d_error_format's (code, message, HTTP status, request id, resource).
 */
int s3d_cli_error(const char *cmd, const char *what, const char *text);
int s3d_cli_fail(const char *cmd, const char *what, int rc, const s3d_error *err);

#endif
