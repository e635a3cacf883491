// Package tls is the project's own implementation of the pulumi-tls resources and functions
// the program uses, with upstream's inputs, defaults, outputs and replacement rules.
package tls

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha1" // #nosec G505 -- upstream's resource id and subject key id are SHA-1 digests
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"

	"golang.org/x/crypto/ssh"

	"apiplatform.local/e2e/plugins/internal/provider"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// algorithmOf is upstream's name for a key's algorithm.
func algorithmOf(key crypto.PrivateKey) (string, error) {
	switch key.(type) {
	case *rsa.PrivateKey:
		return "RSA", nil
	case *ecdsa.PrivateKey:
		return "ECDSA", nil
	case ed25519.PrivateKey, *ed25519.PrivateKey:
		return "ED25519", nil
	}
	return "", fmt.Errorf("unsupported private key type %T", key)
}

// parsePrivateKeyPEM reads a PKCS#1 RSA, SEC 1 EC or PKCS#8 private key in PEM.
func parsePrivateKeyPEM(text string) (crypto.Signer, error) {
	block, _ := pem.Decode([]byte(text))
	if block == nil {
		return nil, errors.New("privateKeyPem is not PEM")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unsupported PEM block %q (RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY)", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing the %s: %w", block.Type, err)
	}
	return signer(key)
}

// parsePrivateKeyOpenSSH reads an OpenSSH private key.
func parsePrivateKeyOpenSSH(text string) (crypto.Signer, error) {
	key, err := ssh.ParseRawPrivateKey([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("parsing the OpenSSH private key: %w", err)
	}
	return signer(key)
}

func signer(key any) (crypto.Signer, error) {
	if k, ok := key.(*ed25519.PrivateKey); ok {
		return *k, nil
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
	return s, nil
}

// publicKeyOutputs are the public-key outputs upstream computes from a private key, and its
// id: the hex SHA-1 of the DER SubjectPublicKeyInfo. P-224 has no SSH encoding, so its
// OpenSSH outputs are empty, as upstream's are.
func publicKeyOutputs(key crypto.Signer) (string, resource.PropertyMap, error) {
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return "", nil, err
	}
	out := resource.PropertyMap{
		"publicKeyPem":               provider.Str(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))),
		"publicKeyOpenssh":           provider.Str(""),
		"publicKeyFingerprintMd5":    provider.Str(""),
		"publicKeyFingerprintSha256": provider.Str(""),
	}
	if sshKey, err := ssh.NewPublicKey(key.Public()); err == nil {
		out["publicKeyOpenssh"] = provider.Str(string(ssh.MarshalAuthorizedKey(sshKey)))
		out["publicKeyFingerprintMd5"] = provider.Str(ssh.FingerprintLegacyMD5(sshKey))
		out["publicKeyFingerprintSha256"] = provider.Str(ssh.FingerprintSHA256(sshKey))
	}
	sum := sha1.Sum(der) // #nosec G401
	return hex.EncodeToString(sum[:]), out, nil
}

// privateKeyOpenSSH is the key in OpenSSH's format, or "" where SSH has no encoding (P-224).
func privateKeyOpenSSH(key crypto.Signer) string {
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		return ""
	}
	return string(pem.EncodeToMemory(block))
}

// subjectKeyID is upstream's subject key identifier: the SHA-1 of the raw public key, i.e. of
// the subjectPublicKey bit string of the SubjectPublicKeyInfo for RSA and ECDSA (RFC 5280
// method 1), and of the DER octet string of the key for Ed25519.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	var raw []byte
	if k, ok := pub.(ed25519.PublicKey); ok {
		var err error
		if raw, err = asn1.Marshal([]byte(k)); err != nil {
			return nil, err
		}
	} else {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return nil, err
		}
		var spki struct {
			Algorithm asn1.RawValue
			PublicKey asn1.BitString
		}
		if _, err := asn1.Unmarshal(der, &spki); err != nil {
			return nil, err
		}
		raw = spki.PublicKey.Bytes
	}
	sum := sha1.Sum(raw) // #nosec G401
	return sum[:], nil
}
