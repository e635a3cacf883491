// Command pulumi-language-python is the project's own Python language host (see
// internal/langhost). The engine starts it with its address as the last argument.
package main

import (
	"flag"
	"fmt"
	"os"

	"google.golang.org/grpc"

	"apiplatform.local/e2e/plugins/internal/langhost"
	"apiplatform.local/e2e/plugins/internal/serve"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// version is the Pulumi version requirements.txt pins (-ldflags "-X main.version=...").
var version = "0.0.0-dev"

func main() {
	flag.String("tracing", "", "ignored: tracing endpoint")
	flag.String("root", "", "ignored: project root (the engine sends it again in each request)")
	flag.Parse()
	host, err := langhost.New(version, flag.Arg(0))
	if err != nil {
		fmt.Fprintf(os.Stderr, "fatal: %v\n", err)
		os.Exit(1)
	}
	serve.Serve(func(srv *grpc.Server) { pulumirpc.RegisterLanguageRuntimeServer(srv, host) })
}
