package trust

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/testpki"
)

// BenchmarkVerifyFirstSight measures Verify for a chain the set has not seen
// (the verified-chain cache is emptied before each call): the cost of the
// first request on a new client connection. Setup matches BenchmarkVerify
// (ECDSA P-256, intermediate sent by the peer, 10,000-entry CRL).
func BenchmarkVerifyFirstSight(b *testing.B) {
	root := testpki.NewCA(b, "Bench Root")
	inter := root.Intermediate(b, "Bench Issuing CA")
	leaf := inter.Issue(b, "bench-client", testpki.Client())
	entries := make([]x509.RevocationListEntry, 10000)
	for i := range entries {
		entries[i] = x509.RevocationListEntry{SerialNumber: big.NewInt(int64(i)*7919 + 1), RevocationTime: time.Now().Add(-time.Hour)}
	}
	now := time.Now()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(time.Hour), RevokedCertificateEntries: entries,
	}, inter.Cert, inter.Key)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "inter.crl")
	testpki.WriteFile(b, path, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
	s, err := NewSet("bench", []*x509.Certificate{root.Cert}, &RevocationOptions{CRLFiles: []string{path}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	chain := []*x509.Certificate{leaf.Cert, inter.Cert}

	b.ReportAllocs()
	for b.Loop() {
		s.verified.entries.Store(nil)
		if _, err := s.Verify(chain, x509.ExtKeyUsageClientAuth, now); err != nil {
			b.Fatal(err)
		}
	}
}
