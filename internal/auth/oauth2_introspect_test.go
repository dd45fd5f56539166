package auth

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis/portcullis/internal/problem"
)

// introspectionFixture is an IdP whose opaque tokens are introspected.
func introspectionFixture(t *testing.T, f *oauthFixture, answers map[string]map[string]any, mod func(*Introspection)) (*OAuth2, *introspectionServer) {
	t.Helper()
	srv := newIntrospectionServer(t, answers)
	a := f.auth(t, func(o *OAuth2Options) {
		in := &Introspection{URL: srv.srv.URL + "/introspect", ClientID: introClientID, ClientSecret: []byte(introSecret)}
		if mod != nil {
			mod(in)
		}
		o.Issuers[0].Introspection = in
	})
	return a, srv
}

// TestOAuth2Introspection covers RFC 7662: active and inactive answers,
// the checks applied to an answer, and client authentication.
func TestOAuth2Introspection(t *testing.T) {
	f := newOAuthFixture(t)
	now := f.clock.Now()
	active := func(mod func(map[string]any)) map[string]any {
		m := map[string]any{"active": true, "scope": "read write", "client_id": "client-1", "sub": "user-9", "iss": testIssuer,
			"aud": testAudience, "exp": now.Add(time.Hour).Unix(), "token_type": "Bearer"}
		if mod != nil {
			mod(m)
		}
		return m
	}
	answers := map[string]map[string]any{
		"tok-active":      active(nil),
		"tok-inactive":    {"active": false},
		"tok-expired":     active(func(m map[string]any) { m["exp"] = now.Add(-time.Hour).Unix() }),
		"tok-future":      active(func(m map[string]any) { m["nbf"] = now.Add(time.Hour).Unix() }),
		"tok-other-iss":   active(func(m map[string]any) { m["iss"] = "https://other.example.com/" }),
		"tok-no-iss":      active(func(m map[string]any) { delete(m, "iss") }),
		"tok-other-aud":   active(func(m map[string]any) { m["aud"] = []string{"https://other.example.com"} }),
		"tok-refresh":     active(func(m map[string]any) { m["token_type"] = "refresh_token" }),
		"tok-active-str":  {"active": "true"},
		"tok-scp-array":   active(func(m map[string]any) { delete(m, "scope"); m["scp"] = []string{"read", "write"} }),
		"tok-no-clientid": active(func(m map[string]any) { delete(m, "client_id"); m["sub"] = "client-1" }),
	}
	a, srv := introspectionFixture(t, f, answers, nil)
	tests := []struct {
		token string
		code  string
	}{
		{"tok-active", ""},
		{"tok-inactive", problem.CodeOAuth2TokenInactive},
		{"tok-unknown-to-the-server", problem.CodeOAuth2TokenInactive},
		{"tok-expired", problem.CodeOAuth2TokenExpired},
		{"tok-future", problem.CodeOAuth2TokenNotYetValid},
		{"tok-other-iss", problem.CodeOAuth2TokenInactive},
		{"tok-no-iss", ""},
		{"tok-other-aud", problem.CodeOAuth2AudienceMismatch},
		{"tok-refresh", problem.CodeOAuth2TokenInactive},
		{"tok-active-str", problem.CodeOAuth2Unavailable},
		{"tok-scp-array", ""},
		{"tok-no-clientid", ""},
	}
	for _, tt := range tests {
		t.Run(tt.token, func(t *testing.T) {
			p, err := a.Authenticate(bearerRequest(http.MethodGet, "/", tt.token))
			if tt.code != "" {
				wantOAuth2Error(t, err, tt.code)
				return
			}
			if err != nil {
				t.Fatalf("refused: %v (%v)", err, asProblemT(t, err).Log)
			}
			if p.Application != "acme" || p.ClientID != "client-1" || !slices.Equal(p.Scopes, []string{"read", "write"}) || p.TokenExpiry.IsZero() {
				t.Errorf("principal = %+v", p)
			}
		})
	}

	t.Run("wrong client credentials", func(t *testing.T) {
		bad, _ := introspectionFixture(t, f, answers, func(in *Introspection) { in.ClientSecret = []byte("wrong") })
		_, err := bad.Authenticate(bearerRequest(http.MethodGet, "/", "tok-active"))
		pe := wantOAuth2Error(t, err, problem.CodeOAuth2Unavailable)
		if logValue(pe, "reason") != "introspection_failed" || pe.Cause == nil {
			t.Errorf("log %v cause %v", pe.Log, pe.Cause)
		}
	})
	t.Run("endpoint down", func(t *testing.T) {
		srv.down.Store(true)
		defer srv.down.Store(false)
		_, err := a.Authenticate(bearerRequest(http.MethodGet, "/", "tok-never-seen"))
		wantOAuth2Error(t, err, problem.CodeOAuth2Unavailable)
		if a.Stats().IntrospectionFailed == 0 {
			t.Error("failure not counted")
		}
	})
}

// TestOAuth2IntrospectionCache: answers are reused, active ones for at
// most MaxTTL and never past the token's exp, inactive ones for
// NegativeTTL; the endpoint is called again afterwards.
func TestOAuth2IntrospectionCache(t *testing.T) {
	f := newOAuthFixture(t)
	now := f.clock.Now()
	answers := map[string]map[string]any{
		"long":  {"active": true, "iss": testIssuer, "aud": testAudience, "scope": "read", "exp": now.Add(time.Hour).Unix()},
		"short": {"active": true, "iss": testIssuer, "aud": testAudience, "scope": "read", "exp": now.Add(20 * time.Second).Unix()},
		"dead":  {"active": false},
	}
	a, srv := introspectionFixture(t, f, answers, nil)
	auth := func(tok string) error {
		_, err := a.Authenticate(bearerRequest(http.MethodGet, "/", tok))
		return err
	}
	for range 3 {
		if err := auth("long"); err != nil {
			t.Fatal(err)
		}
		wantOAuth2Error(t, auth("dead"), problem.CodeOAuth2TokenInactive)
		if err := auth("short"); err != nil {
			t.Fatal(err)
		}
	}
	if srv.callsFor("long") != 1 || srv.callsFor("dead") != 1 || srv.callsFor("short") != 1 {
		t.Fatalf("calls long=%d dead=%d short=%d, want one each", srv.callsFor("long"), srv.callsFor("dead"), srv.callsFor("short"))
	}
	if st := a.Stats(); st.IntrospectionCalls != 3 || st.IntrospectionCacheHits != 6 {
		t.Errorf("stats = %+v, want 3 calls and 6 hits", st)
	}

	f.clock.Advance(DefaultIntrospectionNegativeTTL + time.Second)
	wantOAuth2Error(t, auth("dead"), problem.CodeOAuth2TokenInactive)
	if n := srv.callsFor("dead"); n != 2 {
		t.Errorf("inactive answer reused beyond NegativeTTL: %d calls", n)
	}
	if err := auth("long"); err != nil || srv.callsFor("long") != 1 {
		t.Errorf("active answer not reused within MaxTTL: err %v, %d calls", err, srv.callsFor("long"))
	}
	f.clock.Advance(15 * time.Second) // 26 s: past short's exp, inside the leeway
	if err := auth("short"); err != nil {
		t.Fatalf("short refused inside the leeway: %v", err)
	}
	if n := srv.callsFor("short"); n != 2 {
		t.Errorf("answer reused past the token's exp: %d calls", n)
	}
	f.clock.Advance(DefaultIntrospectionMaxTTL)
	if err := auth("long"); err != nil || srv.callsFor("long") != 2 {
		t.Errorf("active answer reused beyond MaxTTL: err %v, %d calls", err, srv.callsFor("long"))
	}
}

// TestOAuth2IntrospectionCacheBound: a full cache of live answers stores
// no more, and expired entries make room.
func TestOAuth2IntrospectionCacheBound(t *testing.T) {
	f := newOAuthFixture(t)
	a, srv := introspectionFixture(t, f, nil, func(in *Introspection) { in.MaxEntries = 2 })
	for _, tok := range []string{"a", "b", "c", "c"} {
		wantOAuth2Error(t, func() error { _, err := a.Authenticate(bearerRequest(http.MethodGet, "/", tok)); return err }(), problem.CodeOAuth2TokenInactive)
	}
	if n := srv.callsFor("c"); n != 2 {
		t.Errorf("a third answer was cached beyond MaxEntries=2: %d calls for c", n)
	}
	f.clock.Advance(DefaultIntrospectionNegativeTTL + time.Second)
	for range 2 {
		_, _ = a.Authenticate(bearerRequest(http.MethodGet, "/", "d"))
	}
	if n := srv.callsFor("d"); n != 1 {
		t.Errorf("expired entries did not make room: %d calls for d", n)
	}
}

// TestOAuth2IntrospectionJWT: an issuer with both keys and introspection
// verifies a JWT locally and asks the endpoint whether it is revoked; an
// issuer with introspection only sends its JWTs there.
func TestOAuth2IntrospectionJWT(t *testing.T) {
	f := newOAuthFixture(t)
	live := f.es256(t, nil)
	revoked := f.es256(t, func(c jwt.MapClaims) { c["jti"] = "revoked" })
	forged := sign(t, jwt.SigningMethodES256, newECKey(t), "es-1", f.claims(nil), nil)
	answers := map[string]map[string]any{
		live:   {"active": true, "iss": testIssuer, "aud": testAudience, "scope": "read", "client_id": "client-1"},
		forged: {"active": true, "iss": testIssuer, "aud": testAudience, "scope": "read", "client_id": "client-1"},
	}
	a, srv := introspectionFixture(t, f, answers, func(in *Introspection) { in.IntrospectJWTs = true })
	if p, err := a.Authenticate(bearerRequest(http.MethodGet, "/", live)); err != nil || !slices.Equal(p.Scopes, []string{"read", "write"}) {
		t.Fatalf("live JWT: %v, principal %+v (claims must come from the verified JWT)", err, p)
	}
	_, err := a.Authenticate(bearerRequest(http.MethodGet, "/", revoked))
	wantOAuth2Error(t, err, problem.CodeOAuth2TokenInactive)
	_, err = a.Authenticate(bearerRequest(http.MethodGet, "/", forged))
	wantOAuth2Error(t, err, problem.CodeOAuth2SignatureInvalid)
	if srv.callsFor(forged) != 0 {
		t.Error("a forged JWT reached the introspection endpoint")
	}

	calls := srv.callsFor(revoked)
	opaqueOnly, _ := introspectionFixture(t, f, answers, nil)
	if _, err := opaqueOnly.Authenticate(bearerRequest(http.MethodGet, "/", revoked)); err != nil {
		t.Errorf("without IntrospectJWTs a verified JWT is refused: %v", err)
	}
	if srv.callsFor(revoked) != calls {
		t.Error("without IntrospectJWTs a JWT was introspected")
	}

	hits := f.jwks.hits.Load()
	only := f.auth(t, func(o *OAuth2Options) {
		o.Issuers[0].JWKSURL = ""
		o.Issuers[0].Introspection = &Introspection{URL: srv.srv.URL, ClientID: introClientID, ClientSecret: []byte(introSecret)}
	})
	if _, err := only.Authenticate(bearerRequest(http.MethodGet, "/", forged)); err != nil {
		t.Errorf("introspection-only issuer: %v", err)
	}
	_, err = only.Authenticate(bearerRequest(http.MethodGet, "/", revoked))
	wantOAuth2Error(t, err, problem.CodeOAuth2TokenInactive)
	if f.jwks.hits.Load() != hits {
		t.Errorf("JWKS fetched %d more times; the introspection-only issuer must not fetch it", f.jwks.hits.Load()-hits)
	}
}
