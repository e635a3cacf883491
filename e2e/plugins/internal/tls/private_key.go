package tls

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"

	"apiplatform.local/e2e/plugins/internal/provider"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

var curves = map[string]elliptic.Curve{
	"P224": elliptic.P224(), "P256": elliptic.P256(), "P384": elliptic.P384(), "P521": elliptic.P521(),
}

// publicKeyProperties are the public-key outputs PrivateKey and getPublicKey share.
var publicKeyProperties = []provider.Property{
	{Name: "publicKeyPem", Kind: provider.String, Description: "The public key, PEM (SubjectPublicKeyInfo)."},
	{Name: "publicKeyOpenssh", Kind: provider.String, Description: "The public key in OpenSSH authorized_keys format (\"\" for P224)."},
	{Name: "publicKeyFingerprintMd5", Kind: provider.String, Description: "The OpenSSH MD5 fingerprint (\"\" for P224)."},
	{Name: "publicKeyFingerprintSha256", Kind: provider.String, Description: "The OpenSSH SHA256 fingerprint (\"\" for P224)."},
}

// PrivateKey is tls:index/privateKey:PrivateKey: a key generated in the provider and kept in
// the (encrypted) state. Every input replaces the key; the id is the hex SHA-1 of its public key.
var PrivateKey = &provider.Resource{
	Token:       "tls:index/privateKey:PrivateKey",
	Description: "A private key (RSA, ECDSA or Ed25519); its private forms are secrets.",
	Inputs: []provider.Property{
		{Name: "algorithm", Kind: provider.String, Required: true, Replace: provider.Always,
			OneOf: []string{"RSA", "ECDSA", "ED25519"}},
		{Name: "rsaBits", Kind: provider.Int, Default: provider.Num(2048), Replace: provider.Always,
			Description: "The RSA key size in bits (default 2048)."},
		{Name: "ecdsaCurve", Kind: provider.String, Default: provider.Str("P224"), Replace: provider.Always,
			OneOf: []string{"P224", "P256", "P384", "P521"}, Description: "The ECDSA curve (default P224, as upstream)."},
	},
	Outputs: append([]provider.Property{
		{Name: "privateKeyPem", Kind: provider.String, Secret: true,
			Description: "PKCS#1 (RSA), SEC 1 (ECDSA) or PKCS#8 (Ed25519) PEM."},
		{Name: "privateKeyPemPkcs8", Kind: provider.String, Secret: true, Description: "PKCS#8 PEM."},
		{Name: "privateKeyOpenssh", Kind: provider.String, Secret: true,
			Description: "OpenSSH PEM (\"\" for P224)."},
	}, publicKeyProperties...),
	Create: func(_ context.Context, in provider.Values) (string, resource.PropertyMap, error) {
		key, block, err := generate(in)
		if err != nil {
			return "", nil, err
		}
		return privateKeyOutputs(key, block)
	},
}

func generate(in provider.Values) (crypto.Signer, *pem.Block, error) {
	switch in.String("algorithm") {
	case "RSA":
		key, err := rsa.GenerateKey(rand.Reader, in.Int("rsaBits"))
		if err != nil {
			return nil, nil, err
		}
		return key, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}, nil
	case "ECDSA":
		key, err := ecdsa.GenerateKey(curves[in.String("ecdsaCurve")], rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		der, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		return key, &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}, nil
	default: // ED25519 (Check allows nothing else)
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		return key, &pem.Block{Type: "PRIVATE KEY", Bytes: der}, nil
	}
}

// privateKeyOutputs are every output of a key, given its native PEM block.
func privateKeyOutputs(key crypto.Signer, block *pem.Block) (string, resource.PropertyMap, error) {
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", nil, fmt.Errorf("encoding the key as PKCS#8: %w", err)
	}
	id, out, err := publicKeyOutputs(key)
	if err != nil {
		return "", nil, err
	}
	out["privateKeyPem"] = provider.Str(string(pem.EncodeToMemory(block)))
	out["privateKeyPemPkcs8"] = provider.Str(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})))
	out["privateKeyOpenssh"] = provider.Str(privateKeyOpenSSH(key))
	return id, out, nil
}
