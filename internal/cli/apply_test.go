package cli_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// cliRun is one run of the portcullis binary.
type cliRun struct {
	stdout, stderr string
	code           int
}

func (r cliRun) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runWithEnv runs the binary with extra environment variables. A -race
// binary would sleep a second at every successful exit; GORACE stops that.
func runWithEnv(t *testing.T, env []string, args ...string) cliRun {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = os.Environ()
	if os.Getenv("GORACE") == "" {
		cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0")
	}
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := cliRun{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running %v: %v", args, err)
	}
	return r
}

// TestApplyGetDelete drives apply, get and delete against a real gateway's
// admin API: creation, idempotence, updates the gateway serves, dry runs,
// pruning, listing, deletion and the errors a user sees.
func TestApplyGetDelete(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p)
	adminAddr := freePorts(t, 1)[0]
	adminToken := secret("apply-token-0123456789abcdef")
	hash := func(s string) string { sum := sha256.Sum256([]byte(s)); return "sha256:" + hex.EncodeToString(sum[:]) }
	cfg := fmt.Sprintf(`
store: "sqlite:%s"
admin:
  address: "%s"
  certificates: [{ cert: %s, key: %s }]
  client_trust: [internal]
  clients: [{ cn: gateway, role: admin }]
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
	g := startGateway(t, writeConfig(t, p.dir, cfg))
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

	env := []string{"PORTCULLIS_ADMIN=https://" + adminAddr, "PORTCULLIS_ADMIN_CACERT=" + p.caFile, "APPLY_TOKEN=" + adminToken, "WRONG_TOKEN=not-the-token"}
	cli := func(args ...string) cliRun {
		t.Helper()
		return runWithEnv(t, env, append(args, "--token-env", "APPLY_TOKEN")...)
	}
	ok := func(args ...string) string {
		t.Helper()
		r := cli(args...)
		if r.code != 0 {
			t.Fatalf("portcullis %s: %s", strings.Join(args, " "), r)
		}
		return r.stdout
	}
	fails := func(r cliRun, want ...string) {
		t.Helper()
		if r.code != 1 {
			t.Fatalf("want exit 1: %s", r)
		}
		for _, w := range want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("stderr lacks %q: %s", w, r)
			}
		}
	}
	file := func(name, body string) string {
		path := filepath.Join(p.dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// The subscription comes first in the file: apply orders by kind.
	resources := func(rate, state string) string {
		return fmt.Sprintf(`
kind: subscription
spec: { name: orders-app.orders, application: orders-app, api: orders, plan: gold, state: %s }
---
kind: application
spec:
  name: orders-app
  api_key_hashes: [ "%s" ]
---
kind: plan
spec: { name: bronze, rate_limit: { rate: %s, period: 1s } }
---
`, state, hash("orders-key"), rate)
	}
	main := file("resources.yaml", resources("100", "active"))

	// Create, in dependency order; the new application's key works.
	if st := call("orders-key"); st != 401 {
		t.Fatalf("before apply: %d", st)
	}
	out := ok("apply", "-f", main)
	want := "plan/default/bronze created\napplication/default/orders-app created\nsubscription/default/orders-app.orders created\n"
	if out != want {
		t.Fatalf("first apply:\n%s\nwant:\n%s", out, want)
	}
	waitFor(t, func() bool { return call("orders-key") == 200 }, g.stderr)

	// Idempotent.
	out = ok("apply", "-f", main)
	if want := "plan/default/bronze unchanged\napplication/default/orders-app unchanged\nsubscription/default/orders-app.orders unchanged\n"; out != want {
		t.Fatalf("second apply:\n%s", out)
	}

	// A dry run shows the diff and changes nothing.
	version := func(kind, name string) float64 {
		t.Helper()
		var r map[string]any
		if err := json.Unmarshal([]byte(ok("get", kind, name, "-o", "json")), &r); err != nil {
			t.Fatal(err)
		}
		return r["version"].(float64)
	}
	before := version("plan", "bronze")
	changed := file("changed.yaml", resources("5", "suspended"))
	out = ok("apply", "-f", changed, "--dry-run")
	for _, w := range []string{
		"--- plan/default/bronze (version ",
		"-     \"rate\": 100\n",
		"+     \"rate\": 5\n",
		"-   \"state\": \"active\",\n",
		"+   \"state\": \"suspended\",\n",
		"plan/default/bronze configured (dry run)\n",
		"application/default/orders-app unchanged\n",
		"subscription/default/orders-app.orders configured (dry run)\n",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("dry run lacks %q:\n%s", w, out)
		}
	}
	if v := version("plan", "bronze"); v != before {
		t.Fatalf("dry run changed the plan: version %v → %v", before, v)
	}
	if st := call("orders-key"); st != 200 {
		t.Fatalf("after the dry run: %d", st)
	}

	// The change itself, which the gateway serves.
	out = ok("apply", "-f", changed)
	if want := "plan/default/bronze configured\napplication/default/orders-app unchanged\nsubscription/default/orders-app.orders configured\n"; out != want {
		t.Fatalf("apply of the change:\n%s", out)
	}
	waitFor(t, func() bool { return call("orders-key") == 403 }, g.stderr)
	if v := version("plan", "bronze"); v <= before {
		t.Fatalf("plan version %v after the change, was %v", v, before)
	}

	// get -o yaml prints documents apply accepts unchanged.
	y := ok("get", "plan", "bronze", "-o", "yaml")
	if !strings.Contains(y, "kind: plan\n") || !strings.Contains(y, "rate: 5\n") {
		t.Fatalf("get -o yaml:\n%s", y)
	}
	if out := ok("apply", "-f", file("roundtrip.yaml", y)); out != "plan/default/bronze unchanged\n" {
		t.Fatalf("applying get's yaml: %s", out)
	}

	// Prune: an API-managed application the file does not name goes; the
	// file-managed one stays.
	if out := ok("apply", "-f", file("stray.yaml", "kind: application\nspec: { name: stray-app }\n")); out != "application/default/stray-app created\n" {
		t.Fatalf("stray: %s", out)
	}
	out = ok("apply", "-f", changed, "--prune", "--dry-run")
	if !strings.Contains(out, "application/default/stray-app deleted (dry run)\n") || !strings.Contains(out, "-   \"name\": \"stray-app\",\n") {
		t.Fatalf("prune dry run:\n%s", out)
	}
	ok("get", "application", "stray-app")
	out = ok("apply", "-f", changed, "--prune")
	if want := "plan/default/bronze unchanged\napplication/default/orders-app unchanged\nsubscription/default/orders-app.orders unchanged\napplication/default/stray-app deleted\n"; out != want {
		t.Fatalf("prune:\n%s", out)
	}
	var list struct {
		Items []struct{ Name, ManagedBy string } `json:"items"`
	}
	if err := json.Unmarshal([]byte(ok("get", "applications", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, it := range list.Items {
		names = append(names, it.Name)
	}
	if !slices.Equal(names, []string{"file-app", "orders-app"}) {
		t.Fatalf("applications after prune: %v", names)
	}

	// The table, authenticated with an admin client certificate instead.
	r := runWithEnv(t, env, "get", "application", "--cert", p.clientCert, "--key", p.clientKey)
	if r.code != 0 {
		t.Fatalf("get with a client certificate: %s", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "KIND TENANT NAME VERSION MANAGED_BY UPDATED" {
		t.Fatalf("table:\n%s", r.stdout)
	}
	for i, w := range []string{"application default file-app", "application default orders-app"} {
		f := strings.Fields(lines[i+1])
		managed := map[int]string{0: "file", 1: "api"}[i]
		if len(f) != 6 || strings.Join(f[:3], " ") != w || f[4] != managed {
			t.Errorf("row %d: %q, want %q … %s", i+1, lines[i+1], w, managed)
		}
	}
	if f := strings.Fields(strings.Split(ok("get", "tenant", "default"), "\n")[1]); len(f) != 6 || f[1] != "-" || f[4] != "file" {
		t.Errorf("get tenant default: %v", f)
	}

	// Delete reads the version, then deletes it.
	if out := ok("delete", "subscription", "orders-app.orders"); out != "subscription/default/orders-app.orders deleted\n" {
		t.Fatalf("delete: %s", out)
	}
	fails(cli("get", "subscription", "orders-app.orders"), "admin.not_found")
	fails(cli("delete", "application", "file-app"), "admin.conflict", "configuration file")

	// Errors: credentials, validation (local and the server's), plain HTTP.
	fails(runWithEnv(t, env, "get", "plans", "--token-env", "WRONG_TOKEN"), "admin.unauthenticated")
	fails(runWithEnv(t, env, "get", "plans"), "admin.unauthenticated", "--token-env")
	bad := file("bad.yaml", "kind: plan\nspec: { name: tin, rate_limit: { rate: 1, period: soon } }\n")
	fails(cli("apply", "-f", bad), "bad.yaml:1", "rate_limit.period")
	badRef := file("badref.yaml", "kind: subscription\nspec: { name: x, application: orders-app, api: orders, plan: nope, state: active }\n")
	fails(cli("apply", "-f", badRef), "admin.invalid", "plan: ")
	fails(cli("apply", "-f", file("unknown.yaml", "kind: plan\nspec: { name: tin, colour: blue }\n")), "colour")
	fails(cli("get", "plans", "--admin", "http://"+adminAddr), "https")
}
