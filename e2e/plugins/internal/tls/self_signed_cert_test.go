package tls

import (
	"crypto/x509"
	"slices"
	"strings"
	"testing"
	"time"

	"apiplatform.local/e2e/plugins/internal/providertest"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

func certClient(t *testing.T) *providertest.Client {
	return providertest.Start(t, Provider(version), SelfSignedCert.Token)
}

func strs(s ...string) resource.PropertyValue {
	items := make([]resource.PropertyValue, len(s))
	for i, x := range s {
		items[i] = str(x)
	}
	return resource.NewProperty(items)
}

// serverCA is what components/postgres.py declares: the database server's CA, ten years.
func serverCA(t *testing.T) resource.PropertyMap {
	_, key := newKey(t, keyClient(t), resource.PropertyMap{"algorithm": str("ECDSA"), "ecdsaCurve": str("P256")})
	return resource.PropertyMap{
		"privateKeyPem":       key["privateKeyPem"], // a secret, as the engine passes an output
		"isCaCertificate":     resource.NewProperty(true),
		"validityPeriodHours": num(10 * 365 * 24),
		"allowedUses":         strs("cert_signing", "crl_signing", "digital_signature"),
		"subject": resource.NewProperty(resource.PropertyMap{
			"commonName": str("kong-pg server CA"), "organization": str("api-platform"),
		}),
	}
}

func parseCert(t *testing.T, state resource.PropertyMap) *x509.Certificate {
	t.Helper()
	cert, err := x509.ParseCertificate(pemBlock(t, providertest.Text(state["certPem"]), "CERTIFICATE"))
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func withInputs(base resource.PropertyMap, change resource.PropertyMap) resource.PropertyMap {
	out := base.Copy()
	for k, v := range change {
		out[k] = v
	}
	return out
}

func TestTheDatabaseServerCA(t *testing.T) {
	c := certClient(t)
	inputs := c.MustCheck(serverCA(t))
	if !inputs["privateKeyPem"].IsSecret() {
		t.Fatal("the private key input is not kept secret")
	}
	id, state := c.Create(inputs, false)
	cert := parseCert(t, state)
	if id != cert.SerialNumber.String() {
		t.Fatalf("id %q is not the serial number %s", id, cert.SerialNumber)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid || cert.Subject.CommonName != "kong-pg server CA" ||
		!slices.Equal(cert.Subject.Organization, []string{"api-platform"}) {
		t.Fatalf("not the declared CA: %+v", cert.Subject)
	}
	if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature; cert.KeyUsage != want {
		t.Fatalf("key usage %v, want %v", cert.KeyUsage, want)
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		t.Fatalf("not self-signed: %v", err)
	}
	if got := cert.NotAfter.Sub(cert.NotBefore); got != 10*365*24*time.Hour {
		t.Fatalf("validity %v", got)
	}
	ski, _ := subjectKeyID(cert.PublicKey)
	if !slices.Equal(cert.SubjectKeyId, ski) {
		t.Fatal("a CA certificate carries upstream's subject key id")
	}
	if providertest.Text(state["keyAlgorithm"]) != "ECDSA" || state["readyForRenewal"].BoolValue() {
		t.Fatalf("outputs: %v", state)
	}
	start, err := time.Parse(time.RFC3339Nano, providertest.Text(state["validityStartTime"]))
	if err != nil || !start.Truncate(time.Second).Equal(cert.NotBefore) { // the certificate keeps seconds
		t.Fatalf("validityStartTime %v vs %v", start, cert.NotBefore)
	}
	if !state["privateKeyPem"].IsSecret() || state["certPem"].IsSecret() {
		t.Fatal("the key must stay secret and the certificate not")
	}
	// A CA certificate the Python side (components/pins.ca_certificate) and openssl accept.
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots}); err != nil {
		t.Fatal(err)
	}
}

func TestCertificateReplacementRules(t *testing.T) {
	c := certClient(t)
	base := serverCA(t)
	inputs := c.MustCheck(base)
	id, state := c.Create(inputs, false)
	if d := c.Diff(id, state, inputs); d.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("unchanged inputs differ: %v", d)
	}
	for name, change := range map[string]resource.PropertyMap{
		"validityPeriodHours": {"validityPeriodHours": num(24)},
		"allowedUses":         {"allowedUses": strs("cert_signing")},
		"subject": {"subject": resource.NewProperty(resource.PropertyMap{
			"commonName": str("kong-pg server CA"), "organization": str("someone else")})},
		"isCaCertificate": {"isCaCertificate": resource.NewProperty(false)},
		"dnsNames":        {"dnsNames": strs("db.internal")},
		"privateKeyPem":   {"privateKeyPem": resource.MakeComputed(str(""))}, // a new key, not known yet
	} {
		d := c.Diff(id, state, c.MustCheck(withInputs(base, change)))
		if !slices.Equal(d.GetReplaces(), []string{name}) {
			t.Errorf("changing %s: %v", name, d)
		}
	}
	// earlyRenewalHours is an in-place update; it keeps the certificate.
	news := c.MustCheck(withInputs(base, resource.PropertyMap{"earlyRenewalHours": num(48)}))
	d := c.Diff(id, state, news)
	if !slices.Equal(d.GetDiffs(), []string{"earlyRenewalHours"}) || len(d.GetReplaces()) > 0 {
		t.Fatalf("earlyRenewalHours: %v", d)
	}
	updated := c.Update(id, state, news, false)
	if !updated["certPem"].DeepEquals(state["certPem"]) || !updated["earlyRenewalHours"].DeepEquals(num(48)) {
		t.Fatalf("update: %v", updated)
	}
}

func TestACertificateDueForRenewalIsReplaced(t *testing.T) {
	c := certClient(t)
	inputs := c.MustCheck(withInputs(serverCA(t), resource.PropertyMap{
		"validityPeriodHours": num(10), "earlyRenewalHours": num(2),
	}))
	id, state := c.Create(inputs, false)
	if d := c.Diff(id, state, inputs); len(d.GetDiffs()) > 0 {
		t.Fatalf("a new certificate is due: %v", d)
	}
	defer func(real func() time.Time) { now = real }(now)
	now = func() time.Time { return time.Now().UTC().Add(9 * time.Hour) } // within the last 2 hours
	if d := c.Diff(id, state, inputs); !slices.Equal(d.GetReplaces(), []string{"readyForRenewal"}) {
		t.Fatalf("due for renewal: %v", d)
	}
	_, read, _, err := c.Read(id, state, inputs)
	if err != nil || !read["readyForRenewal"].DeepEquals(resource.NewProperty(true)) {
		t.Fatalf("refresh must mark it ready for renewal: %v %v", err, read)
	}
	// Asking for fewer early hours makes it not due yet.
	later := c.MustCheck(withInputs(inputs, resource.PropertyMap{"earlyRenewalHours": num(0)}))
	if d := c.Diff(id, state, later); slices.Contains(d.GetReplaces(), "readyForRenewal") {
		t.Fatalf("not due with earlyRenewalHours 0: %v", d)
	}
}

func TestKeyIdentifiersPathLengthAndNames(t *testing.T) {
	c := certClient(t)
	inputs := withInputs(serverCA(t), resource.PropertyMap{
		"setAuthorityKeyId": resource.NewProperty(true), "maxPathLength": num(0),
		"dnsNames": strs("ca.internal"), "ipAddresses": strs("127.0.0.1"), "uris": strs("spiffe://platform/ca"),
	})
	_, state := c.Create(c.MustCheck(inputs), false)
	cert := parseCert(t, state)
	if !slices.Equal(cert.AuthorityKeyId, cert.SubjectKeyId) || !cert.MaxPathLenZero || cert.MaxPathLen != 0 {
		t.Fatalf("AKI %x SKI %x max path %d zero %v", cert.AuthorityKeyId, cert.SubjectKeyId, cert.MaxPathLen, cert.MaxPathLenZero)
	}
	if cert.DNSNames[0] != "ca.internal" || !cert.IPAddresses[0].IsLoopback() || cert.URIs[0].String() != "spiffe://platform/ca" {
		t.Fatalf("names: %v %v %v", cert.DNSNames, cert.IPAddresses, cert.URIs)
	}
	leaf := withInputs(inputs, resource.PropertyMap{"isCaCertificate": resource.NewProperty(false)})
	if _, _, err := c.TryCreate(c.MustCheck(leaf), false); err == nil || !strings.Contains(err.Error(), "subject key id") {
		t.Fatalf("an authority key id without a subject key id: %v", err)
	}
	noSubject := serverCA(t)
	delete(noSubject, "subject")
	if _, _, err := c.TryCreate(c.MustCheck(noSubject), false); err == nil || !strings.Contains(err.Error(), "distinguished name") {
		t.Fatalf("a CA without a subject: %v", err)
	}
}

func TestCertificateCheckAndImport(t *testing.T) {
	c := certClient(t)
	base := serverCA(t)
	for _, tc := range []struct {
		change         resource.PropertyMap
		property, text string
	}{
		{resource.PropertyMap{"allowedUses": strs("cert_sign")}, "allowedUses[0]", "must be one of"},
		{resource.PropertyMap{"ipAddresses": strs("10.0.0.300")}, "ipAddresses[0]", "not an IP address"},
		{resource.PropertyMap{"privateKeyPemWo": str("x")}, "privateKeyPemWo", "use privateKeyPem"},
		{resource.PropertyMap{"subject": resource.NewProperty(resource.PropertyMap{"cn": str("x")})}, "subject.cn", "not a property"},
		{resource.PropertyMap{"validityPeriodHours": num(-1)}, "validityPeriodHours", "at least 0"},
	} {
		if _, failures := c.Check(withInputs(base, tc.change)); !providertest.Failed(failures, tc.property, tc.text) {
			t.Errorf("%v: %v", tc.change, failures)
		}
	}
	if _, _, _, err := c.Read("1234", resource.PropertyMap{}, resource.PropertyMap{}); err == nil {
		t.Fatal("a certificate was imported")
	}
}
