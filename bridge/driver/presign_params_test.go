package s3direct

import (
	"strings"
	"testing"
	"time"
)

// A storage.s3 section renamed to s3direct is a drop-in: presigned uploads
// stay off and nothing of theirs (the session index) is opened.
func TestPresignConfigDefaults(t *testing.T) {
	c, err := parsePresignConfig(map[string]any{"bucket": "b", "region": "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	want := PresignConfig{Enabled: false, SessionIndex: defaultSessionIndex, URLExpiry: time.Hour,
		SessionTTL: 24 * time.Hour, SweepInterval: 10 * time.Minute, PartSize: 64 << 20}
	if *c != want {
		t.Errorf("defaults %+v, want %+v", *c, want)
	}
	s, err := NewService(map[string]any{"bucket": "b", "region": "us-east-1", "accesskey": "a", "secretkey": "s",
		"regionendpoint": "http://127.0.0.1:9", "sessionindex": "/proc/cannot-be-created"})
	if s != nil || err != nil {
		t.Errorf("NewService without presign: %v, %v; want nil, nil (nothing opened)", s, err)
	}
}

func TestPresignConfigValues(t *testing.T) {
	for _, tc := range []struct {
		in   map[string]any
		want func(*PresignConfig) bool
		err  string
	}{
		{in: map[string]any{"presign": true}, want: func(c *PresignConfig) bool { return c.Enabled }},
		{in: map[string]any{"presign": "true"}, want: func(c *PresignConfig) bool { return c.Enabled }},
		{in: map[string]any{"presign": "1", "sessionindex": "/x"},
			want: func(c *PresignConfig) bool { return c.Enabled && c.SessionIndex == "/x" }},
		{in: map[string]any{"presignexpiry": "90m"}, want: func(c *PresignConfig) bool { return c.URLExpiry == 90*time.Minute }},
		{in: map[string]any{"presign": "yes"}, err: "presign"},
		{in: map[string]any{"presignexpiry": "169h"}, err: "presignexpiry"},
		{in: map[string]any{"presignpartsize": 1}, err: "presignpartsize"},
	} {
		c, err := parsePresignConfig(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%v: error %v, want one naming %s", tc.in, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%v: %v", tc.in, err)
		case tc.err == "" && !tc.want(c):
			t.Errorf("%v: got %+v", tc.in, *c)
		}
	}
}
