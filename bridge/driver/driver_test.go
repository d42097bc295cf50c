package s3direct

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	"github.com/distribution/distribution/v3/registry/storage/driver/testsuites"
)

// The live tests run against the S3 server tests/with-s3.sh starts (make
// test). Without it they fail: a driver that was never exercised must not
// pass.
var testEnvNames = []string{"S3D_TEST_ENDPOINT", "S3D_TEST_ACCESS_KEY", "S3D_TEST_SECRET_KEY", "S3D_TEST_REGION"}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var (
	bucketOnce sync.Once
	bucketName string
	bucketErr  error
)

// liveParams: parameters for the test server, in a bucket made fresh for
// this test process, under a random rootdirectory.
func liveParams(t testing.TB) map[string]any {
	t.Helper()
	var missing []string
	for _, n := range testEnvNames {
		if os.Getenv(n) == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("live S3 tests need %s: run them with `make test` or `tests/with-s3.sh go test ./bridge/driver/`", strings.Join(missing, ", "))
	}
	p := map[string]any{
		"regionendpoint": os.Getenv("S3D_TEST_ENDPOINT"),
		"region":         os.Getenv("S3D_TEST_REGION"),
		"accesskey":      os.Getenv("S3D_TEST_ACCESS_KEY"),
		"secretkey":      os.Getenv("S3D_TEST_SECRET_KEY"),
		"forcepathstyle": true,
	}
	bucketOnce.Do(func() {
		bucketName = "s3direct-go-" + randHex(6)
		bp := clone(p)
		bp["bucket"] = bucketName
		bucketErr = createBucket(bp)
	})
	if bucketErr != nil {
		t.Fatalf("creating the test bucket: %v", bucketErr)
	}
	p["bucket"] = bucketName
	p["rootdirectory"] = "/" + t.Name() + "-" + randHex(4)
	return p
}

func clone(p map[string]any) map[string]any {
	c := make(map[string]any, len(p))
	for k, v := range p {
		c[k] = v
	}
	return c
}

func newLiveDriver(t testing.TB, extra map[string]any) *Driver {
	t.Helper()
	p := liveParams(t)
	for k, v := range extra {
		p[k] = v
	}
	d, err := FromParameters(context.Background(), p)
	if err != nil {
		t.Fatalf("FromParameters: %v", err)
	}
	return d
}

// TestDriverSuite is distribution's conformance suite for storage drivers.
// With -short it writes 8 instead of 32 concurrent streams and skips the
// 5 GiB stream.
func TestDriverSuite(t *testing.T) {
	p := liveParams(t)
	testsuites.Driver(t, func() (storagedriver.StorageDriver, error) {
		return FromParameters(context.Background(), p)
	}, false)
}

func TestFactoryRegistered(t *testing.T) {
	p := liveParams(t)
	d, err := factory.Create(context.Background(), "s3direct", p)
	if err != nil {
		t.Fatalf("factory.Create(s3direct): %v", err)
	}
	if d.Name() != "s3direct" {
		t.Fatalf("Name() = %q", d.Name())
	}
}

// TestWalk is s3-aws's TestWalk: order, ErrSkipDir, ErrFilledBuffer, errors,
// start-after hints. One expectation differs on purpose ("start late without
// from"): the engine never reports again a directory that comes before the
// hint (an ancestor of it), as storagedriver.WalkFallback (filesystem,
// inmemory) does; s3-aws reports /folder3 again there. The registry's
// callers (catalog, tags) filter on the hint themselves and accept both.
func TestWalk(t *testing.T) {
	d := newLiveDriver(t, nil)
	ctx := context.Background()
	fileset := []string{
		"/file1",
		"/folder1-suffix/file1",
		"/folder1/file1",
		"/folder2/file1",
		"/folder3/subfolder1/subfolder1/file1",
		"/folder3/subfolder2/subfolder1/file1",
		"/folder4/file1",
	}
	for _, p := range fileset {
		if err := d.PutContent(ctx, p, []byte("content "+p)); err != nil {
			t.Fatalf("PutContent %s: %v", p, err)
		}
	}
	t.Cleanup(func() {
		top, _ := d.List(ctx, "/")
		for _, p := range top {
			if err := d.Delete(ctx, p); err != nil {
				t.Errorf("cleanup %s: %v", p, err)
			}
		}
	})

	noop := func(storagedriver.FileInfo) error { return nil }
	tcs := []struct {
		name     string
		fn       storagedriver.WalkFn
		from     string
		options  []func(*storagedriver.WalkOptions)
		expected []string
		err      bool
	}{
		{name: "walk all", fn: noop, expected: []string{
			"/file1", "/folder1-suffix", "/folder1-suffix/file1", "/folder1", "/folder1/file1",
			"/folder2", "/folder2/file1", "/folder3", "/folder3/subfolder1",
			"/folder3/subfolder1/subfolder1", "/folder3/subfolder1/subfolder1/file1",
			"/folder3/subfolder2", "/folder3/subfolder2/subfolder1",
			"/folder3/subfolder2/subfolder1/file1", "/folder4", "/folder4/file1",
		}},
		{name: "skip directory", fn: func(fi storagedriver.FileInfo) error {
			if fi.Path() == "/folder3" {
				return storagedriver.ErrSkipDir
			}
			if strings.HasPrefix(fi.Path(), "/folder3/") {
				return fmt.Errorf("walked %s below skipped /folder3", fi.Path())
			}
			return nil
		}, expected: []string{
			"/file1", "/folder1-suffix", "/folder1-suffix/file1", "/folder1", "/folder1/file1",
			"/folder2", "/folder2/file1", "/folder3", "/folder4", "/folder4/file1",
		}},
		{name: "start late without from", fn: noop,
			options: []func(*storagedriver.WalkOptions){storagedriver.WithStartAfterHint("/folder3/subfolder1/subfolder1/file1")},
			expected: []string{
				"/folder3/subfolder2", "/folder3/subfolder2/subfolder1",
				"/folder3/subfolder2/subfolder1/file1", "/folder4", "/folder4/file1",
			}},
		{name: "start late with from", fn: noop, from: "/folder3",
			options: []func(*storagedriver.WalkOptions){storagedriver.WithStartAfterHint("/folder3/subfolder1/subfolder1/file1")},
			expected: []string{
				"/folder3/subfolder2", "/folder3/subfolder2/subfolder1", "/folder3/subfolder2/subfolder1/file1",
			}},
		{name: "start after from", fn: noop, from: "/folder1",
			options:  []func(*storagedriver.WalkOptions){storagedriver.WithStartAfterHint("/folder2")},
			expected: nil},
		{name: "start matches from", fn: noop, from: "/folder3",
			options: []func(*storagedriver.WalkOptions){storagedriver.WithStartAfterHint("/folder3")},
			expected: []string{
				"/folder3/subfolder1", "/folder3/subfolder1/subfolder1", "/folder3/subfolder1/subfolder1/file1",
				"/folder3/subfolder2", "/folder3/subfolder2/subfolder1", "/folder3/subfolder2/subfolder1/file1",
			}},
		{name: "start doesn't exist", fn: noop, from: "/folder3",
			options: []func(*storagedriver.WalkOptions){storagedriver.WithStartAfterHint("/folder3/notafolder/notafile")},
			expected: []string{
				"/folder3/subfolder1", "/folder3/subfolder1/subfolder1", "/folder3/subfolder1/subfolder1/file1",
				"/folder3/subfolder2", "/folder3/subfolder2/subfolder1", "/folder3/subfolder2/subfolder1/file1",
			}},
		{name: "stop early", fn: func(fi storagedriver.FileInfo) error {
			if fi.Path() == "/folder1/file1" {
				return storagedriver.ErrFilledBuffer
			}
			return nil
		}, expected: []string{"/file1", "/folder1-suffix", "/folder1-suffix/file1", "/folder1", "/folder1/file1"}},
		{name: "error", fn: func(storagedriver.FileInfo) error { return errors.New("foo") },
			expected: []string{"/file1"}, err: true},
		{name: "from folder", fn: noop, from: "/folder1", expected: []string{"/folder1/file1"}},
		{name: "nonexistent", fn: noop, from: "/nothing-here", expected: nil},
	}
	for _, tc := range tcs {
		t.Run(tc.name, func(t *testing.T) {
			from := tc.from
			if from == "" {
				from = "/"
			}
			var walked []string
			err := d.Walk(ctx, from, func(fi storagedriver.FileInfo) error {
				walked = append(walked, fi.Path())
				if fi.IsDir() && (fi.Size() != 0) {
					return fmt.Errorf("directory %s with size %d", fi.Path(), fi.Size())
				}
				if !fi.IsDir() && fi.Size() != int64(len("content "+fi.Path())) {
					return fmt.Errorf("file %s: size %d", fi.Path(), fi.Size())
				}
				return tc.fn(fi)
			}, tc.options...)
			if tc.err != (err != nil) {
				t.Fatalf("Walk error = %v, want error: %v", err, tc.err)
			}
			if !slices.Equal(walked, tc.expected) {
				t.Fatalf("walked\n  %q\nwant\n  %q", walked, tc.expected)
			}
		})
	}
}

// TestWalkEmptyUploadsDir: purgeuploads splits every walked path into
// directory and file; a key ending in '/' (left by other tools) must not
// come out as a path with an empty last element.
func TestWalkEmptyUploadsDir(t *testing.T) {
	d := newLiveDriver(t, nil)
	root := d.StorageDriver.(*driver).root
	fileset := []string{
		"/docker/registry/v2/blobs/sha256/04/046909",
		"/docker/registry/v2/blobs/sha256/07/071a45",
		"/docker/registry/v2/repositories/testns/testimg/_layers/sha256/2a43dc",
		"/docker/registry/v2/repositories/testns/testimg/_layers/sha256/3ae7e8",
		"/docker/registry/v2/repositories/testns/testimg/_manifests/revisions/sha256/3ae7e8",
		"/docker/registry/v2/repositories/testns/testimg/_uploads/",
	}
	for _, p := range fileset {
		key := root + p
		data := []byte("content " + p)
		if strings.HasSuffix(p, "/") {
			data = nil // a "directory object": S3 servers refuse data in it
		}
		if err := d.putRawObject(key, data); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.deleteRawObject(key) })
	}
	n := 0
	err := d.Walk(context.Background(), "/docker/registry/v2", func(fi storagedriver.FileInfo) error {
		n++
		if _, file := path.Split(fi.Path()); file == "" {
			return fmt.Errorf("walked %q: empty last element", fi.Path())
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	if n == 0 {
		t.Fatal("Walk visited nothing")
	}
}

// TestWriterLifecycle: the FileWriter contract the registry's blob uploads
// rely on, beyond the suite: use after Close/Commit/Cancel fails with
// s3-aws's messages, Cancel removes the upload, append resumes at Size.
func TestWriterLifecycle(t *testing.T) {
	d := newLiveDriver(t, nil)
	ctx := context.Background()
	const p = "/up/data"

	w, err := d.Writer(ctx, p, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("hello ")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil || err.Error() != "already closed" {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("Write after Close succeeded")
	}
	if w.Size() != 6 {
		t.Fatalf("Size after Close = %d", w.Size())
	}

	w, err = d.Writer(ctx, p, true)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != 6 {
		t.Fatalf("append Size = %d, want 6", w.Size())
	}
	if _, err := w.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err == nil || err.Error() != "already committed" {
		t.Fatalf("second Commit: %v", err)
	}
	if err := w.Cancel(ctx); err == nil {
		t.Fatal("Cancel after Commit succeeded")
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close after Commit: %v", err)
	}
	got, err := d.GetContent(ctx, p)
	if err != nil || string(got) != "hello world" {
		t.Fatalf("GetContent = %q, %v", got, err)
	}

	// Cancel: nothing remains, not even for an append.
	w, err = d.Writer(ctx, "/up/cancelled", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := w.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Cancel(ctx); err == nil || err.Error() != "already cancelled" {
		t.Fatalf("second Cancel: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close after Cancel: %v", err)
	}
	if _, err := d.Stat(ctx, "/up/cancelled"); !isNotFound(err) {
		t.Fatalf("Stat after Cancel: %v", err)
	}

	// The tails of unfinished writers stay invisible to List.
	w, err = d.Writer(ctx, "/up/open", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("tail")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	top, err := d.List(ctx, "/")
	if err != nil || !slices.Equal(top, []string{"/up"}) {
		t.Fatalf("List(/) = %q, %v", top, err)
	}
	w, err = d.Writer(ctx, "/up/open", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	if err := d.Delete(ctx, "/up"); err != nil {
		t.Fatal(err)
	}
	if top, err := d.List(ctx, "/"); err != nil || len(top) != 0 {
		t.Fatalf("List(/) after cleanup = %q, %v", top, err)
	}
}

// TestPurgeUploadsLeavesNothing: the stock upload purger (storage.PurgeUploads,
// what storage.maintenance.uploadpurging runs) deletes an abandoned upload's
// directory. The bytes its writer left in S3 (a multipart upload and a tail
// object, which no listing of the directory shows) go too: a later Writer on
// the same path, from another driver instance, starts empty instead of
// bringing the purged bytes back.
func TestPurgeUploadsLeavesNothing(t *testing.T) {
	p := liveParams(t)
	p["chunksize"] = 5 << 20
	d1, err := FromParameters(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := FromParameters(context.Background(), clone(p))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := "/docker/registry/v2/repositories/purge/me/_uploads/" + randHex(16)
	old := time.Now().Add(-48 * time.Hour).UTC().Format(time.RFC3339)
	if err := d1.PutContent(ctx, dir+"/startedat", []byte(old)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{6 << 20, 1 << 20} { // parts and a tail; a tail alone
		data := path.Join(dir, fmt.Sprintf("data-%d", n))
		w, err := d1.Writer(ctx, data, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if w, err = d2.Writer(ctx, data, true); err != nil || w.Size() != int64(n) {
			t.Fatalf("before the purge, Writer(%s, append) = size %d, %v; want %d", data, sizeOf(w), err, n)
		}
		_ = w.Close()
	}

	deleted, errs := storage.PurgeUploads(ctx, d1, time.Now().Add(-time.Hour), true)
	if len(errs) != 0 || len(deleted) != 1 || deleted[0] != dir {
		t.Fatalf("PurgeUploads = %q, %v; want [%s]", deleted, errs, dir)
	}
	for _, n := range []int{6 << 20, 1 << 20} {
		data := path.Join(dir, fmt.Sprintf("data-%d", n))
		w, err := d2.Writer(ctx, data, true)
		if err != nil {
			t.Fatal(err)
		}
		if w.Size() != 0 {
			t.Errorf("after the purge, Writer(%s, append) resumes at %d bytes, want 0", data, w.Size())
		}
		if err := w.Cancel(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d1.Stat(ctx, dir); !isNotFound(err) {
		t.Fatalf("Stat(%s) after the purge: %v", dir, err)
	}
}

func sizeOf(w storagedriver.FileWriter) int64 {
	if w == nil {
		return -1
	}
	return w.Size()
}

func isNotFound(err error) bool {
	var nf storagedriver.PathNotFoundError
	return errors.As(err, &nf)
}

// TestErrorsCarryDetail: a failed call reports the S3 answer (code, HTTP
// status, request id) and names the driver, never the secret.
func TestErrorsCarryDetail(t *testing.T) {
	p := liveParams(t)
	secret := "wrong-" + randHex(16)
	p["secretkey"] = secret
	_, err := FromParameters(context.Background(), p)
	if err == nil {
		t.Fatal("FromParameters with a wrong secret key succeeded")
	}
	msg := err.Error()
	if strings.Contains(msg, secret) || strings.Contains(msg, os.Getenv("S3D_TEST_ACCESS_KEY")) {
		t.Fatalf("error shows a credential: %s", msg)
	}
	if !strings.Contains(msg, "403") {
		t.Fatalf("error lacks the HTTP status: %s", msg)
	}
	t.Logf("wrong secret: %s", msg)

	// A missing bucket is named.
	p = liveParams(t)
	p["bucket"] = "s3direct-missing-" + randHex(6)
	if _, err := FromParameters(context.Background(), p); err == nil || !strings.Contains(err.Error(), p["bucket"].(string)) {
		t.Fatalf("missing bucket: %v", err)
	}

	// Not found is distribution's PathNotFoundError for the path asked.
	d := newLiveDriver(t, nil)
	ctx := context.Background()
	r, err := d.Reader(ctx, "/nothing", 0)
	if !isNotFound(err) || r != nil {
		t.Fatalf("Reader of a missing path = %v, %v", r, err)
	}
	err = d.Move(ctx, "/nothing", "/else")
	var nf storagedriver.PathNotFoundError
	if !errors.As(err, &nf) || nf.Path != "/nothing" || nf.DriverName != "s3direct" {
		t.Fatalf("Move of a missing path = %#v", err)
	}
}

// TestReaderSmallReads: the reader fills caller buffers of any size.
func TestReaderSmallReads(t *testing.T) {
	d := newLiveDriver(t, nil)
	ctx := context.Background()
	data := []byte(strings.Repeat("0123456789", 1000))
	if err := d.PutContent(ctx, "/r", data); err != nil {
		t.Fatal(err)
	}
	defer d.Delete(ctx, "/r")
	for _, size := range []int{1, 7, 4096} {
		rc, err := d.Reader(ctx, "/r", 3)
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		buf := make([]byte, size)
		for {
			n, err := rc.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		rc.Close()
		if string(got) != string(data[3:]) {
			t.Fatalf("read size %d: got %d bytes", size, len(got))
		}
		if _, err := rc.Read(buf); err == nil {
			t.Fatal("Read after Close succeeded")
		}
	}
}

// TestRedirectURLMethods: GET and HEAD are presigned; other methods get no
// redirect (as s3-aws).
func TestRedirectURLMethods(t *testing.T) {
	d := newLiveDriver(t, nil)
	for _, m := range []string{"PUT", "POST", "DELETE", "PATCH"} {
		u, err := d.RedirectURL(httptest.NewRequest(m, "/x", nil), "/x")
		if u != "" || err != nil {
			t.Fatalf("%s: %q, %v", m, u, err)
		}
	}
	u, err := d.RedirectURL(httptest.NewRequest("GET", "/x", nil), "/x")
	if err != nil || !strings.Contains(u, "X-Amz-Signature=") || !strings.Contains(u, "X-Amz-Expires=1200") {
		t.Fatalf("GET: %q, %v", u, err)
	}
}

// ---- parameters ----

// allS3AWSParameters: every parameter s3-aws reads, with values it accepts,
// in the types a YAML configuration produces.
func allS3AWSParameters() map[string]any {
	return map[string]any{
		"accesskey":                   "AKIDEXAMPLE",
		"secretkey":                   "secret",
		"region":                      "us-east-1",
		"regionendpoint":              "http://127.0.0.1:9000",
		"forcepathstyle":              true,
		"bucket":                      "registry",
		"encrypt":                     false,
		"keyid":                       "",
		"secure":                      false,
		"skipverify":                  false,
		"v4auth":                      true,
		"chunksize":                   10485760,
		"multipartcopychunksize":      33554432,
		"multipartcopymaxconcurrency": 100,
		"multipartcopythresholdsize":  33554432,
		"rootdirectory":               "/registry",
		"storageclass":                "STANDARD",
		"useragent":                   "test",
		"usedualstack":                false,
		"accelerate":                  false,
		"usefipsendpoint":             false,
		"objectacl":                   "private",
		"loglevel":                    "debug",
	}
}

func TestParametersAllS3AWSNamesAccepted(t *testing.T) {
	p := allS3AWSParameters()
	if len(p) != 23 {
		t.Fatalf("%d parameters, s3-aws has 23", len(p))
	}
	o, err := parseParameters(p)
	if err != nil {
		t.Fatalf("parseParameters: %v", err)
	}
	if o.endpoint != "http://127.0.0.1:9000" || o.virtualHosted || o.rootDirectory != "registry" ||
		o.storageClass != "STANDARD" || o.objectACL != "" || o.copyConcurrency != maxCopyConcurrency {
		t.Fatalf("parsed: %+v", *o)
	}
	// The same as strings (environment overrides: REGISTRY_STORAGE_S3DIRECT_*).
	for k, v := range p {
		p[k] = fmt.Sprint(v)
	}
	if _, err := parseParameters(p); err != nil {
		t.Fatalf("parseParameters (strings): %v", err)
	}
}

// Live: every s3-aws parameter at once starts a working driver.
func TestParametersAllS3AWSNamesLive(t *testing.T) {
	live := liveParams(t)
	p := allS3AWSParameters()
	for k, v := range live {
		p[k] = v
	}
	p["partsinflight"] = 3
	p["connecttimeout"] = "5s"
	p["maxretries"] = 2
	p["retrydeadline"] = 30
	d, err := FromParameters(context.Background(), p)
	if err != nil {
		t.Fatalf("FromParameters: %v", err)
	}
	ctx := context.Background()
	if err := d.PutContent(ctx, "/x", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "/x"); err != nil {
		t.Fatal(err)
	}
}

func TestParametersDefaults(t *testing.T) {
	o, err := parseParameters(map[string]any{
		"accesskey": "a", "secretkey": "s", "region": "eu-west-1", "bucket": "bkt",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := params{
		accessKey: "a", secretKey: "s", credSource: "parameters", bucket: "bkt", region: "eu-west-1",
		endpoint: "https://s3.eu-west-1.amazonaws.com", virtualHosted: true,
		storageClass: "STANDARD", chunkSize: 10 << 20, copyChunkSize: 32 << 20,
		copyConcurrency: 8, copyThreshold: 32 << 20, partsInFlight: 2, uploadMemory: 20 << 20,
		connectTimeout: 10 * time.Second, maxRetries: 6, retryDeadline: 2 * time.Minute,
		logLevel: "off",
	}
	if *o != want {
		t.Fatalf("defaults\n got %+v\nwant %+v", *o, want)
	}
}

func TestParametersRejected(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{"accesskey": "AKID", "secretkey": "SECRETVALUE", "region": "us-east-1", "bucket": "b"}
	}
	tcs := []struct {
		name  string
		set   map[string]any
		del   []string
		names string // must appear in the error
	}{
		{"no bucket", nil, []string{"bucket"}, "bucket"},
		{"empty bucket", map[string]any{"bucket": ""}, nil, "bucket"},
		{"no region", nil, []string{"region"}, "region"},
		{"bad region", map[string]any{"region": "mars-1"}, nil, "region"},
		{"v4auth false", map[string]any{"v4auth": false}, nil, "v4auth"},
		{"v4auth false string", map[string]any{"v4auth": "false"}, nil, "v4auth"},
		{"v4auth not bool", map[string]any{"v4auth": 1}, nil, "v4auth"},
		{"chunksize too small", map[string]any{"chunksize": 5<<20 - 1}, nil, "chunksize"},
		{"chunksize too big", map[string]any{"chunksize": int64(5<<30 + 1)}, nil, "chunksize"},
		{"chunksize not a number", map[string]any{"chunksize": "10MB"}, nil, "chunksize"},
		{"chunksize fraction", map[string]any{"chunksize": 6291456.5}, nil, "chunksize"},
		{"chunksize bool", map[string]any{"chunksize": true}, nil, "chunksize"},
		{"multipartcopychunksize small", map[string]any{"multipartcopychunksize": 1024}, nil, "multipartcopychunksize"},
		{"multipartcopymaxconcurrency 0", map[string]any{"multipartcopymaxconcurrency": 0}, nil, "multipartcopymaxconcurrency"},
		{"multipartcopythresholdsize negative", map[string]any{"multipartcopythresholdsize": -1}, nil, "multipartcopythresholdsize"},
		{"multipartcopythresholdsize huge", map[string]any{"multipartcopythresholdsize": int64(6 << 30)}, nil, "multipartcopythresholdsize"},
		{"forcepathstyle", map[string]any{"forcepathstyle": "yes"}, nil, "forcepathstyle"},
		{"encrypt", map[string]any{"encrypt": 1}, nil, "encrypt"},
		{"secure", map[string]any{"secure": "maybe"}, nil, "secure"},
		{"skipverify", map[string]any{"skipverify": []string{"x"}}, nil, "skipverify"},
		{"usedualstack", map[string]any{"usedualstack": "on"}, nil, "usedualstack"},
		{"accelerate", map[string]any{"accelerate": 2}, nil, "accelerate"},
		{"usefipsendpoint", map[string]any{"usefipsendpoint": "x"}, nil, "usefipsendpoint"},
		{"storageclass unknown", map[string]any{"storageclass": "GLACIER"}, nil, "storageclass"},
		{"storageclass type", map[string]any{"storageclass": 1}, nil, "storageclass"},
		{"objectacl unknown", map[string]any{"objectacl": "everyone"}, nil, "objectacl"},
		{"objectacl type", map[string]any{"objectacl": true}, nil, "objectacl"},
		{"accesskey without secretkey", map[string]any{"secretkey": ""}, nil, "secretkey"},
		{"secretkey without accesskey", map[string]any{"accesskey": ""}, nil, "accesskey"},
		{"regionendpoint with path", map[string]any{"regionendpoint": "http://h:9000/prefix"}, nil, "regionendpoint"},
		{"regionendpoint bad scheme", map[string]any{"regionendpoint": "ftp://h"}, nil, "regionendpoint"},
		{"accelerate dotted bucket", map[string]any{"accelerate": true, "bucket": "a.b.c"}, nil, "accelerate"},
		{"partsinflight 0", map[string]any{"partsinflight": 0}, nil, "partsinflight"},
		{"partsinflight 65", map[string]any{"partsinflight": 65}, nil, "partsinflight"},
		{"partsinflight text", map[string]any{"partsinflight": "two"}, nil, "partsinflight"},
		{"connecttimeout text", map[string]any{"connecttimeout": "soon"}, nil, "connecttimeout"},
		{"connecttimeout zero", map[string]any{"connecttimeout": 0}, nil, "connecttimeout"},
		{"connecttimeout negative", map[string]any{"connecttimeout": "-1s"}, nil, "connecttimeout"},
		{"maxretries negative", map[string]any{"maxretries": -1}, nil, "maxretries"},
		{"maxretries huge", map[string]any{"maxretries": 1000}, nil, "maxretries"},
		{"retrydeadline type", map[string]any{"retrydeadline": true}, nil, "retrydeadline"},
		{"retrydeadline too short", map[string]any{"retrydeadline": "10ms"}, nil, "retrydeadline"},
		{"unknown parameter", map[string]any{"chunksze": 10 << 20}, nil, "chunksze"},
	}
	for _, tc := range tcs {
		t.Run(tc.name, func(t *testing.T) {
			p := base()
			for k, v := range tc.set {
				p[k] = v
			}
			for _, k := range tc.del {
				delete(p, k)
			}
			_, err := FromParameters(context.Background(), p)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.names) {
				t.Fatalf("error does not name %s: %v", tc.names, err)
			}
			if strings.Contains(err.Error(), "SECRETVALUE") {
				t.Fatalf("error shows the secret key: %v", err)
			}
		})
	}
}

func TestParametersValuesAccepted(t *testing.T) {
	base := map[string]any{"accesskey": "a", "secretkey": "s", "region": "us-east-1", "bucket": "bkt"}
	tcs := []struct {
		set   map[string]any
		check func(*params) bool
	}{
		{map[string]any{"chunksize": "6291456"}, func(o *params) bool { return o.chunkSize == 6291456 }},
		{map[string]any{"chunksize": 6291456.0}, func(o *params) bool { return o.chunkSize == 6291456 }},
		{map[string]any{"chunksize": uint64(5 << 20)}, func(o *params) bool { return o.chunkSize == 5<<20 }},
		{map[string]any{"storageclass": "reduced_redundancy"}, func(o *params) bool { return o.storageClass == "REDUCED_REDUNDANCY" }},
		{map[string]any{"storageclass": "NONE"}, func(o *params) bool { return o.storageClass == "" }},
		{map[string]any{"objectacl": "bucket-owner-full-control"}, func(o *params) bool { return o.objectACL == "bucket-owner-full-control" }},
		{map[string]any{"encrypt": true}, func(o *params) bool { return o.sse == "AES256" && o.sseKMSKeyID == "" }},
		{map[string]any{"encrypt": "true", "keyid": "arn:k"}, func(o *params) bool { return o.sse == "aws:kms" && o.sseKMSKeyID == "arn:k" }},
		{map[string]any{"keyid": "arn:k"}, func(o *params) bool { return o.sse == "" && o.sseKMSKeyID == "" }},
		{map[string]any{"multipartcopythresholdsize": 0}, func(o *params) bool { return o.copyThreshold == 5<<20 }},
		{map[string]any{"multipartcopymaxconcurrency": "3"}, func(o *params) bool { return o.copyConcurrency == 3 }},
		{map[string]any{"loglevel": false}, func(o *params) bool { return o.logLevel == "off" }},
		{map[string]any{"loglevel": "DebugWithSigning"}, func(o *params) bool { return o.logLevel == "debugwithsigning" }},
		{map[string]any{"connecttimeout": "1m30s"}, func(o *params) bool { return o.connectTimeout == 90*time.Second }},
		{map[string]any{"connecttimeout": 3}, func(o *params) bool { return o.connectTimeout == 3*time.Second }},
		{map[string]any{"retrydeadline": "45"}, func(o *params) bool { return o.retryDeadline == 45*time.Second }},
		{map[string]any{"maxretries": 0}, func(o *params) bool { return o.maxRetries == 0 }},
		{map[string]any{"rootdirectory": "/a/b/"}, func(o *params) bool { return o.rootDirectory == "a/b" }},
		{map[string]any{"region": nil, "regionendpoint": "minio:9000"}, func(o *params) bool {
			return o.region == "us-east-1" && o.endpoint == "https://minio:9000" && o.virtualHosted
		}},
		{map[string]any{"regionendpoint": "minio.example.com", "secure": false}, func(o *params) bool {
			return o.endpoint == "http://minio.example.com" && o.virtualHosted
		}},
		{map[string]any{"regionendpoint": "https://minio.example.com", "secure": false, "forcepathstyle": "true"}, func(o *params) bool {
			return o.endpoint == "https://minio.example.com" && !o.virtualHosted
		}},
	}
	for i, tc := range tcs {
		p := clone(base)
		for k, v := range tc.set {
			p[k] = v
		}
		o, err := parseParameters(p)
		if err != nil {
			t.Errorf("%d %v: %v", i, tc.set, err)
			continue
		}
		if !tc.check(o) {
			t.Errorf("%d %v: parsed %+v", i, tc.set, *o)
		}
	}
}

func TestParametersCredentialsFromEnvironment(t *testing.T) {
	p := map[string]any{"region": "us-east-1", "bucket": "b"}
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_ACCESS_KEY", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_SECRET_KEY", "")
	t.Setenv("AWS_SESSION_TOKEN", "")
	if _, err := parseParameters(p); err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Fatalf("no credentials: %v", err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "envak")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "envsk")
	t.Setenv("AWS_SESSION_TOKEN", "envtok")
	o, err := parseParameters(p)
	if err != nil || o.accessKey != "envak" || o.secretKey != "envsk" || o.sessionToken != "envtok" || o.credSource != "environment" {
		t.Fatalf("environment credentials: %+v, %v", o, err)
	}
	// SDK v1 also reads the short names.
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_ACCESS_KEY", "short")
	if o, err := parseParameters(p); err != nil || o.accessKey != "short" {
		t.Fatalf("AWS_ACCESS_KEY: %+v, %v", o, err)
	}
	// Parameters win over the environment; the token goes with env keys only.
	p["accesskey"], p["secretkey"] = "pak", "psk"
	if o, err := parseParameters(p); err != nil || o.accessKey != "pak" || o.sessionToken != "" {
		t.Fatalf("parameters: %+v, %v", o, err)
	}
}

// TestLiveEnvironmentCredentials: a driver with no key parameters signs
// with the environment's.
func TestLiveEnvironmentCredentials(t *testing.T) {
	p := liveParams(t)
	t.Setenv("AWS_ACCESS_KEY_ID", p["accesskey"].(string))
	t.Setenv("AWS_SECRET_ACCESS_KEY", p["secretkey"].(string))
	t.Setenv("AWS_SESSION_TOKEN", "")
	delete(p, "accesskey")
	delete(p, "secretkey")
	d, err := FromParameters(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.List(context.Background(), "/"); err != nil {
		t.Fatal(err)
	}
}

func TestResolveEndpoint(t *testing.T) {
	tcs := []struct {
		spec    endpointSpec
		url     string
		virtual bool
	}{
		{endpointSpec{region: "us-east-1", bucket: "b1b", secure: true}, "https://s3.amazonaws.com", true},
		{endpointSpec{region: "us-west-2", bucket: "b1b", secure: true}, "https://s3.us-west-2.amazonaws.com", true},
		{endpointSpec{region: "us-west-2", bucket: "b1b", secure: false}, "http://s3.us-west-2.amazonaws.com", true},
		{endpointSpec{region: "us-west-2", bucket: "b1b", secure: true, forcePathStyle: true}, "https://s3.us-west-2.amazonaws.com", false},
		{endpointSpec{region: "us-west-2", bucket: "my.bucket", secure: true}, "https://s3.us-west-2.amazonaws.com", false},
		{endpointSpec{region: "us-west-2", bucket: "my.bucket", secure: false}, "http://s3.us-west-2.amazonaws.com", true},
		{endpointSpec{region: "us-west-2", bucket: "b1b", secure: true, dualStack: true}, "https://s3.dualstack.us-west-2.amazonaws.com", true},
		{endpointSpec{region: "us-west-2", bucket: "b1b", secure: true, fips: true}, "https://s3-fips.us-west-2.amazonaws.com", true},
		{endpointSpec{region: "us-west-2", bucket: "b1b", secure: true, accelerate: true}, "https://s3-accelerate.amazonaws.com", true},
		{endpointSpec{region: "us-west-2", bucket: "b1b", secure: true, accelerate: true, forcePathStyle: true}, "https://s3-accelerate.amazonaws.com", true},
		{endpointSpec{region: "us-west-2", bucket: "b1b", secure: true, accelerate: true, dualStack: true}, "https://s3-accelerate.dualstack.amazonaws.com", true},
		{endpointSpec{region: "cn-north-1", bucket: "b1b", secure: true}, "https://s3.cn-north-1.amazonaws.com.cn", true},
		{endpointSpec{regionEndpoint: "http://127.0.0.1:9000", region: "us-east-1", bucket: "registry", forcePathStyle: true}, "http://127.0.0.1:9000", false},
		{endpointSpec{regionEndpoint: "127.0.0.1:9000", region: "us-east-1", bucket: "registry", secure: true, forcePathStyle: true}, "https://127.0.0.1:9000", false},
		{endpointSpec{regionEndpoint: "https://minio.local/", region: "us-east-1", bucket: "registry", dualStack: true, fips: true}, "https://minio.local", true},
	}
	for _, tc := range tcs {
		u, v, err := resolveEndpoint(tc.spec)
		if err != nil || u != tc.url || v != tc.virtual {
			t.Errorf("%+v: got %q virtual=%v err=%v, want %q virtual=%v", tc.spec, u, v, err, tc.url, tc.virtual)
		}
	}
}

// TestRegistryConfigs: the shipped configurations parse as registry
// configurations, and their storage parameters pass our checks (the s3-aws
// one too: the names are the same).
func TestRegistryConfigs(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "envak") // the AWS example has no keys
	t.Setenv("AWS_SECRET_ACCESS_KEY", "envsk")
	for _, tc := range []struct{ file, driver, endpoint string }{
		{"config.yml", "s3direct", "http://127.0.0.1:9000"},
		{"config-s3aws.yml", "s3", "http://127.0.0.1:9000"},
		{"config-aws-example.yml", "s3direct", "https://s3.eu-central-1.amazonaws.com"},
	} {
		f, err := os.Open("../../registry-config/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := configuration.Parse(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if cfg.Storage.Type() != tc.driver {
			t.Fatalf("%s: storage driver %q", tc.file, cfg.Storage.Type())
		}
		o, err := parseParameters(cfg.Storage.Parameters())
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if o.endpoint != tc.endpoint {
			t.Fatalf("%s: endpoint %s", tc.file, o.endpoint)
		}
	}
}

// TestDroppedHandles: readers and writers dropped without Close, and the
// driver with them, are freed by the garbage collector in whatever order
// it picks, without touching freed C memory.
func TestDroppedHandles(t *testing.T) {
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		d := newLiveDriver(t, nil)
		if err := d.PutContent(ctx, "/f", []byte("0123456789")); err != nil {
			t.Fatal(err)
		}
		r, err := d.Reader(ctx, "/f", 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Read(make([]byte, 2)); err != nil {
			t.Fatal(err)
		}
		w, err := d.Writer(ctx, "/w", false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte("abc")); err != nil {
			t.Fatal(err)
		}
		d, r, w = nil, nil, nil
		for j := 0; j < 3; j++ {
			runtime.GC()
			time.Sleep(20 * time.Millisecond)
		}
	}
}
