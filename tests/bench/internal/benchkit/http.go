package benchkit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// NewClient is an HTTP client for conns concurrent streams to one host: no
// proxy, no compression, large socket buffers.
func NewClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        4 * conns,
		MaxIdleConnsPerHost: 2 * conns,
		DisableCompression:  true,
		WriteBufferSize:     256 << 10,
		ReadBufferSize:      256 << 10,
		IdleConnTimeout:     5 * time.Minute,
	}}
}

// HTTPError is an answer other than the one expected.
type HTTPError struct {
	Method, Path string
	Status, Want int
	Body         string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d, want %d: %s", e.Method, e.Path, e.Status, e.Want, e.Body)
}

// Do sends req and returns the response (body read, at most 1 MiB kept)
// when its status is want.
func Do(ctx context.Context, c *http.Client, req *http.Request, want int) (*http.Response, []byte, error) {
	resp, err := c.Do(req.WithContext(ctx))
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: reading the answer: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode != want {
		return nil, nil, &HTTPError{req.Method, req.URL.Path, resp.StatusCode, want, string(bytes.TrimSpace(body))}
	}
	return resp, body, nil
}

// NewReq is a request with body (retryable: GetBody is set); a PUT, POST or
// PATCH without one sends Content-Length: 0.
func NewReq(method string, u *url.URL, body []byte) *http.Request {
	req, _ := http.NewRequest(method, u.String(), nil)
	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	} else if method == http.MethodPut || method == http.MethodPost || method == http.MethodPatch {
		req.Body = http.NoBody
		req.ContentLength = 0
	}
	return req
}

// ParseURL parses an absolute URL given as the flag what.
func ParseURL(raw, what string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("bad %s %q", what, raw)
	}
	return u, nil
}

// Resolve turns a Location header into an absolute URL.
func Resolve(base *url.URL, loc string) (*url.URL, error) {
	if loc == "" {
		return nil, errors.New("answer without Location")
	}
	u, err := url.Parse(loc)
	if err != nil {
		return nil, err
	}
	return base.ResolveReference(u), nil
}

// PatchChunks sends data to the upload at loc in chunk-byte PATCHes
// (Content-Range, each to the previous answer's Location) made by newReq,
// and returns the last Location: the one to finalize, with the stock
// _state. At most 100,000 PATCHes.
func PatchChunks(ctx context.Context, c *http.Client, base, loc *url.URL, data []byte, chunk int64,
	newReq func(method string, u *url.URL, body []byte) *http.Request) (*url.URL, error) {
	if chunk <= 0 {
		return nil, errors.New("PATCH chunk size must be positive")
	}
	n := int64(len(data))
	for off, calls := int64(0), 0; off < n && calls < 100000; off, calls = off+chunk, calls+1 {
		end := min(off+chunk, n)
		req := newReq(http.MethodPatch, loc, data[off:end])
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", off, end-1))
		resp, _, err := Do(ctx, c, req, http.StatusAccepted)
		if err != nil {
			return nil, fmt.Errorf("chunk at %d: %w", off, err)
		}
		if loc, err = Resolve(base, resp.Header.Get("Location")); err != nil {
			return nil, err
		}
	}
	return loc, nil
}

// CheckHead checks the answer to a HEAD of b at path: its Content-Length
// and, from a registry, its Docker-Content-Digest.
func CheckHead(resp *http.Response, path string, b *Blob, registry bool) error {
	if got := resp.Header.Get("Content-Length"); got != strconv.Itoa(len(b.Data)) {
		return fmt.Errorf("HEAD %s: Content-Length %s, want %d", path, got, len(b.Data))
	}
	if registry {
		if got := resp.Header.Get("Docker-Content-Digest"); got != b.Digest {
			return fmt.Errorf("HEAD %s: Docker-Content-Digest %q, want %s", path, got, b.Digest)
		}
	}
	return nil
}

// CheckGet sends req, a GET of b, and wants 200 with b's bytes (their
// SHA-256).
func CheckGet(ctx context.Context, c *http.Client, req *http.Request, b *Blob) error {
	resp, err := c.Do(req.WithContext(ctx))
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
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); n != int64(len(b.Data)) || got != b.Digest {
		return fmt.Errorf("GET %s: %d bytes %s, want %d bytes %s", req.URL.Path, n, got, len(b.Data), b.Digest)
	}
	return nil
}
