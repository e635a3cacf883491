package main

import (
	"crypto"
	"crypto/rand"
	"crypto/sha1" // #nosec G505 -- RFC 5280 method 1 subject key identifier
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"

	"apiplatform.local/e2e/providers/internal/provider"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// selfSignedCert serves tls:index/selfSignedCert:SelfSignedCert.
type selfSignedCert struct{}

func (selfSignedCert) Computed() []string {
	return []string{"certPem", "keyAlgorithm", "validityStartTime", "validityEndTime", "readyForRenewal"}
}

var keyUsages = map[string]x509.KeyUsage{
	"digital_signature": x509.KeyUsageDigitalSignature, "content_commitment": x509.KeyUsageContentCommitment,
	"key_encipherment": x509.KeyUsageKeyEncipherment, "data_encipherment": x509.KeyUsageDataEncipherment,
	"key_agreement": x509.KeyUsageKeyAgreement, "cert_signing": x509.KeyUsageCertSign,
	"crl_signing": x509.KeyUsageCRLSign, "encipher_only": x509.KeyUsageEncipherOnly,
	"decipher_only": x509.KeyUsageDecipherOnly,
}

var extKeyUsages = map[string]x509.ExtKeyUsage{
	"any_extended": x509.ExtKeyUsageAny, "server_auth": x509.ExtKeyUsageServerAuth,
	"client_auth": x509.ExtKeyUsageClientAuth, "code_signing": x509.ExtKeyUsageCodeSigning,
	"email_protection": x509.ExtKeyUsageEmailProtection, "timestamping": x509.ExtKeyUsageTimeStamping,
	"ocsp_signing": x509.ExtKeyUsageOCSPSigning,
}

func stringList(in resource.PropertyMap, key string) []string {
	var out []string
	if v, ok := in[resource.PropertyKey(key)]; ok && v.IsArray() {
		for _, item := range v.ArrayValue() {
			if item.IsString() {
				out = append(out, item.StringValue())
			}
		}
	}
	return out
}

func parseSigner(pemText string) (crypto.Signer, string, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, "", fmt.Errorf("privateKeyPem is not PEM")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, "", err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, "", fmt.Errorf("unsupported private key type %T", key)
	}
	algorithm := map[string]string{"RSA PRIVATE KEY": "RSA", "EC PRIVATE KEY": "ECDSA"}[block.Type]
	if algorithm == "" {
		algorithm = "ED25519"
	}
	return signer, algorithm, nil
}

func (selfSignedCert) Create(in resource.PropertyMap) (resource.PropertyMap, error) {
	signer, algorithm, err := parseSigner(provider.String(in, "privateKeyPem", ""))
	if err != nil {
		return nil, err
	}
	hours := provider.Int(in, "validityPeriodHours", 0)
	if hours < 1 {
		return nil, fmt.Errorf("validityPeriodHours must be at least 1")
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	template := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             now,
		NotAfter:              now.Add(time.Duration(hours) * time.Hour),
		BasicConstraintsValid: true,
		IsCA:                  provider.Bool(in, "isCaCertificate", false),
		DNSNames:              stringList(in, "dnsNames"),
	}
	if subject, ok := in["subject"]; ok && subject.IsObject() {
		s := subject.ObjectValue()
		template.Subject = pkix.Name{CommonName: provider.String(s, "commonName", "")}
		if o := provider.String(s, "organization", ""); o != "" {
			template.Subject.Organization = []string{o}
		}
	}
	for _, ip := range stringList(in, "ipAddresses") {
		template.IPAddresses = append(template.IPAddresses, net.ParseIP(ip))
	}
	for _, use := range stringList(in, "allowedUses") {
		if ku, ok := keyUsages[use]; ok {
			template.KeyUsage |= ku
		} else if eku, ok := extKeyUsages[use]; ok {
			template.ExtKeyUsage = append(template.ExtKeyUsage, eku)
		} else {
			return nil, fmt.Errorf("unsupported allowedUses entry %q", use)
		}
	}
	if pub, err := x509.MarshalPKIXPublicKey(signer.Public()); err == nil {
		sum := sha1.Sum(pub) // #nosec G401
		template.SubjectKeyId = sum[:]
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, signer.Public(), signer)
	if err != nil {
		return nil, err
	}
	return resource.PropertyMap{
		"certPem":           resource.NewStringProperty(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))),
		"keyAlgorithm":      resource.NewStringProperty(algorithm),
		"validityStartTime": resource.NewStringProperty(template.NotBefore.Format(time.RFC3339)),
		"validityEndTime":   resource.NewStringProperty(template.NotAfter.Format(time.RFC3339)),
		"readyForRenewal":   resource.NewBoolProperty(false),
	}, nil
}
