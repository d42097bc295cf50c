package engine

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Hostile inputs first: every one must come back as an *Error, never a
// truncated string signed as if it were whole.
func TestSignerHostile(t *testing.T) {
	if _, err := NewSigner("AK\x00ID", "secret", "", "us-east-1", "s3"); !isInval(err) {
		t.Errorf("NUL in access key: got %v, want S3D_E_INVAL", err)
	}
	if _, err := NewSigner("AKID", "secret", "", "", "s3"); !isInval(err) {
		t.Errorf("empty region: got %v, want S3D_E_INVAL", err)
	}
	if _, err := NewSigner("AKID", "secret", "", "us/east", "s3"); !isInval(err) {
		t.Errorf("'/' in region: got %v, want S3D_E_INVAL", err)
	}
	s, err := NewSigner("AKID", "secret", "", "us-east-1", "s3")
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC)
	good := SignRequest{Method: "GET", Host: "h", Path: "/k", When: when, Expires: 60}
	bad := map[string]func(r *SignRequest){
		"NUL in path":         func(r *SignRequest) { r.Path = "/a\x00b" },
		"NUL in query value":  func(r *SignRequest) { r.Query = []KV{{"a", "b\x00"}} },
		"NUL in header name":  func(r *SignRequest) { r.Headers = []KV{{"x-\x00", "v"}} },
		"NUL in payload hash": func(r *SignRequest) { r.PayloadHash = "\x00" },
		"CR in header value":  func(r *SignRequest) { r.Headers = []KV{{"x-a", "v\r\nx-b: w"}} },
		"LF in header value":  func(r *SignRequest) { r.Headers = []KV{{"x-a", "v\nx-b: w"}} },
		"space in name":       func(r *SignRequest) { r.Headers = []KV{{"x a", "v"}} },
		"colon in name":       func(r *SignRequest) { r.Headers = []KV{{"x:a", "v"}} },
		"empty method":        func(r *SignRequest) { r.Method = "" },
		"lower-case method":   func(r *SignRequest) { r.Method = "get" },
		"relative path":       func(r *SignRequest) { r.Path = "k" },
		"no host":             func(r *SignRequest) { r.Host = "" },
		"expires 0":           func(r *SignRequest) { r.Expires = 0 },
		"expires 7d+1":        func(r *SignRequest) { r.Expires = PresignMaxExpires + 1 },
		"negative expires":    func(r *SignRequest) { r.Expires = -1 },
	}
	for name, mutate := range bad {
		req := good
		mutate(&req)
		_, err := s.Presign(&req)
		if !isInval(err) {
			t.Errorf("%s: Presign got %v, want S3D_E_INVAL", name, err)
		}
		if strings.HasPrefix(name, "expires") || strings.HasPrefix(name, "negative") {
			continue // header form has no expiry
		}
		if _, err := s.SignHeaders(&req); !isInval(err) {
			t.Errorf("%s: SignHeaders got %v, want S3D_E_INVAL", name, err)
		}
	}
	if _, err := s.StringToSign("", when); !isInval(err) {
		t.Errorf("empty canonical request: got %v", err)
	}
	if _, err := s.Signature("", when); !isInval(err) {
		t.Errorf("empty string to sign: got %v", err)
	}
	if _, err := s.Presign(&good); err != nil {
		t.Fatalf("good request: %v", err)
	}
	s.Close()
	s.Close() // twice is fine
	if _, err := s.Presign(&good); !isInval(err) {
		t.Errorf("after Close: got %v, want S3D_E_INVAL", err)
	}
}

func isInval(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == CodeInval && e.Msg != ""
}

// The stages chained by hand equal the one-call forms.
func TestSignerStagesChain(t *testing.T) {
	s, err := NewSigner("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "tok/en+=", "eu-west-3", "s3")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	req := SignRequest{
		Method: "PUT", Host: "b.s3.eu-west-3.amazonaws.com", Path: "/a b/ü+%/",
		Query:   []KV{{"partNumber", "3"}, {"uploadId", "x/y z"}},
		Headers: []KV{{"X-Amz-Checksum-Sha256", "  abc=  "}, {"Content-Type", "a  b"}},
		When:    time.Date(2031, 12, 31, 23, 59, 59, 0, time.UTC), Expires: 604800,
		PayloadHash: EmptySHA256, Flags: FlagContentSHA256Header,
	}
	for _, qf := range []bool{false, true} {
		stage1, err := s.CanonicalRequest(&req, qf)
		if err != nil {
			t.Fatal(err)
		}
		sts, err := s.StringToSign(stage1.CanonicalRequest, req.When)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := s.Signature(sts, req.When)
		if err != nil {
			t.Fatal(err)
		}
		var all Result
		if qf {
			all, err = s.Presign(&req)
		} else {
			all, err = s.SignHeaders(&req)
		}
		if err != nil {
			t.Fatal(err)
		}
		if all.CanonicalRequest != stage1.CanonicalRequest || all.StringToSign != sts ||
			all.Signature != sig || all.SignedHeaders != stage1.SignedHeaders || all.AmzDate != "20311231T235959Z" {
			t.Errorf("query form %v: stages disagree with the one-call form:\n%+v\n%+v", qf, stage1, all)
		}
		if qf && !strings.HasSuffix(all.Query, "&X-Amz-Signature="+sig) {
			t.Errorf("query %q does not end with the signature", all.Query)
		}
		if !qf && !strings.HasSuffix(all.Authorization, "Signature="+sig) {
			t.Errorf("authorization %q does not end with the signature", all.Authorization)
		}
	}
}

// One signer from many goroutines, dates alternating so the C derived-key
// cache keeps changing under its lock: every result must equal the one a
// fresh signer gives.
func TestSignerConcurrent(t *testing.T) {
	s, err := NewSigner("AKID", "secret", "", "us-east-1", "s3")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := map[int]string{}
	for d := 0; d < 4; d++ {
		fresh, err := NewSigner("AKID", "secret", "", "us-east-1", "s3")
		if err != nil {
			t.Fatal(err)
		}
		res, err := fresh.Presign(&SignRequest{Method: "GET", Host: "h", Path: "/k",
			When: time.Date(2020, 1, 1+d, 0, 0, 0, 0, time.UTC), Expires: 60})
		fresh.Close()
		if err != nil {
			t.Fatal(err)
		}
		want[d] = res.Signature
	}
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func(g int) {
			for i := 0; i < 500; i++ {
				d := (g + i) % 4
				res, err := s.Presign(&SignRequest{Method: "GET", Host: "h", Path: "/k",
					When: time.Date(2020, 1, 1+d, 0, 0, 0, 0, time.UTC), Expires: 60})
				if err == nil && res.Signature != want[d] {
					err = errors.New("day " + strings.Repeat("+", d) + ": signature " + res.Signature + " != " + want[d])
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}(g)
	}
	for g := 0; g < 8; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
