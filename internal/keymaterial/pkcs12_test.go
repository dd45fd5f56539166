package keymaterial

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	keystore "github.com/pavlo-v-chernykh/keystore-go/v4"
	"github.com/portcullis/portcullis/internal/testpki"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// TestPKCS12Encoders reads what go-pkcs12's encoders write, covering MAC and
// encryption variants that keytool and OpenSSL do not produce here: PBMAC1,
// no MAC at all, and 3DES-only legacy files.
func TestPKCS12Encoders(t *testing.T) {
	ca := testpki.NewCA(t, "Encoder CA")
	inter := ca.Intermediate(t, "Encoder Issuing")
	leaf := inter.Issue(t, "encoded", testpki.RSA(2048))
	chain := []*x509.Certificate{inter.Cert, ca.Cert}
	tests := []struct {
		name     string
		enc      *pkcs12.Encoder
		password string
		try      string
		wantErr  error
	}{
		{name: "modern 2023", enc: pkcs12.Modern2023, password: p12Pass, try: p12Pass},
		{name: "modern 2026 with pbmac1", enc: pkcs12.Modern2026, password: p12Pass, try: p12Pass},
		{name: "modern 2026 with pbmac1, wrong password", enc: pkcs12.Modern2026, password: p12Pass, try: wrongPass, wantErr: ErrWrongPassword},
		{name: "legacy des", enc: pkcs12.LegacyDES, password: p12Pass, try: p12Pass},
		{name: "legacy rc2 falls back", enc: pkcs12.LegacyRC2, password: p12Pass, try: p12Pass},
		{name: "legacy des, wrong password", enc: pkcs12.LegacyDES, password: p12Pass, try: wrongPass, wantErr: ErrWrongPassword},
		{name: "passwordless, no mac", enc: pkcs12.Passwordless, password: "", try: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data, err := tc.enc.Encode(leaf.Key, leaf.Cert, chain, tc.password)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "store.pfx")
			testpki.WriteFile(t, path, data)
			id, err := LoadIdentity(IdentitySource{Keystore: path, Password: []byte(tc.try)}, time.Now())
			checkNoSecrets(t, err)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkIdentity(t, id, identityCase{wantFormat: FormatPKCS12, wantChain: 3, wantKey: "rsa"})
			if got := id.Certificate.Certificate; !bytes.Equal(got[1], inter.Cert.Raw) || !bytes.Equal(got[2], ca.Cert.Raw) {
				t.Error("chain is not leaf, intermediate, root")
			}
		})
	}
}

// TestJKSLatin1Password covers the password conversion DEPENDENCIES.md
// describes: Java hashes chars, keystore-go hashes bytes.
func TestJKSLatin1Password(t *testing.T) {
	ca := testpki.NewCA(t, "JKS CA")
	leaf := ca.Issue(t, "jks-leaf")
	const pass = "pässwört-Secret"
	data := encodeJKS(t, leaf, latin1(pass))
	dir := t.TempDir()
	path := filepath.Join(dir, "latin1.jks")
	testpki.WriteFile(t, path, data)
	id, err := LoadIdentity(IdentitySource{Keystore: path, Password: []byte(pass)}, time.Now())
	if err != nil {
		t.Fatalf("utf-8 password of a latin-1 jks: %v", err)
	}
	if id.Alias != "key" || id.Format != FormatJKS {
		t.Errorf("alias %q format %q", id.Alias, id.Format)
	}
	_, err = LoadIdentity(IdentitySource{Keystore: path, Password: []byte("pässwört-Secret€")}, time.Now())
	if !errors.Is(err, ErrUnsupportedFormat) || strings.Contains(err.Error(), "pässwört") {
		t.Errorf("password beyond latin-1: %v", err)
	}
}

func latin1(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r))
	}
	return b
}

// encodeJKS writes a JKS holding leaf as key entry "key", with the same
// password for store and key.
func encodeJKS(t testing.TB, leaf *testpki.Leaf, password []byte) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	ks := keystore.New()
	now := time.Now()
	if err := ks.SetPrivateKeyEntry("key", keystore.PrivateKeyEntry{CreationTime: now, PrivateKey: der,
		CertificateChain: []keystore.Certificate{{Type: "X.509", Content: leaf.Cert.Raw}}}, password); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := ks.Store(&buf, password); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestPKCS12KDF checks the RFC 7292 appendix B KDF (id 1, SHA-1, 2048
// iterations, 24 bytes: a 3DES key) against published vectors, one of
// which makes an intermediate block start with a zero byte, which trips
// implementations built on big.Int.
func TestPKCS12KDF(t *testing.T) {
	tests := []struct {
		name     string
		password []byte
		salt     string
		want     string
	}{
		{"sesame", bmpPassword([]byte("sesame")), "\xff\xff\xff\xff\xff\xff\xff\xff",
			"\x7c\xd9\xfd\x3e\x2b\x3b\xe7\x69\x1a\x44\xe3\xbe\xf0\xf9\xea\x0f\xb9\xb8\x97\xd4\xe3\x25\xd9\xd1"},
		{"empty password, leading zero", bmpPassword(nil), "\xf3\x7e\x05\xb5\x18\x32\x4b\x4b",
			"\x00\xf7\x59\xff\x47\xd1\x4d\xd0\x36\x65\xd5\x94\x3c\xb3\xc4\xa3\x9a\x25\x55\xc0\x2a\xed\x66\xe1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := pkcs12KDF(sha1.New, 1, tc.password, []byte(tc.salt), 2048, 24)
			if !bytes.Equal(got, []byte(tc.want)) {
				t.Errorf("pkcs12KDF = %x, want %x", got, tc.want)
			}
		})
	}
}
