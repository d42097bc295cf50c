// The OCI distribution-spec conformance test as the Go module proxy serves
// it today (the 2026 rewrite: one program, `go build` of the module's main
// package, configured by OCI_* variables, writing results/junit.xml).
// tests/integration builds it here, a module of its own under testdata/, so
// that its requirements stay out of the root go.mod. It runs beside the
// Ginkgo suite of testdata/conformance (v1.1.1 itself is not on the proxy).
//
// Nothing here imports the program (a main package cannot be imported), so
// `go mod tidy` would drop it: edit this file by hand.
module github.com/s3direct/s3direct/tests/integration/conformancecurrent

go 1.24.0

require github.com/opencontainers/distribution-spec/conformance v0.0.0-20260831232431-97274622c111

require (
	github.com/goccy/go-yaml v1.18.0 // indirect
	github.com/opencontainers/distribution-spec/specs-go v0.0.0-20240926185104-8376368dd8aa // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	github.com/opencontainers/image-spec v1.1.1 // indirect
)
