// Command pulumi-resource-tls serves tls:index/privateKey:PrivateKey and
// tls:index/selfSignedCert:SelfSignedCert with the inputs and
// outputs of the published pulumi-tls SDK.
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/md5" // #nosec G501 -- the SDK's publicKeyFingerprintMd5 output is defined as MD5
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"

	"apiplatform.local/e2e/providers/internal/provider"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

var version = "0.0.0-dev"

type privateKey struct{}

func (privateKey) Computed() []string {
	return []string{
		"privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh", "publicKeyPem",
		"publicKeyOpenssh", "publicKeyFingerprintMd5", "publicKeyFingerprintSha256",
	}
}

func generate(in resource.PropertyMap) (crypto.Signer, *pem.Block, error) {
	switch alg := provider.String(in, "algorithm", ""); alg {
	case "RSA":
		key, err := rsa.GenerateKey(rand.Reader, provider.Int(in, "rsaBits", 2048))
		if err != nil {
			return nil, nil, err
		}
		return key, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}, nil
	case "ECDSA":
		curves := map[string]elliptic.Curve{
			"P224": elliptic.P224(), "P256": elliptic.P256(), "P384": elliptic.P384(), "P521": elliptic.P521(),
		}
		curveName := provider.String(in, "ecdsaCurve", "P224")
		curve, ok := curves[curveName]
		if !ok {
			return nil, nil, fmt.Errorf("unsupported ecdsaCurve %q", curveName)
		}
		key, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		der, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		return key, &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}, nil
	case "ED25519":
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		return key, &pem.Block{Type: "PRIVATE KEY", Bytes: der}, nil
	default:
		return nil, nil, fmt.Errorf("unsupported algorithm %q (RSA, ECDSA or ED25519)", alg)
	}
}

func (privateKey) Create(in resource.PropertyMap) (resource.PropertyMap, error) {
	key, block, err := generate(in)
	if err != nil {
		return nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	out := resource.PropertyMap{
		"privateKeyPem": resource.MakeSecret(resource.NewStringProperty(string(pem.EncodeToMemory(block)))),
		"privateKeyPemPkcs8": resource.MakeSecret(resource.NewStringProperty(
			string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})))),
		"publicKeyPem": resource.NewStringProperty(
			string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))),
		"privateKeyOpenssh":          resource.MakeSecret(resource.NewStringProperty("")),
		"publicKeyOpenssh":           resource.NewStringProperty(""),
		"publicKeyFingerprintMd5":    resource.NewStringProperty(""),
		"publicKeyFingerprintSha256": resource.NewStringProperty(""),
	}
	// P224 has no SSH encoding; upstream leaves the OpenSSH outputs empty for it too.
	if sshPub, err := ssh.NewPublicKey(key.Public()); err == nil {
		out["publicKeyOpenssh"] = resource.NewStringProperty(string(ssh.MarshalAuthorizedKey(sshPub)))
		sum := md5.Sum(sshPub.Marshal()) // #nosec G401
		hexParts := make([]string, len(sum))
		for i, b := range sum {
			hexParts[i] = hex.EncodeToString([]byte{b})
		}
		out["publicKeyFingerprintMd5"] = resource.NewStringProperty(strings.Join(hexParts, ":"))
		sha := sha256.Sum256(sshPub.Marshal())
		out["publicKeyFingerprintSha256"] = resource.NewStringProperty(
			"SHA256:" + base64.RawStdEncoding.EncodeToString(sha[:]))
		if sshPriv, err := ssh.MarshalPrivateKey(key, ""); err == nil {
			out["privateKeyOpenssh"] = resource.MakeSecret(resource.NewStringProperty(string(pem.EncodeToMemory(sshPriv))))
		}
	}
	return out, nil
}

func main() {
	provider.Serve("tls", version, map[string]provider.Resource{
		"tls:index/privateKey:PrivateKey":         privateKey{},
		"tls:index/selfSignedCert:SelfSignedCert": selfSignedCert{},
	})
}
