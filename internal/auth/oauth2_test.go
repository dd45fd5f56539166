package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis/portcullis/internal/problem"
)

// wantOAuth2Error asserts err is a problem with code and the RFC 6750
// challenge that goes with it.
func wantOAuth2Error(t *testing.T, err error, code string) *problem.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want %s", code)
	}
	pe := asProblemT(t, err)
	if pe.Code != code {
		t.Fatalf("code = %s (%v), want %s", pe.Code, pe.Log, code)
	}
	if _, ok := problem.Catalogue[pe.Code]; !ok {
		t.Errorf("code %s is not in the catalogue", pe.Code)
	}
	ch := pe.Header.Get("WWW-Authenticate")
	switch code {
	case problem.CodeOAuth2Unavailable:
		if ch != "" {
			t.Errorf("unavailable carries a challenge %q", ch)
		}
	case problem.CodeOAuth2TokenMissing:
		if ch != `Bearer realm="portcullis"` {
			t.Errorf("challenge = %q, want a bare Bearer challenge (RFC 6750 §3.1: no error for a missing token)", ch)
		}
	case problem.CodeOAuth2InsufficientScope:
		if !strings.Contains(ch, `error="insufficient_scope"`) {
			t.Errorf("challenge = %q", ch)
		}
	default:
		if !strings.HasPrefix(ch, `Bearer realm="portcullis", error="invalid_`) || !strings.Contains(ch, "error_description=") {
			t.Errorf("challenge = %q, want Bearer with error and error_description", ch)
		}
	}
	if logValue(pe, "auth") != "oauth2" {
		t.Errorf("log lacks auth=oauth2: %v", pe.Log)
	}
	return pe
}

// TestOAuth2JWT is the JWT validation specification: each row is a token
// and the outcome it must have.
func TestOAuth2JWT(t *testing.T) {
	f := newOAuthFixture(t)
	a := f.auth(t, nil)
	other := newECKey(t)
	good := f.es256(t, nil)
	pubDER, err := x509.MarshalPKIXPublicKey(&f.rs.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	tampered := func() string {
		parts := strings.Split(good, ".")
		raw, err := json.Marshal(f.claims(func(c jwt.MapClaims) { c["sub"] = "admin" }))
		if err != nil {
			t.Fatal(err)
		}
		parts[1] = base64.RawURLEncoding.EncodeToString(raw)
		return strings.Join(parts, ".")
	}()
	noneTok := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "es-1", f.claims(nil), nil)

	tests := []struct {
		name  string
		token string
		code  string // "" means accepted
	}{
		{"ES256 token from the issuer's JWKS is accepted", good, ""},
		{"RS256 token from the issuer's JWKS is accepted", sign(t, jwt.SigningMethodRS256, f.rs, "rs-1", f.claims(nil), nil), ""},
		{"PS256 token with the RSA key is accepted (JWK alg RS256 does not match)", sign(t, jwt.SigningMethodPS256, f.rs, "rs-1", f.claims(nil), nil), problem.CodeOAuth2SignatureInvalid},
		{"typ JWT is accepted", sign(t, jwt.SigningMethodES256, f.es, "es-1", f.claims(nil), map[string]any{"typ": "JWT"}), ""},
		{"typ application/at+jwt is accepted", sign(t, jwt.SigningMethodES256, f.es, "es-1", f.claims(nil), map[string]any{"typ": "application/AT+JWT"}), ""},
		{"no typ is accepted", sign(t, jwt.SigningMethodES256, f.es, "es-1", f.claims(nil), map[string]any{"typ": nil}), ""},
		{"no kid tries the issuer's keys of the right type", sign(t, jwt.SigningMethodES256, f.es, "", f.claims(nil), nil), ""},
		{"typ dpop+jwt is not an access token", sign(t, jwt.SigningMethodES256, f.es, "es-1", f.claims(nil), map[string]any{"typ": "dpop+jwt"}), problem.CodeOAuth2TokenMalformed},
		{"crit header is refused", sign(t, jwt.SigningMethodES256, f.es, "es-1", f.claims(nil), map[string]any{"crit": []string{"exp"}}), problem.CodeOAuth2TokenMalformed},
		{"non-string kid is malformed", sign(t, jwt.SigningMethodES256, f.es, "", f.claims(nil), map[string]any{"kid": 7}), problem.CodeOAuth2TokenMalformed},
		{"tampered payload fails the signature", tampered, problem.CodeOAuth2SignatureInvalid},
		{"signed by another key under the same kid", sign(t, jwt.SigningMethodES256, other, "es-1", f.claims(nil), nil), problem.CodeOAuth2SignatureInvalid},
		{"alg none is refused", noneTok, problem.CodeOAuth2SignatureInvalid},
		{"alg none without signature segment is refused", strings.TrimSuffix(noneTok, "."), problem.CodeOAuth2TokenMalformed},
		{"HS256 keyed with the public key PEM (alg confusion)", sign(t, jwt.SigningMethodHS256, pubPEM, "rs-1", f.claims(nil), nil), problem.CodeOAuth2SignatureInvalid},
		{"HS256 keyed with the public key DER (alg confusion)", sign(t, jwt.SigningMethodHS256, pubDER, "", f.claims(nil), nil), problem.CodeOAuth2SignatureInvalid},
		{"ES384 is not in the default algorithms", sign(t, jwt.SigningMethodES384, newP384(t), "es-1", f.claims(nil), nil), problem.CodeOAuth2SignatureInvalid},
		{"expired an hour ago", f.es256(t, func(c jwt.MapClaims) { c["exp"] = f.clock.Now().Add(-time.Hour).Unix() }), problem.CodeOAuth2TokenExpired},
		{"expired 10 s ago is within the 30 s leeway", f.es256(t, func(c jwt.MapClaims) { c["exp"] = f.clock.Now().Add(-10 * time.Second).Unix() }), ""},
		{"nbf in the future", f.es256(t, func(c jwt.MapClaims) { c["nbf"] = f.clock.Now().Add(time.Hour).Unix() }), problem.CodeOAuth2TokenNotYetValid},
		{"iat in the future", f.es256(t, func(c jwt.MapClaims) { c["iat"] = f.clock.Now().Add(time.Hour).Unix() }), problem.CodeOAuth2TokenNotYetValid},
		{"nbf 10 s ahead is within the leeway", f.es256(t, func(c jwt.MapClaims) { c["nbf"] = f.clock.Now().Add(10 * time.Second).Unix() }), ""},
		{"no exp is refused", f.es256(t, func(c jwt.MapClaims) { delete(c, "exp") }), problem.CodeOAuth2TokenMalformed},
		{"exp of the wrong type is malformed", f.es256(t, func(c jwt.MapClaims) { c["exp"] = "tomorrow" }), problem.CodeOAuth2TokenMalformed},
		{"unknown issuer", f.es256(t, func(c jwt.MapClaims) { c["iss"] = "https://evil.example.com/" }), problem.CodeOAuth2IssuerUnknown},
		{"issuer differing by a trailing slash is unknown", f.es256(t, func(c jwt.MapClaims) { c["iss"] = strings.TrimSuffix(testIssuer, "/") }), problem.CodeOAuth2IssuerUnknown},
		{"no issuer", f.es256(t, func(c jwt.MapClaims) { delete(c, "iss") }), problem.CodeOAuth2IssuerUnknown},
		{"wrong audience", f.es256(t, func(c jwt.MapClaims) { c["aud"] = "https://other.example.com" }), problem.CodeOAuth2AudienceMismatch},
		{"audience list containing ours", f.es256(t, func(c jwt.MapClaims) { c["aud"] = []string{"x", testAudience} }), ""},
		{"no audience", f.es256(t, func(c jwt.MapClaims) { delete(c, "aud") }), problem.CodeOAuth2AudienceMismatch},
		{"unknown kid", sign(t, jwt.SigningMethodES256, f.es, "nope", f.claims(nil), nil), problem.CodeOAuth2SignatureInvalid},
		{"three garbage segments", "eyJhbGciOi.e30.sig", problem.CodeOAuth2TokenMalformed},
		{"opaque token without introspection", "2YotnFZFEjr1zCsicMWpAA", problem.CodeOAuth2TokenMalformed},
		{"JWE-shaped token without introspection", "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", problem.CodeOAuth2TokenMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bearerRequest(http.MethodGet, "/v1/things", tt.token)
			p, err := a.Authenticate(r)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("refused: %v (%v)", err, asProblemT(t, err).Log)
				}
				if p.Application != "acme" || p.ClientID != "client-1" || p.Subject != "client-1" || !slices.Equal(p.Methods, []string{"oauth2"}) {
					t.Errorf("principal = %+v", p)
				}
				if !slices.Equal(p.Scopes, []string{"read", "write"}) || p.TokenExpiry.IsZero() || p.CertBound {
					t.Errorf("principal = %+v", p)
				}
				if r.Header.Get("Authorization") == "" {
					t.Error("Authorization was stripped without StripToken")
				}
				return
			}
			pe := wantOAuth2Error(t, err, tt.code)
			if strings.Contains(pe.Detail, tt.token) || strings.Contains(pe.Header.Get("WWW-Authenticate"), tt.token) {
				t.Error("the token leaked into the response")
			}
		})
	}
	st := a.Stats()
	if st.Outcomes["ok"] == 0 || st.Outcomes[problem.CodeOAuth2SignatureInvalid] == 0 || st.JWKSFetchOK == 0 {
		t.Errorf("stats = %+v", st)
	}
}

func newP384(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func shortRSA(t *testing.T) *rsa.PublicKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	return &k.PublicKey
}

// TestOAuth2Log checks the operator's log attributes of a refusal and that
// the client detail says nothing of the token's claims.
func TestOAuth2Log(t *testing.T) {
	f := newOAuthFixture(t)
	a := f.auth(t, nil)
	tok := f.es256(t, func(c jwt.MapClaims) {
		c["exp"] = f.clock.Now().Add(-time.Hour).Unix()
		c["sub"] = "alice@example.com"
	})
	_, err := a.Authenticate(bearerRequest(http.MethodGet, "/", tok))
	pe := wantOAuth2Error(t, err, problem.CodeOAuth2TokenExpired)
	for k, want := range map[string]string{"iss": testIssuer, "sub": "alice@example.com", "client_id": "client-1", "kid": "es-1", "reason": "expired"} {
		if got := logValue(pe, k); got != want {
			t.Errorf("log %s = %q, want %q", k, got, want)
		}
	}
	if strings.Contains(pe.Detail, "alice") {
		t.Errorf("detail %q leaks the subject", pe.Detail)
	}
	if ch := pe.Header.Get("WWW-Authenticate"); ch != `Bearer realm="portcullis", error="invalid_token", error_description="The access token expired"` {
		t.Errorf("challenge = %q", ch)
	}
}

// TestOAuth2BearerHeader covers RFC 6750 §2.1: where the token may be and
// how it must look.
func TestOAuth2BearerHeader(t *testing.T) {
	f := newOAuthFixture(t)
	a := f.auth(t, nil)
	good := f.es256(t, nil)
	tests := []struct {
		name    string
		headers []string
		target  string
		code    string
	}{
		{"no Authorization header", nil, "/v1/things", problem.CodeOAuth2TokenMissing},
		{"token in the query string is not read", nil, "/v1/things?access_token=" + good, problem.CodeOAuth2TokenMissing},
		{"another scheme is no bearer token", []string{"Basic dXNlcjpwYXNz"}, "/", problem.CodeOAuth2TokenMissing},
		{"scheme without token", []string{"Bearer"}, "/", problem.CodeOAuth2TokenMalformed},
		{"scheme with blank token", []string{"Bearer   "}, "/", problem.CodeOAuth2TokenMalformed},
		{"two Authorization headers", []string{"Bearer " + good, "Bearer " + good}, "/", problem.CodeOAuth2TokenMalformed},
		{"illegal characters", []string{"Bearer abc,def"}, "/", problem.CodeOAuth2TokenMalformed},
		{"padding in the middle", []string{"Bearer ab=cd"}, "/", problem.CodeOAuth2TokenMalformed},
		{"oversized token", []string{"Bearer " + strings.Repeat("a", maxBearerLen+1)}, "/", problem.CodeOAuth2TokenMalformed},
		{"lower-case scheme is accepted", []string{"bearer " + good}, "/", ""},
		{"extra spaces after the scheme are tolerated", []string{"Bearer  " + good}, "/", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "https://api.example.com"+tt.target, nil)
			for _, h := range tt.headers {
				r.Header.Add("Authorization", h)
			}
			_, err := a.Authenticate(r)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			pe := wantOAuth2Error(t, err, tt.code)
			if tt.code == problem.CodeOAuth2TokenMalformed && !strings.Contains(pe.Header.Get("WWW-Authenticate"), `error="invalid_request"`) {
				t.Errorf("malformed header: challenge %q, want error=invalid_request", pe.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

// TestOAuth2Scopes covers API-wide and per-route scopes and the 403
// challenge naming them.
func TestOAuth2Scopes(t *testing.T) {
	f := newOAuthFixture(t)
	a := f.auth(t, func(o *OAuth2Options) {
		o.Scopes = []string{"read"}
		o.RouteScopes = []RouteScope{
			{Methods: []string{"post", "PUT"}, PathPrefix: "/v1/orders/", Scopes: []string{"orders:write"}},
			{PathPrefix: "/admin", Scopes: []string{"admin"}},
		}
	})
	scoped := func(scope any) string {
		return f.es256(t, func(c jwt.MapClaims) {
			delete(c, "scope")
			if scope != nil {
				c["scope"] = scope
			}
		})
	}
	tests := []struct {
		name, method, path string
		token              string
		code               string
		scopeAttr          string
	}{
		{"API scope present", "GET", "/v1/things", scoped("read"), "", ""},
		{"API scope missing", "GET", "/v1/things", scoped("write"), problem.CodeOAuth2InsufficientScope, "read"},
		{"no scope claim at all", "GET", "/v1/things", scoped(nil), problem.CodeOAuth2InsufficientScope, "read"},
		{"route scope missing on POST", "POST", "/v1/orders", scoped("read"), problem.CodeOAuth2InsufficientScope, "read orders:write"},
		{"route scope present below the prefix", "PUT", "/v1/orders/7", scoped("read orders:write"), "", ""},
		{"route not matched by another method", "GET", "/v1/orders", scoped("read"), "", ""},
		{"prefix matches whole segments only", "POST", "/v1/ordersX", scoped("read"), "", ""},
		{"second route for every method", "DELETE", "/admin/users", scoped("read orders:write"), problem.CodeOAuth2InsufficientScope, "read admin"},
		{"scp array claim counts", "GET", "/admin", f.es256(t, func(c jwt.MapClaims) { delete(c, "scope"); c["scp"] = []string{"read", "admin"} }), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a.Authenticate(bearerRequest(tt.method, tt.path, tt.token))
			if tt.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			pe := wantOAuth2Error(t, err, tt.code)
			if pe.HTTPStatus() != http.StatusForbidden {
				t.Errorf("status %d, want 403", pe.HTTPStatus())
			}
			want := `Bearer realm="portcullis", error="insufficient_scope", error_description="The access token lacks a required scope", scope="` + tt.scopeAttr + `"`
			if got := pe.Header.Get("WWW-Authenticate"); got != want {
				t.Errorf("challenge\n got %s\nwant %s", got, want)
			}
		})
	}
}

// TestOAuth2Options lists settings NewOAuth2 must refuse, each with the
// words the operator needs.
func TestOAuth2Options(t *testing.T) {
	f := newOAuthFixture(t)
	iss := func(mod func(*OAuth2Issuer)) []OAuth2Issuer {
		i := OAuth2Issuer{Issuer: testIssuer, JWKSURL: "https://idp.example.com/jwks"}
		mod(&i)
		return []OAuth2Issuer{i}
	}
	tests := []struct {
		name string
		o    OAuth2Options
		want string
	}{
		{"no issuers", OAuth2Options{}, "at least one issuer"},
		{"alg none", OAuth2Options{Issuers: iss(func(*OAuth2Issuer) {}), Algorithms: []string{"none"}}, "valid algorithms are ES256"},
		{"HMAC", OAuth2Options{Issuers: iss(func(*OAuth2Issuer) {}), Algorithms: []string{"ES256", "HS256"}}, `"HS256" is not accepted`},
		{"empty issuer", OAuth2Options{Issuers: iss(func(i *OAuth2Issuer) { i.Issuer = "" })}, "empty issuer"},
		{"duplicate issuer", OAuth2Options{Issuers: append(iss(func(*OAuth2Issuer) {}), iss(func(*OAuth2Issuer) {})...)}, "listed twice"},
		{"two key sources", OAuth2Options{Issuers: iss(func(i *OAuth2Issuer) { i.StaticKeys = []crypto.PublicKey{&f.es.PublicKey} })}, "only one of"},
		{"no key source", OAuth2Options{Issuers: iss(func(i *OAuth2Issuer) { i.JWKSURL = "" })}, "no way to check tokens"},
		{"plain http JWKS", OAuth2Options{Issuers: iss(func(i *OAuth2Issuer) { i.JWKSURL = "http://idp.example.com/jwks" })}, "must use https"},
		{"relative JWKS URL", OAuth2Options{Issuers: iss(func(i *OAuth2Issuer) { i.JWKSURL = "/jwks" })}, "not an absolute URL"},
		{"refresh too often", OAuth2Options{Issuers: iss(func(i *OAuth2Issuer) { i.JWKSRefresh = time.Second })}, "below the minimum"},
		{"HMAC static key", OAuth2Options{Issuers: iss(func(i *OAuth2Issuer) { i.JWKSURL = ""; i.StaticKeys = []crypto.PublicKey{[]byte("secret")} })}, "HMAC"},
		{"short RSA static key", OAuth2Options{Issuers: iss(func(i *OAuth2Issuer) { i.JWKSURL = ""; i.StaticKeys = []crypto.PublicKey{shortRSA(t)} })}, "too short"},
		{"static key ids not parallel", OAuth2Options{Issuers: iss(func(i *OAuth2Issuer) {
			i.JWKSURL = ""
			i.StaticKeys = []crypto.PublicKey{&f.es.PublicKey}
			i.StaticKeyIDs = []string{"a", "b"}
		})}, "one id per key"},
		{"introspection without client id", OAuth2Options{Issuers: iss(func(i *OAuth2Issuer) {
			i.Introspection = &Introspection{URL: "https://idp.example.com/introspect"}
		})}, "client_id is required"},
		{"empty audience", OAuth2Options{Issuers: iss(func(i *OAuth2Issuer) { i.Audiences = []string{""} })}, "audiences has an empty entry"},
		{"scope with a quote", OAuth2Options{Issuers: iss(func(*OAuth2Issuer) {}), Scopes: []string{`a"b`}}, "not a valid scope"},
		{"route prefix without slash", OAuth2Options{Issuers: iss(func(*OAuth2Issuer) {}), RouteScopes: []RouteScope{{PathPrefix: "v1", Scopes: []string{"a"}}}}, `must start with "/"`},
		{"route without scopes", OAuth2Options{Issuers: iss(func(*OAuth2Issuer) {}), RouteScopes: []RouteScope{{PathPrefix: "/v1"}}}, "at least one scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := NewOAuth2(tt.o)
			if err == nil {
				a.Close()
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrBadOAuth2) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want ErrBadOAuth2 mentioning %q", err, tt.want)
			}
		})
	}
	t.Run("loopback http is allowed", func(t *testing.T) {
		a, err := NewOAuth2(OAuth2Options{Issuers: iss(func(i *OAuth2Issuer) { i.JWKSURL = "http://127.0.0.1:1/jwks" })})
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
	})
}

// TestOAuth2KeySources covers static keys with kids and the in-process
// key source of the built-in authorization server.
func TestOAuth2KeySources(t *testing.T) {
	f := newOAuthFixture(t)
	second := newECKey(t)
	static := f.auth(t, func(o *OAuth2Options) {
		o.Issuers = []OAuth2Issuer{{Issuer: testIssuer, StaticKeys: []crypto.PublicKey{&f.es.PublicKey, &second.PublicKey}, StaticKeyIDs: []string{"a", ""}}}
	})
	inproc := f.auth(t, func(o *OAuth2Options) {
		o.Issuers = []OAuth2Issuer{{Issuer: testIssuer, Keyfunc: func(tok *jwt.Token) (any, error) {
			if tok.Header["kid"] == "secret" {
				return []byte("hmac"), nil
			}
			if tok.Header["kid"] != "es-1" {
				return nil, errors.New("no such key")
			}
			return &f.es.PublicKey, nil
		}}}
	})
	tests := []struct {
		name  string
		a     *OAuth2
		token string
		code  string
	}{
		{"static key by kid", static, sign(t, jwt.SigningMethodES256, f.es, "a", f.claims(nil), nil), ""},
		{"static key without kid matches any kid", static, sign(t, jwt.SigningMethodES256, second, "zzz", f.claims(nil), nil), ""},
		{"static key under the wrong kid", static, sign(t, jwt.SigningMethodES256, f.es, "zzz", f.claims(nil), nil), problem.CodeOAuth2SignatureInvalid},
		{"no kid tries every static key", static, sign(t, jwt.SigningMethodES256, second, "", f.claims(nil), nil), ""},
		{"RS256 with only EC static keys", static, sign(t, jwt.SigningMethodRS256, f.rs, "", f.claims(nil), nil), problem.CodeOAuth2SignatureInvalid},
		{"in-process key", inproc, f.es256(t, nil), ""},
		{"in-process unknown kid", inproc, sign(t, jwt.SigningMethodES256, f.es, "other", f.claims(nil), nil), problem.CodeOAuth2SignatureInvalid},
		{"in-process secret key is refused", inproc, sign(t, jwt.SigningMethodES256, f.es, "secret", f.claims(nil), nil), problem.CodeOAuth2SignatureInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.a.Authenticate(bearerRequest(http.MethodGet, "/", tt.token))
			if tt.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantOAuth2Error(t, err, tt.code)
		})
	}
}

// TestOAuth2RequiredClaimsAndApplications covers required_claims and the
// client id fallbacks used to find the application.
func TestOAuth2RequiredClaimsAndApplications(t *testing.T) {
	f := newOAuthFixture(t)
	a := f.auth(t, func(o *OAuth2Options) {
		o.RequiredClaims = []string{"jti"}
		o.ClientApplications = func(id string) (string, bool) {
			app, ok := map[string]string{"c-id": "from-client-id", "c-azp": "from-azp", "c-sub": "from-sub"}[id]
			return app, ok
		}
	})
	tests := []struct {
		name     string
		mod      func(jwt.MapClaims)
		code     string
		app, cid string
	}{
		{"client_id wins", func(c jwt.MapClaims) { c["client_id"], c["azp"], c["sub"] = "c-id", "c-azp", "c-sub" }, "", "from-client-id", "c-id"},
		{"azp when no client_id", func(c jwt.MapClaims) { delete(c, "client_id"); c["azp"], c["sub"] = "c-azp", "c-sub" }, "", "from-azp", "c-azp"},
		{"sub as the last resort", func(c jwt.MapClaims) { delete(c, "client_id"); c["sub"] = "c-sub" }, "", "from-sub", "c-sub"},
		{"unknown client is accepted without an application", func(c jwt.MapClaims) { c["client_id"] = "stranger" }, "", "", "stranger"},
		{"required claim missing", func(c jwt.MapClaims) { delete(c, "jti") }, problem.CodeOAuth2TokenMalformed, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := a.Authenticate(bearerRequest(http.MethodGet, "/", f.es256(t, tt.mod)))
			if tt.code != "" {
				pe := wantOAuth2Error(t, err, tt.code)
				if logValue(pe, "claim") != "jti" {
					t.Errorf("log = %v", pe.Log)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Application != tt.app || p.ClientID != tt.cid {
				t.Errorf("application %q client %q, want %q %q", p.Application, p.ClientID, tt.app, tt.cid)
			}
		})
	}
}

// TestOAuth2StripToken: the token is forwarded unless StripToken is set.
func TestOAuth2StripToken(t *testing.T) {
	f := newOAuthFixture(t)
	for _, strip := range []bool{false, true} {
		a := f.auth(t, func(o *OAuth2Options) { o.StripToken = strip })
		r := bearerRequest(http.MethodGet, "/", f.es256(t, nil))
		if _, err := a.Authenticate(r); err != nil {
			t.Fatal(err)
		}
		if kept := r.Header.Get("Authorization") != ""; kept == strip {
			t.Errorf("StripToken=%v: Authorization kept=%v", strip, kept)
		}
		r = bearerRequest(http.MethodGet, "/", "x")
		a.StripCredentials(r)
		if kept := r.Header.Get("Authorization") != ""; kept == strip {
			t.Errorf("StripToken=%v: StripCredentials kept=%v", strip, kept)
		}
	}
}
