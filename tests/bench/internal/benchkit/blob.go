package benchkit

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// Blob is one file of `proxyload gen`: BASE.bin (mapped read only) and the
// digest in BASE.sha256.
type Blob struct {
	Data   []byte // mmapped, read only
	Digest string // sha256:<hex>
}

// LoadBlob maps BASE.bin (populated: no page faults while it is sent) and
// reads BASE.sha256.
func LoadBlob(base string) (*Blob, error) {
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
	if fi.Size() == 0 {
		return nil, fmt.Errorf("%s.bin is empty", base)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(fi.Size()), syscall.PROT_READ, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mmap %s: %w", base, err)
	}
	return &Blob{Data: data, Digest: strings.TrimSpace(string(d))}, nil
}

// ChecksumB64 is the x-amz-checksum-sha256 value of the blob's digest.
func (b *Blob) ChecksumB64() (string, error) {
	raw, err := hex.DecodeString(strings.TrimPrefix(b.Digest, "sha256:"))
	if err != nil || len(raw) != 32 {
		return "", fmt.Errorf("bad digest %q", b.Digest)
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}
