package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPKIKeytoolCSRSignImport is the keytool-and-CA dance with portcullis
// as the CA: keytool -certreq writes a CSR with keytool's PEM header,
// `portcullis pki sign` signs it, and keytool -importcert installs the reply
// (the fixture runs the steps; this test checks each one's evidence).
func TestPKIKeytoolCSRSignImport(t *testing.T) {
	f := keystoreFixtures(t)
	t.Parallel()
	csr, err := os.ReadFile(f.csr)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(csr), "-----BEGIN NEW CERTIFICATE REQUEST-----") {
		t.Fatalf("keytool CSR does not use the header under test:\n%s", csr)
	}
	if !strings.Contains(f.importOut, "Certificate reply was installed in keystore") {
		t.Errorf("keytool -importcert of the reply: %s", f.importOut)
	}
	list := keytoolList(t, f.jks, ksStorePass)
	for _, w := range []string{"Alias name: server", "PrivateKeyEntry", "Certificate chain length: 2", "Issuer: CN=apimanCA"} {
		if !strings.Contains(list, w) {
			t.Errorf("keytool -list lacks %q:\n%s", w, list)
		}
	}
}

// TestPKIIssuedChainsVerifyWithOpenSSL builds root → intermediate → leaf
// with the commands (the root key encrypted, its password from the
// environment) and has OpenSSL verify the result.
func TestPKIIssuedChainsVerifyWithOpenSSL(t *testing.T) {
	openssl := needTool(t, "openssl")
	t.Parallel()
	dir := t.TempDir()
	root, inter, out := filepath.Join(dir, "root"), filepath.Join(dir, "inter"), filepath.Join(dir, "out")
	mustSucceed(t, "pki", "init-ca", "--name", "apimanCA", "--out", root, "--password-env", "CA_PASS")
	mustSucceed(t, "pki", "init-ca", "--name", "apiman issuing CA", "--out", inter, "--intermediate-of", root, "--ca-password-env", "CA_PASS")
	r := mustSucceed(t, "pki", "issue", "--ca", inter, "--name", "gateway", "--dns", "gw.example.test", "--ip", "10.0.0.7",
		"--uri", "spiffe://example.test/gw", "--out", out)
	if !strings.Contains(r.stdout, `signed by "apiman issuing CA"`) {
		t.Errorf("issue output: %s", r)
	}
	rootCert, interCert, leaf := filepath.Join(root, "ca.crt"), filepath.Join(inter, "ca.crt"), filepath.Join(out, "gateway.crt")
	o, err := exec.Command(openssl, "verify", "-CAfile", rootCert, "-untrusted", interCert, leaf).CombinedOutput()
	if err != nil || !strings.Contains(string(o), "OK") {
		t.Errorf("openssl verify -CAfile root -untrusted intermediate leaf: %v\n%s", err, o)
	}
	o, err = exec.Command(openssl, "verify", "-purpose", "sslserver", "-CAfile", rootCert, "-untrusted", interCert, leaf).CombinedOutput()
	if err != nil {
		t.Errorf("openssl verify -purpose sslserver: %v\n%s", err, o)
	}
	// Without the intermediate the same check must fail, or the one above
	// proves nothing.
	onlyLeaf := filepath.Join(dir, "leaf-only.pem")
	data, err := os.ReadFile(leaf)
	if err != nil {
		t.Fatal(err)
	}
	end := strings.Index(string(data), "-----END CERTIFICATE-----")
	if err := os.WriteFile(onlyLeaf, data[:end+len("-----END CERTIFICATE-----\n")], 0o644); err != nil {
		t.Fatal(err)
	}
	if o, err := exec.Command(openssl, "verify", "-CAfile", rootCert, onlyLeaf).CombinedOutput(); err == nil {
		t.Errorf("openssl verified the leaf without its intermediate:\n%s", o)
	}
	// inspect agrees: the chain file holds the whole chain.
	doc := inspectJSONOf(t, filepath.Join(out, "gateway-chain.pem"))
	if len(doc.Entries) != 1 || doc.Entries[0].Kind != "certificate" || doc.Entries[0].Chain.Length != 3 || !doc.Entries[0].Chain.Complete {
		t.Errorf("inspect of the chain file: %+v", doc.Entries)
	}
	if sans := doc.Entries[0].Certificates[0].SANs; len(sans.DNS) != 1 || len(sans.IP) != 1 || len(sans.URI) != 1 {
		t.Errorf("SANs: %+v", sans)
	}
}

// TestPKIIssueStoresForKeytool checks that keytool lists the PKCS#12 and
// JKS stores `pki issue` writes, and that inspect reads them.
func TestPKIIssueStoresForKeytool(t *testing.T) {
	needTool(t, "keytool")
	t.Parallel()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca")
	mustSucceed(t, "pki", "init-ca", "--name", "apimanCA", "--out", ca, "--key", "rsa")
	for _, format := range []string{"p12", "jks"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(dir, format)
			mustSucceed(t, "pki", "issue", "--ca", ca, "--name", "api-a", "--client", "--format", format, "--out", out, "--password-env", "KS_PASS")
			store := filepath.Join(out, "api-a."+format)
			list := keytoolList(t, store, ksStorePass)
			for _, w := range []string{"Alias name: api-a", "PrivateKeyEntry", "Certificate chain length: 2"} {
				if !strings.Contains(list, w) {
					t.Errorf("keytool -list lacks %q:\n%s", w, list)
				}
			}
			doc := inspectJSONOf(t, store, "--password-env", "KS_PASS")
			if len(doc.Entries) != 1 || doc.Entries[0].Alias != "api-a" || !doc.Entries[0].Chain.Complete || doc.Entries[0].Key.Type != "EC" {
				t.Errorf("inspect: %+v", doc.Entries)
			}
		})
	}
}
