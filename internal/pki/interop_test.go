package pki

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests prove interoperability with the real tools: OpenSSL verifies
// issued chains, decrypts the encrypted CA key and reads the CRL; the JDK's
// keytool lists the stores written here, and its CSR → sign → import-reply
// flow succeeds. Each skips when its tool is not installed.

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed; skipping the %s interoperability check", name, name)
	}
	return p
}

func run(t *testing.T, tool string, args ...string) string {
	t.Helper()
	out, err := exec.Command(tool, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(tool), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func writePEMFile(t *testing.T, dir, name string, certs ...*x509.Certificate) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, encodeCertsPEM(certs...), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenSSLVerifiesIssuedChains(t *testing.T) {
	openssl := needTool(t, "openssl")
	t.Parallel()
	f := shared(t)
	dir := t.TempDir()
	rootPEM := writePEMFile(t, dir, "root.pem", f.root.Cert)
	interPEM := writePEMFile(t, dir, "intermediate.pem", f.inter.Cert)
	spiffe, _ := url.Parse("spiffe://example.org/ns/prod/sa/gateway")

	fromRoot, err := f.root.Issue(IssueOptions{Name: "direct.internal", Server: true, KeyType: KeyRSA})
	if err != nil {
		t.Fatal(err)
	}
	leaf := writePEMFile(t, dir, "direct.pem", fromRoot.Cert)
	if out := run(t, openssl, "verify", "-CAfile", rootPEM, leaf); !strings.Contains(out, "OK") {
		t.Errorf("openssl verify (root-issued): %s", out)
	}
	if out := run(t, openssl, "verify", "-purpose", "sslserver", "-CAfile", rootPEM, leaf); !strings.Contains(out, "OK") {
		t.Errorf("openssl verify -purpose sslserver: %s", out)
	}

	fromInter, err := f.inter.Issue(IssueOptions{
		Name: "gateway", Client: true, Server: true,
		DNS: []string{"gw.example.com"}, IPs: []net.IP{net.ParseIP("10.1.2.3")}, URIs: []*url.URL{spiffe},
	})
	if err != nil {
		t.Fatal(err)
	}
	leaf2 := writePEMFile(t, dir, "gateway.pem", fromInter.Cert)
	if out := run(t, openssl, "verify", "-CAfile", rootPEM, "-untrusted", interPEM, leaf2); !strings.Contains(out, "OK") {
		t.Errorf("openssl verify (intermediate-issued): %s", out)
	}
	// The same check without the intermediate must fail, or the test
	// above proves nothing.
	if out, err := exec.Command(openssl, "verify", "-CAfile", rootPEM, leaf2).CombinedOutput(); err == nil {
		t.Errorf("openssl verified an intermediate-issued leaf without the intermediate:\n%s", out)
	}

	text := run(t, openssl, "x509", "-in", leaf2, "-noout", "-text")
	for _, want := range []string{
		"TLS Web Server Authentication", "TLS Web Client Authentication",
		"DNS:gw.example.com", "IP Address:10.1.2.3", "URI:spiffe://example.org/ns/prod/sa/gateway",
		"X509v3 Subject Key Identifier", "X509v3 Authority Key Identifier", "CA:FALSE",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("openssl x509 -text lacks %q:\n%s", want, text)
		}
	}
	clientOnly, err := f.inter.Issue(IssueOptions{Name: "app-1", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	text = run(t, openssl, "x509", "-in", writePEMFile(t, dir, "app.pem", clientOnly.Cert), "-noout", "-text")
	if !strings.Contains(text, "TLS Web Client Authentication") || strings.Contains(text, "TLS Web Server Authentication") {
		t.Errorf("client-only certificate has the wrong EKUs:\n%s", text)
	}
	interText := run(t, openssl, "x509", "-in", interPEM, "-noout", "-text")
	if !strings.Contains(interText, "CA:TRUE, pathlen:0") {
		t.Errorf("intermediate lacks CA:TRUE, pathlen:0:\n%s", interText)
	}
}

func TestOpenSSLDecryptsEncryptedCAKey(t *testing.T) {
	openssl := needTool(t, "openssl")
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "ca")
	if _, err := InitCA(dir, CAOptions{Name: "sealed", KeyPassword: []byte("open sesame")}); err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, KeyFile)
	out := run(t, openssl, "pkey", "-in", keyPath, "-passin", "pass:open sesame", "-pubout")
	pub, _ := pem.Decode([]byte(out))
	if pub == nil {
		t.Fatalf("openssl pkey printed no public key:\n%s", out)
	}
	pk, err := x509.ParsePKIXPublicKey(pub.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := LoadCA(dir, []byte("open sesame"))
	if err != nil {
		t.Fatal(err)
	}
	if !publicKeysEqual(pk, ca.Cert.PublicKey) {
		t.Errorf("openssl decrypted a different key")
	}
	if out, err := exec.Command(openssl, "pkey", "-in", keyPath, "-passin", "pass:wrong", "-noout").CombinedOutput(); err == nil {
		t.Errorf("openssl accepted a wrong password:\n%s", out)
	}
	// And the other way: a key OpenSSL encrypts is one ParsePrivateKeyPEM reads.
	plain := filepath.Join(t.TempDir(), "plain.key")
	run(t, openssl, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", plain)
	enc := run(t, openssl, "pkcs8", "-topk8", "-in", plain, "-passout", "pass:pw123456")
	if _, err := ParsePrivateKeyPEM([]byte(enc), []byte("pw123456")); err != nil {
		t.Errorf("reading an OpenSSL-encrypted PKCS#8 key: %v", err)
	}
}

func TestOpenSSLReadsCRL(t *testing.T) {
	openssl := needTool(t, "openssl")
	t.Parallel()
	ca, err := InitCA(filepath.Join(t.TempDir(), "ca"), CAOptions{Name: "crl CA"})
	if err != nil {
		t.Fatal(err)
	}
	is, err := ca.Issue(IssueOptions{Name: "lost-laptop", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Revoke(is.Cert.SerialNumber, 1, time.Time{}); err != nil {
		t.Fatal(err)
	}
	crl, err := ca.CRL(0)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	crlPath := filepath.Join(dir, "crl.pem")
	if err := os.WriteFile(crlPath, crl, 0o644); err != nil {
		t.Fatal(err)
	}
	text := run(t, openssl, "crl", "-in", crlPath, "-noout", "-text")
	hexSerial := strings.ToUpper(FormatSerial(is.Cert.SerialNumber))
	if len(hexSerial)%2 == 1 {
		hexSerial = "0" + hexSerial
	}
	for _, want := range []string{hexSerial, "Key Compromise", "X509v3 CRL Number", "CN = crl CA"} {
		if !strings.Contains(text, want) {
			t.Errorf("openssl crl -text lacks %q:\n%s", want, text)
		}
	}
	caPath := writePEMFile(t, dir, "ca.pem", ca.Cert)
	if out := run(t, openssl, "crl", "-in", crlPath, "-CAfile", caPath, "-noout"); !strings.Contains(out, "verify OK") {
		t.Errorf("openssl crl signature check: %s", out)
	}
	leaf := writePEMFile(t, dir, "leaf.pem", is.Cert)
	if out, err := exec.Command(openssl, "verify", "-crl_check", "-CAfile", caPath, "-CRLfile", crlPath, leaf).CombinedOutput(); err == nil || !strings.Contains(string(out), "revoked") {
		t.Errorf("openssl verify -crl_check did not report the revocation (err %v):\n%s", err, out)
	}
}

func TestOpenSSLCSRIsSigned(t *testing.T) {
	openssl := needTool(t, "openssl")
	t.Parallel()
	f := shared(t)
	dir := t.TempDir()
	csrPath := filepath.Join(dir, "svc.csr")
	run(t, openssl, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", filepath.Join(dir, "svc.key"), "-subj", "/O=Example/CN=svc.internal",
		"-addext", "subjectAltName=DNS:svc.internal,IP:10.0.0.9",
		"-addext", "basicConstraints=critical,CA:TRUE",
		"-out", csrPath)
	csr, err := os.ReadFile(csrPath)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := f.inter.SignCSR(csr, SignOptions{Server: true})
	if err != nil {
		t.Fatal(err)
	}
	if cert.IsCA {
		t.Errorf("CA:TRUE from the request was copied into the certificate")
	}
	leaf := writePEMFile(t, dir, "svc.pem", cert)
	run(t, openssl, "verify", "-CAfile", writePEMFile(t, dir, "root.pem", f.root.Cert),
		"-untrusted", writePEMFile(t, dir, "inter.pem", f.inter.Cert), leaf)
	text := run(t, openssl, "x509", "-in", leaf, "-noout", "-text")
	for _, want := range []string{"DNS:svc.internal", "IP Address:10.0.0.9", "O = Example, CN = svc.internal", "TLS Web Server Authentication"} {
		if !strings.Contains(text, want) {
			t.Errorf("openssl x509 -text lacks %q:\n%s", want, text)
		}
	}
}

// TestKeytoolCertreqSignImport is the apiman-guide dance: keytool makes a key
// and a CSR, the CA signs it, and keytool installs the CA and then the reply.
func TestKeytoolCertreqSignImport(t *testing.T) {
	keytool := needTool(t, "keytool")
	t.Parallel()
	f := shared(t)
	dir := t.TempDir()
	store := filepath.Join(dir, "API_a_ks.jks") // Java 9+ writes PKCS#12 even into .jks.
	common := []string{"-keystore", store, "-storepass", "changeit"}
	run(t, keytool, append([]string{"-genkeypair", "-alias", "api_a", "-keyalg", "RSA", "-keysize", "2048",
		"-dname", "CN=api-a.internal, OU=APIs, O=Example", "-validity", "30"}, common...)...)
	csrPath := filepath.Join(dir, "API_a.csr")
	run(t, keytool, append([]string{"-certreq", "-alias", "api_a", "-file", csrPath}, common...)...)
	csr, err := os.ReadFile(csrPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(csr, []byte("-----BEGIN NEW CERTIFICATE REQUEST-----")) {
		t.Fatalf("keytool CSR does not use the NEW CERTIFICATE REQUEST header this test is about:\n%s", csr)
	}
	cert, err := f.inter.SignCSR(csr, SignOptions{Server: true})
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.String() != "CN=api-a.internal,OU=APIs,O=Example" || len(cert.DNSNames) != 1 || cert.DNSNames[0] != "api-a.internal" {
		t.Errorf("subject %q SANs %v not taken from the keytool request", cert.Subject, cert.DNSNames)
	}

	rootPath := writePEMFile(t, dir, "apimanCA.pem", f.root.Cert)
	run(t, keytool, append([]string{"-importcert", "-noprompt", "-trustcacerts", "-alias", "apimanca", "-file", rootPath}, common...)...)
	reply := writePEMFile(t, dir, "API_a.crt", cert, f.inter.Cert)
	out := run(t, keytool, append([]string{"-importcert", "-noprompt", "-trustcacerts", "-alias", "api_a", "-file", reply}, common...)...)
	if !strings.Contains(out, "Certificate reply was installed") {
		t.Errorf("keytool did not install the reply:\n%s", out)
	}
	list := run(t, keytool, append([]string{"-list", "-v", "-alias", "api_a"}, common...)...)
	if !strings.Contains(list, "Certificate chain length: 3") || !strings.Contains(list, "PrivateKeyEntry") {
		t.Errorf("keytool -list -v after import:\n%s", list)
	}
}

func TestKeytoolListsWrittenStores(t *testing.T) {
	keytool := needTool(t, "keytool")
	f := shared(t)
	is, err := f.inter.Issue(IssueOptions{Name: "gateway", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pw := []byte("changeit")
	trust := []*x509.Certificate{f.root.Cert, f.inter.Cert}
	tests := []struct {
		name  string
		file  string
		write func(path string) error
		want  []string
	}{
		{"JKS key store", "gateway.jks", func(p string) error { return WriteJKS(p, "gateway", is, pw) },
			[]string{"Keystore type: JKS", "Alias name: gateway", "PrivateKeyEntry", "Certificate chain length: 3"}},
		{"PKCS#12 key store", "gateway.p12", func(p string) error { return WritePKCS12(p, "gateway", is, pw) },
			[]string{"Keystore type: PKCS12", "Alias name: gateway", "PrivateKeyEntry", "Certificate chain length: 3"}},
		{"JKS trust store", "trust.jks", func(p string) error { return WriteTrustJKS(p, trust, pw) },
			[]string{"Keystore type: JKS", "Your keystore contains 2 entries", "Alias name: apimanca", "Alias name: apiman-issuing-ca", "trustedCertEntry"}},
		{"PKCS#12 trust store", "trust.p12", func(p string) error { return WriteTrustPKCS12(p, trust, pw) },
			[]string{"Keystore type: PKCS12", "Your keystore contains 2 entries", "Alias name: apimanca", "Alias name: apiman-issuing-ca", "trustedCertEntry"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(dir, tc.file)
			if err := tc.write(path); err != nil {
				t.Fatal(err)
			}
			out := run(t, keytool, "-list", "-v", "-keystore", path, "-storepass", string(pw))
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("keytool -list -v lacks %q:\n%s", w, out)
				}
			}
			if bytes.Contains([]byte(out), []byte("Alias name: 1\n")) {
				t.Errorf("keytool shows the anonymous alias \"1\"")
			}
		})
	}
}

// TestOpenSSLReadsPKCS12 checks the recomputed MAC and the friendlyName
// with a second, independent implementation.
func TestOpenSSLReadsPKCS12(t *testing.T) {
	openssl := needTool(t, "openssl")
	t.Parallel()
	f := shared(t)
	is, err := f.inter.Issue(IssueOptions{Name: "gateway", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "gateway.p12")
	if err := WritePKCS12(path, "gateway", is, []byte("changeit")); err != nil {
		t.Fatal(err)
	}
	out := run(t, openssl, "pkcs12", "-in", path, "-passin", "pass:changeit", "-info", "-nodes")
	for _, want := range []string{"MAC: sha256", "friendlyName: gateway", "BEGIN PRIVATE KEY", "CN = gateway"} {
		if !strings.Contains(out, want) {
			t.Errorf("openssl pkcs12 -info lacks %q:\n%s", want, out)
		}
	}
	if out, err := exec.Command(openssl, "pkcs12", "-in", path, "-passin", "pass:wrong", "-noout").CombinedOutput(); err == nil {
		t.Errorf("openssl accepted a wrong PKCS#12 password:\n%s", out)
	}
}
