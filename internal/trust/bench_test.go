package trust_test

import (
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/testpki"
	"github.com/portcullis/portcullis/internal/trust"
)

// BenchmarkVerify measures the request-path check of a valid client
// certificate (ECDSA P-256 leaf sent with its intermediate, root anchor)
// against a set holding a 10,000-entry CRL from the intermediate, without
// OCSP, for a chain seen before: every request after the first on a client's
// connection. The chain's signatures come from the verified-chain cache;
// usage and revocation (a binary search that allocates nothing) are checked
// each time, and the one allocation is the caller's copy of the chain.
// BenchmarkVerifyFirstSight measures the uncached path.
func BenchmarkVerify(b *testing.B) {
	root := testpki.NewCA(b, "Bench Root")
	inter := root.Intermediate(b, "Bench Issuing CA")
	leaf := inter.Issue(b, "bench-client", testpki.Client())
	entries := make([]x509.RevocationListEntry, 10000)
	for i := range entries {
		entries[i] = x509.RevocationListEntry{SerialNumber: big.NewInt(int64(i)*7919 + 1), RevocationTime: time.Now().Add(-time.Hour)}
	}
	path := writeCRL(b, b.TempDir(), "inter.crl", freshCRL(b, inter, 1, entries...))
	s, err := trust.NewSet("bench", []*x509.Certificate{root.Cert}, &trust.RevocationOptions{CRLFiles: []string{path}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	chain := presented(leaf)
	now := time.Now()
	if _, err := s.Verify(chain, x509.ExtKeyUsageClientAuth, now); err != nil {
		b.Fatal(err)
	}

	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Verify(chain, x509.ExtKeyUsageClientAuth, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Verify(chain, x509.ExtKeyUsageClientAuth, now); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
