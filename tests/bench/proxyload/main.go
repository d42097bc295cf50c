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
//	    deletes every object and aborts every multipart upload of the bucket
//	    (16 requests at a time, as presignbench clean: benchkit.S3.Clean).
//
// S3 credentials: S3D_TEST_ACCESS_KEY, S3D_TEST_SECRET_KEY, S3D_TEST_REGION.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"github.com/s3direct/s3direct/tests/bench/internal/benchkit"
)

func main() {
	benchkit.Main("proxyload", "gen|run|clean", map[string]func([]string) error{
		"gen": gen, "run": run, "clean": clean,
	})
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

type runner struct {
	target, mode string
	base         *url.URL // the registry (or the S3 server)
	repo         string
	prefix       string
	chunk        int64
	client       *http.Client
	s3           *benchkit.S3 // target s3
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

	u, err := benchkit.ParseURL(*rawURL, "-url")
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	if *mode != "put" && *mode != "patch" {
		return fmt.Errorf("run: bad -mode %q", *mode)
	}
	if *chunk <= 0 {
		return errors.New("run: -chunk must be positive")
	}
	r := &runner{
		target: *target, mode: *mode, base: u, repo: *repo,
		prefix: *prefix, chunk: *chunk,
		client: benchkit.NewClient(32),
	}
	if r.target == "s3" {
		if r.s3, err = benchkit.NewS3(u, *bucket, r.client); err != nil {
			return fmt.Errorf("run: target s3: %w", err)
		}
	}

	blobs := make([]*benchkit.Blob, *count)
	var total int64
	for i := range blobs {
		if blobs[i], err = benchkit.LoadBlob(fmt.Sprintf("%s-%d", *files, i)); err != nil {
			return err
		}
		total += int64(len(blobs[i].Data))
	}

	if *ready != "" {
		if err := os.WriteFile(*ready, nil, 0o644); err != nil {
			return err
		}
	}
	ctx := context.Background()
	rss0, _ := benchkit.ProcStatusKiB(*pid, "VmRSS")
	s0 := benchkit.TakeSample(*pid, *s3pid)
	var wg sync.WaitGroup
	errs := make([]error, len(blobs))
	for i, b := range blobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r.target == "s3" {
				errs[i] = r.s3.Put(ctx, r.s3Key(i), b.Data, "")
			} else {
				errs[i] = r.push(ctx, b)
			}
		}()
	}
	wg.Wait()
	s1 := benchkit.TakeSample(*pid, *s3pid)
	hwm, _ := benchkit.ProcStatusKiB(*pid, "VmHWM")
	rss, _ := benchkit.ProcStatusKiB(*pid, "VmRSS")
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	secs := s1.T.Sub(s0.T).Seconds()

	fmt.Printf("bytes %d\n", total)
	fmt.Printf("seconds %.4f\n", secs)
	fmt.Printf("mibs %.1f\n", float64(total)/(1<<20)/secs)
	if *pid > 0 {
		fmt.Printf("cpu_s %.2f\n", s1.CPU-s0.CPU)
		fmt.Printf("hwm_kib %d\n", hwm)
		fmt.Printf("rss_start_kib %d\n", rss0)
		fmt.Printf("rss_end_kib %d\n", rss)
	}
	if *s3pid > 0 {
		fmt.Printf("s3_cpu_s %.2f\n", s1.S3CPU-s0.S3CPU)
	}
	fmt.Printf("client_cpu_s %.2f\n", s1.Self-s0.Self)
	// every process on the machine, ours included (other = the rest)
	fmt.Printf("machine_busy_s %.2f\n", s1.Busy-s0.Busy)
	fmt.Printf("machine_steal_s %.2f\n", s1.Steal-s0.Steal)
	if !*verify {
		fmt.Println("verified 0 blobs (-verify=false)")
		return nil
	}

	// Verification (not timed): every blob must be there with its size.
	for i, b := range blobs {
		if err := r.verifyHead(ctx, i, b); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
	}
	req, err := r.blobReq(http.MethodGet, 0, blobs[0])
	if err == nil {
		err = benchkit.CheckGet(ctx, r.client, req, blobs[0])
	}
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}

	fmt.Printf("verified %d blobs by HEAD, 1 by GET and SHA-256\n", len(blobs))
	return nil
}

func (r *runner) s3Key(i int) string { return fmt.Sprintf("%s/%d", r.prefix, i) }

// push: one blob through the registry's upload API.
func (r *runner) push(ctx context.Context, b *benchkit.Blob) error {
	post := benchkit.NewReq(http.MethodPost, r.base.JoinPath("v2", r.repo, "blobs", "uploads"), nil)
	post.URL.Path += "/"
	resp, _, err := benchkit.Do(ctx, r.client, post, http.StatusAccepted)
	if err != nil {
		return err
	}
	loc, err := benchkit.Resolve(r.base, resp.Header.Get("Location"))
	if err != nil {
		return err
	}
	var body []byte
	if r.mode == "put" {
		body = b.Data
	} else if loc, err = benchkit.PatchChunks(ctx, r.client, r.base, loc, b.Data, r.chunk, benchkit.NewReq); err != nil {
		return err
	}
	q := loc.Query()
	q.Set("digest", b.Digest)
	loc.RawQuery = q.Encode()
	put := benchkit.NewReq(http.MethodPut, loc, body)
	put.Header.Set("Content-Type", "application/octet-stream")
	_, _, err = benchkit.Do(ctx, r.client, put, http.StatusCreated)
	return err
}

// blobReq is a HEAD or GET of blob i: of its S3 object (target s3) or of
// the registry's blob.
func (r *runner) blobReq(method string, i int, b *benchkit.Blob) (*http.Request, error) {
	if r.target == "s3" {
		req := benchkit.NewReq(method, r.s3.URL(r.s3Key(i)), nil)
		return req, r.s3.Sign(req)
	}
	return benchkit.NewReq(method, r.base.JoinPath("v2", r.repo, "blobs", b.Digest), nil), nil
}

func (r *runner) verifyHead(ctx context.Context, i int, b *benchkit.Blob) error {
	req, err := r.blobReq(http.MethodHead, i, b)
	if err != nil {
		return err
	}
	resp, _, err := benchkit.Do(ctx, r.client, req, http.StatusOK)
	if err != nil {
		return err
	}
	return benchkit.CheckHead(resp, req.URL.Path, b, r.target != "s3")
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
	s, err := benchkit.NewS3(u, *bucket, benchkit.NewClient(16))
	if err != nil {
		return fmt.Errorf("clean: %w", err)
	}
	return s.Clean(context.Background())
}
