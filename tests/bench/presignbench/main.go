// presignbench: the load generator of tests/bench/bench-presign.sh
// (presigned direct uploads, docs/api.md, against the proxy path and the S3
// server alone). Blobs come from `proxyload gen` (PREFIX-<i>.bin and
// PREFIX-<i>.sha256); `presignbench clean` empties the bucket between cells.
//
//	presignbench keygen -dir D
//	    writes D/token.key (RSA 2048) and D/token.crt (self-signed, the
//	    registry's auth.token rootcertbundle).
//	presignbench push -flow FLOW -files D/P -count N [-url REG] [-s3 EP -bucket B]
//	                  [-repo NAME] [-pid PID] [-s3pid PID] [-partsize BYTES]
//	                  [-partconc N] [-chunk BYTES]
//	    pushes the N blobs concurrently, one stream per blob:
//	      presigned     POST, GET ?presigned=true&digest=&size= (one PUT URL,
//	                    S3 enforces the SHA-256), PUT to S3, PUT ?digest=
//	      presigned-mp  POST, GET ?presigned=true&parts=N&size=, the parts
//	                    PUT to S3 -partconc at a time, PUT ?digest=
//	      proxy         POST, PUT ?digest= with the body (through the registry)
//	      proxy-patch   POST, -chunk PATCHes, PUT ?digest=
//	      ceiling       one SigV4 PUT per blob to S3 (UNSIGNED-PAYLOAD)
//	      ceiling-ck    the same with x-amz-checksum-sha256 (S3 hashes the body)
//	      ceiling-mp    SigV4 multipart upload, -partsize parts, -partconc at
//	                    a time
//	    The registry flows go through a counting TCP proxy in this process:
//	    reg_rx_bytes / reg_tx_bytes are the bytes the registry received from /
//	    sent to the client (HTTP headers included). Also printed: seconds,
//	    the registry's and the S3 server's CPU seconds (utime+stime from
//	    /proc/PID/stat) and the registry's read() bytes (rchar of
//	    /proc/PID/io: sockets to the client and to S3) over the upload phase,
//	    this process's CPU seconds, the machine's busy and stolen CPU seconds.
//	    Every blob is checked afterwards: through the registry (HEAD: size
//	    and digest; the first one read back and hashed), the ceilings'
//	    objects by an S3 HEAD (size); last line "verified N blobs ...".
//	presignbench finalize -mode declared|stream|stock|stock-patch -file D/P-0
//	                      -url REG -s3 EP -bucket B [-root DIR] [-secret S]
//	                      [-repo NAME] [-chunk BYTES]
//	    one upload, untimed, then the timed finalize PUT ?digest=:
//	      declared  presigned with digest and size: S3 checks the SHA-256,
//	                the object is written at the blob's key
//	      stream    presigned without digest: the registry reads and hashes
//	                the object at finalize, then copies it to the blob's key
//	      stock     a stock session (POST); the bytes PUT straight to S3 at the
//	                upload's data key <root>/docker/registry/v2/repositories/
//	                NAME/_uploads/UUID/data; the finalize carries a _state
//	                minted with http.secret (distribution's handlers/hmac.go)
//	                whose offset is the size, so the stock commit runs
//	      stock-patch a stock session whose bytes went through the registry
//	                (-chunk PATCHes), finalized with the last Location's
//	                _state: the stock commit after a stock upload
//	    Prints finalize_s and checks the blob (HEAD).
//	presignbench rate -path fresh|refresh|post -url REG [-clients 64] [-duration 10s]
//	                  [-max N] [-repo NAME] [-pid PID] [-token-key F -issuer I -service S]
//	    presign calls per second from -clients concurrent clients, for
//	    -duration or -max calls, whichever comes first:
//	      fresh    each call opens a session (POST) and presigns it once
//	      refresh  presigns again sessions opened (and presigned) before the
//	               timed phase, one per client
//	      post     the stock POST alone, no presign (the baseline of fresh:
//	               what opening sessions costs without presigned uploads);
//	               its POSTs are reported as the calls
//	    Every presign declares a digest and a size (a single PUT URL). With
//	    -token-key every request carries a Bearer token minted for its
//	    client (RS256, kid = the key's JWK thumbprint, pull+push on -repo).
//	presignbench plot -data FILE -out FILE.svg
//	    draws the data lines bench-presign.sh collected (see plot below).
//	presignbench clean -s3 EP -bucket B
//	    aborts every multipart upload and deletes every object of the
//	    bucket, 16 requests at a time (the rate cells leave tens of
//	    thousands of small objects); the same as proxyload clean.
//
// What both tools share (blobs, requests, the S3 client, /proc counters)
// is in tests/bench/internal/benchkit.
//
// S3 credentials: S3D_TEST_ACCESS_KEY, S3D_TEST_SECRET_KEY, S3D_TEST_REGION.
// Every loop is bounded by a count and a deadline (-timeout).
package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distribution/distribution/v3/registry/auth/token"
	"github.com/s3direct/s3direct/tests/bench/internal/benchkit"
)

func main() {
	benchkit.Main("presignbench", "keygen|push|finalize|rate|plot|clean", map[string]func([]string) error{
		"keygen": keygen, "push": push, "finalize": finalize, "rate": rate, "plot": plot, "clean": clean,
	})
}

// ----------------------------------------------------------- registry ----

type reg struct {
	base     *url.URL
	client   *http.Client
	token    string // Bearer token; none when empty
	requests atomic.Int64
}

func (r *reg) req(method string, u *url.URL, body []byte) *http.Request {
	req := benchkit.NewReq(method, u, body)
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	r.requests.Add(1)
	return req
}

// open: POST /v2/NAME/blobs/uploads/ -> the upload's Location (with the
// stock _state) and its uuid.
func (r *reg) open(ctx context.Context, repo string) (*url.URL, string, error) {
	u := r.base.JoinPath("v2", repo, "blobs", "uploads")
	u.Path += "/"
	resp, _, err := benchkit.Do(ctx, r.client, r.req(http.MethodPost, u, nil), http.StatusAccepted)
	if err != nil {
		return nil, "", err
	}
	loc, err := benchkit.Resolve(r.base, resp.Header.Get("Location"))
	if err != nil {
		return nil, "", err
	}
	return loc, path.Base(loc.Path), nil
}

type presignResp struct {
	URL      string `json:"presigned_url"`
	PartSize int64  `json:"part_size"`
	Parts    []struct {
		Number int    `json:"part_number"`
		URL    string `json:"url"`
	} `json:"parts"`
	Method  string            `json:"method"`
	Headers map[string]string `json:"headers"`
}

// presign: GET <upload>?presigned=true&q...
func (r *reg) presign(ctx context.Context, loc *url.URL, q url.Values) (*presignResp, error) {
	u := *loc
	q.Set("presigned", "true")
	u.RawQuery = q.Encode()
	_, body, err := benchkit.Do(ctx, r.client, r.req(http.MethodGet, &u, nil), http.StatusOK)
	if err != nil {
		return nil, err
	}
	var p presignResp
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("presign answer: %w: %q", err, body)
	}
	return &p, nil
}

// complete: PUT <upload>?digest= with body (nil: empty), keeping the query
// of the Location (the stock _state), or with state as _state when set.
func (r *reg) complete(ctx context.Context, loc *url.URL, digest, state string, body []byte) error {
	u := *loc
	q := u.Query()
	q.Set("digest", digest)
	if state != "" {
		q.Set("_state", state)
	}
	u.RawQuery = q.Encode()
	req := r.req(http.MethodPut, &u, body)
	req.Header.Set("Content-Type", "application/octet-stream")
	_, _, err := benchkit.Do(ctx, r.client, req, http.StatusCreated)
	return err
}

// putPresigned: PUT data to a presigned URL with every header it was signed
// with.
func putPresigned(ctx context.Context, c *http.Client, rawURL string, headers map[string]string, data []byte) error {
	u, err := benchkit.ParseURL(rawURL, "presigned URL")
	if err != nil {
		return err
	}
	req := benchkit.NewReq(http.MethodPut, u, data)
	for k, v := range headers {
		if strings.EqualFold(k, "content-length") {
			if v != strconv.Itoa(len(data)) {
				return fmt.Errorf("presigned content-length %s for %d bytes", v, len(data))
			}
			continue
		}
		req.Header.Set(k, v)
	}
	_, _, err = benchkit.Do(ctx, c, req, http.StatusOK)
	return err
}

func (r *reg) headBlob(ctx context.Context, repo string, b *benchkit.Blob) error {
	req := r.req(http.MethodHead, r.base.JoinPath("v2", repo, "blobs", b.Digest), nil)
	resp, _, err := benchkit.Do(ctx, r.client, req, http.StatusOK)
	if err != nil {
		return err
	}
	return benchkit.CheckHead(resp, req.URL.Path, b, true)
}

func (r *reg) getBlob(ctx context.Context, repo string, b *benchkit.Blob) error {
	return benchkit.CheckGet(ctx, r.client, r.req(http.MethodGet, r.base.JoinPath("v2", repo, "blobs", b.Digest), nil), b)
}

// ------------------------------------------------------- counting proxy ----

// countingProxy forwards TCP connections to target and counts the bytes of
// each direction (splice: no copy through this process). A connection's
// bytes are counted when it closes: idle() waits for that.
type countingProxy struct {
	ln     net.Listener
	target string
	rx, tx atomic.Int64 // to the target (what it received), from it
	active atomic.Int64
	failed atomic.Int64
}

func startProxy(target string) (*countingProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &countingProxy{ln: ln, target: target}
	go p.serve()
	return p, nil
}

func (p *countingProxy) addr() string { return p.ln.Addr().String() }

func (p *countingProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.active.Add(1)
		go p.handle(c.(*net.TCPConn))
	}
}

func (p *countingProxy) handle(c *net.TCPConn) {
	defer p.active.Add(-1)
	defer c.Close()
	u, err := net.DialTimeout("tcp", p.target, 10*time.Second)
	if err != nil {
		p.failed.Add(1)
		return
	}
	t := u.(*net.TCPConn)
	defer t.Close()
	done := make(chan struct{})
	go func() {
		n, _ := t.ReadFrom(c) // splice
		p.rx.Add(n)
		t.CloseWrite()
		close(done)
	}()
	n, _ := c.ReadFrom(t)
	p.tx.Add(n)
	c.CloseWrite()
	<-done
}

// idle waits (at most d) until no connection is open: the counts are final.
func (p *countingProxy) idle(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for p.active.Load() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// --------------------------------------------------------------- push ----

type pusher struct {
	flow      string
	repo      string
	reg       *reg // through the counting proxy
	s3        *benchkit.S3
	prefix    string
	partSize  int64
	partconc  int
	chunk     int64
	client    *http.Client
	presigned atomic.Int64 // presigned URLs received
}

var registryFlows = map[string]bool{"presigned": true, "presigned-mp": true, "proxy": true, "proxy-patch": true}
var s3Flows = map[string]bool{"ceiling": true, "ceiling-ck": true, "ceiling-mp": true}

func push(args []string) error {
	fs := flag.NewFlagSet("push", flag.ExitOnError)
	flow := fs.String("flow", "", "presigned, presigned-mp, proxy, proxy-patch, ceiling, ceiling-ck, ceiling-mp")
	rawURL := fs.String("url", "", "registry base URL (registry flows)")
	endpoint := fs.String("s3", "", "S3 endpoint (ceiling flows, checks)")
	bucket := fs.String("bucket", "", "S3 bucket")
	prefix := fs.String("prefix", "ceiling", "S3 key prefix (ceiling flows)")
	files := fs.String("files", "", "blob prefix: PREFIX-<i>.bin / .sha256")
	count := fs.Int("count", 1, "blobs, pushed concurrently")
	repo := fs.String("repo", "bench/presign", "repository")
	pid := fs.Int("pid", 0, "registry process")
	s3pid := fs.Int("s3pid", 0, "S3 server process")
	partSize := fs.Int64("partsize", 64<<20, "part size (ceiling-mp; presigned-mp takes the registry's)")
	partconc := fs.Int("partconc", 2, "parts in flight per blob (multipart flows)")
	chunk := fs.Int64("chunk", 8<<20, "PATCH size (proxy-patch)")
	timeout := fs.Duration("timeout", 30*time.Minute, "bound of the whole command")
	fs.Parse(args)
	if !registryFlows[*flow] && !s3Flows[*flow] {
		return fmt.Errorf("push: bad -flow %q", *flow)
	}
	if *partSize < 5<<20 || *chunk <= 0 || *count < 1 {
		return errors.New("push: -partsize must be >= 5 MiB, -chunk and -count positive")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	client := benchkit.NewClient(*count * max(*partconc, 1))
	p := &pusher{flow: *flow, repo: *repo, prefix: *prefix, partSize: *partSize,
		partconc: *partconc, chunk: *chunk, client: client}
	var direct *reg // the registry without the proxy, for the checks
	var proxy *countingProxy
	if registryFlows[*flow] {
		u, err := benchkit.ParseURL(*rawURL, "-url")
		if err != nil {
			return err
		}
		if proxy, err = startProxy(u.Host); err != nil {
			return err
		}
		pu := *u
		pu.Host = proxy.addr()
		p.reg = &reg{base: &pu, client: client}
		direct = &reg{base: u, client: benchkit.NewClient(4)}
	}
	if *endpoint != "" {
		var err error
		if p.s3, err = newS3(*endpoint, *bucket, client); err != nil {
			return err
		}
	} else if s3Flows[*flow] {
		return errors.New("push: ceiling flows need -s3 and -bucket")
	}

	blobs := make([]*benchkit.Blob, *count)
	var total int64
	for i := range blobs {
		var err error
		if blobs[i], err = benchkit.LoadBlob(fmt.Sprintf("%s-%d", *files, i)); err != nil {
			return err
		}
		total += int64(len(blobs[i].Data))
	}

	s0 := benchkit.TakeSample(*pid, *s3pid)
	errs := make([]error, len(blobs))
	var wg sync.WaitGroup
	for i, b := range blobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = p.one(ctx, i, b); errs[i] != nil {
				errs[i] = fmt.Errorf("blob %d: %w", i, errs[i])
			}
		}()
	}
	wg.Wait()
	s1 := benchkit.TakeSample(*pid, *s3pid)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("upload (%s): %w", *flow, err)
	}
	secs := s1.T.Sub(s0.T).Seconds()
	counted := true
	if proxy != nil {
		client.CloseIdleConnections()
		counted = proxy.idle(20 * time.Second)
	}

	fmt.Printf("bytes %d\n", total)
	fmt.Printf("seconds %.4f\n", secs)
	fmt.Printf("mibs %.1f\n", float64(total)/(1<<20)/secs)
	if *pid > 0 {
		fmt.Printf("cpu_s %.2f\n", s1.CPU-s0.CPU)
		if s0.Rchar >= 0 && s1.Rchar >= 0 {
			fmt.Printf("reg_rchar %d\n", s1.Rchar-s0.Rchar)
		}
	}
	if proxy != nil {
		fmt.Printf("reg_rx_bytes %d\n", proxy.rx.Load())
		fmt.Printf("reg_tx_bytes %d\n", proxy.tx.Load())
		fmt.Printf("reg_requests %d\n", p.reg.requests.Load())
		fmt.Printf("reg_count_complete %d\n", b2i(counted && proxy.failed.Load() == 0))
		fmt.Printf("presigned_urls %d\n", p.presigned.Load())
	}
	if *s3pid > 0 {
		fmt.Printf("s3_cpu_s %.2f\n", s1.S3CPU-s0.S3CPU)
	}
	fmt.Printf("client_cpu_s %.2f\n", s1.Self-s0.Self)
	fmt.Printf("machine_busy_s %.2f\n", s1.Busy-s0.Busy)
	fmt.Printf("machine_steal_s %.2f\n", s1.Steal-s0.Steal)

	// Checks (not timed).
	for i, b := range blobs {
		var err error
		if direct != nil {
			err = direct.headBlob(ctx, *repo, b)
		} else {
			var n int64
			if n, err = p.s3.Head(ctx, p.key(i)); err == nil && n != int64(len(b.Data)) {
				err = fmt.Errorf("HEAD %s: %d bytes, want %d", p.key(i), n, len(b.Data))
			}
		}
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
	}
	if direct != nil {
		if err := direct.getBlob(ctx, *repo, blobs[0]); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		fmt.Printf("verified %d blobs by HEAD, 1 by GET and SHA-256\n", len(blobs))
	} else {
		fmt.Printf("verified %d blobs by HEAD\n", len(blobs))
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (p *pusher) key(i int) string { return fmt.Sprintf("%s/%d", p.prefix, i) }

func (p *pusher) one(ctx context.Context, i int, b *benchkit.Blob) error {
	switch p.flow {
	case "presigned":
		return p.upload(ctx, b, nil, p.presignedSingle)
	case "presigned-mp":
		return p.upload(ctx, b, nil, p.presignedMultipart)
	case "proxy":
		return p.upload(ctx, b, b.Data, nil)
	case "proxy-patch":
		return p.upload(ctx, b, nil, func(ctx context.Context, loc *url.URL, b *benchkit.Blob) (*url.URL, error) {
			return benchkit.PatchChunks(ctx, p.reg.client, p.reg.base, loc, b.Data, p.chunk, p.reg.req)
		})
	case "ceiling":
		return p.s3.Put(ctx, p.key(i), b.Data, "")
	case "ceiling-ck":
		ck, err := b.ChecksumB64()
		if err != nil {
			return err
		}
		return p.s3.Put(ctx, p.key(i), b.Data, ck)
	case "ceiling-mp":
		return p.s3.Multipart(ctx, p.key(i), b.Data, p.partSize, p.partconc)
	}
	return fmt.Errorf("flow %q", p.flow)
}

// upload is one blob through the registry: POST, then send (nil: nothing)
// with the POST's Location, which moves the bytes (to S3 through presigned
// URLs, or PATCHes) and returns the Location to finalize, then the
// finalizing PUT ?digest= with body (nil: empty).
func (p *pusher) upload(ctx context.Context, b *benchkit.Blob, body []byte,
	send func(ctx context.Context, loc *url.URL, b *benchkit.Blob) (*url.URL, error)) error {
	loc, _, err := p.reg.open(ctx, p.repo)
	if err != nil {
		return err
	}
	if send != nil {
		if loc, err = send(ctx, loc, b); err != nil {
			return err
		}
	}
	return p.reg.complete(ctx, loc, b.Digest, "", body)
}

// presignedSingle: one presigned PUT URL (digest and size declared), the
// bytes PUT to it.
func (p *pusher) presignedSingle(ctx context.Context, loc *url.URL, b *benchkit.Blob) (*url.URL, error) {
	pr, err := p.reg.presign(ctx, loc, url.Values{"digest": {b.Digest}, "size": {strconv.Itoa(len(b.Data))}})
	if err != nil {
		return nil, err
	}
	if pr.URL == "" {
		return nil, errors.New("presign answer without presigned_url")
	}
	p.presigned.Add(1)
	return loc, putPresigned(ctx, p.client, pr.URL, pr.Headers, b.Data)
}

// presignedMultipart: the part URLs (as many presign calls as needed), the
// parts PUT to them partconc at a time.
func (p *pusher) presignedMultipart(ctx context.Context, loc *url.URL, b *benchkit.Blob) (*url.URL, error) {
	size := int64(len(b.Data))
	// As many URLs as parts of the configured size; the answer's part_size
	// decides (it may grow to fit 10,000 parts): more are asked for then.
	want := int((size + p.partSize - 1) / p.partSize)
	q := url.Values{"parts": {strconv.Itoa(min(want, 1000))}, "size": {strconv.FormatInt(size, 10)}}
	pr, err := p.reg.presign(ctx, loc, q)
	if err != nil {
		return nil, err
	}
	if pr.PartSize < 5<<20 {
		return nil, fmt.Errorf("presign answer: part_size %d", pr.PartSize)
	}
	nparts := int((size + pr.PartSize - 1) / pr.PartSize)
	urls := make(map[int]string, nparts)
	headers := pr.Headers
	for _, pt := range pr.Parts {
		urls[pt.Number] = pt.URL
	}
	for calls := 0; len(urls) < nparts && calls < 20; calls++ {
		first := len(urls) + 1
		pr, err := p.reg.presign(ctx, loc, url.Values{"parts": {strconv.Itoa(min(nparts-first+1, 1000))},
			"first_part": {strconv.Itoa(first)}, "size": {strconv.FormatInt(size, 10)}})
		if err != nil {
			return nil, err
		}
		for _, pt := range pr.Parts {
			urls[pt.Number] = pt.URL
		}
	}
	p.presigned.Add(int64(len(urls)))
	return loc, benchkit.ForEach(nparts, p.partconc, func(k int) error {
		u, ok := urls[k+1]
		if !ok {
			return fmt.Errorf("no URL for part %d", k+1)
		}
		off := int64(k) * pr.PartSize
		return putPresigned(ctx, p.client, u, headers, b.Data[off:min(off+pr.PartSize, size)])
	})
}

// ------------------------------------------------------------ finalize ----

// uploadState is distribution's blobUploadState (registry/handlers/hmac.go):
// JSON with Go's default field names, HMAC-SHA256 with http.secret in front,
// URL-safe base64 with padding.
type uploadState struct {
	Name      string
	UUID      string
	Offset    int64
	StartedAt time.Time
}

func packState(secret string, s uploadState) (string, error) {
	p, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(p)
	return base64.URLEncoding.EncodeToString(append(mac.Sum(nil), p...)), nil
}

func unpackState(secret, tok string) (uploadState, error) {
	var s uploadState
	raw, err := base64.URLEncoding.DecodeString(tok)
	if err != nil {
		return s, err
	}
	mac := hmac.New(sha256.New, []byte(secret))
	if len(raw) < mac.Size() {
		return s, errors.New("state too short")
	}
	mac.Write(raw[mac.Size():])
	if !hmac.Equal(mac.Sum(nil), raw[:mac.Size()]) {
		return s, errors.New("state not signed with this secret (http.secret)")
	}
	return s, json.Unmarshal(raw[mac.Size():], &s)
}

func finalize(args []string) error {
	fs := flag.NewFlagSet("finalize", flag.ExitOnError)
	mode := fs.String("mode", "", "declared, stream or stock")
	rawURL := fs.String("url", "", "registry base URL")
	endpoint := fs.String("s3", "", "S3 endpoint")
	bucket := fs.String("bucket", "", "S3 bucket")
	root := fs.String("root", "", "the registry's rootdirectory (stock: the data key)")
	secret := fs.String("secret", "", "the registry's http.secret (stock)")
	file := fs.String("file", "", "blob: FILE.bin / FILE.sha256")
	repo := fs.String("repo", "bench/finalize", "repository")
	chunk := fs.Int64("chunk", 8<<20, "PATCH size (stock-patch)")
	timeout := fs.Duration("timeout", 30*time.Minute, "bound of the whole command")
	fs.Parse(args)
	if *chunk <= 0 {
		return errors.New("finalize: -chunk must be positive")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	u, err := benchkit.ParseURL(*rawURL, "-url")
	if err != nil {
		return err
	}
	client := benchkit.NewClient(4)
	r := &reg{base: u, client: client}
	s3, err := newS3(*endpoint, *bucket, client)
	if err != nil {
		return err
	}
	b, err := benchkit.LoadBlob(*file)
	if err != nil {
		return err
	}
	size := strconv.Itoa(len(b.Data))

	loc, uuid, err := r.open(ctx, *repo)
	if err != nil {
		return err
	}
	state := ""
	switch *mode {
	case "declared", "stream":
		q := url.Values{"size": {size}}
		if *mode == "declared" {
			q.Set("digest", b.Digest)
		}
		pr, err := r.presign(ctx, loc, q)
		if err != nil {
			return err
		}
		if err := putPresigned(ctx, client, pr.URL, pr.Headers, b.Data); err != nil {
			return err
		}
	case "stock":
		if *secret == "" {
			return errors.New("finalize: stock needs -secret")
		}
		st, err := unpackState(*secret, loc.Query().Get("_state"))
		if err != nil {
			return fmt.Errorf("the POST's _state: %w", err)
		}
		if st.Name != *repo || st.UUID != uuid {
			return fmt.Errorf("the POST's _state names %s/%s, want %s/%s", st.Name, st.UUID, *repo, uuid)
		}
		key := strings.Trim(*root, "/")
		if key != "" {
			key += "/"
		}
		key += fmt.Sprintf("docker/registry/v2/repositories/%s/_uploads/%s/data", *repo, uuid)
		if err := s3.Put(ctx, key, b.Data, ""); err != nil {
			return err
		}
		st.Offset = int64(len(b.Data))
		if state, err = packState(*secret, st); err != nil {
			return err
		}
	case "stock-patch":
		if loc, err = benchkit.PatchChunks(ctx, client, r.base, loc, b.Data, *chunk, r.req); err != nil {
			return err
		}
	default:
		return fmt.Errorf("finalize: bad -mode %q", *mode)
	}

	start := time.Now()
	err = r.complete(ctx, loc, b.Digest, state, nil)
	secs := time.Since(start).Seconds()
	if err != nil {
		return fmt.Errorf("finalize (%s): %w", *mode, err)
	}
	fmt.Printf("size %d\n", len(b.Data))
	fmt.Printf("finalize_s %.6f\n", secs)
	if err := r.headBlob(ctx, *repo, b); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	fmt.Println("verified 1 blob by HEAD")
	return nil
}

// ---------------------------------------------------------------- rate ----

func keygen(args []string) error {
	fs := flag.NewFlagSet("keygen", flag.ExitOnError)
	dir := fs.String("dir", "", "output directory")
	fs.Parse(args)
	if *dir == "" {
		return errors.New("keygen: -dir is required")
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "s3direct bench token issuer"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*dir, "token.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(*dir, "token.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// mintToken: a JWT as distribution's token access controller verifies it
// (registry/auth/token): RS256, kid = JWK thumbprint of the key (a key of
// rootcertbundle), iss/aud = issuer/service, access to repo.
func mintToken(key *rsa.PrivateKey, issuer, service, subject, repo string) (string, error) {
	hdr, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT",
		"kid": token.GetJWKThumbprint(&key.PublicKey)})
	if err != nil {
		return "", err
	}
	var jti [12]byte
	rand.Read(jti[:])
	now := time.Now().Unix()
	claims, err := json.Marshal(token.ClaimSet{
		Issuer: issuer, Subject: subject, Audience: token.AudienceList{service},
		Expiration: now + 3600, NotBefore: now - 60, IssuedAt: now, JWTID: hex.EncodeToString(jti[:]),
		Access: []*token.ResourceActions{{Type: "repository", Name: repo, Actions: []string{"pull", "push"}}},
	})
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(hdr) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return input + "." + enc.EncodeToString(sig), nil
}

func readKey(file string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", file)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an RSA key", file)
	}
	return rk, nil
}

func randomDigest() string {
	var b [32]byte
	rand.Read(b[:])
	return "sha256:" + hex.EncodeToString(b[:])
}

func rate(args []string) error {
	fs := flag.NewFlagSet("rate", flag.ExitOnError)
	mode := fs.String("path", "fresh", "fresh (POST + first presign), refresh (presign of open sessions) "+
		"or post (the stock POST alone: the baseline of fresh; its POSTs are counted as the calls)")
	rawURL := fs.String("url", "", "registry base URL")
	repo := fs.String("repo", "bench/rate", "repository")
	clients := fs.Int("clients", 64, "concurrent clients")
	duration := fs.Duration("duration", 10*time.Second, "length of the timed phase")
	maxCalls := fs.Int64("max", 1000000, "presign calls at most")
	pid := fs.Int("pid", 0, "registry process (CPU per call)")
	keyFile := fs.String("token-key", "", "RSA key (keygen's token.key): send Bearer tokens")
	issuer := fs.String("issuer", "s3direct-bench", "token issuer")
	service := fs.String("service", "s3direct-bench", "token service (audience)")
	blobSize := fs.Int64("size", 1<<20, "declared blob size")
	timeout := fs.Duration("timeout", 10*time.Minute, "bound of the whole command")
	fs.Parse(args)
	if *mode != "fresh" && *mode != "refresh" && *mode != "post" {
		return fmt.Errorf("rate: bad -path %q", *mode)
	}
	if *clients < 1 || *maxCalls < 1 {
		return errors.New("rate: -clients and -max must be positive")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	u, err := benchkit.ParseURL(*rawURL, "-url")
	if err != nil {
		return err
	}
	client := benchkit.NewClient(*clients)
	client.Timeout = time.Minute
	var key *rsa.PrivateKey
	if *keyFile != "" {
		if key, err = readKey(*keyFile); err != nil {
			return err
		}
	}
	regs := make([]*reg, *clients)
	for i := range regs {
		regs[i] = &reg{base: u, client: client}
		if key != nil {
			if regs[i].token, err = mintToken(key, *issuer, *service, fmt.Sprintf("bench-client-%d", i), *repo); err != nil {
				return err
			}
		}
	}
	size := strconv.FormatInt(*blobSize, 10)

	// refresh: one open, presigned session per client first (not timed)
	type session struct {
		loc    *url.URL
		digest string
	}
	sessions := make([]session, *clients)
	if *mode == "refresh" {
		err := benchkit.ForEach(*clients, min(*clients, 16), func(i int) error {
			loc, _, err := regs[i].open(ctx, *repo)
			if err != nil {
				return err
			}
			d := randomDigest()
			if _, err := regs[i].presign(ctx, loc, url.Values{"digest": {d}, "size": {size}}); err != nil {
				return err
			}
			sessions[i] = session{loc, d}
			return nil
		})
		if err != nil {
			return fmt.Errorf("opening the sessions: %w", err)
		}
	}

	var (
		calls    atomic.Int64 // presign calls started (bounded by -max)
		done     atomic.Int64
		posts    atomic.Int64
		firstErr atomic.Pointer[error]
		nerr     atomic.Int64
		lat      = make([][]time.Duration, *clients)
	)
	s0 := benchkit.TakeSample(*pid, 0)
	deadline := s0.T.Add(*duration)
	var wg sync.WaitGroup
	for i := range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := regs[i]
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if calls.Add(1) > *maxCalls {
					return
				}
				if *mode == "post" {
					t := time.Now()
					if _, _, err := r.open(ctx, *repo); err != nil {
						nerr.Add(1)
						firstErr.CompareAndSwap(nil, &err)
						return
					}
					lat[i] = append(lat[i], time.Since(t))
					done.Add(1)
					continue
				}
				var loc *url.URL
				d := sessions[i].digest
				if *mode == "fresh" {
					var err error
					if loc, _, err = r.open(ctx, *repo); err != nil {
						nerr.Add(1)
						firstErr.CompareAndSwap(nil, &err)
						return
					}
					posts.Add(1)
					d = randomDigest()
				} else {
					loc = sessions[i].loc
				}
				t := time.Now()
				pr, err := r.presign(ctx, loc, url.Values{"digest": {d}, "size": {size}})
				if err == nil && pr.URL == "" {
					err = errors.New("presign answer without presigned_url")
				}
				if err != nil {
					nerr.Add(1)
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				lat[i] = append(lat[i], time.Since(t))
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	s1 := benchkit.TakeSample(*pid, 0)
	secs := s1.T.Sub(s0.T).Seconds()
	if e := firstErr.Load(); e != nil {
		return fmt.Errorf("%d requests failed; the first: %w", nerr.Load(), *e)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(p*float64(len(all))))].Seconds() * 1000
	}
	n := done.Load()
	fmt.Printf("presigns %d\n", n)
	fmt.Printf("posts %d\n", posts.Load())
	fmt.Printf("seconds %.4f\n", secs)
	fmt.Printf("rate %.1f\n", float64(n)/secs)
	fmt.Printf("requests_per_s %.1f\n", float64(n+posts.Load())/secs)
	fmt.Printf("p50_ms %.2f\n", pct(0.50))
	fmt.Printf("p99_ms %.2f\n", pct(0.99))
	if *pid > 0 && n > 0 {
		fmt.Printf("cpu_s %.2f\n", s1.CPU-s0.CPU)
		fmt.Printf("cpu_ms_per_presign %.3f\n", (s1.CPU-s0.CPU)*1000/float64(n))
	}
	fmt.Printf("client_cpu_s %.2f\n", s1.Self-s0.Self)
	fmt.Printf("machine_busy_s %.2f\n", s1.Busy-s0.Busy)
	fmt.Printf("machine_steal_s %.2f\n", s1.Steal-s0.Steal)
	if n == 0 {
		return errors.New("no presign call completed")
	}
	return nil
}

// --------------------------------------------------------------- clean ----

func clean(args []string) error {
	fs := flag.NewFlagSet("clean", flag.ExitOnError)
	endpoint := fs.String("s3", "", "S3 endpoint")
	bucket := fs.String("bucket", "", "bucket")
	timeout := fs.Duration("timeout", 30*time.Minute, "bound of the whole command")
	fs.Parse(args)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	s, err := newS3(*endpoint, *bucket, benchkit.NewClient(16))
	if err != nil {
		return err
	}
	return s.Clean(ctx)
}

// newS3 is the S3 client of -s3 and -bucket.
func newS3(endpoint, bucket string, client *http.Client) (*benchkit.S3, error) {
	u, err := benchkit.ParseURL(endpoint, "-s3")
	if err != nil {
		return nil, err
	}
	return benchkit.NewS3(u, bucket, client)
}

// ---------------------------------------------------------------- plot ----

// plot reads the data lines bench-presign.sh writes:
//
//	push FLOW CPU_S_PER_GIB|- SECONDS
//	fin MODE SIZE_BYTES SECONDS
//	rate AUTH PATH PER_SECOND
//	target rate PER_SECOND
//
// and writes one SVG: finalize latency against blob size (log-log), the
// registry's CPU seconds per GiB per flow, the end-to-end push time per flow
// (1.1x the ceiling marked) and presign calls per second (target marked).
func plot(args []string) error {
	fs := flag.NewFlagSet("plot", flag.ExitOnError)
	data := fs.String("data", "", "data file")
	out := fs.String("out", "", "SVG file")
	title := fs.String("title", "s3direct presigned uploads", "title")
	fs.Parse(args)
	raw, err := os.ReadFile(*data)
	if err != nil {
		return err
	}
	var cpu, e2e, rates []bar
	fin := map[string][][2]float64{}
	var finModes []string
	rateTarget, ceiling := 0.0, 0.0
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		num := func(i int) (float64, bool) {
			if i >= len(f) {
				return 0, false
			}
			v, err := strconv.ParseFloat(f[i], 64)
			return v, err == nil
		}
		switch f[0] {
		case "push":
			if v, ok := num(2); ok {
				cpu = append(cpu, bar{f[1], v})
			}
			if v, ok := num(3); ok {
				e2e = append(e2e, bar{f[1], v})
				if f[1] == "ceiling" {
					ceiling = v
				}
			}
		case "fin":
			x, ok1 := num(2)
			y, ok2 := num(3)
			if ok1 && ok2 && x > 0 && y > 0 {
				if _, ok := fin[f[1]]; !ok {
					finModes = append(finModes, f[1])
				}
				fin[f[1]] = append(fin[f[1]], [2]float64{x, y})
			}
		case "rate":
			if v, ok := num(3); ok && len(f) >= 4 {
				rates = append(rates, bar{f[1] + ", " + f[2], v})
			}
		case "target":
			if v, ok := num(2); ok && f[1] == "rate" {
				rateTarget = v
			}
		}
	}

	const W = 900
	var s strings.Builder
	y := 50.0 // top of the next panel
	if len(fin) > 0 {
		y = finPanel(&s, y, fin, finModes)
	}
	y = barPanel(&s, y, "Registry CPU-seconds per GiB pushed (median; the target is 2% of proxy)", "CPU-s/GiB", cpu, 0, "")
	y = barPanel(&s, y, "End-to-end push time (median)", "s", e2e, 1.1*ceiling, "1.1x ceiling")
	y = barPanel(&s, y, "Presign calls per second (median; auth, sessions)", "/s", rates, rateTarget, "target")
	H := int(y) + 10
	head := fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H) +
		fmt.Sprintf(`<rect width="%d" height="%d" fill="white"/>`+"\n", W, H) +
		fmt.Sprintf(`<text x="%d" y="28" font-size="17" text-anchor="middle">%s</text>`+"\n", W/2, esc(*title))
	return os.WriteFile(*out, []byte(head+s.String()+"</svg>\n"), 0o644)
}

type bar struct {
	label string
	v     float64
}

var colors = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"}

// finPanel: finalize latency vs size, log-log, one line per mode. Returns
// the y below it.
func finPanel(s *strings.Builder, top float64, fin map[string][][2]float64, modes []string) float64 {
	x0, y0, pw, ph := 90.0, top+30, 560.0, 240.0
	fmt.Fprintf(s, `<text x="%g" y="%g" font-size="14">Finalize latency vs blob size (median)</text>`+"\n", x0, y0-12)
	var xs, ys []float64
	for _, m := range modes {
		for _, p := range fin[m] {
			xs = append(xs, p[0])
			ys = append(ys, p[1])
		}
	}
	// x: powers of two around the sizes, half a step of margin
	e0, e1 := math.Floor(math.Log2(minOf(xs))), math.Ceil(math.Log2(maxOf(xs)))
	if e1 <= e0 {
		e1 = e0 + 1
	}
	lx0, lx1 := (e0-0.5)*math.Log10(2), (e1+0.5)*math.Log10(2)
	ly0, ly1 := decades(ys)
	px := func(v float64) float64 { return x0 + (math.Log10(v)-lx0)/(lx1-lx0)*pw }
	py := func(v float64) float64 { return y0 + ph - (math.Log10(v)-ly0)/(ly1-ly0)*ph }
	fmt.Fprintf(s, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#444"/>`+"\n", x0, y0, pw, ph)
	n := int(e1-e0) + 1
	step := (n + 5) / 6
	for e := int(e0); e <= int(e1); e++ {
		x := px(math.Exp2(float64(e)))
		stroke := "#eee"
		if (e-int(e0))%step == 0 {
			stroke = "#ccc"
			fmt.Fprintf(s, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", x, y0+ph+16, sizeLabel(math.Exp2(float64(e))))
		}
		fmt.Fprintf(s, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="%s"/>`+"\n", x, y0, x, y0+ph, stroke)
	}
	for e := int(ly0); e <= int(ly1); e++ {
		v := math.Pow(10, float64(e))
		fmt.Fprintf(s, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ccc"/>`+"\n", x0, py(v), x0+pw, py(v))
		fmt.Fprintf(s, `<text x="%g" y="%.1f" text-anchor="end">%s</text>`+"\n", x0-6, py(v)+4, secLabel(v))
	}
	fmt.Fprintf(s, `<text x="%g" y="%g" text-anchor="middle">blob size (log)</text>`+"\n", x0+pw/2, y0+ph+34)
	fmt.Fprintf(s, `<text x="%g" y="%g" text-anchor="middle" transform="rotate(-90 %g %g)">finalize PUT ?digest= (log)</text>`+"\n", x0-62, y0+ph/2, x0-62, y0+ph/2)
	for i, m := range modes {
		pts := fin[m]
		sort.Slice(pts, func(a, b int) bool { return pts[a][0] < pts[b][0] })
		c := colors[i%len(colors)]
		var poly []string
		for _, p := range pts {
			poly = append(poly, fmt.Sprintf("%.1f,%.1f", px(p[0]), py(p[1])))
		}
		fmt.Fprintf(s, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(poly, " "), c)
		for _, p := range pts {
			fmt.Fprintf(s, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s, %s: %s</title></circle>`+"\n",
				px(p[0]), py(p[1]), c, esc(modeLabel(m)), sizeLabel(p[0]), secLabel(p[1]))
		}
		ly := y0 + 10 + float64(i)*20
		fmt.Fprintf(s, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="3"/>`+"\n", x0+pw+16, ly, x0+pw+40, ly, c)
		fmt.Fprintf(s, `<text x="%g" y="%g">%s</text>`+"\n", x0+pw+46, ly+4, esc(modeLabel(m)))
	}
	return y0 + ph + 60
}

// barPanel: horizontal bars with their values; a dashed line at mark when
// mark > 0. Returns the y below it.
func barPanel(s *strings.Builder, top float64, heading, unit string, bs []bar, mark float64, markLabel string) float64 {
	if len(bs) == 0 {
		return top
	}
	const x0, pw, bh = 260.0, 500.0, 28.0
	y0 := top + 30
	fmt.Fprintf(s, `<text x="20" y="%g" font-size="14">%s</text>`+"\n", y0-12, esc(heading))
	maxV := mark
	for _, b := range bs {
		maxV = max(maxV, b.v)
	}
	if maxV <= 0 {
		maxV = 1
	}
	for i, b := range bs {
		y := y0 + float64(i)*bh
		w := max(b.v/maxV*pw, 0.5)
		fmt.Fprintf(s, `<text x="%g" y="%.1f" text-anchor="end">%s</text>`+"\n", x0-8, y+bh*0.6, esc(b.label))
		fmt.Fprintf(s, `<rect x="%g" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x0, y+2, w, bh-6, colors[i%len(colors)])
		fmt.Fprintf(s, `<text x="%.1f" y="%.1f">%s %s</text>`+"\n", x0+w+6, y+bh*0.6, fmtNum(b.v), esc(unit))
	}
	yb := y0 + float64(len(bs))*bh
	if mark > 0 {
		x := x0 + mark/maxV*pw
		fmt.Fprintf(s, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%.1f" stroke="#000" stroke-dasharray="5,4"/>`+"\n", x, y0, x, yb)
		fmt.Fprintf(s, `<text x="%.1f" y="%.1f" text-anchor="middle">%s %s</text>`+"\n", x, yb+14, esc(markLabel), fmtNum(mark))
	}
	return yb + 40
}

func modeLabel(m string) string {
	switch m {
	case "declared":
		return "declared digest (S3 checksum)"
	case "stream":
		return "no digest (streaming hash)"
	case "stock":
		return "stock finalize (bytes put in S3)"
	case "stock-patch":
		return "stock finalize (bytes PATCHed)"
	}
	return m
}

func minOf(vs []float64) float64 {
	m := vs[0]
	for _, v := range vs {
		m = min(m, v)
	}
	return m
}

func maxOf(vs []float64) float64 {
	m := vs[0]
	for _, v := range vs {
		m = max(m, v)
	}
	return m
}

// decades: the log10 range covering vs (whole decades, at least one).
func decades(vs []float64) (float64, float64) {
	l0 := math.Floor(math.Log10(minOf(vs)))
	l1 := math.Ceil(math.Log10(maxOf(vs)))
	if l1 <= l0 {
		l1 = l0 + 1
	}
	return l0, l1
}

func sizeLabel(v float64) string {
	switch {
	case v >= 1<<30:
		return fmtNum(v/(1<<30)) + " GiB"
	case v >= 1<<20:
		return fmtNum(v/(1<<20)) + " MiB"
	case v >= 1<<10:
		return fmtNum(v/(1<<10)) + " KiB"
	}
	return fmtNum(v) + " B"
}

func secLabel(v float64) string {
	switch {
	case v >= 1:
		return fmtNum(v) + " s"
	case v >= 1e-3:
		return fmtNum(v*1e3) + " ms"
	}
	return fmtNum(v*1e6) + " µs"
}

func fmtNum(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return trimZeros(strconv.FormatFloat(v, 'f', 1, 64))
	case v >= 0.1:
		return trimZeros(strconv.FormatFloat(v, 'f', 2, 64))
	}
	return strconv.FormatFloat(v, 'g', 2, 64)
}

func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func esc(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
