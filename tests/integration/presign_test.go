//go:build linux

package integration

// The presigned direct upload API (docs/api.md) end to end: real
// build/registry processes with the s3direct driver and presign on, the
// versitygw of tests/with-s3.sh, the bytes PUT to the presigned URLs with
// net/http (exactly the headers the presign answer lists), and the bucket
// inspected with aws-sdk-go to see what is left behind.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/credentials"
	"github.com/aws/aws-sdk-go/aws/session"
	"github.com/aws/aws-sdk-go/service/s3"
	"github.com/distribution/distribution/v3/registry/auth/token"
	"github.com/distribution/distribution/v3/registry/storage"
	s3aws "github.com/distribution/distribution/v3/registry/storage/driver/s3-aws"
)

// psPartSize is the presignpartsize of the test registries (S3's minimum
// part size), so multipart blobs stay small.
const psPartSize = 5 << 20

// ---------------------------------------------------------------- setup ----

// psEnv is one bucket and root directory of the versitygw of
// tests/with-s3.sh, with an S3 client to look into it.
type psEnv struct {
	e      s3Env
	bucket string
	root   string // rootdirectory without slashes: keys start with root+"/"
	s3     *s3.S3
}

func psSetup(t *testing.T) *psEnv {
	t.Helper()
	reproHint(t)
	e := needS3(t)
	pe := &psEnv{e: e, bucket: makeBucket(t, e), root: "ps-" + randHex(4)}
	sess, err := session.NewSession(&aws.Config{
		Endpoint:         aws.String(e.Endpoint),
		Region:           aws.String(e.Region),
		Credentials:      credentials.NewStaticCredentials(e.AccessKey, e.SecretKey, ""),
		S3ForcePathStyle: aws.Bool(true),
		DisableSSL:       aws.Bool(strings.HasPrefix(e.Endpoint, "http:")),
		MaxRetries:       aws.Int(2),
	})
	if err != nil {
		t.Fatalf("aws session for %s: %v", e.Endpoint, err)
	}
	pe.s3 = s3.New(sess)
	return pe
}

// storage is the storage section of a registry with presign on, small
// parts, no sweeper (unless extra sets sweepinterval) and extra parameters
// ("name: value").
func (pe *psEnv) storage(extra ...string) string {
	s := storageS3direct(pe.e, pe.bucket, "/"+pe.root) +
		"    presign: true\n" +
		fmt.Sprintf("    presignpartsize: %d\n", psPartSize)
	sweep := false
	for _, x := range extra {
		s += "    " + x + "\n"
		sweep = sweep || strings.HasPrefix(x, "sweepinterval:")
	}
	if !sweep {
		s += "    sweepinterval: 0\n"
	}
	return s
}

// fresh is the same bucket under another root directory.
func (pe *psEnv) fresh() *psEnv {
	d := *pe
	d.root = "ps-" + randHex(4)
	return &d
}

func (pe *psEnv) tempKey(uuid string) string   { return pe.root + "/_s3direct/uploads/" + uuid }
func (pe *psEnv) markerKey(uuid string) string { return pe.root + "/_s3direct/sessions/" + uuid }
func (pe *psEnv) uploadDir(repo, uuid string) string {
	return pe.root + "/docker/registry/v2/repositories/" + repo + "/_uploads/" + uuid + "/"
}
func (pe *psEnv) blobKey(digest string) string {
	h := strings.TrimPrefix(digest, "sha256:")
	return pe.root + "/docker/registry/v2/blobs/sha256/" + h[:2] + "/" + h + "/data"
}
func (pe *psEnv) linkKey(repo, digest string) string {
	return pe.root + "/docker/registry/v2/repositories/" + repo + "/_layers/sha256/" +
		strings.TrimPrefix(digest, "sha256:") + "/link"
}

// keys lists the object keys under prefix.
func (pe *psEnv) keys(t *testing.T, prefix string) []string {
	t.Helper()
	var out []string
	in := &s3.ListObjectsV2Input{Bucket: aws.String(pe.bucket), Prefix: aws.String(prefix)}
	for page := 0; page < 100; page++ {
		res, err := pe.s3.ListObjectsV2(in)
		if err != nil {
			t.Fatalf("ListObjectsV2 %s/%s: %v", pe.bucket, prefix, err)
		}
		for _, o := range res.Contents {
			out = append(out, aws.StringValue(o.Key))
		}
		if !aws.BoolValue(res.IsTruncated) {
			return out
		}
		in.ContinuationToken = res.NextContinuationToken
	}
	t.Fatalf("ListObjectsV2 %s/%s: more than 100 pages", pe.bucket, prefix)
	return nil
}

// object is the content of key ("(absent)" when there is none).
func (pe *psEnv) object(t *testing.T, key string) string {
	t.Helper()
	res, err := pe.s3.GetObject(&s3.GetObjectInput{Bucket: aws.String(pe.bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Sprintf("(absent: %v)", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<16))
	return string(b)
}

// uploads lists the multipart uploads under prefix as "key uploadId".
func (pe *psEnv) uploads(t *testing.T, prefix string) []string {
	t.Helper()
	var out []string
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(pe.bucket), Prefix: aws.String(prefix)}
	for page := 0; page < 100; page++ {
		res, err := pe.s3.ListMultipartUploads(in)
		if err != nil {
			t.Fatalf("ListMultipartUploads %s/%s: %v", pe.bucket, prefix, err)
		}
		for _, u := range res.Uploads {
			// some servers list by prefix loosely: keep what matches
			if strings.HasPrefix(aws.StringValue(u.Key), prefix) {
				out = append(out, aws.StringValue(u.Key)+" "+aws.StringValue(u.UploadId))
			}
		}
		if !aws.BoolValue(res.IsTruncated) {
			return out
		}
		in.KeyMarker, in.UploadIdMarker = res.NextKeyMarker, res.NextUploadIdMarker
	}
	t.Fatalf("ListMultipartUploads %s/%s: more than 100 pages", pe.bucket, prefix)
	return nil
}

// sessionLeftovers lists what a session left in S3: temp object,
// multipart uploads of the temp key, marker, stock upload directory.
func (pe *psEnv) sessionLeftovers(t *testing.T, repo, uuid string) []string {
	t.Helper()
	var left []string
	for _, k := range pe.keys(t, pe.tempKey(uuid)) {
		left = append(left, "temp object "+k)
	}
	for _, u := range pe.uploads(t, pe.tempKey(uuid)) {
		left = append(left, "multipart upload "+u)
	}
	for _, k := range pe.keys(t, pe.markerKey(uuid)) {
		left = append(left, "session marker "+k)
	}
	for _, k := range pe.keys(t, pe.uploadDir(repo, uuid)) {
		left = append(left, "stock upload file "+k)
	}
	return left
}

func (pe *psEnv) wantSessionGone(t *testing.T, repo, uuid, after string) {
	t.Helper()
	if left := pe.sessionLeftovers(t, repo, uuid); len(left) > 0 {
		t.Errorf("after %s, session %s left in S3:\n%s", after, uuid, indent(strings.Join(left, "\n")))
	}
}

// --------------------------------------------------------------- client ----

// psResp is an answer with its body read.
type psResp struct {
	Status int
	Header http.Header
	Body   []byte
	Req    string // "METHOD path" for messages
}

func (r *psResp) String() string {
	return fmt.Sprintf("%s: %d %s; body: %s", r.Req, r.Status, http.StatusText(r.Status),
		clipHead(strings.TrimSpace(string(r.Body)), 600))
}

// psClient talks to one registry, with an Authorization header when set.
type psClient struct {
	base  string
	hc    *http.Client
	authz string
	name  string
}

func newPsClient(reg *registry) *psClient {
	return &psClient{base: reg.URL(), hc: &http.Client{Timeout: 2 * time.Minute}, name: reg.Name}
}

func (c *psClient) with(authz string) *psClient {
	d := *c
	d.authz = authz
	return &d
}

// shortURL hides the signature of presigned URLs in messages.
func shortURL(u string) string {
	if i := strings.Index(u, "?"); i >= 0 && strings.Contains(u, "X-Amz-") {
		return u[:i] + "?<presigned>"
	}
	return shortPath(u)
}

func psDo(t *testing.T, hc *http.Client, method, rawURL string, hdr http.Header, body []byte, authz string) *psResp {
	t.Helper()
	r, err := psTry(hc, method, rawURL, hdr, body, authz)
	if err != nil {
		t.Fatalf("%s %s: %v", method, shortURL(rawURL), err)
	}
	return r
}

// psTry is psDo that returns a transport error.
func psTry(hc *http.Client, method, rawURL string, hdr http.Header, body []byte, authz string) (*psResp, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %v", err)
	}
	return &psResp{Status: resp.StatusCode, Header: resp.Header, Body: b, Req: method + " " + shortURL(rawURL)}, nil
}

func (c *psClient) do(t *testing.T, method, pathOrURL string, hdr http.Header, body []byte) *psResp {
	t.Helper()
	u := pathOrURL
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		u = c.base + pathOrURL
	}
	r := psDo(t, c.hc, method, u, hdr, body, c.authz)
	r.Req += " (" + c.name + ")"
	return r
}

func psUploadPath(repo, uuid string) string { return "/v2/" + repo + "/blobs/uploads/" + uuid }

// open starts an upload (stock POST) and returns its uuid.
func (c *psClient) open(t *testing.T, repo string) string {
	t.Helper()
	r := c.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
	if r.Status != http.StatusAccepted {
		t.Fatalf("open an upload: %v", r)
	}
	loc, err := url.Parse(r.Header.Get("Location"))
	if err != nil || loc.Path == "" {
		t.Fatalf("open an upload: Location %q: %v", r.Header.Get("Location"), err)
	}
	uuid := loc.Path[strings.LastIndex(loc.Path, "/")+1:]
	if got := r.Header.Get("Docker-Upload-UUID"); got != uuid {
		t.Fatalf("open an upload: Docker-Upload-UUID %q, Location's last segment %q", got, uuid)
	}
	return uuid
}

// psPresign is the presign answer (docs/api.md 2 and 3).
type psPresign struct {
	URL      string `json:"presigned_url"`
	PartSize int64  `json:"part_size"`
	Parts    []struct {
		Number int    `json:"part_number"`
		URL    string `json:"url"`
	} `json:"parts"`
	Method           string            `json:"method"`
	ExpiresAt        time.Time         `json:"expires_at"`
	Headers          map[string]string `json:"headers"`
	SessionExpiresAt time.Time         `json:"session_expires_at"`
}

// psQ builds a query: psQ("digest", d, "size", "12").
func psQ(kv ...string) url.Values {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return q
}

func (c *psClient) presign(t *testing.T, repo, uuid string, q url.Values) *psResp {
	t.Helper()
	if q == nil {
		q = url.Values{}
	}
	q.Set("presigned", "true")
	return c.do(t, http.MethodGet, psUploadPath(repo, uuid)+"?"+q.Encode(), nil, nil)
}

func (c *psClient) mustPresign(t *testing.T, repo, uuid string, q url.Values) *psPresign {
	t.Helper()
	r := c.presign(t, repo, uuid, q)
	if r.Status != http.StatusOK {
		t.Fatalf("presign: %v", r)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("presign: Content-Type %q, want application/json", ct)
	}
	var p psPresign
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("presign: answer is not the JSON of docs/api.md: %v; body %s", err, r.Body)
	}
	if p.Method != http.MethodPut {
		t.Errorf("presign: method %q, want PUT", p.Method)
	}
	now := time.Now()
	if !p.ExpiresAt.After(now.Add(-2*time.Second)) || !p.SessionExpiresAt.After(now.Add(-2*time.Second)) ||
		p.ExpiresAt.After(p.SessionExpiresAt) {
		t.Errorf("presign: expires_at %v, session_expires_at %v: want both in the future, URLs never outliving the session",
			p.ExpiresAt, p.SessionExpiresAt)
	}
	urls := []string{p.URL}
	if q.Get("parts") != "" {
		urls = nil
		for _, pu := range p.Parts {
			urls = append(urls, pu.URL)
		}
	}
	for _, u := range urls {
		pu, err := url.Parse(u)
		if err != nil || pu.Query().Get("X-Amz-Signature") == "" {
			t.Fatalf("presign: URL %q is not a presigned S3 URL (%v)", shortURL(u), err)
		}
	}
	return &p
}

func (c *psClient) status(t *testing.T, repo, uuid string, asJSON bool) *psResp {
	t.Helper()
	h := http.Header{}
	if asJSON {
		h.Set("Accept", "application/json")
	}
	return c.do(t, http.MethodGet, psUploadPath(repo, uuid), h, nil)
}

// psStatus is the JSON status of docs/api.md 4.
type psStatus struct {
	UUID      string    `json:"uuid"`
	Status    string    `json:"status"`
	Stored    int64     `json:"stored"`
	ExpiresAt time.Time `json:"expires_at"`
	PartSize  int64     `json:"part_size"`
	Parts     []struct {
		Number int    `json:"part_number"`
		Size   int64  `json:"size"`
		ETag   string `json:"etag"`
	} `json:"parts"`
}

// wantStatus checks the plain (204 + Range) and the JSON status of a
// session holding stored bytes, and returns the JSON one.
func (c *psClient) wantStatus(t *testing.T, repo, uuid string, stored int64) *psStatus {
	t.Helper()
	r := c.status(t, repo, uuid, false)
	want := "0-0"
	if stored > 0 {
		want = fmt.Sprintf("0-%d", stored-1)
	}
	if r.Status != http.StatusNoContent || r.Header.Get("Range") != want {
		t.Fatalf("status: %v; Range %q; want 204, Range %q", r, r.Header.Get("Range"), want)
	}
	if r.Header.Get("Docker-Upload-UUID") != uuid || !strings.HasSuffix(r.Header.Get("Location"), psUploadPath(repo, uuid)) ||
		r.Header.Get("S3direct-Upload-Status") == "" {
		t.Errorf("status: headers Docker-Upload-UUID %q, Location %q, S3direct-Upload-Status %q",
			r.Header.Get("Docker-Upload-UUID"), r.Header.Get("Location"), r.Header.Get("S3direct-Upload-Status"))
	}
	r = c.status(t, repo, uuid, true)
	if r.Status != http.StatusOK || r.Header.Get("Range") != want {
		t.Fatalf("status (Accept: application/json): %v; Range %q; want 200, Range %q", r, r.Header.Get("Range"), want)
	}
	var st psStatus
	if err := json.Unmarshal(r.Body, &st); err != nil {
		t.Fatalf("status JSON: %v; body %s", err, r.Body)
	}
	if st.UUID != uuid || st.Stored != stored || st.Status == "" || st.Parts == nil {
		t.Errorf("status JSON: %s; want uuid %s, stored %d, a status and a parts list", r.Body, uuid, stored)
	}
	var sum int64
	for _, p := range st.Parts {
		sum += p.Size
	}
	if len(st.Parts) > 0 && sum != stored {
		t.Errorf("status JSON: parts add up to %d bytes, stored says %d", sum, stored)
	}
	return &st
}

func (c *psClient) finalize(t *testing.T, repo, uuid, digest string) *psResp {
	t.Helper()
	return c.do(t, http.MethodPut, psUploadPath(repo, uuid)+"?digest="+url.QueryEscape(digest), nil, nil)
}

// mustFinalize wants 201 with the stock headers.
func (c *psClient) mustFinalize(t *testing.T, repo, uuid, digest string) {
	t.Helper()
	r := c.finalize(t, repo, uuid, digest)
	psWantCreated(t, r, repo, digest)
}

func psWantCreated(t *testing.T, r *psResp, repo, digest string) {
	t.Helper()
	if r.Status != http.StatusCreated {
		t.Fatalf("finalize: %v; want 201", r)
	}
	if got := r.Header.Get("Docker-Content-Digest"); got != digest {
		t.Errorf("finalize: Docker-Content-Digest %q, want %s", got, digest)
	}
	if loc := r.Header.Get("Location"); !strings.HasSuffix(loc, "/v2/"+repo+"/blobs/"+digest) {
		t.Errorf("finalize: Location %q, want /v2/%s/blobs/%s", loc, repo, digest)
	}
}

func (c *psClient) cancel(t *testing.T, repo, uuid string) *psResp {
	t.Helper()
	return c.do(t, http.MethodDelete, psUploadPath(repo, uuid), nil, nil)
}

func (c *psClient) headBlob(t *testing.T, repo, digest string) *psResp {
	t.Helper()
	return c.do(t, http.MethodHead, "/v2/"+repo+"/blobs/"+digest, nil, nil)
}

// wantBlob wants the blob pullable from repo with exactly data.
func (c *psClient) wantBlob(t *testing.T, repo string, data []byte) {
	t.Helper()
	d := psDigest(data)
	r := c.headBlob(t, repo, d)
	if r.Status != http.StatusOK || r.Header.Get("Content-Length") != strconv.Itoa(len(data)) ||
		r.Header.Get("Docker-Content-Digest") != d {
		t.Errorf("HEAD blob: %v; Content-Length %q, Docker-Content-Digest %q; want 200, %d, %s",
			r, r.Header.Get("Content-Length"), r.Header.Get("Docker-Content-Digest"), len(data), d)
	}
	r = c.do(t, http.MethodGet, "/v2/"+repo+"/blobs/"+d, nil, nil)
	if r.Status != http.StatusOK || !bytes.Equal(r.Body, data) {
		t.Errorf("GET blob %s from %s: %d, %d bytes (digest %s); want 200, the %d bytes uploaded",
			d, repo, r.Status, len(r.Body), psDigest(r.Body), len(data))
	}
}

// wantNoBlob wants HEAD of the blob in repo to answer 404.
func (c *psClient) wantNoBlob(t *testing.T, repo, digest, why string) {
	t.Helper()
	if r := c.headBlob(t, repo, digest); r.Status != http.StatusNotFound {
		t.Errorf("%s: HEAD /v2/%s/blobs/%s: %d, want 404 (nothing linked)", why, repo, digest, r.Status)
	}
}

// stockPush pushes data with the stock API (POST, PUT ?digest= with the
// bytes) and returns its digest.
func (c *psClient) stockPush(t *testing.T, repo string, data []byte) string {
	t.Helper()
	d := psDigest(data)
	r := c.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
	if r.Status != http.StatusAccepted {
		t.Fatalf("stock push: %v", r)
	}
	h := http.Header{"Content-Type": {"application/octet-stream"}}
	r = c.do(t, http.MethodPut, psAddQuery(t, r.Header.Get("Location"), "digest", d), h, data)
	if r.Status != http.StatusCreated {
		t.Fatalf("stock push: %v", r)
	}
	return d
}

func psAddQuery(t *testing.T, loc, k, v string) string {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatalf("Location %q: %v", loc, err)
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

// psWantStockHeaders wants what the stock app puts on every answer: the
// API version and the configured http.headers (harness: nosniff).
func psWantStockHeaders(t *testing.T, r *psResp) {
	t.Helper()
	if r.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" || r.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("%v: Docker-Distribution-API-Version %q, X-Content-Type-Options %q; want the stock app's registry/2.0 and the configured nosniff",
			r, r.Header.Get("Docker-Distribution-API-Version"), r.Header.Get("X-Content-Type-Options"))
	}
}

// psOCIError is the first error of an OCI error body.
type psOCIError struct {
	Code, Message string
}

// wantError wants status and one of codes; returns the error.
func psWantError(t *testing.T, r *psResp, status int, codes ...string) psOCIError {
	t.Helper()
	var body struct {
		Errors []psOCIError `json:"errors"`
	}
	if r.Status != status {
		t.Errorf("%v; want %d %v", r, status, codes)
		return psOCIError{}
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || len(body.Errors) == 0 {
		t.Errorf("%v: not an OCI error body (%v)", r, err)
		return psOCIError{}
	}
	if !slices.Contains(codes, body.Errors[0].Code) {
		t.Errorf("%v; want code %v", r, codes)
	}
	return body.Errors[0]
}

// psWantOneOf wants one of "STATUS CODE" answers.
func psWantOneOf(t *testing.T, r *psResp, want ...string) {
	t.Helper()
	var body struct {
		Errors []psOCIError `json:"errors"`
	}
	code := ""
	if json.Unmarshal(r.Body, &body) == nil && len(body.Errors) > 0 {
		code = body.Errors[0].Code
	}
	if !slices.Contains(want, fmt.Sprintf("%d %s", r.Status, code)) {
		t.Errorf("%v; want one of %v", r, want)
	}
}

// --------------------------------------------------------------- S3 PUTs ----

// psPut PUTs body to a presigned URL with headers (content-length goes as
// the request's length, the real one of body). Loopback only.
func psPut(t *testing.T, rawURL string, headers map[string]string, body []byte) *psResp {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("presigned URL: %v", err)
	}
	if ip := net.ParseIP(u.Hostname()); (ip == nil || !ip.IsLoopback()) && u.Hostname() != "localhost" {
		t.Fatalf("presigned URL points at %s, not at the loopback S3 server", u.Host)
	}
	h := http.Header{}
	for k, v := range headers {
		if strings.EqualFold(k, "content-length") {
			continue
		}
		h.Set(k, v)
	}
	if body == nil {
		body = []byte{}
	}
	r, err := psTry(&http.Client{Timeout: 2 * time.Minute}, http.MethodPut, rawURL, h, body, "")
	if err != nil {
		// S3 may answer early and close while the body is still being
		// sent: a refusal without a status
		t.Logf("PUT %s: %v", shortURL(rawURL), err)
		return &psResp{Status: psReset, Body: []byte(err.Error()), Req: "PUT " + shortURL(rawURL)}
	}
	return r
}

// psReset is the status of a PUT whose connection S3 closed before
// answering.
const psReset = -1

// psPutOK sends exactly what the presign answer says and wants 200.
func psPutOK(t *testing.T, rawURL string, headers map[string]string, body []byte) string {
	t.Helper()
	for k, v := range headers {
		if strings.EqualFold(k, "content-length") && v != strconv.Itoa(len(body)) {
			t.Fatalf("presign signed content-length %s, the body has %d bytes", v, len(body))
		}
	}
	r := psPut(t, rawURL, headers, body)
	if r.Status != http.StatusOK {
		t.Fatalf("PUT of %d bytes to the presigned URL: %v", len(body), r)
	}
	return r.Header.Get("ETag")
}

// wantS3Refused wants S3 to refuse a PUT (4xx, nothing stored by it).
func psWantS3Refused(t *testing.T, r *psResp, why string, statuses ...int) {
	t.Helper()
	code := regexp.MustCompile(`<Code>([^<]*)</Code>`).FindSubmatch(r.Body)
	if code != nil {
		t.Logf("%s: S3 answered %d %s", why, r.Status, code[1])
	} else {
		t.Logf("%s: S3 answered %d", why, r.Status)
	}
	// S3 closing the connection on a refused body, as the client's
	// transport happens to report it (a refused connection or a timeout
	// is not a refusal)
	if r.Status == psReset && (strings.Contains(string(r.Body), "reset by peer") ||
		strings.Contains(string(r.Body), "broken pipe") ||
		strings.Contains(string(r.Body), "use of closed network connection")) {
		return
	}
	if len(statuses) == 0 {
		if r.Status < 400 || r.Status > 499 {
			t.Errorf("%s: S3 answered %v; want a 4xx refusal", why, r)
		}
		return
	}
	if !slices.Contains(statuses, r.Status) {
		t.Errorf("%s: S3 answered %v; want %v", why, r, statuses)
	}
}

// --------------------------------------------------------------- data ----

func psRand(n int64) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func psDigest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func psB64(digest string) string {
	raw, _ := hex.DecodeString(strings.TrimPrefix(digest, "sha256:"))
	return base64.StdEncoding.EncodeToString(raw)
}

// psSplit cuts data into part-size pieces (the last one shorter).
func psSplit(data []byte, partSize int) [][]byte {
	var out [][]byte
	for len(data) > partSize {
		out = append(out, data[:partSize])
		data = data[partSize:]
	}
	return append(out, data)
}

// uploadSingle opens a session in repo, presigns one PUT with q, uploads
// data and returns the uuid.
func (c *psClient) uploadSingle(t *testing.T, repo string, data []byte, q url.Values) (string, *psPresign) {
	t.Helper()
	uuid := c.open(t, repo)
	p := c.mustPresign(t, repo, uuid, q)
	psPutOK(t, p.URL, p.Headers, data)
	return uuid, p
}

// uploadMultipart opens a session in repo, presigns every part (q adds
// size/digest) and uploads them; returns the uuid.
func (c *psClient) uploadMultipart(t *testing.T, repo string, data []byte, q url.Values) string {
	t.Helper()
	uuid := c.open(t, repo)
	parts := psSplit(data, psPartSize)
	if q == nil {
		q = url.Values{}
	}
	q.Set("parts", strconv.Itoa(len(parts)))
	p := c.mustPresign(t, repo, uuid, q)
	if p.PartSize != psPartSize || len(p.Parts) != len(parts) {
		t.Fatalf("multipart presign: part_size %d, %d URLs; want %d, %d", p.PartSize, len(p.Parts), psPartSize, len(parts))
	}
	for i, b := range parts {
		psPutOK(t, p.Parts[i].URL, p.Headers, b)
	}
	return uuid
}

// ------------------------------------------------------------ the API ----

// TestPresignAPI walks every step of docs/api.md on one registry, then the
// error answers and the "knowing a digest" attacks.
func TestPresignAPI(t *testing.T) {
	t.Parallel()
	pe := psSetup(t)
	reg := startRegistry(t, "presign", pe.storage(), regOptions{})
	c := newPsClient(reg)

	t.Run("single/undeclared-then-streaming-verification", func(t *testing.T) {
		repo := "ps/single"
		data := psRand(mib(0.3) + 13)
		d := psDigest(data)
		uuid := c.open(t, repo)
		r := c.presign(t, repo, uuid, nil)
		if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("presign: Cache-Control %q, want no-store (the URLs are credentials)", cc)
		}
		psWantStockHeaders(t, r)
		psWantStockHeaders(t, c.presign(t, repo, "f00-"+randHex(8), nil))
		p := c.mustPresign(t, repo, uuid, nil)
		if p.URL == "" || len(p.Parts) != 0 || p.PartSize != 0 {
			t.Errorf("single presign: presigned_url %q, %d parts, part_size %d", shortURL(p.URL), len(p.Parts), p.PartSize)
		}
		if got := p.Headers["x-amz-meta-s3direct"]; got != "session:"+uuid {
			t.Errorf("headers: x-amz-meta-s3direct %q, want session:%s", got, uuid)
		}
		if _, ok := p.Headers["x-amz-checksum-sha256"]; ok {
			t.Errorf("headers: x-amz-checksum-sha256 without a declared digest: %v", p.Headers)
		}
		if strings.Contains(p.URL, "/blobs/sha256/") {
			t.Errorf("undeclared digest: the URL must not point at a blob's key: %s", shortURL(p.URL))
		}
		c.wantStatus(t, repo, uuid, 0)
		psPutOK(t, p.URL, p.Headers, data)
		psWantStockHeaders(t, c.status(t, repo, uuid, false))
		// HEAD is the stock app's status too: what S3 holds
		if r := c.do(t, http.MethodHead, psUploadPath(repo, uuid), nil, nil); r.Status != http.StatusNoContent ||
			r.Header.Get("Range") != fmt.Sprintf("0-%d", len(data)-1) {
			t.Errorf("HEAD status: %v; Range %q, want 204, 0-%d", r, r.Header.Get("Range"), len(data)-1)
		}
		// the temp object is under the private prefix
		if k := pe.keys(t, pe.tempKey(uuid)); len(k) != 1 {
			t.Errorf("temp object of %s: %v, want exactly %s", uuid, k, pe.tempKey(uuid))
		}
		st := c.wantStatus(t, repo, uuid, int64(len(data)))
		if st.Status != "pending" && st.Status != "uploading" {
			t.Errorf("status JSON: status %q, want pending or uploading", st.Status)
		}
		c.wantNoBlob(t, repo, d, "before finalize")
		fr := c.finalize(t, repo, uuid, d)
		psWantCreated(t, fr, repo, d)
		psWantStockHeaders(t, fr)
		c.wantBlob(t, repo, data)
		pe.wantSessionGone(t, repo, uuid, "finalize")
		// a repeated finalize gives the same answer
		psWantCreated(t, c.finalize(t, repo, uuid, d), repo, d)
		// the session is over
		if r := c.status(t, repo, uuid, false); r.Status != http.StatusNotFound {
			t.Errorf("status after finalize: %v; want 404", r)
		}
	})

	t.Run("single/declared-digest-and-size-direct", func(t *testing.T) {
		repo := "ps/direct"
		data := psRand(mib(0.7) + 1)
		d := psDigest(data)
		uuid := c.open(t, repo)
		q := psQ("digest", d, "size", strconv.Itoa(len(data)))
		p := c.mustPresign(t, repo, uuid, q)
		if got := p.Headers["x-amz-checksum-sha256"]; got != psB64(d) {
			t.Errorf("headers: x-amz-checksum-sha256 %q, want %s", got, psB64(d))
		}
		if got := p.Headers["content-length"]; got != strconv.Itoa(len(data)) {
			t.Errorf("headers: content-length %q, want %d", got, len(data))
		}
		if u, _ := url.Parse(p.URL); !strings.HasSuffix(u.Path, "/"+pe.blobKey(d)) {
			t.Errorf("declared digest and size: URL path %s, want the blob's key %s", u.Path, pe.blobKey(d))
		}

		// S3 refuses: other bytes of the same length, another length, a
		// header left out, a changed signature.
		other := psRand(int64(len(data)))
		psWantS3Refused(t, psPut(t, p.URL, p.Headers, other), "other bytes to a declared-digest URL")
		psWantS3Refused(t, psPut(t, p.URL, p.Headers, data[:len(data)-1]), "one byte less than the signed content-length")
		noMeta := map[string]string{}
		for k, v := range p.Headers {
			if k != "x-amz-meta-s3direct" {
				noMeta[k] = v
			}
		}
		psWantS3Refused(t, psPut(t, p.URL, noMeta, data), "the signed x-amz-meta-s3direct left out", http.StatusForbidden)
		psWantS3Refused(t, psPut(t, psTamper(t, p.URL), p.Headers, data), "a tampered signature", http.StatusForbidden)
		if k := pe.keys(t, pe.blobKey(d)); len(k) != 0 {
			t.Fatalf("after refused PUTs the blob's key exists: %v", k)
		}
		c.wantStatus(t, repo, uuid, 0)

		// a second presign returns fresh URLs, same declared values
		p2 := c.mustPresign(t, repo, uuid, psQ("digest", d))
		if p2.Headers["content-length"] != strconv.Itoa(len(data)) {
			t.Errorf("second presign: headers %v, want the declared size kept", p2.Headers)
		}
		// changing what was declared is refused
		psWantError(t, c.presign(t, repo, uuid, psQ("size", "5")), http.StatusBadRequest, "BLOB_UPLOAD_INVALID")
		psWantError(t, c.presign(t, repo, uuid, psQ("digest", psDigest(other))), http.StatusBadRequest, "BLOB_UPLOAD_INVALID")
		psWantError(t, c.presign(t, repo, uuid, psQ("parts", "1")), http.StatusBadRequest, "BLOB_UPLOAD_INVALID")

		psPutOK(t, p2.URL, p2.Headers, data)
		c.wantStatus(t, repo, uuid, int64(len(data)))
		c.mustFinalize(t, repo, uuid, d)
		c.wantBlob(t, repo, data)
		pe.wantSessionGone(t, repo, uuid, "finalize")
		if k := pe.keys(t, pe.linkKey(repo, d)); len(k) != 1 {
			t.Errorf("layer link of %s in %s: %v", d, repo, k)
		}
	})

	t.Run("single/declared-digest-only", func(t *testing.T) {
		repo := "ps/digestonly"
		data := psRand(mib(0.2))
		d := psDigest(data)
		uuid, p := c.uploadSingle(t, repo, data, psQ("digest", d))
		if p.Headers["x-amz-checksum-sha256"] != psB64(d) {
			t.Errorf("headers %v: want the checksum", p.Headers)
		}
		c.mustFinalize(t, repo, uuid, d)
		c.wantBlob(t, repo, data)
	})

	t.Run("multipart", func(t *testing.T) {
		repo := "ps/multi"
		data := psRand(2*psPartSize + 4321)
		d := psDigest(data)
		parts := psSplit(data, psPartSize)
		uuid := c.open(t, repo)
		p := c.mustPresign(t, repo, uuid, psQ("parts", "2", "size", strconv.Itoa(len(data))))
		if p.PartSize != psPartSize || len(p.Parts) != 2 || p.Parts[0].Number != 1 || p.Parts[1].Number != 2 || p.URL != "" {
			t.Fatalf("multipart presign: part_size %d, parts %+v, presigned_url %q; want %d, parts 1 and 2, no single URL",
				p.PartSize, p.Parts, shortURL(p.URL), psPartSize)
		}
		c.wantStatus(t, repo, uuid, 0)
		psPutOK(t, p.Parts[0].URL, p.Headers, parts[0])
		st := c.wantStatus(t, repo, uuid, psPartSize)
		if len(st.Parts) != 1 || st.Parts[0].Number != 1 || st.Parts[0].Size != psPartSize || st.Parts[0].ETag == "" ||
			st.PartSize != psPartSize || st.Status != "uploading" {
			t.Errorf("status JSON after part 1: %+v", st)
		}
		p3 := c.mustPresign(t, repo, uuid, psQ("parts", "1", "first_part", "3"))
		if len(p3.Parts) != 1 || p3.Parts[0].Number != 3 {
			t.Fatalf("presign first_part=3: parts %+v", p3.Parts)
		}
		if psUploadID(t, p3.Parts[0].URL) != psUploadID(t, p.Parts[0].URL) {
			t.Errorf("a second presign changed the multipart upload id")
		}
		psPutOK(t, p3.Parts[0].URL, p3.Headers, parts[2])
		psPutOK(t, p.Parts[1].URL, p.Headers, parts[1])
		st = c.wantStatus(t, repo, uuid, int64(len(data)))
		if len(st.Parts) != 3 {
			t.Errorf("status JSON: %d parts, want 3", len(st.Parts))
		}
		// a digest or mode change is refused
		psWantError(t, c.presign(t, repo, uuid, nil), http.StatusBadRequest, "BLOB_UPLOAD_INVALID")
		c.mustFinalize(t, repo, uuid, d)
		c.wantBlob(t, repo, data)
		pe.wantSessionGone(t, repo, uuid, "finalize")
	})

	t.Run("multipart/undeclared-size", func(t *testing.T) {
		repo := "ps/multi2"
		data := psRand(psPartSize + 17)
		uuid := c.uploadMultipart(t, repo, data, nil)
		c.mustFinalize(t, repo, uuid, psDigest(data))
		c.wantBlob(t, repo, data)
	})

	t.Run("manifest-through-the-stock-api", func(t *testing.T) {
		repo := "ps/image"
		layer := psRand(mib(1.5) + 3)
		config := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}`, psDigest(layer)))
		for _, b := range [][]byte{layer, config} {
			uuid, _ := c.uploadSingle(t, repo, b, psQ("digest", psDigest(b), "size", strconv.Itoa(len(b))))
			c.mustFinalize(t, repo, uuid, psDigest(b))
		}
		manifest := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
			`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},`+
			`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%d}]}`,
			psDigest(config), len(config), psDigest(layer), len(layer)))
		mt := "application/vnd.oci.image.manifest.v1+json"
		r := c.do(t, http.MethodPut, "/v2/"+repo+"/manifests/v1", http.Header{"Content-Type": {mt}}, manifest)
		if r.Status != http.StatusCreated || r.Header.Get("Docker-Content-Digest") != psDigest(manifest) {
			t.Fatalf("PUT manifest referencing presigned blobs: %v; Docker-Content-Digest %q", r, r.Header.Get("Docker-Content-Digest"))
		}
		for _, ref := range []string{"v1", psDigest(manifest)} {
			r = c.do(t, http.MethodGet, "/v2/"+repo+"/manifests/"+ref, http.Header{"Accept": {mt}}, nil)
			if r.Status != http.StatusOK || !bytes.Equal(r.Body, manifest) {
				t.Errorf("GET manifest %s: %v", ref, r)
			}
		}
		c.wantBlob(t, repo, layer)
		c.wantBlob(t, repo, config)
	})

	t.Run("cancel", func(t *testing.T) {
		repo := "ps/cancel"
		// multipart with a part stored
		uuid := c.open(t, repo)
		p := c.mustPresign(t, repo, uuid, psQ("parts", "2"))
		psPutOK(t, p.Parts[0].URL, p.Headers, psRand(psPartSize))
		if u := pe.uploads(t, pe.tempKey(uuid)); len(u) != 1 {
			t.Fatalf("multipart upload of %s before the cancel: %v, want one", uuid, u)
		}
		r := c.cancel(t, repo, uuid)
		if r.Status != http.StatusNoContent {
			t.Fatalf("cancel: %v; want 204", r)
		}
		pe.wantSessionGone(t, repo, uuid, "cancel (multipart)")
		if r := c.status(t, repo, uuid, false); r.Status != http.StatusNotFound {
			t.Errorf("status after cancel: %v; want 404", r)
		}
		r = c.presign(t, repo, uuid, psQ("parts", "2"))
		if r.Status != http.StatusBadRequest && r.Status != http.StatusNotFound {
			t.Errorf("presign after cancel: %v; want 400 or 404", r)
		}
		// the part URL no longer leads anywhere
		psWantS3Refused(t, psPut(t, p.Parts[1].URL, p.Headers, psRand(1024)), "a part to a cancelled upload")

		// single with the temp object stored
		data := psRand(4096)
		uuid2, _ := c.uploadSingle(t, repo, data, nil)
		if k := pe.keys(t, pe.tempKey(uuid2)); len(k) != 1 {
			t.Fatalf("temp object before the cancel: %v", k)
		}
		if r := c.cancel(t, repo, uuid2); r.Status != http.StatusNoContent {
			t.Fatalf("cancel: %v; want 204", r)
		}
		pe.wantSessionGone(t, repo, uuid2, "cancel (single)")
		psWantOneOf(t, c.finalize(t, repo, uuid2, psDigest(data)), "404 BLOB_UPLOAD_UNKNOWN", "404 BLOB_UPLOAD_INVALID")
		c.wantNoBlob(t, repo, psDigest(data), "finalize after cancel")
	})

	t.Run("errors/digest-mismatch-single", func(t *testing.T) {
		repo := "ps/mismatch"
		data, claimed := psRand(mib(0.4)), psRand(mib(0.4))
		uuid, _ := c.uploadSingle(t, repo, data, nil)
		psWantError(t, c.finalize(t, repo, uuid, psDigest(claimed)), http.StatusBadRequest, "DIGEST_INVALID")
		c.wantNoBlob(t, repo, psDigest(claimed), "digest mismatch")
		c.wantNoBlob(t, repo, psDigest(data), "digest mismatch")
		if k := pe.keys(t, pe.tempKey(uuid)); len(k) != 0 {
			t.Errorf("digest mismatch: temp object left: %v", k)
		}
		if k := pe.keys(t, pe.blobKey(psDigest(claimed))); len(k) != 0 {
			t.Errorf("digest mismatch: an object at the claimed blob's key: %v", k)
		}
		// no second chance: the bytes are gone
		if r := c.finalize(t, repo, uuid, psDigest(data)); r.Status == http.StatusCreated {
			t.Errorf("finalize with the right digest after a mismatch removed the bytes: %v", r)
		}
	})

	t.Run("errors/digest-mismatch-multipart", func(t *testing.T) {
		repo := "ps/mismatch"
		data := psRand(psPartSize + 1000)
		uuid := c.uploadMultipart(t, repo, data, nil)
		bad := psDigest(append([]byte{1}, data...))
		psWantError(t, c.finalize(t, repo, uuid, bad), http.StatusBadRequest, "DIGEST_INVALID")
		c.wantNoBlob(t, repo, bad, "digest mismatch")
		c.wantNoBlob(t, repo, psDigest(data), "digest mismatch")
		if k, u := pe.keys(t, pe.tempKey(uuid)), pe.uploads(t, pe.tempKey(uuid)); len(k)+len(u) != 0 {
			t.Errorf("digest mismatch: left in S3: objects %v, multipart uploads %v", k, u)
		}
	})

	t.Run("errors/digests", func(t *testing.T) {
		repo := "ps/digests"
		sha512 := "sha512:" + strings.Repeat("ab", 64)
		uuid := c.open(t, repo)
		psWantError(t, c.presign(t, repo, uuid, psQ("digest", sha512)), http.StatusBadRequest, "UNSUPPORTED", "DIGEST_INVALID")
		psWantError(t, c.presign(t, repo, uuid, psQ("digest", "sha256:xyz")), http.StatusBadRequest, "DIGEST_INVALID")
		psWantError(t, c.presign(t, repo, uuid, psQ("digest", "sha256:"+strings.Repeat("AB", 32))), http.StatusBadRequest, "DIGEST_INVALID")
		data := psRand(1000)
		p := c.mustPresign(t, repo, uuid, nil)
		psPutOK(t, p.URL, p.Headers, data)
		psWantError(t, c.finalize(t, repo, uuid, "sha512:"+strings.Repeat("cd", 64)), http.StatusBadRequest, "UNSUPPORTED", "DIGEST_INVALID")
		psWantError(t, c.finalize(t, repo, uuid, "nonsense"), http.StatusBadRequest, "DIGEST_INVALID")
		psWantError(t, c.do(t, http.MethodPut, psUploadPath(repo, uuid), nil, nil), http.StatusBadRequest, "DIGEST_INVALID")
		c.wantNoBlob(t, repo, psDigest(data), "bad digests")
		// the session survives refused finalizes of malformed digests
		c.mustFinalize(t, repo, uuid, psDigest(data))
		c.wantBlob(t, repo, data)
	})

	t.Run("errors/bad-parameters", func(t *testing.T) {
		repo := "ps/params"
		post := c.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
		if post.Status != http.StatusAccepted {
			t.Fatalf("POST: %v", post)
		}
		uuid := post.Header.Get("Docker-Upload-UUID")
		for _, q := range []url.Values{
			psQ("size", "-5"), psQ("size", "12x"), psQ("parts", "0"), psQ("parts", "x"),
			psQ("parts", "1", "first_part", "0"), psQ("parts", "1001"), psQ("parts", "1", "first_part", "10001"),
			psQ("parts", "2", "first_part", "10000"),
		} {
			psWantError(t, c.presign(t, repo, uuid, q), http.StatusBadRequest, "SIZE_INVALID", "BLOB_UPLOAD_INVALID")
		}
		// nothing was opened by the refused calls: a stock upload still works
		data := psRand(5000)
		r := c.do(t, http.MethodPut, psAddQuery(t, post.Header.Get("Location"), "digest", psDigest(data)),
			http.Header{"Content-Type": {"application/octet-stream"}}, data)
		if r.Status != http.StatusCreated {
			t.Errorf("stock monolithic PUT after refused presigns: %v", r)
		}
	})

	t.Run("errors/unknown-and-other-repository", func(t *testing.T) {
		repo, other := "ps/mine", "ps/theirs"
		ghost := "0c8e5ae2-5d09-4e4c-9d33-" + randHex(6)
		psWantError(t, c.presign(t, repo, ghost, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		psWantError(t, c.presign(t, repo, "not.an=uuid", nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		psWantError(t, c.status(t, repo, ghost, false), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		// finalize and cancel of an id that is no presigned session are the
		// stock app's: without _state it answers 404 BLOB_UPLOAD_INVALID
		// (distribution maps that code to 404)
		psWantOneOf(t, c.finalize(t, repo, ghost, psDigest(nil)), "404 BLOB_UPLOAD_UNKNOWN", "404 BLOB_UPLOAD_INVALID")
		psWantOneOf(t, c.cancel(t, repo, ghost), "404 BLOB_UPLOAD_UNKNOWN", "404 BLOB_UPLOAD_INVALID")

		data := psRand(2048)
		uuid, _ := c.uploadSingle(t, repo, data, nil)
		// a stock session of another repository is no presigned session here
		psWantError(t, c.presign(t, other, uuid, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		psWantError(t, c.status(t, other, uuid, false), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		psWantOneOf(t, c.finalize(t, other, uuid, psDigest(data)), "404 BLOB_UPLOAD_UNKNOWN", "404 BLOB_UPLOAD_INVALID")
		psWantOneOf(t, c.cancel(t, other, uuid), "404 BLOB_UPLOAD_UNKNOWN", "404 BLOB_UPLOAD_INVALID")
		c.wantNoBlob(t, other, psDigest(data), "finalize through another repository")
		// and it is untouched in its own
		c.wantStatus(t, repo, uuid, int64(len(data)))
		c.mustFinalize(t, repo, uuid, psDigest(data))
		c.wantBlob(t, repo, data)
	})

	t.Run("errors/stock-calls-on-a-presigned-session", func(t *testing.T) {
		repo := "ps/state"
		uuid := c.open(t, repo)
		c.mustPresign(t, repo, uuid, nil)
		h := http.Header{"Content-Type": {"application/octet-stream"}}
		chunk := psRand(1024)
		psWantError(t, c.do(t, http.MethodPatch, psUploadPath(repo, uuid), h, chunk), http.StatusBadRequest, "BLOB_UPLOAD_INVALID")
		h.Set("Content-Range", "0-1023")
		psWantError(t, c.do(t, http.MethodPatch, psUploadPath(repo, uuid), h, chunk), http.StatusBadRequest, "BLOB_UPLOAD_INVALID")
		psWantError(t, c.do(t, http.MethodPut, psUploadPath(repo, uuid)+"?digest="+psDigest(chunk),
			http.Header{"Content-Type": {"application/octet-stream"}}, chunk), http.StatusBadRequest, "BLOB_UPLOAD_INVALID")
		c.wantNoBlob(t, repo, psDigest(chunk), "stock PUT with a body on a presigned session")
		c.wantStatus(t, repo, uuid, 0)
		// nothing stored: finalize refuses
		r := c.finalize(t, repo, uuid, psDigest(chunk))
		if r.Status < 400 || r.Status > 499 {
			t.Errorf("finalize of a session with no bytes: %v; want 4xx", r)
		}
		c.wantNoBlob(t, repo, psDigest(chunk), "finalize with nothing uploaded")
	})

	t.Run("errors/presign-after-patch-data", func(t *testing.T) {
		repo := "ps/patched"
		r := c.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
		if r.Status != http.StatusAccepted {
			t.Fatalf("POST: %v", r)
		}
		loc := r.Header.Get("Location")
		uuid := r.Header.Get("Docker-Upload-UUID")
		chunk := psRand(mib(0.1))
		r = c.do(t, http.MethodPatch, loc, http.Header{"Content-Type": {"application/octet-stream"}}, chunk)
		if r.Status != http.StatusAccepted {
			t.Fatalf("PATCH: %v", r)
		}
		loc = r.Header.Get("Location")
		psWantError(t, c.presign(t, repo, uuid, nil), http.StatusBadRequest, "BLOB_UPLOAD_INVALID")
		psWantError(t, c.presign(t, repo, uuid, psQ("parts", "1")), http.StatusBadRequest, "BLOB_UPLOAD_INVALID")
		// the stock upload goes on
		rest := psRand(777)
		r = c.do(t, http.MethodPut, psAddQuery(t, loc, "digest", psDigest(append(append([]byte{}, chunk...), rest...))),
			http.Header{"Content-Type": {"application/octet-stream"}}, rest)
		if r.Status != http.StatusCreated {
			t.Fatalf("stock PUT after the refused presign: %v", r)
		}
		c.wantBlob(t, repo, append(chunk, rest...))
	})

	t.Run("stock-session-unchanged", func(t *testing.T) {
		repo := "ps/stock"
		data := psRand(mib(6) + 5)
		r := c.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
		if r.Status != http.StatusAccepted {
			t.Fatalf("POST: %v", r)
		}
		loc := r.Header.Get("Location")
		off := 0
		for _, n := range []int{int(mib(2)), int(mib(3)) + 1, len(data) - int(mib(5)) - 1} {
			h := http.Header{"Content-Type": {"application/octet-stream"},
				"Content-Range": {fmt.Sprintf("%d-%d", off, off+n-1)}}
			r = c.do(t, http.MethodPatch, loc, h, data[off:off+n])
			if r.Status != http.StatusAccepted || r.Header.Get("Range") != fmt.Sprintf("0-%d", off+n-1) {
				t.Fatalf("stock PATCH: %v; Range %q", r, r.Header.Get("Range"))
			}
			off += n
			loc = r.Header.Get("Location")
			st := c.do(t, http.MethodGet, loc, nil, nil)
			if st.Status != http.StatusNoContent || st.Header.Get("Range") != fmt.Sprintf("0-%d", off-1) ||
				st.Header.Get("S3direct-Upload-Status") != "" {
				t.Fatalf("stock status: %v; Range %q, S3direct-Upload-Status %q", st, st.Header.Get("Range"),
					st.Header.Get("S3direct-Upload-Status"))
			}
		}
		r = c.do(t, http.MethodPut, psAddQuery(t, loc, "digest", psDigest(data)), nil, nil)
		if r.Status != http.StatusCreated {
			t.Fatalf("stock PUT: %v", r)
		}
		c.wantBlob(t, repo, data)
		// a stock cancel
		r = c.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
		if r.Status != http.StatusAccepted {
			t.Fatalf("POST: %v", r)
		}
		if d := c.do(t, http.MethodDelete, r.Header.Get("Location"), nil, nil); d.Status != http.StatusNoContent {
			t.Errorf("stock DELETE: %v", d)
		}
	})

	t.Run("knowing-a-digest-grants-nothing", func(t *testing.T) {
		secret := psRand(mib(0.25) + 9)
		k := c.stockPush(t, "ps/owner", secret)
		thief := "ps/thief"
		try := func(t *testing.T, what string, q url.Values, multipart bool, upload []byte) {
			t.Helper()
			uuid := c.open(t, thief)
			if multipart {
				q.Set("parts", "1")
			}
			p := c.mustPresign(t, thief, uuid, q)
			if upload != nil {
				u := p.URL
				if multipart {
					u = p.Parts[0].URL
				}
				r := psPut(t, u, p.Headers, upload)
				t.Logf("%s: PUT of %d other bytes: %d", what, len(upload), r.Status)
			}
			r := c.finalize(t, thief, uuid, k)
			if r.Status == http.StatusCreated || r.Status < 400 || r.Status > 499 {
				t.Errorf("%s: finalize with a digest stored in another repository: %v; want a 4xx refusal", what, r)
			}
			c.wantNoBlob(t, thief, k, what)
			if r := c.do(t, http.MethodGet, "/v2/"+thief+"/blobs/"+k, nil, nil); r.Status != http.StatusNotFound || bytes.Contains(r.Body, secret[:64]) {
				t.Errorf("%s: GET the blob through %s: %d", what, thief, r.Status)
			}
		}
		try(t, "declared digest, nothing uploaded", psQ("digest", k), false, nil)
		try(t, "declared digest and size, nothing uploaded", psQ("digest", k, "size", strconv.Itoa(len(secret))), false, nil)
		try(t, "undeclared, nothing uploaded", psQ(), false, nil)
		try(t, "undeclared, other bytes of the same size", psQ(), false, psRand(int64(len(secret))))
		try(t, "multipart, no part", psQ(), true, nil)
		try(t, "multipart with the digest, other bytes", psQ("digest", k), true, psRand(int64(len(secret))))
		c.wantBlob(t, "ps/owner", secret)
	})

	t.Run("concurrent-finalize", func(t *testing.T) {
		repo := "ps/race"
		data := psRand(2*psPartSize + 99)
		d := psDigest(data)
		uuid := c.uploadMultipart(t, repo, data, nil)
		const n = 8
		results := make([]*psResp, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i] = c.psAsync(http.MethodPut, psUploadPath(repo, uuid)+"?digest="+d, nil)
			}()
		}
		close(start)
		wg.Wait()
		created := 0
		for i, r := range results {
			t.Logf("finalize #%d: %d %s", i, r.Status, strings.TrimSpace(string(r.Body)))
			switch r.Status {
			case http.StatusCreated:
				created++
				if r.Header.Get("Docker-Content-Digest") != d {
					t.Errorf("finalize #%d: 201 with Docker-Content-Digest %q, want %s", i, r.Header.Get("Docker-Content-Digest"), d)
				}
			case http.StatusConflict, http.StatusNotFound:
			default:
				t.Errorf("concurrent finalize #%d: %v; want 201 (same digest), 409 or 404", i, r)
			}
		}
		if created < 1 {
			// what a client retrying now gets
			for i := 0; i < 3; i++ {
				r := c.finalize(t, repo, uuid, d)
				t.Logf("sequential finalize %d after the race: %v; S3direct-Upload-Status %q", i, r,
					c.status(t, repo, uuid, false).Header.Get("S3direct-Upload-Status"))
			}
			t.Fatalf("%d concurrent finalizes of one session on one process: none answered 201", n)
		}
		c.wantBlob(t, repo, data)
		if k := pe.keys(t, pe.linkKey(repo, d)); len(k) != 1 {
			t.Errorf("layer link: %v", k)
		}
		pe.wantSessionGone(t, repo, uuid, "concurrent finalizes")
		psWantCreated(t, c.finalize(t, repo, uuid, d), repo, d)
	})
}

// psRace runs a and b at once and returns their answers.
func psRace(a, b func() *psResp) (*psResp, *psResp) {
	var ra, rb *psResp
	var wg sync.WaitGroup
	start := make(chan struct{})
	wg.Add(2)
	go func() { defer wg.Done(); <-start; ra = a() }()
	go func() { defer wg.Done(); <-start; rb = b() }()
	close(start)
	wg.Wait()
	return ra, rb
}

// psAsync is a request that never fails the test from a goroutine (a
// transport error is status -1 with the error as body).
func (c *psClient) psAsync(method, path string, hdr http.Header) *psResp {
	r, err := psTry(c.hc, method, c.base+path, hdr, nil, c.authz)
	if err != nil {
		r = &psResp{Status: -1, Body: []byte(err.Error()), Req: method + " " + path}
	}
	r.Req += " (" + c.name + ")"
	return r
}

// TestPresignRaces: a finalize racing a status poll or a cancel of the same
// session on one process. One of finalize and cancel wins; a status poll
// never makes a finalize fail, and no session is left stuck.
func TestPresignRaces(t *testing.T) {
	t.Parallel()
	pe := psSetup(t)
	reg := startRegistry(t, "presign-races", pe.storage(), regOptions{})
	c := newPsClient(reg)
	const rounds = 6

	t.Run("finalize-while-status-polled", func(t *testing.T) {
		repo := "race/status"
		for i := range rounds {
			data := psRand(psPartSize + int64(i))
			d := psDigest(data)
			uuid := c.uploadMultipart(t, repo, data, nil)
			done := make(chan struct{})
			var polls []int
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; n < 2000; n++ {
					select {
					case <-done:
						return
					default:
					}
					polls = append(polls, c.psAsync(http.MethodGet, psUploadPath(repo, uuid), nil).Status)
				}
			}()
			r := c.psAsync(http.MethodPut, psUploadPath(repo, uuid)+"?digest="+d, nil)
			close(done)
			wg.Wait()
			if r.Status != http.StatusCreated {
				again := c.finalize(t, repo, uuid, d)
				t.Errorf("round %d: finalize while the status was polled (%d polls: %v): %v; a retry now: %v; status %q; marker in S3:\n%s",
					i, len(polls), slices.Compact(polls), r, again,
					c.status(t, repo, uuid, false).Header.Get("S3direct-Upload-Status"), indent(pe.object(t, pe.markerKey(uuid))))
				continue
			}
			c.wantBlob(t, repo, data)
		}
	})

	// A refresh's commit is queued and waited for in Go (commitWaiter): many
	// at once on one session, racing its finalize, each get fresh URLs or a
	// clear refusal once the session is over, never a 5xx or a hang; the
	// blob is linked once.
	t.Run("refreshes-while-finalized", func(t *testing.T) {
		repo := "race/refresh"
		const refreshers = 32
		for i := range rounds {
			data := psRand(1000 + int64(i))
			d := psDigest(data)
			q := url.Values{"digest": {d}, "size": {strconv.Itoa(len(data))}}
			uuid, _ := c.uploadSingle(t, repo, data, q)
			path := psUploadPath(repo, uuid) + "?presigned=true&" + q.Encode()
			res := make([]*psResp, refreshers)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for j := range refreshers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					res[j] = c.psAsync(http.MethodGet, path, nil)
				}()
			}
			var fin *psResp
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				fin = c.psAsync(http.MethodPut, psUploadPath(repo, uuid)+"?digest="+d, nil)
			}()
			close(start)
			wg.Wait()
			if fin.Status != http.StatusCreated {
				t.Errorf("round %d: finalize among %d refreshes: %v", i, refreshers, fin)
				continue
			}
			ok := 0
			for _, r := range res {
				switch {
				case r.Status == http.StatusOK:
					var p psPresign
					if err := json.Unmarshal(r.Body, &p); err != nil || p.URL == "" {
						t.Errorf("round %d: refresh answered 200 without a URL: %v", i, r)
					}
					ok++
				case r.Status == http.StatusBadRequest || r.Status == http.StatusConflict ||
					r.Status == http.StatusNotFound:
					if !bytes.Contains(r.Body, []byte("BLOB_UPLOAD")) {
						t.Errorf("round %d: refresh refused without an OCI upload error: %v", i, r)
					}
				default:
					t.Errorf("round %d: refresh during finalize: %v", i, r)
				}
			}
			t.Logf("round %d: %d of %d refreshes answered with URLs", i, ok, refreshers)
			c.wantBlob(t, repo, data)
			if r := c.presign(t, repo, uuid, q); r.Status == http.StatusOK {
				t.Errorf("round %d: refresh after the finalize: %v; want a refusal", i, r)
			}
		}
	})

	t.Run("finalize-and-cancel", func(t *testing.T) {
		repo := "race/cancel"
		for i := range rounds {
			data := psRand(psPartSize + int64(i))
			d := psDigest(data)
			uuid := c.uploadMultipart(t, repo, data, nil)
			fin, can := psRace(
				func() *psResp { return c.psAsync(http.MethodPut, psUploadPath(repo, uuid)+"?digest="+d, nil) },
				func() *psResp { return c.psAsync(http.MethodDelete, psUploadPath(repo, uuid), nil) })
			t.Logf("round %d: finalize %d, cancel %d", i, fin.Status, can.Status)
			switch {
			case fin.Status == http.StatusCreated && can.Status != http.StatusNoContent:
				c.wantBlob(t, repo, data)
			case can.Status == http.StatusNoContent && fin.Status != http.StatusCreated:
				c.wantNoBlob(t, repo, d, "cancel won the race")
			default:
				t.Errorf("round %d: finalize %v and cancel %v: want exactly one to succeed", i, fin, can)
				continue
			}
			// neither left the session stuck: it is over either way
			if r := c.status(t, repo, uuid, false); r.Status != http.StatusNotFound {
				t.Errorf("round %d: status after the race: %v; want 404 (session over)", i, r)
			}
			if fin.Status != http.StatusCreated {
				if r := c.finalize(t, repo, uuid, d); r.Status == http.StatusCreated || r.Status == http.StatusConflict {
					t.Errorf("round %d: finalize after the cancel won: %v; want 404/400 (cancelled)", i, r)
				}
			}
			pe.wantSessionGone(t, repo, uuid, "the race")
		}
	})
}

// psUploadID is the uploadId of a presigned part URL.
func psUploadID(t *testing.T, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	id := pu.Query().Get("uploadId")
	if id == "" {
		t.Fatalf("part URL without uploadId: %s", shortURL(u))
	}
	return id
}

// psTamper changes one hex digit of the URL's signature.
func psTamper(t *testing.T, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := pu.Query()
	sig := []byte(q.Get("X-Amz-Signature"))
	if len(sig) == 0 {
		t.Fatalf("URL without X-Amz-Signature")
	}
	if sig[0] == '0' {
		sig[0] = '1'
	} else {
		sig[0] = '0'
	}
	q.Set("X-Amz-Signature", string(sig))
	pu.RawQuery = q.Encode()
	return pu.String()
}

// -------------------------------------------------------------- quotas ----

func TestPresignQuota(t *testing.T) {
	t.Parallel()
	pe := psSetup(t)
	maxBlob, quota := mib(2), mib(3)
	reg := startRegistry(t, "presign-quota", pe.storage(
		fmt.Sprintf("maxblobsize: %d", maxBlob), fmt.Sprintf("repoquota: %d", quota)), regOptions{})
	c := newPsClient(reg)

	wantDenied := func(t *testing.T, r *psResp, quotaName string) {
		t.Helper()
		e := psWantError(t, r, http.StatusForbidden, "DENIED")
		if e.Code != "" && !strings.Contains(e.Message, quotaName) {
			t.Errorf("%v: the message does not name %s", r, quotaName)
		}
	}

	t.Run("maxblobsize", func(t *testing.T) {
		repo := "quota/big"
		uuid := c.open(t, repo)
		wantDenied(t, c.presign(t, repo, uuid, psQ("size", strconv.FormatInt(maxBlob+1, 10))), "maxblobsize")
		wantDenied(t, c.presign(t, repo, uuid, psQ("parts", "1", "size", strconv.FormatInt(maxBlob+1, 10))), "maxblobsize")
		// undeclared: the real size is checked at finalize
		data := psRand(maxBlob + 1)
		uuid, _ = c.uploadSingle(t, repo, data, nil)
		wantDenied(t, c.finalize(t, repo, uuid, psDigest(data)), "maxblobsize")
		c.wantNoBlob(t, repo, psDigest(data), "over maxblobsize")
		if k := pe.keys(t, pe.tempKey(uuid)); len(k) != 0 {
			t.Errorf("over maxblobsize: temp object left: %v", k)
		}
		// multipart, size declared under the limit, more bytes uploaded
		uuid = c.open(t, repo)
		p := c.mustPresign(t, repo, uuid, psQ("parts", "1", "size", "1000"))
		psPutOK(t, p.Parts[0].URL, p.Headers, data)
		r := c.finalize(t, repo, uuid, psDigest(data))
		if r.Status != http.StatusForbidden && r.Status != http.StatusBadRequest {
			t.Errorf("multipart with more bytes than declared and over maxblobsize: %v; want 403 or 400", r)
		}
		c.wantNoBlob(t, repo, psDigest(data), "over maxblobsize (declared less)")
		if u := pe.uploads(t, pe.tempKey(uuid)); len(u) != 0 {
			t.Errorf("multipart upload left: %v", u)
		}
		// at the limit: fine
		ok := psRand(maxBlob)
		uuid, _ = c.uploadSingle(t, repo, ok, psQ("size", strconv.Itoa(len(ok))))
		c.mustFinalize(t, repo, uuid, psDigest(ok))
		c.wantBlob(t, repo, ok)
	})

	t.Run("repoquota", func(t *testing.T) {
		repo := "quota/repo"
		// 1.5 MiB through the stock API counts too
		c.stockPush(t, repo, psRand(mib(1.5)))
		uuid := c.open(t, repo)
		wantDenied(t, c.presign(t, repo, uuid, psQ("size", strconv.FormatInt(mib(1.6), 10))), "repoquota")
		data := psRand(mib(1.6))
		uuid, _ = c.uploadSingle(t, repo, data, nil)
		wantDenied(t, c.finalize(t, repo, uuid, psDigest(data)), "repoquota")
		c.wantNoBlob(t, repo, psDigest(data), "over repoquota")
		// with the digest declared (no size: the bytes go to a temp key)
		uuid, p := c.uploadSingle(t, repo, data, psQ("digest", psDigest(data)))
		if strings.Contains(p.URL, "/blobs/sha256/") {
			t.Errorf("with a quota and no declared size the URL must not be the blob's key")
		}
		wantDenied(t, c.finalize(t, repo, uuid, psDigest(data)), "repoquota")
		c.wantNoBlob(t, repo, psDigest(data), "over repoquota (declared digest)")
		// 1 MiB more fits (2.5 of 3 MiB) ...
		fits := psRand(mib(1))
		uuid, _ = c.uploadSingle(t, repo, fits, nil)
		c.mustFinalize(t, repo, uuid, psDigest(fits))
		c.wantBlob(t, repo, fits)
		// ... then 0.6 MiB does not
		over := psRand(mib(0.6))
		uuid = c.open(t, repo)
		wantDenied(t, c.presign(t, repo, uuid, psQ("size", strconv.Itoa(len(over)))), "repoquota")
		// another repository has its own quota
		other := psRand(mib(1.6))
		uuid, _ = c.uploadSingle(t, "quota/other", other, nil)
		c.mustFinalize(t, "quota/other", uuid, psDigest(other))
	})
}

// -------------------------------------------------------------- expiry ----

func TestPresignExpiry(t *testing.T) {
	t.Parallel()
	pe := psSetup(t)

	t.Run("url", func(t *testing.T) {
		pe := pe.fresh()
		reg := startRegistry(t, "presign-url-expiry", pe.storage("presignexpiry: 2s"), regOptions{})
		c := newPsClient(reg)
		repo := "exp/url"
		data := psRand(3000)
		uuid := c.open(t, repo)
		p := c.mustPresign(t, repo, uuid, nil)
		mp := c.mustPresign(t, repo, c.open(t, repo), psQ("parts", "1"))
		if d := time.Until(p.ExpiresAt); d > 3*time.Second {
			t.Errorf("presignexpiry 2s: expires_at %v is %v away", p.ExpiresAt, d)
		}
		psWait(t, p.ExpiresAt.Add(3*time.Second), 15*time.Second)
		psWantS3Refused(t, psPut(t, p.URL, p.Headers, data), "an expired single PUT URL", http.StatusForbidden)
		psWantS3Refused(t, psPut(t, mp.Parts[0].URL, mp.Headers, data), "an expired part URL", http.StatusForbidden)
		// fresh URLs for the same session
		p = c.mustPresign(t, repo, uuid, nil)
		psPutOK(t, p.URL, p.Headers, data)
		c.mustFinalize(t, repo, uuid, psDigest(data))
		c.wantBlob(t, repo, data)
	})

	t.Run("session", func(t *testing.T) {
		pe := pe.fresh()
		reg := startRegistry(t, "presign-session-expiry", pe.storage("sessionttl: 5s"), regOptions{})
		c := newPsClient(reg)
		repo := "exp/session"
		data := psRand(3000)
		uuid := c.open(t, repo)
		p := c.mustPresign(t, repo, uuid, nil)
		if d := time.Until(p.SessionExpiresAt); d > 6*time.Second {
			t.Errorf("sessionttl 5s: session_expires_at %v is %v away", p.SessionExpiresAt, d)
		}
		psPutOK(t, p.URL, p.Headers, data)
		muuid := c.open(t, repo)
		mp := c.mustPresign(t, repo, muuid, psQ("parts", "2"))
		psPutOK(t, mp.Parts[0].URL, nil, psRand(psPartSize))
		end := p.SessionExpiresAt // the later of the two sessions' ends
		if mp.SessionExpiresAt.After(end) {
			end = mp.SessionExpiresAt
		}
		psWait(t, end.Add(2*time.Second), 15*time.Second)

		for _, u := range []string{uuid, muuid} {
			e := psWantError(t, c.presign(t, repo, u, nil), http.StatusGone, "BLOB_UPLOAD_INVALID")
			if e.Code != "" && !strings.Contains(e.Message, "expired") {
				t.Errorf("presign of an expired session: message %q does not say expired", e.Message)
			}
			psWantError(t, c.status(t, repo, u, false), http.StatusGone, "BLOB_UPLOAD_INVALID")
		}
		psWantError(t, c.finalize(t, repo, uuid, psDigest(data)), http.StatusGone, "BLOB_UPLOAD_INVALID")
		c.wantNoBlob(t, repo, psDigest(data), "finalize of an expired session")
		psWantS3Refused(t, psPut(t, p.URL, p.Headers, data), "a URL of an expired session", http.StatusForbidden)
		psWantS3Refused(t, psPut(t, mp.Parts[1].URL, nil, data), "a part URL of an expired session", http.StatusForbidden)
	})

	t.Run("sweep", func(t *testing.T) {
		pe := pe.fresh()
		reg := startRegistry(t, "presign-sweep", pe.storage("sessionttl: 5s", "sweepinterval: 1s"), regOptions{})
		c := newPsClient(reg)
		repo := "exp/sweep"
		single, _ := c.uploadSingle(t, repo, psRand(5000), nil)
		multi := c.open(t, repo)
		mp := c.mustPresign(t, repo, multi, psQ("parts", "2"))
		psPutOK(t, mp.Parts[0].URL, nil, psRand(psPartSize))
		pending := c.open(t, repo)
		pp := c.mustPresign(t, repo, pending, nil)
		uploadsPrefix := pe.root + "/_s3direct/uploads/"
		if k, u := pe.keys(t, uploadsPrefix), pe.uploads(t, uploadsPrefix); len(k) != 1 || len(u) != 1 {
			t.Fatalf("before expiry: temp objects %v, multipart uploads %v; want one of each", k, u)
		}
		psWait(t, pp.SessionExpiresAt, 10*time.Second)
		deadline := time.Now().Add(60 * time.Second)
		var left []string
		for {
			left = nil
			for _, u := range []string{single, multi, pending} {
				left = append(left, pe.sessionLeftovers(t, repo, u)...)
			}
			for _, u := range pe.uploads(t, pe.root+"/") {
				left = append(left, "multipart upload "+u)
			}
			for _, k := range pe.keys(t, pe.root+"/_s3direct/") {
				// the tails marker of the driver is not a session's
				if !strings.Contains(k, "/_s3direct/uploads/") && !strings.Contains(k, "/_s3direct/sessions/") {
					continue
				}
				left = append(left, "object "+k)
			}
			if len(left) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if len(left) > 0 {
			slices.Sort(left)
			t.Fatalf("60 s after the sessions expired (sessionttl 5s, sweepinterval 1s), still in S3:\n%s",
				indent(strings.Join(slices.Compact(left), "\n")))
		}
		for _, u := range []string{single, multi, pending} {
			r := c.status(t, repo, u, false)
			if r.Status != http.StatusGone && r.Status != http.StatusNotFound {
				t.Errorf("status of a swept session: %v; want 410 or 404", r)
			}
			if r := c.presign(t, repo, u, nil); r.Status != http.StatusGone && r.Status != http.StatusNotFound {
				t.Errorf("presign of a swept session: %v; want 410 or 404", r)
			}
		}
	})
}

// psWait sleeps until when, failing when that is more than max away.
func psWait(t *testing.T, when time.Time, max time.Duration) {
	t.Helper()
	d := time.Until(when)
	if d > max {
		t.Fatalf("would wait %v (until %v), more than %v", d, when, max)
	}
	if d > 0 {
		time.Sleep(d)
	}
}

// ------------------------------------------------- restart, two processes ----

func TestPresignRestart(t *testing.T) {
	t.Parallel()
	pe := psSetup(t)
	reg := startRegistry(t, "presign-restart", pe.storage(), regOptions{})
	c := newPsClient(reg)
	repo := "restart/blob"
	data := psRand(2*psPartSize + 12345)
	d := psDigest(data)
	parts := psSplit(data, psPartSize)
	uuid := c.open(t, repo)
	p := c.mustPresign(t, repo, uuid, psQ("parts", "1", "size", strconv.Itoa(len(data)), "digest", d))
	psPutOK(t, p.Parts[0].URL, p.Headers, parts[0])
	c.wantStatus(t, repo, uuid, psPartSize)

	reg = restartRegistry(t, reg) // SIGKILL, same session index and bucket
	c = newPsClient(reg)
	st := c.wantStatus(t, repo, uuid, psPartSize)
	if len(st.Parts) != 1 || st.Parts[0].Number != 1 || st.Parts[0].Size != psPartSize {
		t.Fatalf("status after the restart: parts %+v, want part 1 of %d bytes", st.Parts, psPartSize)
	}
	p2 := c.mustPresign(t, repo, uuid, psQ("parts", "2", "first_part", "2"))
	if len(p2.Parts) != 2 || p2.Parts[0].Number != 2 || psUploadID(t, p2.Parts[0].URL) != psUploadID(t, p.Parts[0].URL) {
		t.Fatalf("presign after the restart: parts %+v; want 2 and 3 of the same multipart upload", p2.Parts)
	}
	for i, b := range parts[1:] {
		psPutOK(t, p2.Parts[i].URL, p2.Headers, b)
	}
	c.wantStatus(t, repo, uuid, int64(len(data)))
	c.mustFinalize(t, repo, uuid, d)
	c.wantBlob(t, repo, data)
	pe.wantSessionGone(t, repo, uuid, "finalize after a restart")

	// a session opened, then the registry killed before any byte
	uuid = c.open(t, repo)
	sp := c.mustPresign(t, repo, uuid, nil)
	reg = restartRegistry(t, reg)
	c = newPsClient(reg)
	small := psRand(999)
	psPutOK(t, sp.URL, sp.Headers, small)
	c.wantStatus(t, repo, uuid, int64(len(small)))
	c.mustFinalize(t, repo, uuid, psDigest(small))
	c.wantBlob(t, repo, small)
}

func TestPresignMultiProcess(t *testing.T) {
	t.Parallel()
	pe := psSetup(t)
	secret := randHex(32)
	a := startRegistry(t, "presign-A", pe.storage(), regOptions{Secret: secret})
	b := startRegistry(t, "presign-B", pe.storage(), regOptions{Secret: secret})
	ca, cb := newPsClient(a), newPsClient(b)

	t.Run("single", func(t *testing.T) {
		repo := "mp/single"
		data := psRand(mib(0.5))
		uuid, _ := ca.uploadSingle(t, repo, data, nil)
		cb.wantStatus(t, repo, uuid, int64(len(data)))
		cb.mustFinalize(t, repo, uuid, psDigest(data))
		ca.wantBlob(t, repo, data)
		cb.wantBlob(t, repo, data)
		pe.wantSessionGone(t, repo, uuid, "finalize on the other process")
	})

	// A process in read-only maintenance refuses the presigned writes as
	// the stock app refuses upload writes, and still serves the reads.
	t.Run("read-only-process", func(t *testing.T) {
		ro := newPsClient(startRegistry(t, "presign-RO", pe.storage(), regOptions{Secret: secret, ReadOnly: true}))
		repo := "mp/readonly"
		data := psRand(4096)
		uuid, _ := ca.uploadSingle(t, repo, data, nil)
		for _, r := range []*psResp{
			ro.presign(t, repo, uuid, nil),
			ro.finalize(t, repo, uuid, psDigest(data)),
			ro.cancel(t, repo, uuid),
			ro.do(t, http.MethodPatch, psUploadPath(repo, uuid), nil, []byte("x")),
		} {
			if r.Status != http.StatusMethodNotAllowed || !bytes.Contains(r.Body, []byte("UNSUPPORTED")) ||
				r.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("read-only registry: %v; want 405 UNSUPPORTED, Allow: GET, HEAD", r)
			}
		}
		ro.wantStatus(t, repo, uuid, int64(len(data)))
		ca.mustFinalize(t, repo, uuid, psDigest(data))
		ro.wantBlob(t, repo, data)
	})

	t.Run("multipart-parts-from-both", func(t *testing.T) {
		repo := "mp/multi"
		data := psRand(psPartSize + 2222)
		parts := psSplit(data, psPartSize)
		uuid := ca.open(t, repo)
		pa := ca.mustPresign(t, repo, uuid, psQ("parts", "1"))
		psPutOK(t, pa.Parts[0].URL, nil, parts[0])
		pb := cb.mustPresign(t, repo, uuid, psQ("parts", "1", "first_part", "2"))
		if psUploadID(t, pa.Parts[0].URL) != psUploadID(t, pb.Parts[0].URL) {
			t.Fatalf("the two processes presigned different multipart uploads for one session")
		}
		psPutOK(t, pb.Parts[0].URL, nil, parts[1])
		st := ca.wantStatus(t, repo, uuid, int64(len(data)))
		if len(st.Parts) != 2 {
			t.Errorf("status on A: %+v", st)
		}
		cb.wantStatus(t, repo, uuid, int64(len(data)))
		ca.mustFinalize(t, repo, uuid, psDigest(data))
		cb.wantBlob(t, repo, data)
	})

	t.Run("cancel-on-the-other", func(t *testing.T) {
		repo := "mp/cancel"
		for _, multipart := range []bool{true, false} {
			uuid := ca.open(t, repo)
			q := psQ()
			if multipart {
				q.Set("parts", "1")
			}
			p := ca.mustPresign(t, repo, uuid, q)
			u := p.URL
			if multipart {
				u = p.Parts[0].URL
			}
			data := psRand(4096)
			psPutOK(t, u, p.Headers, data)
			ca.wantStatus(t, repo, uuid, 4096)
			if r := cb.cancel(t, repo, uuid); r.Status != http.StatusNoContent {
				t.Fatalf("cancel on B of a session of A: %v", r)
			}
			pe.wantSessionGone(t, repo, uuid, "cancel on the other process")
			if r := ca.status(t, repo, uuid, false); r.Status != http.StatusNotFound {
				t.Errorf("multipart %v: status on A of a session cancelled on B: %v; Range %q; want 404",
					multipart, r, r.Header.Get("Range"))
			}
			r := ca.finalize(t, repo, uuid, psDigest(data))
			if r.Status == http.StatusCreated {
				t.Errorf("multipart %v: finalize on A of a session cancelled on B: %v", multipart, r)
			}
			ca.wantNoBlob(t, repo, psDigest(data), "finalize after a cancel elsewhere")
		}
	})

	t.Run("concurrent-finalize-on-both", func(t *testing.T) {
		repo := "mp/race"
		data := psRand(psPartSize + 5)
		d := psDigest(data)
		uuid := ca.uploadMultipart(t, repo, data, nil)
		var wg sync.WaitGroup
		results := make([]*psResp, 4)
		start := make(chan struct{})
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i] = []*psClient{ca, cb}[i%2].psAsync(http.MethodPut, psUploadPath(repo, uuid)+"?digest="+d, nil)
			}()
		}
		close(start)
		wg.Wait()
		created := 0
		for _, r := range results {
			t.Logf("%v", r)
			switch r.Status {
			case http.StatusCreated:
				created++
			case http.StatusConflict, http.StatusNotFound:
			default:
				t.Errorf("concurrent finalize on two processes: %v; want 201, 409 or 404", r)
			}
		}
		if created == 0 {
			t.Fatalf("no finalize succeeded")
		}
		ca.wantBlob(t, repo, data)
		cb.wantBlob(t, repo, data)
		// the session is over everywhere, nothing of it left, a retry on
		// either process gets the result or "unknown"
		for _, c := range []*psClient{ca, cb} {
			if r := c.status(t, repo, uuid, false); r.Status != http.StatusNotFound {
				t.Errorf("status on %s after the race: %v; S3direct-Upload-Status %q; want 404",
					c.name, r, r.Header.Get("S3direct-Upload-Status"))
			}
			if r := c.finalize(t, repo, uuid, d); r.Status != http.StatusCreated && r.Status != http.StatusNotFound {
				t.Errorf("finalize retried on %s after the race: %v; want 201 or 404", c.name, r)
			}
		}
		pe.wantSessionGone(t, repo, uuid, "concurrent finalizes on two processes")
	})
}

// ------------------------------------------------------- stock purger ----

// TestPresignStockUploadLookups pushes a blob the stock way (POST, chunked
// PATCHes, a status GET, the finalizing PUT) and counts the session
// lookups the middleware makes in S3: only while the upload holds no data
// (its first PATCH) may it look for a presigned session; afterwards the
// registry's signed _state (offset > 0) shows a stock upload for good.
func TestPresignStockUploadLookups(t *testing.T) {
	t.Parallel()
	pe := pushRegistry(t, "stock-lookups", "")
	c := newPsClient(pe.reg)
	repo := "stock/lookups"
	data := psRand(3 * 1024 * 1024)
	r := c.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
	if r.Status != http.StatusAccepted {
		t.Fatalf("open an upload: %v", r)
	}
	loc := r.Header.Get("Location")
	pe.tap.sessionLookups()
	const chunk = 1024 * 1024
	for off := 0; off < len(data); off += chunk {
		h := http.Header{}
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Range", fmt.Sprintf("%d-%d", off, off+chunk-1))
		r = c.do(t, http.MethodPatch, loc, h, data[off:off+chunk])
		if r.Status != http.StatusAccepted {
			t.Fatalf("PATCH at %d: %v", off, r)
		}
		loc = r.Header.Get("Location")
	}
	if r = c.do(t, http.MethodGet, loc, nil, nil); r.Status != http.StatusNoContent ||
		r.Header.Get("Range") != fmt.Sprintf("0-%d", len(data)-1) {
		t.Fatalf("stock status: %v, Range %q", r, r.Header.Get("Range"))
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	if r = c.do(t, http.MethodPut, loc+sep+"digest="+psDigest(data), nil, nil); r.Status != http.StatusCreated {
		t.Fatalf("stock finalize: %v", r)
	}
	if n := pe.tap.sessionLookups(); n != 1 {
		t.Errorf("a stock upload of 3 PATCHes, a status and a finalize made %d session-marker GETs in S3; want 1 (its first PATCH)", n)
	}
	c.wantBlob(t, repo, data)
}

// TestPresignStockPurger runs distribution's upload purger (the function
// storage.maintenance.uploadpurging calls, through the stock s3 driver on the
// same bucket) over open presigned sessions: they must still finalize.
func TestPresignStockPurger(t *testing.T) {
	t.Parallel()
	pe := psSetup(t)
	reg := startRegistry(t, "presign-purge", pe.storage(), regOptions{})
	c := newPsClient(reg)
	repo := "purge/blob"
	single := psRand(mib(0.3))
	suuid, _ := c.uploadSingle(t, repo, single, nil)
	multi := psRand(psPartSize + 77)
	parts := psSplit(multi, psPartSize)
	muuid := c.open(t, repo)
	mp := c.mustPresign(t, repo, muuid, psQ("parts", "1"))
	psPutOK(t, mp.Parts[0].URL, nil, parts[0])
	pending := c.open(t, repo)
	c.mustPresign(t, repo, pending, nil)

	drv, err := s3aws.FromParameters(context.Background(), map[string]any{
		"accesskey": pe.e.AccessKey, "secretkey": pe.e.SecretKey, "region": pe.e.Region,
		"regionendpoint": pe.e.Endpoint, "bucket": pe.bucket, "rootdirectory": "/" + pe.root,
		"forcepathstyle": true, "secure": strings.HasPrefix(pe.e.Endpoint, "https:"),
	})
	if err != nil {
		t.Fatalf("stock s3 driver on the test bucket: %v", err)
	}
	deleted, errs := storage.PurgeUploads(context.Background(), drv, time.Now().Add(time.Hour), true)
	t.Logf("PurgeUploads: deleted %v, errors %v", deleted, errs)
	if len(errs) > 0 {
		t.Errorf("PurgeUploads errors: %v", errs)
	}
	for _, u := range []string{suuid, muuid, pending} {
		if !slices.ContainsFunc(deleted, func(p string) bool { return strings.Contains(p, u) }) {
			t.Errorf("PurgeUploads did not purge the upload directory of %s (deleted %v): the test proves nothing", u, deleted)
		}
		if k := pe.keys(t, pe.uploadDir(repo, u)); len(k) != 0 {
			t.Errorf("after PurgeUploads the upload directory of %s is still there: %v", u, k)
		}
	}
	announce(t, "presign: the stock upload purger removed the upload directories of %d open presigned sessions", len(deleted))

	c.wantStatus(t, repo, suuid, int64(len(single)))
	c.mustFinalize(t, repo, suuid, psDigest(single))
	c.wantBlob(t, repo, single)

	c.wantStatus(t, repo, muuid, psPartSize)
	mp2 := c.mustPresign(t, repo, muuid, psQ("parts", "1", "first_part", "2"))
	psPutOK(t, mp2.Parts[0].URL, nil, parts[1])
	c.mustFinalize(t, repo, muuid, psDigest(multi))
	c.wantBlob(t, repo, multi)

	// presigned after the purge: the session was opened before it
	data := psRand(1234)
	pp := c.mustPresign(t, repo, pending, nil)
	psPutOK(t, pp.URL, pp.Headers, data)
	c.mustFinalize(t, repo, pending, psDigest(data))
	c.wantBlob(t, repo, data)
	for _, u := range []string{suuid, muuid, pending} {
		pe.wantSessionGone(t, repo, u, "finalize after the purge")
	}
}

// ----------------------------------------------------------------- auth ----

// psAuthFlow runs the main flow with authz, and checks that the
// unauthenticated calls get the stock 401.
func psAuthFlow(t *testing.T, pe *psEnv, reg *registry, authz, repo string) {
	t.Helper()
	anon := newPsClient(reg)
	c := anon.with(authz)

	// the stock challenge, for comparison
	stock := anon.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
	if stock.Status != http.StatusUnauthorized || stock.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("unauthenticated stock POST: %v; WWW-Authenticate %q; want 401 with a challenge", stock, stock.Header.Get("WWW-Authenticate"))
	}
	challenge := psNormChallenge(stock.Header.Get("WWW-Authenticate"))

	data := psRand(psPartSize + 3)
	parts := psSplit(data, psPartSize)
	uuid := c.open(t, repo)
	p := c.mustPresign(t, repo, uuid, psQ("parts", "2"))

	wantAnon := func(r *psResp, what string) {
		t.Helper()
		psWantError(t, r, http.StatusUnauthorized, "UNAUTHORIZED")
		if got := psNormChallenge(r.Header.Get("WWW-Authenticate")); r.Status == http.StatusUnauthorized && got != challenge &&
			!(what == "status" && got == strings.Replace(challenge, "pull,push", "pull", 1)) &&
			!(what == "cancel" && got == strings.Replace(challenge, "pull,push", "delete", 1)) {
			t.Errorf("unauthenticated %s: WWW-Authenticate %q, the stock upload POST gives %q", what, got, challenge)
		}
	}
	wantAnon(anon.presign(t, repo, uuid, psQ("parts", "2")), "presign")
	wantAnon(anon.status(t, repo, uuid, false), "status")
	wantAnon(anon.finalize(t, repo, uuid, psDigest(data)), "finalize")
	wantAnon(anon.cancel(t, repo, uuid), "cancel")
	wantAnon(anon.do(t, http.MethodPatch, psUploadPath(repo, uuid), nil, []byte("x")), "PATCH")

	for i, b := range parts {
		psPutOK(t, p.Parts[i].URL, nil, b)
	}
	c.wantStatus(t, repo, uuid, int64(len(data)))
	c.mustFinalize(t, repo, uuid, psDigest(data))
	c.wantBlob(t, repo, data)
	pe.wantSessionGone(t, repo, uuid, "finalize with auth")

	// cancel with credentials
	uuid = c.open(t, repo)
	c.mustPresign(t, repo, uuid, nil)
	if r := c.cancel(t, repo, uuid); r.Status != http.StatusNoContent {
		t.Errorf("cancel with credentials: %v", r)
	}
	// a stock upload with credentials still works through the middleware
	stock2 := psRand(3333)
	c.stockPush(t, repo, stock2)
	c.wantBlob(t, repo, stock2)
}

// psNormChallenge sorts the actions of a Bearer scope (the token access
// controller lists them in map order).
func psNormChallenge(h string) string {
	return regexp.MustCompile(`scope="[^"]*"`).ReplaceAllStringFunc(h, func(s string) string {
		inner := strings.TrimSuffix(strings.TrimPrefix(s, `scope="`), `"`)
		var scopes []string
		for _, sc := range strings.Fields(inner) {
			i := strings.LastIndex(sc, ":")
			if i < 0 {
				scopes = append(scopes, sc)
				continue
			}
			acts := strings.Split(sc[i+1:], ",")
			sort.Strings(acts)
			scopes = append(scopes, sc[:i+1]+strings.Join(acts, ","))
		}
		sort.Strings(scopes)
		return `scope="` + strings.Join(scopes, " ") + `"`
	})
}

func TestPresignAuthHtpasswd(t *testing.T) {
	t.Parallel()
	pe := psSetup(t)
	pass := randHex(8)
	reg := startRegistry(t, "presign-htpasswd", pe.storage(), regOptions{Auth: htpasswdAuth(t, "alice", pass)})
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+pass))
	psAuthFlow(t, pe, reg, basic, "auth/basic")

	c := newPsClient(reg).with(basic)
	uuid := c.open(t, "auth/basic")
	bad := newPsClient(reg).with("Basic " + base64.StdEncoding.EncodeToString([]byte("alice:wrong")))
	r := bad.presign(t, "auth/basic", uuid, nil)
	psWantError(t, r, http.StatusUnauthorized, "UNAUTHORIZED")
	if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), `Basic realm="`+htpasswdRealm+`"`) {
		t.Errorf("presign with a wrong password: WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
	}
	c.mustPresign(t, "auth/basic", uuid, nil)
	for _, r := range []*psResp{bad.status(t, "auth/basic", uuid, false), bad.finalize(t, "auth/basic", uuid, psDigest(nil)),
		bad.cancel(t, "auth/basic", uuid)} {
		psWantError(t, r, http.StatusUnauthorized, "UNAUTHORIZED")
	}
	c.wantStatus(t, "auth/basic", uuid, 0)
}

// psIssuer mints tokens for distribution's token access controller.
type psIssuer struct {
	key              *ecdsa.PrivateKey
	kid              string
	issuer, service  string
	realm, certsPath string
}

func newPsIssuer(t *testing.T) *psIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "s3direct test token issuer"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	is := &psIssuer{key: key, kid: token.GetJWKThumbprint(&key.PublicKey), issuer: "s3direct-test-issuer",
		service: "s3direct-test", realm: "http://127.0.0.1:9/token",
		certsPath: filepath.Join(t.TempDir(), "token-ca.pem")}
	if err := os.WriteFile(is.certsPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return is
}

func (is *psIssuer) authConfig() string {
	return fmt.Sprintf("  token:\n    realm: %s\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
		is.realm, is.service, is.issuer, is.certsPath)
}

// mint returns "Bearer <jwt>" granting actions on repo.
func (is *psIssuer) mint(t *testing.T, repo string, actions ...string) string {
	t.Helper()
	now := time.Now()
	claims := token.ClaimSet{
		Issuer: is.issuer, Subject: "alice", Audience: token.AudienceList{is.service},
		Expiration: now.Add(time.Hour).Unix(), NotBefore: now.Add(-time.Minute).Unix(), IssuedAt: now.Unix(),
		JWTID:  randHex(8),
		Access: []*token.ResourceActions{{Type: "repository", Name: repo, Actions: actions}},
	}
	hdr, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT", "kid": is.kid})
	body, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	in := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString(body)
	sum := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, is.key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return "Bearer " + in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestPresignAuthToken(t *testing.T) {
	t.Parallel()
	pe := psSetup(t)
	is := newPsIssuer(t)
	reg := startRegistry(t, "presign-token", pe.storage(), regOptions{Auth: is.authConfig()})
	repo := "auth/token"
	// the stock app asks for delete to cancel an upload
	full := is.mint(t, repo, "pull", "push", "delete")
	psAuthFlow(t, pe, reg, full, repo)

	c := newPsClient(reg).with(full)
	uuid := c.open(t, repo)
	for what, authz := range map[string]string{
		"a pull-only token":         is.mint(t, repo, "pull"),
		"a token of another repo":   is.mint(t, "auth/other", "pull", "push"),
		"a token of another issuer": (&psIssuer{key: is.key, kid: is.kid, issuer: "evil", service: is.service}).mint(t, repo, "pull", "push"),
		"a token with a broken sig": full[:len(full)-4] + "AAAA",
		"garbage":                   "Bearer not.a.token",
	} {
		other := newPsClient(reg).with(authz)
		r := other.presign(t, repo, uuid, nil)
		if r.Status != http.StatusUnauthorized && r.Status != http.StatusForbidden {
			t.Errorf("presign with %s: %v; want 401 or 403", what, r)
		}
		if r.Status == http.StatusUnauthorized && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer ") {
			t.Errorf("presign with %s: WWW-Authenticate %q", what, r.Header.Get("WWW-Authenticate"))
		}
		if what == "a pull-only token" && !strings.Contains(r.Header.Get("WWW-Authenticate"), "insufficient_scope") {
			t.Errorf("presign with a pull-only token: WWW-Authenticate %q, want error=\"insufficient_scope\"", r.Header.Get("WWW-Authenticate"))
		}
	}
	// the session was not opened by the refused calls
	c.mustPresign(t, repo, uuid, nil)
	pull := newPsClient(reg).with(is.mint(t, repo, "pull"))
	for _, r := range []*psResp{pull.finalize(t, repo, uuid, psDigest(nil)), pull.cancel(t, repo, uuid),
		pull.do(t, http.MethodPatch, psUploadPath(repo, uuid), nil, []byte("x"))} {
		if r.Status != http.StatusUnauthorized && r.Status != http.StatusForbidden {
			t.Errorf("pull-only token on a presigned session: %v; want 401 or 403", r)
		}
	}
	c.wantStatus(t, repo, uuid, 0)

	// as the stock app: status needs pull only, cancel needs delete (push
	// is not enough)
	if r := pull.status(t, repo, uuid, false); r.Status != http.StatusNoContent {
		t.Errorf("status with a pull-only token: %v; want 204", r)
	}
	push := newPsClient(reg).with(is.mint(t, repo, "pull", "push"))
	if r := push.cancel(t, repo, uuid); r.Status != http.StatusUnauthorized && r.Status != http.StatusForbidden {
		t.Errorf("cancel with a pull,push token: %v; want 401 or 403", r)
	}
	c.wantStatus(t, repo, uuid, 0)
	if r := c.cancel(t, repo, uuid); r.Status != http.StatusNoContent {
		t.Errorf("cancel with a delete token: %v; want 204", r)
	}
}
