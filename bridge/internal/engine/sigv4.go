// Package engine is the cgo bridge to the s3direct C engine (libs3direct).
// It only marshals: every S3 and signing rule lives in C. The library is
// linked statically from build/libs3direct.a, so run `make build` first.
package engine

/*
#cgo CFLAGS: -I${SRCDIR}/../../../csrc/include
#cgo LDFLAGS: ${SRCDIR}/../../../build/libs3direct.a -lcurl -lssl -lcrypto -lxml2 -llmdb -lpthread
#include <stdlib.h>
#include <string.h>
#include "s3direct.h"

static const char *s3d_go_unsigned_payload(void) { return S3D_UNSIGNED_PAYLOAD; }
static const char *s3d_go_empty_sha256(void) { return S3D_EMPTY_SHA256; }
*/
import "C"

import (
	"fmt"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// SigV4 request flags (s3d_sigv4_flags).
const (
	// FlagPathEncoded: Path is already URI-encoded and is not encoded again
	// (with FlagDoubleEncode it is encoded exactly once more).
	FlagPathEncoded uint = C.S3D_SIGV4_PATH_ENCODED
	// FlagNormalizePath removes dot segments (non-S3 services).
	FlagNormalizePath uint = C.S3D_SIGV4_NORMALIZE_PATH
	// FlagDoubleEncode encodes the path twice (non-S3 services).
	FlagDoubleEncode uint = C.S3D_SIGV4_DOUBLE_ENCODE
	// FlagContentSHA256Header adds and signs x-amz-content-sha256 (header form).
	FlagContentSHA256Header uint = C.S3D_SIGV4_CONTENT_SHA256_HEADER
	// FlagOmitSessionToken adds the session token after signing instead of
	// signing it.
	FlagOmitSessionToken uint = C.S3D_SIGV4_OMIT_SESSION_TOKEN
)

const (
	UnsignedPayload = "UNSIGNED-PAYLOAD"
	EmptySHA256     = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	// PresignMaxExpires is the largest X-Amz-Expires S3 accepts (7 days).
	PresignMaxExpires = int64(C.S3D_PRESIGN_MAX_EXPIRES)
)

func init() {
	// The Go copies of the header's string macros must not drift.
	if C.GoString(C.s3d_go_unsigned_payload()) != UnsignedPayload ||
		C.GoString(C.s3d_go_empty_sha256()) != EmptySHA256 {
		panic("engine: s3direct.h payload constants changed")
	}
}

// CodeInval is S3D_E_INVAL, the code of every rejected argument.
const CodeInval = int(C.S3D_E_INVAL)

// Error is a failed engine call: the C return code and its s3d_strerror text.
type Error struct {
	Op   string // the C function, e.g. "s3d_sigv4_presign"
	Code int    // S3D_E_* (negative)
	Msg  string // s3d_strerror(Code)
}

func (e *Error) Error() string {
	return fmt.Sprintf("s3direct: %s: %s (%d)", e.Op, e.Msg, e.Code)
}

func engineError(op string, rc C.int) error {
	return &Error{Op: op, Code: int(rc), Msg: C.GoString(C.s3d_strerror(rc))}
}

// errInval is returned for inputs C cannot represent (a NUL byte in a string).
func errInval(op, what string) error {
	rc := C.int(C.S3D_E_INVAL)
	return &Error{Op: op, Code: int(rc), Msg: C.GoString(C.s3d_strerror(rc)) + ": NUL byte in " + what}
}

// KV is one query parameter or header, raw (not encoded).
type KV struct {
	Name, Value string
}

// SignRequest mirrors s3d_sigv4_request. Strings are raw unless a flag says
// otherwise; Host may also be given as a "Host" entry of Headers.
type SignRequest struct {
	Method      string
	Host        string
	Path        string
	Query       []KV
	Headers     []KV
	PayloadHash string // hex SHA-256 or UNSIGNED-PAYLOAD; "" = unsigned
	When        time.Time
	Expires     int64 // query form: X-Amz-Expires, 1..604800
	Flags       uint
}

// Result mirrors s3d_sigv4_result.
type Result struct {
	AmzDate          string
	Signature        string
	CanonicalRequest string
	StringToSign     string
	SignedHeaders    string
	Authorization    string // header form: the Authorization value
	Query            string // query form: encoded query string incl. X-Amz-Signature
}

// Signer wraps an s3d_signer. Safe for concurrent use; Close must not race
// with other calls.
type Signer struct {
	mu      sync.RWMutex // Close takes it exclusively; calls share it
	s       *C.s3d_signer
	results chan *C.s3d_sigv4_result // reusable C results for PresignQuery
}

// cstrs owns the C copies of one call's strings.
type cstrs struct{ ptrs []unsafe.Pointer }

func (c *cstrs) str(s string) *C.char {
	p := C.CString(s)
	c.ptrs = append(c.ptrs, unsafe.Pointer(p))
	return p
}

// opt is str, but NULL for "".
func (c *cstrs) opt(s string) *C.char {
	if s == "" {
		return nil
	}
	return c.str(s)
}

func (c *cstrs) free() {
	for _, p := range c.ptrs {
		C.free(p)
	}
	c.ptrs = nil
}

// NewSigner creates a signer for (credentials, region, service); token may be "".
func NewSigner(access, secret, token, region, service string) (*Signer, error) {
	const op = "s3d_signer_new"
	for _, f := range []struct{ v, what string }{
		{access, "access key"}, {secret, "secret key"}, {token, "session token"},
		{region, "region"}, {service, "service"},
	} {
		if strings.IndexByte(f.v, 0) >= 0 {
			return nil, errInval(op, f.what)
		}
	}
	var cs cstrs
	defer cs.free()
	ca, csec := cs.str(access), cs.str(secret)
	defer C.memset(unsafe.Pointer(csec), 0, C.size_t(len(secret)))
	var s *C.s3d_signer
	rc := C.s3d_signer_new(ca, csec, cs.opt(token), cs.str(region), cs.str(service), &s)
	if rc != C.S3D_OK {
		return nil, engineError(op, rc)
	}
	return &Signer{s: s, results: make(chan *C.s3d_sigv4_result, 64)}, nil
}

// Close frees the signer (the C side wipes the secret). Safe to call twice.
func (s *Signer) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.s != nil {
		C.s3d_signer_free(s.s)
		s.s = nil
	}
	for {
		select {
		case r := <-s.results:
			freeResult(r)
		default:
			return
		}
	}
}

func (s *Signer) acquire(op string) error {
	s.mu.RLock()
	if s.s == nil {
		s.mu.RUnlock()
		rc := C.int(C.S3D_E_INVAL)
		return &Error{Op: op, Code: int(rc), Msg: C.GoString(C.s3d_strerror(rc)) + ": signer closed"}
	}
	return nil
}

func hasNUL(kvs []KV) bool {
	for _, kv := range kvs {
		if strings.IndexByte(kv.Name, 0) >= 0 || strings.IndexByte(kv.Value, 0) >= 0 {
			return true
		}
	}
	return false
}

// kvArray copies kvs into a malloc'd s3d_kv array (NULL when empty).
func kvArray(cs *cstrs, kvs []KV) *C.s3d_kv {
	if len(kvs) == 0 {
		return nil
	}
	p := C.calloc(C.size_t(len(kvs)), C.size_t(unsafe.Sizeof(C.s3d_kv{})))
	if p == nil {
		return nil
	}
	cs.ptrs = append(cs.ptrs, p)
	arr := unsafe.Slice((*C.s3d_kv)(p), len(kvs))
	for i, kv := range kvs {
		arr[i].name = cs.str(kv.Name)
		arr[i].value = cs.str(kv.Value)
	}
	return (*C.s3d_kv)(p)
}

// cRequest builds a malloc'd s3d_sigv4_request owned by cs.
func cRequest(op string, cs *cstrs, req *SignRequest) (*C.s3d_sigv4_request, error) {
	for _, f := range []struct{ v, what string }{
		{req.Method, "method"}, {req.Host, "host"}, {req.Path, "path"}, {req.PayloadHash, "payload hash"},
	} {
		if strings.IndexByte(f.v, 0) >= 0 {
			return nil, errInval(op, f.what)
		}
	}
	if hasNUL(req.Query) {
		return nil, errInval(op, "query")
	}
	if hasNUL(req.Headers) {
		return nil, errInval(op, "headers")
	}
	p := C.calloc(1, C.size_t(unsafe.Sizeof(C.s3d_sigv4_request{})))
	if p == nil {
		return nil, errNoMem
	}
	cs.ptrs = append(cs.ptrs, p)
	r := (*C.s3d_sigv4_request)(p)
	r.method = cs.str(req.Method)
	r.host = cs.opt(req.Host)
	r.path = cs.str(req.Path)
	r.query = kvArray(cs, req.Query)
	r.nquery = C.size_t(len(req.Query))
	r.headers = kvArray(cs, req.Headers)
	r.nheaders = C.size_t(len(req.Headers))
	if (len(req.Query) > 0 && r.query == nil) || (len(req.Headers) > 0 && r.headers == nil) {
		return nil, errNoMem
	}
	r.payload_hash = cs.opt(req.PayloadHash)
	r.when = C.time_t(req.When.Unix())
	r.expires = C.int64_t(req.Expires)
	r.flags = C.uint(req.Flags)
	return r, nil
}

// newResult is a malloc'd, initialized s3d_sigv4_result; free with freeResult.
func newResult() *C.s3d_sigv4_result {
	r := (*C.s3d_sigv4_result)(C.calloc(1, C.size_t(unsafe.Sizeof(C.s3d_sigv4_result{}))))
	if r != nil {
		C.s3d_sigv4_result_init(r)
	}
	return r
}

func freeResult(r *C.s3d_sigv4_result) {
	if r != nil {
		C.s3d_sigv4_result_cleanup(r)
		C.free(unsafe.Pointer(r))
	}
}

func bufString(b *C.s3d_buf) string {
	if b.ptr == nil || b.len == 0 {
		return ""
	}
	return C.GoStringN((*C.char)(unsafe.Pointer(b.ptr)), C.int(b.len))
}

func goResult(r *C.s3d_sigv4_result) Result {
	return Result{
		AmzDate:          C.GoString(&r.amz_date[0]),
		Signature:        C.GoString(&r.signature[0]),
		CanonicalRequest: bufString(&r.canonical_request),
		StringToSign:     bufString(&r.string_to_sign),
		SignedHeaders:    bufString(&r.signed_headers),
		Authorization:    bufString(&r.authorization),
		Query:            bufString(&r.query),
	}
}

var errNoMem = &Error{Op: "calloc", Code: int(C.S3D_E_NOMEM), Msg: "out of memory"}

// sign runs one whole-request C call (fn) over req.
func (s *Signer) sign(op string, req *SignRequest,
	fn func(*C.s3d_signer, *C.s3d_sigv4_request, *C.s3d_sigv4_result) C.int) (Result, error) {
	if err := s.acquire(op); err != nil {
		return Result{}, err
	}
	defer s.mu.RUnlock()
	var cs cstrs
	defer cs.free()
	creq, err := cRequest(op, &cs, req)
	if err != nil {
		return Result{}, err
	}
	r := newResult()
	if r == nil {
		return Result{}, errNoMem
	}
	defer freeResult(r)
	if rc := fn(s.s, creq, r); rc != C.S3D_OK {
		return Result{}, engineError(op, rc)
	}
	return goResult(r), nil
}

// CanonicalRequest runs stage 1: CanonicalRequest, SignedHeaders and AmzDate
// (query form: Query holds the canonical query, without the signature).
func (s *Signer) CanonicalRequest(req *SignRequest, queryForm bool) (Result, error) {
	qf := C.int(0)
	if queryForm {
		qf = 1
	}
	return s.sign("s3d_sigv4_canonical_request", req,
		func(sg *C.s3d_signer, cr *C.s3d_sigv4_request, r *C.s3d_sigv4_result) C.int {
			return C.s3d_sigv4_canonical_request(sg, cr, qf, r)
		})
}

// stage feeds text into buffer in of a fresh result and runs fn.
func (s *Signer) stage(op, text string, when time.Time, in func(*C.s3d_sigv4_result) *C.s3d_buf,
	fn func(*C.s3d_signer, C.time_t, *C.s3d_sigv4_result) C.int) (Result, error) {
	if err := s.acquire(op); err != nil {
		return Result{}, err
	}
	defer s.mu.RUnlock()
	r := newResult()
	if r == nil {
		return Result{}, errNoMem
	}
	defer freeResult(r)
	if len(text) > 0 {
		p := C.CBytes([]byte(text))
		rc := C.s3d_buf_append(in(r), p, C.size_t(len(text)))
		C.free(p)
		if rc != C.S3D_OK {
			return Result{}, engineError(op, rc)
		}
	}
	if rc := fn(s.s, C.time_t(when.Unix()), r); rc != C.S3D_OK {
		return Result{}, engineError(op, rc)
	}
	return goResult(r), nil
}

// StringToSign runs stage 2 over a given canonical request.
func (s *Signer) StringToSign(canonicalRequest string, when time.Time) (string, error) {
	res, err := s.stage("s3d_sigv4_string_to_sign", canonicalRequest, when,
		func(r *C.s3d_sigv4_result) *C.s3d_buf { return &r.canonical_request },
		func(sg *C.s3d_signer, t C.time_t, r *C.s3d_sigv4_result) C.int {
			return C.s3d_sigv4_string_to_sign(sg, t, r)
		})
	return res.StringToSign, err
}

// Signature runs stage 3 over a given string to sign.
func (s *Signer) Signature(stringToSign string, when time.Time) (string, error) {
	res, err := s.stage("s3d_sigv4_signature", stringToSign, when,
		func(r *C.s3d_sigv4_result) *C.s3d_buf { return &r.string_to_sign },
		func(sg *C.s3d_signer, t C.time_t, r *C.s3d_sigv4_result) C.int {
			return C.s3d_sigv4_signature(sg, t, r)
		})
	return res.Signature, err
}

// SignHeaders signs req in header form (Authorization, AmzDate).
func (s *Signer) SignHeaders(req *SignRequest) (Result, error) {
	return s.sign("s3d_sigv4_sign_headers", req,
		func(sg *C.s3d_signer, cr *C.s3d_sigv4_request, r *C.s3d_sigv4_result) C.int {
			return C.s3d_sigv4_sign_headers(sg, cr, r)
		})
}

// Presign signs req in query form (Query is ready to append after '?').
func (s *Signer) Presign(req *SignRequest) (Result, error) {
	return s.sign("s3d_sigv4_presign", req,
		func(sg *C.s3d_signer, cr *C.s3d_sigv4_request, r *C.s3d_sigv4_result) C.int {
			return C.s3d_sigv4_presign(sg, cr, r)
		})
}
