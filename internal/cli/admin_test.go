package cli_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAdminAPIDrivesTheGateway: an application and its subscription created
// through the admin API take effect without a restart, survive a restart
// (SQLite), and file-managed resources cannot be edited through the API.
func TestAdminAPIDrivesTheGateway(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p)
	adminAddr := freePorts(t, 1)[0]
	adminToken := secret("admin-token-0123456789abcdef")
	hash := func(s string) string { sum := sha256.Sum256([]byte(s)); return "sha256:" + hex.EncodeToString(sum[:]) }
	cfg := fmt.Sprintf(`
store: "sqlite:%s"
admin:
  address: "%s"
  certificates: [{ cert: %s, key: %s }]
  tokens: [{ name: ci, hash: "%s", role: admin }]
listeners:
  - name: public
    address: "127.0.0.1:0"
    tls: { certificates: [{ cert: %[3]s, key: %[4]s }] }
trust_stores:
  internal: { pem: %[6]s }
plans:
  - { name: gold, rate_limit: { rate: 100, period: 1s } }
applications:
  - { id: file-app, api_keys: [ "%[7]s" ] }
subscriptions:
  - { application: file-app, api: orders, plan: gold }
apis:
  - name: orders
    auth: api_key
    plans: [gold]
    upstream:
      targets: [ %[8]s ]
      tls: { client_certificate: { cert: %[9]s, key: %[10]s }, trust: internal, server_name: localhost }
`, filepath.Join(p.dir, "registry.db"), adminAddr, p.gwCert, p.gwKey, hash(adminToken), p.caFile, hash("file-key"), b.URL, p.clientCert, p.clientKey)
	cfgFile := writeConfig(t, p.dir, cfg)
	g := startGateway(t, cfgFile)
	waitAdmin(t, g, adminAddr)
	c := clientFor(p)

	call := func(key string) int {
		req, _ := http.NewRequest("GET", "https://"+g.addr+"/x", nil)
		req.Header.Set("X-API-Key", key)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	adminDo := func(method, path, token, body string, hdr ...string) *http.Response {
		req, _ := http.NewRequest(method, "https://"+adminAddr+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if st := call("file-key"); st != 200 {
		t.Fatalf("file-defined application: %d", st)
	}
	if st := call("api-key"); st != 401 {
		t.Fatalf("unknown key: %d", st)
	}

	resp := adminDo("GET", "/admin/v1/applications?tenant=default", "", "")
	if d := readProblem(t, resp); resp.StatusCode != 401 || d.Code != "admin.unauthenticated" {
		t.Fatalf("no credentials: %d %q", resp.StatusCode, d.Code)
	}
	resp = adminDo("PUT", "/admin/v1/applications/default/file-app", adminToken, `{"api_key_hashes":["`+hash("x")+`"]}`, "If-Match", "*")
	if d := readProblem(t, resp); resp.StatusCode != 409 || !strings.Contains(d.Detail, "file") {
		t.Fatalf("editing a file-managed application: %d %+v", resp.StatusCode, d)
	}
	for _, put := range []struct{ path, body string }{
		{"/admin/v1/applications/default/api-app", `{"api_key_hashes":["` + hash("api-key") + `"]}`},
		{"/admin/v1/subscriptions/default/api-app.orders", `{"application":"api-app","api":"orders","plan":"gold","state":"active"}`},
	} {
		resp := adminDo("PUT", put.path, adminToken, put.body, "If-None-Match", "*")
		resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Fatalf("PUT %s: %s", put.path, resp.Status)
		}
	}
	waitFor(t, func() bool { return call("api-key") == 200 }, g.stderr)

	// An API created through the admin API is served too (its spec is an
	// API block of the configuration); an invalid one is refused by the
	// gateway while the running configuration keeps serving.
	apiSpec := fmt.Sprintf(`{"spec":{"match":{"path_prefix":"/reports"},"strip_prefix":true,"upstream":{"targets":["%s"],"tls":{"client_certificate":{"cert":"%s","key":"%s"},"trust":"internal","server_name":"localhost"}}}}`, b.URL, p.clientCert, p.clientKey)
	resp = adminDo("PUT", "/admin/v1/apis/default/reports", adminToken, apiSpec, "If-None-Match", "*")
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("PUT api: %s", resp.Status)
	}
	getPath := func(path string) int {
		resp, err := c.Get("https://" + g.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, func() bool { return getPath("/reports/x") == 200 }, g.stderr)
	// An API the gateway could not serve is refused before it is stored,
	// naming the problem; the running configuration keeps serving.
	resp = adminDo("PUT", "/admin/v1/apis/default/broken", adminToken, `{"spec":{"match":{"path_prefx":"/b"}}}`, "If-None-Match", "*")
	if d := readProblem(t, resp); resp.StatusCode != 422 || d.Code != "admin.invalid" || !strings.Contains(d.Detail, "path_prefx") {
		t.Fatalf("PUT of an invalid API spec: %d %+v", resp.StatusCode, d)
	}
	resp = adminDo("GET", "/admin/v1/apis/default/broken", adminToken, "")
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("the refused API was stored: GET %s", resp.Status)
	}
	if getPath("/reports/x") != 200 || call("api-key") != 200 {
		t.Fatal("a refused registry API disturbed the running configuration")
	}

	// POST /admin/v1/reload reloads now and says whether it took: a broken
	// file is refused with its problems, and the gateway keeps serving.
	resp = adminDo("POST", "/admin/v1/reload", adminToken, "")
	var rr struct {
		Result string `json:"result"`
		APIs   int    `json:"apis"`
	}
	decodeJSON(t, resp, &rr)
	if resp.StatusCode != 200 || rr.Result != "reloaded" || rr.APIs != 2 {
		t.Fatalf("reload: %d %+v", resp.StatusCode, rr)
	}
	good, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgFile, []byte(strings.Replace(string(good), "plans: [gold]", "plans: [platinum]", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	resp = adminDo("POST", "/admin/v1/reload", adminToken, "")
	if d := readProblem(t, resp); resp.StatusCode != 422 || d.Code != "admin.invalid" || !strings.Contains(d.Detail, `plan "platinum" is not defined`) {
		t.Fatalf("reload of a broken file: %d %+v", resp.StatusCode, d)
	}
	if call("api-key") != 200 {
		t.Fatal("a rejected reload disturbed the running configuration")
	}
	if err := os.WriteFile(cfgFile, good, 0o600); err != nil {
		t.Fatal(err)
	}

	// Restart: the registry keeps what the admin API created.
	if err := g.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	g = startGateway(t, cfgFile)
	if st := call("api-key"); st != 200 {
		t.Fatalf("after restart: %d\n%s", st, g.stderr)
	}
	if getPath("/reports/x") != 200 {
		t.Fatal("the registry API is not served after a restart")
	}
}
