package auth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// fakeClock is a settable clock shared by the authenticator and the
// token factory, so expiry and cache tests need no sleeping.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// rsaTestKey is generated once: 2048-bit generation is slow under -race.
var rsaTestKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func newECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// publishedKey is one entry of a test JWKS.
type publishedKey struct {
	kid string
	alg jwkset.ALG
	pub crypto.PublicKey
}

// jwksServer is a loopback JWKS endpoint that counts its hits and can be
// switched to failing.
type jwksServer struct {
	srv  *httptest.Server
	hits atomic.Int64
	body atomic.Pointer[[]byte]
	down atomic.Bool
}

func newJWKSServer(t testing.TB, keys ...publishedKey) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.publish(t, keys...)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if s.down.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(*s.body.Load())
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// publish replaces the served set (key rotation).
func (s *jwksServer) publish(t testing.TB, keys ...publishedKey) {
	t.Helper()
	st := jwkset.NewMemoryStorage()
	for _, k := range keys {
		j, err := jwkset.NewJWKFromKey(k.pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: k.kid, ALG: k.alg, USE: jwkset.UseSig}})
		if err != nil {
			t.Fatalf("JWK for %q: %v", k.kid, err)
		}
		if err := st.KeyWrite(context.Background(), j); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := st.JSONPublic(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b := []byte(raw)
	s.body.Store(&b)
}

// oauthFixture is an identity provider: keys, a JWKS endpoint, a clock
// and a token factory.
type oauthFixture struct {
	iss   string
	aud   string
	clock *fakeClock
	es    *ecdsa.PrivateKey
	rs    *rsa.PrivateKey
	jwks  *jwksServer
	logs  *syncBuffer
}

const (
	testIssuer   = "https://idp.example.com/"
	testAudience = "https://api.example.com"
)

func newOAuthFixture(t testing.TB) *oauthFixture {
	t.Helper()
	f := &oauthFixture{iss: testIssuer, aud: testAudience, clock: newFakeClock(), es: newECKey(t), rs: rsaTestKey(), logs: &syncBuffer{}}
	f.jwks = newJWKSServer(t,
		publishedKey{kid: "es-1", alg: jwkset.AlgES256, pub: &f.es.PublicKey},
		publishedKey{kid: "rs-1", alg: jwkset.AlgRS256, pub: &f.rs.PublicKey})
	return f
}

// options are the fixture's default authenticator settings.
func (f *oauthFixture) options() OAuth2Options {
	return OAuth2Options{
		Issuers: []OAuth2Issuer{{Issuer: f.iss, JWKSURL: f.jwks.srv.URL + "/jwks", Audiences: []string{f.aud}}},
		ClientApplications: func(id string) (string, bool) {
			if id == "client-1" {
				return "acme", true
			}
			return "", false
		},
		Now:    f.clock.Now,
		Logger: slog.New(slog.NewTextHandler(f.logs, nil)),
	}
}

func (f *oauthFixture) auth(t testing.TB, mod func(*OAuth2Options)) *OAuth2 {
	t.Helper()
	o := f.options()
	if mod != nil {
		mod(&o)
	}
	a, err := NewOAuth2(o)
	if err != nil {
		t.Fatalf("NewOAuth2: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

// claims are a valid RFC 9068 access token's claims, changed by mod.
func (f *oauthFixture) claims(mod func(jwt.MapClaims)) jwt.MapClaims {
	now := f.clock.Now()
	c := jwt.MapClaims{
		"iss": f.iss, "sub": "client-1", "aud": f.aud, "client_id": "client-1", "scope": "read write",
		"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "jti": "t-1",
	}
	if mod != nil {
		mod(c)
	}
	return c
}

// sign signs claims with typ at+jwt and the given kid; header entries
// override (nil deletes).
func sign(t testing.TB, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	tok.Header["typ"] = "at+jwt"
	if kid != "" {
		tok.Header["kid"] = kid
	}
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("signing: %v", err)
	}
	return s
}

// es256 is a valid ES256 token from the fixture's key es-1.
func (f *oauthFixture) es256(t testing.TB, mod func(jwt.MapClaims)) string {
	return sign(t, jwt.SigningMethodES256, f.es, "es-1", f.claims(mod), nil)
}

// bearerRequest is a request carrying the token.
func bearerRequest(method, target, token string) *http.Request {
	r := httptest.NewRequest(method, "https://api.example.com"+target, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

// syncBuffer is a log sink safe for the background refresh goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// introspectionServer is an RFC 7662 endpoint that checks the gateway's
// client credentials and answers from a table, counting calls per token.
type introspectionServer struct {
	srv    *httptest.Server
	mu     sync.Mutex
	answer map[string]map[string]any
	calls  map[string]int
	down   atomic.Bool
}

const (
	introClientID = "gateway"
	introSecret   = "s3:cr&t +/"
)

func newIntrospectionServer(t testing.TB, answers map[string]map[string]any) *introspectionServer {
	t.Helper()
	s := &introspectionServer{answer: answers, calls: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			http.Error(w, "want a form POST", http.StatusBadRequest)
			return
		}
		id, secret, ok := r.BasicAuth()
		if !ok || !formDecodedEqual(id, introClientID) || !formDecodedEqual(secret, introSecret) {
			w.Header().Set("WWW-Authenticate", `Basic realm="introspection"`)
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		tok := r.PostForm.Get("token")
		s.mu.Lock()
		s.calls[tok]++
		ans, known := s.answer[tok]
		s.mu.Unlock()
		if !known {
			ans = map[string]any{"active": false}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ans)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *introspectionServer) callsFor(tok string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[tok]
}

// formDecodedEqual compares a Basic credential, which RFC 6749 §2.3.1
// form-encodes, with the plain value.
func formDecodedEqual(encoded, plain string) bool {
	d, err := url.QueryUnescape(encoded)
	return err == nil && d == plain
}
