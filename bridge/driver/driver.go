// Package s3direct is the registry storage driver "s3direct": the stock
// distribution StorageDriver interface over the s3direct C engine
// (csrc/driver.c, reader.c, upload.c, linked from build/libs3direct.a).
// Every method is one cgo call plus marshalling; the storage work (keys,
// listing, multipart, tails, copies, presigning) lives in C.
//
// Parameters are s3-aws's (same names, types and defaults) plus a few of
// ours: see docs/configuration.md.
//
// cgo rules kept here: C never holds a Go pointer after a call returns (byte
// slices are passed for the duration of one call and copied or filled by C);
// C structs are built per call on the Go side or owned by C; every C
// allocation is freed by the call that made it or by Close.
package s3direct

/*
#cgo CFLAGS: -I${SRCDIR}/../../csrc/include
#cgo LDFLAGS: ${SRCDIR}/../../build/libs3direct.a -lcurl -lssl -lcrypto -lxml2 -llmdb -lpthread
#include <stdlib.h>
#include <string.h>
#include "s3direct.h"

// Wipes a C copy of a secret before freeing it.
static void s3d_go_free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static const char *s3d_go_version(void) { return S3D_VERSION; }
*/
import "C"

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/base"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	"github.com/sirupsen/logrus"
)

const driverName = "s3direct"

// Version of the C engine this package is linked with.
var Version = C.GoString(C.s3d_go_version())

// LibraryDigest is the SHA-256 of build/libs3direct.a, set by the Makefile
// (-ldflags -X): cmd/go does not notice a changed library named in #cgo
// LDFLAGS, a changed -X value makes it link again.
var LibraryDigest = "unset"

func init() {
	factory.Register(driverName, &factoryImpl{})
}

type factoryImpl struct{}

func (factoryImpl) Create(ctx context.Context, parameters map[string]any) (storagedriver.StorageDriver, error) {
	return FromParameters(ctx, parameters)
}

var _ storagedriver.StorageDriver = &driver{}

// driver owns one C s3d_driver (safe for concurrent use by the C side).
type driver struct {
	c      *C.s3d_driver
	ref    *cref
	bucket string
	root   string
}

// cref counts the users of a C driver: the Go driver and each reader or
// writer not yet freed (their C handles use the driver's client until they
// are freed). The last release frees the C driver, whatever order the
// garbage collector runs the cleanups in.
type cref struct {
	mu sync.Mutex
	c  *C.s3d_driver
	n  int
}

func (r *cref) acquire() *cref {
	r.mu.Lock()
	r.n++
	r.mu.Unlock()
	return r
}

func (r *cref) release() {
	r.mu.Lock()
	r.n--
	last := r.n == 0
	r.mu.Unlock()
	if last {
		C.s3d_driver_free(r.c)
	}
}

type baseEmbed struct {
	base.Base
}

// Driver is the s3direct storagedriver.StorageDriver. Objects are stored
// under rootdirectory in the bucket with distribution's layout, so content
// written by s3direct and by s3-aws is interchangeable.
type Driver struct {
	baseEmbed
}

// FromParameters builds a Driver from the storage parameters of the registry
// configuration (see docs/configuration.md). It checks them all, then that
// the bucket answers.
func FromParameters(ctx context.Context, parameters map[string]any) (*Driver, error) {
	p, err := parseParameters(parameters)
	if err != nil {
		return nil, err
	}
	return newDriver(ctx, p)
}

// cstrings collects C copies made for one call; free releases them all.
type cstrings struct {
	plain   []*C.char
	secrets []*C.char
}

// str returns a C copy of s, or NULL for "" when nullIfEmpty.
func (cs *cstrings) str(s string, nullIfEmpty bool) *C.char {
	if s == "" && nullIfEmpty {
		return nil
	}
	p := C.CString(s)
	cs.plain = append(cs.plain, p)
	return p
}

func (cs *cstrings) secret(s string) *C.char {
	if s == "" {
		return nil
	}
	p := C.CString(s)
	cs.secrets = append(cs.secrets, p)
	return p
}

func (cs *cstrings) free() {
	for _, p := range cs.plain {
		C.free(unsafe.Pointer(p))
	}
	for _, p := range cs.secrets {
		C.s3d_go_free_secret(p)
	}
	cs.plain, cs.secrets = nil, nil
}

// clientConfig fills cfg from p; the strings live in cs until cs.free.
func (p *params) clientConfig(cfg *C.s3d_client_config, cs *cstrings) {
	ua := "s3direct/" + Version
	if p.userAgent != "" {
		ua += " " + p.userAgent
	}
	cfg.endpoint = cs.str(p.endpoint, false)
	cfg.region = cs.str(p.region, false)
	cfg.access_key = cs.secret(p.accessKey)
	cfg.secret_key = cs.secret(p.secretKey)
	cfg.session_token = cs.secret(p.sessionToken)
	cfg.virtual_hosted = cbool(p.virtualHosted)
	cfg.skip_verify = cbool(p.skipVerify)
	cfg.user_agent = cs.str(ua, false)
	cfg.connect_timeout_ms = C.long(p.connectTimeout / time.Millisecond)
	// A non-zero retry_base_ms tells the engine that max_retries 0 means
	// "no retry" rather than "default".
	cfg.retry_base_ms = 100
	cfg.max_retries = C.int(p.maxRetries)
	cfg.retry_deadline_ms = C.long(p.retryDeadline / time.Millisecond)
}

// driverConfig fills cfg from p; the strings live in cs until cs.free.
func (p *params) driverConfig(cfg *C.s3d_driver_config, cs *cstrings) {
	p.clientConfig(&cfg.client, cs)
	cfg.bucket = cs.str(p.bucket, false)
	cfg.root = cs.str(p.rootDirectory, false)
	cfg.put.storage_class = cs.str(p.storageClass, true)
	cfg.put.acl = cs.str(p.objectACL, true)
	cfg.put.sse = cs.str(p.sse, true)
	cfg.put.sse_kms_key_id = cs.str(p.sseKMSKeyID, true)
	cfg.part_size = C.size_t(p.chunkSize)
	cfg.parts_in_flight = C.int(p.partsInFlight)
	cfg.upload_memory = C.int64_t(p.uploadMemory)
	if p.uploadMemory == 0 {
		cfg.upload_memory = -1 // no shared limit (0 is the engine's default)
	}
	cfg.copy_threshold = C.int64_t(p.copyThreshold)
	cfg.copy_part_size = C.int64_t(p.copyChunkSize)
	cfg.copy_concurrency = C.int(p.copyConcurrency)
	cfg.redirect_expires = 20 * 60 // s3-aws presigns for 20 minutes
}

func newDriver(ctx context.Context, p *params) (*Driver, error) {
	var cs cstrings
	defer cs.free()

	var cfg C.s3d_driver_config
	p.driverConfig(&cfg, &cs)

	var cerr C.s3d_error
	var c *C.s3d_driver
	rc := C.s3d_driver_new(&cfg, &c, &cerr)
	if rc != C.S3D_OK {
		return nil, fmt.Errorf("s3direct: bucket %q at %s: %s", p.bucket, p.endpoint, formatError(rc, &cerr))
	}
	ref := &cref{c: c, n: 1}
	d := &driver{c: c, ref: ref, bucket: p.bucket, root: p.rootDirectory}
	// The registry keeps its driver for the life of the process; a driver
	// dropped earlier (tests) releases its C side when collected. Methods
	// keep d alive until they return; readers and writers hold a reference
	// of their own.
	runtime.AddCleanup(d, func(r *cref) { r.release() }, ref)

	style := "path-style"
	if p.virtualHosted {
		style = "virtual-hosted"
	}
	logrus.WithField("driver", driverName).Infof("s3direct %s: bucket %s at %s (%s, region %s), rootdirectory %q, chunksize %d, partsinflight %d, credentials from %s, loglevel %s (no effect)",
		Version, p.bucket, p.endpoint, style, p.region, p.rootDirectory, p.chunkSize, p.partsInFlight, p.credSource, p.logLevel)

	return &Driver{baseEmbed: baseEmbed{Base: base.Base{StorageDriver: d}}}, nil
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// formatError is the engine's text for rc and its detail: S3 code, message,
// HTTP status, request id, resource.
func formatError(rc C.int, e *C.s3d_error) string {
	var buf [1024]C.char
	C.s3d_error_format(e, rc, &buf[0], C.size_t(len(buf)))
	return C.GoString(&buf[0])
}

// mapError turns a failed call on path into distribution's error types:
// NOTFOUND is PathNotFoundError (the registry and the conformance suite
// compare its type); everything else is a storagedriver.Error carrying the
// engine's detail.
func mapError(op, path string, rc C.int, e *C.s3d_error) error {
	if rc == C.S3D_E_NOTFOUND {
		return storagedriver.PathNotFoundError{Path: path, DriverName: driverName}
	}
	return storagedriver.Error{
		DriverName: driverName,
		Detail:     fmt.Errorf("%s %s: %s", op, path, formatError(rc, e)),
	}
}

// cpath is a C copy of a driver path; free it with C.free.
func cpath(path string) *C.char { return C.CString(path) }

func (d *driver) Name() string { return driverName }

// GetContent reads a whole object of at most getContentMax bytes.
func (d *driver) GetContent(ctx context.Context, path string) ([]byte, error) {
	defer runtime.KeepAlive(d) // the C driver outlives this call
	cp := cpath(path)
	defer C.free(unsafe.Pointer(cp))
	var buf C.s3d_buf
	C.s3d_buf_init(&buf, getContentMax)
	defer C.s3d_buf_cleanup(&buf)
	var e C.s3d_error
	if rc := C.s3d_driver_get_content(d.c, cp, &buf, &e); rc != C.S3D_OK {
		if rc == C.S3D_E_TOOBIG {
			return nil, storagedriver.Error{DriverName: driverName,
				Detail: fmt.Errorf("GetContent %s: object larger than %d bytes (use Reader)", path, getContentMax)}
		}
		return nil, mapError("GetContent", path, rc, &e)
	}
	if buf.len == 0 {
		return []byte{}, nil
	}
	return C.GoBytes(unsafe.Pointer(buf.ptr), C.int(buf.len)), nil
}

// PutContent stores content as one object (C copies or streams it during
// the call).
func (d *driver) PutContent(ctx context.Context, path string, content []byte) error {
	defer runtime.KeepAlive(d) // the C driver outlives this call
	cp := cpath(path)
	defer C.free(unsafe.Pointer(cp))
	var data unsafe.Pointer
	if len(content) > 0 {
		data = unsafe.Pointer(&content[0])
	}
	var e C.s3d_error
	if rc := C.s3d_driver_put_content(d.c, cp, data, C.size_t(len(content)), &e); rc != C.S3D_OK {
		return mapError("PutContent", path, rc, &e)
	}
	return nil
}

// Reader streams path from offset; an offset at or past the end reads as
// empty (as s3-aws).
func (d *driver) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	defer runtime.KeepAlive(d) // the C driver outlives this call
	if offset < 0 {
		return nil, storagedriver.InvalidOffsetError{Path: path, Offset: offset, DriverName: driverName}
	}
	cp := cpath(path)
	defer C.free(unsafe.Pointer(cp))
	var r *C.s3d_reader
	var e C.s3d_error
	if rc := C.s3d_reader_open(d.c, cp, C.int64_t(offset), &r, &e); rc != C.S3D_OK {
		return nil, mapError("Reader", path, rc, &e)
	}
	rd := &reader{ref: d.ref.acquire(), r: r, path: path}
	// A reader dropped without Close is freed when collected.
	rd.cleanup = runtime.AddCleanup(rd, func(h readerHandle) {
		C.s3d_reader_free(h.r)
		h.ref.release()
	}, readerHandle{r, rd.ref})
	return rd, nil
}

type readerHandle struct {
	r   *C.s3d_reader
	ref *cref
}

// reader: one C reader; Read fills the caller's slice directly.
type reader struct {
	mu      sync.Mutex
	ref     *cref
	r       *C.s3d_reader
	path    string
	eof     bool
	cleanup runtime.Cleanup
}

func (rd *reader) Read(p []byte) (int, error) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if rd.r == nil {
		return 0, fmt.Errorf("s3direct: read of %s after Close", rd.path)
	}
	if rd.eof {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	var n C.size_t
	var e C.s3d_error
	rc := C.s3d_reader_read(rd.r, (*C.uint8_t)(unsafe.Pointer(&p[0])), C.size_t(len(p)), &n, &e)
	if rc != C.S3D_OK {
		return int(n), mapError("Read", rd.path, rc, &e)
	}
	if n == 0 {
		rd.eof = true
		return 0, io.EOF
	}
	return int(n), nil
}

func (rd *reader) Close() error {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if rd.r != nil {
		rd.cleanup.Stop()
		C.s3d_reader_free(rd.r)
		rd.r = nil
		rd.ref.release()
	}
	return nil
}

// Writer opens the C writer for path: a new file, or (append) the upload
// left by an earlier writer's Close.
func (d *driver) Writer(ctx context.Context, path string, appendMode bool) (storagedriver.FileWriter, error) {
	defer runtime.KeepAlive(d) // the C driver outlives this call
	cp := cpath(path)
	defer C.free(unsafe.Pointer(cp))
	var w *C.s3d_writer
	var e C.s3d_error
	if rc := C.s3d_writer_open(d.c, cp, cbool(appendMode), &w, &e); rc != C.S3D_OK {
		return nil, mapError("Writer", path, rc, &e)
	}
	fw := &writer{ref: d.ref.acquire(), w: w, path: path}
	// A writer dropped without Close is freed when collected (its parts
	// stay in S3, as after Close).
	fw.cleanup = runtime.AddCleanup(fw, func(h writerHandle) {
		C.s3d_writer_free(h.w)
		h.ref.release()
	}, writerHandle{w, fw.ref})
	return fw, nil
}

type writerHandle struct {
	w   *C.s3d_writer
	ref *cref
}

// writer: one C writer. The registry uses a writer from one goroutine at a
// time; the mutex makes misuse safe rather than fast.
type writer struct {
	mu        sync.Mutex
	ref       *cref
	w         *C.s3d_writer // nil once Close freed it
	path      string
	size      int64 // kept after Close
	closed    bool
	committed bool
	cancelled bool
	cleanup   runtime.Cleanup
}

// done: s3-aws's messages for use after Close, Commit or Cancel.
func (fw *writer) done() error {
	switch {
	case fw.closed:
		return fmt.Errorf("already closed")
	case fw.committed:
		return fmt.Errorf("already committed")
	case fw.cancelled:
		return fmt.Errorf("already cancelled")
	}
	return nil
}

func (fw *writer) Write(p []byte) (int, error) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if err := fw.done(); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	var e C.s3d_error
	if rc := C.s3d_writer_write(fw.w, unsafe.Pointer(&p[0]), C.size_t(len(p)), &e); rc != C.S3D_OK {
		return 0, mapError("Write", fw.path, rc, &e)
	}
	return len(p), nil
}

func (fw *writer) Size() int64 {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.w == nil {
		return fw.size
	}
	return int64(C.s3d_writer_size(fw.w))
}

// Close keeps what was written for a later append (unless Commit or Cancel
// already ended the upload) and frees the handle.
func (fw *writer) Close() error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.closed {
		return fmt.Errorf("already closed")
	}
	fw.closed = true
	fw.size = int64(C.s3d_writer_size(fw.w))
	var err error
	if !fw.committed && !fw.cancelled {
		var e C.s3d_error
		if rc := C.s3d_writer_close(fw.w, &e); rc != C.S3D_OK {
			err = mapError("Close", fw.path, rc, &e)
		}
		fw.size = int64(C.s3d_writer_size(fw.w))
		if err != nil {
			// the registry's upload handlers drop Close's error: say it here
			logrus.WithField("driver", driverName).Warnf("%v (the upload's size is now %d bytes, what S3 holds)", err, fw.size)
		}
	}
	fw.cleanup.Stop()
	C.s3d_writer_free(fw.w)
	fw.w = nil
	fw.ref.release()
	return err
}

func (fw *writer) Cancel(ctx context.Context) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if err := fw.done(); err != nil {
		return err
	}
	fw.cancelled = true
	var e C.s3d_error
	if rc := C.s3d_writer_cancel(fw.w, &e); rc != C.S3D_OK {
		return mapError("Cancel", fw.path, rc, &e)
	}
	return nil
}

func (fw *writer) Commit(ctx context.Context) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if err := fw.done(); err != nil {
		return err
	}
	var e C.s3d_error
	if rc := C.s3d_writer_commit(fw.w, &e); rc != C.S3D_OK {
		// Not marked committed: the caller may still Cancel.
		return mapError("Commit", fw.path, rc, &e)
	}
	fw.committed = true
	return nil
}

// Stat reports a file (object) or a directory (a prefix with objects).
func (d *driver) Stat(ctx context.Context, path string) (storagedriver.FileInfo, error) {
	defer runtime.KeepAlive(d) // the C driver outlives this call
	cp := cpath(path)
	defer C.free(unsafe.Pointer(cp))
	var st C.s3d_stat
	var e C.s3d_error
	if rc := C.s3d_driver_stat(d.c, cp, &st, &e); rc != C.S3D_OK {
		return nil, mapError("Stat", path, rc, &e)
	}
	return fileInfo(path, int64(st.size), int64(st.mod_time), st.is_dir != 0), nil
}

func fileInfo(path string, size, modTime int64, isDir bool) storagedriver.FileInfoInternal {
	fi := storagedriver.FileInfoFields{Path: path, Size: size, IsDir: isDir}
	if modTime != 0 {
		fi.ModTime = time.Unix(modTime, 0)
	}
	return storagedriver.FileInfoInternal{FileInfoFields: fi}
}

// List returns the direct children of path as full paths.
func (d *driver) List(ctx context.Context, path string) ([]string, error) {
	defer runtime.KeepAlive(d) // the C driver outlives this call
	cp := cpath(path)
	defer C.free(unsafe.Pointer(cp))
	var buf C.s3d_buf
	C.s3d_buf_init(&buf, listMax)
	defer C.s3d_buf_cleanup(&buf)
	var count C.size_t
	var e C.s3d_error
	if rc := C.s3d_driver_list(d.c, cp, &buf, &count, &e); rc != C.S3D_OK {
		if rc == C.S3D_E_TOOBIG {
			return nil, storagedriver.Error{DriverName: driverName,
				Detail: fmt.Errorf("List %s: more than %d bytes of children", path, listMax)}
		}
		return nil, mapError("List", path, rc, &e)
	}
	out := nulStrings(&buf)
	if len(out) != int(count) {
		return nil, storagedriver.Error{DriverName: driverName,
			Detail: fmt.Errorf("List %s: engine reported %d children, buffer holds %d", path, int(count), len(out))}
	}
	return out, nil
}

// Move copies server-side (CopyObject or parallel UploadPartCopy) and
// deletes the source.
func (d *driver) Move(ctx context.Context, sourcePath string, destPath string) error {
	defer runtime.KeepAlive(d) // the C driver outlives this call
	cs, cd := cpath(sourcePath), cpath(destPath)
	defer C.free(unsafe.Pointer(cs))
	defer C.free(unsafe.Pointer(cd))
	var e C.s3d_error
	if rc := C.s3d_driver_move(d.c, cs, cd, &e); rc != C.S3D_OK {
		return mapError("Move", sourcePath, rc, &e)
	}
	return nil
}

// Delete removes path and everything below it.
func (d *driver) Delete(ctx context.Context, path string) error {
	defer runtime.KeepAlive(d) // the C driver outlives this call
	cp := cpath(path)
	defer C.free(unsafe.Pointer(cp))
	var e C.s3d_error
	if rc := C.s3d_driver_delete(d.c, cp, &e); rc != C.S3D_OK {
		return mapError("Delete", path, rc, &e)
	}
	return nil
}

// RedirectURL presigns GET or HEAD for 20 minutes (as s3-aws); other
// methods get no redirect.
func (d *driver) RedirectURL(r *http.Request, path string) (string, error) {
	defer runtime.KeepAlive(d) // the C driver outlives this call
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return "", nil
	}
	cm, cp := C.CString(r.Method), cpath(path)
	defer C.free(unsafe.Pointer(cm))
	defer C.free(unsafe.Pointer(cp))
	var buf C.s3d_buf
	C.s3d_buf_init(&buf, 16<<10)
	defer C.s3d_buf_cleanup(&buf)
	var e C.s3d_error
	if rc := C.s3d_driver_redirect_url(d.c, cm, cp, &buf, &e); rc != C.S3D_OK {
		return "", mapError("RedirectURL", path, rc, &e)
	}
	return C.GoStringN((*C.char)(unsafe.Pointer(buf.ptr)), C.int(buf.len)), nil
}

// Walk visits everything below from in lexical key order, directories
// before their contents (as s3-aws): ErrSkipDir on a directory skips its
// contents, ErrFilledBuffer ends the walk without error, any other error
// ends it with that error. A path with nothing below it walks nothing.
func (d *driver) Walk(ctx context.Context, from string, f storagedriver.WalkFn, options ...func(*storagedriver.WalkOptions)) error {
	defer runtime.KeepAlive(d) // the C driver outlives this call
	var opts storagedriver.WalkOptions
	for _, o := range options {
		o(&opts)
	}
	cf := cpath(from)
	defer C.free(unsafe.Pointer(cf))
	var cstart *C.char
	if opts.StartAfterHint != "" {
		cstart = C.CString(opts.StartAfterHint)
		defer C.free(unsafe.Pointer(cstart))
	}
	var w *C.s3d_walker
	var e C.s3d_error
	if rc := C.s3d_walker_open(d.c, cf, cstart, &w, &e); rc != C.S3D_OK {
		if rc == C.S3D_E_NOTFOUND {
			return nil
		}
		return mapError("Walk", from, rc, &e)
	}
	defer C.s3d_walker_free(w)
	for {
		var ent C.s3d_walk_entry
		var done C.int
		if rc := C.s3d_walker_next(w, &ent, &done, &e); rc != C.S3D_OK {
			if rc == C.S3D_E_NOTFOUND {
				return nil
			}
			return mapError("Walk", from, rc, &e)
		}
		if done != 0 {
			return nil
		}
		isDir := ent.is_dir != 0
		fi := fileInfo(C.GoString(ent.path), int64(ent.size), int64(ent.mod_time), isDir)
		switch err := f(fi); err {
		case nil:
		case storagedriver.ErrSkipDir:
			if isDir {
				// ent.path is still valid: no next call since.
				C.s3d_walker_skip_dir(w, ent.path)
			}
		case storagedriver.ErrFilledBuffer:
			return nil
		default:
			return err
		}
	}
}

// nulStrings splits a buffer of consecutive NUL-terminated strings (what
// the engine returns for lists) in one pass.
func nulStrings(buf *C.s3d_buf) []string {
	if buf.len == 0 {
		return nil
	}
	all := string(unsafe.Slice((*byte)(unsafe.Pointer(buf.ptr)), int(buf.len)))
	return strings.Split(strings.TrimSuffix(all, "\x00"), "\x00")
}
