package keymaterial

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/testpki"
)

// Passwords used by the fixtures. Every error message is checked against
// all of them so that no secret leaks into a log line.
const (
	storePass = "st0re-Secret"
	keyPass   = "k3y-Secret"
	p12Pass   = "p12-Secret!"
	pemPass   = "pem-Secret"
	wrongPass = "n0t-the-Secret"
)

var allSecrets = []string{storePass, keyPass, p12Pass, pemPass, wrongPass}

// fixtures are the stores made once per test binary by keytool and openssl;
// keytool starts a JVM per call (about half a second), so subtests share
// them instead of making their own.
type fixtures struct {
	dir string
	err error
	// keytool stores
	jksKeys      string // JKS: key entries "rsa" and "ec", key password keyPass
	defaultP12   string // keytool default store (PKCS#12) named server.jks, one EC key "server"
	twoKeys      string // PKCS#12 with key entries "alpha" and "beta"
	chainP12     string // PKCS#12: "leaf" signed by "ca" (2-cert chain) and trusted "root"
	jksTrust     string // JKS truststore with trusted "ca"
	p12Trust     string // PKCS#12 truststore with trusted "ca"
	jceks        string // JCEKS store: EC key "secret", trusted "ca" (added with jksTrust)
	jceksSecret  string // JCEKS store: EC key "tls" and AES secret key "hadoop.secret"
	caCertPEM    string // the keytool CA certificate as PEM
	keytoolReady bool
	// openssl stores
	osslModern    string // openssl pkcs12 -export, alias "oss", CA in chain
	osslLegacy    string // same with -legacy (RC2-40 certificates)
	osslTrust     string // openssl pkcs12 -export -nokeys (CA only)
	osslTrustLeg  string // the same with -legacy
	osslCert      string // PEM leaf + intermediate (openssl fixtures' source)
	pkcs8AES256   string // openssl pkcs8 -topk8 -v2 aes-256-cbc
	pkcs8DES3     string // openssl pkcs8 -topk8 -v2 des3
	pkcs8AES128S1 string // -v2 aes-128-cbc -v2prf hmacWithSHA1
	pkcs8PBE3DES  string // -v1 PBE-SHA1-3DES (PKCS#12 KDF)
	opensslReady  bool
	leaf          *testpki.Leaf
	ca            *testpki.CA
}

var (
	fixtureOnce sync.Once
	fixtureDir  string
	shared      fixtures
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keymaterial-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fixtureDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// getFixtures builds the shared stores on first use.
func getFixtures(t *testing.T) *fixtures {
	t.Helper()
	fixtureOnce.Do(func() { shared = buildFixtures(t, fixtureDir) })
	if shared.err != nil {
		t.Fatalf("building fixtures: %v", shared.err)
	}
	return &shared
}

func needKeytool(t *testing.T) *fixtures {
	t.Helper()
	f := getFixtures(t)
	if !f.keytoolReady {
		t.Skip("keytool not found on PATH (install a JDK, e.g. openjdk-17-jdk-headless); keystore interop tests skipped")
	}
	return f
}

func needOpenSSL(t *testing.T) *fixtures {
	t.Helper()
	f := getFixtures(t)
	if !f.opensslReady {
		t.Skip("openssl not found on PATH; openssl interop tests skipped")
	}
	return f
}

// keytool runs one keytool command with a JVM tuned for a short life.
func keytool(dir string, args ...string) error {
	full := append([]string{"-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC"}, args...)
	cmd := exec.Command("keytool", full...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("keytool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func openssl(dir string, args ...string) error {
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func buildFixtures(t *testing.T, dir string) fixtures {
	f := fixtures{dir: dir}
	p := func(name string) string { return filepath.Join(dir, name) }

	// The PEM identity the openssl fixtures wrap: a leaf under an
	// intermediate under a root.
	f.ca = testpki.NewCA(t, "Root CA")
	inter := f.ca.Intermediate(t, "Issuing CA")
	f.leaf = inter.Issue(t, "openssl-leaf")
	f.osslCert, _ = f.leaf.WriteFiles(t, dir, "ossl")
	keyPEM := p("ossl.key")
	caPEM := f.ca.WriteCA(t, dir, "root")

	var wg sync.WaitGroup
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if f.err == nil {
			f.err = err
		}
	}
	run := func(steps ...func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, s := range steps {
				if err := s(); err != nil {
					fail(err)
					return
				}
			}
		}()
	}
	kt := func(args ...string) func() error { return func() error { return keytool(dir, args...) } }
	genEC := func(store, storetype, alias, pass string, extra ...string) func() error {
		args := []string{"-genkeypair", "-alias", alias, "-keyalg", "EC", "-groupname", "secp256r1",
			"-dname", "CN=" + alias, "-validity", "30", "-keystore", store, "-storepass", pass}
		if storetype != "" {
			args = append(args, "-storetype", storetype)
		}
		return kt(append(args, extra...)...)
	}

	if _, err := exec.LookPath("keytool"); err == nil {
		f.keytoolReady = true
		f.jksKeys, f.defaultP12, f.twoKeys = p("keys.jks"), p("server.jks"), p("two.p12")
		f.chainP12, f.jksTrust, f.p12Trust = p("chain.p12"), p("trust.jks"), p("trust.p12")
		f.jceks, f.caCertPEM = p("store.jceks"), p("keytool-ca.pem")
		f.jceksSecret = p("secret.jceks")

		run(
			kt("-genkeypair", "-storetype", "JKS", "-alias", "rsa", "-keyalg", "RSA", "-keysize", "2048",
				"-dname", "CN=rsa", "-validity", "30", "-keystore", f.jksKeys, "-storepass", storePass, "-keypass", keyPass),
			genEC(f.jksKeys, "JKS", "ec", storePass, "-keypass", keyPass),
			genEC(f.defaultP12, "", "server", p12Pass),
			genEC(f.jceks, "JCEKS", "secret", storePass),
		)
		run(
			genEC(f.jceksSecret, "JCEKS", "tls", storePass),
			kt("-genseckey", "-alias", "hadoop.secret", "-keyalg", "AES", "-keysize", "128",
				"-keystore", f.jceksSecret, "-storetype", "JCEKS", "-storepass", storePass, "-keypass", storePass),
		)
		run(
			genEC(f.twoKeys, "PKCS12", "alpha", p12Pass),
			genEC(f.twoKeys, "PKCS12", "beta", p12Pass),
		)
		run(
			genEC(p("ca.p12"), "PKCS12", "ca", p12Pass, "-ext", "bc:c"),
			kt("-exportcert", "-rfc", "-alias", "ca", "-keystore", p("ca.p12"), "-storepass", p12Pass, "-file", f.caCertPEM),
			genEC(f.chainP12, "PKCS12", "leaf", p12Pass),
			kt("-certreq", "-alias", "leaf", "-keystore", f.chainP12, "-storepass", p12Pass, "-file", p("leaf.csr")),
			kt("-gencert", "-alias", "ca", "-keystore", p("ca.p12"), "-storepass", p12Pass, "-infile", p("leaf.csr"),
				"-outfile", p("leaf.crt"), "-rfc", "-validity", "30"),
			kt("-importcert", "-noprompt", "-trustcacerts", "-alias", "root", "-file", f.caCertPEM, "-keystore", f.chainP12, "-storepass", p12Pass),
			kt("-importcert", "-noprompt", "-alias", "leaf", "-file", p("leaf.crt"), "-keystore", f.chainP12, "-storepass", p12Pass),
		)
		wg.Wait()
		if f.err != nil {
			return f
		}
		run(kt("-importcert", "-noprompt", "-trustcacerts", "-storetype", "JKS", "-alias", "ca", "-file", f.caCertPEM, "-keystore", f.jksTrust, "-storepass", storePass))
		run(kt("-importcert", "-noprompt", "-trustcacerts", "-storetype", "PKCS12", "-alias", "ca", "-file", f.caCertPEM, "-keystore", f.p12Trust, "-storepass", p12Pass))
		run(kt("-importcert", "-noprompt", "-trustcacerts", "-storetype", "JCEKS", "-alias", "ca", "-file", f.caCertPEM, "-keystore", f.jceks, "-storepass", storePass))
	}

	if _, err := exec.LookPath("openssl"); err == nil {
		f.opensslReady = true
		f.osslModern, f.osslLegacy = p("ossl-modern.p12"), p("ossl-legacy.p12")
		f.osslTrust, f.osslTrustLeg = p("ossl-trust.p12"), p("ossl-trust-legacy.p12")
		f.pkcs8AES256, f.pkcs8DES3 = p("key-aes256.pem"), p("key-des3.pem")
		f.pkcs8AES128S1, f.pkcs8PBE3DES = p("key-aes128-sha1.pem"), p("key-pbe3des.pem")
		chainPEM := p("ossl-chain.pem")
		testpki.WriteFile(t, chainPEM, testpki.CertsPEM(append(f.leaf.Chain, f.ca.Cert)...))
		o := func(args ...string) func() error { return func() error { return openssl(dir, args...) } }
		run(
			o("pkcs12", "-export", "-in", f.osslCert, "-inkey", keyPEM, "-certfile", chainPEM, "-name", "oss",
				"-passout", "pass:"+p12Pass, "-out", f.osslModern),
			o("pkcs12", "-export", "-legacy", "-in", f.osslCert, "-inkey", keyPEM, "-certfile", chainPEM, "-name", "oss",
				"-passout", "pass:"+p12Pass, "-out", f.osslLegacy),
			o("pkcs12", "-export", "-nokeys", "-in", caPEM, "-passout", "pass:"+p12Pass, "-out", f.osslTrust),
			o("pkcs12", "-export", "-nokeys", "-legacy", "-in", caPEM, "-passout", "pass:"+p12Pass, "-out", f.osslTrustLeg),
			o("pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", keyPEM, "-passout", "pass:"+pemPass, "-out", f.pkcs8AES256),
			o("pkcs8", "-topk8", "-v2", "des3", "-in", keyPEM, "-passout", "pass:"+pemPass, "-out", f.pkcs8DES3),
			o("pkcs8", "-topk8", "-v2", "aes-128-cbc", "-v2prf", "hmacWithSHA1", "-in", keyPEM, "-passout", "pass:"+pemPass, "-out", f.pkcs8AES128S1),
			o("pkcs8", "-topk8", "-v1", "PBE-SHA1-3DES", "-in", keyPEM, "-passout", "pass:"+pemPass, "-out", f.pkcs8PBE3DES),
		)
	}
	wg.Wait()
	return f
}

// checkNoSecrets fails if err's message contains any fixture password.
func checkNoSecrets(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range allSecrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error message contains a password: %v", err)
		}
	}
}

// testNow is an instant within every fixture's validity: a little ahead of
// the clock because keytool certificates start at the second they are made,
// which is after this variable is set.
var testNow = time.Now().Add(10 * time.Minute)

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// truncated writes the first half of src to a new file and returns its path.
func truncated(t *testing.T, src string) string {
	t.Helper()
	data := mustRead(t, src)
	out := filepath.Join(t.TempDir(), "truncated-"+filepath.Base(src))
	testpki.WriteFile(t, out, data[:len(data)/2])
	return out
}
