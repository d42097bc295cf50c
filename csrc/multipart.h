/*
 * Parallel multipart upload (public API in s3direct.h): part transfers on one
 * curl multi handle driven in the calling thread, a fixed pool of part
 * buffers reused across parts. Private helpers for zero-copy producers
 * (s3d_upload_file reads a file straight into the part buffers) and for tests.
 */
#ifndef S3D_MULTIPART_H
#define S3D_MULTIPART_H

#include "s3direct.h"

#define S3D_MPU_MIN_PART (5u * 1024u * 1024u)             /* S3 minimum (but the last) */
#define S3D_MPU_DEFAULT_PART (16u * 1024u * 1024u)
#define S3D_MPU_MAX_PART ((size_t)5 * 1024u * 1024u * 1024u) /* S3 maximum */
#define S3D_MPU_DEFAULT_IN_FLIGHT 4
#define S3D_MPU_MAX_IN_FLIGHT 64
#define S3D_MPU_MAX_PARTS 10000

/*
 * Where the next bytes of the upload go: *p receives the free tail of the
 * filling part buffer and *room its size (> 0). The buffer is allocated on
 * first use and reused afterwards. Returns the upload's first error once a
 * part failed.
 */
int s3d_mpu_buffer(s3d_mpu *m, uint8_t **p, size_t *room, s3d_error *err);
/*
 * Accounts n bytes written into the tail given by s3d_mpu_buffer (n <= room).
 * A full part is handed to a transfer slot; blocks while every slot is busy.
 */
int s3d_mpu_commit(s3d_mpu *m, size_t n, s3d_error *err);
/*
 * Part buffers: part_size bytes of private anonymous memory (pages become
 * resident as they are written), freed with the same size.
 */
uint8_t *s3d_part_buf_new(size_t n);
void s3d_part_buf_free(uint8_t *p, size_t n);
/* Offers the buffer for transparent huge pages (best effort): pages written
 * afterwards become resident S3D_HUGE_PAGE at a time. */
#define S3D_HUGE_PAGE ((size_t)2 << 20)
void s3d_part_buf_huge(uint8_t *p, size_t n);
/*
 * Hands buf (from s3d_part_buf_new(part_size), len bytes filled) to a new
 * upload as its filling buffer, instead of copying it: only before the
 * upload has a buffer. A full one is sent at once. buf belongs to m (which
 * must not be NULL) from the call on, whatever it returns.
 */
int s3d_mpu_adopt(s3d_mpu *m, uint8_t *buf, size_t len, s3d_error *err);
/* Most part transfers seen in flight at once (tests check the window). */
int s3d_mpu_in_flight_peak(const s3d_mpu *m);

#endif
