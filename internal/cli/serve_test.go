package cli_test

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/pki"
	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/testpki"
)

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed; .ci/run installs it (this test needs the real tool)", name)
	}
	return p
}

func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestKeytoolStoresServe builds the gateway's identity and truststore the way
// a JVM shop does — keytool -genkeypair, -certreq, a CA signs, -importcert —
// in both JKS and keytool's default PKCS#12 (named .jks, as keytool does), and
// serves Story A with them.
func TestKeytoolStoresServe(t *testing.T) {
	needTool(t, "keytool")
	dir := t.TempDir()
	ca, err := pki.InitCA(filepath.Join(dir, "ca"), pki.CAOptions{Name: "apimanCA", Days: 2})
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca", pki.CertFile)
	backendID, err := ca.Issue(pki.IssueOptions{Name: "localhost", DNS: []string{"localhost"}, Server: true, Days: 2})
	if err != nil {
		t.Fatal(err)
	}
	p := &pkiSet{dir: dir}
	p.ca = &testpki.CA{Cert: ca.Cert, Key: ca.Key}
	p.backend = &testpki.Leaf{Cert: backendID.Cert, Key: backendID.Key}
	listener := p.ca.Issue(t, "gateway-listener", testpki.Server(), testpki.DNS("localhost"))
	p.gwCert, p.gwKey = listener.WriteFiles(t, dir, "listener")
	b := newBackend(t, p)

	for _, storetype := range []string{"JKS", "PKCS12"} {
		t.Run(storetype, func(t *testing.T) {
			sub := t.TempDir()
			ks, ts := filepath.Join(sub, "gateway_ks.jks"), filepath.Join(sub, "shared_trust_store.jks")
			env := []string{"GW_KS_PASS=" + secret("ks-secret-"+storetype), "TS_PASS=" + secret("ts-secret-"+storetype)}
			kt := func(args ...string) string {
				cmd := exec.Command("keytool", args...)
				cmd.Env = append(os.Environ(), env...)
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("keytool %v: %v\n%s", args, err, out)
				}
				return string(out)
			}
			kt("-genkeypair", "-alias", "gateway", "-keyalg", "EC", "-groupname", "secp256r1", "-dname", "CN=gateway",
				"-validity", "2", "-keystore", ks, "-storetype", storetype, "-storepass:env", "GW_KS_PASS", "-keypass:env", "GW_KS_PASS")
			// A second key entry, so the alias really selects.
			kt("-genkeypair", "-alias", "other", "-keyalg", "EC", "-dname", "CN=other", "-keystore", ks,
				"-storetype", storetype, "-storepass:env", "GW_KS_PASS", "-keypass:env", "GW_KS_PASS")
			csrFile := filepath.Join(sub, "gateway.csr")
			kt("-certreq", "-alias", "gateway", "-keystore", ks, "-storepass:env", "GW_KS_PASS", "-file", csrFile)
			csr, _ := os.ReadFile(csrFile)
			cert, err := ca.SignCSR(csr, pki.SignOptions{Client: true, Days: 2})
			if err != nil {
				t.Fatal(err)
			}
			reply := filepath.Join(sub, "gateway.crt")
			testpki.WriteFile(t, reply, testpki.CertsPEM(cert, ca.Cert))
			kt("-importcert", "-alias", "apimanca", "-file", caFile, "-keystore", ks, "-storepass:env", "GW_KS_PASS", "-noprompt")
			kt("-importcert", "-alias", "gateway", "-file", reply, "-keystore", ks, "-storepass:env", "GW_KS_PASS", "-noprompt")
			kt("-importcert", "-alias", "apimanca", "-file", caFile, "-keystore", ts, "-storetype", storetype, "-storepass:env", "TS_PASS", "-noprompt")

			cfg := fmt.Sprintf(`
listeners:
  - name: public
    address: "127.0.0.1:0"
    tls:
      certificates: [{ cert: %s, key: %s }]
trust_stores:
  internal:
    truststores: [{ path: %s, password_env: TS_PASS }]
apis:
  - name: api-a
    upstream:
      targets: [ %s ]
      tls:
        client_certificate:
          keystore: { path: %s, alias: gateway, password_env: GW_KS_PASS }
        trust: internal
        server_name: localhost
`, p.gwCert, p.gwKey, ts, b.URL, ks)
			cfgFile := writeConfig(t, sub, cfg)
			out, err := cmdWithEnv(env, binary, "validate", "-c", cfgFile).CombinedOutput()
			if err != nil {
				t.Fatalf("validate: %v\n%s", err, out)
			}
			g := startGateway(t, cfgFile, env...)
			resp, err := clientFor(p).Get("https://" + g.addr + "/x")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("X-Backend-Peer") != "gateway" {
				t.Fatalf("status %s, backend saw %q", resp.Status, resp.Header.Get("X-Backend-Peer"))
			}
			g.stop(t)
			for _, secret := range []string{"ks-secret-", "ts-secret-"} {
				if strings.Contains(g.stderr.String()+g.stdout.String()+string(out), secret) {
					t.Errorf("a password appears in the output")
				}
			}

			// The wrong password is reported with the key path, and never echoed.
			bad := []string{"GW_KS_PASS=wrong-password-xyz", env[1]}
			out, err = cmdWithEnv(bad, binary, "validate", "-c", cfgFile).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "apis[0].upstream.tls.client_certificate") ||
				!strings.Contains(string(out), "password") || strings.Contains(string(out), "wrong-password-xyz") {
				t.Errorf("wrong password: %v\n%s", err, out)
			}
			// A missing alias lists the aliases present.
			cfgBad := writeConfig(t, sub, strings.Replace(cfg, "alias: gateway", "alias: gatewy", 1))
			out, _ = cmdWithEnv(env, binary, "validate", "-c", cfgBad).CombinedOutput()
			if !strings.Contains(string(out), "gatewy") || !strings.Contains(string(out), "gateway") || !strings.Contains(string(out), "other") {
				t.Errorf("missing alias should list the aliases:\n%s", out)
			}
		})
	}
}

func cmdWithEnv(env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// TestListenerFeatures covers SNI certificate selection, the plain-HTTP
// redirect, the body limit, method restriction and path cleaning on one
// running gateway.
func TestListenerFeatures(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p)
	other := p.ca.Issue(t, "other-site", testpki.Server(), testpki.DNS("other.example.test"))
	oc, ok := other.WriteFiles(t, p.dir, "other-site")
	cfg := fmt.Sprintf(`
listeners:
  - name: public
    address: "127.0.0.1:0"
    http_redirect: { address: "127.0.0.1:0" }
    limits: { max_body_bytes: 1KiB }
    tls:
      certificates:
        - { cert: %s, key: %s }
        - { cert: %s, key: %s }
trust_stores:
  internal: { pem: %s }
apis:
  - name: public-api
    match: { path_prefix: /public }
    upstream: { targets: [ %[6]s ], tls: { client_certificate: { cert: %[7]s, key: %[8]s }, trust: internal, server_name: localhost } }
  - name: read-only
    match: { path_prefix: /ro, methods: [GET] }
    upstream: { targets: [ %[6]s ], tls: { client_certificate: { cert: %[7]s, key: %[8]s }, trust: internal, server_name: localhost } }
`, p.gwCert, p.gwKey, oc, ok, p.caFile, b.URL, p.clientCert, p.clientKey)
	g := startGateway(t, writeConfig(t, p.dir, cfg))

	t.Run("SNI selects the certificate", func(t *testing.T) {
		for sni, want := range map[string]string{"other.example.test": "other-site", "localhost": "gateway-listener", "unknown.test": "gateway-listener"} {
			conn, err := tls.Dial("tcp", g.addr, &tls.Config{ServerName: sni, RootCAs: p.ca.Pool(), InsecureSkipVerify: true})
			if err != nil {
				t.Fatal(err)
			}
			got := conn.ConnectionState().PeerCertificates[0].Subject.CommonName
			conn.Close()
			if got != want {
				t.Errorf("SNI %q got certificate %q, want %q", sni, got, want)
			}
		}
	})
	t.Run("TLS 1.1 is refused", func(t *testing.T) {
		_, err := tls.Dial("tcp", g.addr, &tls.Config{RootCAs: p.ca.Pool(), ServerName: "localhost", MaxVersion: tls.VersionTLS11})
		if err == nil {
			t.Error("a TLS 1.1 handshake succeeded")
		}
	})
	t.Run("body limit", func(t *testing.T) {
		resp, err := clientFor(p).Post("https://"+g.addr+"/public/upload", "text/plain", strings.NewReader(strings.Repeat("x", 2048)))
		if err != nil {
			t.Fatal(err)
		}
		if d := readProblem(t, resp); resp.StatusCode != 413 || d.Code != problem.CodeRequestTooLarge {
			t.Errorf("got %d %+v", resp.StatusCode, d)
		}
		// A streamed body (no Content-Length) is cut off too.
		req, _ := http.NewRequest("POST", "https://"+g.addr+"/public/upload", io.MultiReader(strings.NewReader(strings.Repeat("y", 4096))))
		req.ContentLength = -1
		resp, err = clientFor(p).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if d := readProblem(t, resp); resp.StatusCode != 413 || d.Code != problem.CodeRequestTooLarge {
			t.Errorf("streamed: got %d %+v", resp.StatusCode, d)
		}
	})
	t.Run("method not allowed", func(t *testing.T) {
		resp, err := clientFor(p).Post("https://"+g.addr+"/ro/x", "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		if d := readProblem(t, resp); resp.StatusCode != 405 || d.Code != problem.CodeMethodNotAllowed {
			t.Errorf("got %d %+v", resp.StatusCode, d)
		}
	})
	t.Run("dot segments cannot escape a prefix", func(t *testing.T) {
		req, _ := http.NewRequest("GET", "https://"+g.addr+"/x", nil)
		req.URL.Opaque = "/public/../secret"
		resp, err := clientFor(p).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if d := readProblem(t, resp); resp.StatusCode != 404 || d.Code != problem.CodeRouteNotFound {
			t.Errorf("/public/../secret: got %d %+v, want 404 (it is /secret)", resp.StatusCode, d)
		}
	})
	t.Run("plain HTTP redirects to HTTPS", func(t *testing.T) {
		var addr string
		for _, line := range strings.Split(g.stderr.String(), "\n") {
			var l struct{ Msg, Address string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "http redirect listening" {
				addr = l.Address
			}
		}
		_, port, _ := strings.Cut(g.addr, ":")
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Get("http://" + addr + "/public/a?b=1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := "https://127.0.0.1:" + port + "/public/a?b=1"; resp.StatusCode != 301 || resp.Header.Get("Location") != want {
			t.Errorf("redirect: %s Location %q, want 301 %q", resp.Status, resp.Header.Get("Location"), want)
		}
	})
}

// TestCurlHTTP2AndHTTP1 uses the real curl client against the gateway, over
// HTTP/2 (ALPN) and HTTP/1.1.
func TestCurlHTTP2AndHTTP1(t *testing.T) {
	needTool(t, "curl")
	p := newPKI(t)
	b := newBackend(t, p)
	g := startGateway(t, writeConfig(t, p.dir, storyAConfig(p, b, "")))
	_, port, _ := strings.Cut(g.addr, ":")
	for flag, want := range map[string]string{"--http2": "2 200 hello /c", "--http1.1": "1.1 200 hello /c"} {
		out := run(t, p.dir, "curl", "-sS", flag, "--cacert", p.caFile, "--resolve", "localhost:"+port+":127.0.0.1",
			"-w", "%{http_version} %{http_code} ", "-o", "/dev/stderr", "https://localhost:"+port+"/a/c")
		if !strings.Contains(out, strings.Fields(want)[0]+" "+strings.Fields(want)[1]) || !strings.Contains(out, "hello /c") {
			t.Errorf("curl %s: %q, want %q", flag, out, want)
		}
	}
}

// TestReloadOnSIGHUP swaps in a new configuration without a restart; a
// broken one is rejected and the running configuration keeps serving.
func TestReloadOnSIGHUP(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p)
	cfgFile := writeConfig(t, p.dir, storyAConfig(p, b, ""))
	g := startGateway(t, cfgFile)
	get := func(path string) int {
		resp, err := clientFor(p).Get("https://" + g.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if get("/b/x") != 404 {
		t.Fatal("/b exists before the reload")
	}
	writeConfig(t, p.dir, strings.Replace(storyAConfig(p, b, ""), "path_prefix: /a", "path_prefix: /b", 1))
	g.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Contains(g.stderr.String(), "configuration reloaded") }, g.stderr)
	if get("/b/x") != 200 || get("/a/x") != 404 {
		t.Fatal("reload did not take effect")
	}
	writeConfig(t, p.dir, strings.Replace(storyAConfig(p, b, ""), "trust: internal", "trust: nope", 1))
	g.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Contains(g.stderr.String(), "reload rejected") }, g.stderr)
	if !strings.Contains(g.stderr.String(), `trust store \"nope\" is not defined`) {
		t.Errorf("the rejected reload does not say why:\n%s", g.stderr)
	}
	if get("/b/x") != 200 {
		t.Fatal("a broken reload disturbed the running configuration")
	}
}

// TestUnsafeOptionWarnedAtEveryLoad: insecure_skip_verify works but is
// logged at start and again at every reload.
func TestUnsafeOptionWarnedAtEveryLoad(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p)
	cfg := strings.Replace(storyAConfig(p, b, ""), "trust: internal", "insecure_skip_verify: true", 1)
	g := startGateway(t, writeConfig(t, p.dir, cfg))
	resp, err := clientFor(p).Get("https://" + g.addr + "/a/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %s", resp.Status)
	}
	g.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Count(g.stderr.String(), "insecure_skip_verify") >= 2 }, g.stderr)
	if !strings.Contains(g.stderr.String(), `"level":"WARN","msg":"unsafe option in use"`) {
		t.Errorf("no warning line:\n%s", g.stderr)
	}
}

func TestQuickstartTry(t *testing.T) {
	dir := t.TempDir()
	ports := freePorts(t, 2)
	cmd := exec.Command(binary, "quickstart", "--try", "--dir", filepath.Join(dir, "demo"), "--listen", ports[0], "--backend", ports[1])
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("quickstart --try: %v\n%s", err, out)
	}
	for _, want := range []string{"through the gateway: 200 OK", "CN=gateway-upstream", "refused, as it should be", "demo OK"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The written config is valid on its own.
	if out, err := exec.Command(binary, "validate", "-c", filepath.Join(dir, "demo", "portcullis.yaml")).CombinedOutput(); err != nil {
		t.Errorf("validate the demo config: %v\n%s", err, out)
	}
}

func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, l.Addr().String())
		l.Close()
	}
	return addrs
}

// TestUpstreamCertificateRevoked: a CRL on the upstream's trust store is
// enforced for the gateway→API hop too.
func TestUpstreamCertificateRevoked(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.InitCA(filepath.Join(dir, "ca"), pki.CAOptions{Name: "apimanCA", Days: 2})
	if err != nil {
		t.Fatal(err)
	}
	be, err := ca.Issue(pki.IssueOptions{Name: "localhost", DNS: []string{"localhost"}, Server: true, Days: 1})
	if err != nil {
		t.Fatal(err)
	}
	p := &pkiSet{dir: dir, ca: &testpki.CA{Cert: ca.Cert, Key: ca.Key}}
	p.backend = &testpki.Leaf{Cert: be.Cert, Key: be.Key}
	p.caFile = filepath.Join(dir, "ca", pki.CertFile)
	p.gwCert, p.gwKey = p.ca.Issue(t, "listener", testpki.Server(), testpki.DNS("localhost")).WriteFiles(t, dir, "listener")
	p.clientCert, p.clientKey = p.ca.Issue(t, "gateway", testpki.Client()).WriteFiles(t, dir, "gw-client")
	b := newBackend(t, p)
	crlFile := filepath.Join(dir, "ca.crl")
	writeCRL := func() {
		crl, err := ca.CRL(time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		testpki.WriteFile(t, crlFile, crl)
	}
	writeCRL()
	cfg := strings.Replace(storyAConfig(p, b, ""), "internal: { pem: "+p.caFile+" }",
		"internal: { pem: "+p.caFile+", crl: { files: ["+crlFile+"], refresh: 100ms } }", 1)
	g := startGateway(t, writeConfig(t, dir, cfg))
	get := func() *http.Response {
		resp, err := clientFor(p).Get("https://" + g.addr + "/a/x")
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := get()
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("before revocation: %s", resp.Status)
	}
	if err := ca.Revoke(be.Cert.SerialNumber, 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	writeCRL()
	// Pooled connections were verified before the revocation; new ones
	// must not be. Close the pool by waiting for the CRL refresh and then
	// asking for a fresh handshake: the backend drops idle connections.
	time.Sleep(300 * time.Millisecond)
	b.CloseClientConnections()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := get()
		if resp.StatusCode == 502 {
			if d := readProblem(t, resp); d.Code != problem.CodeUpstreamTLSCertRevoked {
				t.Fatalf("code %q, want %q", d.Code, problem.CodeUpstreamTLSCertRevoked)
			}
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("the revoked upstream certificate was still accepted after 10s")
		}
		b.CloseClientConnections()
		time.Sleep(50 * time.Millisecond)
	}
}
