package authserver

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis/portcullis/internal/auth"
)

func TestIssuedTokenHasRFC9068Claims(t *testing.T) {
	for _, alg := range []string{"ES256", "RS256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			secret, hash, err := NewSecret()
			if err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, Options{
				Algorithm: alg,
				TokenTTL:  10 * time.Minute,
				Clients:   []Client{{ID: "app-1", Methods: []ClientAuthMethod{MethodSecretBasic}, SecretHashes: []string{hash}, Scopes: []string{"orders:read", "orders:write"}}},
			})
			tok, r := e.token(nil, url.Values{"scope": {"orders:read"}}, basic("app-1", secret))
			if r.str("token_type") != "Bearer" || r.body["expires_in"] != float64(600) || r.str("scope") != "orders:read" {
				t.Errorf("token response = %s", r.raw)
			}
			parsed, claims, err := e.parseToken(tok, testIssuer)
			if err != nil {
				t.Fatalf("token does not validate with Keyfunc: %v", err)
			}
			if parsed.Header["typ"] != "at+jwt" || parsed.Header["alg"] != alg || parsed.Header["kid"] == "" {
				t.Errorf("header = %v, want typ at+jwt, alg %s and a kid", parsed.Header, alg)
			}
			now := e.clock.Now().Unix()
			want := map[string]any{
				"iss": testIssuer, "sub": "app-1", "aud": testIssuer, "client_id": "app-1", "scope": "orders:read",
				"iat": float64(now), "nbf": float64(now), "exp": float64(now + 600),
			}
			for k, v := range want {
				if claims[k] != v {
					t.Errorf("claim %s = %v, want %v", k, claims[k], v)
				}
			}
			jti, _ := claims["jti"].(string)
			if b, err := base64.RawURLEncoding.DecodeString(jti); err != nil || len(b) != 16 {
				t.Errorf("jti %q is not 128 random bits in base64url", jti)
			}
			if _, ok := claims["cnf"]; ok {
				t.Error("a token obtained with a secret carries cnf")
			}
			// An external validator holding only the JWKS accepts it too.
			if _, err := jwt.NewParser(jwt.WithValidMethods([]string{alg}), jwt.WithIssuer(testIssuer), jwt.WithAudience(testIssuer), jwt.WithTimeFunc(e.clock.Now)).Parse(tok, jwksKeyfunc(t, e.jwks())); err != nil {
				t.Errorf("token does not validate with the published JWKS: %v", err)
			}
			// A second token has another jti.
			tok2, _ := e.token(nil, url.Values{}, basic("app-1", secret))
			_, claims2, err := e.parseToken(tok2, testIssuer)
			if err != nil {
				t.Fatal(err)
			}
			if claims2["jti"] == claims["jti"] {
				t.Error("two tokens share a jti")
			}
			if claims2["scope"] != "orders:read orders:write" {
				t.Errorf("without a scope parameter, scope = %v, want every allowed scope", claims2["scope"])
			}
		})
	}
}

func TestKeyfuncRefusesForeignAndConfusedTokens(t *testing.T) {
	f := newFixture(t)
	tok, _ := f.token(nil, url.Values{}, basic("secret-client", f.secret))
	other := newEnv(t, Options{Clients: []Client{{ID: "secret-client", Methods: []ClientAuthMethod{MethodSecretBasic}, SecretHashes: []string{HashSecret(f.secret)}}}})
	foreign, _ := other.token(nil, url.Values{}, basic("secret-client", f.secret))
	if _, _, err := f.parseToken(foreign, testIssuer); err == nil {
		t.Error("a token signed by another server's key validated")
	}
	// The same claims re-signed with HS256 using the public key's bytes
	// must not pass: the key's algorithm is fixed.
	parsed, claims, err := f.parseToken(tok, testIssuer)
	if err != nil {
		t.Fatal(err)
	}
	forged := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	forged.Header["kid"] = parsed.Header["kid"]
	forged.Header["typ"] = "at+jwt"
	s, err := forged.SignedString([]byte("whatever"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwt.NewParser(jwt.WithIssuer(testIssuer), jwt.WithTimeFunc(f.clock.Now)).Parse(s, f.srv.Keyfunc()); err == nil {
		t.Error("Keyfunc returned a key for an HS256 token")
	}
	// A token naming the right kid with another algorithm of the same
	// family gets no key either.
	es384 := &jwt.Token{Header: map[string]any{"kid": parsed.Header["kid"]}, Method: jwt.SigningMethodES384}
	if _, err := f.srv.Keyfunc()(es384); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Keyfunc for an ES384 token on an ES256 key: %v, want ErrUnknownKey", err)
	}
	noKid := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	if _, err := f.srv.Keyfunc()(noKid); err == nil {
		t.Error("Keyfunc returned a key for a token without kid")
	}
}

func TestBoundTokens(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name  string
		c     *http.Client
		form  url.Values
		mod   func(*http.Request)
		cnf   string
		bound bool
	}{
		{name: "tls_client_auth client registered for bound tokens", c: f.client(tlsCert(f.tlsLeaf)), form: url.Values{"client_id": {"tls-client"}}, cnf: auth.Thumbprint(f.tlsLeaf.Cert), bound: true},
		{name: "self_signed_tls_client_auth client registered for bound tokens", c: f.client(tlsCert(f.selfCert)), form: url.Values{"client_id": {"self-client"}}, cnf: auth.Thumbprint(f.selfCert.Cert), bound: true},
		{name: "tls_client_auth client not registered for bound tokens", c: f.client(tlsCert(f.sanLeaf)), form: url.Values{"client_id": {"san-client"}}},
		{name: "bound-token client that authenticated with a secret", c: f.client(tlsCert(f.secretHolder)), form: url.Values{}, mod: basic("secret-client", f.secret)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, _ := f.token(tc.c, tc.form, tc.mod)
			_, claims, err := f.parseToken(tok, testIssuer)
			if err != nil {
				t.Fatal(err)
			}
			cnf, ok := claims["cnf"].(map[string]any)
			if ok != tc.bound {
				t.Fatalf("cnf = %v, want bound=%v", claims["cnf"], tc.bound)
			}
			if tc.bound && cnf["x5t#S256"] != tc.cnf {
				t.Errorf("cnf.x5t#S256 = %v, want %s", cnf["x5t#S256"], tc.cnf)
			}
		})
	}
}

func TestScopes(t *testing.T) {
	secret, hash, _ := NewSecret()
	clients := []Client{{ID: "app", Application: "shop", Methods: []ClientAuthMethod{MethodSecretPost}, SecretHashes: []string{hash}, Scopes: []string{"read", "write", "admin", "read"}}}
	subscribed := func(app string) []string {
		if app != "shop" {
			return nil
		}
		return []string{"write", "read", "billing"}
	}
	tests := []struct {
		name      string
		subscribe bool
		scope     string
		want      string
		code      string
	}{
		{name: "no scope asked: every registered scope", scope: "", want: "read write admin"},
		{name: "no scope asked, with subscriptions: registered ∩ subscribed", subscribe: true, scope: "", want: "read write"},
		{name: "one scope", scope: "write", want: "write"},
		{name: "repeated and extra spaces collapse", scope: "read  read write", want: "read write"},
		{name: "registered but not subscribed", subscribe: true, scope: "read admin", code: errInvalidScope},
		{name: "subscribed but not registered", subscribe: true, scope: "billing", code: errInvalidScope},
		{name: "unknown scope fails the request", scope: "read delete", code: errInvalidScope},
		{name: "malformed scope", scope: `re"ad`, code: errInvalidScope},
	}
	plain := newEnv(t, Options{Clients: clients})
	withSubs := newEnv(t, Options{Clients: clients, SubscriptionScopes: subscribed})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := plain
			if tc.subscribe {
				e = withSubs
			}
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"app"}, "client_secret": {secret}}
			if tc.scope != "" {
				form.Set("scope", tc.scope)
			}
			r := e.post(nil, "/oauth2/token", form, nil)
			if tc.code != "" {
				if r.status != 400 || r.str("error") != tc.code {
					t.Fatalf("got %d %s, want 400 %s", r.status, r.raw, tc.code)
				}
				return
			}
			if r.status != 200 {
				t.Fatalf("got %d %s", r.status, r.raw)
			}
			_, claims, err := e.parseToken(r.str("access_token"), testIssuer)
			if err != nil {
				t.Fatal(err)
			}
			if claims["scope"] != tc.want && !(tc.want == "" && claims["scope"] == nil) {
				t.Errorf("scope = %v, want %q", claims["scope"], tc.want)
			}
		})
	}
}

func TestAudience(t *testing.T) {
	secret, hash, _ := NewSecret()
	e := newEnv(t, Options{
		Audiences: []string{"https://orders.example.com", "https://billing.example.com"},
		Clients:   []Client{{ID: "app", Methods: []ClientAuthMethod{MethodSecretBasic}, SecretHashes: []string{hash}}},
	})
	tests := []struct {
		name string
		form url.Values
		want []string
		code string
	}{
		{name: "default audience is the issuer", form: url.Values{}, want: []string{testIssuer}},
		{name: "resource indicator", form: url.Values{"resource": {"https://orders.example.com"}}, want: []string{"https://orders.example.com"}},
		{name: "audience parameter", form: url.Values{"audience": {"https://billing.example.com"}}, want: []string{"https://billing.example.com"}},
		{name: "two resources", form: url.Values{"resource": {"https://orders.example.com", "https://billing.example.com"}}, want: []string{"https://orders.example.com", "https://billing.example.com"}},
		{name: "unknown resource", form: url.Values{"resource": {"https://evil.example.com"}}, code: errInvalidTarget},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("grant_type", "client_credentials")
			r := e.post(nil, "/oauth2/token", tc.form, basic("app", secret))
			if tc.code != "" {
				if r.status != 400 || r.str("error") != tc.code {
					t.Fatalf("got %d %s, want 400 %s", r.status, r.raw, tc.code)
				}
				return
			}
			_, claims, err := e.parseToken(r.str("access_token"), tc.want[0])
			if err != nil {
				t.Fatalf("%v (%s)", err, r.raw)
			}
			aud, err := claims.GetAudience()
			if err != nil || !slices.Equal([]string(aud), tc.want) {
				t.Errorf("aud = %v, want %v", aud, tc.want)
			}
		})
	}
}

func TestTokenRequestErrors(t *testing.T) {
	f := newFixture(t)
	creds := basic("secret-client", f.secret)
	tests := []struct {
		name   string
		method string
		path   string
		ctype  string
		body   string
		status int
		code   string
	}{
		{name: "no grant_type", body: "", status: 400, code: errInvalidRequest},
		{name: "password grant", body: "grant_type=password&username=a&password=b", status: 400, code: errUnsupportedGrantType},
		{name: "authorization_code grant", body: "grant_type=authorization_code&code=x", status: 400, code: errUnsupportedGrantType},
		{name: "repeated grant_type", body: "grant_type=client_credentials&grant_type=client_credentials", status: 400, code: errInvalidRequest},
		{name: "JSON body", ctype: "application/json", body: `{"grant_type":"client_credentials"}`, status: 400, code: errInvalidRequest},
		{name: "secret in the query string", path: "/oauth2/token?client_secret=x", body: "grant_type=client_credentials", status: 400, code: errInvalidRequest},
		{name: "GET", method: http.MethodGet, status: 405, code: errInvalidRequest},
		{name: "oversized body", body: "grant_type=client_credentials&pad=" + strings.Repeat("a", maxFormSize), status: 413, code: errInvalidRequest},
		{name: "form with charset parameter", ctype: "application/x-www-form-urlencoded; charset=UTF-8", body: "grant_type=client_credentials", status: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method, path, ctype := tc.method, tc.path, tc.ctype
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = "/oauth2/token"
			}
			if ctype == "" {
				ctype = "application/x-www-form-urlencoded"
			}
			req, _ := http.NewRequest(method, f.ts.URL+path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", ctype)
			creds(req)
			r := f.do(nil, req)
			if r.status != tc.status || r.str("error") != tc.code {
				t.Fatalf("got %d %s, want %d %s", r.status, r.raw, tc.status, tc.code)
			}
			if tc.status == 405 && r.header.Get("Allow") != "POST" {
				t.Errorf("Allow = %q, want POST", r.header.Get("Allow"))
			}
		})
	}
}
