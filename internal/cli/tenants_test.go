package cli_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestTenantsIsolatedInTheDataPlane: tenants resolved by host (declared in
// the file) and by path prefix (created through the admin API) each serve
// their own APIs to their own applications only, with the same names in
// every tenant and separate limits; a trust set uploaded through the admin
// API decides which client certificates a tenant's API accepts.
func TestTenantsIsolatedInTheDataPlane(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p)
	adminAddr := freePorts(t, 1)[0]
	adminToken := secret("admin-token-tenants-0123456789")
	globexToken := secret("globex-admin-token-0123456789")
	keys := map[string]string{"default": secret("default-key-0123456789"), "acme": secret("acme-key-0123456789"), "globex": secret("globex-key-0123456789")}
	hash := func(s string) string { sum := sha256.Sum256([]byte(s)); return "sha256:" + hex.EncodeToString(sum[:]) }
	upstream := fmt.Sprintf(`{ targets: [ %s ], tls: { client_certificate: { cert: %s, key: %s }, trust: internal, server_name: localhost } }`, b.URL, p.clientCert, p.clientKey)
	cfg := fmt.Sprintf(`
store: "sqlite:%s"
admin:
  address: "%s"
  certificates: [{ cert: %s, key: %s }]
  tokens:
    - { name: ops, hash: "%s", role: admin }
    - { name: globex-ops, hash: "%s", role: tenant-admin, tenant: globex }
listeners:
  - name: public
    address: "127.0.0.1:0"
    tls: { certificates: [{ cert: %[3]s, key: %[4]s }], client_certificates: request }
trust_stores:
  internal: { pem: %[7]s }
tenants:
  - { name: acme, hosts: [ acme.example.test ] }
plans:
  - { name: gold, rate_limit: { rate: 100, period: 1s } }
  - { tenant: acme, name: gold, rate_limit: { rate: 2, period: 1m } }
applications:
  - { id: app, api_keys: [ "%[8]s" ] }
  - { tenant: acme, id: app, api_keys: [ "%[9]s" ] }
subscriptions:
  - { application: app, api: orders, plan: gold }
  - { tenant: acme, application: app, api: orders, plan: gold }
apis:
  - { name: orders, match: { path_prefix: /orders }, auth: api_key, plans: [gold], upstream: %[10]s }
  - { tenant: acme, name: orders, match: { path_prefix: /orders }, auth: api_key, plans: [gold], upstream: %[10]s }
`, filepath.Join(p.dir, "registry.db"), adminAddr, p.gwCert, p.gwKey, hash(adminToken), hash(globexToken), p.caFile, hash(keys["default"]), hash(keys["acme"]), upstream)
	g := startGateway(t, writeConfig(t, p.dir, cfg))
	c := clientFor(p)
	waitAdmin(t, g, adminAddr)

	adminPut := func(token, path string, body any) (int, string) {
		data, _ := json.Marshal(body)
		req, _ := http.NewRequest("PUT", "https://"+adminAddr+"/admin/v1/"+path, strings.NewReader(string(data)))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("If-None-Match", "*")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%v\n%s", err, g.stderr)
		}
		if resp.StatusCode >= 300 {
			d := readProblem(t, resp)
			return resp.StatusCode, d.Code + ": " + d.Detail
		}
		resp.Body.Close()
		return resp.StatusCode, ""
	}
	apiSpec := func(prefix string, extra map[string]any) map[string]any {
		spec := map[string]any{
			"match": map[string]any{"path_prefix": prefix},
			"upstream": map[string]any{"targets": []string{b.URL}, "tls": map[string]any{
				"client_certificate": map[string]any{"cert": p.clientCert, "key": p.clientKey}, "trust": "internal", "server_name": "localhost"}},
		}
		for k, v := range extra {
			spec[k] = v
		}
		return map[string]any{"spec": spec}
	}
	for _, put := range []struct {
		path string
		body any
	}{
		{"tenants/globex", map[string]any{"path_prefix": "/t/globex"}},
		{"certificates/globex/partners-ca", map[string]any{"pem": string(p.ca.CertPEM())}},
		{"trust_sets/globex/partners", map[string]any{"certificates": []string{"partners-ca"}}},
		{"certificates/globex/other-ca", map[string]any{"pem": string(p.other.CertPEM())}},
		{"trust_sets/globex/others", map[string]any{"certificates": []string{"other-ca"}}},
		{"plans/globex/gold", map[string]any{"rate_limit": map[string]any{"rate": 100, "period": "1s"}}},
		{"applications/globex/app", map[string]any{"api_key_hashes": []string{hash(keys["globex"])}}},
		{"apis/globex/orders", apiSpec("/orders", map[string]any{"auth": "api_key", "plans": []string{"gold"}})},
		{"subscriptions/globex/app.orders", map[string]any{"application": "app", "api": "orders", "plan": "gold", "state": "active"}},
		{"apis/globex/secure", apiSpec("/secure", map[string]any{"auth": "mtls", "mtls": map[string]any{"trust": []string{"partners"}, "allow_anonymous": true}})},
		{"apis/globex/secure-other", apiSpec("/secure-other", map[string]any{"auth": "mtls", "mtls": map[string]any{"trust": []string{"others"}, "allow_anonymous": true}})},
	} {
		if st, msg := adminPut(adminToken, put.path, put.body); st != 201 {
			t.Fatalf("PUT %s: %d %s", put.path, st, msg)
		}
	}
	// A tenant-admin may not make the gateway present the operator's
	// certificate files; another tenant's host cannot be claimed.
	if st, msg := adminPut(globexToken, "apis/globex/sneaky", apiSpec("/sneaky", nil)); st != 422 || !strings.Contains(msg, "only an admin") {
		t.Errorf("tenant-admin naming gateway files: %d %s", st, msg)
	}
	if st, msg := adminPut(adminToken, "tenants/initech", map[string]any{"hosts": []string{"acme.example.test"}}); st < 400 {
		t.Errorf("claiming acme's host for another tenant: %d %s", st, msg)
	} else {
		t.Logf("claiming acme's host: %d %s", st, msg)
	}

	type answer struct {
		status int
		code   string
		body   string
	}
	call := func(cl *http.Client, host, path, key string) answer {
		req, _ := http.NewRequest("GET", "https://"+g.addr+path, nil)
		if host != "" {
			req.Host = host
		}
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 400 {
			return answer{resp.StatusCode, readProblem(t, resp).Code, ""}
		}
		body, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, "", string(body)}
	}
	waitFor(t, func() bool { return call(c, "", "/t/globex/orders/1", keys["globex"]).status == 200 }, g.stderr)

	const acmeHost = "acme.example.test"
	withCert := clientFor(p, p.gwClient.TLS())
	intruder := clientFor(p, p.intruder.TLS())
	for _, tc := range []struct {
		name       string
		cl         *http.Client
		host, path string
		key        string
		want       answer
	}{
		{"default tenant, its own key", c, "", "/orders/1", keys["default"], answer{200, "", "hello /orders/1"}},
		{"acme by host, its own key", c, acmeHost, "/orders/1", keys["acme"], answer{200, "", "hello /orders/1"}},
		{"globex by prefix, removed before the upstream", c, "", "/t/globex/orders/1", keys["globex"], answer{200, "", "hello /orders/1"}},
		{"default key on acme's API", c, acmeHost, "/orders/1", keys["default"], answer{401, "api_key.invalid", ""}},
		{"acme key on the default tenant's API", c, "", "/orders/1", keys["acme"], answer{401, "api_key.invalid", ""}},
		{"acme key on globex's API", c, "", "/t/globex/orders/1", keys["acme"], answer{401, "api_key.invalid", ""}},
		{"globex key on acme's API", c, acmeHost, "/orders/1", keys["globex"], answer{401, "api_key.invalid", ""}},
		{"acme's host serves no other tenant's prefix", c, acmeHost, "/t/globex/orders/1", keys["globex"], answer{404, "route.not_found", ""}},
		{"acme's host does not fall back to the default tenant", c, acmeHost, "/elsewhere", keys["acme"], answer{404, "route.not_found", ""}},
		{"uploaded trust set accepts its CA's certificate", withCert, "", "/t/globex/secure/x", "", answer{200, "", "hello /secure/x"}},
		{"uploaded trust set refuses another CA", intruder, "", "/t/globex/secure/x", "", answer{401, "mtls.client_cert_untrusted", ""}},
		{"the other uploaded trust set refuses that certificate", withCert, "", "/t/globex/secure-other/x", "", answer{401, "mtls.client_cert_untrusted", ""}},
	} {
		if got := call(tc.cl, tc.host, tc.path, tc.key); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}

	// acme's plan allows 2 calls a minute (one is spent above); the default
	// tenant's application and API of the same names keep their own budget.
	if got := call(c, acmeHost, "/orders/2", keys["acme"]); got.status != 200 {
		t.Fatalf("acme's second call: %+v", got)
	}
	if got := call(c, acmeHost, "/orders/3", keys["acme"]); got.status != 429 || got.code != "ratelimit.exceeded" {
		t.Fatalf("acme's third call: %+v; want 429 ratelimit.exceeded", got)
	}
	for i := range 3 {
		if got := call(c, "", "/orders/x", keys["default"]); got.status != 200 {
			t.Fatalf("default tenant's call %d after acme's limit: %+v", i, got)
		}
	}

	// Rate-limit decisions are counted per tenant's API.
	resp, err := c.Get("https://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`portcullis_ratelimit_decisions_total{api="acme/orders",result="allowed"} 2`,
		`portcullis_ratelimit_decisions_total{api="acme/orders",result="limited"} 1`,
		`portcullis_ratelimit_decisions_total{api="orders",result="allowed"} 4`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// The access log names the tenant and the API's gateway-wide name.
	var seen []string
	for _, line := range strings.Split(g.stdout.String(), "\n") {
		var e struct{ Tenant, API string }
		if json.Unmarshal([]byte(line), &e) == nil && e.Tenant != "" {
			seen = append(seen, e.Tenant+" "+e.API)
		}
	}
	for _, want := range []string{"globex globex/orders", "acme acme/orders", "default orders", "globex globex/secure"} {
		if !strings.Contains(strings.Join(seen, "\n"), want) {
			t.Errorf("access log has no entry with tenant and API %q; it has %q", want, seen)
		}
	}
}
