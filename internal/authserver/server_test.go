package authserver

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/auth"
	"github.com/portcullis/portcullis/internal/testpki"
)

func TestMetadata(t *testing.T) {
	f := newFixture(t)
	req, _ := http.NewRequest(http.MethodGet, f.ts.URL+"/.well-known/oauth-authorization-server", nil)
	r := f.do(nil, req)
	if r.status != 200 {
		t.Fatalf("metadata: %d %s", r.status, r.raw)
	}
	want := map[string]any{
		"issuer":                 testIssuer,
		"token_endpoint":         testIssuer + "/oauth2/token",
		"jwks_uri":               testIssuer + "/oauth2/jwks",
		"introspection_endpoint": testIssuer + "/oauth2/introspect",
		"revocation_endpoint":    testIssuer + "/oauth2/revoke",
		"tls_client_certificate_bound_access_tokens": true,
	}
	for k, v := range want {
		if r.body[k] != v {
			t.Errorf("%s = %v, want %v", k, r.body[k], v)
		}
	}
	strs := func(key string) []string {
		var out []string
		for _, v := range r.body[key].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	if got := strs("grant_types_supported"); !slices.Equal(got, []string{"client_credentials"}) {
		t.Errorf("grant_types_supported = %v", got)
	}
	allNames := []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "tls_client_auth", "self_signed_tls_client_auth"}
	for _, key := range []string{"token_endpoint_auth_methods_supported", "introspection_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported"} {
		if got := strs(key); !slices.Equal(got, allNames) {
			t.Errorf("%s = %v, want %v", key, got, allNames)
		}
	}
	if got := strs("token_endpoint_auth_signing_alg_values_supported"); !slices.Contains(got, "ES256") || slices.Contains(got, "none") || slices.Contains(got, "HS256") {
		t.Errorf("token_endpoint_auth_signing_alg_values_supported = %v", got)
	}
	if _, ok := r.body["response_types_supported"].([]any); !ok {
		t.Error("response_types_supported (required by RFC 8414) is missing")
	}

	// Metadata follows client changes; methods nobody uses are not
	// advertised.
	secret, hash, _ := NewSecret()
	if err := f.srv.UpdateClients([]Client{{ID: "only", Methods: []ClientAuthMethod{MethodSecretPost}, SecretHashes: []string{hash}}}); err != nil {
		t.Fatal(err)
	}
	r = f.do(nil, req)
	if got := strs("token_endpoint_auth_methods_supported"); !slices.Equal(got, []string{"client_secret_post"}) {
		t.Errorf("after UpdateClients methods = %v", got)
	}
	if _, ok := r.body["token_endpoint_auth_signing_alg_values_supported"]; ok {
		t.Error("signing algorithms advertised without any private_key_jwt client")
	}
	if _, ok := f.srv.Application("secret-client"); ok {
		t.Error("a removed client still resolves")
	}
	f.token(nil, url.Values{"client_id": {"only"}, "client_secret": {secret}}, nil)
}

func TestIssuerWithPath(t *testing.T) {
	secret, hash, _ := NewSecret()
	e := newEnv(t, Options{Issuer: "https://gw.example.com/tenant-a", PathPrefix: "/as/", Clients: secretClient(hash)})
	req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/.well-known/oauth-authorization-server/tenant-a", nil)
	r := e.do(nil, req)
	if r.status != 200 || r.str("issuer") != "https://gw.example.com/tenant-a" || r.str("token_endpoint") != "https://gw.example.com/tenant-a/as/token" {
		t.Fatalf("metadata (RFC 8414 §3 path insertion) = %d %s", r.status, r.raw)
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if r := e.post(nil, "/tenant-a/as/token", form, basic("app", secret)); r.status != 200 {
		t.Errorf("token endpoint under the issuer path = %d %s", r.status, r.raw)
	}
	for _, path := range []string{"/oauth2/token", "/as/token", "/.well-known/oauth-authorization-server"} {
		if r := e.post(nil, path, form, basic("app", secret)); r.status != 404 {
			t.Errorf("POST %s = %d, want 404", path, r.status)
		}
	}
}

func TestRoutes(t *testing.T) {
	e := newEnv(t, Options{})
	tests := []struct {
		method, path string
		status       int
		ctype        string
	}{
		{http.MethodGet, "/oauth2/jwks", 200, "application/json"},
		{http.MethodHead, "/oauth2/jwks", 200, "application/json"},
		{http.MethodPost, "/oauth2/jwks", 405, "application/json"},
		{http.MethodGet, "/oauth2/introspect", 405, "application/json"},
		{http.MethodDelete, "/oauth2/revoke", 405, "application/json"},
		{http.MethodGet, "/oauth2/", 404, "application/problem+json"},
		{http.MethodGet, "/oauth2/token/x", 404, "application/problem+json"},
		{http.MethodGet, "/", 404, "application/problem+json"},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(tc.method, e.ts.URL+tc.path, nil)
		r := e.do(nil, req)
		if r.status != tc.status || r.header.Get("Content-Type") != tc.ctype {
			t.Errorf("%s %s = %d %s, want %d %s", tc.method, tc.path, r.status, r.header.Get("Content-Type"), tc.status, tc.ctype)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/oauth2/jwks", nil)
	r := e.do(nil, req)
	if strings.Contains(r.raw, `"d"`) || len(e.jwks().Keys) != 2 {
		t.Errorf("JWKS = %s, want two public keys (current and next)", r.raw)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	smallRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec := newECKey(t).Public()
	secretOK := []ClientAuthMethod{MethodSecretBasic}
	hash := HashSecret("s")
	tests := []struct {
		name string
		o    Options
		want error
	}{
		{"http issuer", Options{Issuer: "http://gw.example.com"}, ErrBadOptions},
		{"issuer with trailing slash", Options{Issuer: "https://gw.example.com/"}, ErrBadOptions},
		{"issuer with query", Options{Issuer: "https://gw.example.com?x=1"}, ErrBadOptions},
		{"relative path prefix", Options{Issuer: testIssuer, PathPrefix: "oauth2"}, ErrBadOptions},
		{"unknown algorithm", Options{Issuer: testIssuer, Algorithm: "HS256"}, ErrBadOptions},
		{"sub-second TTL", Options{Issuer: testIssuer, TokenTTL: 1}, ErrBadOptions},
		{"negative rotation", Options{Issuer: testIssuer, RotateEvery: -1}, ErrBadOptions},
		{"empty client id", Options{Issuer: testIssuer, Clients: []Client{{Methods: secretOK, SecretHashes: []string{hash}}}}, ErrBadClient},
		{"duplicate client id", Options{Issuer: testIssuer, Clients: []Client{{ID: "a", Methods: secretOK, SecretHashes: []string{hash}}, {ID: "a", Methods: secretOK, SecretHashes: []string{hash}}}}, ErrBadClient},
		{"no methods", Options{Issuer: testIssuer, Clients: []Client{{ID: "a"}}}, ErrBadClient},
		{"unknown method", Options{Issuer: testIssuer, Clients: []Client{{ID: "a", Methods: []ClientAuthMethod{"client_secret_jwt"}}}}, ErrBadClient},
		{"secret method without hash", Options{Issuer: testIssuer, Clients: []Client{{ID: "a", Methods: secretOK}}}, ErrBadClient},
		{"plain-text secret instead of a hash", Options{Issuer: testIssuer, Clients: []Client{{ID: "a", Methods: secretOK, SecretHashes: []string{"hunter2"}}}}, ErrBadClient},
		{"private_key_jwt without keys", Options{Issuer: testIssuer, Clients: []Client{{ID: "a", Methods: []ClientAuthMethod{MethodPrivateKeyJWT}}}}, ErrBadClient},
		{"1024-bit RSA assertion key", Options{Issuer: testIssuer, Clients: []Client{{ID: "a", Methods: []ClientAuthMethod{MethodPrivateKeyJWT}, JWKS: []crypto.PublicKey{&smallRSA.PublicKey}}}}, ErrBadClient},
		{"key ids do not pair with keys", Options{Issuer: testIssuer, Clients: []Client{{ID: "a", Methods: []ClientAuthMethod{MethodPrivateKeyJWT}, JWKS: []crypto.PublicKey{ec}, KeyIDs: []string{"a", "b"}}}}, ErrBadClient},
		{"tls_client_auth without names", Options{Issuer: testIssuer, Trust: []auth.Verifier{newTrustSet(t, testpki.NewCA(t, "CA"))}, Clients: []Client{{ID: "a", Methods: []ClientAuthMethod{MethodTLSClientAuth}}}}, ErrBadClient},
		{"tls_client_auth without trust", Options{Issuer: testIssuer, Clients: []Client{{ID: "a", Methods: []ClientAuthMethod{MethodTLSClientAuth}, TLSSubjectDN: "CN=a"}}}, ErrBadClient},
		{"malformed subject DN", Options{Issuer: testIssuer, Trust: []auth.Verifier{newTrustSet(t, testpki.NewCA(t, "CA"))}, Clients: []Client{{ID: "a", Methods: []ClientAuthMethod{MethodTLSClientAuth}, TLSSubjectDN: "just-a-name"}}}, ErrBadClient},
		{"self-signed method without certificates", Options{Issuer: testIssuer, Clients: []Client{{ID: "a", Methods: []ClientAuthMethod{MethodSelfSignedTLSClientAuth}, SelfSignedCerts: []*x509.Certificate{nil}}}}, ErrBadClient},
		{"scope with a space", Options{Issuer: testIssuer, Clients: []Client{{ID: "a", Methods: secretOK, SecretHashes: []string{hash}, Scopes: []string{"a b"}}}}, ErrBadClient},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.o)
			if !errors.Is(err, tc.want) {
				t.Fatalf("New = %v, want %v", err, tc.want)
			}
			if s != nil {
				t.Error("New returned a server with its error")
			}
		})
	}
}

func TestApplication(t *testing.T) {
	f := newFixture(t)
	if app, ok := f.srv.Application("tls-client"); !ok || app != "orders-app" {
		t.Errorf("Application(tls-client) = %q, %v", app, ok)
	}
	if app, ok := f.srv.Application("jwt-client"); !ok || app != "jwt-client" {
		t.Errorf("Application(jwt-client) = %q, %v, want the client id as default", app, ok)
	}
	if _, ok := f.srv.Application("nobody"); ok {
		t.Error("an unknown client resolved")
	}
}

func TestNormalizeDN(t *testing.T) {
	same := [][2]string{
		{"CN=a,O=b", "cn = a , o= b"},
		{"CN=a+OU=x,O=b", "OU=x + CN=a, O=b"},
		{`CN=a\,b,O=c`, `cn=a\,b, o=c`},
		{`CN=trailing\ ,O=c`, `CN=trailing\ , O=c`},
	}
	for _, p := range same {
		a, err1 := normalizeDN(p[0])
		b, err2 := normalizeDN(p[1])
		if err1 != nil || err2 != nil || a != b {
			t.Errorf("normalizeDN(%q) = %q, %v; normalizeDN(%q) = %q, %v; want equal", p[0], a, err1, p[1], b, err2)
		}
	}
	different := [][2]string{
		{"CN=a,O=b", "O=b,CN=a"},
		{"CN=a,O=b", "CN=A,O=b"},
		{`CN=a\,b`, "CN=a,b"},
	}
	for _, p := range different {
		a, _ := normalizeDN(p[0])
		b, _ := normalizeDN(p[1])
		if a == b {
			t.Errorf("normalizeDN(%q) == normalizeDN(%q) = %q", p[0], p[1], a)
		}
	}
	for _, bad := range []string{"", "abc", `CN=a\`, "=a"} {
		if _, err := normalizeDN(bad); err == nil {
			t.Errorf("normalizeDN(%q) succeeded", bad)
		}
	}
}
