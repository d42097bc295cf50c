// Command registry is the stock distribution registry (the same imports as
// distribution's cmd/registry: every stock storage driver, auth backend and
// storage middleware) plus the s3direct storage driver, so one binary serves
// a configuration with either `storage: s3:` or `storage: s3direct:`, and
// the presigned-upload middleware (bridge/middleware).
//
//	registry serve config.yml
package main

import (
	_ "net/http/pprof"

	"github.com/distribution/distribution/v3/registry"
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/auth/silly"
	_ "github.com/distribution/distribution/v3/registry/auth/token"
	_ "github.com/distribution/distribution/v3/registry/proxy"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/azure"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/gcs"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/middleware/cloudfront"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/middleware/redirect"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/middleware/rewrite"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/s3-aws"

	_ "github.com/s3direct/s3direct/bridge/driver"
	"github.com/s3direct/s3direct/bridge/middleware"
)

func main() {
	// Presigned direct uploads (docs/api.md) in front of the stock app when
	// the storage driver is s3direct.
	registry.RegisterHandler(middleware.Handler)

	// As upstream: the registered commands exit non-zero themselves on
	// failure.
	// nolint:errcheck
	registry.RootCmd.Execute()
}
