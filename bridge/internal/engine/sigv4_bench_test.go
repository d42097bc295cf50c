package engine

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/encoding/httpbinding"
)

// One presigned UploadPart URL, the registry's hot path, signed by ours and by
// aws-sdk-go-v2 (the baseline). Each iteration does what a caller must per URL:
// describe the request, sign it, get the query string. Reproduce with
//
//	make build && go test -run '^$' -bench '^BenchmarkPresign(Ours|AWS)$' -benchmem ./bridge/internal/engine/
//
// (`make bench-engine` runs it pinned to one core and reports the ratio.)

const (
	benchAccess = "AKIAIOSFODNN7EXAMPLE"
	benchSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	benchHost   = "registry-blobs.s3.eu-west-3.amazonaws.com"
	benchKey    = "/docker/registry/v2/repositories/library/alpine/_uploads/0b0f6d4e-5c1a-4b6e-9f55-3f1c9d2b7a10/data"
	benchUpload = "VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA"
	benchSum    = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="
)

var benchWhen = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

func BenchmarkPresignOurs(b *testing.B) {
	s, err := NewSigner(benchAccess, benchSecret, "", "eu-west-3", "s3")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := SignRequest{
			Method: "PUT", Host: benchHost, Path: benchKey,
			Query:   []KV{{"partNumber", "7"}, {"uploadId", benchUpload}},
			Headers: []KV{{"x-amz-checksum-sha256", benchSum}},
			When:    benchWhen, Expires: 900,
		}
		q, err := s.PresignQuery(&req)
		if err != nil || len(q) == 0 {
			b.Fatal(err)
		}
	}
}

func BenchmarkPresignAWS(b *testing.B) {
	signer := v4.NewSigner(func(o *v4.SignerOptions) {
		o.DisableURIPathEscaping = true
		o.DisableHeaderHoisting = true
	})
	creds := aws.Credentials{AccessKeyID: benchAccess, SecretAccessKey: benchSecret}
	rawPath := httpbinding.EscapePath(benchKey, false)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		u := &url.URL{Scheme: "https", Host: benchHost, Path: benchKey, RawPath: rawPath,
			RawQuery: "partNumber=7&uploadId=" + benchUpload + "&X-Amz-Expires=900"}
		req := &http.Request{Method: "PUT", URL: u, Host: benchHost,
			Header: http.Header{"X-Amz-Checksum-Sha256": {benchSum}}}
		signed, _, err := signer.PresignHTTP(ctx, creds, req, UnsignedPayload, "s3", "eu-west-3", benchWhen)
		if err != nil || len(signed) == 0 {
			b.Fatal(err)
		}
	}
}

// The two benchmarks must sign the same thing.
func TestPresignBenchmarksAgree(t *testing.T) {
	s, err := NewSigner(benchAccess, benchSecret, "", "eu-west-3", "s3")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.Presign(&SignRequest{Method: "PUT", Host: benchHost, Path: benchKey,
		Query:   []KV{{"partNumber", "7"}, {"uploadId", benchUpload}},
		Headers: []KV{{"x-amz-checksum-sha256", benchSum}}, When: benchWhen, Expires: 900})
	if err != nil {
		t.Fatal(err)
	}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true; o.DisableHeaderHoisting = true })
	u := &url.URL{Scheme: "https", Host: benchHost, Path: benchKey, RawPath: httpbinding.EscapePath(benchKey, false),
		RawQuery: "partNumber=7&uploadId=" + benchUpload + "&X-Amz-Expires=900"}
	signed, _, err := signer.PresignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: benchAccess, SecretAccessKey: benchSecret},
		&http.Request{Method: "PUT", URL: u, Host: benchHost, Header: http.Header{"X-Amz-Checksum-Sha256": {benchSum}}},
		UnsignedPayload, "s3", "eu-west-3", benchWhen)
	if err != nil {
		t.Fatal(err)
	}
	pu, _ := url.Parse(signed)
	q, err := s.PresignQuery(&SignRequest{Method: "PUT", Host: benchHost, Path: benchKey,
		Query:   []KV{{"partNumber", "7"}, {"uploadId", benchUpload}},
		Headers: []KV{{"x-amz-checksum-sha256", benchSum}}, When: benchWhen, Expires: 900})
	if err != nil || q != res.Query {
		t.Fatalf("PresignQuery %q (%v) differs from Presign %q", q, err, res.Query)
	}
	if pu.RawQuery != res.Query {
		t.Fatalf("benchmarks sign different things:\naws  %s\nours %s", pu.RawQuery, res.Query)
	}
}
