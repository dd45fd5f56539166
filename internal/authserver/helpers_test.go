package authserver

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis/portcullis/internal/testpki"
	"github.com/portcullis/portcullis/internal/trust"
)

const testIssuer = "https://gw.example.com"

// fakeClock is a settable clock. It starts at the real time so that
// certificates made by testpki are valid.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Now().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// env is a Server behind a real loopback TLS listener that requests (but
// does not verify) client certificates, as the gateway's listeners do.
type env struct {
	t     *testing.T
	srv   *Server
	ts    *httptest.Server
	clock *fakeClock
	logs  *syncBuffer
}

// newEnv builds a server from o, filling in the issuer, clock and logger
// when unset, and serves it over TLS.
func newEnv(t *testing.T, o Options) *env {
	t.Helper()
	e := &env{t: t, logs: &syncBuffer{}}
	if o.Issuer == "" {
		o.Issuer = testIssuer
	}
	if o.Now == nil {
		e.clock = newClock()
		o.Now = e.clock.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(s.Close)
	e.srv = s
	e.ts = httptest.NewUnstartedServer(s.Handler())
	e.ts.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	e.ts.StartTLS()
	t.Cleanup(e.ts.Close)
	return e
}

// client returns an HTTPS client trusting the test server that presents
// cert (none when nil).
func (e *env) client(cert *tls.Certificate) *http.Client {
	base := e.ts.Client().Transport.(*http.Transport)
	tr := base.Clone()
	tr.TLSClientConfig = base.TLSClientConfig.Clone()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// reply is a decoded response.
type reply struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

func (r reply) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

// post sends form to path; mod may add headers (e.g. Basic credentials).
func (e *env) post(c *http.Client, path string, form url.Values, mod func(*http.Request)) reply {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.ts.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if mod != nil {
		mod(req)
	}
	return e.do(c, req)
}

func (e *env) do(c *http.Client, req *http.Request) reply {
	e.t.Helper()
	if c == nil {
		c = e.client(nil)
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(bytes.TrimSpace(raw)) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			e.t.Fatalf("decoding %s: %v", raw, err)
		}
	}
	return r
}

// basic sets client_secret_basic credentials, form-urlencoded as RFC 6749
// §2.3.1 asks.
func basic(id, secret string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret)) }
}

// token obtains an access token or fails the test.
func (e *env) token(c *http.Client, form url.Values, mod func(*http.Request)) (string, reply) {
	e.t.Helper()
	if form.Get("grant_type") == "" {
		form.Set("grant_type", "client_credentials")
	}
	r := e.post(c, "/oauth2/token", form, mod)
	if r.status != http.StatusOK {
		e.t.Fatalf("token request: %d %s", r.status, r.raw)
	}
	tok := r.str("access_token")
	if tok == "" {
		e.t.Fatalf("no access_token in %s", r.raw)
	}
	return tok, r
}

// parseToken validates tok as a gateway validator would, with the
// server's Keyfunc.
func (e *env) parseToken(tok string, aud string) (*jwt.Token, jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{"ES256", "RS256", "EdDSA"}),
		jwt.WithIssuer(e.srv.Issuer()),
		jwt.WithAudience(aud),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(e.srv.now),
	)
	t, err := p.ParseWithClaims(tok, claims, e.srv.Keyfunc())
	return t, claims, err
}

// jwks fetches the published JWKS.
func (e *env) jwks() jwkset.JWKSMarshal {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/oauth2/jwks", nil)
	r := e.do(nil, req)
	if r.status != http.StatusOK {
		e.t.Fatalf("jwks: %d %s", r.status, r.raw)
	}
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal([]byte(r.raw), &set); err != nil {
		e.t.Fatal(err)
	}
	return set
}

// jwksKeyfunc validates with the published JWKS only, as an external
// validator would.
func jwksKeyfunc(t *testing.T, set jwkset.JWKSMarshal) jwt.Keyfunc {
	t.Helper()
	store, err := set.ToStorage()
	if err != nil {
		t.Fatalf("JWKS to storage: %v", err)
	}
	return func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		k, err := store.KeyRead(context.Background(), kid)
		if err != nil {
			return nil, err
		}
		return k.Key(), nil
	}
}

func kids(set jwkset.JWKSMarshal) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KID)
	}
	return out
}

// signAssertion makes a private_key_jwt assertion.
func signAssertion(t *testing.T, key crypto.Signer, method jwt.SigningMethod, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("signing assertion: %v", err)
	}
	return s
}

func assertionForm(a string) url.Values {
	return url.Values{"client_assertion_type": {assertionType}, "client_assertion": {a}}
}

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// selfSigned makes a self-signed client certificate (not a CA), valid
// from an hour ago for a day.
func selfSigned(t *testing.T, cn string) *testpki.Leaf {
	return selfSignedValid(t, cn, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
}

func selfSignedValid(t *testing.T, cn string, notBefore, notAfter time.Time) *testpki.Leaf {
	t.Helper()
	key := newECKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testpki.Leaf{Cert: cert, Key: key}
}

func newTrustSet(t *testing.T, ca *testpki.CA) *trust.Set {
	t.Helper()
	s, err := trust.NewSet("clients", []*x509.Certificate{ca.Cert}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func tlsCert(l *testpki.Leaf) *tls.Certificate {
	c := l.TLS()
	return &c
}

func jwksetMarshal(kty, n, e string) jwkset.JWKMarshal {
	return jwkset.JWKMarshal{KTY: jwkset.KTY(kty), N: n, E: e}
}

// introspect asks the introspection endpoint about tok, authenticating
// with creds.
func introspect(e *env, tok string, creds func(*http.Request)) reply {
	e.t.Helper()
	return e.post(nil, "/oauth2/introspect", url.Values{"token": {tok}}, creds)
}
