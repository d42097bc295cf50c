/* URI encoding exactly as SigV4 canonicalization expects (s3d_uri_encode in s3direct.h). */
#ifndef S3D_URI_H
#define S3D_URI_H
#include "s3direct.h"

/* Removes "." and ".." segments and collapses "//" (non-S3 services only). */
int s3d_uri_normalize_path(s3d_buf *out, const char *path, size_t n);

#endif
