package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pavlo-v-chernykh/keystore-go/v4"
	"software.sslmate.com/src/go-pkcs12"
)

// fixtures is a root CA and an intermediate under it, shared by the tests
// because key generation and the external tools are slow. Tests that revoke
// or count index entries make their own CA.
type fixtures struct {
	root, inter *CA
}

var (
	fixOnce sync.Once
	fix     fixtures
	fixErr  error
	fixDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixDir != "" {
		os.RemoveAll(fixDir)
	}
	os.Exit(code)
}

func shared(t *testing.T) fixtures {
	t.Helper()
	fixOnce.Do(func() {
		fixDir, fixErr = os.MkdirTemp("", "pki-test-")
		if fixErr != nil {
			return
		}
		fix.root, fixErr = InitCA(filepath.Join(fixDir, "root"), CAOptions{Name: "apimanCA"})
		if fixErr != nil {
			return
		}
		fix.inter, fixErr = InitIntermediate(filepath.Join(fixDir, "inter"), fix.root, CAOptions{Name: "apiman issuing CA"})
	})
	if fixErr != nil {
		t.Fatalf("building shared CAs: %v", fixErr)
	}
	return fix
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestInitCAWritesFilesWithSafeModes(t *testing.T) {
	f := shared(t)
	dir := f.root.Dir
	if got := mode(t, dir); got != 0o700 {
		t.Errorf("CA directory mode = %o, want 700", got)
	}
	if got := mode(t, filepath.Join(dir, KeyFile)); got != 0o600 {
		t.Errorf("%s mode = %o, want 600", KeyFile, got)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "PRIVATE KEY" {
		t.Errorf("unencrypted CA key is not a PKCS#8 \"PRIVATE KEY\" block")
	}
	c := f.root.Cert
	if !c.IsCA || c.Subject.CommonName != "apimanCA" || len(c.SubjectKeyId) == 0 {
		t.Errorf("root: IsCA=%v CN=%q SKI=%x", c.IsCA, c.Subject.CommonName, c.SubjectKeyId)
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 || c.KeyUsage&x509.KeyUsageCRLSign == 0 {
		t.Errorf("root key usage %v lacks certSign or cRLSign", c.KeyUsage)
	}
	if _, ok := f.root.Key.(*ecdsa.PrivateKey); !ok {
		t.Errorf("default CA key is %T, want ECDSA", f.root.Key)
	}
	if days := c.NotAfter.Sub(c.NotBefore).Hours() / 24; days < 3649 || days > 3651 {
		t.Errorf("root validity %.1f days, want about %d", days, DefaultRootDays)
	}
	if c.SerialNumber.BitLen() < 64 {
		t.Errorf("serial %s has only %d bits", FormatSerial(c.SerialNumber), c.SerialNumber.BitLen())
	}

	in := f.inter.Cert
	if !in.IsCA || in.MaxPathLen != 0 || !in.MaxPathLenZero {
		t.Errorf("intermediate: IsCA=%v MaxPathLen=%d MaxPathLenZero=%v, want pathlen 0", in.IsCA, in.MaxPathLen, in.MaxPathLenZero)
	}
	if err := in.CheckSignatureFrom(c); err != nil {
		t.Errorf("intermediate not signed by root: %v", err)
	}
	if !bytes.Equal(in.AuthorityKeyId, c.SubjectKeyId) {
		t.Errorf("intermediate AKI %x != root SKI %x", in.AuthorityKeyId, c.SubjectKeyId)
	}
	if len(f.inter.Chain) != 1 || !f.inter.Chain[0].Equal(c) {
		t.Errorf("intermediate chain = %d certs, want the root", len(f.inter.Chain))
	}
	chain, err := readCertsFile(filepath.Join(f.inter.Dir, ChainFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != 2 || !chain[0].Equal(in) || !chain[1].Equal(c) {
		t.Errorf("%s holds %d certs, want intermediate then root", ChainFile, len(chain))
	}
	entries, err := f.root.Entries()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(entries, func(e IndexEntry) bool { return e.Serial == FormatSerial(in.SerialNumber) }) {
		t.Errorf("intermediate serial missing from the root's index")
	}
}

func TestInitCARefusesToOverwrite(t *testing.T) {
	f := shared(t)
	_, err := InitCA(f.root.Dir, CAOptions{Name: "again"})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("InitCA over an existing CA: err = %v, want ErrExists", err)
	}
	if !strings.Contains(err.Error(), f.root.Dir) {
		t.Errorf("error %q does not name the directory", err)
	}
	again, err := LoadCA(f.root.Dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cert.Equal(f.root.Cert) {
		t.Errorf("existing CA was replaced")
	}
}

func TestInitCARejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		o    CAOptions
	}{
		{"missing name", CAOptions{}},
		{"unknown key type", CAOptions{Name: "x", KeyType: "dsa"}},
		{"RSA size not offered", CAOptions{Name: "x", KeyType: KeyRSA, RSABits: 1024}},
		{"RSA size with EC key", CAOptions{Name: "x", RSABits: 2048}},
		{"negative validity", CAOptions{Name: "x", Days: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ca")
			_, err := InitCA(dir, tc.o)
			if !errors.Is(err, ErrInvalidOption) {
				t.Fatalf("err = %v, want ErrInvalidOption", err)
			}
			if _, statErr := os.Stat(filepath.Join(dir, KeyFile)); statErr == nil {
				t.Errorf("a key file was left behind after a rejected option")
			}
		})
	}
}

func TestEncryptedCAKey(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "ca")
	pw := []byte("correct horse")
	ca, err := InitCA(dir, CAOptions{Name: "sealed", KeyPassword: pw})
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "ENCRYPTED PRIVATE KEY" {
		t.Fatalf("key file is not an ENCRYPTED PRIVATE KEY block")
	}
	if bytes.Contains(keyPEM, pw) {
		t.Fatalf("key file contains the password")
	}

	_, err = LoadCA(dir, []byte("wrong horse"))
	if !errors.Is(err, ErrWrongPassword) {
		t.Errorf("wrong password: err = %v, want ErrWrongPassword", err)
	}
	if err != nil && (!strings.Contains(err.Error(), KeyFile) || strings.Contains(err.Error(), "horse")) {
		t.Errorf("error %q should name %s and not echo the password", err, KeyFile)
	}
	if _, err := LoadCA(dir, nil); !errors.Is(err, ErrPasswordRequired) {
		t.Errorf("no password: err = %v, want ErrPasswordRequired", err)
	}
	loaded, err := LoadCA(dir, pw)
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	if !publicKeysEqual(loaded.Key.Public(), ca.Cert.PublicKey) {
		t.Errorf("decrypted key does not match the CA certificate")
	}
}

func TestLoadCANamesTheBrokenFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		damage func(dir string) error
		file   string
		want   error
	}{
		{"missing key", func(d string) error { return os.Remove(filepath.Join(d, KeyFile)) }, KeyFile, os.ErrNotExist},
		{"garbage certificate", func(d string) error { return os.WriteFile(filepath.Join(d, CertFile), []byte("nope"), 0o644) }, CertFile, ErrNoPEM},
		{"corrupt index", func(d string) error { return os.WriteFile(filepath.Join(d, IndexFile), []byte("{"), 0o600) }, IndexFile, ErrCorruptIndex},
		{"key of another CA", func(d string) error {
			other, err := InitCA(filepath.Join(filepath.Dir(d), "other"), CAOptions{Name: "other"})
			if err != nil {
				return err
			}
			data, err := os.ReadFile(filepath.Join(other.Dir, KeyFile))
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(d, KeyFile), data, 0o600)
		}, KeyFile, ErrKeyMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "ca")
			if _, err := InitCA(dir, CAOptions{Name: "victim"}); err != nil {
				t.Fatal(err)
			}
			if err := tc.damage(dir); err != nil {
				t.Fatal(err)
			}
			_, err := LoadCA(dir, nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.file) {
				t.Errorf("error %q does not name %s", err, tc.file)
			}
		})
	}
}

func TestIssue(t *testing.T) {
	f := shared(t)
	spiffe, _ := url.Parse("spiffe://example.org/gateway")
	tests := []struct {
		name    string
		o       IssueOptions
		wantEKU []x509.ExtKeyUsage
		wantDNS []string
		wantIPs int
		wantRSA bool
		wantErr error
	}{
		{name: "neither flag means server and client", o: IssueOptions{Name: "gateway"},
			wantEKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, wantDNS: []string{"gateway"}},
		{name: "client only gets no name SAN", o: IssueOptions{Name: "gateway", Client: true, URIs: []*url.URL{spiffe}},
			wantEKU: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{name: "server with names keeps them", o: IssueOptions{Name: "api-a", Server: true, DNS: []string{"api-a.internal"}, IPs: []net.IP{net.ParseIP("10.0.0.7")}},
			wantEKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, wantDNS: []string{"api-a.internal"}, wantIPs: 1},
		{name: "server named by IP gets an IP SAN", o: IssueOptions{Name: "192.0.2.1", Server: true},
			wantEKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, wantIPs: 1},
		{name: "RSA on request", o: IssueOptions{Name: "legacy", Server: true, KeyType: KeyRSA},
			wantEKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, wantDNS: []string{"legacy"}, wantRSA: true},
		{name: "server whose name is no host name", o: IssueOptions{Name: "My Server", Server: true}, wantErr: ErrInvalidOption},
		{name: "bad DNS name", o: IssueOptions{Name: "x", DNS: []string{"a b"}}, wantErr: ErrInvalidOption},
		{name: "missing name", o: IssueOptions{}, wantErr: ErrInvalidOption},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is, err := f.inter.Issue(tc.o)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := is.Cert
			if !slices.Equal(c.ExtKeyUsage, tc.wantEKU) {
				t.Errorf("EKU = %v, want %v", c.ExtKeyUsage, tc.wantEKU)
			}
			if !slices.Equal(c.DNSNames, tc.wantDNS) {
				t.Errorf("DNS SANs = %v, want %v", c.DNSNames, tc.wantDNS)
			}
			if len(c.IPAddresses) != tc.wantIPs {
				t.Errorf("IP SANs = %v, want %d", c.IPAddresses, tc.wantIPs)
			}
			if len(c.URIs) != len(tc.o.URIs) {
				t.Errorf("URI SANs = %v, want %v", c.URIs, tc.o.URIs)
			}
			if _, isRSA := is.Key.(*rsa.PrivateKey); isRSA != tc.wantRSA {
				t.Errorf("key type %T, want RSA=%v", is.Key, tc.wantRSA)
			}
			if c.IsCA || len(c.SubjectKeyId) == 0 || !bytes.Equal(c.AuthorityKeyId, f.inter.Cert.SubjectKeyId) {
				t.Errorf("IsCA=%v SKI=%x AKI=%x (issuer SKI %x)", c.IsCA, c.SubjectKeyId, c.AuthorityKeyId, f.inter.Cert.SubjectKeyId)
			}
			if len(is.Chain) != 2 || !is.Chain[0].Equal(f.inter.Cert) || !is.Chain[1].Equal(f.root.Cert) {
				t.Errorf("chain has %d certs, want intermediate then root", len(is.Chain))
			}
			roots, inters := x509.NewCertPool(), x509.NewCertPool()
			roots.AddCert(f.root.Cert)
			inters.AddCert(f.inter.Cert)
			if _, err := c.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				t.Errorf("Go verifier rejects the chain: %v", err)
			}
			if days := time.Until(c.NotAfter).Hours() / 24; days < 396 || days > 397 {
				t.Errorf("validity ends in %.1f days, want %d", days, DefaultLeafDays)
			}
			entries, err := f.inter.Entries()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(entries, func(e IndexEntry) bool {
				return e.Serial == FormatSerial(c.SerialNumber) && e.Subject == c.Subject.String() && e.NotAfter.Equal(c.NotAfter)
			}) {
				t.Errorf("serial %s not recorded in the index", FormatSerial(c.SerialNumber))
			}
		})
	}
}

func TestIssueNeverOutlivesTheCA(t *testing.T) {
	f := shared(t)
	is, err := f.inter.Issue(IssueOptions{Name: "long", Days: 100000})
	if err != nil {
		t.Fatal(err)
	}
	if is.Cert.NotAfter.After(f.inter.Cert.NotAfter) {
		t.Errorf("leaf NotAfter %v after CA NotAfter %v", is.Cert.NotAfter, f.inter.Cert.NotAfter)
	}
}

func TestSignCSR(t *testing.T) {
	f := shared(t)
	csrPEM, key, err := NewCSR(IssueOptions{Name: "api-b", DNS: []string{"api-b.internal"}})
	if err != nil {
		t.Fatal(err)
	}
	keytoolStyle := bytes.ReplaceAll(csrPEM, []byte("CERTIFICATE REQUEST"), []byte("NEW CERTIFICATE REQUEST"))
	block, _ := pem.Decode(csrPEM)

	// A request asking for CA powers must not get them.
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	bc, _ := asn1.Marshal(struct {
		IsCA bool `asn1:"optional"`
	}{true})
	greedyDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:         pkix.Name{CommonName: "greedy.internal"},
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: bc}},
	}, caKey)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(block.Bytes)
	tampered[len(tampered)-3] ^= 0xff

	tests := []struct {
		name    string
		csr     []byte
		o       SignOptions
		wantCN  string
		wantDNS []string
		wantEKU []x509.ExtKeyUsage
		wantErr error
	}{
		{"PEM CERTIFICATE REQUEST", csrPEM, SignOptions{Server: true}, "api-b", []string{"api-b.internal"}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, nil},
		{"keytool NEW CERTIFICATE REQUEST", keytoolStyle, SignOptions{Client: true}, "api-b", []string{"api-b.internal"}, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil},
		{"DER", block.Bytes, SignOptions{}, "api-b", []string{"api-b.internal"}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, nil},
		{"basic constraints in the request are dropped", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: greedyDER}), SignOptions{Server: true}, "greedy.internal", []string{"greedy.internal"}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, nil},
		{"tampered signature", tampered, SignOptions{}, "", nil, nil, ErrBadCSR},
		{"a certificate is not a request", encodeCertsPEM(f.root.Cert), SignOptions{}, "", nil, nil, ErrBadCSR},
		{"garbage", []byte("hello"), SignOptions{}, "", nil, nil, ErrBadCSR},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := f.inter.SignCSR(tc.csr, tc.o)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.IsCA {
				t.Errorf("signed certificate is a CA")
			}
			if c.Subject.CommonName != tc.wantCN || !slices.Equal(c.DNSNames, tc.wantDNS) {
				t.Errorf("CN=%q DNS=%v, want %q %v", c.Subject.CommonName, c.DNSNames, tc.wantCN, tc.wantDNS)
			}
			if !slices.Equal(c.ExtKeyUsage, tc.wantEKU) {
				t.Errorf("EKU = %v, want %v", c.ExtKeyUsage, tc.wantEKU)
			}
			if err := c.CheckSignatureFrom(f.inter.Cert); err != nil {
				t.Errorf("not signed by the CA: %v", err)
			}
		})
	}
	if c, err := f.inter.SignCSR(csrPEM, SignOptions{}); err != nil || !publicKeysEqual(c.PublicKey, key.Public()) {
		t.Errorf("certificate does not carry the request's key (err %v)", err)
	}
}

func TestSignCSRRejectsWeakKeys(t *testing.T) {
	f := shared(t)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "weak"}}, weak)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.inter.SignCSR(der, SignOptions{}); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("RSA-1024 request: err = %v, want ErrUnsupportedKey", err)
	}
}

func TestRevokeAndCRL(t *testing.T) {
	t.Parallel()
	ca, err := InitCA(filepath.Join(t.TempDir(), "ca"), CAOptions{Name: "crl CA"})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := ca.Issue(IssueOptions{Name: "stolen", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	good, err := ca.Issue(IssueOptions{Name: "fine", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := ca.Revoke(bad.Cert.SerialNumber, 1, at); err != nil {
		t.Fatal(err)
	}
	if err := ca.Revoke(bad.Cert.SerialNumber, 1, at); !errors.Is(err, ErrAlreadyRevoked) {
		t.Errorf("second revoke: err = %v, want ErrAlreadyRevoked", err)
	}
	if err := ca.Revoke(big.NewInt(12345), 0, at); !errors.Is(err, ErrUnknownSerial) {
		t.Errorf("unknown serial: err = %v, want ErrUnknownSerial", err)
	}
	if err := ca.Revoke(good.Cert.SerialNumber, 7, at); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("reason 7: err = %v, want ErrInvalidOption", err)
	}

	for want := int64(1); want <= 2; want++ {
		crlPEM, err := ca.CRL(24 * time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(crlPEM)
		if block == nil || block.Type != "X509 CRL" {
			t.Fatalf("CRL is not a PEM X509 CRL block")
		}
		crl, err := x509.ParseRevocationList(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if err := crl.CheckSignatureFrom(ca.Cert); err != nil {
			t.Errorf("CRL signature: %v", err)
		}
		if crl.Number.Int64() != want {
			t.Errorf("CRL number = %s, want %d", crl.Number, want)
		}
		if len(crl.RevokedCertificateEntries) != 1 {
			t.Fatalf("CRL lists %d entries, want 1", len(crl.RevokedCertificateEntries))
		}
		e := crl.RevokedCertificateEntries[0]
		if e.SerialNumber.Cmp(bad.Cert.SerialNumber) != 0 || e.ReasonCode != 1 || !e.RevocationTime.Equal(at) {
			t.Errorf("entry serial %s reason %d at %v, want %s 1 %v", FormatSerial(e.SerialNumber), e.ReasonCode, e.RevocationTime, FormatSerial(bad.Cert.SerialNumber), at)
		}
		if d := crl.NextUpdate.Sub(crl.ThisUpdate); d != 24*time.Hour {
			t.Errorf("CRL lifetime %v, want 24h", d)
		}
	}
	reloaded, err := LoadCA(ca.Dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := reloaded.Entries()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		revoked := e.Serial == FormatSerial(bad.Cert.SerialNumber)
		if (e.RevokedAt != nil) != revoked || (revoked && (e.Reason == nil || *e.Reason != 1)) {
			t.Errorf("index entry %s: revoked_at=%v reason=%v", e.Serial, e.RevokedAt, e.Reason)
		}
	}
}

func TestParseSerial(t *testing.T) {
	want, _ := new(big.Int).SetString("3a5f0c", 16)
	tests := []struct {
		in      string
		wantErr bool
	}{
		{"3a5f0c", false},
		{"3A5F0C", false},
		{"0x3a5f0c", false},
		{"3a:5f:0c", false},
		{"serial=3A5F0C", false},
		{" 3a5f0c\n", false},
		{"", true},
		{"0x", true},
		{"3a::5f", true},
		{"12g", true},
		{"-3a", true},
		{"0", true},
		{strings.Repeat("ff", 21), true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSerial(tc.in)
			if tc.wantErr {
				if !errors.Is(err, ErrBadSerial) {
					t.Fatalf("err = %v, want ErrBadSerial", err)
				}
				return
			}
			if err != nil || got.Cmp(want) != 0 {
				t.Fatalf("ParseSerial(%q) = %v, %v; want %v", tc.in, got, err, want)
			}
		})
	}
	s, _ := randomSerial()
	if got, err := ParseSerial(FormatSerial(s)); err != nil || got.Cmp(s) != 0 {
		t.Errorf("FormatSerial does not round-trip: %v", err)
	}
}

func TestParseReason(t *testing.T) {
	for in, want := range map[string]int{"": 0, "keyCompromise": 1, "KEYCOMPROMISE": 1, "4": 4, "superseded": 4, "aACompromise": 10} {
		if got, err := ParseReason(in); err != nil || got != want {
			t.Errorf("ParseReason(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"7", "removeFromCRL", "stolen"} {
		if _, err := ParseReason(in); !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), "keyCompromise") {
			t.Errorf("ParseReason(%q): err = %v, want ErrInvalidOption listing valid reasons", in, err)
		}
	}
}

func TestPrivateKeyPEMRoundTrip(t *testing.T) {
	t.Parallel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pw := []byte("s3cret")
	enc, err := MarshalPrivateKeyPEM(key, pw)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParsePrivateKeyPEM(enc, pw)
	if err != nil || !key.Equal(got) {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := ParsePrivateKeyPEM(enc, []byte("S3cret")); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("wrong password: err = %v", err)
	}
	if _, err := ParsePrivateKeyPEM([]byte("no pem here"), nil); !errors.Is(err, ErrNoPEM) {
		t.Errorf("no PEM: err = %v", err)
	}
}

func TestWritePEM(t *testing.T) {
	f := shared(t)
	is, err := f.inter.Issue(IssueOptions{Name: "gateway"})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "out")
	certPath, keyPath, err := WritePEM(dir, "gateway", is, nil)
	if err != nil {
		t.Fatal(err)
	}
	if mode(t, keyPath) != 0o600 || mode(t, dir) != 0o700 {
		t.Errorf("modes: key %o dir %o, want 600 and 700", mode(t, keyPath), mode(t, dir))
	}
	certs, err := readCertsFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 2 || !certs[0].Equal(is.Cert) || !certs[1].Equal(f.inter.Cert) {
		t.Errorf("%s holds %d certs, want leaf and intermediate without the root", certPath, len(certs))
	}
	full, err := readCertsFile(filepath.Join(dir, "gateway-chain.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if len(full) != 3 || !full[2].Equal(f.root.Cert) {
		t.Errorf("chain file holds %d certs, want leaf, intermediate and root", len(full))
	}
	keyPEM, _ := os.ReadFile(keyPath)
	if k, err := ParsePrivateKeyPEM(keyPEM, nil); err != nil || !publicKeysEqual(k.Public(), is.Cert.PublicKey) {
		t.Errorf("key file does not hold the certificate's key: %v", err)
	}
	if _, _, err := WritePEM(dir, "gateway", is, nil); !errors.Is(err, ErrExists) {
		t.Errorf("second write: err = %v, want ErrExists", err)
	}
	if _, _, err := WritePEM(dir, "../escape", is, nil); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("path in name: err = %v, want ErrInvalidOption", err)
	}
}

func TestWritePKCS12RoundTrip(t *testing.T) {
	f := shared(t)
	is, err := f.inter.Issue(IssueOptions{Name: "gateway", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "gateway.p12")
	if err := WritePKCS12(path, "gateway", is, []byte("changeit")); err != nil {
		t.Fatal(err)
	}
	if mode(t, path) != 0o600 {
		t.Errorf("mode %o, want 600", mode(t, path))
	}
	data, _ := os.ReadFile(path)
	key, cert, chain, err := pkcs12.DecodeChain(data, "changeit")
	if err != nil {
		t.Fatalf("go-pkcs12 cannot read it back (MAC or structure broken): %v", err)
	}
	if !cert.Equal(is.Cert) || len(chain) != 2 || !publicKeysEqual(cert.PublicKey, key.(*ecdsa.PrivateKey).Public()) {
		t.Errorf("decoded cert/chain/key do not match what was written")
	}
	if _, _, _, err := pkcs12.DecodeChain(data, "changeme"); err == nil {
		t.Errorf("wrong password accepted")
	}
	if !bytes.Contains(data, []byte{0, 'g', 0, 'a', 0, 't', 0, 'e', 0, 'w', 0, 'a', 0, 'y'}) {
		t.Errorf("no BMPString friendlyName \"gateway\" in the file")
	}
	if err := WritePKCS12(path, "gateway", is, []byte("changeit")); !errors.Is(err, ErrExists) {
		t.Errorf("overwrite: err = %v, want ErrExists", err)
	}
	if err := WritePKCS12(path+"2", "gateway", is, []byte("pässword")); !errors.Is(err, ErrPasswordEncoding) {
		t.Errorf("non-ASCII password: err = %v, want ErrPasswordEncoding", err)
	}
}

func TestWriteJKSRoundTrip(t *testing.T) {
	f := shared(t)
	is, err := f.inter.Issue(IssueOptions{Name: "gateway", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "gateway.jks")
	if err := WriteJKS(path, "Gateway", is, []byte("changeit")); err != nil {
		t.Fatal(err)
	}
	ks := keystore.New()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if err := ks.Load(fh, []byte("changeit")); err != nil {
		t.Fatal(err)
	}
	e, err := ks.GetPrivateKeyEntry("gateway", []byte("changeit"))
	if err != nil {
		t.Fatalf("entry under lowercased alias: %v", err)
	}
	if len(e.CertificateChain) != 3 || !bytes.Equal(e.CertificateChain[0].Content, is.Cert.Raw) {
		t.Errorf("chain has %d certs, want leaf, intermediate, root", len(e.CertificateChain))
	}
	if err := WriteJKS(path+"2", "g", is, []byte("пароль")); !errors.Is(err, ErrPasswordEncoding) {
		t.Errorf("Cyrillic password: err = %v, want ErrPasswordEncoding", err)
	}
	if err := WriteJKS(path+"3", "g", is, nil); !errors.Is(err, ErrPasswordRequired) {
		t.Errorf("no password: err = %v, want ErrPasswordRequired", err)
	}
}

func TestTrustAliases(t *testing.T) {
	mk := func(cn string) *x509.Certificate { return &x509.Certificate{Subject: pkix.Name{CommonName: cn}} }
	got := TrustAliases([]*x509.Certificate{mk("apimanCA"), mk("apimanCA"), mk(""), mk("Ops Root/2"), mk("apimanca-2")})
	want := []string{"apimanca", "apimanca-2", "cert", "ops-root-2", "apimanca-2-2"}
	if !slices.Equal(got, want) {
		t.Errorf("TrustAliases = %q, want %q", got, want)
	}
}

func TestConcurrentIssueRecordsEverySerial(t *testing.T) {
	t.Parallel()
	ca, err := InitCA(filepath.Join(t.TempDir(), "ca"), CAOptions{Name: "busy CA"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := ca.Issue(IssueOptions{Name: "client-" + strconv.Itoa(i), Client: true})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	entries, err := ca.Entries()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != n {
		t.Errorf("index holds %d entries after %d concurrent issues, want %d", len(entries), n, n)
	}
}
