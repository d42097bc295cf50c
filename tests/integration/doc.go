// Package integration holds the end-to-end tests of the s3direct storage
// driver: they start real build/registry processes (the stock distribution
// registry with s3direct compiled in) on loopback, with s3direct storage on
// the S3 server of tests/with-s3.sh and, for comparison, with the stock
// filesystem driver, and drive them with the OCI distribution-spec
// conformance suite and with real clients (crane, oras, regctl).
//
// Run them with `make test`, or alone:
//
//	make build && tests/with-s3.sh go test -count=1 -v ./tests/integration/
//
// Every test fails (never skips) when something it needs is missing:
// build/registry and build/s3d (`make build`), the clients in .tools/bin
// (`make deps`), the S3D_TEST_* variables (tests/with-s3.sh).
//
// When a test fails, the logs and configs of its registries are kept in
// build/test/logs/integration/<test>/ (S3D_IT_KEEP_LOGS=1 keeps them always).
//
// The files are in tests/integration/*_test.go; testdata/conformance is the
// module that pins the conformance suite.
package integration
