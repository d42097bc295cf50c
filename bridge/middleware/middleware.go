// Package middleware serves s3direct's presigned direct uploads
// (docs/api.md) in front of the stock registry app, through
// registry.RegisterHandler. It routes the presign, status, finalize and
// cancel calls of presigned sessions, authenticates and authorizes them with
// the registry's own access controller, and writes OCI JSON; the work itself
// is one call into the C service (bridge/driver Service). Every other
// request, and every request of a session that never asked for presigning,
// goes to the stock app untouched.
package middleware

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/api/errcode"
	"github.com/distribution/distribution/v3/registry/auth"
	"github.com/distribution/reference"
	"github.com/sirupsen/logrus"

	s3direct "github.com/s3direct/s3direct/bridge/driver"
)

const driverName = "s3direct"

// Handler is the registry.HandlerFunc: it wraps next when the configured
// storage driver is s3direct with presign enabled, and returns next as is
// otherwise. A configuration it cannot use stops the registry at start-up
// with a message naming the parameter.
func Handler(cfg *configuration.Configuration, next http.Handler) http.Handler {
	if cfg.Storage.Type() != driverName {
		return next
	}
	m, err := newMiddleware(cfg, next)
	if err != nil {
		logrus.Fatalf("s3direct presigned uploads: %v", err)
	}
	if m == nil {
		return next
	}
	return m
}

type middleware struct {
	next    http.Handler
	svc     *s3direct.Service
	ac      auth.AccessController // nil: no auth configured
	v2      string                // http.prefix (without its trailing '/') + "/v2/"
	nameRE  *regexp.Regexp
	log     *logrus.Entry
	headers http.Header // http.headers of the configuration
	secret  []byte      // http.secret (set by the app when not configured)
	// storage.maintenance.readonly.enabled: the stock app then refuses
	// every upload write; presign, finalize and cancel are writes too
	readOnly bool
}

func newMiddleware(cfg *configuration.Configuration, next http.Handler) (*middleware, error) {
	svc, err := s3direct.NewService(cfg.Storage.Parameters())
	if err != nil || svc == nil {
		return nil, err
	}
	m := &middleware{
		next:     next,
		svc:      svc,
		v2:       strings.TrimSuffix(cfg.HTTP.Prefix, "/") + "/v2/",
		nameRE:   regexp.MustCompile("^" + reference.NameRegexp.String() + "$"),
		log:      logrus.WithField("component", "s3direct.presign"),
		headers:  cfg.HTTP.Headers,
		secret:   []byte(cfg.HTTP.Secret),
		readOnly: readOnly(cfg),
	}
	if typ := cfg.Auth.Type(); typ != "" {
		m.ac, err = auth.GetAccessController(typ, cfg.Auth.Parameters())
		if err != nil {
			svc.Close()
			return nil, fmt.Errorf("auth %s: %v", typ, err)
		}
	}
	c := svc.Config
	m.log.Infof("presigned uploads on: session index %s, URLs valid %v, sessions %v, sweep every %v, maxblobsize %d, repoquota %d",
		c.SessionIndex, c.URLExpiry, c.SessionTTL, c.SweepInterval, c.MaxBlobSize, c.RepoQuota)
	if c.SweepInterval > 0 {
		go m.sweeper(c.SweepInterval)
	}
	return m, nil
}

// readOnly reads storage.maintenance.readonly.enabled as the stock app does
// (registry/handlers/app.go; it refuses a malformed value at start-up).
func readOnly(cfg *configuration.Configuration) bool {
	mc, _ := cfg.Storage["maintenance"]["readonly"].(map[any]any)
	enabled, _ := mc["enabled"].(bool)
	return enabled
}

// refuseWrite answers a presigned write (presign, finalize, cancel) of a
// read-only registry as the stock app answers its upload writes: 405, with
// the methods it still takes.
func (m *middleware) refuseWrite(w http.ResponseWriter) bool {
	if !m.readOnly {
		return false
	}
	w.Header().Set("Allow", "GET, HEAD")
	m.writeError(w, http.StatusMethodNotAllowed, errcode.ErrorCodeUnsupported,
		"the registry is in read-only mode (storage.maintenance.readonly)", nil)
	return true
}

func (m *middleware) sweeper(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for range t.C {
		st, err := m.svc.Sweep()
		entry := m.log.WithFields(logrus.Fields{"expired": st.Expired,
			"aborted_uploads": st.AbortedUploads, "deleted_objects": st.DeletedObjects,
			"errors": st.Errors, "pruned": st.Pruned})
		switch {
		case err != nil:
			entry.Errorf("sweep: %v", err)
		case st.Expired+st.AbortedUploads+st.DeletedObjects+st.Errors+st.Pruned > 0:
			entry.Info("sweep")
		}
	}
}

// uploadRoute recognizes the stock route RouteNameBlobUploadChunk,
// <prefix>/v2/<name>/blobs/uploads/<uuid>, with the same patterns as
// distribution's router but without trying every route's regexp in turn
// (the router's matching was a tenth of a presign's CPU).
func (m *middleware) uploadRoute(path string) (name, uuid string, ok bool) {
	const mid = "/blobs/uploads/"
	p, found := strings.CutPrefix(path, m.v2)
	if !found {
		return "", "", false
	}
	i := strings.LastIndex(p, mid)
	if i <= 0 {
		return "", "", false
	}
	name, uuid = p[:i], p[i+len(mid):]
	if uuid == "" || strings.TrimLeft(uuid, uuidChars) != "" || !m.nameRE.MatchString(name) {
		return "", "", false
	}
	return name, uuid, true
}

// uuidChars is the stock route's {uuid:[a-zA-Z0-9-_.=]+}.
const uuidChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.="

func (m *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, uuid, ok := m.uploadRoute(r.URL.Path)
	if !ok {
		m.next.ServeHTTP(w, r)
		return
	}
	q := r.URL.Query() // once per upload request
	if r.Method == http.MethodGet && q.Get("presigned") == "true" {
		m.stockHeaders(w)
		// a presign hands out writes to S3: asked for as a write (PUT)
		if user, ok := m.authorize(w, r, accessFor(http.MethodPut, name)); ok && !m.refuseWrite(w) {
			m.presign(w, r, q, name, uuid, user)
		}
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		m.next.ServeHTTP(w, r)
		return
	}
	// Without credentials the stock app answers its own 401; with them,
	// only presigned sessions are ours (stock sessions authenticate once,
	// in the app).
	if m.ac != nil && r.Header.Get("Authorization") == "" {
		m.next.ServeHTTP(w, r)
		return
	}
	if m.stockWithData(q, name, uuid) {
		m.next.ServeHTTP(w, r)
		return
	}
	presigned, err := m.svc.IsPresigned(name, uuid)
	if err != nil {
		// the failure's detail (S3 code, request id) is for callers
		// the registry would let in
		m.stockHeaders(w)
		if _, ok := m.authorize(w, r, accessFor(r.Method, name)); ok {
			m.fail(w, r, name, uuid, err)
		}
		return
	}
	if !presigned {
		m.next.ServeHTTP(w, r)
		return
	}
	m.stockHeaders(w)
	if _, ok := m.authorize(w, r, accessFor(r.Method, name)); !ok {
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead: // stock answers HEAD as GET
		m.status(w, r, name, uuid)
	case http.MethodPut:
		if !m.refuseWrite(w) {
			m.finalize(w, r, q, name, uuid)
		}
	case http.MethodPatch:
		if !m.refuseWrite(w) { // a read-only registry answers every write 405
			m.writeError(w, http.StatusBadRequest, errcode.ErrorCodeBlobUploadInvalid,
				"this upload session is presigned: send the bytes to the presigned URLs and finalize with PUT ?digest=", nil)
		}
	case http.MethodDelete:
		if !m.refuseWrite(w) {
			m.cancel(w, r, name, uuid)
		}
	}
}

// stockState is the part of distribution's signed upload state (the _state
// query parameter of its upload Locations, registry/handlers/hmac.go) the
// middleware reads.
type stockState struct {
	Name   string
	UUID   string
	Offset int64
}

// stockWithData reports whether r carries an upload state the registry
// signed with its http.secret for this repository and upload, at an offset
// above 0: the upload holds PATCH data, which a presign refuses, so it is a
// stock session for good and needs no session lookup. Chunked stock pushes
// then pay the lookup (an index read and, on a miss, an S3 GET of the
// marker) once, at their first PATCH, instead of on every request.
func (m *middleware) stockWithData(q url.Values, name, uuid string) bool {
	token := q.Get("_state")
	if token == "" || len(m.secret) == 0 {
		return false
	}
	raw, err := base64.URLEncoding.DecodeString(token)
	if err != nil || len(raw) < sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, m.secret)
	mac.Write(raw[sha256.Size:])
	if !hmac.Equal(mac.Sum(nil), raw[:sha256.Size]) {
		return false
	}
	var st stockState
	if json.Unmarshal(raw[sha256.Size:], &st) != nil {
		return false
	}
	return st.Offset > 0 && st.Name == name && st.UUID == uuid
}

// stockHeaders sets what the stock app puts on every answer it dispatches:
// the API version and the configuration's http.headers.
func (m *middleware) stockHeaders(w http.ResponseWriter) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	for name, values := range m.headers {
		for _, v := range values {
			w.Header().Add(name, v)
		}
	}
}

// accessFor is what the stock app asks the access controller for on name for
// a request of this method (registry/handlers/app.go, appendAccessRecords):
// pull to read, pull and push to write, delete to cancel.
func accessFor(method, name string) []auth.Access {
	res := auth.Resource{Type: "repository", Name: name}
	switch method {
	case http.MethodGet, http.MethodHead:
		return []auth.Access{{Resource: res, Action: "pull"}}
	case http.MethodDelete:
		return []auth.Access{{Resource: res, Action: "delete"}}
	default:
		return []auth.Access{{Resource: res, Action: "pull"}, {Resource: res, Action: "push"}}
	}
}

// authorize asks the registry's access controller for access on name, as
// the stock upload calls do (accessFor); on refusal it writes the stock
// answer.
func (m *middleware) authorize(w http.ResponseWriter, r *http.Request, access []auth.Access) (string, bool) {
	if m.ac == nil {
		return "", true
	}
	grant, err := m.ac.Authorized(r, access...)
	if err != nil {
		var ch auth.Challenge
		if errors.As(err, &ch) {
			ch.SetHeaders(r, w)
			m.writeError(w, http.StatusUnauthorized, errcode.ErrorCodeUnauthorized, "", access)
			return "", false
		}
		// as stock: no detail on an access controller failure
		m.log.Errorf("error checking authorization: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return "", false
	}
	if grant == nil {
		w.WriteHeader(http.StatusBadRequest)
		return "", false
	}
	return grant.User.Name, true
}

type presignJSON struct {
	URL              string             `json:"presigned_url,omitempty"`
	PartSize         int64              `json:"part_size,omitempty"`
	Parts            []s3direct.PartURL `json:"parts,omitempty"`
	Method           string             `json:"method"`
	ExpiresAt        string             `json:"expires_at"`
	Headers          map[string]string  `json:"headers"`
	SessionExpiresAt string             `json:"session_expires_at"`
}

func (m *middleware) presign(w http.ResponseWriter, r *http.Request, q url.Values, name, uuid, user string) {
	req := s3direct.PresignRequest{Repo: name, UUID: uuid, User: user, Digest: q.Get("digest"), Size: -1}
	var bad string
	if s := q.Get("size"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			bad = "size must be a non-negative number of bytes"
		}
		req.Size = n
	}
	if s := q.Get("parts"); s != "" {
		req.Multipart = true
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			bad = "parts must be a positive count"
		}
		req.Parts = n
		req.FirstPart = 1
		if s := q.Get("first_part"); s != "" {
			if req.FirstPart, err = strconv.Atoi(s); err != nil || req.FirstPart < 1 {
				bad = "first_part must be a part number from 1"
			}
		}
	}
	if bad != "" {
		m.writeError(w, http.StatusBadRequest, errcode.ErrorCodeSizeInvalid, bad, nil)
		return
	}
	res, err := m.svc.Presign(req)
	if err != nil {
		m.fail(w, r, name, uuid, err)
		return
	}
	out := presignJSON{
		URL: res.URL, Method: http.MethodPut, Headers: res.Headers,
		ExpiresAt:        res.ExpiresAt.Format(time.RFC3339),
		SessionExpiresAt: res.SessionExpiresAt.Format(time.RFC3339),
	}
	if req.Multipart {
		out.URL, out.PartSize, out.Parts = "", res.PartSize, res.Parts
	}
	// presigned URLs are credentials: never logged
	m.log.WithFields(logrus.Fields{"repository": name, "uuid": uuid, "user": user,
		"multipart": req.Multipart}).Debug("presigned")
	w.Header().Set("Cache-Control", "no-store")
	m.writeJSON(w, http.StatusOK, out)
}

func (m *middleware) uploadHeaders(w http.ResponseWriter, name, uuid string) {
	w.Header().Set("Docker-Upload-UUID", uuid)
	w.Header().Set("Location", m.v2+name+"/blobs/uploads/"+uuid)
}

func (m *middleware) status(w http.ResponseWriter, r *http.Request, name, uuid string) {
	st, err := m.svc.Status(name, uuid)
	if err != nil {
		m.fail(w, r, name, uuid, err)
		return
	}
	end := st.Stored
	if end > 0 {
		end-- // as stock: "0-0" when nothing is stored
	}
	m.uploadHeaders(w, name, uuid)
	w.Header().Set("Range", fmt.Sprintf("0-%d", end))
	w.Header().Set("S3direct-Upload-Status", st.Status)
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		m.writeJSON(w, http.StatusOK, st)
		return
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
}

func (m *middleware) finalize(w http.ResponseWriter, r *http.Request, q url.Values, name, uuid string) {
	digest := q.Get("digest")
	if r.ContentLength > 0 || (r.ContentLength < 0 && hasBody(r)) {
		m.writeError(w, http.StatusBadRequest, errcode.ErrorCodeBlobUploadInvalid,
			"this upload session is presigned: the finalizing PUT takes no body", nil)
		return
	}
	if digest == "" {
		m.writeError(w, http.StatusBadRequest, errcode.ErrorCodeDigestInvalid,
			"digest missing: finalize with PUT ?digest=sha256:<hex>", nil)
		return
	}
	res, err := m.svc.Finalize(name, uuid, digest)
	if err != nil {
		m.fail(w, r, name, uuid, err)
		return
	}
	m.log.WithFields(logrus.Fields{"repository": name, "uuid": uuid, "digest": res.Digest,
		"size": res.Size, "deduplicated": res.Deduplicated, "verified_by": res.VerifiedBy,
		"repeated": res.Repeated}).Info("presigned upload finalized")
	w.Header().Set("Location", m.v2+name+"/blobs/"+res.Digest)
	w.Header().Set("Docker-Content-Digest", res.Digest)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// hasBody reads one byte of a body of unknown length.
func hasBody(r *http.Request) bool {
	var b [1]byte
	n, _ := r.Body.Read(b[:])
	return n > 0
}

func (m *middleware) cancel(w http.ResponseWriter, r *http.Request, name, uuid string) {
	if err := m.svc.Cancel(name, uuid); err != nil {
		m.fail(w, r, name, uuid, err)
		return
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
}

// fail answers a service error in OCI terms (docs/api.md, Errors).
func (m *middleware) fail(w http.ResponseWriter, r *http.Request, name, uuid string, err error) {
	var se *s3direct.ServiceError
	if !errors.As(err, &se) {
		se = &s3direct.ServiceError{Kind: s3direct.KindInternal, Message: err.Error()}
	}
	status, code := http.StatusInternalServerError, errcode.ErrorCodeUnknown
	switch se.Kind {
	case s3direct.KindNotFound:
		status, code = http.StatusNotFound, errcode.ErrorCodeBlobUploadUnknown
	case s3direct.KindExpired:
		status, code = http.StatusGone, errcode.ErrorCodeBlobUploadInvalid
	case s3direct.KindState, s3direct.KindInvalid:
		status, code = http.StatusBadRequest, errcode.ErrorCodeBlobUploadInvalid
	case s3direct.KindConflict:
		status, code = http.StatusConflict, errcode.ErrorCodeBlobUploadInvalid
	case s3direct.KindDigest:
		status, code = http.StatusBadRequest, errcode.ErrorCodeDigestInvalid
	case s3direct.KindUnsupported:
		status, code = http.StatusBadRequest, errcode.ErrorCodeUnsupported
	case s3direct.KindQuota:
		status, code = http.StatusForbidden, errcode.ErrorCodeDenied
	case s3direct.KindStorage:
		status = http.StatusBadGateway
	}
	var detail any
	if se.Detail != "" {
		detail = se.Detail
	}
	entry := m.log.WithFields(logrus.Fields{"repository": name, "uuid": uuid, "method": r.Method, "status": status})
	if status >= 500 {
		entry.Errorf("presigned upload: %v", se)
	} else {
		entry.Infof("presigned upload refused: %s", se.Message)
	}
	m.writeError(w, status, code, se.Message, detail)
}

func (m *middleware) writeError(w http.ResponseWriter, status int, code errcode.ErrorCode, msg string, detail any) {
	if msg == "" {
		msg = code.Message()
	}
	m.writeJSON(w, status, errcode.Errors{code.WithMessage(msg).WithDetail(detail)})
}

func (m *middleware) writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		m.log.Errorf("encoding a response: %v", err)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if _, err := w.Write(body); err != nil {
		m.log.Debugf("writing a response: %v", err)
	}
}
