package s3direct

/*
#include <stdlib.h>
#include "s3direct.h"

static s3d_part *s3d_go_part(s3d_part *parts, size_t i) { return &parts[i]; }
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/sirupsen/logrus"
)

// Service is the presigned-upload service of the C engine (csrc/service.c,
// presign.c, finalize.c, sweep.c) over its own C driver on the bucket the
// registry's s3direct driver uses. Safe for concurrent use (the C side locks
// what it shares). Go marshals only: every decision is taken in C.
type Service struct {
	Config  *PresignConfig
	drv     *C.s3d_driver
	svc     *C.s3d_service
	commits *commitWaiter
}

// commitWaiter lets goroutines wait for the session index's queued commits
// (s3d_index_put_start) without a thread blocked in C through the fsync:
// such a thread keeps its Go processor until the scheduler takes it back,
// which starves the other requests when many presigns wait at once. One
// goroutine reads the index's notification pipe through the runtime's
// poller and wakes the waiters whose ticket is committed.
type commitWaiter struct {
	ix   *C.s3d_index
	f    *os.File
	done chan struct{} // closed when the reader has stopped

	mu   sync.Mutex
	seen uint64        // s3d_index_committed, as last read
	dead bool          // the pipe failed: waiters leave the wait to C
	ch   chan struct{} // closed when seen or dead changes
}

func newCommitWaiter(ix *C.s3d_index) (*commitWaiter, error) {
	// dup with close-on-exec in one step: no child process inherits it
	r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(C.s3d_index_notify_fd(ix)),
		syscall.F_DUPFD_CLOEXEC, 0)
	if errno != 0 {
		return nil, fmt.Errorf("commit notifications: %w", errno)
	}
	fd := int(r)
	// the pipe is non-blocking: os.NewFile makes it pollable
	w := &commitWaiter{ix: ix, f: os.NewFile(uintptr(fd), "s3direct-commits"),
		done: make(chan struct{}), ch: make(chan struct{})}
	go w.run()
	return w, nil
}

func (w *commitWaiter) run() {
	defer close(w.done)
	buf := make([]byte, 512)
	for {
		if _, err := w.f.Read(buf); err != nil {
			if !errors.Is(err, os.ErrClosed) {
				// not the service's Close: from now on the waits block in C
				logrus.WithField("driver", driverName).Warnf(
					"s3direct presign: session index commit notifications lost (%v); waiting in C from now on", err)
			}
			w.advance(0, true)
			return
		}
		w.advance(uint64(C.s3d_index_committed(w.ix)), false)
	}
}

func (w *commitWaiter) advance(committed uint64, dead bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if committed <= w.seen && !dead {
		return
	}
	w.seen = max(w.seen, committed)
	w.dead = w.dead || dead
	close(w.ch)
	w.ch = make(chan struct{})
}

// wait returns once the commit of ticket is done, or at once when the pipe
// has failed (s3d_service_presign_resume then waits in C).
func (w *commitWaiter) wait(ticket uint64) {
	w.mu.Lock()
	for w.seen < ticket && !w.dead {
		ch := w.ch
		w.mu.Unlock()
		<-ch
		w.mu.Lock()
	}
	w.mu.Unlock()
}

func (w *commitWaiter) close() {
	w.f.Close()
	<-w.done
}

// ErrorKind classifies a failed service call the way the HTTP layer answers
// it (docs/api.md, Errors).
type ErrorKind int

const (
	KindInternal    ErrorKind = iota // 500
	KindStorage                      // 502: S3 failed
	KindNotFound                     // 404 BLOB_UPLOAD_UNKNOWN
	KindExpired                      // 410
	KindState                        // 400 BLOB_UPLOAD_INVALID
	KindConflict                     // 409 BLOB_UPLOAD_INVALID
	KindDigest                       // 400 DIGEST_INVALID
	KindUnsupported                  // 400 UNSUPPORTED
	KindQuota                        // 403 DENIED
	KindInvalid                      // 400 BLOB_UPLOAD_INVALID / SIZE_INVALID
)

// ServiceError is a failed service call: a sentence for the client, and the
// engine's full detail (S3 code, message, request id) for S3 failures.
type ServiceError struct {
	Kind    ErrorKind
	Message string
	Detail  string
}

func (e *ServiceError) Error() string {
	if e.Detail != "" {
		return e.Message + ": " + e.Detail
	}
	return e.Message
}

func serviceError(rc C.int, e *C.s3d_error) error {
	kind := KindInternal
	switch rc {
	case C.S3D_E_NOTFOUND:
		kind = KindNotFound
	case C.S3D_E_EXPIRED:
		kind = KindExpired
	case C.S3D_E_STATE:
		kind = KindState
	case C.S3D_E_CONFLICT:
		kind = KindConflict
	case C.S3D_E_DIGEST:
		kind = KindDigest
	case C.S3D_E_UNSUPPORTED:
		kind = KindUnsupported
	case C.S3D_E_QUOTA:
		kind = KindQuota
	case C.S3D_E_INVAL:
		kind = KindInvalid
	case C.S3D_E_S3, C.S3D_E_TRANSPORT, C.S3D_E_TIMEOUT, C.S3D_E_PROTOCOL:
		kind = KindStorage
	}
	msg := C.GoString(&e.message[0])
	if msg == "" {
		msg = C.GoString(C.s3d_strerror(rc))
	}
	se := &ServiceError{Kind: kind, Message: msg}
	if kind == KindStorage || kind == KindInternal {
		se.Detail = formatError(rc, e)
	}
	return se
}

// NewService opens the presigned-upload service for the storage.s3direct
// parameters of a registry configuration (the driver's parameters plus
// presign, sessionindex, ...). It returns (nil, nil) when presign is false.
func NewService(parameters map[string]any) (*Service, error) {
	pc, err := parsePresignConfig(parameters)
	if err != nil || !pc.Enabled {
		return nil, err
	}
	p, err := parseParameters(parameters)
	if err != nil {
		return nil, err
	}
	var cs cstrings
	defer cs.free()
	var dcfg C.s3d_driver_config
	p.driverConfig(&dcfg, &cs)
	var e C.s3d_error
	s := &Service{Config: pc}
	if rc := C.s3d_driver_new(&dcfg, &s.drv, &e); rc != C.S3D_OK {
		return nil, fmt.Errorf("s3direct presign: %s", formatError(rc, &e))
	}
	var scfg C.s3d_service_config
	scfg.index.path = cs.str(pc.SessionIndex, false)
	scfg.url_expires = C.int64_t(pc.URLExpiry / time.Second)
	scfg.session_ttl = C.int64_t(pc.SessionTTL / time.Second)
	scfg.max_blob_size = C.int64_t(pc.MaxBlobSize)
	scfg.repo_quota = C.int64_t(pc.RepoQuota)
	scfg.part_size = C.int64_t(pc.PartSize)
	if rc := C.s3d_service_new(s.drv, &scfg, &s.svc, &e); rc != C.S3D_OK {
		C.s3d_driver_free(s.drv)
		return nil, fmt.Errorf("s3direct presign: session index %s (parameter sessionindex): %s",
			pc.SessionIndex, formatError(rc, &e))
	}
	if s.commits, err = newCommitWaiter(C.s3d_service_index(s.svc)); err != nil {
		C.s3d_service_free(s.svc)
		C.s3d_driver_free(s.drv)
		return nil, fmt.Errorf("s3direct presign: session index %s: %w", pc.SessionIndex, err)
	}
	return s, nil
}

// Close frees the C service and driver; no call may be running.
func (s *Service) Close() {
	s.commits.close()
	C.s3d_service_free(s.svc)
	C.s3d_driver_free(s.drv)
	s.svc, s.drv = nil, nil
}

// PresignRequest asks for the URLs of one session (docs/api.md 2 and 3).
type PresignRequest struct {
	Repo, UUID, User string
	Digest           string // "" = not declared
	Size             int64  // -1 = not declared
	Multipart        bool
	FirstPart, Parts int
}

// PartURL is one presigned UploadPart URL.
type PartURL struct {
	Number int    `json:"part_number"`
	URL    string `json:"url"`
}

// PresignResult is what a presign call returns.
type PresignResult struct {
	URL              string
	Headers          map[string]string
	Parts            []PartURL
	PartSize         int64
	ExpiresAt        time.Time
	SessionExpiresAt time.Time
}

// Presign opens the session on its first call and returns fresh URLs.
func (s *Service) Presign(r PresignRequest) (*PresignResult, error) {
	var cs cstrings
	defer cs.free()
	var rq C.s3d_presign_request
	rq.repo = cs.str(r.Repo, false)
	rq.uuid = cs.str(r.UUID, false)
	rq.user = cs.str(r.User, true)
	rq.digest = cs.str(r.Digest, true)
	rq.size = C.int64_t(r.Size)
	rq.multipart = cbool(r.Multipart)
	rq.first_part = C.int(r.FirstPart)
	rq.parts = C.int(r.Parts)
	var out C.s3d_presign_result
	C.s3d_presign_result_init(&out)
	defer C.s3d_presign_result_cleanup(&out)
	var e C.s3d_error
	// a refresh's commit is queued: wait for it here, not in C
	rc := C.s3d_service_presign_start(s.svc, &rq, &out, &e)
	for rc == C.S3D_PENDING {
		s.commits.wait(uint64(out.ticket))
		rc = C.s3d_service_presign_resume(s.svc, &rq, &out, &e)
	}
	if rc != C.S3D_OK {
		return nil, serviceError(rc, &e)
	}
	res := &PresignResult{
		Headers:          map[string]string{},
		PartSize:         int64(out.part_size),
		ExpiresAt:        time.Unix(int64(out.expires_at), 0).UTC(),
		SessionExpiresAt: time.Unix(int64(out.session.expires), 0).UTC(),
	}
	if out.url.len > 0 {
		res.URL = C.GoStringN((*C.char)(unsafe.Pointer(out.url.ptr)), C.int(out.url.len))
	}
	headers := nulStrings(&out.headers) // name, value, name, value...
	urls := nulStrings(&out.part_urls)
	if len(headers) != 2*int(out.nheaders) || len(urls) != int(out.nparts) {
		return nil, &ServiceError{Kind: KindInternal,
			Message: fmt.Sprintf("engine reported %d headers and %d part URLs, buffers hold %d strings and %d",
				int(out.nheaders), int(out.nparts), len(headers), len(urls))}
	}
	for i := 0; i < len(headers); i += 2 {
		res.Headers[headers[i]] = headers[i+1]
	}
	for i, u := range urls {
		res.Parts = append(res.Parts, PartURL{Number: int(out.first_part) + i, URL: u})
	}
	return res, nil
}

// StoredPart is a part S3 holds for a multipart session.
type StoredPart struct {
	Number int    `json:"part_number"`
	Size   int64  `json:"size"`
	ETag   string `json:"etag"`
}

// UploadStatus is what S3 holds for a session.
type UploadStatus struct {
	UUID      string       `json:"uuid"`
	Status    string       `json:"status"`
	Stored    int64        `json:"stored"`
	PartSize  int64        `json:"part_size,omitempty"`
	ExpiresAt time.Time    `json:"expires_at"`
	Parts     []StoredPart `json:"parts"`
}

// Status reads the session's stored bytes from S3.
func (s *Service) Status(repo, uuid string) (*UploadStatus, error) {
	var cs cstrings
	defer cs.free()
	var out C.s3d_upload_status
	var e C.s3d_error
	rc := C.s3d_service_status(s.svc, cs.str(repo, false), cs.str(uuid, false), &out, &e)
	defer C.s3d_upload_status_cleanup(&out)
	if rc != C.S3D_OK {
		return nil, serviceError(rc, &e)
	}
	st := &UploadStatus{
		UUID:      uuid,
		Status:    C.GoString(C.s3d_session_status_name(out.session.status)),
		Stored:    int64(out.stored),
		PartSize:  int64(out.session.part_size),
		ExpiresAt: time.Unix(int64(out.session.expires), 0).UTC(),
		Parts:     []StoredPart{},
	}
	for i := C.size_t(0); i < out.nparts; i++ {
		p := C.s3d_go_part(out.parts, i)
		st.Parts = append(st.Parts, StoredPart{
			Number: int(p.number), Size: int64(p.size), ETag: C.GoString(&p.etag[0]),
		})
	}
	return st, nil
}

// FinalizeResult is a completed session.
type FinalizeResult struct {
	Digest       string
	Size         int64
	Deduplicated bool
	VerifiedBy   string // "checksum" or "stream"
	Repeated     bool
}

// Finalize verifies, places and links the session's blob.
func (s *Service) Finalize(repo, uuid, digest string) (*FinalizeResult, error) {
	var cs cstrings
	defer cs.free()
	var out C.s3d_finalize_result
	var e C.s3d_error
	rc := C.s3d_service_finalize(s.svc, cs.str(repo, false), cs.str(uuid, false),
		cs.str(digest, false), 0, &out, &e)
	if rc != C.S3D_OK {
		return nil, serviceError(rc, &e)
	}
	res := &FinalizeResult{
		Digest:       C.GoString(&out.digest[0]),
		Size:         int64(out.size),
		Deduplicated: out.deduplicated != 0,
		Repeated:     out.repeated != 0,
		VerifiedBy:   "stream",
	}
	if out.verified_by == C.S3D_VERIFIED_CHECKSUM {
		res.VerifiedBy = "checksum"
	}
	return res, nil
}

// Cancel aborts the session and removes what it uploaded.
func (s *Service) Cancel(repo, uuid string) error {
	var cs cstrings
	defer cs.free()
	var e C.s3d_error
	if rc := C.s3d_service_cancel(s.svc, cs.str(repo, false), cs.str(uuid, false), &e); rc != C.S3D_OK {
		return serviceError(rc, &e)
	}
	return nil
}

// IsPresigned tells whether uuid is a presigned session of repo (in any
// status); false for stock uploads and unknown ids.
func (s *Service) IsPresigned(repo, uuid string) (bool, error) {
	var cs cstrings
	defer cs.free()
	var sess C.s3d_session
	var e C.s3d_error
	rc := C.s3d_service_lookup(s.svc, cs.str(repo, false), cs.str(uuid, false), &sess, &e)
	switch rc {
	case C.S3D_OK:
		return true, nil
	case C.S3D_E_NOTFOUND:
		return false, nil
	}
	return false, serviceError(rc, &e)
}

// SweepStats counts what a sweep did.
type SweepStats struct {
	Expired, AbortedUploads, DeletedObjects, Errors, Pruned int
}

// Sweep expires the sessions past their end and removes their bytes.
func (s *Service) Sweep() (SweepStats, error) {
	var st C.s3d_sweep_stats
	var e C.s3d_error
	rc := C.s3d_service_sweep(s.svc, 0, &st, &e)
	out := SweepStats{int(st.expired), int(st.aborted_uploads), int(st.deleted_objects), int(st.errors), int(st.pruned)}
	if rc != C.S3D_OK {
		return out, serviceError(rc, &e)
	}
	return out, nil
}
