package auth

import (
	"net/http"
	"testing"
)

// BenchmarkOAuth2Authenticate measures validating an ES256 JWT access
// token per request with the JWKS already cached: bearer extraction, JWS
// decoding and the ECDSA verification (most of the time), claim checks,
// scope and route checks, the application lookup and building the
// Principal. No network I/O happens in the loop.
func BenchmarkOAuth2Authenticate(b *testing.B) {
	f := newOAuthFixture(b)
	a := f.auth(b, func(o *OAuth2Options) {
		o.Scopes = []string{"read"}
		o.RouteScopes = []RouteScope{{Methods: []string{"POST"}, PathPrefix: "/v1/orders", Scopes: []string{"write"}}}
	})
	r := bearerRequest(http.MethodGet, "/v1/things", f.es256(b, nil))
	if _, err := a.Authenticate(r); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Authenticate(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := a.Authenticate(r); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
