package tls

import (
	"crypto"

	"apiplatform.local/e2e/plugins/internal/provider"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// GetPublicKey is tls:index/getPublicKey:getPublicKey: the public key of a PEM or OpenSSH
// private key (exactly one of the two).
var GetPublicKey = &provider.Function{
	Token:       "tls:index/getPublicKey:getPublicKey",
	Description: "The public key of a private key given in PEM or OpenSSH format.",
	Inputs: []provider.Property{
		{Name: "privateKeyPem", Kind: provider.String, Secret: true},
		{Name: "privateKeyOpenssh", Kind: provider.String, Secret: true},
	},
	Outputs: append([]provider.Property{
		{Name: "id", Kind: provider.String, Description: "The hex SHA-1 of the public key."},
		{Name: "algorithm", Kind: provider.String, Description: "RSA, ECDSA or ED25519."},
		{Name: "privateKeyPem", Kind: provider.String, Secret: true},
		{Name: "privateKeyOpenssh", Kind: provider.String, Secret: true},
	}, publicKeyProperties...),
	Normalize: func(in resource.PropertyMap) []provider.Failure {
		if in["privateKeyPem"].IsNull() == in["privateKeyOpenssh"].IsNull() {
			return []provider.Failure{{Property: "privateKeyPem", Reason: "or privateKeyOpenssh: give exactly one"}}
		}
		return nil
	},
	Call: func(in provider.Values) (resource.PropertyMap, error) {
		var key crypto.Signer
		var err error
		if in.Has("privateKeyPem") {
			key, err = parsePrivateKeyPEM(in.String("privateKeyPem"))
		} else {
			key, err = parsePrivateKeyOpenSSH(in.String("privateKeyOpenssh"))
		}
		if err != nil {
			return nil, err
		}
		algorithm, err := algorithmOf(key)
		if err != nil {
			return nil, err
		}
		id, out, err := publicKeyOutputs(key)
		if err != nil {
			return nil, err
		}
		out["id"], out["algorithm"] = provider.Str(id), provider.Str(algorithm)
		for _, k := range []resource.PropertyKey{"privateKeyPem", "privateKeyOpenssh"} {
			out[k] = provider.Str(in.String(string(k)))
		}
		return out, nil
	},
}
