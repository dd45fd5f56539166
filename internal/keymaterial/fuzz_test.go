package keymaterial

import (
	"bytes"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/testpki"
	"github.com/square/certigo/jceks"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// fuzzLimits keeps each input cheap: the seeds use one KDF iteration, and a
// mutated count above this bound is rejected before any work is done.
var fuzzLimits = limits{maxIterations: 64, maxNesting: 4}

const fuzzPass = "fuzz-Secret"

var sentinels = []error{
	ErrWrongPassword, ErrAliasNotFound, ErrAliasRequired, ErrNoPrivateKey, ErrExpired, ErrNotYetValid,
	ErrKeyMismatch, ErrUnsupportedFormat, ErrNoCertificates, ErrCorrupt, ErrInvalidSource,
}

// FuzzDetectAndLoad feeds arbitrary bytes to format detection, to the
// identity and trust loaders (the PKCS#12 reader above all) and to the store
// reader behind Inspect. Properties: no
// panic; every error wraps one of the package's sentinels and never
// contains the password; a loaded identity's key matches its leaf and its
// chain starts with the leaf; a loaded trust set is not empty.
func FuzzDetectAndLoad(f *testing.F) {
	ca := testpki.NewCA(f, "Fuzz CA")
	leaf := ca.Issue(f, "fuzz")
	chain := []*x509.Certificate{ca.Cert}
	for _, enc := range []*pkcs12.Encoder{pkcs12.Modern2023, pkcs12.Modern2026, pkcs12.LegacyDES, pkcs12.LegacyRC2} {
		enc = enc.WithIterations(1)
		data, err := enc.Encode(leaf.Key, leaf.Cert, chain, fuzzPass)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)*2/3])
		ts, err := enc.EncodeTrustStore([]*x509.Certificate{ca.Cert}, fuzzPass)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(ts)
	}
	if data, err := pkcs12.Passwordless.Encode(leaf.Key, leaf.Cert, chain, ""); err == nil {
		f.Add(data)
	}
	jks := encodeJKS(f, leaf, []byte(fuzzPass))
	f.Add(jks)
	f.Add(jks[:len(jks)-10])
	f.Add(append(leaf.CertPEM(), leaf.KeyPEM()...))
	f.Add([]byte{0xce, 0xce, 0xce, 0xce})
	f.Add(encodeJCEKS(f, leaf))
	f.Add([]byte{})

	now := time.Now()
	f.Fuzz(func(t *testing.T, data []byte) {
		switch Detect(data) {
		case FormatPEM, FormatPKCS12, FormatJKS, FormatJCEKS, FormatUnknown:
		default:
			t.Fatalf("Detect returned an unknown format")
		}
		src := IdentitySource{Password: []byte(fuzzPass)}
		id, err := identityFromStore(data, "fuzz", src, now, fuzzLimits)
		checkFuzzError(t, err)
		if err == nil {
			c := id.Certificate
			if c.Leaf == nil || len(c.Certificate) == 0 || string(c.Certificate[0]) != string(c.Leaf.Raw) {
				t.Fatal("identity without its leaf first")
			}
			if !keyMatches(c.PrivateKey, c.Leaf) {
				t.Fatal("identity whose key does not match its leaf")
			}
		}
		certs, err := trustFromStore(data, "fuzz", []byte(fuzzPass), fuzzLimits)
		checkFuzzError(t, err)
		if err == nil && len(certs) == 0 {
			t.Fatal("trust loaded without certificates")
		}
		st, err := readStore(data, "fuzz", StoreOptions{Password: []byte(fuzzPass)}, fuzzLimits)
		checkFuzzError(t, err)
		if err == nil {
			if len(st.Entries) == 0 {
				t.Fatal("store read without entries")
			}
			for _, e := range st.Entries {
				checkFuzzError(t, e.KeyErr)
				if e.Kind == EntryTrustedCert && len(e.Chain) != 1 {
					t.Fatalf("certificate entry %q holds %d certificates", e.Alias, len(e.Chain))
				}
				if e.Key != nil && e.KeyErr != nil {
					t.Fatalf("entry %q has a key and a key error", e.Alias)
				}
			}
		}
		if Detect(data) == FormatPKCS12 {
			_, err := parsePKCS12(data, []byte(fuzzPass), fuzzLimits)
			checkFuzzError(t, err)
		}
	})
}

// encodeJCEKS makes a JCEKS store holding leaf's certificate as a trusted
// entry, with certigo's encoder.
func encodeJCEKS(f *testing.F, leaf *testpki.Leaf) []byte {
	var enc jceks.Encoder
	if err := enc.SetIntegrityPassword(fuzzPass); err != nil {
		f.Fatal(err)
	}
	if err := enc.AddTrustedCertificate("leaf", time.Now(), leaf.Cert.Raw); err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := enc.WriteTo(&buf); err != nil {
		f.Fatal(err)
	}
	return buf.Bytes()
}

func checkFuzzError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if strings.Contains(err.Error(), fuzzPass) {
		t.Fatalf("error contains the password: %v", err)
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error wraps no sentinel: %v", err)
}
