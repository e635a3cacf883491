// Command pulumi-resource-random is the project's own random provider (see internal/random).
package main

import (
	"apiplatform.local/e2e/plugins/internal/provider"
	"apiplatform.local/e2e/plugins/internal/random"
)

// version is the pulumi-random version requirements.txt pins (-ldflags "-X main.version=...").
var version = "0.0.0-dev"

func main() {
	provider.Serve(random.Provider(version))
}
