package engine

/*
#include <stdlib.h>
#include <string.h>
#include "s3direct.h"
*/
import "C"

import (
	"strings"
	"unsafe"
)

// PresignQuery signs req in query form and returns only the final query
// string (what goes after '?'): the hot path of presigned uploads. The request
// and its strings cross into C in one allocation, and C results are reused
// across calls, so the C side allocates nothing once warm.
func (s *Signer) PresignQuery(req *SignRequest) (string, error) {
	const op = "s3d_sigv4_presign"
	if err := s.acquire(op); err != nil {
		return "", err
	}
	defer s.mu.RUnlock()
	if strings.IndexByte(req.Method, 0) >= 0 || strings.IndexByte(req.Host, 0) >= 0 ||
		strings.IndexByte(req.Path, 0) >= 0 || strings.IndexByte(req.PayloadHash, 0) >= 0 ||
		hasNUL(req.Query) || hasNUL(req.Headers) {
		return "", errInval(op, "a string with a NUL byte")
	}

	// Layout of the one allocation: request | kv array | strings.
	nkv := len(req.Query) + len(req.Headers)
	size := int(unsafe.Sizeof(C.s3d_sigv4_request{})) + nkv*int(unsafe.Sizeof(C.s3d_kv{}))
	size += len(req.Method) + len(req.Host) + len(req.Path) + len(req.PayloadHash) + 4
	for _, kv := range req.Query {
		size += len(kv.Name) + len(kv.Value) + 2
	}
	for _, kv := range req.Headers {
		size += len(kv.Name) + len(kv.Value) + 2
	}
	mem := C.malloc(C.size_t(size))
	if mem == nil {
		return "", errNoMem
	}
	defer C.free(mem)
	buf := unsafe.Slice((*byte)(mem), size)
	cr := (*C.s3d_sigv4_request)(mem)
	*cr = C.s3d_sigv4_request{}
	off := int(unsafe.Sizeof(C.s3d_sigv4_request{}))
	var kvs []C.s3d_kv
	if nkv > 0 {
		kvs = unsafe.Slice((*C.s3d_kv)(unsafe.Pointer(&buf[off])), nkv)
		off += nkv * int(unsafe.Sizeof(C.s3d_kv{}))
	}
	put := func(v string) *C.char {
		p := (*C.char)(unsafe.Pointer(&buf[off]))
		off += copy(buf[off:], v)
		buf[off] = 0
		off++
		return p
	}
	cr.method = put(req.Method)
	cr.path = put(req.Path)
	if req.Host != "" {
		cr.host = put(req.Host)
	}
	if req.PayloadHash != "" {
		cr.payload_hash = put(req.PayloadHash)
	}
	for i, kv := range req.Query {
		kvs[i].name, kvs[i].value = put(kv.Name), put(kv.Value)
	}
	for i, kv := range req.Headers {
		j := len(req.Query) + i
		kvs[j].name, kvs[j].value = put(kv.Name), put(kv.Value)
	}
	if len(req.Query) > 0 {
		cr.query, cr.nquery = &kvs[0], C.size_t(len(req.Query))
	}
	if len(req.Headers) > 0 {
		cr.headers, cr.nheaders = &kvs[len(req.Query)], C.size_t(len(req.Headers))
	}
	cr.when = C.time_t(req.When.Unix())
	cr.expires = C.int64_t(req.Expires)
	cr.flags = C.uint(req.Flags)

	var r *C.s3d_sigv4_result
	select {
	case r = <-s.results:
	default:
		if r = newResult(); r == nil {
			return "", errNoMem
		}
	}
	defer func() {
		select {
		case s.results <- r:
		default:
			freeResult(r)
		}
	}()
	if rc := C.s3d_sigv4_presign(s.s, cr, r); rc != C.S3D_OK {
		return "", engineError(op, rc)
	}
	return bufString(&r.query), nil
}
