package tls

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha1" // #nosec G505 -- upstream's id
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"apiplatform.local/e2e/plugins/internal/providertest"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

const version = "5.6.2"

func keyClient(t *testing.T) *providertest.Client {
	return providertest.Start(t, Provider(version), PrivateKey.Token)
}

func str(s string) resource.PropertyValue { return resource.NewProperty(s) }
func num(n int) resource.PropertyValue    { return resource.NewProperty(float64(n)) }

func pemBlock(t *testing.T, text, want string) []byte {
	t.Helper()
	block, rest := pem.Decode([]byte(text))
	if block == nil || block.Type != want || len(bytes.TrimSpace(rest)) > 0 {
		t.Fatalf("want one %s PEM block, got %q", want, text)
	}
	return block.Bytes
}

// newKey creates a key through the provider, as the program does.
func newKey(t *testing.T, c *providertest.Client, inputs resource.PropertyMap) (string, resource.PropertyMap) {
	t.Helper()
	return c.Create(c.MustCheck(inputs), false)
}

// checkPublicOutputs: the public outputs describe the private key, and the id is upstream's.
func checkPublicOutputs(t *testing.T, id string, state resource.PropertyMap, public crypto.PublicKey) {
	t.Helper()
	der := pemBlock(t, providertest.Text(state["publicKeyPem"]), "PUBLIC KEY")
	parsed, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatal(err)
	}
	if !parsed.(interface{ Equal(crypto.PublicKey) bool }).Equal(public) {
		t.Fatal("publicKeyPem is not the private key's public key")
	}
	sum := sha1.Sum(der) // #nosec G401
	if id != hex.EncodeToString(sum[:]) {
		t.Fatalf("id %q is not the hex SHA-1 of the public key", id)
	}
	for _, k := range []resource.PropertyKey{"publicKeyPem", "publicKeyOpenssh", "publicKeyFingerprintSha256"} {
		if state[k].IsSecret() {
			t.Errorf("%s is a secret, upstream's is not", k)
		}
	}
	for _, k := range []resource.PropertyKey{"privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"} {
		if !state[k].IsSecret() {
			t.Errorf("%s is not a secret", k)
		}
	}
}

func TestRSAKeyForAConsumerJWT(t *testing.T) {
	c := keyClient(t)
	if v := c.Version(); v != version {
		t.Fatalf("version %q", v)
	}
	id, state := newKey(t, c, resource.PropertyMap{"algorithm": str("RSA"), "rsaBits": num(2048)})
	key, err := x509.ParsePKCS1PrivateKey(pemBlock(t, providertest.Text(state["privateKeyPem"]), "RSA PRIVATE KEY"))
	if err != nil || key.N.BitLen() != 2048 {
		t.Fatalf("privateKeyPem: %v", err)
	}
	pkcs8, err := x509.ParsePKCS8PrivateKey(pemBlock(t, providertest.Text(state["privateKeyPemPkcs8"]), "PRIVATE KEY"))
	if err != nil || !key.Equal(pkcs8) {
		t.Fatalf("privateKeyPemPkcs8 is not the same key: %v", err)
	}
	openssh, err := ssh.ParseRawPrivateKey([]byte(providertest.Text(state["privateKeyOpenssh"])))
	if err != nil || !key.Equal(openssh) {
		t.Fatalf("privateKeyOpenssh is not the same key: %v", err)
	}
	checkPublicOutputs(t, id, state, &key.PublicKey)
	sshPub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(providertest.Text(state["publicKeyOpenssh"])))
	if err != nil || providertest.Text(state["publicKeyFingerprintSha256"]) != ssh.FingerprintSHA256(sshPub) ||
		providertest.Text(state["publicKeyFingerprintMd5"]) != ssh.FingerprintLegacyMD5(sshPub) {
		t.Fatalf("OpenSSH public key and fingerprints: %v", err)
	}
}

// The pinned hosts' keys: the pin the program publishes (components/pins.public_key_pin, the
// README's openssl pipeline) is the SHA-256 of the key's SubjectPublicKeyInfo.
func TestECDSAP256KeyForAPinnedHostMatchesItsPin(t *testing.T) {
	c := keyClient(t)
	id, state := newKey(t, c, resource.PropertyMap{"algorithm": str("ECDSA"), "ecdsaCurve": str("P256")})
	key, err := x509.ParseECPrivateKey(pemBlock(t, providertest.Text(state["privateKeyPem"]), "EC PRIVATE KEY"))
	if err != nil || key.Curve != elliptic.P256() {
		t.Fatalf("privateKeyPem: %v", err)
	}
	checkPublicOutputs(t, id, state, &key.PublicKey)
	spki := sha256.Sum256(pemBlock(t, providertest.Text(state["publicKeyPem"]), "PUBLIC KEY"))
	pin := base64.StdEncoding.EncodeToString(spki[:])
	cmd := exec.Command("sh", "-c", "openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64")
	cmd.Stdin = strings.NewReader(providertest.Text(state["publicKeyPem"]))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	if strings.TrimSpace(string(out)) != pin {
		t.Fatalf("openssl pins the key as %s, the SPKI digest is %s", out, pin)
	}
	// The private key openssl reads is the same key.
	cmd = exec.Command("sh", "-c", "openssl pkey -pubout -outform der | openssl dgst -sha256 -binary | base64")
	cmd.Stdin = strings.NewReader(providertest.Text(state["privateKeyPem"]))
	if out, err = cmd.Output(); err != nil || strings.TrimSpace(string(out)) != pin {
		t.Fatalf("openssl reads another key from privateKeyPem: %s %v", out, err)
	}
}

func TestECDSADefaultsToP224WithoutOpenSSHForms(t *testing.T) {
	c := keyClient(t)
	inputs := c.MustCheck(resource.PropertyMap{"algorithm": str("ECDSA")})
	_, planned := c.Create(inputs, true)
	if !planned["ecdsaCurve"].DeepEquals(str("P224")) || !planned["rsaBits"].DeepEquals(num(2048)) {
		t.Fatalf("defaults not stored: %v", planned)
	}
	if !providertest.Unknown(planned["privateKeyPem"]) || !providertest.Unknown(planned["publicKeyPem"]) {
		t.Fatal("a preview knows the key")
	}
	id, state := c.Create(inputs, false)
	key, err := x509.ParseECPrivateKey(pemBlock(t, providertest.Text(state["privateKeyPem"]), "EC PRIVATE KEY"))
	if err != nil || key.Curve != elliptic.P224() {
		t.Fatalf("not a P-224 key: %v", err)
	}
	checkPublicOutputs(t, id, state, &key.PublicKey)
	for _, k := range []resource.PropertyKey{"privateKeyOpenssh", "publicKeyOpenssh", "publicKeyFingerprintMd5"} {
		if providertest.Text(state[k]) != "" {
			t.Errorf("%s for P-224: %q, upstream's is empty", k, providertest.Text(state[k]))
		}
	}
}

func TestED25519Key(t *testing.T) {
	c := keyClient(t)
	id, state := newKey(t, c, resource.PropertyMap{"algorithm": str("ED25519")})
	key, err := x509.ParsePKCS8PrivateKey(pemBlock(t, providertest.Text(state["privateKeyPem"]), "PRIVATE KEY"))
	if err != nil {
		t.Fatal(err)
	}
	edKey, ok := key.(ed25519.PrivateKey)
	if !ok {
		t.Fatalf("not an Ed25519 key: %T", key)
	}
	checkPublicOutputs(t, id, state, edKey.Public())
}

func TestPrivateKeyCheckDiffReadImport(t *testing.T) {
	c := keyClient(t)
	for _, tc := range []struct {
		inputs         resource.PropertyMap
		property, text string
	}{
		{resource.PropertyMap{}, "algorithm", "is required"},
		{resource.PropertyMap{"algorithm": str("DSA")}, "algorithm", "one of RSA, ECDSA, ED25519"},
		{resource.PropertyMap{"algorithm": str("ECDSA"), "ecdsaCurve": str("P192")}, "ecdsaCurve", "one of P224"},
	} {
		if _, failures := c.Check(tc.inputs); !providertest.Failed(failures, tc.property, tc.text) {
			t.Errorf("%v: %v", tc.inputs, failures)
		}
	}
	inputs := c.MustCheck(resource.PropertyMap{"algorithm": str("ECDSA"), "ecdsaCurve": str("P256")})
	id, state := c.Create(inputs, false)
	if d := c.Diff(id, state, inputs); len(d.GetDiffs()) > 0 {
		t.Fatalf("unchanged: %v", d)
	}
	for _, change := range []resource.PropertyMap{
		{"algorithm": str("RSA")}, {"ecdsaCurve": str("P384")}, {"rsaBits": num(4096)},
	} {
		news := inputs.Copy()
		for k, v := range change {
			news[k] = v
		}
		if d := c.Diff(id, state, c.MustCheck(news)); len(d.GetReplaces()) != 1 {
			t.Errorf("%v must replace the key: %v", change, d)
		}
	}
	readID, read, readInputs, err := c.Read(id, state, inputs)
	if err != nil || readID != id || !read.DeepEquals(state) || !readInputs.DeepEquals(inputs) {
		t.Fatalf("refresh is not stable: %v", err)
	}
	if _, _, _, err := c.Read(id, resource.PropertyMap{}, resource.PropertyMap{}); err == nil ||
		!strings.Contains(err.Error(), "cannot be imported") {
		t.Fatalf("import: %v", err)
	}
}

func TestGetPublicKeyFromPEMAndOpenSSH(t *testing.T) {
	c := keyClient(t)
	id, state := newKey(t, c, resource.PropertyMap{"algorithm": str("RSA")})
	fn := providertest.Start(t, Provider(version), GetPublicKey.Token)
	for _, arg := range []resource.PropertyKey{"privateKeyPem", "privateKeyOpenssh"} {
		ret, failures := fn.Invoke(resource.PropertyMap{arg: state[arg]})
		if len(failures) > 0 {
			t.Fatal(failures)
		}
		if providertest.Text(ret["id"]) != id || providertest.Text(ret["algorithm"]) != "RSA" ||
			!ret["publicKeyPem"].DeepEquals(state["publicKeyPem"]) || !ret[arg].IsSecret() {
			t.Fatalf("from %s: %v", arg, ret)
		}
	}
	for _, args := range []resource.PropertyMap{{}, {"privateKeyPem": state["privateKeyPem"], "privateKeyOpenssh": state["privateKeyOpenssh"]}} {
		if _, failures := fn.Invoke(args); !providertest.Failed(failures, "privateKeyPem", "exactly one") {
			t.Errorf("%d arguments accepted: %v", len(args), failures)
		}
	}
}
