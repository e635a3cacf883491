package provider_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"apiplatform.local/e2e/plugins/internal/provider"
	"apiplatform.local/e2e/plugins/internal/random"
	"apiplatform.local/e2e/plugins/internal/tls"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// The package schema describes every implemented resource and function with the SDK's
// property names, secrets and replace-only inputs.
func TestSchemaDescribesTheImplementedTypes(t *testing.T) {
	for _, p := range []*provider.Provider{random.Provider("4.21.4"), tls.Provider("5.6.2")} {
		resp, err := provider.NewServer(p).GetSchema(context.Background(), &pulumirpc.GetSchemaRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var schema struct {
			Name      string
			Version   string
			Resources map[string]struct {
				InputProperties map[string]map[string]any
				Properties      map[string]map[string]any
			}
			Functions map[string]any
			Types     map[string]any
		}
		if err := json.Unmarshal([]byte(resp.GetSchema()), &schema); err != nil {
			t.Fatal(err)
		}
		if schema.Name != p.Name || schema.Version != p.Version || len(schema.Resources) != len(p.Resources) {
			t.Fatalf("%s: %+v", p.Name, schema)
		}
		for _, r := range p.Resources {
			spec := schema.Resources[r.Token]
			for _, o := range r.Outputs {
				if o.Secret != (spec.Properties[o.Name]["secret"] == true) {
					t.Errorf("%s.%s secret flag", r.Token, o.Name)
				}
			}
			for _, in := range r.Inputs {
				if (in.Replace != provider.InPlace) != (spec.InputProperties[in.Name]["willReplaceOnChanges"] == true) {
					t.Errorf("%s.%s replace flag", r.Token, in.Name)
				}
			}
		}
	}
	tlsSchema, _ := provider.NewServer(tls.Provider("5.6.2")).GetSchema(context.Background(), &pulumirpc.GetSchemaRequest{})
	var parsed map[string]map[string]any
	_ = json.Unmarshal([]byte(tlsSchema.GetSchema()), &parsed)
	if parsed["types"]["tls:index/SelfSignedCertSubject:SelfSignedCertSubject"] == nil ||
		parsed["functions"]["tls:index/getPublicKey:getPublicKey"] == nil {
		t.Fatalf("tls schema lacks the subject type or getPublicKey: %v", parsed["types"])
	}
}

func TestAnUnimplementedTypeIsNamedInTheError(t *testing.T) {
	_, err := provider.NewServer(tls.Provider("5.6.2")).Check(context.Background(), &pulumirpc.CheckRequest{
		Urn: "urn:pulumi:dev::api-platform::tls:index/locallySignedCert:LocallySignedCert::x",
	})
	if err == nil || !strings.Contains(err.Error(), "tls:index/locallySignedCert:LocallySignedCert is not implemented") {
		t.Fatalf("%v", err)
	}
}
