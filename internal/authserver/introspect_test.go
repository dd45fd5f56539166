package authserver

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/auth"
)

func TestIntrospection(t *testing.T) {
	f := newFixture(t)
	creds := basic("secret-client", f.secret)
	tok, _ := f.token(nil, url.Values{"scope": {"read"}}, creds)
	bound, _ := f.token(f.client(tlsCert(f.tlsLeaf)), url.Values{"client_id": {"tls-client"}}, nil)
	other := newEnv(t, Options{Clients: []Client{{ID: "secret-client", Methods: []ClientAuthMethod{MethodSecretBasic}, SecretHashes: []string{HashSecret(f.secret)}}}})
	foreign, _ := other.token(nil, url.Values{}, creds)

	r := introspect(f.env, tok, creds)
	now := f.clock.Now().Unix()
	want := map[string]any{
		"active": true, "scope": "read", "client_id": "secret-client", "token_type": "Bearer", "sub": "secret-client",
		"aud": testIssuer, "iss": testIssuer, "iat": float64(now), "nbf": float64(now), "exp": float64(now + int64(DefaultTokenTTL/time.Second)),
	}
	for k, v := range want {
		if r.body[k] != v {
			t.Errorf("introspection %s = %v, want %v (%s)", k, r.body[k], v, r.raw)
		}
	}
	if r.str("jti") == "" || r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("introspection = %s, headers %v", r.raw, r.header)
	}

	// Another client (here a self-signed one, as a resource server might
	// be) may introspect, and sees the binding.
	r = f.post(f.client(tlsCert(f.selfCert)), "/oauth2/introspect", url.Values{"token": {bound}, "client_id": {"self-client"}}, nil)
	cnf, _ := r.body["cnf"].(map[string]any)
	if r.body["active"] != true || cnf["x5t#S256"] != auth.Thumbprint(f.tlsLeaf.Cert) {
		t.Errorf("introspection of a bound token = %s", r.raw)
	}

	inactive := []struct{ name, token string }{
		{"garbage", "not-a-jwt"},
		{"token of another server", foreign},
		{"tampered token", tok[:len(tok)-4] + "AAAA"},
	}
	for _, tc := range inactive {
		if r := introspect(f.env, tc.token, creds); r.status != 200 || r.raw != "{\"active\":false}\n" {
			t.Errorf("%s: introspection = %d %s, want {\"active\":false}", tc.name, r.status, r.raw)
		}
	}
	if r := f.post(nil, "/oauth2/introspect", url.Values{"token": {tok}}, nil); r.status != 401 || r.str("error") != errInvalidClient {
		t.Errorf("introspection without client authentication = %d %s, want 401 invalid_client", r.status, r.raw)
	}
	if r := f.post(nil, "/oauth2/introspect", url.Values{}, creds); r.status != 400 || r.str("error") != errInvalidRequest {
		t.Errorf("introspection without a token = %d %s, want 400 invalid_request", r.status, r.raw)
	}

	f.clock.Advance(DefaultTokenTTL + time.Second)
	if r := introspect(f.env, tok, creds); r.body["active"] != false {
		t.Errorf("introspection of an expired token = %s, want inactive", r.raw)
	}
}

func TestRevocation(t *testing.T) {
	f := newFixture(t)
	owner := basic("secret-client", f.secret)
	tok, _ := f.token(nil, url.Values{}, owner)
	_, claims, err := f.parseToken(tok, testIssuer)
	if err != nil {
		t.Fatal(err)
	}
	jti := claims["jti"].(string)
	jwtClient := func(t *testing.T) url.Values {
		return assertionForm(f.assertion(t, f.jwtKey.signer, nil))
	}

	// Another client cannot revoke it: 200, but nothing changes.
	form := jwtClient(t)
	form.Set("token", tok)
	if r := f.post(nil, "/oauth2/revoke", form, nil); r.status != 200 {
		t.Fatalf("revocation by another client = %d %s, want 200", r.status, r.raw)
	}
	if f.srv.IsRevoked(jti) || introspect(f.env, tok, owner).body["active"] != true {
		t.Fatal("another client revoked the token")
	}

	// Junk and unauthenticated requests.
	if r := f.post(nil, "/oauth2/revoke", url.Values{"token": {"junk"}}, owner); r.status != 200 {
		t.Errorf("revoking junk = %d %s, want 200", r.status, r.raw)
	}
	if r := f.post(nil, "/oauth2/revoke", url.Values{"token": {tok}}, nil); r.status != 401 {
		t.Errorf("unauthenticated revocation = %d %s, want 401", r.status, r.raw)
	}
	if r := f.post(nil, "/oauth2/revoke", url.Values{}, owner); r.status != 400 || r.str("error") != errInvalidRequest {
		t.Errorf("revocation without a token = %d %s, want 400 invalid_request", r.status, r.raw)
	}
	if f.srv.IsRevoked(jti) {
		t.Fatal("the token is revoked before its owner asked")
	}

	// The owner revokes it.
	r := f.post(nil, "/oauth2/revoke", url.Values{"token": {tok}, "token_type_hint": {"access_token"}}, owner)
	if r.status != 200 || r.raw != "" {
		t.Fatalf("revocation by the owner = %d %q, want 200 and no body", r.status, r.raw)
	}
	if !f.srv.IsRevoked(jti) {
		t.Error("IsRevoked = false after revocation")
	}
	if r := introspect(f.env, tok, owner); r.body["active"] != false {
		t.Errorf("introspection of a revoked token = %s, want inactive", r.raw)
	}
	// Other tokens are unaffected, and the entry goes once the token
	// could no longer be accepted anyway.
	tok2, _ := f.token(nil, url.Values{}, owner)
	if r := introspect(f.env, tok2, owner); r.body["active"] != true {
		t.Errorf("another token of the same client = %s, want active", r.raw)
	}
	f.clock.Advance(DefaultTokenTTL + clockLeeway + time.Second)
	if f.srv.IsRevoked(jti) {
		t.Error("the revocation entry outlived the token")
	}
	_ = http.StatusOK
}
