package authserver_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/auth"
	"github.com/portcullis/portcullis/internal/authserver"
	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/testpki"
	"github.com/portcullis/portcullis/internal/trust"
)

// These tests are internal/auth's oidc-provider interop suite run against
// the built-in authorization server instead: tokens are obtained over real
// HTTPS from the server's endpoints, and the gateway's oauth2 authenticator
// validates them the two ways a deployment can, as an external resource
// server would (endpoints discovered from the RFC 8414 metadata, keys from
// the JWKS over TLS, revocation through introspection) and as the gateway
// itself does (the in-process Keyfunc and revocation list).

const (
	asAudience      = "https://api.portcullis.test/"
	asScope         = "api:read"
	asSecretClient  = "billing-service"
	asMTLSClient    = "ledger-service"
	asGatewayClient = "portcullis-gateway"
)

// builtin is a built-in server on a loopback TLS listener that requests
// (but does not itself verify) client certificates, as gateway listeners do.
type builtin struct {
	srv *authserver.Server
	ts  *httptest.Server
	// meta is the server's RFC 8414 metadata, read over HTTPS.
	meta struct {
		Issuer        string `json:"issuer"`
		Token         string `json:"token_endpoint"`
		JWKS          string `json:"jwks_uri"`
		Introspection string `json:"introspection_endpoint"`
		Revocation    string `json:"revocation_endpoint"`
		Bound         bool   `json:"tls_client_certificate_bound_access_tokens"`
	}
	secrets             map[string]string
	mtlsLeaf, otherLeaf *testpki.Leaf
}

func startBuiltin(t *testing.T) *builtin {
	t.Helper()
	ca := testpki.NewCA(t, "interop clients CA")
	clientTrust, err := trust.NewSet("clients", []*x509.Certificate{ca.Cert}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(clientTrust.Close)
	b := &builtin{
		secrets:   map[string]string{},
		mtlsLeaf:  ca.Issue(t, asMTLSClient, testpki.Client()),
		otherLeaf: ca.Issue(t, "intruder", testpki.Client()),
	}
	hashes := map[string]string{}
	for _, id := range []string{asSecretClient, asGatewayClient} {
		if b.secrets[id], hashes[id], err = authserver.NewSecret(); err != nil {
			t.Fatal(err)
		}
	}

	// The issuer is the listener's real address, so the metadata names
	// endpoints a client can reach.
	b.ts = httptest.NewUnstartedServer(nil)
	b.srv, err = authserver.New(authserver.Options{
		Issuer:    "https://" + b.ts.Listener.Addr().String(),
		Trust:     []auth.Verifier{clientTrust},
		Audiences: []string{asAudience},
		Clients: []authserver.Client{
			{ID: asSecretClient, Application: "billing", Methods: []authserver.ClientAuthMethod{authserver.MethodSecretBasic},
				SecretHashes: []string{hashes[asSecretClient]}, Scopes: []string{"api:read", "api:write"}},
			{ID: asMTLSClient, Application: "ledger", Methods: []authserver.ClientAuthMethod{authserver.MethodTLSClientAuth},
				TLSSubjectDN: b.mtlsLeaf.Cert.Subject.String(), BindTokens: true, Scopes: []string{"api:read", "api:write"}},
			{ID: asGatewayClient, Methods: []authserver.ClientAuthMethod{authserver.MethodSecretBasic},
				SecretHashes: []string{hashes[asGatewayClient]}},
		},
	})
	if err != nil {
		t.Fatalf("authserver.New: %v", err)
	}
	t.Cleanup(b.srv.Close)
	b.ts.Config.Handler = b.srv.Handler()
	b.ts.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	b.ts.StartTLS()
	t.Cleanup(b.ts.Close)

	resp, err := b.client(t, nil).Get(b.ts.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&b.meta); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("metadata: status %d, %v", resp.StatusCode, err)
	}
	if b.meta.Issuer != b.srv.Issuer() || !b.meta.Bound {
		t.Fatalf("metadata = %+v, want issuer %s with bound tokens", b.meta, b.srv.Issuer())
	}
	for _, u := range []string{b.meta.Token, b.meta.JWKS, b.meta.Introspection, b.meta.Revocation} {
		if !strings.HasPrefix(u, b.ts.URL+"/") {
			t.Fatalf("metadata endpoint %q is not on the server %s", u, b.ts.URL)
		}
	}
	return b
}

// client is an HTTPS client trusting the server that presents leaf when it
// is not nil.
func (b *builtin) client(t *testing.T, leaf *testpki.Leaf) *http.Client {
	tr := b.ts.Client().Transport.(*http.Transport).Clone()
	if leaf != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{leaf.TLS()}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// post sends form to endpoint as clientID: client_secret_basic when the
// client has a secret, otherwise tls_client_auth with leaf. It fails the
// test unless the answer is 200 and returns the body.
func (b *builtin) post(t *testing.T, endpoint, clientID string, leaf *testpki.Leaf, form url.Values) []byte {
	t.Helper()
	if _, ok := b.secrets[clientID]; !ok {
		form.Set("client_id", clientID)
	}
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret, ok := b.secrets[clientID]; ok {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	resp, err := b.client(t, leaf).Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", endpoint, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s as %s: status %d %s (%v)", endpoint, clientID, resp.StatusCode, body, err)
	}
	return body
}

// token obtains an access token for asAudience with client_credentials.
func (b *builtin) token(t *testing.T, clientID string, leaf *testpki.Leaf) string {
	t.Helper()
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	body := b.post(t, b.meta.Token, clientID, leaf, url.Values{
		"grant_type": {"client_credentials"}, "scope": {asScope}, "resource": {asAudience},
	})
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" || tr.TokenType != "Bearer" {
		t.Fatalf("token response %s (%v)", body, err)
	}
	return tr.AccessToken
}

// view is one way a gateway validates the built-in server's tokens.
type view struct {
	name   string
	issuer func(b *builtin, t *testing.T) auth.OAuth2Issuer
}

var views = []view{
	{"external", func(b *builtin, t *testing.T) auth.OAuth2Issuer {
		c := b.client(t, nil)
		return auth.OAuth2Issuer{
			Issuer: b.meta.Issuer, JWKSURL: b.meta.JWKS, HTTPClient: c,
			Introspection: &auth.Introspection{
				URL: b.meta.Introspection, ClientID: asGatewayClient, ClientSecret: []byte(b.secrets[asGatewayClient]),
				IntrospectJWTs: true, MaxTTL: -1,
			},
		}
	}},
	{"in-process", func(b *builtin, _ *testing.T) auth.OAuth2Issuer {
		return auth.OAuth2Issuer{Issuer: b.srv.Issuer(), Keyfunc: b.srv.Keyfunc(), Revoked: b.srv.IsRevoked}
	}},
}

// validator builds the authenticator for v, with change applied to the
// options before construction.
func (b *builtin) validator(t *testing.T, v view, change func(*auth.OAuth2Options)) *auth.OAuth2 {
	t.Helper()
	is := v.issuer(b, t)
	is.Audiences = []string{asAudience}
	o := auth.OAuth2Options{
		Issuers:            []auth.OAuth2Issuer{is},
		Algorithms:         []string{"ES256"},
		ClientApplications: b.srv.Application,
	}
	if change != nil {
		change(&o)
	}
	a, err := auth.NewOAuth2(o)
	if err != nil {
		t.Fatalf("NewOAuth2: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

// bearerRequest carries tok over a TLS connection whose verified client
// certificate is peer (none when nil).
func bearerRequest(tok string, peer *x509.Certificate) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "https://api.portcullis.test/v1/ledger", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	r.TLS = &tls.ConnectionState{HandshakeComplete: true, Version: tls.VersionTLS13}
	if peer != nil {
		r.TLS.PeerCertificates = []*x509.Certificate{peer}
		r.TLS.VerifiedChains = [][]*x509.Certificate{{peer}}
	}
	return r
}

// check authenticates tok with a; wantCode "" means it must be accepted as
// a token of clientID, cert-bound when bound is set.
func check(t *testing.T, a *auth.OAuth2, tok string, peer *x509.Certificate, wantCode, clientID string, bound bool) {
	t.Helper()
	p, err := a.Authenticate(bearerRequest(tok, peer))
	if wantCode != "" {
		var pe *problem.Error
		if !errors.As(err, &pe) {
			t.Fatalf("Authenticate = %+v, %v; want %s", p, err, wantCode)
		}
		if pe.Code != wantCode || p != nil {
			t.Fatalf("Authenticate = %+v, %v; want %s", p, err, wantCode)
		}
		return
	}
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	app := map[string]string{asSecretClient: "billing", asMTLSClient: "ledger"}[clientID]
	if p.ClientID != clientID || p.Application != app || p.CertBound != bound || !slices.Contains(p.Scopes, asScope) {
		t.Fatalf("principal %+v, want client %s (application %s, bound %v, scope %s)", p, clientID, app, bound, asScope)
	}
}

// flipSignature changes one bit of a compact JWS's signature.
func flipSignature(t *testing.T, tok string) string {
	t.Helper()
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil || len(sig) == 0 {
		t.Fatalf("signature of %q: %v", tok, err)
	}
	sig[0] ^= 0x80
	return tok[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// setClaim rewrites one claim of a compact JWS and keeps its signature.
func setClaim(t *testing.T, tok, claim string, value any) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	claims := map[string]any{}
	if err == nil {
		err = json.Unmarshal(raw, &claims)
	}
	if err != nil {
		t.Fatalf("claims of %q: %v", tok, err)
	}
	claims[claim] = value
	if raw, err = json.Marshal(claims); err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

// header decodes a compact JWS's protected header.
func header(t *testing.T, tok string) map[string]any {
	t.Helper()
	h, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(h)
	out := map[string]any{}
	if err == nil {
		err = json.Unmarshal(raw, &out)
	}
	if err != nil {
		t.Fatalf("header of %q: %v", tok, err)
	}
	return out
}

func TestBuiltinServerInterop(t *testing.T) {
	b := startBuiltin(t)
	secretJWT := b.token(t, asSecretClient, nil)
	boundJWT := b.token(t, asMTLSClient, b.mtlsLeaf)
	if h := header(t, boundJWT); h["typ"] != "at+jwt" || h["alg"] != "ES256" {
		t.Fatalf("token header %v", h)
	}

	later := func(o *auth.OAuth2Options) { o.Now = func() time.Time { return time.Now().Add(2 * time.Hour) } }
	otherAudience := func(o *auth.OAuth2Options) { o.Issuers[0].Audiences = []string{"https://other-api.portcullis.test/"} }
	otherIssuer := func(o *auth.OAuth2Options) { o.Issuers[0].Issuer = "https://other-as.portcullis.test" }
	cases := []struct {
		name     string
		token    string
		peer     *testpki.Leaf
		change   func(*auth.OAuth2Options)
		code     string // "" accepts
		clientID string
		bound    bool
	}{
		{"good token", secretJWT, nil, nil, "", asSecretClient, false},
		{"tampered signature", flipSignature(t, secretJWT), nil, nil, "oauth2.signature_invalid", "", false},
		{"tampered claims", setClaim(t, secretJWT, "client_id", asMTLSClient), nil, nil, "oauth2.signature_invalid", "", false},
		{"expired", secretJWT, nil, later, "oauth2.token_expired", "", false},
		{"wrong audience", secretJWT, nil, otherAudience, "oauth2.audience_mismatch", "", false},
		{"wrong issuer", secretJWT, nil, otherIssuer, "oauth2.issuer_unknown", "", false},
		{"bound token with its certificate", boundJWT, b.mtlsLeaf, nil, "", asMTLSClient, true},
		{"bound token with another certificate", boundJWT, b.otherLeaf, nil, "oauth2.cert_binding_mismatch", "", false},
		{"bound token without a certificate", boundJWT, nil, nil, "oauth2.cert_binding_mismatch", "", false},
		{"unbound token presented with a certificate", secretJWT, b.mtlsLeaf, nil, "", asSecretClient, false},
	}
	for _, v := range views {
		t.Run(v.name, func(t *testing.T) {
			plain := b.validator(t, v, nil)
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					a := plain
					if tc.change != nil {
						a = b.validator(t, v, tc.change)
					}
					var peer *x509.Certificate
					if tc.peer != nil {
						peer = tc.peer.Cert
					}
					check(t, a, tc.token, peer, tc.code, tc.clientID, tc.bound)
				})
			}

			t.Run("revoked at the revocation endpoint", func(t *testing.T) {
				a := b.validator(t, v, nil)
				tok := b.token(t, asSecretClient, nil)
				check(t, a, tok, nil, "", asSecretClient, false)
				b.post(t, b.meta.Revocation, asSecretClient, nil, url.Values{"token": {tok}, "token_type_hint": {"access_token"}})
				check(t, a, tok, nil, "oauth2.token_inactive", "", false)
				// Other tokens of the same client stay valid.
				check(t, a, secretJWT, nil, "", asSecretClient, false)
			})

			t.Run("key rotated between issuing and validating", func(t *testing.T) {
				// The validator's clock can be moved past the JWKS refetch
				// rate limit, as if the rotation had happened a while after
				// its last fetch. The key rotates twice, so the signing key
				// was made after the validator's fetch and its kid is
				// unknown to it (one rotation would promote a key it
				// already holds; see TestBuiltinServerNextKeyPublishedAhead).
				var skew atomic.Int64
				a := b.validator(t, v, func(o *auth.OAuth2Options) {
					o.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
				})
				before := b.token(t, asSecretClient, nil)
				check(t, a, before, nil, "", asSecretClient, false)
				fetches := a.Stats().JWKSFetchOK
				for range 2 {
					if err := b.srv.Rotate(); err != nil {
						t.Fatal(err)
					}
				}
				after := b.token(t, asMTLSClient, b.mtlsLeaf)
				if header(t, after)["kid"] == header(t, before)["kid"] {
					t.Fatalf("Rotate did not change the kid: %v", header(t, after))
				}
				skew.Store(int64(auth.DefaultJWKSMinInterval + time.Second))
				check(t, a, after, b.mtlsLeaf.Cert, "", asMTLSClient, true)
				check(t, a, before, nil, "", asSecretClient, false)
				if v.name == "external" {
					if got := a.Stats().JWKSFetchOK - fetches; got != 1 {
						t.Errorf("JWKS fetched %d times after the rotation, want 1 (on the unknown kid)", got)
					}
				}
			})
		})
	}
}

// TestBuiltinServerNextKeyPublishedAhead checks that the key a rotation
// promotes was in the JWKS before: an external validator that fetched the
// JWKS before the rotation accepts a token signed right after it without
// fetching the JWKS again, even where its refetch rate limit would allow one.
func TestBuiltinServerNextKeyPublishedAhead(t *testing.T) {
	b := startBuiltin(t)
	var skew atomic.Int64
	a := b.validator(t, views[0], func(o *auth.OAuth2Options) {
		o.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	before := b.token(t, asSecretClient, nil)
	check(t, a, before, nil, "", asSecretClient, false)
	fetches := a.Stats().JWKSFetchOK
	if fetches == 0 {
		t.Fatal("the validator did not fetch the JWKS before the rotation")
	}
	prevKid := header(t, before)["kid"]

	for i := range 3 {
		if err := b.srv.Rotate(); err != nil {
			t.Fatal(err)
		}
		after := b.token(t, asMTLSClient, b.mtlsLeaf)
		if header(t, after)["kid"] == prevKid {
			t.Fatalf("Rotate did not change the kid: %v", header(t, after))
		}
		prevKid = header(t, after)["kid"]
		// Past the rate limit, so an unknown kid would be refetched.
		skew.Add(int64(auth.DefaultJWKSMinInterval + time.Second))
		check(t, a, after, b.mtlsLeaf.Cert, "", asMTLSClient, true)
		check(t, a, before, nil, "", asSecretClient, false)
		if got := a.Stats().JWKSFetchOK - fetches; got != 0 {
			t.Fatalf("rotation %d: JWKS fetched %d times to validate a token signed right after it, want 0 (the key was published ahead)", i+1, got)
		}
		// The validator refreshes (here: to learn the key made at this
		// rotation) before the next one, as a periodic refresh would.
		if i < 2 {
			refetchJWKS(t, a, b)
			fetches = a.Stats().JWKSFetchOK
		}
	}
}

// refetchJWKS makes a fetch the JWKS once more, the way it does on an
// unknown kid: a token whose kid no key has, after the refetch rate limit.
func refetchJWKS(t *testing.T, a *auth.OAuth2, b *builtin) {
	t.Helper()
	n := a.Stats().JWKSFetchOK
	tok := b.token(t, asSecretClient, nil)
	h, rest, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(h)
	hdr := map[string]any{}
	if err == nil {
		err = json.Unmarshal(raw, &hdr)
	}
	if err != nil {
		t.Fatal(err)
	}
	hdr["kid"] = "unknown-kid"
	if raw, err = json.Marshal(hdr); err != nil {
		t.Fatal(err)
	}
	_, _ = a.Authenticate(bearerRequest(base64.RawURLEncoding.EncodeToString(raw)+"."+rest, nil))
	if a.Stats().JWKSFetchOK != n+1 {
		t.Fatalf("the validator did not refetch the JWKS on an unknown kid")
	}
}
