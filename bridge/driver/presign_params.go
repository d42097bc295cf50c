package s3direct

import (
	"math"
	"time"
)

// Presigned-upload parameters: read by the middleware (bridge/middleware)
// from the same storage.s3direct section; the driver itself ignores them.
// docs/configuration.md lists them.
const (
	defaultSessionIndex  = "/var/lib/s3direct/sessions"
	defaultPresignExpiry = time.Hour
	maxPresignExpiry     = 7 * 24 * time.Hour // SigV4's limit
	defaultSessionTTL    = 24 * time.Hour
	defaultSweepInterval = 10 * time.Minute
	defaultPresignPart   = 64 << 20
)

// PresignConfig is the checked presigned-upload configuration.
type PresignConfig struct {
	Enabled       bool
	SessionIndex  string
	URLExpiry     time.Duration
	SessionTTL    time.Duration
	SweepInterval time.Duration // 0: no sweeper in the registry process
	MaxBlobSize   int64         // 0: no limit
	RepoQuota     int64         // 0: none
	PartSize      int64
}

func parsePresignConfig(p map[string]any) (*PresignConfig, error) {
	var c PresignConfig
	var err error
	if c.Enabled, err = boolParam(p, "presign", false); err != nil {
		return nil, err
	}
	c.SessionIndex = stringParam(p, "sessionindex")
	if c.SessionIndex == "" {
		c.SessionIndex = defaultSessionIndex
	}
	if c.URLExpiry, err = durationParam(p, "presignexpiry", defaultPresignExpiry, time.Second, maxPresignExpiry); err != nil {
		return nil, err
	}
	if c.SessionTTL, err = durationParam(p, "sessionttl", defaultSessionTTL, time.Second, 365*24*time.Hour); err != nil {
		return nil, err
	}
	if c.SweepInterval, err = durationParam(p, "sweepinterval", defaultSweepInterval, 0, 7*24*time.Hour); err != nil {
		return nil, err
	}
	if c.MaxBlobSize, err = intParam(p, "maxblobsize", 0, 0, math.MaxInt64); err != nil {
		return nil, err
	}
	if c.RepoQuota, err = intParam(p, "repoquota", 0, 0, math.MaxInt64); err != nil {
		return nil, err
	}
	if c.PartSize, err = intParam(p, "presignpartsize", defaultPresignPart, minChunkSize, maxChunkSize); err != nil {
		return nil, err
	}
	return &c, nil
}
