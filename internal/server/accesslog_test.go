package server

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/auth"
	"github.com/portcullis/portcullis/internal/testpki"
)

// secrets are the credentials the access-log tests send; none may ever
// appear in a log.
var secrets = []string{"tok-SECRET-1", "sid=SECRET-2", "key-SECRET-3", "SECRET-4", "SECRET-5", "SECRET-6"}

// accessLogGateway serves two APIs on loopback: orders (mtls, prefix
// /orders) and keys (api_key read from X-Partner-Key, prefix /keys), with
// logYAML as the configuration's log section.
type accessLogGateway struct {
	*liveGateway
	client *http.Client
	fp     string // SHA-256 of the partner's client certificate
	url    string
}

func newAccessLogGateway(t *testing.T, logYAML string) *accessLogGateway {
	t.Helper()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "internalCA")
	partners := testpki.NewCA(t, "partnersCA")
	be := ca.Issue(t, "backend", testpki.Server(), testpki.DNS("localhost"))
	lis := ca.Issue(t, "listener", testpki.Server(), testpki.DNS("localhost"), testpki.IP("127.0.0.1"))
	app := partners.Issue(t, "partner-app", testpki.Client())
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	backend.TLS = &tls.Config{Certificates: []tls.Certificate{be.TLS()}}
	backend.Config.ErrorLog = log.New(io.Discard, "", 0)
	backend.StartTLS()
	t.Cleanup(backend.Close)
	sum := sha256.Sum256(app.Cert.Raw)
	fp := hex.EncodeToString(sum[:])
	lc, lk := lis.WriteFiles(t, dir, "lis")
	g := startGateway(t, fmt.Sprintf(`
log:
%s
listeners:
  - name: public
    address: "127.0.0.1:0"
    tls: { client_certificates: request, certificates: [{ cert: %s, key: %s }] }
trust_stores:
  internal: { pem: %s }
  partners: { pem: %s }
applications:
  - id: partner-app
    certificates: [{ fingerprint: %s }]
    api_keys: [ "%s" ]
apis:
  - name: orders
    match: { path_prefix: /orders }
    auth: mtls
    mtls: { trust: partners }
    upstream: { targets: [ %s ], tls: { trust: internal, server_name: localhost } }
  - name: keys
    match: { path_prefix: /keys/ }
    auth: api_key
    api_key: { header: X-Partner-Key }
    upstream: { targets: [ %[8]s ], tls: { trust: internal, server_name: localhost } }
`, logYAML, lc, lk, ca.WriteCA(t, dir, "internal"), partners.WriteCA(t, dir, "partners"), fp, auth.HashAPIKey("key-SECRET-3"), backend.URL))
	tp := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{app.TLS()}}}
	t.Cleanup(tp.CloseIdleConnections)
	return &accessLogGateway{liveGateway: g, client: &http.Client{Transport: tp}, fp: fp, url: "https://" + g.addr("public")}
}

// do sends a request with every credential header set, and returns its
// access-log record.
func (g *accessLogGateway) do(t *testing.T, path string, wantStatus int) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", g.url+path, nil)
	req.Header.Set("User-Agent", "ua-test/1.0")
	req.Header.Set("Authorization", "Bearer tok-SECRET-1")
	req.Header.Set("Cookie", "sid=SECRET-2")
	req.Header.Set("X-Partner-Key", "key-SECRET-3")
	req.Header.Set("X-Api-Key", "SECRET-4")
	req.Header.Set("Proxy-Authorization", "Basic SECRET-5")
	req.Header.Set("X-Session", "SECRET-6")
	req.Header.Add("Accept", "text/plain")
	req.Header.Add("Accept", "application/json")
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != wantStatus {
		t.Fatalf("GET %s: status %d, want %d", path, resp.StatusCode, wantStatus)
	}
	id := resp.Header.Get("X-Request-Id")
	return g.access.wait(t, "for request "+id, func(r map[string]any) bool { return r["request_id"] == id })
}

func (g *accessLogGateway) noSecrets(t *testing.T) {
	t.Helper()
	logs := g.access.String() + g.log.String()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("credential %q reached the log:\n%s", s, logs)
		}
	}
}

// TestAccessLogDefaults: without the options a line has the full path,
// host, client address and certificate subject, and no headers.
func TestAccessLogDefaults(t *testing.T) {
	g := newAccessLogGateway(t, "  access_log: true")
	r := g.do(t, "/orders/42/items?token=SECRET-6", 200)
	if r["path"] != "/orders/42/items" || !strings.HasPrefix(r["host"].(string), "127.0.0.1:") ||
		!strings.HasPrefix(r["client"].(string), "127.0.0.1:") || !strings.Contains(r["client_cert_subject"].(string), "CN=partner-app") {
		t.Errorf("record %v", r)
	}
	if _, ok := r["headers"]; ok {
		t.Errorf("headers logged without access_log_headers: %v", r["headers"])
	}
	g.noSecrets(t)
}

// TestAccessLogHeadersAndRedaction asserts each option on the JSON a real
// listener logs: listed headers, credentials always "[REDACTED]" even when
// listed, and every field of log.redact.
func TestAccessLogHeadersAndRedaction(t *testing.T) {
	g := newAccessLogGateway(t, `  access_log_headers: [ user-agent, Authorization, Cookie, X-Partner-Key, X-API-Key, Proxy-Authorization, X-Session, Accept, X-Absent, USER-AGENT ]
  redact_headers: [ x-session ]
  redact: [ client_address, client_cert_subject, path, host ]`)

	t.Run("headers", func(t *testing.T) {
		r := g.do(t, "/keys/7?k=SECRET-6", 200)
		h, _ := r["headers"].(map[string]any)
		want := map[string]any{
			"user-agent":          "ua-test/1.0",
			"accept":              "text/plain, application/json",
			"authorization":       "[REDACTED]",
			"cookie":              "[REDACTED]",
			"proxy-authorization": "[REDACTED]",
			"x-api-key":           "[REDACTED]",
			"x-partner-key":       "[REDACTED]", // the keys API's api_key header
			"x-session":           "[REDACTED]", // redact_headers
		}
		if len(h) != len(want) {
			t.Errorf("headers %v, want %v", h, want)
		}
		for k, v := range want {
			if h[k] != v {
				t.Errorf("headers[%s] = %v, want %v", k, h[k], v)
			}
		}
		if r["application"] != "partner-app" {
			t.Errorf("the api key did not authenticate: %v", r)
		}
	})
	t.Run("client_address", func(t *testing.T) {
		if r := g.do(t, "/keys/1", 200); r["client"] != "127.0.0.0/24" {
			t.Errorf("client %v, want 127.0.0.0/24", r["client"])
		}
	})
	t.Run("client_cert_subject", func(t *testing.T) {
		r := g.do(t, "/orders/1", 200)
		if r["client_cert_subject"] != "[REDACTED]" || r["client_cert_sha256"] != g.fp {
			t.Errorf("subject %v fingerprint %v; want [REDACTED] and %s", r["client_cert_subject"], r["client_cert_sha256"], g.fp)
		}
		if strings.Contains(g.access.String(), "partner-app,") || strings.Contains(g.access.String(), "CN=partner-app") {
			t.Error("the certificate subject reached the access log")
		}
	})
	t.Run("path", func(t *testing.T) {
		for path, want := range map[string]string{
			"/orders/42/customer/alice": "/orders/…",
			"/keys/7/x":                 "/keys/…",
		} {
			if r := g.do(t, path, 200); r["path"] != want {
				t.Errorf("%s logged as %v, want %s", path, r["path"], want)
			}
		}
		if r := g.do(t, "/nowhere/alice", 404); r["path"] != "/…" {
			t.Errorf("an unrouted path logged as %v, want /…", r["path"])
		}
		if strings.Contains(g.access.String(), "alice") {
			t.Error("a redacted path reached the access log")
		}
	})
	t.Run("host", func(t *testing.T) {
		if r := g.do(t, "/keys/1", 200); r["host"] != "[REDACTED]" {
			t.Errorf("host %v", r["host"])
		}
	})
	g.noSecrets(t)
}

func TestClientNetwork(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.77:443":               "203.0.113.0/24",
		"[2001:db8:abcd:12::1]:8443":     "2001:db8:abcd::/48",
		"[::ffff:198.51.100.9]:1":        "198.51.100.0/24",
		"[fe80::1%eth0]:1":               "fe80::/48",
		"not an address":                 "[REDACTED]",
		"[2001:db8:abcd:ffff::ffff]:123": "2001:db8:abcd::/48",
	} {
		if got := clientNetwork(in); got != want {
			t.Errorf("clientNetwork(%q) = %q, want %q", in, got, want)
		}
	}
}
