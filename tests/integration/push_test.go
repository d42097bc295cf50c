//go:build linux

package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// s3d push-blob and s3d push (the client of docs/api.md) against
// build/registry with the s3direct driver and presigned uploads on. The
// registry reaches S3 through pushTap, a counting reverse proxy, so the
// presigned URLs s3d gets point at the tap too: each test checks how many
// single and part PUTs went straight to S3 (none of the bytes pass through
// the registry: no PATCH reaches it).

// pushPartSize is the registry's presignpartsize and the --part-size given
// to s3d: a blob over 5 MiB goes in parts of 5 MiB.
const pushPartSize = 5 << 20

// pushTap is a loopback reverse proxy to the S3 server that keeps Host (the
// SigV4 signatures cover it) and counts the presigned PUTs.
type pushTap struct {
	URL string

	mu     sync.Mutex
	single int   // presigned PUTs without partNumber
	parts  int   // presigned UploadPart PUTs
	bytes  int64 // their Content-Length, summed

	markerGets int // GETs of session markers (_s3direct/sessions/<uuid>)

	partDelay time.Duration // each presigned UploadPart PUT is held this long
	partSeen  chan string   // (when set) the path of the first one
}

func pushStartTap(t *testing.T, target string) *pushTap {
	t.Helper()
	to, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &pushTap{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(to)
			pr.Out.Host = pr.In.Host
			q := pr.In.URL.Query()
			if pr.In.Method == http.MethodGet && strings.Contains(pr.In.URL.Path, "/_s3direct/sessions/") {
				p.mu.Lock()
				p.markerGets++
				p.mu.Unlock()
			}
			if pr.In.Method == http.MethodPut && q.Get("X-Amz-Signature") != "" {
				p.mu.Lock()
				if q.Get("partNumber") != "" {
					p.parts++
				} else {
					p.single++
				}
				p.bytes += pr.In.ContentLength
				delay, seen := p.partDelay, p.partSeen
				p.mu.Unlock()
				if q.Get("partNumber") != "" && seen != nil {
					select {
					case seen <- pr.In.URL.Path:
					default:
					}
				}
				if q.Get("partNumber") != "" && delay > 0 {
					time.Sleep(delay)
				}
			}
		},
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 30 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	p.URL = "http://" + l.Addr().String()
	return p
}

// counts returns what the tap saw since the last call.
func (p *pushTap) counts() (single, parts int, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	single, parts, bytes = p.single, p.parts, p.bytes
	p.single, p.parts, p.bytes = 0, 0, 0
	return
}

// sessionLookups returns the session-marker GETs since the last call.
func (p *pushTap) sessionLookups() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.markerGets
	p.markerGets = 0
	return n
}

type pushEnv struct {
	reg *registry
	tap *pushTap
	s3d string
}

// pushRegistry starts a registry (auth: as regOptions.Auth) whose S3
// traffic goes through a fresh tap.
func pushRegistry(t *testing.T, name, auth string) *pushEnv {
	t.Helper()
	e := needS3(t)
	bucket := makeBucket(t, e)
	tap := pushStartTap(t, e.Endpoint)
	viaTap := e
	viaTap.Endpoint = tap.URL
	storage := storageS3direct(viaTap, bucket, "/push-"+randHex(4)) +
		"    presign: true\n" + fmt.Sprintf("    presignpartsize: %d\n", pushPartSize)
	reg := startRegistry(t, name, storage, regOptions{Auth: auth})
	return &pushEnv{reg: reg, tap: tap, s3d: buildBin(t, "s3d")}
}

// pushRun runs build/s3d with args.
func pushRun(t *testing.T, pe *pushEnv, args ...string) cmdResult {
	t.Helper()
	start := time.Now()
	r := runCmd(t.Context(), clientTimeout, "", nil, nil, append([]string{pe.s3d}, args...)...)
	t.Logf("ran (%.1fs): %s", time.Since(start).Seconds(), r.Line)
	return r
}

// pushMustRun is pushRun that fails the test when s3d fails; its stdout.
func pushMustRun(t *testing.T, pe *pushEnv, args ...string) string {
	t.Helper()
	r := pushRun(t, pe, args...)
	if r.Err != nil {
		t.Fatalf("s3d failed: %v\n  command: %s\n  stdout:\n%s\n  stderr:\n%s", r.Err, r.Line,
			indent(r.Stdout), indent(r.Stderr))
	}
	return r.Stdout
}

// pushCheckBlob GETs /v2/<repo>/blobs/<digest> (Basic auth when user is
// "name:password") and compares it with the file at path.
func pushCheckBlob(t *testing.T, pe *pushEnv, user, repo, digest, path string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, pe.reg.URL()+"/v2/"+repo+"/blobs/"+digest, nil)
	if err != nil {
		t.Fatal(err)
	}
	if name, pass, ok := strings.Cut(user, ":"); ok {
		req.SetBasicAuth(name, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET blob %s: %v", digest, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		t.Fatalf("GET /v2/%s/blobs/%s: %s %s", repo, digest, resp.Status, b)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		t.Fatalf("GET blob %s: %v", digest, err)
	}
	want, size := fileDigest(t, path)
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != want || n != size {
		t.Errorf("GET /v2/%s/blobs/%s: %d bytes with digest %s; the file has %d bytes, %s",
			repo, digest, n, got, size, want)
	}
}

// pushExitCode is the exit status of a finished command (-1: did not run).
func pushExitCode(r cmdResult) int {
	var ee *exec.ExitError
	if r.Err == nil {
		return 0
	}
	if errors.As(r.Err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// pushBlobCase pushes a file of size random bytes with s3d push-blob and
// checks the digest printed, the PUTs S3 received and the blob's bytes.
func pushBlobCase(t *testing.T, pe *pushEnv, user, repo string, size int64, wantSingle, wantParts int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "blob")
	digest := writeRandomFile(t, path, size)
	pe.tap.counts()
	args := []string{"push-blob", "--registry", pe.reg.URL(), "--part-size", itoa(pushPartSize),
		"--concurrency", "3"}
	if user != "" {
		args = append(args, "--user", user)
	}
	out := pushMustRun(t, pe, append(args, repo, path)...)
	if got := strings.TrimSpace(out); got != digest {
		t.Errorf("s3d push-blob printed %q, want %s", got, digest)
	}
	single, parts, bytes := pe.tap.counts()
	if single != wantSingle || parts != wantParts || bytes != size {
		t.Errorf("S3 received %d single and %d part PUTs, %d bytes; want %d, %d and %d bytes",
			single, parts, bytes, wantSingle, wantParts, size)
	}
	pushCheckBlob(t, pe, user, repo, digest, path)

	// the registry has it now: nothing is uploaded again
	out = pushMustRun(t, pe, append(args, repo, path)...)
	if got := strings.TrimSpace(out); got != digest {
		t.Errorf("s3d push-blob (again) printed %q, want %s", got, digest)
	}
	if single, parts, _ := pe.tap.counts(); single+parts != 0 {
		t.Errorf("pushing a blob the registry has sent %d PUTs to S3, want none", single+parts)
	}
}

func TestPushBlob(t *testing.T) {
	reproHint(t)
	pe := pushRegistry(t, "push-blob", "")
	t.Run("small", func(t *testing.T) { pushBlobCase(t, pe, "", "push/blob", 1000+7, 1, 0) })
	// 23 MiB + 3 in 5 MiB parts
	t.Run("large", func(t *testing.T) { pushBlobCase(t, pe, "", "push/blob", mib(23)+3, 0, 5) })
	if n := countRequests(t, pe.reg, "PATCH", "/v2/push/"); n != 0 {
		t.Errorf("the registry received %d PATCH requests: bytes went through it", n)
	}
	t.Run("usage", func(t *testing.T) {
		r := pushRun(t, pe, "push-blob", "--registry", pe.reg.URL(), "Not/A/Repo", "/dev/null")
		if pushExitCode(r) != 2 {
			t.Errorf("an invalid repository: exit %d, want 2\n  stderr:\n%s", pushExitCode(r), indent(r.Stderr))
		}
	})
}

func TestPushBlobHtpasswd(t *testing.T) {
	reproHint(t)
	const user, pass = "alice", "correct-horse-7"
	pe := pushRegistry(t, "push-htpasswd", htpasswdAuth(t, user, pass))

	t.Run("small", func(t *testing.T) { pushBlobCase(t, pe, user+":"+pass, "push/auth", 4096, 1, 0) })
	t.Run("large", func(t *testing.T) {
		pushBlobCase(t, pe, user+":"+pass, "push/auth", mib(11)+1, 0, 3)
	})

	path := filepath.Join(t.TempDir(), "blob")
	writeRandomFile(t, path, 2048)
	t.Run("wrong-password", func(t *testing.T) {
		pe.tap.counts()
		r := pushRun(t, pe, "push-blob", "--registry", pe.reg.URL(), "--user", user+":wrong-pass-9",
			"push/auth", path)
		t.Logf("stderr:\n%s", indent(r.Stderr))
		if code := pushExitCode(r); code != 1 {
			t.Errorf("exit %d, want 1\n  stderr:\n%s", code, indent(r.Stderr))
		}
		if !strings.Contains(r.Stderr, "UNAUTHORIZED") || !strings.Contains(r.Stderr, "refused the credentials") ||
			!strings.Contains(r.Stderr, "HTTP 401") {
			t.Errorf("stderr does not say the credentials were refused:\n%s", indent(r.Stderr))
		}
		if strings.Contains(r.Stderr+r.Stdout, "wrong-pass-9") || r.Stdout != "" {
			t.Errorf("the password or a digest was printed:\n  stdout: %q\n  stderr: %q", r.Stdout, r.Stderr)
		}
		if single, parts, _ := pe.tap.counts(); single+parts != 0 {
			t.Errorf("%d PUTs reached S3 without credentials", single+parts)
		}
	})
	t.Run("no-credentials", func(t *testing.T) {
		r := pushRun(t, pe, "push-blob", "--registry", pe.reg.URL(), "push/auth", path)
		if code := pushExitCode(r); code != 1 || !strings.Contains(r.Stderr, "--user") {
			t.Errorf("exit %d (want 1), stderr without a hint about --user:\n%s", code, indent(r.Stderr))
		}
	})
}

// pushCraneSource starts a registry on the file system (the images'
// source: stock crane pushes) and returns its address.
func pushCraneSource(t *testing.T) string {
	t.Helper()
	return startRegistry(t, "push-source", storageFilesystem(t.TempDir()), regOptions{}).Addr
}

// pushLayoutOf pulls ref into a new OCI layout with crane.
func pushLayoutOf(t *testing.T, env []string, refs ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	args := append([]string{toolBin(t, "crane"), "pull", "--format", "oci"}, refs...)
	mustRun(t, clientTimeout, "", env, nil, append(args, dir)...)
	return dir
}

// pushCheckRemote validates ref with crane and returns its digest.
func pushCheckRemote(t *testing.T, env []string, ref string) string {
	t.Helper()
	crane := toolBin(t, "crane")
	mustRun(t, clientTimeout, "", env, nil, crane, "validate", "--remote", ref)
	return strings.TrimSpace(mustRun(t, clientTimeout, "", env, nil, crane, "digest", ref))
}

func TestPushImage(t *testing.T) {
	reproHint(t)
	crane := toolBin(t, "crane")
	env := clientEnv(t)
	src := pushCraneSource(t)
	pe := pushRegistry(t, "push-image", "")
	dst := pe.reg.Addr

	// an image of two layers, one over 20 MiB (5 parts), made into an OCI
	// layout by crane
	im := writeImage(t, t.TempDir(), "v1", mib(1)+17, mib(21)+5)
	mustRun(t, clientTimeout, "", env, nil, crane, "push", im.Dir, src+"/push/src:v1")
	layout := pushLayoutOf(t, env, src+"/push/src:v1")

	t.Run("image", func(t *testing.T) {
		pe.tap.counts()
		out := pushMustRun(t, pe, "push", "--registry", pe.reg.URL(), "--part-size", itoa(pushPartSize),
			layout, "push/image:v1")
		if got := strings.TrimSpace(out); got != im.Manifest.Digest {
			t.Errorf("s3d push printed %q, want the manifest digest %s", got, im.Manifest.Digest)
		}
		single, parts, bytes := pe.tap.counts()
		// config and small layer: one PUT each; the large layer: 5 parts
		if single != 2 || parts != 5 || bytes != im.Config.Size+im.Layers[0].Size+im.Layers[1].Size {
			t.Errorf("S3 received %d single and %d part PUTs (%d bytes), want 2 and 5", single, parts, bytes)
		}
		if d := pushCheckRemote(t, env, dst+"/push/image:v1"); d != im.Manifest.Digest {
			t.Errorf("crane digest %s/push/image:v1 = %s, want %s", dst, d, im.Manifest.Digest)
		}
		craneCheck(t, env, im, dst+"/push/image:v1")

		// again under another tag: every blob is there already
		out = pushMustRun(t, pe, "push", "--registry", pe.reg.URL(), layout, "push/image:again")
		if got := strings.TrimSpace(out); got != im.Manifest.Digest {
			t.Errorf("s3d push (again) printed %q, want %s", got, im.Manifest.Digest)
		}
		if single, parts, _ := pe.tap.counts(); single+parts != 0 {
			t.Errorf("pushing blobs the registry has sent %d PUTs to S3, want none", single+parts)
		}
		if n := countRequests(t, pe.reg, "PATCH", "/v2/push/"); n != 0 {
			t.Errorf("the registry received %d PATCH requests: bytes went through it", n)
		}
	})

	t.Run("index", func(t *testing.T) {
		// two images made into one image index by crane
		a := writeImage(t, t.TempDir(), "a", 3000)
		b := writeImage(t, t.TempDir(), "b", mib(6)+1)
		mustRun(t, clientTimeout, "", env, nil, crane, "push", a.Dir, src+"/push/a:v1")
		mustRun(t, clientTimeout, "", env, nil, crane, "push", b.Dir, src+"/push/b:v1")
		mustRun(t, clientTimeout, "", env, nil, crane, "index", "append",
			"-m", src+"/push/a:v1", "-m", src+"/push/b:v1", "-t", src+"/push/idx:v1")
		want := strings.TrimSpace(mustRun(t, clientTimeout, "", env, nil, crane, "digest", src+"/push/idx:v1"))
		layout := pushLayoutOf(t, env, src+"/push/idx:v1")
		out := pushMustRun(t, pe, "push", "--registry", pe.reg.URL(), "--part-size", itoa(pushPartSize),
			layout, "push/idx:v1")
		if got := strings.TrimSpace(out); got != want {
			t.Errorf("s3d push printed %q, want the index digest %s", got, want)
		}
		if d := pushCheckRemote(t, env, dst+"/push/idx:v1"); d != want {
			t.Errorf("crane digest %s/push/idx:v1 = %s, want %s", dst, d, want)
		}
		for _, im := range []*ociImage{a, b} {
			craneCheck(t, env, im, dst+"/push/idx@"+im.Manifest.Digest)
		}
	})

	t.Run("layout-of-two", func(t *testing.T) {
		// two images in one layout (index.json lists both): pushed as one
		// image index under the tag
		layout := pushLayoutOf(t, env, src+"/push/a:v1", src+"/push/src:v1")
		out := pushMustRun(t, pe, "push", "--registry", pe.reg.URL(), layout, "push/two:v1")
		got := strings.TrimSpace(out)
		if d := pushCheckRemote(t, env, dst+"/push/two:v1"); d != got {
			t.Errorf("crane digest %s/push/two:v1 = %s, s3d push printed %q", dst, d, got)
		}
		var local, index struct {
			MediaType string
			Manifests []descriptor
		}
		b, err := os.ReadFile(filepath.Join(layout, "index.json"))
		if err != nil || json.Unmarshal(b, &local) != nil || len(local.Manifests) != 2 {
			t.Fatalf("crane pull of two images: index.json %s (%v)", b, err)
		}
		raw := mustRun(t, clientTimeout, "", env, nil, crane, "manifest", dst+"/push/two:v1")
		if err := json.Unmarshal([]byte(raw), &index); err != nil {
			t.Fatalf("crane manifest: %v\n%s", err, raw)
		}
		if index.MediaType != mtIndex || len(index.Manifests) != 2 ||
			index.Manifests[0].Digest != local.Manifests[0].Digest ||
			index.Manifests[1].Digest != local.Manifests[1].Digest {
			t.Errorf("push/two:v1 is %s with %v, want an index of %v", index.MediaType,
				index.Manifests, local.Manifests)
		}
	})

	t.Run("errors", func(t *testing.T) {
		// a layout whose blob does not match its manifest: refused before upload
		bad := pushLayoutOf(t, env, src+"/push/a:v1")
		blobs, _ := filepath.Glob(filepath.Join(bad, "blobs", "sha256", "*"))
		var corrupted bool
		for _, p := range blobs {
			b, err := os.ReadFile(p)
			if err == nil && json.Valid(b) && strings.Contains(string(b), `"layers"`) {
				// the manifest: change one byte of it
				b[len(b)-1] = ' '
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
				corrupted = true
			}
		}
		if !corrupted {
			t.Fatalf("no manifest found in %s", bad)
		}
		r := pushRun(t, pe, "push", "--registry", pe.reg.URL(), bad, "push/bad:v1")
		if pushExitCode(r) != 1 || !strings.Contains(r.Stderr, "does not match its digest") {
			t.Errorf("a corrupted layout: exit %d (want 1), stderr:\n%s", pushExitCode(r), indent(r.Stderr))
		}
		r = pushRun(t, pe, "push", "--registry", pe.reg.URL(), t.TempDir(), "push/bad:v1")
		if pushExitCode(r) != 1 || !strings.Contains(r.Stderr, "oci-layout") {
			t.Errorf("not a layout: exit %d (want 1), stderr:\n%s", pushExitCode(r), indent(r.Stderr))
		}
		r = pushRun(t, pe, "push", "--registry", pe.reg.URL(), layout, "push/bad")
		if pushExitCode(r) != 2 {
			t.Errorf("no tag: exit %d (want 2), stderr:\n%s", pushExitCode(r), indent(r.Stderr))
		}
	})
}

// TestPushBlobInterrupted: Ctrl-C during s3d push-blob stops the upload,
// cancels the registry session (so its multipart upload is aborted at
// once, not at the session TTL) and exits 130.
func TestPushBlobInterrupted(t *testing.T) {
	pe := psSetup(t)
	tap := pushStartTap(t, pe.e.Endpoint)
	tap.mu.Lock()
	tap.partDelay = 3 * time.Second // part 1 is still in flight at the signal
	tap.partSeen = make(chan string, 1)
	tap.mu.Unlock()
	viaTap := *pe
	viaTap.e.Endpoint = tap.URL
	reg := startRegistry(t, "push-interrupted", viaTap.storage(), regOptions{})
	repo := "push/interrupted"
	path := filepath.Join(t.TempDir(), "blob")
	writeRandomFile(t, path, 6*pushPartSize+1)

	var stdout, stderr strings.Builder
	cmd := exec.Command(buildBin(t, "s3d"), "push-blob", "--registry", reg.URL(), "--part-size",
		itoa(pushPartSize), "--concurrency", "1", repo, path)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var partPath string
	select {
	case partPath = <-tap.partSeen:
	case <-time.After(clientTimeout):
		cmd.Process.Kill()
		t.Fatalf("no part PUT reached S3 in %v; stderr:\n%s", clientTimeout, indent(stderr.String()))
	}
	sent := time.Now()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("s3d push-blob still running 30 s after SIGINT; stderr:\n%s", indent(stderr.String()))
	}
	t.Logf("s3d push-blob ended %.1fs after SIGINT: %v\n%s", time.Since(sent).Seconds(), err, indent(stderr.String()))
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("s3d push-blob after SIGINT: %v, want exit status 130", err)
	}
	if !strings.Contains(stderr.String(), "s3d push-blob: interrupted") || stdout.Len() != 0 {
		t.Errorf("after SIGINT: stdout %q, stderr %q; want no digest and \"interrupted\"", stdout.String(), stderr.String())
	}

	// the session is cancelled: unknown to the registry, nothing left in S3
	uuid := partPath[strings.LastIndex(partPath, "/")+1:]
	if !strings.Contains(partPath, pe.tempKey(uuid)) {
		t.Fatalf("part PUT to %s, not to a session's temp key %s", partPath, pe.tempKey(uuid))
	}
	resp, err := http.Get(reg.URL() + psUploadPath(repo, uuid))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET %s after SIGINT: %s, want 404 (the session cancelled)", psUploadPath(repo, uuid), resp.Status)
	}
	pe.wantSessionGone(t, repo, uuid, "SIGINT")
	if ups := pe.uploads(t, pe.root+"/"); len(ups) != 0 {
		t.Errorf("multipart uploads left after SIGINT: %v", ups)
	}
}
