//go:build linux

package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMultiProcess runs two build/registry processes on the same bucket and
// rootdirectory (and the same http.secret, which signs the upload state)
// behind a round-robin proxy: the requests of one upload alternate between
// them. What is pushed through the proxy must pull back identical through
// the proxy and from each process directly.
func TestMultiProcess(t *testing.T) {
	reproHint(t)
	e := needS3(t)
	for _, tool := range []string{"crane", "regctl"} {
		toolBin(t, tool)
	}
	bucket := makeBucket(t, e)
	root, secret := "/multi-"+randHex(4), randHex(32)
	a := startRegistry(t, "s3direct-A", storageS3direct(e, bucket, root), regOptions{Secret: secret})
	b := startRegistry(t, "s3direct-B", storageS3direct(e, bucket, root), regOptions{Secret: secret})
	proxy := startProxy(t, a, b)
	env := clientEnv(t)
	hosts := []string{proxy.Addr, a.Addr, b.Addr}
	// Chunks of 1 MiB + 4 KiB + 1, never aligned with the driver's parts.
	for _, h := range hosts {
		regctlSetChunked(t, env, h, mib(1)+4097)
	}
	regctl := toolBin(t, "regctl")

	t.Run("regctl/chunked-image", func(t *testing.T) {
		im := writeImage(t, t.TempDir(), "v1", mib(11)+777, mib(6), 4096)
		before := proxy.Count("s3direct-A", "PATCH") + proxy.Count("s3direct-B", "PATCH")
		mustRun(t, clientTimeout, "", env, nil, regctl, "image", "copy",
			"ocidir://"+im.Dir+":"+im.Tag, proxy.Addr+"/multi/regctl:v1")
		patches := proxy.Count("s3direct-A", "PATCH") + proxy.Count("s3direct-B", "PATCH") - before
		t.Logf("regctl image copy through the proxy: %d PATCH requests; per backend: %s", patches, proxy.Counts())
		if patches < 17 {
			t.Errorf("regctl sent %d PATCH requests through the proxy, want >= 17 (1 MiB chunks)", patches)
		}
		for _, h := range hosts {
			regctlCheck(t, env, im, h+"/multi/regctl:v1")
			craneCheck(t, env, im, h+"/multi/regctl:v1")
		}
	})

	t.Run("regctl/chunked-blob", func(t *testing.T) {
		blob := filepath.Join(t.TempDir(), "blob")
		size := mib(21) + 1 // over two 10 MiB parts
		d := writeRandomFile(t, blob, size)
		f, err := os.Open(blob)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		out := mustRun(t, clientTimeout, "", env, f, regctl, "blob", "put", "--digest", d, proxy.Addr+"/multi/blob")
		if got := strings.TrimSpace(out); got != d {
			t.Errorf("regctl blob put printed %q, want %s", got, d)
		}
		for _, h := range hosts {
			regctlBlobCheck(t, env, h+"/multi/blob", d, size)
		}
	})

	// crane: POST, one streamed PATCH, PUT per blob, alternating.
	t.Run("crane", func(t *testing.T) {
		im := writeImage(t, t.TempDir(), "v1", mib(20), mib(3)+5, 300)
		cranePushAndCheck(t, env, im, proxy.Addr, "multi/crane", a.Addr, b.Addr)
	})

	// Several clients push the same image to different repositories at
	// once: the same blobs are committed concurrently by both processes.
	t.Run("crane/concurrent-same-blobs", func(t *testing.T) {
		im := writeImage(t, t.TempDir(), "v1", mib(8), mib(2)+9, 100)
		crane := toolBin(t, "crane")
		const n = 4
		results := make([]cmdResult, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = runCmd(t.Context(), clientTimeout, "", env, nil, crane, "push", im.Dir,
					fmt.Sprintf("%s/multi/same-%d:v1", proxy.Addr, i))
			}()
		}
		wg.Wait()
		for _, r := range results {
			t.Logf("ran: %s", r.Line)
			if r.Err != nil {
				t.Errorf("concurrent push failed: %v\n  command: %s\n  stderr:\n%s", r.Err, r.Line, indent(clip(r.Stderr, 3000)))
			}
		}
		if t.Failed() {
			t.FailNow()
		}
		for i := range n {
			for _, h := range []string{a.Addr, b.Addr} {
				craneCheck(t, env, im, fmt.Sprintf("%s/multi/same-%d:v1", h, i))
			}
		}
	})

	// The upload protocol by hand, each request sent to a chosen process:
	// upload status, a stale state, chunks across the 5 and 10 MiB part
	// sizes, the final chunk with the PUT, and a cancel.
	t.Run("raw/upload-across-processes", func(t *testing.T) {
		rawUploadAcrossProcesses(t, a, b)
	})
	t.Run("raw/cancel-across-processes", func(t *testing.T) {
		rawCancelAcrossProcesses(t, a, b)
	})

	for _, r := range []*registry{a, b} {
		if n := proxy.Count(r.Name, "PATCH"); n == 0 {
			t.Errorf("registry %s received no PATCH through the proxy: %s", r.Name, proxy.Counts())
		}
	}
	announce(t, "multi-process through the proxy: %s", proxy.Counts())
}

// upload is one blob upload driven by hand.
type upload struct {
	t        *testing.T
	client   *http.Client
	repo     string
	location string // the last Location (path and _state)
}

// send makes a request to reg for the upload's current location (or to
// path when it is not empty) and returns the response with its body read.
func (u *upload) send(reg *registry, method, path string, header http.Header, body []byte) (*http.Response, string) {
	u.t.Helper()
	if path == "" {
		path = u.location
	}
	req, err := http.NewRequest(method, reg.URL()+path, bytes.NewReader(body))
	if err != nil {
		u.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body == nil {
		req.Body = nil
		req.ContentLength = 0
	}
	resp, err := u.client.Do(req)
	if err != nil {
		u.t.Fatalf("%s %s%s: %v", method, reg.URL(), path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	u.t.Logf("%s %s (%s): %s, Range %q", method, shortPath(path), reg.Name, resp.Status, resp.Header.Get("Range"))
	return resp, string(b)
}

// expect fails unless resp has the status; it then takes its Location.
func (u *upload) expect(resp *http.Response, body string, status int, what string) {
	u.t.Helper()
	if resp.StatusCode != status {
		u.t.Fatalf("%s: %s, want %d; body: %s\n  (curl -v -X %s '%s')", what, resp.Status, status,
			strings.TrimSpace(body), resp.Request.Method, resp.Request.URL)
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		lu, err := url.Parse(loc)
		if err != nil {
			u.t.Fatalf("%s: Location %q: %v", what, loc, err)
		}
		u.location = lu.RequestURI()
	}
}

func (u *upload) patch(reg *registry, offset int64, chunk []byte) {
	u.t.Helper()
	h := http.Header{}
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Range", fmt.Sprintf("%d-%d", offset, offset+int64(len(chunk))-1))
	resp, body := u.send(reg, http.MethodPatch, "", h, chunk)
	u.expect(resp, body, http.StatusAccepted, fmt.Sprintf("PATCH of %d bytes at %d to %s", len(chunk), offset, reg.Name))
	if got, want := resp.Header.Get("Range"), fmt.Sprintf("0-%d", offset+int64(len(chunk))-1); got != want {
		u.t.Fatalf("PATCH to %s: Range %q, want %q", reg.Name, got, want)
	}
}

// status asks reg for the upload's status and checks its size.
func (u *upload) status(reg *registry, size int64) {
	u.t.Helper()
	resp, body := u.send(reg, http.MethodGet, "", nil, nil)
	u.expect(resp, body, http.StatusNoContent, "GET upload status from "+reg.Name)
	want := "0-0"
	if size > 0 {
		want = fmt.Sprintf("0-%d", size-1)
	}
	if got := resp.Header.Get("Range"); got != want {
		u.t.Fatalf("upload status from %s: Range %q, want %q (%d bytes sent)", reg.Name, got, want, size)
	}
}

func shortPath(p string) string {
	if i := strings.Index(p, "_state="); i >= 0 && len(p) > i+20 {
		return p[:i+20] + "..."
	}
	return p
}

func newUpload(t *testing.T, reg *registry, repo string) *upload {
	u := &upload{t: t, client: &http.Client{Timeout: 2 * time.Minute}, repo: repo}
	resp, body := u.send(reg, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
	u.expect(resp, body, http.StatusAccepted, "POST upload to "+reg.Name)
	return u
}

func rawUploadAcrossProcesses(t *testing.T, a, b *registry) {
	repo := "multi/raw"
	rnd := newRandReader()
	sizes := []int64{mib(3), mib(8) + 5, 1, mib(9), mib(0.1)} // the last goes with the PUT
	var chunks [][]byte
	h := sha256.New()
	var total int64
	for _, n := range sizes {
		c := make([]byte, n)
		rnd.Read(c)
		h.Write(c)
		chunks = append(chunks, c)
		total += n
	}
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))

	u := newUpload(t, a, repo)
	u.status(b, 0)
	stale := u.location
	u.patch(b, 0, chunks[0])
	u.status(a, mib(3))

	// A PATCH with the state of offset 0 (a client that lost a response):
	// the process must see the 3 MiB the other one wrote and refuse it.
	fresh := u.location
	u.location = stale
	h2 := http.Header{}
	h2.Set("Content-Type", "application/octet-stream")
	resp, body := u.send(a, http.MethodPatch, "", h2, chunks[1])
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("PATCH with a stale upload state (offset 0, upload at %d) to %s: %s, want 416 Range Not Satisfiable; body: %s",
			mib(3), a.Name, resp.Status, strings.TrimSpace(body))
	}
	u.location = fresh
	u.status(b, mib(3))

	var off int64
	for i, c := range chunks[:len(chunks)-1] {
		if i == 0 {
			off += int64(len(c))
			continue
		}
		// Chunk 0 went to B: 1 to A, 2 to B, 3 to A; the status from the
		// other one each time.
		u.patch([]*registry{b, a}[i%2], off, c)
		off += int64(len(c))
		u.status([]*registry{a, b}[i%2], off)
	}

	last := chunks[len(chunks)-1]
	put := u.location
	if strings.Contains(put, "?") {
		put += "&digest=" + url.QueryEscape(digest)
	} else {
		put += "?digest=" + url.QueryEscape(digest)
	}
	h3 := http.Header{}
	h3.Set("Content-Type", "application/octet-stream")
	resp, body = u.send(b, http.MethodPut, put, h3, last)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT (last %d bytes, digest %s) to %s: %s, want 201; body: %s", len(last), digest, b.Name, resp.Status, strings.TrimSpace(body))
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != digest {
		t.Errorf("PUT to %s: Docker-Content-Digest %q, want %s", b.Name, got, digest)
	}

	for _, reg := range []*registry{a, b} {
		resp, _ := u.send(reg, http.MethodHead, "/v2/"+repo+"/blobs/"+digest, nil, nil)
		if resp.StatusCode != http.StatusOK || resp.ContentLength != total {
			t.Errorf("HEAD blob on %s: %s, Content-Length %d; want 200, %d", reg.Name, resp.Status, resp.ContentLength, total)
		}
		req, _ := http.NewRequest(http.MethodGet, reg.URL()+"/v2/"+repo+"/blobs/"+digest, nil)
		gr, err := u.client.Do(req)
		if err != nil {
			t.Fatalf("GET blob from %s: %v", reg.Name, err)
		}
		gh := sha256.New()
		n, err := io.Copy(gh, gr.Body)
		gr.Body.Close()
		got := "sha256:" + hex.EncodeToString(gh.Sum(nil))
		if err != nil || gr.StatusCode != http.StatusOK || n != total || got != digest {
			t.Errorf("GET blob from %s: %s, %d bytes, digest %s, err %v; want 200, %d bytes, %s",
				reg.Name, gr.Status, n, got, err, total, digest)
		}
	}
}

func rawCancelAcrossProcesses(t *testing.T, a, b *registry) {
	u := newUpload(t, a, "multi/cancel")
	chunk := make([]byte, mib(6))
	newRandReader().Read(chunk)
	u.patch(b, 0, chunk)
	resp, body := u.send(a, http.MethodDelete, "", nil, nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE upload on %s: %s, want 204; body: %s", a.Name, resp.Status, strings.TrimSpace(body))
	}
	for _, reg := range []*registry{b, a} {
		resp, body = u.send(reg, http.MethodGet, "", nil, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("upload status from %s after the cancel on %s: %s, want 404 BLOB_UPLOAD_UNKNOWN; body: %s",
				reg.Name, a.Name, resp.Status, strings.TrimSpace(body))
		}
	}
}
