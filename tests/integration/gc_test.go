//go:build linux

package integration

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGarbageCollect runs the stock `registry garbage-collect` (the same
// build/registry binary, the registry's own configuration) over s3direct
// storage, as operators do: two images pushed with crane, the manifest of
// one deleted through the API, the registry stopped. A dry run deletes
// nothing; the real run deletes from S3 exactly the blobs that only the
// deleted image referenced (its manifest, config and layers); every blob of the other image stays, and the restarted
// registry still serves it whole (crane validate --remote, crane pull). A
// second run finds nothing left to delete.
func TestGarbageCollect(t *testing.T) {
	pe := psSetup(t)
	env := clientEnv(t)
	dir := t.TempDir()
	// layers over the default 10 MiB chunksize go up as multipart uploads
	keep := writeImage(t, filepath.Join(dir, "keep"), "keep", 1024, mib(11))
	drop := writeImage(t, filepath.Join(dir, "drop"), "drop", 2048, mib(12))
	r := startRegistry(t, "s3direct-gc", storageS3direct(pe.e, pe.bucket, "/"+pe.root), regOptions{})
	const repo = "gc/app"
	cranePushAndCheck(t, env, keep, r.Addr, repo)
	cranePushAndCheck(t, env, drop, r.Addr, repo)
	mustRun(t, clientTimeout, "", env, nil, toolBin(t, "crane"), "delete", r.Addr+"/"+repo+"@"+drop.Manifest.Digest)
	r.stop(t) // collect with the registry stopped (or read-only), as the docs say

	exists := func(digest string) bool {
		key := pe.blobKey(digest)
		for _, k := range pe.keys(t, key) {
			if k == key {
				return true
			}
		}
		return false
	}
	check := func(when string, dropGone bool) {
		t.Helper()
		for _, b := range keep.Blobs() {
			if !exists(b.Digest) {
				t.Errorf("%s: blob %s of the kept image is gone from S3", when, b.Digest)
			}
		}
		for _, b := range drop.Blobs() {
			if got := exists(b.Digest); got == dropGone {
				t.Errorf("%s: blob %s of the deleted image: in S3 %t, want %t", when, b.Digest, got, !dropGone)
			}
			// nothing else is left in a collected blob's directory
			if d := strings.TrimSuffix(pe.blobKey(b.Digest), "data"); dropGone {
				if left := pe.keys(t, d); len(left) > 0 {
					t.Errorf("%s: %s still holds %q", when, d, left)
				}
			}
		}
	}
	gc := func(args ...string) string {
		argv := append([]string{buildBin(t, "registry"), "garbage-collect"}, args...)
		return mustRun(t, 5*time.Minute, "", nil, nil, append(argv, r.Config)...)
	}

	out := gc("--dry-run")
	for _, b := range drop.Blobs() {
		if !strings.Contains(out, "blob eligible for deletion: "+b.Digest) {
			t.Errorf("garbage-collect --dry-run does not name %s as eligible for deletion:\n%s", b.Digest, indent(clip(out, 4000)))
		}
	}
	check("after the dry run", false)

	out = gc()
	for _, b := range keep.Blobs() {
		if strings.Contains(out, "eligible for deletion: "+b.Digest) {
			t.Errorf("garbage-collect wants to delete %s of the kept image:\n%s", b.Digest, indent(clip(out, 4000)))
		}
	}
	check("after garbage-collect", true)
	if t.Failed() {
		return
	}
	announce(t, "garbage-collect: %d blobs of the deleted image removed from S3, %d of the kept image kept",
		len(drop.Blobs()), len(keep.Blobs()))

	if out = gc(); strings.Contains(out, "blob eligible for deletion") {
		t.Errorf("a second garbage-collect still finds blobs to delete:\n%s", indent(clip(out, 4000)))
	}
	r2 := restartRegistry(t, r)
	craneCheck(t, env, keep, r2.Addr+"/"+repo+":"+keep.Tag)
}
