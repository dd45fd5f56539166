package cli_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/testpki"
)

// TestPlansWhicheverCredential is issue 6's matrix: the same plan limit
// applies to an application whether it calls with a client certificate, an
// API key or an OAuth2 token; subscriptions are enforced; IP rules, CORS and
// header rules run in the same pipeline.
func TestPlansWhicheverCredential(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p)
	certApp := p.ca.Issue(t, "cert-app-client", testpki.Client())
	addr := freePorts(t, 1)[0]
	_, port, _ := strings.Cut(addr, ":")
	issuer := "https://localhost:" + port
	fp := sha256.Sum256(certApp.Cert.Raw)
	h := func(s string) string { sum := sha256.Sum256([]byte(s)); return "sha256:" + hex.EncodeToString(sum[:]) }
	cfg := fmt.Sprintf(`
listeners:
  - name: public
    address: "%s"
    tls:
      certificates: [{ cert: %s, key: %s }]
      client_certificates: request
trust_stores:
  internal: { pem: %s }
authorization_server: { issuer: "%s" }
plans:
  - { name: gold, rate_limit: { rate: 3, period: 1m } }
applications:
  - id: cert-app
    certificates: [{ fingerprint: "%s" }]
  - id: key-app
    api_keys: [ "%s" ]
  - id: token-app
    oauth2: { client_id: token-app, auth_methods: [client_secret_basic], secret_hashes: [ "%s" ], scopes: [orders] }
  - id: nosub-app
    api_keys: [ "%s" ]
  - id: paused-app
    api_keys: [ "%s" ]
subscriptions:
  - { application: cert-app, api: orders, plan: gold }
  - { application: key-app, api: orders, plan: gold }
  - { application: token-app, api: orders, plan: gold }
  - { application: paused-app, api: orders, plan: gold, state: suspended }
apis:
  - name: orders
    match: { host: localhost, path_prefix: /orders }
    auth: { any_of: [ mtls, oauth2, api_key ] }
    mtls: { trust: internal }
    oauth2: { issuers: [{ builtin: true }] }
    plans: [gold]
    cors: { allow_origins: [ "https://app.example.test" ], allow_methods: [GET] }
    request_headers: [{ set: X-Application, value: "${application}" }]
    response_headers: [{ set: X-Served-By, value: "portcullis ${api}" }]
    upstream: &up
      targets: [ %s ]
      tls: { client_certificate: { cert: %s, key: %s }, trust: internal, server_name: localhost }
  - name: internal-only
    match: { host: localhost, path_prefix: /internal }
    ip: { deny: [ 127.0.0.0/8, "::1" ] }
    upstream: *up
`, addr, p.gwCert, p.gwKey, p.caFile, issuer, hex.EncodeToString(fp[:]), h(secret("key-app-key")), h(secret("token-secret")), h("nosub-key"), h("paused-key"),
		b.URL, p.clientCert, p.clientKey)
	g := startGateway(t, writeConfig(t, p.dir, cfg))
	c := clientFor(p)
	cc := clientFor(p, certApp.TLS())

	req := func(client *http.Client, method, path string, hdr map[string]string) *http.Response {
		r, _ := http.NewRequest(method, issuer+path, nil)
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		resp, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	tr, _ := http.NewRequest("POST", issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	tr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	tr.SetBasicAuth("token-app", "token-secret")
	resp, err := c.Do(tr)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	decodeJSON(t, resp, &tok)
	secret(tok.AccessToken)

	for _, tc := range []struct {
		name   string
		client *http.Client
		hdr    map[string]string
		app    string
	}{
		{"client certificate", cc, nil, "cert-app"},
		{"API key", c, map[string]string{"X-API-Key": "key-app-key"}, "key-app"},
		{"OAuth2 token", c, map[string]string{"Authorization": "Bearer " + tok.AccessToken}, "token-app"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := 1; i <= 3; i++ {
				resp := req(tc.client, "GET", "/orders/x", tc.hdr)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("request %d: %s", i, resp.Status)
				}
				if rl := resp.Header.Get("RateLimit"); !strings.Contains(rl, `"gold"`) || !strings.Contains(rl, "r="+strconv.Itoa(3-i)) {
					t.Errorf("request %d: RateLimit %q", i, rl)
				}
				if resp.Header.Get("X-Served-By") != "portcullis orders" {
					t.Errorf("response header rule not applied: %q", resp.Header.Get("X-Served-By"))
				}
			}
			b.mu.Lock()
			seenApp := b.hdrs[len(b.hdrs)-1].Get("X-Application")
			b.mu.Unlock()
			if seenApp != tc.app {
				t.Errorf("backend saw X-Application %q, want %q", seenApp, tc.app)
			}
			resp := req(tc.client, "GET", "/orders/x", tc.hdr)
			ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			if d := readProblem(t, resp); resp.StatusCode != 429 || d.Code != problem.CodeRateLimitExceeded || ra < 1 {
				t.Errorf("4th request: %d %q Retry-After %q", resp.StatusCode, d.Code, resp.Header.Get("Retry-After"))
			}
		})
	}

	t.Run("subscriptions", func(t *testing.T) {
		resp := req(c, "GET", "/orders/x", map[string]string{"X-API-Key": "nosub-key"})
		if d := readProblem(t, resp); resp.StatusCode != 403 || d.Code != problem.CodeSubscriptionMissing {
			t.Errorf("no subscription: %d %q", resp.StatusCode, d.Code)
		}
		resp = req(c, "GET", "/orders/x", map[string]string{"X-API-Key": "paused-key"})
		if d := readProblem(t, resp); resp.StatusCode != 403 || d.Code != problem.CodeSubscriptionSuspended {
			t.Errorf("suspended: %d %q", resp.StatusCode, d.Code)
		}
	})
	t.Run("IP deny", func(t *testing.T) {
		resp := req(c, "GET", "/internal/x", nil)
		if d := readProblem(t, resp); resp.StatusCode != 403 || d.Code != problem.CodeIPDenied {
			t.Errorf("got %d %q", resp.StatusCode, d.Code)
		}
	})
	t.Run("CORS preflight", func(t *testing.T) {
		resp := req(c, "OPTIONS", "/orders/x", map[string]string{"Origin": "https://app.example.test", "Access-Control-Request-Method": "GET"})
		resp.Body.Close()
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.test" {
			t.Errorf("allowed preflight: %s ACAO %q", resp.Status, resp.Header.Get("Access-Control-Allow-Origin"))
		}
		resp = req(c, "OPTIONS", "/orders/x", map[string]string{"Origin": "https://evil.example.test", "Access-Control-Request-Method": "GET"})
		if d := readProblem(t, resp); resp.StatusCode != 403 || d.Code != problem.CodeCORSOriginDenied {
			t.Errorf("denied preflight: %d %q", resp.StatusCode, d.Code)
		}
	})
	_ = g
}

func decodeJSON(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
