// Command pulumi-resource-tls is the project's own tls provider (see internal/tls).
package main

import (
	"apiplatform.local/e2e/plugins/internal/provider"
	"apiplatform.local/e2e/plugins/internal/tls"
)

// version is the pulumi-tls version requirements.txt pins (-ldflags "-X main.version=...").
var version = "0.0.0-dev"

func main() {
	provider.Serve(tls.Provider(version))
}
