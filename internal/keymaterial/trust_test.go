package keymaterial

import (
	"crypto/x509"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/testpki"
)

func TestLoadTrust(t *testing.T) {
	root := testpki.NewCA(t, "Trust Root")
	inter := root.Intermediate(t, "Trust Issuing")
	client := inter.Issue(t, "client", testpki.Client())

	type trustCase struct {
		name    string
		need    func(*testing.T) *fixtures
		src     func(t *testing.T, f *fixtures, dir string) TrustSource
		wantErr error
		// wantCerts is the number of trusted certificates expected.
		wantCerts int
		wantInMsg []string
	}
	none := func(*testing.T) *fixtures { return nil }
	pemFile := func(t *testing.T, dir, name string, data []byte) string {
		p := filepath.Join(dir, name)
		testpki.WriteFile(t, p, data)
		return p
	}
	store := func(path func(*fixtures) string, pass string) func(*testing.T, *fixtures, string) TrustSource {
		return func(_ *testing.T, f *fixtures, _ string) TrustSource {
			return TrustSource{Truststores: []StoreRef{{Path: path(f), Password: []byte(pass)}}}
		}
	}
	cases := []trustCase{
		{name: "pem bundle with root and intermediate", need: none, wantCerts: 2,
			src: func(t *testing.T, _ *fixtures, dir string) TrustSource {
				return TrustSource{PEMFiles: []string{pemFile(t, dir, "b.pem", testpki.CertsPEM(root.Cert, inter.Cert))}}
			}},
		{name: "duplicates across files are dropped", need: none, wantCerts: 1,
			src: func(t *testing.T, _ *fixtures, dir string) TrustSource {
				return TrustSource{PEMFiles: []string{
					pemFile(t, dir, "a.pem", root.CertPEM()), pemFile(t, dir, "b.pem", root.CertPEM()),
				}}
			}},
		{name: "pem file without certificates", need: none, wantErr: ErrNoCertificates, wantInMsg: []string{"k.pem"},
			src: func(t *testing.T, _ *fixtures, dir string) TrustSource {
				return TrustSource{PEMFiles: []string{pemFile(t, dir, "k.pem", client.KeyPEM())}}
			}},
		{name: "nothing given", need: none, wantErr: ErrNoCertificates,
			src: func(*testing.T, *fixtures, string) TrustSource { return TrustSource{} }},
		{name: "jks truststore", need: needKeytool, wantCerts: 1, src: store(func(f *fixtures) string { return f.jksTrust }, storePass)},
		{name: "jks truststore wrong password", need: needKeytool, wantErr: ErrWrongPassword,
			src: store(func(f *fixtures) string { return f.jksTrust }, wrongPass)},
		{name: "pkcs12 truststore", need: needKeytool, wantCerts: 1, src: store(func(f *fixtures) string { return f.p12Trust }, p12Pass)},
		{name: "pkcs12 with a key entry counts only the trusted entry", need: needKeytool, wantCerts: 1,
			src: store(func(f *fixtures) string { return f.chainP12 }, p12Pass)},
		{name: "pkcs12 with only key entries has no trust", need: needKeytool, wantErr: ErrNoCertificates,
			wantInMsg: []string{"-trustcacerts"}, src: store(func(f *fixtures) string { return f.twoKeys }, p12Pass)},
		{name: "jks with only key entries has no trust", need: needKeytool, wantErr: ErrNoCertificates,
			wantInMsg: []string{`"rsa"`}, src: store(func(f *fixtures) string { return f.jksKeys }, storePass)},
		{name: "jceks store counts only its trusted entry", need: needKeytool, wantCerts: 1,
			src: store(func(f *fixtures) string { return f.jceks }, storePass)},
		{name: "jceks with a secret-key entry is refused", need: needKeytool, wantErr: ErrUnsupportedFormat,
			wantInMsg: []string{`"hadoop.secret"`}, src: store(func(f *fixtures) string { return f.jceksSecret }, storePass)},
		{name: "keystore listed as pem file", need: needKeytool, wantErr: ErrUnsupportedFormat,
			src: func(_ *testing.T, f *fixtures, _ string) TrustSource {
				return TrustSource{PEMFiles: []string{f.jksTrust}}
			}},
		{name: "openssl certificate-only pkcs12 counts all certificates", need: needOpenSSL, wantCerts: 1,
			src: store(func(f *fixtures) string { return f.osslTrust }, p12Pass)},
		{name: "openssl legacy certificate-only pkcs12 is refused with a hint", need: needOpenSSL, wantErr: ErrUnsupportedFormat,
			wantInMsg: []string{"RC2", "-legacy"}, src: store(func(f *fixtures) string { return f.osslTrustLeg }, p12Pass)},
		{name: "openssl pkcs12 with a key has no trusted entries", need: needOpenSSL, wantErr: ErrNoCertificates,
			src: store(func(f *fixtures) string { return f.osslModern }, p12Pass)},
		{name: "all sources together", need: needKeytool, wantCerts: 2,
			src: func(t *testing.T, f *fixtures, dir string) TrustSource {
				return TrustSource{
					PEMFiles: []string{pemFile(t, dir, "r.pem", root.CertPEM()), f.caCertPEM},
					Truststores: []StoreRef{
						{Path: f.jksTrust, Password: []byte(storePass)},
						{Path: f.p12Trust, Password: []byte(p12Pass)},
					},
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.need(t)
			t.Parallel()
			ts, err := LoadTrust(tc.src(t, f, t.TempDir()))
			checkNoSecrets(t, err)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("LoadTrust error = %v, want %v", err, tc.wantErr)
				}
				for _, frag := range tc.wantInMsg {
					if !strings.Contains(err.Error(), frag) {
						t.Errorf("error %q does not mention %q", err, frag)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadTrust: %v", err)
			}
			if len(ts.Certs) != tc.wantCerts {
				t.Errorf("got %d certificates, want %d", len(ts.Certs), tc.wantCerts)
			}
			if len(ts.Sources) == 0 {
				t.Error("no sources recorded")
			}
		})
	}
}

// TestLoadTrustIntermediateAnchor proves an issuing CA trusted without its
// root verifies a client (DESIGN §7).
func TestLoadTrustIntermediateAnchor(t *testing.T) {
	root := testpki.NewCA(t, "Anchor Root")
	inter := root.Intermediate(t, "Anchor Issuing")
	client := inter.Issue(t, "client", testpki.Client())
	dir := t.TempDir()
	p := filepath.Join(dir, "inter.pem")
	testpki.WriteFile(t, p, testpki.CertsPEM(inter.Cert))
	ts, err := LoadTrust(TrustSource{PEMFiles: []string{p}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.Cert.Verify(x509.VerifyOptions{Roots: ts.Pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		t.Errorf("client under a trusted intermediate does not verify: %v", err)
	}
}
