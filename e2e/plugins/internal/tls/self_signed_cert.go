package tls

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"slices"
	"time"

	"apiplatform.local/e2e/plugins/internal/provider"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

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
	"email_protection": x509.ExtKeyUsageEmailProtection, "ipsec_end_system": x509.ExtKeyUsageIPSECEndSystem,
	"ipsec_tunnel": x509.ExtKeyUsageIPSECTunnel, "ipsec_user": x509.ExtKeyUsageIPSECUser,
	"timestamping": x509.ExtKeyUsageTimeStamping, "ocsp_signing": x509.ExtKeyUsageOCSPSigning,
	"microsoft_server_gated_crypto":     x509.ExtKeyUsageMicrosoftServerGatedCrypto,
	"netscape_server_gated_crypto":      x509.ExtKeyUsageNetscapeServerGatedCrypto,
	"microsoft_commercial_code_signing": x509.ExtKeyUsageMicrosoftCommercialCodeSigning,
	"microsoft_kernel_code_signing":     x509.ExtKeyUsageMicrosoftKernelCodeSigning,
}

func allowedUses() []string {
	var out []string
	for k := range keyUsages {
		out = append(out, k)
	}
	for k := range extKeyUsages {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// subjectFields are the distinguished-name fields of a certificate subject.
var subjectFields = []provider.Property{
	{Name: "commonName", Kind: provider.String}, {Name: "country", Kind: provider.String},
	{Name: "emailAddress", Kind: provider.String}, {Name: "locality", Kind: provider.String},
	{Name: "organization", Kind: provider.String}, {Name: "organizationalUnit", Kind: provider.String},
	{Name: "postalCode", Kind: provider.String}, {Name: "province", Kind: provider.String},
	{Name: "serialNumber", Kind: provider.String}, {Name: "streetAddresses", Kind: provider.StringList},
}

// now is the clock the certificate resources read (tests move it).
var now = func() time.Time { return time.Now().UTC() }

// SelfSignedCert is tls:index/selfSignedCert:SelfSignedCert. Every input but
// earlyRenewalHours replaces the certificate, and so does reaching the renewal window
// (readyForRenewal); the id is the certificate's serial number.
var SelfSignedCert = &provider.Resource{
	Token:       "tls:index/selfSignedCert:SelfSignedCert",
	Description: "A self-signed certificate for a private key.",
	Inputs: []provider.Property{
		{Name: "privateKeyPem", Kind: provider.String, Required: true, Secret: true, Replace: provider.Always,
			Description: "The private key the certificate belongs to, PEM."},
		{Name: "privateKeyPemWo", Kind: provider.String, Secret: true, Replace: provider.Always,
			Description: "Write-only private key: not supported by this provider (use privateKeyPem)."},
		{Name: "privateKeyPemWoVersion", Kind: provider.Int, Replace: provider.Always},
		{Name: "validityPeriodHours", Kind: provider.Int, Required: true, Replace: provider.Always, Min: provider.AtLeast(0)},
		{Name: "earlyRenewalHours", Kind: provider.Int, Default: provider.Num(0), Min: provider.AtLeast(0),
			Description: "Hours before expiry from which the certificate is due for renewal (replaced by the next update)."},
		{Name: "allowedUses", Kind: provider.StringList, Required: true, Replace: provider.Always, OneOf: allowedUses()},
		{Name: "dnsNames", Kind: provider.StringList, Replace: provider.Always},
		{Name: "ipAddresses", Kind: provider.StringList, Replace: provider.Always},
		{Name: "uris", Kind: provider.StringList, Replace: provider.Always},
		{Name: "isCaCertificate", Kind: provider.Bool, Default: provider.Flag(false), Replace: provider.Always},
		{Name: "maxPathLength", Kind: provider.Int, Replace: provider.Always,
			Description: "For a CA: how many intermediates may follow it (0: none)."},
		{Name: "setSubjectKeyId", Kind: provider.Bool, Default: provider.Flag(false), Replace: provider.Always},
		{Name: "setAuthorityKeyId", Kind: provider.Bool, Default: provider.Flag(false), Replace: provider.Always},
		{Name: "subject", Kind: provider.Object, Replace: provider.Always, Properties: subjectFields,
			ObjectType: "tls:index/SelfSignedCertSubject:SelfSignedCertSubject"},
	},
	Outputs: []provider.Property{
		{Name: "certPem", Kind: provider.String, Description: "The certificate, PEM."},
		{Name: "keyAlgorithm", Kind: provider.String, Description: "RSA, ECDSA or ED25519."},
		{Name: "validityStartTime", Kind: provider.String, Description: "RFC 3339."},
		{Name: "validityEndTime", Kind: provider.String, Description: "RFC 3339."},
		{Name: "readyForRenewal", Kind: provider.Bool, Description: "Expired, or within earlyRenewalHours of expiry."},
	},
	Normalize: checkCertificateInputs,
	Create:    createSelfSigned,
	Refresh: func(state provider.Values) resource.PropertyMap {
		return resource.PropertyMap{"readyForRenewal": provider.Flag(dueForRenewal(state, state))}
	},
	Expired: func(state, in provider.Values) []string {
		if dueForRenewal(state, in) {
			return []string{"readyForRenewal"}
		}
		return nil
	},
}

// dueForRenewal: the state's certificate ends within the inputs' earlyRenewalHours (or has ended).
func dueForRenewal(state, in provider.Values) bool {
	end, err := time.Parse(time.RFC3339, state.String("validityEndTime"))
	if err != nil {
		return false
	}
	return !now().Before(end.Add(-time.Duration(in.Int("earlyRenewalHours")) * time.Hour))
}

func checkCertificateInputs(in resource.PropertyMap) []provider.Failure {
	var failures []provider.Failure
	if v := in["privateKeyPemWo"]; !v.IsNull() {
		failures = append(failures, provider.Failure{Property: "privateKeyPemWo",
			Reason: "is a write-only input, which the project's own tls provider does not support: use privateKeyPem"})
	}
	values := provider.Values(in)
	if !in["ipAddresses"].ContainsUnknowns() {
		for i, ip := range values.Strings("ipAddresses") {
			if net.ParseIP(ip) == nil {
				failures = append(failures, provider.Failure{Property: fmt.Sprintf("ipAddresses[%d]", i),
					Reason: fmt.Sprintf("is not an IP address: %q", ip)})
			}
		}
	}
	if !in["uris"].ContainsUnknowns() {
		for i, u := range values.Strings("uris") {
			if _, err := url.Parse(u); err != nil {
				failures = append(failures, provider.Failure{Property: fmt.Sprintf("uris[%d]", i), Reason: err.Error()})
			}
		}
	}
	return failures
}

func subjectName(s provider.Values) pkix.Name {
	one := func(key string) []string {
		if s.String(key) == "" {
			return nil
		}
		return []string{s.String(key)}
	}
	name := pkix.Name{
		CommonName: s.String("commonName"), SerialNumber: s.String("serialNumber"),
		Country: one("country"), Locality: one("locality"), Organization: one("organization"),
		OrganizationalUnit: one("organizationalUnit"), PostalCode: one("postalCode"), Province: one("province"),
		StreetAddress: s.Strings("streetAddresses"),
	}
	if email := s.String("emailAddress"); email != "" {
		// emailAddress (PKCS #9) has no field of its own in pkix.Name.
		name.ExtraNames = append(name.ExtraNames, pkix.AttributeTypeAndValue{
			Type: []int{1, 2, 840, 113549, 1, 9, 1}, Value: email})
	}
	return name
}

func createSelfSigned(_ context.Context, in provider.Values) (string, resource.PropertyMap, error) {
	key, err := parsePrivateKeyPEM(in.String("privateKeyPem"))
	if err != nil {
		return "", nil, err
	}
	algorithm, err := algorithmOf(key)
	if err != nil {
		return "", nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return "", nil, err
	}
	start := now()
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subjectName(in.Object("subject")),
		NotBefore:             start,
		NotAfter:              start.Add(time.Duration(in.Int("validityPeriodHours")) * time.Hour),
		BasicConstraintsValid: true,
		DNSNames:              in.Strings("dnsNames"),
	}
	for _, ip := range in.Strings("ipAddresses") {
		template.IPAddresses = append(template.IPAddresses, net.ParseIP(ip))
	}
	for _, u := range in.Strings("uris") {
		parsed, err := url.Parse(u)
		if err != nil {
			return "", nil, err
		}
		template.URIs = append(template.URIs, parsed)
	}
	for _, use := range in.Strings("allowedUses") {
		template.KeyUsage |= keyUsages[use]
		if eku, ok := extKeyUsages[use]; ok {
			template.ExtKeyUsage = append(template.ExtKeyUsage, eku)
		}
	}
	if in.Bool("isCaCertificate") {
		// RFC 5280 §4.1.2.6: a CA's subject is a non-empty distinguished name.
		if template.Subject.String() == "" {
			return "", nil, errors.New("a CA certificate needs a subject with at least one distinguished name")
		}
		template.IsCA = true
		if template.SubjectKeyId, err = subjectKeyID(key.Public()); err != nil {
			return "", nil, err
		}
		if in.Has("maxPathLength") && in.Int("maxPathLength") >= 0 {
			template.MaxPathLen = in.Int("maxPathLength")
			template.MaxPathLenZero = template.MaxPathLen == 0
		}
	}
	if in.Bool("setSubjectKeyId") {
		if template.SubjectKeyId, err = subjectKeyID(key.Public()); err != nil {
			return "", nil, err
		}
	}
	if in.Bool("setAuthorityKeyId") {
		if len(template.SubjectKeyId) == 0 {
			return "", nil, errors.New("setAuthorityKeyId needs a subject key id (isCaCertificate or setSubjectKeyId)")
		}
		template.AuthorityKeyId = template.SubjectKeyId
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, key.Public(), key)
	if err != nil {
		return "", nil, err
	}
	from, _ := template.NotBefore.MarshalText()
	to, _ := template.NotAfter.MarshalText()
	return serial.String(), resource.PropertyMap{
		"certPem":           provider.Str(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))),
		"keyAlgorithm":      provider.Str(algorithm),
		"validityStartTime": provider.Str(string(from)),
		"validityEndTime":   provider.Str(string(to)),
		"readyForRenewal":   provider.Flag(false),
	}, nil
}
