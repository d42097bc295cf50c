// The OCI distribution-spec conformance suite, pinned. tests/integration
// compiles it with `go test -c` in this directory (a module of its own under
// testdata/, so that its Ginkgo, Gomega and reggie requirements stay out of
// the root go.mod).
//
// The pin is commit f2182352d4cc (2023-11-01), on the road to v1.1.0: the
// Go module proxy serves only this pseudo-version and a 2026 rewrite of the
// suite, not v1.1.1 (commit a139cc4). Move it to a139cc4 once the proxy
// serves v0.0.0-20250123160558-a139cc423184.
module github.com/s3direct/s3direct/tests/integration/conformance

go 1.20

require (
	github.com/bloodorangeio/reggie v0.6.1
	github.com/google/uuid v1.3.0
	github.com/onsi/ginkgo/v2 v2.11.0
	github.com/onsi/gomega v1.27.8
	github.com/opencontainers/distribution-spec/conformance v0.0.0-20231101194043-f2182352d4cc
	github.com/opencontainers/go-digest v1.0.0
)

require (
	github.com/asaskevich/govalidator v0.0.0-20230301143203-a9d515a09cc2 // indirect
	github.com/go-logr/logr v1.2.4 // indirect
	github.com/go-resty/resty/v2 v2.7.0 // indirect
	github.com/go-task/slim-sprig v0.0.0-20230315185526-52ccab3ef572 // indirect
	github.com/google/go-cmp v0.5.9 // indirect
	github.com/google/pprof v0.0.0-20230602150820-91b7bce49751 // indirect
	github.com/mitchellh/mapstructure v1.5.0 // indirect
	golang.org/x/net v0.11.0 // indirect
	golang.org/x/sys v0.9.0 // indirect
	golang.org/x/text v0.10.0 // indirect
	golang.org/x/tools v0.10.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
