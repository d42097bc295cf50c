package benchkit

import (
	"bytes"
	"cmp"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// S3 signs requests (SigV4, UNSIGNED-PAYLOAD) to one bucket of an S3
// server, path style, with the credentials in S3D_TEST_ACCESS_KEY,
// S3D_TEST_SECRET_KEY and S3D_TEST_REGION (default us-east-1).
type S3 struct {
	Base   *url.URL
	Bucket string
	Client *http.Client
	signer *v4.Signer
	creds  aws.Credentials
	region string
}

func NewS3(base *url.URL, bucket string, client *http.Client) (*S3, error) {
	s := &S3{Base: base, Bucket: bucket, Client: client, signer: v4.NewSigner(),
		creds: aws.Credentials{AccessKeyID: os.Getenv("S3D_TEST_ACCESS_KEY"),
			SecretAccessKey: os.Getenv("S3D_TEST_SECRET_KEY")},
		region: cmp.Or(os.Getenv("S3D_TEST_REGION"), "us-east-1")}
	if bucket == "" || s.creds.AccessKeyID == "" {
		return nil, errors.New("S3 needs -bucket and S3D_TEST_ACCESS_KEY/S3D_TEST_SECRET_KEY")
	}
	return s, nil
}

// URL is the URL of key in the bucket.
func (s *S3) URL(key string) *url.URL { return s.Base.JoinPath(s.Bucket, key) }

// Sign signs req as it is (query included), the payload unsigned.
func (s *S3) Sign(req *http.Request) error {
	req.Header.Set("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
	return s.signer.SignHTTP(context.Background(), s.creds, req, "UNSIGNED-PAYLOAD", "s3", s.region, time.Now())
}

// Put is one PUT of data at key; checksum (base64 SHA-256) is sent as
// x-amz-checksum-sha256, and signed, when set.
func (s *S3) Put(ctx context.Context, key string, data []byte, checksum string) error {
	req := NewReq(http.MethodPut, s.URL(key), data)
	if checksum != "" {
		req.Header.Set("x-amz-checksum-sha256", checksum)
	}
	if err := s.Sign(req); err != nil {
		return err
	}
	_, _, err := Do(ctx, s.Client, req, http.StatusOK)
	return err
}

// Head is the size of the object at key.
func (s *S3) Head(ctx context.Context, key string) (int64, error) {
	req := NewReq(http.MethodHead, s.URL(key), nil)
	if err := s.Sign(req); err != nil {
		return 0, err
	}
	resp, _, err := Do(ctx, s.Client, req, http.StatusOK)
	if err != nil {
		return 0, err
	}
	return resp.ContentLength, nil
}

// Multipart uploads data at key: CreateMultipartUpload, the partSize parts
// partconc at a time, CompleteMultipartUpload.
func (s *S3) Multipart(ctx context.Context, key string, data []byte, partSize int64, partconc int) error {
	req := NewReq(http.MethodPost, s.URL(key), nil)
	req.URL.RawQuery = "uploads"
	if err := s.Sign(req); err != nil {
		return err
	}
	_, body, err := Do(ctx, s.Client, req, http.StatusOK)
	if err != nil {
		return err
	}
	var init struct {
		UploadID string `xml:"UploadId"`
	}
	if err := xml.Unmarshal(body, &init); err != nil || init.UploadID == "" {
		return fmt.Errorf("CreateMultipartUpload %s: no upload id in %q", key, body)
	}
	n := int((int64(len(data)) + partSize - 1) / partSize)
	etags := make([]string, n)
	err = ForEach(n, partconc, func(k int) error {
		off := int64(k) * partSize
		end := min(off+partSize, int64(len(data)))
		req := NewReq(http.MethodPut, s.URL(key), data[off:end])
		req.URL.RawQuery = url.Values{"partNumber": {strconv.Itoa(k + 1)}, "uploadId": {init.UploadID}}.Encode()
		if err := s.Sign(req); err != nil {
			return err
		}
		resp, _, err := Do(ctx, s.Client, req, http.StatusOK)
		if err != nil {
			return err
		}
		etags[k] = resp.Header.Get("ETag")
		return nil
	})
	if err != nil {
		return err
	}
	var x bytes.Buffer
	x.WriteString("<CompleteMultipartUpload>")
	for k, e := range etags {
		fmt.Fprintf(&x, "<Part><PartNumber>%d</PartNumber><ETag>", k+1)
		xml.EscapeText(&x, []byte(e))
		x.WriteString("</ETag></Part>")
	}
	x.WriteString("</CompleteMultipartUpload>")
	req = NewReq(http.MethodPost, s.URL(key), x.Bytes())
	req.URL.RawQuery = url.Values{"uploadId": {init.UploadID}}.Encode()
	if err := s.Sign(req); err != nil {
		return err
	}
	_, body, err = Do(ctx, s.Client, req, http.StatusOK)
	if err == nil && bytes.Contains(body, []byte("<Error>")) {
		err = fmt.Errorf("CompleteMultipartUpload %s: %s", key, body)
	}
	return err
}

// Clean aborts every multipart upload and deletes every object of the
// bucket, 16 requests at a time, and prints
// "clean: N objects deleted, M multipart uploads aborted".
func (s *S3) Clean(ctx context.Context) error {
	list := func(q string, out any) error {
		req := NewReq(http.MethodGet, s.Base.JoinPath(s.Bucket), nil)
		req.URL.RawQuery = q
		if err := s.Sign(req); err != nil {
			return err
		}
		_, body, err := Do(ctx, s.Client, req, http.StatusOK)
		if err != nil {
			return err
		}
		return xml.Unmarshal(body, out)
	}
	del := func(key, uploadID string) error {
		req := NewReq(http.MethodDelete, s.URL(key), nil)
		if uploadID != "" {
			req.URL.RawQuery = url.Values{"uploadId": {uploadID}}.Encode()
		}
		if err := s.Sign(req); err != nil {
			return err
		}
		_, _, err := Do(ctx, s.Client, req, http.StatusNoContent)
		return err
	}
	aborted, deleted := 0, 0
	// Multipart uploads first (their parts take memory on the server too).
	// Each round empties a listing page; a page is never empty twice in a
	// row while something is left, so 100,000 rounds bound 100 M entries.
	for round := 0; round < 100000; round++ {
		var res struct {
			Uploads []struct {
				Key      string `xml:"Key"`
				UploadID string `xml:"UploadId"`
			} `xml:"Upload"`
		}
		if err := list("uploads", &res); err != nil {
			return err
		}
		if len(res.Uploads) == 0 {
			break
		}
		err := ForEach(len(res.Uploads), 16, func(k int) error {
			return del(res.Uploads[k].Key, res.Uploads[k].UploadID)
		})
		if err != nil {
			return err
		}
		aborted += len(res.Uploads)
	}
	for round := 0; round < 100000; round++ {
		var res struct {
			Keys []string `xml:"Contents>Key"`
		}
		if err := list("list-type=2&max-keys=1000", &res); err != nil {
			return err
		}
		if len(res.Keys) == 0 {
			break
		}
		if err := ForEach(len(res.Keys), 16, func(k int) error { return del(res.Keys[k], "") }); err != nil {
			return err
		}
		deleted += len(res.Keys)
	}
	fmt.Printf("clean: %d objects deleted, %d multipart uploads aborted\n", deleted, aborted)
	return nil
}

// ForEach runs f(0..n-1), at most conc at a time; the first error stops
// new calls.
func ForEach(n, conc int, f func(k int) error) error {
	if conc < 1 {
		conc = 1
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		next int
		errs []error
	)
	for range min(conc, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if next >= n || len(errs) > 0 {
					mu.Unlock()
					return
				}
				k := next
				next++
				mu.Unlock()
				if err := f(k); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
