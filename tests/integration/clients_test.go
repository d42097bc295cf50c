//go:build linux

package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const clientTimeout = 5 * time.Minute

// clientEnv gives the clients a private HOME (runCmd drops DOCKER_CONFIG,
// REGCTL_CONFIG and XDG_CONFIG_HOME): their configs and credentials go to
// $HOME/.docker and $HOME/.regctl, nothing of the user's is read or written.
func clientEnv(t *testing.T) []string {
	t.Helper()
	home := filepath.Join(t.TempDir(), "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	return []string{"HOME=" + home}
}

// regctlSetChunked configures host for plain HTTP and chunked blob uploads
// of chunk bytes each (every blob over one byte goes in PATCHes).
func regctlSetChunked(t *testing.T, env []string, host string, chunk int64) {
	t.Helper()
	mustRun(t, time.Minute, "", env, nil, toolBin(t, "regctl"), "registry", "set", host,
		"--tls", "disabled", "--blob-chunk", itoa(chunk), "--blob-max", "1")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// cranePushAndCheck pushes the layout with crane push, then checks it on
// every host with crane digest, crane validate --remote and crane pull.
func cranePushAndCheck(t *testing.T, env []string, im *ociImage, pushHost, repo string, checkHosts ...string) {
	t.Helper()
	crane := toolBin(t, "crane")
	ref := pushHost + "/" + repo + ":" + im.Tag
	out := mustRun(t, clientTimeout, "", env, nil, crane, "push", im.Dir, ref)
	if want := "@" + im.Manifest.Digest; !strings.Contains(out, want) {
		t.Errorf("crane push %s printed %q, want the digest %s", ref, strings.TrimSpace(out), im.Manifest.Digest)
	}
	for _, host := range append([]string{pushHost}, checkHosts...) {
		craneCheck(t, env, im, host+"/"+repo+":"+im.Tag)
	}
}

// craneCheck pulls ref back with crane and compares it with im.
func craneCheck(t *testing.T, env []string, im *ociImage, ref string) {
	t.Helper()
	crane := toolBin(t, "crane")
	if d := strings.TrimSpace(mustRun(t, clientTimeout, "", env, nil, crane, "digest", ref)); d != im.Manifest.Digest {
		t.Errorf("crane digest %s = %s, pushed %s", ref, d, im.Manifest.Digest)
	}
	mustRun(t, clientTimeout, "", env, nil, crane, "validate", "--remote", ref)
	dir := filepath.Join(t.TempDir(), "pulled")
	mustRun(t, clientTimeout, "", env, nil, crane, "pull", "--format", "oci", ref, dir)
	checkLayout(t, "crane pull "+ref, dir, im)
}

// regctlCheck copies ref into a new OCI layout with regctl and compares it
// with im.
func regctlCheck(t *testing.T, env []string, im *ociImage, ref string) {
	t.Helper()
	regctl := toolBin(t, "regctl")
	if d := strings.TrimSpace(mustRun(t, clientTimeout, "", env, nil, regctl, "image", "digest", ref)); d != im.Manifest.Digest {
		t.Errorf("regctl image digest %s = %s, pushed %s", ref, d, im.Manifest.Digest)
	}
	dir := filepath.Join(t.TempDir(), "regctl-out")
	mustRun(t, clientTimeout, "", env, nil, regctl, "image", "copy", ref, "ocidir://"+dir+":"+im.Tag)
	checkLayout(t, "regctl image copy "+ref, dir, im)
}

// regctlBlobCheck fetches a blob with regctl blob get and compares its
// digest and size.
func regctlBlobCheck(t *testing.T, env []string, repoRef, digest string, size int64) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "blob")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	r := runCmd(t.Context(), clientTimeout, "", env, nil, toolBin(t, "regctl"), "blob", "get", repoRef, digest)
	if r.Err != nil {
		f.Close()
		t.Fatalf("command failed: %v\n  command: %s\n  stderr:\n%s", r.Err, r.Line, indent(clip(r.Stderr, 4000)))
	}
	f.WriteString(r.Stdout)
	f.Close()
	got, n := fileDigest(t, out)
	if got != digest || n != size {
		t.Errorf("regctl blob get %s %s: %d bytes, digest %s; pushed %d bytes\n  command: %s", repoRef, digest, n, got, size, r.Line)
	}
}

// TestClients pushes and pulls with crane, oras and regctl against
// build/registry with s3direct storage.
func TestClients(t *testing.T) {
	reproHint(t)
	e := needS3(t)
	for _, tool := range []string{"crane", "oras", "regctl"} {
		toolBin(t, tool)
	}
	bucket := makeBucket(t, e)
	root := "/clients-" + randHex(4)
	reg := startRegistry(t, "s3direct", storageS3direct(e, bucket, root), regOptions{})
	host := reg.Addr
	env := clientEnv(t)

	t.Run("crane/small", func(t *testing.T) {
		im := writeImage(t, t.TempDir(), "v1", 1024)
		cranePushAndCheck(t, env, im, host, "crane/small")
	})

	var large *ociImage
	t.Run("crane/large", func(t *testing.T) {
		start := time.Now()
		im := writeImage(t, t.TempDir(), "v1", mib(30), mib(30), mib(30), mib(30), mib(30))
		t.Logf("5 x 30 MiB image written in %.1fs", time.Since(start).Seconds())
		cranePushAndCheck(t, env, im, host, "crane/large")
		large = im
	})

	// Blob downloads through presigned URLs (storage.redirect on): a second
	// process on the same bucket and root.
	t.Run("crane/redirect-pull", func(t *testing.T) {
		if large == nil {
			t.Fatal("crane/large failed: nothing to pull")
		}
		redir := startRegistry(t, "s3direct-redirect", storageS3direct(e, bucket, root), regOptions{Redirect: true})
		craneCheck(t, env, large, redir.Addr+"/crane/large:v1")
	})

	t.Run("oras", func(t *testing.T) {
		oras := toolBin(t, "oras")
		src := t.TempDir()
		files := map[string]int64{"artifact.bin": mib(3) + 17, "note.txt": 5}
		want := map[string]string{}
		for name, size := range files {
			want[name] = writeRandomFile(t, filepath.Join(src, name), size)
		}
		ref := host + "/oras/artifact:v1"
		out := mustRun(t, clientTimeout, src, env, nil, oras, "push", "--plain-http", "--no-tty",
			"--artifact-type", "application/vnd.s3direct.test", ref,
			"artifact.bin:application/octet-stream", "note.txt:text/plain")
		pushed := digestLine(out)
		dst := t.TempDir()
		out = mustRun(t, clientTimeout, "", env, nil, oras, "pull", "--plain-http", "--no-tty", "-o", dst, ref)
		if pulled := digestLine(out); pulled == "" || pulled != pushed {
			t.Errorf("oras pull %s: manifest digest %q, oras push printed %q", ref, pulled, pushed)
		}
		for name, d := range want {
			got, n := fileDigest(t, filepath.Join(dst, name))
			if got != d || n != files[name] {
				t.Errorf("oras pull %s: %s is %d bytes with digest %s; pushed %d bytes, %s", ref, name, n, got, files[name], d)
			}
		}
	})

	t.Run("regctl/chunked", func(t *testing.T) {
		// Chunks of 1 MiB + 4 KiB + 1: never aligned with the driver's parts.
		regctlSetChunked(t, env, host, mib(1)+4097)
		regctl := toolBin(t, "regctl")
		// Sizes around the chunk size and the 5 and 10 MiB part sizes.
		im := writeImage(t, t.TempDir(), "v1", mib(12)+12345, mib(5), 1, mib(1)-1)
		patches := countRequests(t, reg, "PATCH", "/v2/regctl/image/")
		mustRun(t, clientTimeout, "", env, nil, regctl, "image", "copy", "ocidir://"+im.Dir+":"+im.Tag, host+"/regctl/image:v1")
		patches = countRequests(t, reg, "PATCH", "/v2/regctl/image/") - patches
		if patches < 17 {
			t.Errorf("regctl image copy sent %d PATCH requests, want >= 17 (1 MiB chunks): was it chunked?", patches)
		}
		t.Logf("regctl image copy: %d PATCH requests", patches)
		regctlCheck(t, env, im, host+"/regctl/image:v1")
		craneCheck(t, env, im, host+"/regctl/image:v1")

		// A bare blob, 23 MiB + 3 bytes (over two 10 MiB parts), in about
		// 1 MiB PATCHes.
		blob := filepath.Join(t.TempDir(), "blob")
		size := mib(23) + 3
		d := writeRandomFile(t, blob, size)
		f, err := os.Open(blob)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		out := mustRun(t, clientTimeout, "", env, f, regctl, "blob", "put", "--digest", d, host+"/regctl/blob")
		if got := strings.TrimSpace(out); got != d {
			t.Errorf("regctl blob put printed %q, want %s", got, d)
		}
		regctlBlobCheck(t, env, host+"/regctl/blob", d, size)
	})
}

// digestLine returns the sha256 digest on oras's "Digest: " line.
func digestLine(out string) string {
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "Digest: "); ok {
			return strings.TrimSpace(rest)
		}
	}
	return ""
}
