package authserver

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzTokenEndpoint sends arbitrary bodies and Authorization headers to
// the token endpoint. Properties: without the secret no token is issued,
// every refusal is an RFC 6749 error document with a known code, and the
// secret never appears in a response.
func FuzzTokenEndpoint(f *testing.F) {
	const secret = "fuzz-secret-value"
	s, err := New(Options{Issuer: testIssuer, Clients: []Client{
		{ID: "app", Methods: []ClientAuthMethod{MethodSecretBasic, MethodSecretPost}, SecretHashes: []string{HashSecret(secret)}, Scopes: []string{"read"}},
	}})
	if err != nil {
		f.Fatal(err)
	}
	h := s.Handler()
	f.Add("grant_type=client_credentials&client_id=app&client_secret=x", "")
	f.Add("grant_type=client_credentials", "Basic YXBwOnNlY3JldA==")
	f.Add("grant_type=client_credentials&scope=read%20write", "Basic %%%")
	f.Add("client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=a.b.c", "")
	f.Add("grant_type=client_credentials&client_id=app", "Bearer x")
	known := map[string]bool{errInvalidRequest: true, errInvalidClient: true, errUnsupportedGrantType: true, errInvalidScope: true, errInvalidTarget: true}
	f.Fuzz(func(t *testing.T, body, authz string) {
		if strings.Contains(body, secret) || strings.Contains(authz, "ZnV6ei1zZWNyZXQtdmFsdWU") {
			t.Skip()
		}
		req := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if authz != "" {
			req.Header["Authorization"] = []string{authz}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == http.StatusOK {
			t.Fatalf("a token was issued without the secret: body %q, Authorization %q", body, authz)
		}
		var doc errorResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || !known[doc.Error] {
			t.Fatalf("refusal %d %q is not an RFC 6749 error document", rec.Code, rec.Body)
		}
		if strings.Contains(rec.Body.String(), secret) {
			t.Fatalf("the secret leaked: %s", rec.Body)
		}
	})
}

// FuzzNormalizeDN checks that a normalised DN normalises to itself, so a
// registered DN and a certificate's DN meet in one canonical form.
func FuzzNormalizeDN(f *testing.F) {
	for _, s := range []string{"CN=a,O=b", "cn = a + ou=x , o=b", `CN=a\,b`, `CN=x\ `, "/CN=a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := normalizeDN(s)
		if err != nil {
			return
		}
		again, err := normalizeDN(n)
		if err != nil || again != n {
			t.Fatalf("normalizeDN(%q) = %q, which normalises to %q, %v", s, n, again, err)
		}
	})
}
