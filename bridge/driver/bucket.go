package s3direct

/*
#include <stdlib.h>
#include "s3direct.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Helpers for the tests (cgo cannot be used in _test.go files) and tools:
// not part of the StorageDriver.

// createBucket creates the bucket named by parameters (which must pass
// parseParameters) with the engine's client; a bucket we already own is
// fine.
func createBucket(parameters map[string]any) error {
	p, err := parseParameters(parameters)
	if err != nil {
		return err
	}
	var cs cstrings
	defer cs.free()
	var cfg C.s3d_client_config
	p.clientConfig(&cfg, &cs)
	var c *C.s3d_client
	if rc := C.s3d_client_new(&cfg, &c); rc != C.S3D_OK {
		return fmt.Errorf("s3direct: S3 client for %s: %s", p.endpoint, C.GoString(C.s3d_strerror(rc)))
	}
	defer C.s3d_client_free(c)
	var e C.s3d_error
	if rc := C.s3d_create_bucket(c, cs.str(p.bucket, false), &e); rc != C.S3D_OK {
		return fmt.Errorf("s3direct: create bucket %s: %s", p.bucket, formatError(rc, &e))
	}
	return nil
}

// putRawObject stores data at the bucket key key (not a driver path: the
// caller adds rootdirectory), bypassing the driver's path checks: tests use
// it to create what other tools leave behind, such as keys ending in '/'.
func (d *Driver) putRawObject(key string, data []byte) error {
	dr := d.StorageDriver.(*driver)
	cb, ck := C.CString(dr.bucket), C.CString(key)
	defer C.free(unsafe.Pointer(cb))
	defer C.free(unsafe.Pointer(ck))
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	var e C.s3d_error
	if rc := C.s3d_put_object(C.s3d_driver_client(dr.c), cb, ck, p, C.size_t(len(data)), nil, nil, &e); rc != C.S3D_OK {
		return fmt.Errorf("put %s: %s", key, formatError(rc, &e))
	}
	return nil
}

// deleteRawObject removes the bucket key key.
func (d *Driver) deleteRawObject(key string) error {
	dr := d.StorageDriver.(*driver)
	cb, ck := C.CString(dr.bucket), C.CString(key)
	defer C.free(unsafe.Pointer(cb))
	defer C.free(unsafe.Pointer(ck))
	var e C.s3d_error
	if rc := C.s3d_delete_object(C.s3d_driver_client(dr.c), cb, ck, &e); rc != C.S3D_OK {
		return fmt.Errorf("delete %s: %s", key, formatError(rc, &e))
	}
	return nil
}
