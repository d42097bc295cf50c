//go:build linux

package integration

// `s3d sessions` and `s3d gc` against a live registry: sessions opened
// through the HTTP API (docs/api.md), listed from the registry's own
// configuration file, expired and cleaned by gc, with S3 inspected through
// aws-sdk-go to prove nothing is left behind.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The registry, client and S3 helpers are presign_test.go's (psSetup,
// newPsClient, psPutOK, pe.keys, pe.uploads).

const adminSessionTTL = 4 * time.Second

// adminSession is what `s3d sessions --json` prints of one session.
type adminSession struct {
	UUID           string  `json:"uuid"`
	Repository     string  `json:"repository"`
	Status         string  `json:"status"`
	Mode           string  `json:"mode"`
	Created        string  `json:"created"`
	Expires        string  `json:"expires"`
	DeclaredDigest *string `json:"declared_digest"`
	DeclaredSize   *int64  `json:"declared_size"`
	FinalDigest    *string `json:"final_digest"`
	FinalSize      *int64  `json:"final_size"`
	UploadID       *string `json:"upload_id"`
	PastExpiry     bool    `json:"past_expiry"`
	Source         string  `json:"source"`
}

type adminSessions struct {
	Index         string         `json:"index"`
	IndexFound    bool           `json:"index_found"`
	MarkersListed bool           `json:"markers_listed"`
	Sessions      []adminSession `json:"sessions"`
}

type adminGCStats struct {
	Expired        int `json:"expired"`
	AbortedUploads int `json:"aborted_uploads"`
	DeletedObjects int `json:"deleted_objects"`
	Errors         int `json:"errors"`
}

// adminS3d runs build/s3d; the exit code (-1: did not run) and output.
func adminS3d(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return adminS3dEnv(t, nil, args...)
}

// adminS3dEnv is adminS3d with environment variables added.
func adminS3dEnv(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	r := runCmd(context.Background(), 2*time.Minute, "", env, nil, append([]string{buildBin(t, "s3d")}, args...)...)
	t.Logf("ran: %s", r.Line)
	code := 0
	if r.Err != nil {
		if ee, ok := r.Err.(interface{ ExitCode() int }); ok {
			code = ee.ExitCode()
		} else {
			code = -1
		}
	}
	return code, r.Stdout, r.Stderr
}

// adminSessionsJSON runs `s3d sessions --json`: the sessions by uuid.
// Without env the node's index must have been found.
func adminSessionsJSON(t *testing.T, config string, env ...string) map[string]adminSession {
	t.Helper()
	code, out, errOut := adminS3dEnv(t, env, "sessions", "--config", config, "--json")
	if code != 0 {
		t.Fatalf("s3d sessions: exit %d\n  stdout:\n%s\n  stderr:\n%s", code, indent(out), indent(errOut))
	}
	var all adminSessions
	if err := json.Unmarshal([]byte(out), &all); err != nil {
		t.Fatalf("s3d sessions --json: %v\n%s", err, indent(out))
	}
	if (!all.IndexFound && len(env) == 0) || !all.MarkersListed {
		t.Fatalf("s3d sessions: index_found %v, markers_listed %v:\n%s", all.IndexFound, all.MarkersListed, indent(out))
	}
	m := map[string]adminSession{}
	for _, s := range all.Sessions {
		m[s.UUID] = s
	}
	return m
}

func adminGC(t *testing.T, config string) adminGCStats {
	t.Helper()
	code, out, errOut := adminS3d(t, "gc", "--config", config, "--json")
	if code != 0 {
		t.Fatalf("s3d gc: exit %d\n  stdout:\n%s\n  stderr:\n%s", code, indent(out), indent(errOut))
	}
	var st adminGCStats
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("s3d gc --json: %v\n%s", err, indent(out))
	}
	return st
}

func TestAdminSessionsAndGC(t *testing.T) {
	pe := psSetup(t) // a bucket, a root directory, an S3 client
	e, root := pe.e, pe.root
	r := startRegistry(t, "admin", pe.storage(
		fmt.Sprintf("sessionttl: %ds", int(adminSessionTTL/time.Second)), "sweepinterval: 168h"), regOptions{})
	c := newPsClient(r)
	uploads := root + "/_s3direct/uploads/"
	markers := root + "/_s3direct/sessions/"
	repo := "admin/sessions"

	// One single-PUT session and one multipart session, each with bytes
	// in S3 (a temp object; one part of a multipart upload).
	opened := time.Now()
	single := c.open(t, repo)
	p1 := c.mustPresign(t, repo, single, nil)
	if p1.URL == "" {
		t.Fatalf("single presign: no presigned_url")
	}
	psPutOK(t, p1.URL, p1.Headers, bytes.Repeat([]byte("s"), 1000))
	multi := c.open(t, repo)
	p2 := c.mustPresign(t, repo, multi, psQ("parts", "2"))
	lastOpened := time.Now() // each session ends a TTL after its first presign
	if len(p2.Parts) != 2 || p2.Parts[0].Number != 1 {
		t.Fatalf("multipart presign: parts %+v", p2.Parts)
	}
	psPutOK(t, p2.Parts[0].URL, p2.Headers, bytes.Repeat([]byte("m"), 2000))
	if time.Since(opened) >= adminSessionTTL {
		t.Fatalf("opening two sessions took %v, longer than the session TTL %v", time.Since(opened), adminSessionTTL)
	}

	// What S3 holds before gc: the temp object and the upload, the markers.
	if keys := pe.keys(t, uploads); len(keys) != 1 || keys[0] != uploads+single {
		t.Fatalf("objects under %s before gc: %v, want [%s]", uploads, keys, uploads+single)
	}
	// pe.uploads lists "key uploadId"
	if ups := pe.uploads(t, uploads); len(ups) != 1 || !strings.HasPrefix(ups[0], uploads+multi+" ") {
		t.Fatalf("multipart uploads under %s before gc: %v, want [%s]", uploads, ups, uploads+multi)
	}
	if keys := pe.keys(t, markers); len(keys) != 2 {
		t.Fatalf("markers under %s before gc: %v, want 2", markers, keys)
	}

	// s3d sessions from the registry's own configuration file.
	got := adminSessionsJSON(t, r.Config)
	for _, w := range []struct{ uuid, status, mode string }{
		{single, "pending", "single"}, {multi, "uploading", "multipart"},
	} {
		s, ok := got[w.uuid]
		if !ok {
			t.Fatalf("s3d sessions does not list %s: %+v", w.uuid, got)
		}
		if s.Status != w.status || s.Mode != w.mode || s.Repository != repo || s.Source != "index+s3" {
			t.Errorf("session %s: status %q mode %q repository %q source %q, want %q %q %q index+s3",
				w.uuid, s.Status, s.Mode, s.Repository, s.Source, w.status, w.mode, repo)
		}
		if s.DeclaredDigest != nil || s.FinalDigest != nil || s.FinalSize != nil {
			t.Errorf("session %s: digests/sizes %+v, want none", w.uuid, s)
		}
	}
	if s := got[multi]; s.UploadID == nil || *s.UploadID == "" {
		t.Errorf("multipart session without upload id: %+v", s)
	}
	// the text form lists both too
	code, text, errOut := adminS3d(t, "sessions", "--config", r.Config)
	t.Logf("s3d sessions:\n%s", indent(text))
	if code != 0 || !strings.Contains(text, single) || !strings.Contains(text, multi) ||
		!strings.HasPrefix(text, "UUID ") {
		t.Errorf("s3d sessions (text): exit %d\n%s\n%s", code, indent(text), indent(errOut))
	}
	for _, out := range []string{text, errOut} {
		if strings.Contains(out, e.SecretKey) || strings.Contains(out, "X-Amz-Signature") {
			t.Errorf("s3d sessions printed a secret:\n%s", indent(out))
		}
	}

	// Another node's view (no index of its own there: the override names a
	// directory that does not exist, and sessions never creates one): the
	// sessions come from their S3 markers.
	other := adminSessionsJSON(t, r.Config, "REGISTRY_STORAGE_S3DIRECT_SESSIONINDEX="+filepath.Join(t.TempDir(), "idx"))
	if s := other[single]; s.Status != "pending" || s.Mode != "single" || s.Source != "s3" {
		t.Errorf("from the markers, session %s: %+v, want pending single from s3", single, s)
	}
	if s := other[multi]; s.Status != "uploading" || s.Mode != "multipart" || s.Source != "s3" {
		t.Errorf("from the markers, session %s: %+v, want uploading multipart from s3", multi, s)
	}
	// --index-only never opens an index that is not there
	code, _, errOut = adminS3dEnv(t, []string{"REGISTRY_STORAGE_S3DIRECT_SESSIONINDEX=" + filepath.Join(t.TempDir(), "none")},
		"sessions", "--config", r.Config, "--index-only")
	if code != 1 || !strings.Contains(errOut, "(parameter sessionindex): No such file or directory") {
		t.Errorf("sessions --index-only without an index: exit %d\n%s", code, indent(errOut))
	}

	// Past the sessions' end: gc expires both and removes their bytes.
	if wait := time.Until(lastOpened.Add(adminSessionTTL + 1500*time.Millisecond)); wait > 0 {
		time.Sleep(wait)
	}
	st := adminGC(t, r.Config)
	t.Logf("gc: %+v", st)
	if st.Expired != 2 || st.AbortedUploads != 1 || st.DeletedObjects < 3 || st.Errors != 0 {
		t.Errorf("gc: %+v, want expired 2, aborted_uploads 1, deleted_objects >= 3 (temp object, 2 markers), errors 0", st)
	}
	if keys := pe.keys(t, root+"/_s3direct/"); len(keys) != 0 {
		for _, k := range keys {
			if strings.HasPrefix(k, uploads) || strings.HasPrefix(k, markers) {
				t.Errorf("left after gc: %s", k)
			}
		}
	}
	if ups := pe.uploads(t, root+"/"); len(ups) != 0 {
		t.Errorf("multipart uploads left after gc: %v", ups)
	}
	got = adminSessionsJSON(t, r.Config)
	for _, uuid := range []string{single, multi} {
		if s := got[uuid]; s.Status != "expired" || s.PastExpiry || s.Source != "index" {
			t.Errorf("after gc, session %s: %+v, want status expired, source index", uuid, s)
		}
	}
	// A second gc finds nothing; the text form prints the same counts.
	code, text, errOut = adminS3d(t, "gc", "--config", r.Config)
	if code != 0 || strings.TrimSpace(text) != "expired=0 aborted_uploads=0 deleted_objects=0 errors=0 pruned=0" {
		t.Errorf("second gc: exit %d\n  stdout:\n%s\n  stderr:\n%s", code, indent(text), indent(errOut))
	}
}

func TestAdminConfigErrors(t *testing.T) {
	reproHint(t)
	dir := t.TempDir()
	fsConfig := filepath.Join(dir, "filesystem.yml")
	if err := os.WriteFile(fsConfig, []byte(registryConfig(storageFilesystem(dir), 5000, regOptions{Secret: "x"})), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(bad, []byte("version: 0.1\nstorage:\n  s3direct:\n    region: us-east-1\n"+
		"    bucket: b\n    accesskey: a\n    secretkey: TOPSECRET\n    chunksize: 10MB\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.yml")
	for _, c := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"gc", "--config", fsConfig}, 1, []string{fsConfig, "storage driver is filesystem, not s3direct"}},
		{[]string{"sessions", "--config", fsConfig}, 1, []string{"storage driver is filesystem, not s3direct"}},
		{[]string{"gc", "--config", missing}, 1, []string{missing, "No such file or directory"}},
		{[]string{"sessions", "--config", missing, "--json"}, 1, []string{missing, "No such file or directory"}},
		{[]string{"gc", "--config", bad}, 1, []string{bad + ":8: storage.s3direct.chunksize: must be an integer, 10MB invalid"}},
		{[]string{"gc"}, 2, []string{"--config FILE is required", "usage: s3d gc"}},
		{[]string{"sessions", "--config"}, 2, []string{"usage: s3d sessions"}},
		{[]string{"gc", "--config", fsConfig, "extra"}, 2, []string{"unexpected argument: extra"}},
	} {
		code, out, errOut := adminS3d(t, c.args...)
		if code != c.code {
			t.Errorf("s3d %v: exit %d, want %d\n  stdout:\n%s\n  stderr:\n%s", c.args, code, c.code, indent(out), indent(errOut))
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("s3d %v: stderr lacks %q:\n%s", c.args, w, indent(errOut))
			}
		}
		if strings.Contains(out+errOut, "TOPSECRET") {
			t.Errorf("s3d %v printed the secret key", c.args)
		}
		if c.code != 0 && strings.TrimSpace(out) != "" {
			t.Errorf("s3d %v: failed but printed on stdout:\n%s", c.args, indent(out))
		}
	}
}
