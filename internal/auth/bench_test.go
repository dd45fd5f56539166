package auth

import (
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portcullis/portcullis/internal/testpki"
)

// BenchmarkMTLSAuthenticate measures the authenticator's own per-request
// work around verification: fingerprinting the leaf, allow rules, the
// application lookup and building the Principal. The verifier is a fake
// that returns the chain without allocating, so crypto/x509 verification
// (measured in package trust) is excluded.
func BenchmarkMTLSAuthenticate(b *testing.B) {
	ca := testpki.NewCA(b, "Bench CA")
	leaf := ca.Issue(b, "bench-client", testpki.Client(), testpki.OU("bench"), testpki.URI("spiffe://example.org/bench"))
	apps, err := NewApplications([]Application{{ID: "bench", Fingerprints: []string{Fingerprint(leaf.Cert)}}})
	if err != nil {
		b.Fatal(err)
	}
	m, err := NewMTLS(MTLSOptions{Sets: []Verifier{fakeSet{name: "bench"}}, RequireClientAuthEKU: true, Apps: apps,
		Allow: AllowRules{OU: []string{"bench"}, URI: []string{"spiffe://example.org"}}})
	if err != nil {
		b.Fatal(err)
	}
	r := tlsRequest(leaf.Cert, ca.Cert)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Authenticate(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := m.Authenticate(r); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkAPIKey measures a header key: hashing, lookup and stripping the
// header. The header is put back each round, outside the timer's concern
// since it is a map assignment of a preallocated slice.
func BenchmarkAPIKey(b *testing.B) {
	a, err := NewAPIKey(APIKeyOptions{Keys: []APIKey{{Application: "acme", Hash: HashAPIKey("pk_live_0123456789abcdef")}}})
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/v1/things", nil)
	key := []string{"pk_live_0123456789abcdef"}
	b.ReportAllocs()
	for b.Loop() {
		r.Header["X-Api-Key"] = key
		if _, err := a.Authenticate(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSetRFC9440 measures encoding a three-certificate verified chain
// into Client-Cert and Client-Cert-Chain.
func BenchmarkSetRFC9440(b *testing.B) {
	root := testpki.NewCA(b, "Root")
	mid := root.Intermediate(b, "Issuing")
	leaf := mid.Issue(b, "client", testpki.Client())
	chain := []*x509.Certificate{leaf.Cert, mid.Cert, root.Cert}
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		SetRFC9440(h, chain)
	}
}

// BenchmarkSetXFCC measures the Envoy-format header for one leaf.
func BenchmarkSetXFCC(b *testing.B) {
	ca := testpki.NewCA(b, "CA")
	leaf := ca.Issue(b, "client", testpki.Client(), testpki.DNS("a.example"), testpki.URI("spiffe://example.org/a"))
	chain := []*x509.Certificate{leaf.Cert}
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		SetXFCC(h, chain)
	}
}

// BenchmarkStripForwardedCertHeaders measures the first pipeline stage on a
// typical header set with one configured extra name; it must not allocate.
func BenchmarkStripForwardedCertHeaders(b *testing.B) {
	h := http.Header{"Accept": {"*/*"}, "User-Agent": {"curl/8"}, "X-Request-Id": {"abc"}, "Authorization": {"Bearer t"},
		"Content-Type": {"application/json"}, "X-Forwarded-For": {"192.0.2.1"}}
	b.ReportAllocs()
	for b.Loop() {
		StripForwardedCertHeaders(h, "X-SSL-Client-Cert")
	}
}
