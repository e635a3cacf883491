package tls

import "apiplatform.local/e2e/plugins/internal/provider"

// Provider is the tls provider with the resources and functions the program uses.
func Provider(version string) *provider.Provider {
	return &provider.Provider{
		Name:      "tls",
		Version:   version,
		Resources: []*provider.Resource{PrivateKey, SelfSignedCert},
		Functions: []*provider.Function{GetPublicKey},
	}
}
