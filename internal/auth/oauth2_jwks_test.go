package auth

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis/portcullis/internal/problem"
)

// TestOAuth2JWKSRotation: a token naming an unknown kid makes the gateway
// refetch the JWKS once, so a rotated key works at once, and further
// unknown kids cannot make it refetch more than once per interval.
func TestOAuth2JWKSRotation(t *testing.T) {
	f := newOAuthFixture(t)
	a := f.auth(t, nil)
	auth := func(tok string) error {
		_, err := a.Authenticate(bearerRequest(http.MethodGet, "/", tok))
		return err
	}
	if err := auth(f.es256(t, nil)); err != nil {
		t.Fatal(err)
	}
	if err := auth(f.es256(t, nil)); err != nil {
		t.Fatal(err)
	}
	if h := f.jwks.hits.Load(); h != 1 {
		t.Fatalf("JWKS fetched %d times for two tokens, want 1 (cached)", h)
	}

	rotated := newECKey(t)
	f.jwks.publish(t, publishedKey{kid: "es-2", alg: jwkset.AlgES256, pub: &rotated.PublicKey})
	f.clock.Advance(DefaultJWKSMinInterval)
	if err := auth(sign(t, jwt.SigningMethodES256, rotated, "es-2", f.claims(nil), nil)); err != nil {
		t.Fatalf("rotated key refused: %v", err)
	}
	if h := f.jwks.hits.Load(); h != 2 {
		t.Fatalf("JWKS fetched %d times, want 2 (one refetch for the unknown kid)", h)
	}
	if err := auth(f.es256(t, nil)); err == nil {
		t.Error("the retired key es-1 is still accepted after the refetch")
	}

	for i := range 5 {
		err := auth(sign(t, jwt.SigningMethodES256, rotated, "random-"+string(rune('a'+i)), f.claims(nil), nil))
		wantOAuth2Error(t, err, problem.CodeOAuth2SignatureInvalid)
	}
	if h := f.jwks.hits.Load(); h != 2 {
		t.Errorf("unknown kids within %s caused %d fetches in all, want 2 (rate-limited)", DefaultJWKSMinInterval, h)
	}
	f.clock.Advance(DefaultJWKSMinInterval)
	wantOAuth2Error(t, auth(sign(t, jwt.SigningMethodES256, rotated, "random-z", f.claims(nil), nil)), problem.CodeOAuth2SignatureInvalid)
	if h := f.jwks.hits.Load(); h != 3 {
		t.Errorf("after the interval: %d fetches, want 3", h)
	}
	if st := a.Stats(); st.JWKSFetchOK != 3 || st.JWKSFetchFailed != 0 {
		t.Errorf("stats = %+v", st)
	}
}

// TestOAuth2JWKSDown: once keys are cached, an unreachable JWKS endpoint
// does not stop known keys from working; the failure is counted and
// logged, and a token only a fresh set could verify gets 503.
func TestOAuth2JWKSDown(t *testing.T) {
	f := newOAuthFixture(t)
	a := f.auth(t, nil)
	auth := func(tok string) error {
		_, err := a.Authenticate(bearerRequest(http.MethodGet, "/", tok))
		return err
	}
	if err := auth(f.es256(t, nil)); err != nil {
		t.Fatal(err)
	}
	f.jwks.down.Store(true)
	f.clock.Advance(time.Minute)
	unknown := sign(t, jwt.SigningMethodES256, newECKey(t), "new-key", f.claims(nil), nil)
	pe := wantOAuth2Error(t, auth(unknown), problem.CodeOAuth2Unavailable)
	if pe.HTTPStatus() != http.StatusServiceUnavailable || logValue(pe, "reason") != "jwks_unavailable" {
		t.Errorf("status %d, log %v", pe.HTTPStatus(), pe.Log)
	}
	if err := auth(f.es256(t, nil)); err != nil {
		t.Fatalf("cached key refused while the endpoint is down: %v", err)
	}
	if err := auth(sign(t, jwt.SigningMethodRS256, f.rs, "rs-1", f.claims(nil), nil)); err != nil {
		t.Fatalf("cached RSA key refused while the endpoint is down: %v", err)
	}
	st := a.Stats()
	if st.JWKSFetchOK != 1 || st.JWKSFetchFailed != 1 {
		t.Errorf("stats = %+v, want 1 ok and 1 failed fetch", st)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "JWKS fetch failed") || !strings.Contains(logs, "status 503") || !strings.Contains(logs, "cached_keys=2") {
		t.Errorf("log does not report the failure with the cached keys:\n%s", logs)
	}

	f.jwks.down.Store(false)
	f.clock.Advance(DefaultJWKSMinInterval)
	wantOAuth2Error(t, auth(unknown), problem.CodeOAuth2SignatureInvalid)
	if st := a.Stats(); st.JWKSFetchOK != 2 {
		t.Errorf("no refetch once the endpoint is back: %+v", st)
	}
}

// TestOAuth2JWKSNeverFetched: with no cached keys and the endpoint down,
// the answer is 503, not a verdict on the token, and the endpoint is not
// hammered.
func TestOAuth2JWKSNeverFetched(t *testing.T) {
	f := newOAuthFixture(t)
	f.jwks.down.Store(true)
	a := f.auth(t, nil)
	for range 3 {
		_, err := a.Authenticate(bearerRequest(http.MethodGet, "/", f.es256(t, nil)))
		wantOAuth2Error(t, err, problem.CodeOAuth2Unavailable)
	}
	if h := f.jwks.hits.Load(); h != 1 {
		t.Errorf("%d fetches for 3 requests within the interval, want 1", h)
	}
}

// TestOAuth2JWKSContent: symmetric and encryption keys in a JWKS are
// ignored, and a set with no usable key does not replace cached keys.
func TestOAuth2JWKSContent(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		keys    int
		wantErr string
	}{
		{"symmetric key ignored", `{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}`, 0, "no usable signing key"},
		{"no keys member", `{}`, 0, `no "keys" member`},
		{"not JSON", `<html>`, 0, "not a JWK Set"},
		{"encryption key ignored", `{"keys":[{"kty":"EC","use":"enc","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`, 0, "no usable signing key"},
		{"EC signing key", `{"keys":[{"kty":"EC","use":"sig","kid":"e","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},{"kty":"oct","k":"c2VjcmV0"}]}`, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, _, err := parseJWKS([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(keys) != tt.keys {
				t.Fatalf("%d keys, error %v; want %d", len(keys), err, tt.keys)
			}
		})
	}
}

// TestOAuth2StartClose: Start fetches in the background and Close stops
// it; both are idempotent.
func TestOAuth2StartClose(t *testing.T) {
	f := newOAuthFixture(t)
	a := f.auth(t, nil)
	a.Start()
	a.Start()
	deadline := time.Now().Add(5 * time.Second)
	for a.Stats().JWKSFetchOK == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no background fetch within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	a.Close()
	a.Close()
	if _, err := a.Authenticate(bearerRequest(http.MethodGet, "/", f.es256(t, nil))); err != nil {
		t.Fatalf("cached keys unusable after Close: %v", err)
	}
	if h := f.jwks.hits.Load(); h != 1 {
		t.Errorf("%d fetches, want the background one only", h)
	}
}
