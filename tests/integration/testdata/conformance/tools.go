//go:build tools

// Keeps the suite and the packages its _test.go files import in this
// module's requirements: `go mod tidy` looks at neither a module that no
// package of ours imports nor the tests of a dependency.
package tools

import (
	_ "github.com/bloodorangeio/reggie"
	_ "github.com/google/uuid"
	_ "github.com/onsi/ginkgo/v2"
	_ "github.com/onsi/ginkgo/v2/reporters"
	_ "github.com/onsi/ginkgo/v2/types"
	_ "github.com/onsi/gomega"
	_ "github.com/opencontainers/distribution-spec/conformance"
	_ "github.com/opencontainers/go-digest"
)
