package auth

import (
	"crypto"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis/portcullis/internal/problem"
)

// FuzzOAuth2Authorization feeds arbitrary Authorization header values
// through bearer extraction, JWS header and claims decoding and the
// checks after them. No input may panic; every refusal must be an oauth2
// problem from the catalogue with a client-error status (the key source
// is static, so nothing can be "unavailable"), and anything accepted must
// carry the claims of the one genuine token in the corpus.
func FuzzOAuth2Authorization(f *testing.F) {
	fx := newOAuthFixture(f)
	a := fx.auth(f, func(o *OAuth2Options) {
		o.Issuers = []OAuth2Issuer{{Issuer: testIssuer, StaticKeys: []crypto.PublicKey{&fx.es.PublicKey}, StaticKeyIDs: []string{"es-1"}, Audiences: []string{testAudience}}}
		o.RequiredClaims = []string{"jti"}
		o.Scopes = []string{"read"}
	})
	good := fx.es256(f, nil)
	parts := strings.Split(good, ".")
	enc := base64.RawURLEncoding.EncodeToString
	for _, s := range []string{
		"Bearer " + good,
		"bearer " + good,
		"Bearer " + parts[0] + "." + parts[1] + ".",
		"Bearer " + enc([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".",
		"Bearer " + enc([]byte(`{"alg":"ES256","kid":["x"],"crit":[]}`)) + "." + parts[1] + "." + parts[2],
		"Bearer " + enc([]byte(`{"alg":"ES256","typ":7}`)) + "." + enc([]byte(`{"exp":"x","aud":{}}`)) + "." + parts[2],
		"Bearer " + enc([]byte(`{"alg":"ES256"}`)) + "." + enc([]byte(`{"cnf":{"x5t#S256":1},"scope":[1]}`)) + "." + parts[2],
		"Bearer " + sign(f, jwt.SigningMethodHS256, []byte("k"), "es-1", fx.claims(nil), nil),
		"Bearer a.b.c", "Bearer ....", "Bearer =", "Basic Zm9vOmJhcg==", "Bearer", "", "Bearer eyJ.eyJ.eyJ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest(http.MethodGet, "https://api.example.com/v1/things", nil)
		r.Header["Authorization"] = []string{header}
		p, err := a.Authenticate(r)
		if err == nil {
			if p == nil || p.Subject != "client-1" || p.ClientID != "client-1" || p.Application != "acme" {
				t.Fatalf("accepted %q with principal %+v", header, p)
			}
			return
		}
		pe, ok := err.(*problem.Error)
		if !ok {
			t.Fatalf("error %T is not a *problem.Error", err)
		}
		if _, known := problem.Catalogue[pe.Code]; !known || !strings.HasPrefix(pe.Code, "oauth2.") {
			t.Fatalf("code %q is not an oauth2 catalogue code", pe.Code)
		}
		if st := pe.HTTPStatus(); st != http.StatusUnauthorized && st != http.StatusForbidden {
			t.Fatalf("status %d for %q", st, header)
		}
		if strings.ContainsAny(pe.Header.Get("WWW-Authenticate"), "\r\n") {
			t.Fatal("challenge contains a line break")
		}
	})
}
