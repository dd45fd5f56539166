package auth_test

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/auth"
	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/testpki"
)

// These tests run the gateway's oauth2 authenticator against a real,
// independent OpenID provider: panva's oidc-provider (an OpenID-certified
// implementation), started from testdata/oidc/server.mjs under Node.js. The
// provider issues JWT access tokens (RFC 9068) and opaque ones through the
// client_credentials grant, binds tokens to client certificates (RFC 8705
// tls_client_auth), and answers introspection (RFC 7662) and revocation
// (RFC 7009). Nothing here is a hand-made token: every accepted and rejected
// credential comes from the provider, altered only where the test says so.

const (
	interopIssuer         = "https://op.portcullis.test"
	interopAudience       = "https://api.portcullis.test/"
	interopJWTResource    = "https://api.portcullis.test/jwt"
	interopOpaqueResource = "https://api.portcullis.test/opaque"
	interopScope          = "api:read"

	interopSecretClient  = "billing-service"
	interopMTLSClient    = "ledger-service"
	interopGatewayClient = "portcullis-gateway"
)

// oidcProvider is a running oidc-provider and what a test needs to use it.
type oidcProvider struct {
	// URL is the provider's base URL on loopback, e.g. https://127.0.0.1:40123.
	URL string
	// CA issued the provider's server certificate and every client
	// certificate; HTTP trusts it.
	CA *testpki.CA
	// HTTP is a client trusting CA that presents no certificate.
	HTTP *http.Client
	// MTLSLeaf is the certificate registered for interopMTLSClient
	// (tls_client_auth_subject_dn), OtherLeaf one from the same CA that
	// belongs to no client.
	MTLSLeaf, OtherLeaf *testpki.Leaf
	// Secrets holds the client secrets by client id.
	Secrets map[string]string
}

// syncBuffer collects a child process's output for the failure log.
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

// readyWriter is the provider's stdout: it keeps every line and reports the
// port from the first {"ready":true,"port":N} line.
type readyWriter struct {
	log     *syncBuffer
	mu      sync.Mutex
	partial []byte
	once    sync.Once
	port    chan int
}

func (w *readyWriter) Write(p []byte) (int, error) {
	_, _ = w.log.Write(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := bytes.TrimSpace(w.partial[:i])
		w.partial = w.partial[i+1:]
		var msg struct {
			Ready bool `json:"ready"`
			Port  int  `json:"port"`
		}
		if json.Unmarshal(line, &msg) == nil && msg.Ready && msg.Port > 0 {
			w.once.Do(func() { w.port <- msg.Port })
		}
	}
	return len(p), nil
}

// startOIDCProvider starts testdata/oidc/server.mjs and stops it when the
// test ends. It skips the test when Node.js or the provider's packages are
// missing, except under CI, where a missing install step must fail.
func startOIDCProvider(t *testing.T) *oidcProvider {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "oidc"))
	if err != nil {
		t.Fatal(err)
	}
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") != "" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable("oidc-provider interop: Node.js (node) is not installed; install nodejs and npm, then run `npm ci --prefix internal/auth/testdata/oidc`")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider", "package.json")); err != nil {
		unavailable("oidc-provider interop: internal/auth/testdata/oidc/node_modules is absent; run `npm ci --prefix internal/auth/testdata/oidc`")
	}

	tmp := t.TempDir()
	ca := testpki.NewCA(t, "OIDC interop CA")
	serverLeaf := ca.Issue(t, "op.portcullis.test", testpki.Server(), testpki.IP("127.0.0.1"), testpki.DNS("op.portcullis.test"))
	certPath, keyPath := serverLeaf.WriteFiles(t, tmp, "op")
	caPath := ca.WriteCA(t, tmp, "ca")
	p := &oidcProvider{
		CA:        ca,
		MTLSLeaf:  ca.Issue(t, interopMTLSClient, testpki.Client()),
		OtherLeaf: ca.Issue(t, "intruder", testpki.Client()),
		Secrets: map[string]string{
			interopSecretClient:  randomSecret(t),
			interopGatewayClient: randomSecret(t),
		},
	}
	p.HTTP = p.client(nil)

	clients := []map[string]any{
		{
			"client_id":                  interopSecretClient,
			"client_secret":              p.Secrets[interopSecretClient],
			"token_endpoint_auth_method": "client_secret_basic",
			"grant_types":                []string{"client_credentials"},
			"scope":                      "api:read api:write",
		},
		{
			"client_id":                                  interopMTLSClient,
			"token_endpoint_auth_method":                 "tls_client_auth",
			"tls_client_auth_subject_dn":                 p.MTLSLeaf.Cert.Subject.String(),
			"tls_client_certificate_bound_access_tokens": true,
			"grant_types":                                []string{"client_credentials"},
			"scope":                                      "api:read api:write",
		},
		{
			// The gateway itself: it only introspects.
			"client_id":                  interopGatewayClient,
			"client_secret":              p.Secrets[interopGatewayClient],
			"token_endpoint_auth_method": "client_secret_basic",
			"grant_types":                []string{},
		},
	}
	clientsJSON, err := json.Marshal(clients)
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(node, "server.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"OIDC_ISSUER="+interopIssuer,
		"OIDC_PORT=0",
		"OIDC_TLS_CERT="+certPath,
		"OIDC_TLS_KEY="+keyPath,
		"OIDC_CLIENT_CA="+caPath,
		"OIDC_CLIENTS="+string(clientsJSON),
		"OIDC_AUDIENCE="+interopAudience,
		"OIDC_JWT_RESOURCE="+interopJWTResource,
		"OIDC_OPAQUE_RESOURCE="+interopOpaqueResource,
		"OIDC_TOKEN_TTL=300",
		"OIDC_MAX_SECONDS=300",
	)
	output := &syncBuffer{}
	ready := &readyWriter{log: output, port: make(chan int, 1)}
	cmd.Stdout = ready
	cmd.Stderr = output
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s server.mjs: %v", node, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		// Closing stdin is the provider's signal to exit.
		_ = stdin.Close()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("oidc-provider output:\n%s", output.String())
		}
	})

	select {
	case port := <-ready.port:
		p.URL = fmt.Sprintf("https://127.0.0.1:%d", port)
	case err := <-exited:
		exited <- err
		t.Fatalf("oidc-provider exited before it was ready (%v):\n%s", err, output.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("oidc-provider not ready after 60s:\n%s", output.String())
	}
	return p
}

func randomSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// client returns an HTTP client trusting the provider's CA that presents
// leaf in the handshake when leaf is not nil.
func (p *oidcProvider) client(leaf *testpki.Leaf) *http.Client {
	cfg := &tls.Config{RootCAs: p.CA.Pool(), MinVersion: tls.VersionTLS12}
	if leaf != nil {
		cfg.Certificates = []tls.Certificate{leaf.TLS()}
	}
	return &http.Client{
		Timeout:   15 * time.Second,
		Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true},
	}
}

// post sends a form to the provider and decodes a JSON answer into out
// (when not nil). It fails the test unless the status is 200.
func (p *oidcProvider) post(t *testing.T, c *http.Client, path string, form url.Values, clientID string, out any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if secret, ok := p.Secrets[clientID]; ok {
		// client_secret_basic (RFC 6749 §2.3.1): both parts form-encoded.
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("POST %s: reading the answer: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s as %s: status %d: %s", path, clientID, resp.StatusCode, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("POST %s: decoding %q: %v", path, body, err)
		}
	}
}

// token obtains an access token with the client_credentials grant for
// resource. clientID's secret is used when it has one (client_secret_basic);
// otherwise the client authenticates with leaf's certificate
// (tls_client_auth) and the token is bound to it.
func (p *oidcProvider) token(t *testing.T, clientID, resource string, leaf *testpki.Leaf) string {
	t.Helper()
	form := url.Values{
		"grant_type": {"client_credentials"},
		"scope":      {interopScope},
		"resource":   {resource},
	}
	if _, ok := p.Secrets[clientID]; !ok {
		form.Set("client_id", clientID)
	}
	var resp struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
		Scope       string `json:"scope"`
	}
	p.post(t, p.client(leaf), "/token", form, clientID, &resp)
	if resp.AccessToken == "" || !strings.EqualFold(resp.TokenType, "Bearer") || resp.ExpiresIn <= 0 {
		t.Fatalf("token response for %s: %+v", clientID, resp)
	}
	return resp.AccessToken
}

// revoke revokes token at the provider (RFC 7009) as its owner.
func (p *oidcProvider) revoke(t *testing.T, clientID, token string) {
	t.Helper()
	p.post(t, p.HTTP, "/token/revocation", url.Values{
		"token":           {token},
		"token_type_hint": {"access_token"},
	}, clientID, nil)
}

// jwtParts decodes a compact JWS's header and claims.
func jwtParts(t *testing.T, token string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", token)
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("JWS part %d: %v", i, err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatalf("JWS part %d: %v", i, err)
		}
	}
	return header, claims
}

// flipSignature returns token with one bit of its signature changed.
func flipSignature(t *testing.T, token string) string {
	t.Helper()
	i := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[i+1:])
	if err != nil || len(sig) == 0 {
		t.Fatalf("decoding the signature: %v", err)
	}
	sig[len(sig)/2] ^= 0x01
	return token[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// alterClaims returns token with claim set to value and the original
// signature kept.
func alterClaims(t *testing.T, token, claim string, value any) string {
	t.Helper()
	parts := strings.Split(token, ".")
	_, claims := jwtParts(t, token)
	claims[claim] = value
	raw, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

// interopGateway builds the gateway's oauth2 authenticator for the provider,
// with change applied to the options before construction.
func interopGateway(t *testing.T, p *oidcProvider, change func(*auth.OAuth2Options)) *auth.OAuth2 {
	t.Helper()
	o := auth.OAuth2Options{
		Issuers: []auth.OAuth2Issuer{{
			Issuer:     interopIssuer,
			JWKSURL:    p.URL + "/jwks",
			Audiences:  []string{interopAudience},
			HTTPClient: p.HTTP,
			Introspection: &auth.Introspection{
				URL:          p.URL + "/token/introspection",
				ClientID:     interopGatewayClient,
				ClientSecret: []byte(p.Secrets[interopGatewayClient]),
				HTTPClient:   p.HTTP,
			},
		}},
		Algorithms: []string{"ES256"},
		ClientApplications: func(clientID string) (string, bool) {
			switch clientID {
			case interopSecretClient:
				return "billing", true
			case interopMTLSClient:
				return "ledger", true
			}
			return "", false
		},
	}
	if change != nil {
		change(&o)
	}
	a, err := auth.NewOAuth2(o)
	if err != nil {
		t.Fatalf("NewOAuth2: %v", err)
	}
	a.Start()
	t.Cleanup(a.Close)
	return a
}

// bearer is a request carrying token, arriving over TLS with peer as the
// client certificate when peer is not nil.
func bearer(token string, peer *x509.Certificate) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "https://api.portcullis.test/v1/invoices", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	r.TLS = &tls.ConnectionState{HandshakeComplete: true, Version: tls.VersionTLS13}
	if peer != nil {
		r.TLS.PeerCertificates = []*x509.Certificate{peer}
		r.TLS.VerifiedChains = [][]*x509.Certificate{{peer}}
	}
	return r
}

// wantPrincipal asserts that a accepts r as clientID's token, mapped to app,
// with the requested scope, bound to a certificate when bound is set.
func wantPrincipal(t *testing.T, a *auth.OAuth2, r *http.Request, clientID, app string, bound bool) *auth.Principal {
	t.Helper()
	p, err := a.Authenticate(r)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if p == nil || p.Application != app || p.ClientID != clientID {
		t.Fatalf("Authenticate = %+v, want application %q for client %q", p, app, clientID)
	}
	if !slices.Contains(p.Scopes, interopScope) {
		t.Errorf("Scopes = %v, want %s", p.Scopes, interopScope)
	}
	if p.CertBound != bound {
		t.Errorf("CertBound = %v, want %v", p.CertBound, bound)
	}
	if !slices.Contains(p.Methods, "oauth2") {
		t.Errorf("Methods = %v, want oauth2", p.Methods)
	}
	if d := time.Until(p.TokenExpiry); d <= 0 || d > 10*time.Minute {
		t.Errorf("TokenExpiry = %v, want within the provider's 300 s lifetime", p.TokenExpiry)
	}
	return p
}

func wantRejected(t *testing.T, a *auth.OAuth2, r *http.Request, code string, status int) {
	t.Helper()
	p, err := a.Authenticate(r)
	if err == nil {
		t.Fatalf("Authenticate accepted the token (principal %+v), want %s", p, code)
	}
	var pe *problem.Error
	if !errors.As(err, &pe) {
		t.Fatalf("Authenticate error %T %v is not a *problem.Error", err, err)
	}
	if pe.Code != code || pe.HTTPStatus() != status {
		t.Fatalf("Authenticate error = %s (status %d), want %s (status %d); %v", pe.Code, pe.HTTPStatus(), code, status, err)
	}
	if p != nil {
		t.Fatalf("Authenticate returned principal %+v with an error", p)
	}
}

func TestOIDCProviderInterop(t *testing.T) {
	p := startOIDCProvider(t)

	// Tokens from the real provider, obtained once.
	secretJWT := p.token(t, interopSecretClient, interopJWTResource, nil)
	boundJWT := p.token(t, interopMTLSClient, interopJWTResource, p.MTLSLeaf)

	t.Run("provider issues RFC 9068 tokens", func(t *testing.T) {
		h, c := jwtParts(t, secretJWT)
		if h["alg"] != "ES256" || h["typ"] != "at+jwt" || h["kid"] == nil {
			t.Errorf("header = %v", h)
		}
		if c["iss"] != interopIssuer || c["aud"] != interopAudience || c["client_id"] != interopSecretClient || c["scope"] != interopScope {
			t.Errorf("claims = %v", c)
		}
		if _, bound := c["cnf"]; bound {
			t.Errorf("a client_secret_basic token is bound: %v", c)
		}
		_, c = jwtParts(t, boundJWT)
		cnf, _ := c["cnf"].(map[string]any)
		if cnf["x5t#S256"] != auth.Thumbprint(p.MTLSLeaf.Cert) {
			t.Errorf("bound token cnf = %v, want x5t#S256 %s", c["cnf"], auth.Thumbprint(p.MTLSLeaf.Cert))
		}
	})

	gw := interopGateway(t, p, nil)

	t.Run("good JWT", func(t *testing.T) {
		wantPrincipal(t, gw, bearer(secretJWT, nil), interopSecretClient, "billing", false)
	})

	t.Run("tampered signature", func(t *testing.T) {
		wantRejected(t, gw, bearer(flipSignature(t, secretJWT), nil), "oauth2.signature_invalid", http.StatusUnauthorized)
	})

	t.Run("tampered claims", func(t *testing.T) {
		forged := alterClaims(t, secretJWT, "client_id", interopMTLSClient)
		wantRejected(t, gw, bearer(forged, nil), "oauth2.signature_invalid", http.StatusUnauthorized)
	})

	t.Run("expired", func(t *testing.T) {
		// The provider's tokens live 300 s; the gateway's clock is two
		// hours ahead, well past any leeway.
		later := interopGateway(t, p, func(o *auth.OAuth2Options) {
			o.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
		})
		wantRejected(t, later, bearer(secretJWT, nil), "oauth2.token_expired", http.StatusUnauthorized)
	})

	t.Run("wrong audience", func(t *testing.T) {
		other := interopGateway(t, p, func(o *auth.OAuth2Options) {
			o.Issuers[0].Audiences = []string{"https://other-api.portcullis.test/"}
		})
		wantRejected(t, other, bearer(secretJWT, nil), "oauth2.audience_mismatch", http.StatusUnauthorized)
	})

	t.Run("wrong issuer", func(t *testing.T) {
		other := interopGateway(t, p, func(o *auth.OAuth2Options) {
			o.Issuers[0].Issuer = "https://other-op.portcullis.test"
		})
		wantRejected(t, other, bearer(secretJWT, nil), "oauth2.issuer_unknown", http.StatusUnauthorized)
	})

	t.Run("bound JWT with its certificate", func(t *testing.T) {
		wantPrincipal(t, gw, bearer(boundJWT, p.MTLSLeaf.Cert), interopMTLSClient, "ledger", true)
	})

	t.Run("bound JWT with another certificate", func(t *testing.T) {
		wantRejected(t, gw, bearer(boundJWT, p.OtherLeaf.Cert), "oauth2.cert_binding_mismatch", http.StatusUnauthorized)
	})

	t.Run("bound JWT without a certificate", func(t *testing.T) {
		wantRejected(t, gw, bearer(boundJWT, nil), "oauth2.cert_binding_mismatch", http.StatusUnauthorized)
	})

	t.Run("unbound JWT where bound tokens are required", func(t *testing.T) {
		strict := interopGateway(t, p, func(o *auth.OAuth2Options) { o.RequireBoundTokens = true })
		wantRejected(t, strict, bearer(secretJWT, p.MTLSLeaf.Cert), "oauth2.cert_binding_required", http.StatusUnauthorized)
		wantPrincipal(t, strict, bearer(boundJWT, p.MTLSLeaf.Cert), interopMTLSClient, "ledger", true)
	})

	t.Run("missing scope", func(t *testing.T) {
		writer := interopGateway(t, p, func(o *auth.OAuth2Options) { o.Scopes = []string{"api:write"} })
		wantRejected(t, writer, bearer(secretJWT, nil), "oauth2.insufficient_scope", http.StatusForbidden)
	})

	t.Run("opaque token introspected then revoked", func(t *testing.T) {
		opaque := p.token(t, interopSecretClient, interopOpaqueResource, nil)
		if strings.Count(opaque, ".") == 2 {
			t.Fatalf("the opaque resource's token is a JWT: %q", opaque)
		}
		// No reuse of active answers: every request asks the provider.
		live := interopGateway(t, p, func(o *auth.OAuth2Options) {
			o.Issuers[0].Introspection.MaxTTL = -1
		})
		wantPrincipal(t, live, bearer(opaque, nil), interopSecretClient, "billing", false)
		wantPrincipal(t, gw, bearer(opaque, nil), interopSecretClient, "billing", false)

		p.revoke(t, interopSecretClient, opaque)
		wantRejected(t, live, bearer(opaque, nil), "oauth2.token_inactive", http.StatusUnauthorized)
		// A fresh authenticator with the default cache has no answer
		// stored either: the provider itself says the token is inactive.
		fresh := interopGateway(t, p, nil)
		wantRejected(t, fresh, bearer(opaque, nil), "oauth2.token_inactive", http.StatusUnauthorized)
	})

	t.Run("unknown opaque token", func(t *testing.T) {
		wantRejected(t, gw, bearer(randomSecret(t), nil), "oauth2.token_inactive", http.StatusUnauthorized)
	})

	t.Run("bound opaque token", func(t *testing.T) {
		opaque := p.token(t, interopMTLSClient, interopOpaqueResource, p.MTLSLeaf)
		wantPrincipal(t, gw, bearer(opaque, p.MTLSLeaf.Cert), interopMTLSClient, "ledger", true)
		wantRejected(t, gw, bearer(opaque, p.OtherLeaf.Cert), "oauth2.cert_binding_mismatch", http.StatusUnauthorized)
	})
}
