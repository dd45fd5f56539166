package cli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/testpki"
)

// Passwords of the keystore tests. Every output of every command is
// checked against all of them.
const (
	ksStorePass = "St0re-pass-7731"
	ksOutPass   = "0ut-pass-4412"
	ksWrongPass = "wr0ng-pass-9090"
	ksCAPass    = "ca-Pass-5521"
)

var ksSecrets = []string{ksStorePass, ksOutPass, ksWrongPass, ksCAPass}

// ksEnv passes the passwords by environment variable, the way operators
// are told to.
var ksEnv = []string{"KS_PASS=" + ksStorePass, "OUT_PASS=" + ksOutPass, "WRONG_PASS=" + ksWrongPass, "CA_PASS=" + ksCAPass}

// ksResult is one run of the portcullis binary.
type ksResult struct {
	stdout, stderr string
	code           int
}

func (r ksResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// portcullis runs the binary with ksEnv and no terminal on stdin, and fails
// the test if any password appears in its output.
func portcullis(t *testing.T, args ...string) ksResult {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), ksEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := ksResult{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running portcullis %s: %v", strings.Join(args, " "), err)
	}
	for _, s := range ksSecrets {
		if strings.Contains(r.stdout, s) || strings.Contains(r.stderr, s) {
			t.Errorf("portcullis %s printed a password:\n%s", strings.Join(args, " "), r)
		}
	}
	return r
}

func mustSucceed(t *testing.T, args ...string) ksResult {
	t.Helper()
	r := portcullis(t, args...)
	if r.code != 0 {
		t.Fatalf("portcullis %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// keytoolRun runs keytool with a JVM tuned for a short life.
func keytoolRun(dir string, args ...string) (string, error) {
	full := append([]string{"-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC"}, args...)
	cmd := exec.Command("keytool", full...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("keytool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func keytoolList(t *testing.T, path, password string) string {
	t.Helper()
	out, err := keytoolRun("", "-list", "-v", "-keystore", path, "-storepass", password)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// longLived keeps test certificates clear of the 30-day expiry warning
// (testpki's default is a day).
func longLived() testpki.Option {
	return testpki.Validity(time.Now().Add(-time.Hour), time.Now().Add(400*24*time.Hour))
}

// ksFixtures are stores made once by keytool and portcullis for all the
// keystore and pki tests: keytool starts a JVM per call.
type ksFixtures struct {
	dir string
	// p12 is keytool's PKCS#12 with key entries "alpha" (EC) and "beta"
	// (RSA 2048) and the trusted certificate "root".
	p12 string
	// jks is a JKS whose key "server" went through the CA dance: keytool
	// -certreq, `portcullis pki sign`, keytool -importcert of the reply
	// after the CA as trusted "ca".
	jks, csr, reply, importOut string
	// jceks holds the key "tls" and the secret key "hadoop.secret".
	jceks string
	// caDir is the portcullis CA that signed the reply; rootPEM is a
	// testpki root imported into p12.
	caDir, rootPEM string
}

var (
	ksOnce sync.Once
	ksFix  ksFixtures
	ksErr  error
)

func keystoreFixtures(t *testing.T) *ksFixtures {
	t.Helper()
	needTool(t, "keytool")
	ksOnce.Do(func() { ksFix, ksErr = buildKSFixtures(t) })
	if ksErr != nil {
		t.Fatalf("building keystore fixtures: %v", ksErr)
	}
	return &ksFix
}

func buildKSFixtures(t *testing.T) (ksFixtures, error) {
	// Beside the binary, so that TestMain's cleanup removes it too.
	dir, err := os.MkdirTemp(filepath.Dir(binary), "keystore-")
	if err != nil {
		return ksFixtures{}, err
	}
	f := ksFixtures{dir: dir}
	p := func(n string) string { return filepath.Join(dir, n) }
	f.p12, f.jks, f.jceks = p("keytool.p12"), p("keytool.jks"), p("secret.jceks")
	f.csr, f.reply, f.caDir, f.rootPEM = p("server.csr"), p("server.crt"), p("ca"), p("root.pem")
	root := testpki.NewCA(t, "Keytool Test Root", longLived())
	testpki.WriteFile(t, f.rootPEM, root.CertPEM())

	pc := func(args ...string) error {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), ksEnv...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("portcullis %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	kt := func(args ...string) error { _, err := keytoolRun(dir, args...); return err }
	gen := func(store, storetype, alias string, extra ...string) error {
		args := []string{"-genkeypair", "-alias", alias, "-dname", "CN=" + alias, "-validity", "400",
			"-keystore", store, "-storetype", storetype, "-storepass", ksStorePass}
		if len(extra) == 0 {
			extra = []string{"-keyalg", "EC", "-groupname", "secp256r1"}
		}
		return kt(append(args, extra...)...)
	}
	chains := [][]func() error{
		{
			func() error { return gen(f.p12, "PKCS12", "alpha") },
			func() error { return gen(f.p12, "PKCS12", "beta", "-keyalg", "RSA", "-keysize", "2048") },
			func() error {
				return kt("-importcert", "-noprompt", "-trustcacerts", "-alias", "root", "-file", f.rootPEM,
					"-keystore", f.p12, "-storetype", "PKCS12", "-storepass", ksStorePass)
			},
		},
		{
			func() error { return pc("pki", "init-ca", "--name", "apimanCA", "--out", f.caDir) },
			func() error { return gen(f.jks, "JKS", "server") },
			func() error {
				return kt("-certreq", "-alias", "server", "-keystore", f.jks, "-storepass", ksStorePass, "-file", f.csr)
			},
			func() error { return pc("pki", "sign", "--ca", f.caDir, "--csr", f.csr, "--out", f.reply, "--server") },
			func() error {
				return kt("-importcert", "-noprompt", "-trustcacerts", "-alias", "ca", "-file", filepath.Join(f.caDir, "ca.crt"),
					"-keystore", f.jks, "-storepass", ksStorePass)
			},
			func() (err error) {
				f.importOut, err = keytoolRun(dir, "-importcert", "-noprompt", "-alias", "server", "-file", f.reply,
					"-keystore", f.jks, "-storepass", ksStorePass)
				return err
			},
		},
		{
			func() error { return gen(f.jceks, "JCEKS", "tls") },
			func() error {
				return kt("-genseckey", "-alias", "hadoop.secret", "-keyalg", "AES", "-keysize", "128",
					"-keystore", f.jceks, "-storetype", "JCEKS", "-storepass", ksStorePass, "-keypass", ksStorePass)
			},
		},
	}
	var wg sync.WaitGroup
	errs := make([]error, len(chains))
	for i, steps := range chains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, s := range steps {
				if errs[i] = s(); errs[i] != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return f, err
		}
	}
	return f, nil
}

// inspectJSON mirrors the documented JSON of `keystore inspect --json`;
// decoding with DisallowUnknownFields would hide nothing, so the test reads
// the fields it relies on by name.
type inspectJSON struct {
	File    string `json:"file"`
	Format  string `json:"format"`
	Entries []struct {
		Alias string `json:"alias"`
		Kind  string `json:"kind"`
		Key   *struct {
			Type               string `json:"type"`
			Size               int    `json:"size"`
			Curve              string `json:"curve"`
			Decrypted          bool   `json:"decrypted"`
			MatchesCertificate *bool  `json:"matches_certificate"`
		} `json:"key"`
		Certificates []struct {
			Subject string `json:"subject"`
			Issuer  string `json:"issuer"`
			SANs    struct {
				DNS   []string `json:"dns"`
				IP    []string `json:"ip"`
				URI   []string `json:"uri"`
				Email []string `json:"email"`
			} `json:"sans"`
			Serial    string    `json:"serial"`
			NotBefore time.Time `json:"not_before"`
			NotAfter  time.Time `json:"not_after"`
			DaysLeft  int       `json:"days_left"`
			KeyType   string    `json:"key_type"`
			KeySize   int       `json:"key_size"`
			SHA256    string    `json:"sha256"`
		} `json:"certificates"`
		Chain struct {
			Length        int    `json:"length"`
			Complete      bool   `json:"complete"`
			MissingIssuer string `json:"missing_issuer"`
		} `json:"chain"`
	} `json:"entries"`
	Warnings []struct {
		Alias   string `json:"alias"`
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"warnings"`
}

func inspectJSONOf(t *testing.T, args ...string) inspectJSON {
	t.Helper()
	r := mustSucceed(t, append([]string{"keystore", "inspect", "--json"}, args...)...)
	var doc inspectJSON
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("inspect --json is not JSON: %v\n%s", err, r.stdout)
	}
	return doc
}

var keytoolSHA256 = regexp.MustCompile(`Alias name: (\S+)[\s\S]*?SHA256: ([0-9A-F:]+)`)

func TestKeystoreInspectKeytoolPKCS12(t *testing.T) {
	f := keystoreFixtures(t)
	t.Parallel()
	text := mustSucceed(t, "keystore", "inspect", f.p12, "--password-env", "KS_PASS").stdout
	for _, want := range []string{
		"pkcs12, 3 entries",
		`Entry 1: "alpha", private key entry`, "Key:         EC P-256 (decrypted, matches the certificate)",
		`Entry 2: "beta", private key entry`, "Key:         RSA 2048 (decrypted, matches the certificate)",
		`Entry 3: "root", trusted certificate`, "Subject:     CN=Keytool Test Root",
		"Chain:       1 certificate, self-signed", "days left", "SHA-256:", "No warnings.",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("inspect text lacks %q:\n%s", want, text)
		}
	}

	doc := inspectJSONOf(t, f.p12, "--password-env", "KS_PASS")
	if doc.Format != "pkcs12" || len(doc.Entries) != 3 {
		t.Fatalf("format %q with %d entries, want pkcs12 with 3", doc.Format, len(doc.Entries))
	}
	fingerprints := map[string]string{}
	for _, m := range keytoolSHA256.FindAllStringSubmatch(keytoolList(t, f.p12, ksStorePass), -1) {
		fingerprints[m[1]] = m[2]
	}
	for _, e := range doc.Entries {
		if len(e.Certificates) == 0 {
			t.Fatalf("entry %q has no certificates", e.Alias)
		}
		c := e.Certificates[0]
		if want := fingerprints[e.Alias]; c.SHA256 != want {
			t.Errorf("%s: sha256 %s, keytool says %s", e.Alias, c.SHA256, want)
		}
		if c.DaysLeft < 398 || c.DaysLeft > 400 || c.Serial == "" || c.NotAfter.Before(c.NotBefore) {
			t.Errorf("%s: days_left %d, serial %q, validity %s..%s", e.Alias, c.DaysLeft, c.Serial, c.NotBefore, c.NotAfter)
		}
		switch e.Alias {
		case "alpha", "beta":
			if e.Kind != "private-key" || e.Key == nil || !e.Key.Decrypted || e.Key.MatchesCertificate == nil || !*e.Key.MatchesCertificate {
				t.Errorf("%s: kind %s key %+v; want a decrypted, matching private key", e.Alias, e.Kind, e.Key)
			}
		case "root":
			if e.Kind != "trusted-cert" || e.Key != nil || !e.Chain.Complete {
				t.Errorf("root: kind %s, key %v, chain %+v", e.Kind, e.Key, e.Chain)
			}
		default:
			t.Errorf("unexpected alias %q", e.Alias)
		}
	}
	if doc.Entries[1].Key.Type != "RSA" || doc.Entries[1].Key.Size != 2048 || doc.Entries[0].Key.Curve != "P-256" {
		t.Errorf("key types: %+v, %+v", doc.Entries[0].Key, doc.Entries[1].Key)
	}
	// keytool's self-signed leaves are complete on their own; no warnings.
	if len(doc.Warnings) != 0 {
		t.Errorf("warnings: %+v", doc.Warnings)
	}
}

func TestKeystoreInspectSignedJKS(t *testing.T) {
	f := keystoreFixtures(t)
	t.Parallel()
	doc := inspectJSONOf(t, f.jks, "--password-env", "KS_PASS")
	if doc.Format != "jks" || len(doc.Entries) != 2 {
		t.Fatalf("format %q with %d entries, want jks with 2", doc.Format, len(doc.Entries))
	}
	ca, server := doc.Entries[0], doc.Entries[1]
	if ca.Alias != "ca" || ca.Kind != "trusted-cert" || server.Alias != "server" || server.Kind != "private-key" {
		t.Fatalf("entries %q (%s), %q (%s)", ca.Alias, ca.Kind, server.Alias, server.Kind)
	}
	if server.Chain.Length != 2 || !server.Chain.Complete || server.Certificates[1].Subject != "CN=apimanCA" {
		t.Errorf("server chain %+v, certificates %+v; want 2 certificates up to CN=apimanCA", server.Chain, server.Certificates)
	}
}

// TestKeystoreInspectWarnings covers the warnings on PEM files, which need
// no password: expired and expiring certificates, a missing intermediate,
// and a key that belongs to another certificate.
func TestKeystoreInspectWarnings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	root := testpki.NewCA(t, "Warn Root", longLived())
	inter := root.Intermediate(t, "Warn Issuing", longLived())
	now := time.Now()
	expired := inter.Issue(t, "old", testpki.Expired())
	soon := root.Issue(t, "soon", testpki.Validity(now.Add(-time.Hour), now.Add(10*24*time.Hour)))
	fine := inter.Issue(t, "fine", longLived(), testpki.DNS("api.example.test"), testpki.IP("10.1.2.3"), testpki.URI("spiffe://example.test/api"))
	other := root.Issue(t, "other", longLived())
	write := func(name string, parts ...[]byte) string {
		path := filepath.Join(dir, name)
		testpki.WriteFile(t, path, bytes.Join(parts, nil))
		return path
	}
	cases := []struct {
		name      string
		file      string
		wantCodes []string
		wantMsg   []string
	}{
		{"complete chain has no warning", write("fine.pem", fine.KeyPEM(), fine.CertPEM(), root.CertPEM()), nil, nil},
		{"expired leaf", write("old.pem", expired.KeyPEM(), expired.CertPEM(), root.CertPEM()), []string{"expired"}, []string{`"CN=old,O=Portcullis tests" expired on`}},
		{"expiring leaf", write("soon.pem", soon.KeyPEM(), soon.CertPEM(), root.CertPEM()), []string{"expiring"}, []string{"expires in 9 days"}},
		{"missing intermediate", write("gap.pem", fine.KeyPEM(), testpki.CertsPEM(fine.Cert, root.Cert)), []string{"chain_incomplete"},
			[]string{`issued by "CN=Warn Issuing,O=Portcullis tests", which is missing (likely an intermediate: the store holds the root "CN=Warn Root,O=Portcullis tests"`}},
		{"missing root", write("noroot.pem", fine.KeyPEM(), fine.CertPEM()), []string{"chain_incomplete"}, []string{`issued by "CN=Warn Root,O=Portcullis tests", which is missing`}},
		{"key of another certificate", write("mismatch.pem", fine.KeyPEM(), testpki.CertsPEM(other.Cert, root.Cert)), []string{"key_mismatch"},
			[]string{`does not belong to certificate "CN=other,O=Portcullis tests"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := inspectJSONOf(t, tc.file)
			var codes, msgs []string
			for _, w := range doc.Warnings {
				codes = append(codes, w.Code)
				msgs = append(msgs, w.Message)
			}
			if strings.Join(codes, ",") != strings.Join(tc.wantCodes, ",") {
				t.Errorf("warning codes %v, want %v (%v)", codes, tc.wantCodes, msgs)
			}
			for _, m := range tc.wantMsg {
				if !strings.Contains(strings.Join(msgs, "\n"), m) {
					t.Errorf("warnings %q lack %q", msgs, m)
				}
			}
			text := mustSucceed(t, "keystore", "inspect", tc.file).stdout
			if len(tc.wantCodes) > 0 && !strings.Contains(text, "Warnings:") {
				t.Errorf("text output has no warnings:\n%s", text)
			}
		})
	}
	doc := inspectJSONOf(t, filepath.Join(dir, "fine.pem"))
	sans := doc.Entries[0].Certificates[0].SANs
	if strings.Join(sans.DNS, ",") != "api.example.test" || strings.Join(sans.IP, ",") != "10.1.2.3" || strings.Join(sans.URI, ",") != "spiffe://example.test/api" || sans.Email == nil {
		t.Errorf("sans = %+v", sans)
	}
}

func TestKeystoreConvert(t *testing.T) {
	f := keystoreFixtures(t)
	t.Parallel()
	dir := t.TempDir()
	out := func(name string) string { return filepath.Join(dir, name) }

	t.Run("keytool pkcs12 with several keys to jks keeps every entry", func(t *testing.T) {
		t.Parallel()
		r := mustSucceed(t, "keystore", "convert", f.p12, out("all.jks"), "--in-password-env", "KS_PASS", "--out-password-env", "OUT_PASS")
		if !strings.Contains(r.stdout, `2 key entries ("alpha", "beta"), 1 trusted certificate ("root")`) {
			t.Errorf("summary: %s", r)
		}
		list := keytoolList(t, out("all.jks"), ksOutPass)
		for _, w := range []string{"Keystore type: JKS", "Your keystore contains 3 entries", "Alias name: alpha", "Alias name: beta", "Alias name: root", "trustedCertEntry"} {
			if !strings.Contains(list, w) {
				t.Errorf("keytool -list lacks %q:\n%s", w, list)
			}
		}
		doc := inspectJSONOf(t, out("all.jks"), "--password-env", "OUT_PASS")
		if len(doc.Entries) != 3 || doc.Entries[1].Key == nil || !doc.Entries[1].Key.Decrypted || doc.Entries[1].Key.Type != "RSA" {
			t.Errorf("converted jks read back as %+v", doc.Entries)
		}
	})
	t.Run("keytool jks to pkcs12 that keytool lists", func(t *testing.T) {
		t.Parallel()
		mustSucceed(t, "keystore", "convert", f.jks, out("server.p12"), "--in-password-env", "KS_PASS", "--out-password-env", "OUT_PASS")
		list := keytoolList(t, out("server.p12"), ksOutPass)
		for _, w := range []string{"Keystore type: PKCS12", "Your keystore contains 2 entries", "Alias name: server", "Certificate chain length: 2", "Alias name: ca", "trustedCertEntry"} {
			if !strings.Contains(list, w) {
				t.Errorf("keytool -list lacks %q:\n%s", w, list)
			}
		}
	})
	t.Run("one alias to pkcs12 and back", func(t *testing.T) {
		t.Parallel()
		mustSucceed(t, "keystore", "convert", f.jks, out("one.pfx"), "--alias", "SERVER", "--in-password-env", "KS_PASS", "--out-password-env", "OUT_PASS")
		list := keytoolList(t, out("one.pfx"), ksOutPass)
		if !strings.Contains(list, "Your keystore contains 1 entry") || !strings.Contains(list, "Alias name: server") {
			t.Errorf("keytool -list:\n%s", list)
		}
		mustSucceed(t, "keystore", "convert", out("one.pfx"), out("back.ks"), "--to", "jks", "--in-password-env", "OUT_PASS", "--out-password-env", "KS_PASS")
		doc := inspectJSONOf(t, out("back.ks"), "--password-env", "KS_PASS")
		if doc.Format != "jks" || len(doc.Entries) != 1 || doc.Entries[0].Alias != "server" || doc.Entries[0].Chain.Length != 2 {
			t.Errorf("round trip gave %+v", doc)
		}
	})
	t.Run("several keys to pem is refused with the aliases", func(t *testing.T) {
		t.Parallel()
		r := portcullis(t, "keystore", "convert", f.p12, out("all.pem"), "--in-password-env", "KS_PASS")
		if r.code != 1 || !strings.Contains(r.stderr, `2 key entries ("alpha", "beta")`) || !strings.Contains(r.stderr, "--alias") {
			t.Errorf("want a refusal listing the aliases: %s", r)
		}
		if _, err := os.Stat(out("all.pem")); err == nil {
			t.Error("a file was written")
		}
	})
	t.Run("one key to pem, openssl reads it, never overwritten without force", func(t *testing.T) {
		t.Parallel()
		pemOut := out("alpha.pem")
		mustSucceed(t, "keystore", "convert", f.p12, pemOut, "--alias", "alpha", "--in-password-env", "KS_PASS")
		if fi, err := os.Stat(pemOut); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("pem with a key: %v, mode %v; want 0600", err, fi.Mode().Perm())
		}
		if openssl, err := exec.LookPath("openssl"); err == nil {
			if o, err := exec.Command(openssl, "pkey", "-in", pemOut, "-noout").CombinedOutput(); err != nil {
				t.Errorf("openssl pkey: %v\n%s", err, o)
			}
		}
		before, _ := os.ReadFile(pemOut)
		r := portcullis(t, "keystore", "convert", f.p12, pemOut, "--alias", "alpha", "--in-password-env", "KS_PASS")
		if r.code != 1 || !strings.Contains(r.stderr, "refusing to overwrite") {
			t.Errorf("second convert: %s", r)
		}
		mustSucceed(t, "keystore", "convert", f.p12, pemOut, "--alias", "beta", "--in-password-env", "KS_PASS", "--force")
		after, _ := os.ReadFile(pemOut)
		if bytes.Equal(before, after) {
			t.Error("--force did not replace the file")
		}
		doc := inspectJSONOf(t, pemOut)
		if len(doc.Entries) != 1 || doc.Entries[0].Alias != "beta" || doc.Entries[0].Key.Type != "RSA" {
			t.Errorf("pem read back as %+v", doc.Entries)
		}
	})
	t.Run("output format from the name, or an error", func(t *testing.T) {
		t.Parallel()
		r := portcullis(t, "keystore", "convert", f.p12, out("x.keystore"), "--in-password-env", "KS_PASS")
		if r.code != 1 || !strings.Contains(r.stderr, "--to pem, --to p12 or --to jks") {
			t.Errorf("unknown extension: %s", r)
		}
	})
}

func TestKeystoreErrors(t *testing.T) {
	f := keystoreFixtures(t)
	t.Parallel()
	dir := t.TempDir()
	data, err := os.ReadFile(f.p12)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Join(dir, "corrupt.p12")
	testpki.WriteFile(t, corrupt, data[:len(data)/2])
	notAStore := filepath.Join(dir, "notes.txt")
	testpki.WriteFile(t, notAStore, []byte("hello\n"))
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"wrong password", []string{"keystore", "inspect", f.p12, "--password-env", "WRONG_PASS"},
			[]string{"(pkcs12)", "wrong password"}},
		{"wrong jks password on convert", []string{"keystore", "convert", f.jks, filepath.Join(dir, "x.p12"), "--in-password-env", "WRONG_PASS", "--out-password-env", "OUT_PASS"},
			[]string{"(jks)", "wrong password"}},
		{"unknown alias lists the aliases", []string{"keystore", "convert", f.p12, filepath.Join(dir, "x.jks"), "--alias", "gamma", "--in-password-env", "KS_PASS", "--out-password-env", "OUT_PASS"},
			[]string{`alias "gamma" not found`, `"alpha" (private-key)`, `"beta" (private-key)`, `"root" (trusted-cert)`}},
		{"corrupt file names the detected format", []string{"keystore", "inspect", corrupt, "--password-env", "KS_PASS"},
			[]string{"(pkcs12)", "corrupt"}},
		{"unknown content", []string{"keystore", "inspect", notAStore}, []string{"not pem, pkcs12, jks or jceks"}},
		{"jceks secret key says which and what to do", []string{"keystore", "inspect", f.jceks, "--password-env", "KS_PASS"},
			[]string{`"hadoop.secret" is a secret-key entry`, "keytool -importkeystore", "-srcalias", "keytool -delete -alias hadoop.secret"}},
		{"no password and no terminal", []string{"keystore", "inspect", f.p12},
			[]string{"is a pkcs12 store and needs its password", "--password-env"}},
		{"no input password on convert names the input flags", []string{"keystore", "convert", f.jks, filepath.Join(dir, "z.p12"), "--out-password-env", "OUT_PASS"},
			[]string{"is a jks store and needs its password", "--in-password-env"}},
		{"no output password and no terminal", []string{"keystore", "convert", f.p12, filepath.Join(dir, "y.jks"), "--in-password-env", "KS_PASS"},
			[]string{"--out-password-env"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := portcullis(t, tc.args...)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1: %s", r.code, r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q: %s", w, r)
				}
			}
		})
	}
}
