package cli_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/testpki"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ from the current output")

// inspectVolatile are the parts of `keystore inspect` text that change
// with every run of the test: the certificates are made at test time, so
// their dates, serials and fingerprints are new each time. Each is replaced
// by a fixed placeholder; the words around it (day or days, left or ago)
// stay, so the golden files still check them. Temporary directories are
// replaced separately, by normaliseInspect.
var inspectVolatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}`), "YYYY-MM-DD hh:mm:ss"},
	{regexp.MustCompile(`\b\d{4}-\d{2}-\d{2}\b`), "YYYY-MM-DD"},
	{regexp.MustCompile(`\b\d+ (days?) (left|ago)\b`), "N $1 $2"},
	{regexp.MustCompile(`\bexpires in \d+ (days?)\b`), "expires in N $1"},
	{regexp.MustCompile(`(?m)^(\s+Serial:\s+)[0-9a-f]+$`), "${1}SERIAL"},
	{regexp.MustCompile(`\b[0-9A-F]{2}(:[0-9A-F]{2}){31}\b`), "SHA256-FINGERPRINT"},
	{regexp.MustCompile(`\b[0-9a-f]{40}\b`), "KEY-ID"},
}

// normaliseInspect makes inspect's text output comparable across runs:
// the temporary directories in dirs become $TMP, then every volatile value
// becomes its placeholder.
func normaliseInspect(out string, dirs ...string) string {
	for _, d := range dirs {
		out = strings.ReplaceAll(out, d, "$TMP")
	}
	for _, v := range inspectVolatile {
		out = v.re.ReplaceAllString(out, v.with)
	}
	return out
}

// checkGolden compares got with testdata/inspect/NAME.golden, or writes
// that file with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "inspect", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (create it with: go test ./internal/cli -run TestInspectGolden -update)", err)
	}
	if got != string(want) {
		t.Errorf("inspect output differs from %s (if the change is intended, regenerate with: go test ./internal/cli -run TestInspectGolden -update)\n%s",
			path, lineDiff(string(want), got))
	}
}

// lineDiff lists the lines of want and got that differ, position by
// position; enough for outputs of a few dozen lines.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want: %s\n  got:  %s\n", i+1, wl, gl)
		}
	}
	return b.String()
}

// TestInspectGolden pins the text of `keystore inspect` for each kind of
// store and each warning. The PEM cases and the PKCS#12 issued by `pki`
// need nothing but the binary; the keytool cases use the stores of
// keystoreFixtures (two keys and a trusted certificate in PKCS#12, and a
// JKS whose key went through keytool -certreq, `pki sign` and keytool
// -importcert) and are skipped without keytool.
func TestInspectGolden(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	root := testpki.NewCA(t, "Golden Root", longLived())
	issuing := root.Intermediate(t, "Golden Issuing", longLived())
	api := issuing.Issue(t, "api", longLived(), testpki.Server(),
		testpki.DNS("api.example.test"), testpki.IP("10.1.2.3"), testpki.URI("spiffe://example.test/ns/prod/sa/api"))
	other := root.Issue(t, "other", longLived(), testpki.Client())
	expired := root.Issue(t, "old", testpki.Expired(), testpki.Client())
	now := time.Now()
	soon := root.Issue(t, "soon", testpki.Validity(now.Add(-time.Hour), now.Add(10*24*time.Hour)), testpki.Client())
	pemFile := func(name string, parts ...[]byte) string {
		path := filepath.Join(dir, name)
		testpki.WriteFile(t, path, bytes.Join(parts, nil))
		return path
	}

	// A PKCS#12 from `pki issue`: a key under an intermediate CA, the
	// whole chain stored with it.
	mustSucceed(t, "pki", "init-ca", "--name", "apimanCA", "--out", filepath.Join(dir, "ca"))
	mustSucceed(t, "pki", "init-ca", "--name", "apimanIssuing", "--out", filepath.Join(dir, "issuing"), "--intermediate-of", filepath.Join(dir, "ca"))
	mustSucceed(t, "pki", "issue", "--ca", filepath.Join(dir, "issuing"), "--name", "gateway", "--client", "--dns", "gateway.example.test",
		"--format", "p12", "--out", dir, "--password-env", "KS_PASS")

	cases := []struct {
		name string
		// file returns the store to inspect; keytool cases build theirs.
		file func(t *testing.T) (path, fixtureDir string)
		args []string
	}{
		{name: "pem-chain-complete", file: fixed(pemFile("chain-complete.pem", api.KeyPEM(), api.CertPEM(), root.CertPEM()))},
		{name: "pem-chain-missing-intermediate", file: fixed(pemFile("chain-gap.pem", api.KeyPEM(), testpki.CertsPEM(api.Cert, root.Cert)))},
		{name: "pem-chain-missing-root", file: fixed(pemFile("chain-noroot.pem", api.KeyPEM(), api.CertPEM()))},
		{name: "pem-certificates-only", file: fixed(pemFile("certs-only.pem", api.CertPEM()))},
		{name: "pem-expired", file: fixed(pemFile("expired.pem", expired.KeyPEM(), expired.CertPEM(), root.CertPEM()))},
		{name: "pem-expiring", file: fixed(pemFile("expiring.pem", soon.KeyPEM(), soon.CertPEM(), root.CertPEM()))},
		{name: "pem-key-mismatch", file: fixed(pemFile("mismatch.pem", api.KeyPEM(), testpki.CertsPEM(other.Cert, root.Cert)))},
		{name: "p12-pki-issue", file: fixed(filepath.Join(dir, "gateway.p12")), args: []string{"--password-env", "KS_PASS"}},
		{name: "p12-keytool-two-keys-trusted", args: []string{"--password-env", "KS_PASS"},
			file: func(t *testing.T) (string, string) { f := keystoreFixtures(t); return f.p12, f.dir }},
		{name: "jks-keytool-signed", args: []string{"--password-env", "KS_PASS"},
			file: func(t *testing.T) (string, string) { f := keystoreFixtures(t); return f.jks, f.dir }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path, fixtureDir := tc.file(t)
			t.Parallel()
			r := mustSucceed(t, append([]string{"keystore", "inspect", path}, tc.args...)...)
			if r.stderr != "" {
				t.Errorf("stderr: %s", r.stderr)
			}
			checkGolden(t, tc.name, normaliseInspect(r.stdout, dir, fixtureDir))
		})
	}
}

// fixed is a TestInspectGolden case file that exists already.
func fixed(path string) func(*testing.T) (string, string) {
	return func(*testing.T) (string, string) { return path, filepath.Dir(path) }
}

// TestNormaliseInspect checks that the normaliser leaves nothing of a run
// in place and keeps the words around what it replaces.
func TestNormaliseInspect(t *testing.T) {
	t.Parallel()
	in := "/tmp/x1/a.pem: pem, 1 entry\n" +
		"    Serial:      1f0a9c\n" +
		"    Valid:       2026-01-02 03:04:05 to 2027-02-03 04:05:06 (1 day left)\n" +
		"    Valid:       2026-01-02 03:04:05 to 2027-02-03 04:05:06 (EXPIRED 12 days ago)\n" +
		"    SHA-256:     " + strings.TrimSuffix(strings.Repeat("AB:", 32), ":") + "\n" +
		"  \"a\": certificate \"CN=a\" expires in 9 days (2027-02-03); key 00112233445566778899aabbccddeeff00112233\n"
	want := "$TMP/a.pem: pem, 1 entry\n" +
		"    Serial:      SERIAL\n" +
		"    Valid:       YYYY-MM-DD hh:mm:ss to YYYY-MM-DD hh:mm:ss (N day left)\n" +
		"    Valid:       YYYY-MM-DD hh:mm:ss to YYYY-MM-DD hh:mm:ss (EXPIRED N days ago)\n" +
		"    SHA-256:     SHA256-FINGERPRINT\n" +
		"  \"a\": certificate \"CN=a\" expires in N days (YYYY-MM-DD); key KEY-ID\n"
	if got := normaliseInspect(in, "/tmp/x1"); got != want {
		t.Errorf("normalised:\n%s\nwant:\n%s", got, want)
	}
}
