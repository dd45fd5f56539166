package authserver

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// BenchmarkIssueToken measures issuing one access token. "sign" is the
// claims encoding and signature alone, per algorithm (the signature
// dominates); "endpoint" is a whole token request through Handler with
// client_secret_basic (form parsing, client lookup, SHA-256 secret check,
// scope decision, signing and the JSON response), without TLS.
func BenchmarkIssueToken(b *testing.B) {
	secret, hash, err := NewSecret()
	if err != nil {
		b.Fatal(err)
	}
	clients := []Client{{ID: "app", Methods: []ClientAuthMethod{MethodSecretBasic}, SecretHashes: []string{hash}, Scopes: []string{"read", "write"}}}
	for _, alg := range []string{"ES256", "RS256", "EdDSA"} {
		b.Run("sign/"+alg, func(b *testing.B) {
			s, err := New(Options{Issuer: testIssuer, Algorithm: alg, Clients: clients})
			if err != nil {
				b.Fatal(err)
			}
			who := &authenticated{client: s.clients.Load().byID["app"], method: MethodSecretBasic}
			aud := audience{testIssuer}
			scopes := []string{"read", "write"}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.issue(who, scopes, aud); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("endpoint/ES256", func(b *testing.B) {
		s, err := New(Options{Issuer: testIssuer, Clients: clients})
		if err != nil {
			b.Fatal(err)
		}
		h := s.Handler()
		body := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}.Encode()
		b.ReportAllocs()
		for b.Loop() {
			req := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("app", secret)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})
}
