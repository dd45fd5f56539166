package cli_test

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/testpki"
)

// TestBuiltinAuthorizationServer is Story B.1 and B.4 on one listener:
// clients get tokens from the gateway's own token endpoint (secret or
// certificate), APIs check them, scopes are enforced per route, revocation
// applies at once, and certificate-bound tokens work only with their
// certificate.
func TestBuiltinAuthorizationServer(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p)
	boundCert := p.ca.Issue(t, "bound-client", testpki.Client())
	otherCert := p.ca.Issue(t, "orders-client", testpki.Client())
	addr := freePorts(t, 1)[0]
	_, port, _ := strings.Cut(addr, ":")
	issuer := "https://localhost:" + port
	clientSecret := secret("s3cr3t-0123456789-abcdefghijklmnop")
	sum := sha256.Sum256([]byte(clientSecret))
	cfg := fmt.Sprintf(`
listeners:
  - name: public
    address: "%s"
    tls:
      certificates: [{ cert: %s, key: %s }]
      client_certificates: request
trust_stores:
  internal: { pem: %s }
authorization_server:
  issuer: %s
  trust: [internal]
applications:
  - id: orders-app
    oauth2:
      client_id: orders
      auth_methods: [client_secret_basic]
      secret_hashes: [ "sha256:%x" ]
      scopes: [orders:read, orders:write]
  - id: reader-app
    oauth2:
      client_id: reader
      auth_methods: [client_secret_post]
      secret_hashes: [ "sha256:%[6]x" ]
      scopes: [orders:read]
  - id: bound-app
    oauth2:
      client_id: bound
      auth_methods: [tls_client_auth]
      tls_client_auth: { subject_dn: "%s" }
      scopes: [orders:read]
      bind_tokens: true
  - id: acme-app
    tenant: acme
    oauth2:
      client_id: acme-client
      auth_methods: [client_secret_post]
      secret_hashes: [ "sha256:%[6]x" ]
      scopes: [orders:read]
tenants:
  - { name: acme, path_prefix: /t/acme }
apis:
  - name: orders
    match: { host: localhost, path_prefix: /orders }
    auth: oauth2
    oauth2:
      issuers: [{ builtin: true }]
      scopes: [orders:read]
      route_scopes: [{ methods: [POST], path_prefix: /orders, scopes: [orders:write] }]
    upstream: &up
      targets: [ %[8]s ]
      tls: { client_certificate: { cert: %[9]s, key: %[10]s }, trust: internal, server_name: localhost }
  - name: bound-only
    match: { host: localhost, path_prefix: /bound }
    auth: oauth2
    oauth2:
      issuers: [{ builtin: true }]
      require_bound_tokens: true
    upstream: *up
  - name: orders
    tenant: acme
    match: { host: localhost, path_prefix: /orders }
    auth: oauth2
    oauth2:
      issuers: [{ builtin: true }]
      scopes: [orders:read]
    upstream: *up
`, addr, p.gwCert, p.gwKey, p.caFile, issuer, sum, boundCert.Cert.Subject.String(), b.URL, p.clientCert, p.clientKey)
	g := startGateway(t, writeConfig(t, p.dir, cfg))

	client := func(certs ...tls.Certificate) *http.Client { return clientFor(p, certs...) }
	token := func(c *http.Client, form url.Values, basic bool) (string, int) {
		req, _ := http.NewRequest("POST", issuer+"/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic {
			req.SetBasicAuth("orders", clientSecret)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			AccessToken string `json:"access_token"`
			Error       string `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		return secret(body.AccessToken), resp.StatusCode
	}
	call := func(c *http.Client, method, path, tok string) *http.Response {
		req, _ := http.NewRequest(method, issuer+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	expect := func(resp *http.Response, status int, code string) {
		t.Helper()
		if status == 200 {
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %s, want 200", resp.Status)
			}
			return
		}
		d := readProblem(t, resp)
		if resp.StatusCode != status || d.Code != code {
			t.Fatalf("got %d %q, want %d %q", resp.StatusCode, d.Code, status, code)
		}
	}
	c := client()
	tok, st := token(c, url.Values{"grant_type": {"client_credentials"}, "scope": {"orders:read orders:write"}}, true)
	if st != 200 || tok == "" {
		t.Fatalf("token endpoint: %d", st)
	}
	expect(call(c, "GET", "/orders/1", tok), 200, "")
	expect(call(c, "POST", "/orders/1", tok), 200, "")
	waitFor(t, func() bool { return strings.Contains(g.stdout.String(), `"application":"orders-app"`) }, g.stdout)

	t.Run("missing and tampered tokens", func(t *testing.T) {
		expect(call(c, "GET", "/orders/1", ""), 401, problem.CodeOAuth2TokenMissing)
		bad := tok[:len(tok)-4] + "AAAA"
		expect(call(c, "GET", "/orders/1", bad), 401, problem.CodeOAuth2SignatureInvalid)
	})
	t.Run("route scope", func(t *testing.T) {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"reader"}, "client_secret": {clientSecret}}
		rtok, st := token(c, form, false)
		if st != 200 {
			t.Fatalf("reader token: %d", st)
		}
		expect(call(c, "GET", "/orders/1", rtok), 200, "")
		resp := call(c, "POST", "/orders/1", rtok)
		if h := resp.Header.Get("WWW-Authenticate"); !strings.Contains(h, `error="insufficient_scope"`) || !strings.Contains(h, "orders:write") {
			t.Errorf("WWW-Authenticate %q", h)
		}
		expect(resp, 403, problem.CodeOAuth2InsufficientScope)
	})
	t.Run("wrong client secret", func(t *testing.T) {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"reader"}, "client_secret": {"nope"}}
		if _, st := token(c, form, false); st != 401 {
			t.Errorf("status %d, want 401 invalid_client", st)
		}
	})
	t.Run("revoked token", func(t *testing.T) {
		req, _ := http.NewRequest("POST", issuer+"/oauth2/revoke", strings.NewReader(url.Values{"token": {tok}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("orders", clientSecret)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		expect(call(c, "GET", "/orders/1", tok), 401, problem.CodeOAuth2TokenInactive)
	})
	t.Run("certificate-bound token", func(t *testing.T) {
		bc := client(boundCert.TLS())
		btok, st := token(bc, url.Values{"grant_type": {"client_credentials"}, "client_id": {"bound"}}, false)
		if st != 200 {
			t.Fatalf("tls_client_auth token: %d", st)
		}
		expect(call(bc, "GET", "/bound/x", btok), 200, "")
		expect(call(client(otherCert.TLS()), "GET", "/bound/x", btok), 401, problem.CodeOAuth2CertBindingMismatch)
		expect(call(c, "GET", "/bound/x", btok), 401, problem.CodeOAuth2CertBindingMismatch)
		// A secret-authenticated (unbound) token is refused where binding is required.
		utok, _ := token(c, url.Values{"grant_type": {"client_credentials"}, "scope": {"orders:read"}}, true)
		expect(call(c, "GET", "/bound/x", utok), 401, problem.CodeOAuth2CertBindingRequired)
	})
	t.Run("tokens stay in their tenant", func(t *testing.T) {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"acme-client"}, "client_secret": {clientSecret}, "scope": {"orders:read"}}
		atok, st := token(c, form, false)
		if st != 200 {
			t.Fatalf("acme token: %d", st)
		}
		dtok, _ := token(c, url.Values{"grant_type": {"client_credentials"}, "scope": {"orders:read"}}, true)
		expect(call(c, "GET", "/t/acme/orders/1", atok), 200, "")
		waitFor(t, func() bool { return strings.Contains(g.stdout.String(), `"application":"acme-app"`) }, g.stdout)
		resp := call(c, "GET", "/orders/1", atok)
		if h := resp.Header.Get("WWW-Authenticate"); !strings.Contains(h, `error="invalid_token"`) {
			t.Errorf("WWW-Authenticate %q", h)
		}
		expect(resp, 401, problem.CodeOAuth2TenantMismatch)
		expect(call(c, "GET", "/t/acme/orders/1", dtok), 401, problem.CodeOAuth2TenantMismatch)
	})
	t.Run("metadata", func(t *testing.T) {
		resp := call(c, "GET", "/.well-known/oauth-authorization-server", "")
		defer resp.Body.Close()
		var md map[string]any
		json.NewDecoder(resp.Body).Decode(&md)
		if md["issuer"] != issuer || md["token_endpoint"] != issuer+"/oauth2/token" || md["tls_client_certificate_bound_access_tokens"] != true {
			t.Errorf("metadata %v", md)
		}
	})
}
