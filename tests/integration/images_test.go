//go:build linux

package integration

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	mtManifest = "application/vnd.oci.image.manifest.v1+json"
	mtIndex    = "application/vnd.oci.image.index.v1+json"
	mtConfig   = "application/vnd.oci.image.config.v1+json"
	mtLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
	refNameKey = "org.opencontainers.image.ref.name"
)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ociImage is a random image written as an OCI image layout (what crane push
// DIR and regctl's ocidir:// read).
type ociImage struct {
	Dir      string // the layout
	Tag      string // its org.opencontainers.image.ref.name
	Manifest descriptor
	Config   descriptor
	Layers   []descriptor
}

// Blobs are every blob of the image: config, layers and manifest.
func (im *ociImage) Blobs() []descriptor {
	return append(append([]descriptor{im.Config}, im.Layers...), im.Manifest)
}

// randReader is a fast, non-cryptographic random stream.
type randReader struct{ r *rand.ChaCha8 }

func newRandReader() *randReader {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(time.Now().UnixNano()))
	copy(seed[8:], randHex(12))
	return &randReader{rand.NewChaCha8(seed)}
}

func (r *randReader) Read(p []byte) (int, error) { return r.r.Read(p) }

// writeRandomFile writes size random bytes to path and returns their digest.
func writeRandomFile(t *testing.T, path string, size int64) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), newRandReader(), size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// writeImage writes an image with one layer per size (a gzipped tar holding
// one file of that many random bytes; gzip level "store", so a layer is
// about its size) into a new OCI layout dir.
func writeImage(t *testing.T, dir, tag string, layerSizes ...int64) *ociImage {
	t.Helper()
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	im := &ociImage{Dir: dir, Tag: tag}
	var diffIDs []string
	for i, size := range layerSizes {
		tmp := filepath.Join(blobs, fmt.Sprintf(".layer-%d", i))
		f, err := os.Create(tmp)
		if err != nil {
			t.Fatal(err)
		}
		dh, uh := sha256.New(), sha256.New()
		cw := &countWriter{w: io.MultiWriter(f, dh)}
		bw := bufio.NewWriterSize(cw, 1<<20)
		gz, _ := gzip.NewWriterLevel(bw, gzip.NoCompression)
		tw := tar.NewWriter(io.MultiWriter(gz, uh))
		hdr := &tar.Header{Name: fmt.Sprintf("layer%d/random.bin", i), Mode: 0o644, Size: size,
			ModTime: time.Unix(1700000000, 0), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(tw, newRandReader(), size); err != nil {
			t.Fatal(err)
		}
		for _, c := range []io.Closer{tw, gz} {
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		hexd := hex.EncodeToString(dh.Sum(nil))
		if err := os.Rename(tmp, filepath.Join(blobs, hexd)); err != nil {
			t.Fatal(err)
		}
		im.Layers = append(im.Layers, descriptor{MediaType: mtLayer, Digest: "sha256:" + hexd, Size: cw.n})
		diffIDs = append(diffIDs, "sha256:"+hex.EncodeToString(uh.Sum(nil)))
	}
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"Labels": map[string]string{"s3direct.test": randHex(8)}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	im.Config = writeBlob(t, blobs, mtConfig, config)
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mtManifest,
		"config":        im.Config,
		"layers":        im.Layers,
	})
	im.Manifest = writeBlob(t, blobs, mtManifest, manifest)
	ref := im.Manifest
	ref.Annotations = map[string]string{refNameKey: tag}
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mtIndex,
		"manifests":     []descriptor{ref},
	})
	for name, content := range map[string][]byte{
		"index.json": index,
		"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return im
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func writeBlob(t *testing.T, blobs, mediaType string, content []byte) descriptor {
	t.Helper()
	sum := sha256.Sum256(content)
	hexd := hex.EncodeToString(sum[:])
	if err := os.WriteFile(filepath.Join(blobs, hexd), content, 0o644); err != nil {
		t.Fatal(err)
	}
	return descriptor{MediaType: mediaType, Digest: "sha256:" + hexd, Size: int64(len(content))}
}

// fileDigest is the sha256 digest of a file.
func fileDigest(t *testing.T, path string) (string, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), n
}

// checkLayout checks that the OCI layout dir (pulled by a client) holds the
// image: its index names im's manifest digest, and every blob of im is
// there, with the right size and content.
func checkLayout(t *testing.T, what, dir string, im *ociImage) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatalf("%s: pulled layout: %v", what, err)
	}
	var index struct{ Manifests []descriptor }
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatalf("%s: pulled index.json: %v", what, err)
	}
	var got []string
	for _, m := range index.Manifests {
		got = append(got, m.Digest)
	}
	if len(got) != 1 || got[0] != im.Manifest.Digest {
		t.Errorf("%s: pulled manifest digest(s) %v, pushed %s", what, got, im.Manifest.Digest)
	}
	for _, d := range im.Blobs() {
		path := filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d.Digest, "sha256:"))
		if _, err := os.Stat(path); err != nil {
			t.Errorf("%s: blob %s (%s) missing from the pulled image: %v", what, d.Digest, d.MediaType, err)
			continue
		}
		got, n := fileDigest(t, path)
		if got != d.Digest || n != d.Size {
			t.Errorf("%s: blob %s (%s, %d bytes) pulled as %d bytes with digest %s", what, d.Digest, d.MediaType, d.Size, n, got)
		}
	}
}

func mib(n float64) int64 { return int64(n * (1 << 20)) }
