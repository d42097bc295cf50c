// proxyload: the load generator of tests/bench/bench-proxy.sh.
//
//	proxyload gen   -dir D -name P -count N -size BYTES -seed S
//	    writes D/P-<i>.bin (deterministic pseudo-random bytes) and
//	    D/P-<i>.sha256 (its digest), once per benchmark run.
//	proxyload run   -target registry|s3 -url URL -files D/P -count N
//	                [-mode put|patch] [-chunk BYTES] [-repo NAME]
//	                [-bucket B -prefix K] [-pid PID] [-s3pid PID]
//	                [-verify=false] [-ready FILE]
//	    pushes the N files concurrently, one stream per file:
//	      registry/put:   POST /v2/NAME/blobs/uploads/, PUT ?digest= with the body
//	      registry/patch: POST, PATCH chunks (Content-Range), PUT ?digest=
//	      s3:             one SigV4 PUT per file (UNSIGNED-PAYLOAD), the ceiling
//	    then verifies every blob (HEAD: status, size, digest) and reads the
//	    first one back and hashes it. Prints "key value" lines: bytes,
//	    seconds, the CPU seconds (utime+stime, /proc/PID/stat) of -pid and
//	    -s3pid over the upload phase, -pid's VmRSS before it and VmHWM at its
//	    end (before verification), this process's CPU seconds, the machine's
//	    busy and stolen CPU seconds, and last "verified N blobs ..." (exit
//	    status 1 if a push or a check fails). -verify=false and -ready (a file
//	    created once the data is loaded) are for profiling by hand.
//	proxyload clean -url S3URL -bucket B
//	    deletes every object and aborts every multipart upload of the bucket.
//
// S3 credentials: S3D_TEST_ACCESS_KEY, S3D_TEST_SECRET_KEY, S3D_TEST_REGION.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

func main() {
	if len(os.Args) < 2 {
		fatalf("usage: proxyload gen|run|clean [flags]")
	}
	var err error
	switch os.Args[1] {
	case "gen":
		err = gen(os.Args[2:])
	case "run":
		err = run(os.Args[2:])
	case "clean":
		err = clean(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "proxyload: "+format+"\n", a...)
	os.Exit(1)
}

// ---------------------------------------------------------------- gen ----

func gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	dir := fs.String("dir", "", "output directory")
	name := fs.String("name", "blob", "file name prefix")
	count := fs.Int("count", 1, "number of files")
	size := fs.Int64("size", 0, "bytes per file")
	seed := fs.Uint64("seed", 1, "random seed")
	fs.Parse(args)
	if *dir == "" || *size <= 0 {
		return errors.New("gen: -dir and -size are required")
	}
	var wg sync.WaitGroup
	errs := make([]error, *count)
	for i := 0; i < *count; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = genOne(filepath.Join(*dir, fmt.Sprintf("%s-%d", *name, i)), *size, *seed, uint64(i))
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func genOne(base string, size int64, seed, index uint64) error {
	var key [32]byte
	copy(key[:], fmt.Sprintf("proxyload %d %d", seed, index))
	rng := rand.NewChaCha8(key)
	f, err := os.Create(base + ".bin")
	if err != nil {
		return err
	}
	h := sha256.New()
	buf := make([]byte, 4<<20)
	for left := size; left > 0; {
		n := int64(len(buf))
		if n > left {
			n = left
		}
		rng.Read(buf[:n])
		h.Write(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return err
		}
		left -= n
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.WriteFile(base+".sha256", []byte("sha256:"+hex.EncodeToString(h.Sum(nil))+"\n"), 0o644)
}

// ---------------------------------------------------------------- run ----

type blob struct {
	data   []byte // mmapped, read only
	digest string
	path   string
}

func loadBlob(base string) (*blob, error) {
	d, err := os.ReadFile(base + ".sha256")
	if err != nil {
		return nil, err
	}
	f, err := os.Open(base + ".bin")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(fi.Size()), syscall.PROT_READ, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mmap %s: %w", base, err)
	}
	return &blob{data: data, digest: strings.TrimSpace(string(d)), path: base}, nil
}

type runner struct {
	target, mode   string
	base           *url.URL
	repo           string
	bucket, prefix string
	chunk          int64
	client         *http.Client
	signer         *v4.Signer
	creds          aws.Credentials
	region         string
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	target := fs.String("target", "registry", "registry or s3")
	rawURL := fs.String("url", "", "registry or S3 base URL")
	files := fs.String("files", "", "file prefix: PREFIX-<i>.bin / .sha256")
	count := fs.Int("count", 1, "number of files (pushed concurrently)")
	mode := fs.String("mode", "put", "registry: put (monolithic) or patch (chunked)")
	chunk := fs.Int64("chunk", 8<<20, "PATCH chunk size")
	repo := fs.String("repo", "bench/proxy", "registry repository")
	bucket := fs.String("bucket", "", "S3 bucket (target s3)")
	prefix := fs.String("prefix", "ceiling", "S3 key prefix (target s3)")
	pid := fs.Int("pid", 0, "registry process: CPU and VmHWM are reported")
	s3pid := fs.Int("s3pid", 0, "S3 server process: CPU is reported")
	verify := fs.Bool("verify", true, "check every blob after the upload (false: for profiling only)")
	ready := fs.String("ready", "", "create this file when the data is loaded, before the uploads start (for profiling)")
	fs.Parse(args)

	u, err := url.Parse(*rawURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("run: bad -url %q", *rawURL)
	}
	if *mode != "put" && *mode != "patch" {
		return fmt.Errorf("run: bad -mode %q", *mode)
	}
	r := &runner{
		target: *target, mode: *mode, base: u, repo: *repo,
		bucket: *bucket, prefix: *prefix, chunk: *chunk,
		client: &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConnsPerHost: 64,
			DisableCompression:  true,
			WriteBufferSize:     256 << 10,
			ReadBufferSize:      256 << 10,
		}},
	}
	if r.target == "s3" {
		r.signer = v4.NewSigner()
		r.creds = aws.Credentials{
			AccessKeyID:     os.Getenv("S3D_TEST_ACCESS_KEY"),
			SecretAccessKey: os.Getenv("S3D_TEST_SECRET_KEY"),
		}
		r.region = os.Getenv("S3D_TEST_REGION")
		if r.region == "" {
			r.region = "us-east-1"
		}
		if r.bucket == "" || r.creds.AccessKeyID == "" {
			return errors.New("run: target s3 needs -bucket and S3D_TEST_ACCESS_KEY/S3D_TEST_SECRET_KEY")
		}
	}

	blobs := make([]*blob, *count)
	var total int64
	for i := range blobs {
		if blobs[i], err = loadBlob(fmt.Sprintf("%s-%d", *files, i)); err != nil {
			return err
		}
		total += int64(len(blobs[i].data))
	}

	if *ready != "" {
		if err := os.WriteFile(*ready, nil, 0o644); err != nil {
			return err
		}
	}
	rss0, _ := procStatusKiB(*pid, "VmRSS")
	cpu0, _ := cpuSeconds(*pid)
	self0 := selfCPU()
	busy0, steal0 := machineSeconds()
	s3cpu0, _ := cpuSeconds(*s3pid)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(blobs))
	for i, b := range blobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r.target == "s3" {
				errs[i] = r.s3Put(r.s3Key(i), b)
			} else {
				errs[i] = r.push(b)
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	cpu1, _ := cpuSeconds(*pid)
	s3cpu1, _ := cpuSeconds(*s3pid)
	self1 := selfCPU()
	busy1, steal1 := machineSeconds()
	hwm, _ := procStatusKiB(*pid, "VmHWM")
	rss, _ := procStatusKiB(*pid, "VmRSS")
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("upload: %w", err)
	}

	fmt.Printf("bytes %d\n", total)
	fmt.Printf("seconds %.4f\n", secs)
	fmt.Printf("mibs %.1f\n", float64(total)/(1<<20)/secs)
	if *pid > 0 {
		fmt.Printf("cpu_s %.2f\n", cpu1-cpu0)
		fmt.Printf("hwm_kib %d\n", hwm)
		fmt.Printf("rss_start_kib %d\n", rss0)
		fmt.Printf("rss_end_kib %d\n", rss)
	}
	if *s3pid > 0 {
		fmt.Printf("s3_cpu_s %.2f\n", s3cpu1-s3cpu0)
	}
	fmt.Printf("client_cpu_s %.2f\n", self1-self0)
	// every process on the machine, ours included (other = the rest)
	fmt.Printf("machine_busy_s %.2f\n", busy1-busy0)
	fmt.Printf("machine_steal_s %.2f\n", steal1-steal0)
	if !*verify {
		fmt.Println("verified 0 blobs (-verify=false)")
		return nil
	}

	// Verification (not timed): every blob must be there with its size.
	for i, b := range blobs {
		if err := r.verifyHead(i, b); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
	}
	if err := r.verifyGet(0, blobs[0]); err != nil {
		return fmt.Errorf("verify: %w", err)
	}

	fmt.Printf("verified %d blobs by HEAD, 1 by GET and SHA-256\n", len(blobs))
	return nil
}

func (r *runner) s3Key(i int) string { return fmt.Sprintf("%s/%d", r.prefix, i) }

// resolve turns a Location header into an absolute URL.
func (r *runner) resolve(loc string) (*url.URL, error) {
	if loc == "" {
		return nil, errors.New("response without Location")
	}
	u, err := url.Parse(loc)
	if err != nil {
		return nil, err
	}
	return r.base.ResolveReference(u), nil
}

func (r *runner) do(req *http.Request, want int) (*http.Response, error) {
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: HTTP %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, want, bytes.TrimSpace(msg))
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

func newReq(method string, u *url.URL, body []byte) *http.Request {
	req, _ := http.NewRequest(method, u.String(), nil)
	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	return req
}

// push: one blob through the registry's upload API.
func (r *runner) push(b *blob) error {
	post := newReq("POST", r.base.JoinPath("v2", r.repo, "blobs", "uploads"), nil)
	post.URL.Path += "/"
	resp, err := r.do(post, http.StatusAccepted)
	if err != nil {
		return err
	}
	loc, err := r.resolve(resp.Header.Get("Location"))
	if err != nil {
		return err
	}
	var body []byte
	if r.mode == "put" {
		body = b.data
	} else {
		size := int64(len(b.data))
		for off := int64(0); off < size; off += r.chunk {
			end := min(off+r.chunk, size)
			req := newReq("PATCH", loc, b.data[off:end])
			req.Header.Set("Content-Type", "application/octet-stream")
			req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", off, end-1))
			resp, err := r.do(req, http.StatusAccepted)
			if err != nil {
				return fmt.Errorf("chunk at %d: %w", off, err)
			}
			if loc, err = r.resolve(resp.Header.Get("Location")); err != nil {
				return err
			}
		}
	}
	q := loc.Query()
	q.Set("digest", b.digest)
	loc.RawQuery = q.Encode()
	put := newReq("PUT", loc, body)
	put.Header.Set("Content-Type", "application/octet-stream")
	if body == nil {
		put.ContentLength = 0
		put.Body = http.NoBody
	}
	_, err = r.do(put, http.StatusCreated)
	return err
}

func (r *runner) s3URL(key string) *url.URL {
	return r.base.JoinPath(r.bucket, key)
}

func (r *runner) signS3(req *http.Request) error {
	req.Header.Set("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
	return r.signer.SignHTTP(context.Background(), r.creds, req, "UNSIGNED-PAYLOAD", "s3", r.region, time.Now())
}

func (r *runner) s3Put(key string, b *blob) error {
	req := newReq("PUT", r.s3URL(key), b.data)
	if err := r.signS3(req); err != nil {
		return err
	}
	_, err := r.do(req, http.StatusOK)
	return err
}

func (r *runner) blobURL(b *blob) *url.URL {
	return r.base.JoinPath("v2", r.repo, "blobs", b.digest)
}

func (r *runner) verifyHead(i int, b *blob) error {
	var req *http.Request
	if r.target == "s3" {
		req = newReq("HEAD", r.s3URL(r.s3Key(i)), nil)
		if err := r.signS3(req); err != nil {
			return err
		}
	} else {
		req = newReq("HEAD", r.blobURL(b), nil)
	}
	resp, err := r.do(req, http.StatusOK)
	if err != nil {
		return err
	}
	if got := resp.Header.Get("Content-Length"); got != strconv.Itoa(len(b.data)) {
		return fmt.Errorf("HEAD %s: Content-Length %s, want %d", req.URL.Path, got, len(b.data))
	}
	if r.target != "s3" {
		if got := resp.Header.Get("Docker-Content-Digest"); got != b.digest {
			return fmt.Errorf("HEAD %s: Docker-Content-Digest %q, want %s", req.URL.Path, got, b.digest)
		}
	}
	return nil
}

func (r *runner) verifyGet(i int, b *blob) error {
	var req *http.Request
	if r.target == "s3" {
		req = newReq("GET", r.s3URL(r.s3Key(i)), nil)
		if err := r.signS3(req); err != nil {
			return err
		}
	} else {
		req = newReq("GET", r.blobURL(b), nil)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", req.URL.Path, resp.StatusCode)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: %w", req.URL.Path, err)
	}
	got := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if n != int64(len(b.data)) || got != b.digest {
		return fmt.Errorf("GET %s: %d bytes %s, want %d bytes %s", req.URL.Path, n, got, len(b.data), b.digest)
	}
	return nil
}

// cpuSeconds: utime + stime of a process (all its threads), USER_HZ = 100.
func cpuSeconds(pid int) (float64, error) {
	if pid <= 0 {
		return 0, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return float64(ut+st) / 100, nil
}

// selfCPU: this process's user + system CPU seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// machineSeconds: CPU seconds the whole machine (all cores) spent busy
// (user, nice, system, irq, softirq) and stolen by the hypervisor, from the
// first line of /proc/stat (USER_HZ = 100).
func machineSeconds() (busy, steal float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)[1:]
	var v [8]uint64
	for i := range v {
		if i < len(f) {
			v[i], _ = strconv.ParseUint(f[i], 10, 64)
		}
	}
	// user nice system idle iowait irq softirq steal (guest is in user)
	return float64(v[0]+v[1]+v[2]+v[5]+v[6]) / 100, float64(v[7]) / 100
}

func procStatusKiB(pid int, field string) (int64, error) {
	if pid <= 0 {
		return 0, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// -------------------------------------------------------------- clean ----

func clean(args []string) error {
	fs := flag.NewFlagSet("clean", flag.ExitOnError)
	rawURL := fs.String("url", "", "S3 base URL")
	bucket := fs.String("bucket", "", "bucket")
	fs.Parse(args)
	u, err := url.Parse(*rawURL)
	if err != nil || u.Host == "" || *bucket == "" {
		return errors.New("clean: -url and -bucket are required")
	}
	r := &runner{target: "s3", base: u, bucket: *bucket, client: http.DefaultClient, signer: v4.NewSigner(),
		creds:  aws.Credentials{AccessKeyID: os.Getenv("S3D_TEST_ACCESS_KEY"), SecretAccessKey: os.Getenv("S3D_TEST_SECRET_KEY")},
		region: cmpOr(os.Getenv("S3D_TEST_REGION"), "us-east-1")}

	// Multipart uploads first (their parts take memory on the server too).
	aborted := 0
	for {
		var res struct {
			Uploads []struct {
				Key      string `xml:"Key"`
				UploadID string `xml:"UploadId"`
			} `xml:"Upload"`
		}
		if err := r.s3XML(r.base.JoinPath(r.bucket), url.Values{"uploads": {""}}, &res); err != nil {
			return err
		}
		if len(res.Uploads) == 0 {
			break
		}
		for _, up := range res.Uploads {
			req := newReq("DELETE", r.s3URL(up.Key), nil)
			req.URL.RawQuery = url.Values{"uploadId": {up.UploadID}}.Encode()
			if err := r.signS3(req); err != nil {
				return err
			}
			if _, err := r.do(req, http.StatusNoContent); err != nil {
				return err
			}
			aborted++
		}
	}
	deleted := 0
	for {
		var res struct {
			Keys []string `xml:"Contents>Key"`
		}
		if err := r.s3XML(r.base.JoinPath(r.bucket), url.Values{"list-type": {"2"}, "max-keys": {"1000"}}, &res); err != nil {
			return err
		}
		if len(res.Keys) == 0 {
			break
		}
		for _, k := range res.Keys {
			req := newReq("DELETE", r.s3URL(k), nil)
			if err := r.signS3(req); err != nil {
				return err
			}
			if _, err := r.do(req, http.StatusNoContent); err != nil {
				return err
			}
			deleted++
		}
	}
	fmt.Printf("clean: %d objects deleted, %d multipart uploads aborted\n", deleted, aborted)
	return nil
}

func (r *runner) s3XML(u *url.URL, q url.Values, out any) error {
	req := newReq("GET", u, nil)
	req.URL.RawQuery = strings.ReplaceAll(q.Encode(), "uploads=", "uploads")
	if err := r.signS3(req); err != nil {
		return err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s?%s: HTTP %d: %s", u.Path, req.URL.RawQuery, resp.StatusCode, bytes.TrimSpace(b))
	}
	return xml.Unmarshal(b, out)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
