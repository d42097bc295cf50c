package s3direct

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go/aws/endpoints"
)

// Limits and defaults of the parameters. Those named like s3-aws's have its
// values (registry/storage/driver/s3-aws/s3.go); docs/configuration.md lists
// them all.
const (
	minChunkSize     = 5 << 20 // S3's smallest part but the last
	maxChunkSize     = 5 << 30 // S3's largest part
	defaultChunkSize = 10 << 20

	defaultCopyChunkSize = 32 << 20
	defaultCopyThreshold = 32 << 20
	// s3-aws defaults to 100 goroutines; the C engine copies with a pool of
	// at most 64 threads and defaults to 8.
	defaultCopyConcurrency = 8
	maxCopyConcurrency     = 64
	// The engine always uses one CopyObject up to 5 MiB (a smaller threshold
	// would only split a 5 MiB copy into one UploadPartCopy).
	minCopyThreshold = 5 << 20

	defaultPartsInFlight = 2
	maxPartsInFlight     = 64

	defaultConnectTimeout = 10 * time.Second
	defaultMaxRetries     = 6
	maxMaxRetries         = 100
	defaultRetryDeadline  = 2 * time.Minute

	// GetContent reads whole objects into memory: distribution stores only
	// small ones through it (manifests, links, hash states, upload dates).
	getContentMax = 128 << 20
	// List returns every direct child of a directory at once (about 2.5
	// million paths of 100 bytes).
	listMax = 256 << 20
)

// noStorageClass: send no x-amz-storage-class (as s3-aws).
const noStorageClass = "NONE"

var storageClasses = []string{
	noStorageClass, "STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA",
	"INTELLIGENT_TIERING", "OUTPOSTS", "GLACIER_IR", "EXPRESS_ONEZONE",
}

var objectACLs = []string{
	"private", "public-read", "public-read-write", "authenticated-read",
	"aws-exec-read", "bucket-owner-read", "bucket-owner-full-control",
}

// knownParameters: every s3-aws parameter, then ours.
var knownParameters = []string{
	"accesskey", "secretkey", "region", "regionendpoint", "forcepathstyle",
	"bucket", "encrypt", "keyid", "secure", "skipverify", "v4auth", "chunksize",
	"multipartcopychunksize", "multipartcopymaxconcurrency",
	"multipartcopythresholdsize", "rootdirectory", "storageclass", "useragent",
	"usedualstack", "accelerate", "usefipsendpoint", "objectacl", "loglevel",
	"partsinflight", "uploadmemory", "connecttimeout", "maxretries", "retrydeadline",
	// presigned uploads (bridge/middleware; see presign_params.go)
	"presign", "sessionindex", "presignexpiry", "sessionttl", "sweepinterval",
	"maxblobsize", "repoquota", "presignpartsize",
}

// validRegions: the AWS regions s3-aws accepts (the same SDK tables).
var validRegions = func() map[string]struct{} {
	m := map[string]struct{}{}
	for _, p := range endpoints.DefaultPartitions() {
		for r := range p.Regions() {
			m[r] = struct{}{}
		}
	}
	return m
}()

// params is the checked configuration, ready to be marshalled for C.
type params struct {
	accessKey    string
	secretKey    string
	sessionToken string
	credSource   string // "parameters" or "environment", for the start-up log

	bucket        string
	region        string
	endpoint      string // scheme://host[:port]
	virtualHosted bool
	skipVerify    bool
	userAgent     string // appended to ours

	rootDirectory string // no leading or trailing '/'
	storageClass  string // "" = no header
	objectACL     string // "" = no header
	sse           string // "" | AES256 | aws:kms
	sseKMSKeyID   string

	chunkSize       int64
	copyChunkSize   int64
	copyConcurrency int64
	copyThreshold   int64
	partsInFlight   int64
	uploadMemory    int64 // 0: no shared limit

	connectTimeout time.Duration
	maxRetries     int64
	retryDeadline  time.Duration

	logLevel string
}

func paramErr(format string, a ...any) error {
	return fmt.Errorf("s3direct: "+format, a...)
}

// parseParameters checks parameters the way s3-aws's FromParameters does
// (same names, types, defaults and messages) and adds ours. Secrets never
// appear in its errors.
func parseParameters(p map[string]any) (*params, error) {
	if err := checkUnknown(p); err != nil {
		return nil, err
	}
	o := &params{}
	var err error

	regionEndpoint := stringParam(p, "regionendpoint")
	region := stringParam(p, "region")
	if regionEndpoint == "" {
		if region == "" {
			return nil, paramErr("no region parameter provided")
		}
		if _, ok := validRegions[region]; !ok {
			return nil, paramErr("invalid region provided: %v", region)
		}
	} else if region == "" {
		region = "us-east-1" // only the signature uses it
	}
	o.region = region

	o.bucket = stringParam(p, "bucket")
	if o.bucket == "" {
		return nil, paramErr("no bucket parameter provided")
	}

	forcePathStyle, err := boolParam(p, "forcepathstyle", false)
	if err != nil {
		return nil, err
	}
	encrypt, err := boolParam(p, "encrypt", false)
	if err != nil {
		return nil, err
	}
	secure, err := boolParam(p, "secure", true)
	if err != nil {
		return nil, err
	}
	if o.skipVerify, err = boolParam(p, "skipverify", false); err != nil {
		return nil, err
	}
	v4auth, err := boolParam(p, "v4auth", true)
	if err != nil {
		return nil, err
	}
	if !v4auth {
		return nil, paramErr("the v4auth parameter is false: s3direct signs only with AWS Signature Version 4 (remove v4auth or set it to true)")
	}
	useDualStack, err := boolParam(p, "usedualstack", false)
	if err != nil {
		return nil, err
	}
	accelerate, err := boolParam(p, "accelerate", false)
	if err != nil {
		return nil, err
	}
	useFIPS, err := boolParam(p, "usefipsendpoint", false)
	if err != nil {
		return nil, err
	}

	if o.chunkSize, err = intParam(p, "chunksize", defaultChunkSize, minChunkSize, maxChunkSize); err != nil {
		return nil, err
	}
	if o.copyChunkSize, err = intParam(p, "multipartcopychunksize", defaultCopyChunkSize, minChunkSize, maxChunkSize); err != nil {
		return nil, err
	}
	if o.copyConcurrency, err = intParam(p, "multipartcopymaxconcurrency", defaultCopyConcurrency, 1, math.MaxInt64); err != nil {
		return nil, err
	}
	// s3-aws accepts any positive number; the engine's pool has a ceiling.
	o.copyConcurrency = min(o.copyConcurrency, maxCopyConcurrency)
	if o.copyThreshold, err = intParam(p, "multipartcopythresholdsize", defaultCopyThreshold, 0, maxChunkSize); err != nil {
		return nil, err
	}
	o.copyThreshold = max(o.copyThreshold, minCopyThreshold)
	if o.partsInFlight, err = intParam(p, "partsinflight", defaultPartsInFlight, 1, maxPartsInFlight); err != nil {
		return nil, err
	}
	// part buffers the writers share beyond one chunksize each; by default
	// what one writer needs to keep partsinflight parts going
	if o.uploadMemory, err = intParam(p, "uploadmemory", o.partsInFlight*o.chunkSize, 0, math.MaxInt64); err != nil {
		return nil, err
	}
	if o.maxRetries, err = intParam(p, "maxretries", defaultMaxRetries, 0, maxMaxRetries); err != nil {
		return nil, err
	}
	if o.connectTimeout, err = durationParam(p, "connecttimeout", defaultConnectTimeout, time.Millisecond, 10*time.Minute); err != nil {
		return nil, err
	}
	if o.retryDeadline, err = durationParam(p, "retrydeadline", defaultRetryDeadline, time.Second, 24*time.Hour); err != nil {
		return nil, err
	}

	o.rootDirectory = strings.Trim(stringParam(p, "rootdirectory"), "/")

	o.storageClass = "STANDARD"
	if raw := p["storageclass"]; raw != nil {
		s, ok := raw.(string)
		if !ok || !slices.Contains(storageClasses, strings.ToUpper(s)) {
			return nil, paramErr("the storageclass parameter must be one of %v, %v invalid", storageClasses, raw)
		}
		o.storageClass = strings.ToUpper(s)
	}
	if o.storageClass == noStorageClass {
		o.storageClass = ""
	}

	// private is what S3 gives an object without x-amz-acl; not sending it
	// keeps buckets with ACLs disabled (BucketOwnerEnforced) working.
	if raw := p["objectacl"]; raw != nil {
		s, ok := raw.(string)
		if !ok || !slices.Contains(objectACLs, s) {
			return nil, paramErr("invalid value for objectacl parameter: %v", raw)
		}
		if s != "private" {
			o.objectACL = s
		}
	}

	keyID := stringParam(p, "keyid")
	if encrypt {
		o.sse = "AES256"
		if keyID != "" {
			o.sse, o.sseKMSKeyID = "aws:kms", keyID
		}
	}

	o.userAgent = stringParam(p, "useragent")
	o.logLevel = logLevelParam(p["loglevel"])

	if err := o.credentials(p); err != nil {
		return nil, err
	}
	o.endpoint, o.virtualHosted, err = resolveEndpoint(endpointSpec{
		regionEndpoint: regionEndpoint,
		region:         region,
		bucket:         o.bucket,
		secure:         secure,
		forcePathStyle: forcePathStyle,
		dualStack:      useDualStack,
		fips:           useFIPS,
		accelerate:     accelerate,
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

func checkUnknown(p map[string]any) error {
	var unknown []string
	for k := range p {
		if !slices.Contains(knownParameters, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return paramErr("unknown parameter %s (known: %s)", strings.Join(unknown, ", "),
		strings.Join(knownParameters, ", "))
}

// credentials: both parameters, else the environment the way the AWS SDK's
// environment provider reads it. Instance roles, web identity and shared
// config files are not supported.
func (o *params) credentials(p map[string]any) error {
	ak, sk := stringParam(p, "accesskey"), stringParam(p, "secretkey")
	switch {
	case ak != "" && sk != "":
		o.accessKey, o.secretKey, o.credSource = ak, sk, "parameters"
		return nil
	case ak != "":
		return paramErr("the accesskey parameter is set but secretkey is empty")
	case sk != "":
		return paramErr("the secretkey parameter is set but accesskey is empty")
	}
	ak = firstEnv("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY")
	sk = firstEnv("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY")
	if ak == "" || sk == "" {
		return paramErr("no credentials: set the accesskey and secretkey parameters, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment (instance roles and shared credential files are not supported)")
	}
	o.accessKey, o.secretKey, o.credSource = ak, sk, "environment"
	o.sessionToken = os.Getenv("AWS_SESSION_TOKEN")
	return nil
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

type endpointSpec struct {
	regionEndpoint, region, bucket string
	secure, forcePathStyle         bool
	dualStack, fips, accelerate    bool
}

// resolveEndpoint computes the URL and addressing style the AWS SDK (v1, the
// one s3-aws uses) would: regionendpoint as given (its scheme from secure
// when it has none), else the SDK's endpoint tables for region with the
// dual-stack and FIPS variants; accelerate rewrites the host to
// s3-accelerate the way the SDK does. Virtual-hosted addressing unless
// forcepathstyle, or the bucket cannot be a host name label.
func resolveEndpoint(s endpointSpec) (string, bool, error) {
	scheme := "https"
	if !s.secure {
		scheme = "http"
	}
	raw := s.regionEndpoint
	if raw == "" {
		ep, err := endpoints.DefaultResolver().EndpointFor("s3", s.region, func(o *endpoints.Options) {
			o.DisableSSL = !s.secure
			if s.dualStack {
				o.UseDualStackEndpoint = endpoints.DualStackEndpointStateEnabled
			}
			if s.fips {
				o.UseFIPSEndpoint = endpoints.FIPSEndpointStateEnabled
			}
		})
		if err != nil {
			return "", false, paramErr("no S3 endpoint for region %q (usedualstack=%v, usefipsendpoint=%v): %v",
				s.region, s.dualStack, s.fips, err)
		}
		raw = ep.URL
	} else if !strings.Contains(raw, "://") {
		raw = scheme + "://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", false, paramErr("the regionendpoint parameter must be [http[s]://]host[:port], %q invalid", s.regionEndpoint)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
		return "", false, paramErr("the regionendpoint parameter must be [http[s]://]host[:port] without path, query or user, %q invalid", s.regionEndpoint)
	}
	hostOK := hostCompatibleBucket(u.Scheme, s.bucket)
	if s.accelerate {
		if !hostOK {
			return "", false, paramErr("the accelerate parameter needs a bucket name usable as a host name label, %q is not", s.bucket)
		}
		host, port := u.Hostname(), u.Port()
		parts := strings.Split(host, ".")
		if len(parts) < 3 {
			return "", false, paramErr("the accelerate parameter cannot rewrite the endpoint host %q", host)
		}
		if parts[0] == "s3" || strings.HasPrefix(parts[0], "s3-") {
			parts[0] = "s3-accelerate"
		}
		for i := 1; i+1 < len(parts); i++ {
			if parts[i] == s.region {
				parts = append(parts[:i], parts[i+1:]...)
				break
			}
		}
		u.Host = strings.Join(parts, ".")
		if port != "" {
			u.Host = net.JoinHostPort(u.Host, port)
		}
		return u.Scheme + "://" + u.Host, true, nil
	}
	return u.Scheme + "://" + u.Host, !s.forcePathStyle && hostOK, nil
}

var (
	reDomain    = regexp.MustCompile(`^[a-z0-9][a-z0-9\.\-]{1,61}[a-z0-9]$`)
	reIPAddress = regexp.MustCompile(`^(\d+\.){3}\d+$`)
)

// hostCompatibleBucket is the SDK's test: a DNS label, no dots over https
// (they would break certificate validation).
func hostCompatibleBucket(scheme, bucket string) bool {
	if scheme == "https" && strings.Contains(bucket, ".") {
		return false
	}
	return reDomain.MatchString(bucket) && !reIPAddress.MatchString(bucket) &&
		!strings.Contains(bucket, "..")
}

// stringParam: any value as text (s3-aws uses fmt.Sprint); absent or nil = "".
func stringParam(p map[string]any, name string) string {
	v := p[name]
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// boolParam accepts a bool or a string strconv.ParseBool reads (as s3-aws).
func boolParam(p map[string]any, name string, def bool) (bool, error) {
	switch v := p[name].(type) {
	case nil:
		return def, nil
	case bool:
		return v, nil
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err == nil {
			return b, nil
		}
	}
	return false, paramErr("the %s parameter should be a boolean", name)
}

// intParam accepts any integer type, an integral float (some YAML and JSON
// decoders) or a decimal string; then checks [lo, hi] like s3-aws.
func intParam(p map[string]any, name string, def, lo, hi int64) (int64, error) {
	v := def
	if raw := p[name]; raw != nil {
		n, ok := toInt64(raw)
		if !ok {
			return 0, paramErr("%s parameter must be an integer, %v invalid", name, raw)
		}
		v = n
	}
	if v < lo || v > hi {
		return 0, paramErr("the %s %#v parameter should be a number between %d and %d (inclusive)", name, v, lo, hi)
	}
	return v, nil
}

func toInt64(raw any) (int64, bool) {
	switch v := raw.(type) {
	case int:
		return int64(v), true
	case int8:
		return int64(v), true
	case int16:
		return int64(v), true
	case int32:
		return int64(v), true
	case int64:
		return v, true
	case uint:
		return int64(v), uint64(v) <= math.MaxInt64
	case uint8:
		return int64(v), true
	case uint16:
		return int64(v), true
	case uint32:
		return int64(v), true
	case uint64:
		return int64(v), v <= math.MaxInt64
	case float32:
		return floatInt(float64(v))
	case float64:
		return floatInt(v)
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		return n, err == nil
	}
	return 0, false
}

func floatInt(f float64) (int64, bool) {
	if f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, false
	}
	return int64(f), true
}

// durationParam accepts a Go duration string ("10s", "1m30s") or a whole
// number of seconds (integer or decimal string).
func durationParam(p map[string]any, name string, def, lo, hi time.Duration) (time.Duration, error) {
	v := def
	if raw := p[name]; raw != nil {
		var ok bool
		if s, isStr := raw.(string); isStr {
			d, err := time.ParseDuration(strings.TrimSpace(s))
			v, ok = d, err == nil
		}
		if !ok {
			n, isInt := toInt64(raw)
			if !isInt || n > int64(hi/time.Second)+1 || n < 0 {
				return 0, paramErr("the %s parameter must be a duration (\"10s\", \"2m\") or a number of seconds, %v invalid", name, raw)
			}
			v = time.Duration(n) * time.Second
		}
	}
	if v < lo || v > hi {
		return 0, paramErr("the %s parameter %v should be between %v and %v", name, v, lo, hi)
	}
	return v, nil
}

// logLevelParam: s3-aws's values (it maps them onto the SDK's request log).
// s3direct keeps the name for the start-up log only: see docs.
func logLevelParam(raw any) string {
	if b, ok := raw.(bool); ok && !b {
		return "off" // YAML 1.1 reads off as false
	}
	s, ok := raw.(string)
	if !ok {
		return "off"
	}
	switch s = strings.ToLower(s); s {
	case "off", "debug", "debugwithsigning", "debugwithhttpbody",
		"debugwithrequestretries", "debugwithrequesterrors", "debugwitheventstreambody":
		return s
	}
	return "off"
}
