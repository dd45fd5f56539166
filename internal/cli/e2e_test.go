package cli_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/testpki"
)

// binary is the portcullis binary built once for these tests, so they drive
// exactly what a user runs.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "portcullis-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "portcullis")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "../../cmd/portcullis")...)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building portcullis: %v\n", err)
		os.Exit(1)
	}
	// A race-detector binary sleeps a second at every exit by default; the
	// gateways these tests start and stop do not need that.
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	code := checkSecrets(m.Run())
	os.RemoveAll(dir)
	os.Exit(code)
}

// pkiSet is the PKI of Story A: one CA for the backend and the gateway's
// upstream identity, a server certificate for the gateway's listener, and a
// foreign CA for intruders.
type pkiSet struct {
	ca, other             *testpki.CA
	backend, gwClient     *testpki.Leaf
	gwServer, intruder    *testpki.Leaf
	dir                   string
	caFile, otherCAFile   string
	gwCert, gwKey         string
	clientCert, clientKey string
}

func newPKI(t *testing.T) *pkiSet {
	t.Helper()
	p := &pkiSet{dir: t.TempDir()}
	p.ca = testpki.NewCA(t, "apimanCA")
	p.other = testpki.NewCA(t, "otherCA")
	p.backend = p.ca.Issue(t, "backend", testpki.Server(), testpki.DNS("localhost"), testpki.IP("127.0.0.1"))
	p.gwClient = p.ca.Issue(t, "gateway", testpki.Client())
	p.gwServer = p.ca.Issue(t, "gateway-listener", testpki.Server(), testpki.DNS("localhost", "api.example.test", "certs.example.test", "open.example.test"), testpki.IP("127.0.0.1"))
	p.intruder = p.other.Issue(t, "intruder", testpki.Client())
	p.caFile = p.ca.WriteCA(t, p.dir, "ca")
	p.otherCAFile = p.other.WriteCA(t, p.dir, "other-ca")
	p.gwCert, p.gwKey = p.gwServer.WriteFiles(t, p.dir, "gw-server")
	p.clientCert, p.clientKey = p.gwClient.WriteFiles(t, p.dir, "gw-client")
	return p
}

// backend is an API that requires a client certificate from ca and records
// who connected.
type backend struct {
	*httptest.Server
	mu    sync.Mutex
	peers []string
	hdrs  []http.Header
	delay time.Duration
	// handshakes is the client certificate CN of each TLS handshake, in
	// order; open counts connections not yet closed.
	handshakes []string
	open       int
}

func newBackend(t *testing.T, p *pkiSet) *backend {
	t.Helper()
	b := &backend{}
	b.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.peers = append(b.peers, r.TLS.PeerCertificates[0].Subject.CommonName)
		b.hdrs = append(b.hdrs, r.Header.Clone())
		d := b.delay
		b.mu.Unlock()
		time.Sleep(d)
		w.Header().Set("X-Backend-Peer", r.TLS.PeerCertificates[0].Subject.CommonName)
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))
	// Refused handshakes are what some tests are about; keep them out of the output.
	b.Config.ErrorLog = log.New(io.Discard, "", 0)
	b.TLS = &tls.Config{
		Certificates: []tls.Certificate{p.backend.TLS()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.ca.Pool(),
		VerifyConnection: func(cs tls.ConnectionState) error {
			b.mu.Lock()
			defer b.mu.Unlock()
			cn := ""
			if len(cs.PeerCertificates) > 0 {
				cn = cs.PeerCertificates[0].Subject.CommonName
			}
			b.handshakes = append(b.handshakes, cn)
			return nil
		},
	}
	b.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch s {
		case http.StateNew:
			b.open++
		case http.StateClosed, http.StateHijacked:
			b.open--
		}
	}
	b.StartTLS()
	t.Cleanup(b.Close)
	return b
}

// conns returns the client certificate CN of every handshake so far and
// the number of connections open now.
func (b *backend) conns() (handshakes []string, open int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.handshakes...), b.open
}

func (b *backend) lastPeer() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.peers) == 0 {
		return ""
	}
	return b.peers[len(b.peers)-1]
}

// gateway is a running portcullis serve process.
type gateway struct {
	cmd    *exec.Cmd
	addr   string
	stderr *syncBuffer
	stdout *syncBuffer
	done   chan error
}

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

func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	path := filepath.Join(dir, "portcullis.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startGateway runs `portcullis serve -c cfg` and waits until the listener
// named "public" reports its address.
func startGateway(t *testing.T, cfg string, env ...string) *gateway {
	t.Helper()
	g := &gateway{stderr: &syncBuffer{}, stdout: &syncBuffer{}, done: make(chan error, 1)}
	g.cmd = exec.Command(binary, "serve", "-c", cfg)
	g.cmd.Env = append(os.Environ(), env...)
	g.cmd.Stdout = g.stdout
	pr, pw := io.Pipe()
	g.cmd.Stderr = io.MultiWriter(g.stderr, pw)
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.done <- g.cmd.Wait(); pw.Close() }()
	t.Cleanup(func() {
		defer func() { collectLogs(g.stdout.String(), g.stderr.String()) }()
		if g.cmd.ProcessState == nil {
			g.cmd.Process.Kill()
			<-g.done
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var line struct{ Msg, Listener, Address string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" && line.Listener == "public" {
				addr <- line.Address
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case a := <-addr:
		g.addr = a
	case err := <-g.done:
		t.Fatalf("gateway exited before listening: %v\nstderr:\n%s", err, g.stderr)
	case <-time.After(15 * time.Second):
		t.Fatalf("gateway did not listen within 15s\nstderr:\n%s", g.stderr)
	}
	return g
}

func (g *gateway) stop(t *testing.T) error {
	t.Helper()
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-g.done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("gateway did not stop within 20s of SIGTERM")
		return nil
	}
}

func clientFor(p *pkiSet, certs ...tls.Certificate) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: p.ca.Pool(), ServerName: "localhost", Certificates: certs},
			ForceAttemptHTTP2: true,
		},
	}
}

func storyAConfig(p *pkiSet, b *backend, extra string) string {
	return fmt.Sprintf(`
listeners:
  - name: public
    address: "127.0.0.1:0"
    tls:
      certificates: [{ cert: %s, key: %s }]
trust_stores:
  internal: { pem: %s }
apis:
  - name: api-a
    match: { path_prefix: /a }
    strip_prefix: true
    upstream:
      targets: [ %s ]
      tls:
        client_certificate: { cert: %s, key: %s }
        trust: internal
        server_name: localhost
%s`, p.gwCert, p.gwKey, p.caFile, b.URL, p.clientCert, p.clientKey, extra)
}

func readProblem(t *testing.T, resp *http.Response) problem.Document {
	t.Helper()
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type = %q, want application/problem+json", ct)
	}
	var d problem.Document
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.RequestID == "" || d.RequestID != resp.Header.Get("X-Request-Id") {
		t.Errorf("request_id %q does not match X-Request-Id %q", d.RequestID, resp.Header.Get("X-Request-Id"))
	}
	return d
}

// TestStoryA is the "nobody goes around the gateway" story end to end: the
// client reaches the backend only through the gateway, and the backend sees
// the gateway's certificate; going around the gateway is refused.
func TestStoryA(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p)
	g := startGateway(t, writeConfig(t, p.dir, storyAConfig(p, b, "")))
	c := clientFor(p)

	resp, err := c.Get("https://" + g.addr + "/a/hello?x=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello /hello" {
		t.Fatalf("through the gateway: %s %q", resp.Status, body)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("client→gateway protocol = %s, want HTTP/2 via ALPN", resp.Proto)
	}
	if got := b.lastPeer(); got != "gateway" {
		t.Errorf("backend saw client certificate %q, want the gateway's", got)
	}
	b.mu.Lock()
	h := b.hdrs[len(b.hdrs)-1]
	b.mu.Unlock()
	if h.Get("X-Forwarded-For") != "127.0.0.1" || h.Get("X-Forwarded-Proto") != "https" || h.Get("X-Request-Id") == "" {
		t.Errorf("forwarding headers: XFF=%q XFP=%q XRID=%q", h.Get("X-Forwarded-For"), h.Get("X-Forwarded-Proto"), h.Get("X-Request-Id"))
	}

	// Around the gateway: no certificate, then a certificate from another CA.
	for name, certs := range map[string][]tls.Certificate{"no certificate": nil, "foreign CA": {p.intruder.TLS()}} {
		resp, err := clientFor(p, certs...).Get(b.URL + "/hello")
		if err == nil {
			resp.Body.Close()
			t.Errorf("direct request with %s was let in: %s", name, resp.Status)
		}
	}

	// The access log has one JSON line per request with the fields operators need.
	if err := g.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, g.stderr)
	}
	var entry map[string]any
	line, _, _ := strings.Cut(g.stdout.String(), "\n")
	if err := json.Unmarshal([]byte(line), &entry); err != nil {
		t.Fatalf("access log line %q: %v", line, err)
	}
	for _, k := range []string{"request_id", "api", "status", "duration_ms", "upstream_ms", "bytes_out", "tls_version", "client"} {
		if _, ok := entry[k]; !ok {
			t.Errorf("access log lacks %q: %s", k, line)
		}
	}
	if entry["api"] != "api-a" || entry["status"] != float64(200) || entry["tls_version"] != "1.3" || entry["path"] != "/a/hello" ||
		!strings.HasPrefix(fmt.Sprint(entry["tls_cipher"]), "TLS_") || entry["tls_resumed"] != false || entry["tenant"] != "default" {
		t.Errorf("access log = %s", line)
	}
}

func TestUnknownRouteIsProblem404(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p)
	g := startGateway(t, writeConfig(t, p.dir, storyAConfig(p, b, "")))
	resp, err := clientFor(p).Get("https://" + g.addr + "/nothing-here")
	if err != nil {
		t.Fatal(err)
	}
	d := readProblem(t, resp)
	if resp.StatusCode != 404 || d.Code != problem.CodeRouteNotFound || d.Status != 404 {
		t.Fatalf("got %d %+v", resp.StatusCode, d)
	}
}

// TestUpstreamUnknownCA shows the 502 a client gets and the log line an
// operator gets when the upstream's certificate is not from the trust store.
func TestUpstreamUnknownCA(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p)
	cfg := strings.Replace(storyAConfig(p, b, ""), "internal: { pem: "+p.caFile, "internal: { pem: "+p.otherCAFile, 1)
	g := startGateway(t, writeConfig(t, p.dir, cfg))
	resp, err := clientFor(p).Get("https://" + g.addr + "/a/x")
	if err != nil {
		t.Fatal(err)
	}
	d := readProblem(t, resp)
	if resp.StatusCode != 502 || d.Code != problem.CodeUpstreamTLSUnknownAuthority {
		t.Fatalf("got %d %+v", resp.StatusCode, d)
	}
	for _, leak := range []string{p.otherCAFile, "apimanCA", "127.0.0.1"} {
		if strings.Contains(d.Detail, leak) {
			t.Errorf("client detail leaks %q: %s", leak, d.Detail)
		}
	}
	waitFor(t, func() bool { return strings.Contains(g.stderr.String(), `"reason":"unknown_authority"`) }, g.stderr)
	log := g.stderr.String()
	for _, want := range []string{`"hop":"gateway→upstream"`, `apimanCA`, `"fix":`, `"request_id":"` + d.RequestID} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
}

func waitFor(t *testing.T, cond func() bool, out fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within 5s; output:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestGracefulShutdown: a request in flight when SIGTERM arrives completes,
// and new connections are refused.
func TestGracefulShutdown(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p)
	b.delay = 700 * time.Millisecond
	g := startGateway(t, writeConfig(t, p.dir, storyAConfig(p, b, "")+"shutdown_grace: 5s\n"))
	res := make(chan error, 1)
	go func() {
		resp, err := clientFor(p).Get("https://" + g.addr + "/a/slow")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				err = fmt.Errorf("status %s", resp.Status)
			}
		}
		res <- err
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if err := g.stop(t); err != nil {
		t.Fatalf("exit: %v\n%s", err, g.stderr)
	}
	if err := <-res; err != nil {
		t.Fatalf("in-flight request failed during shutdown: %v", err)
	}
	if time.Since(start) > 4*time.Second {
		t.Errorf("shutdown took %s; it should end when the last request does", time.Since(start))
	}
	if _, err := clientFor(p).Get("https://" + g.addr + "/a/x"); err == nil {
		t.Error("gateway still accepts connections after shutdown")
	}
}

func TestBadConfigDoesNotStart(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, `
listeners:
  - name: public
    address: "127.0.0.1:0"
    tls:
      certificates: [{ cert: missing.crt, key: missing.key }]
apis:
  - name: a
    upstream:
      targets: [ https://127.0.0.1:1 ]
      tls: { trust: internl }
`)
	for _, cmd := range []string{"serve", "validate"} {
		out, err := exec.Command(binary, cmd, "-c", cfg).CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 {
			t.Fatalf("%s: exit = %v, want status 1\n%s", cmd, err, out)
		}
		want := cfg + `:11:14 apis[0].upstream.tls.trust: trust store "internl" is not defined (none are defined)`
		if !strings.Contains(string(out), want) {
			t.Errorf("%s output lacks\n%s\ngot:\n%s", cmd, want, out)
		}
		if strings.Contains(string(out), `"msg":"listening"`) {
			t.Errorf("%s started listening with a bad configuration", cmd)
		}
	}
}

func TestValidateReportsMissingKeyFilesWithPosition(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, `
listeners:
  - name: public
    address: "127.0.0.1:0"
    tls:
      certificates:
        - { cert: missing.crt, key: missing.key }
apis: []
`)
	out, err := exec.Command(binary, "validate", "-c", cfg).CombinedOutput()
	if err == nil {
		t.Fatalf("validate accepted a missing certificate:\n%s", out)
	}
	if !strings.Contains(string(out), cfg+":7:11 listeners[0].tls.certificates[0]:") || !strings.Contains(string(out), "missing.crt") {
		t.Errorf("output:\n%s", out)
	}
}

func TestVersionAndHelp(t *testing.T) {
	out, err := exec.Command(binary, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "portcullis ") {
		t.Errorf("version: %v %s", err, out)
	}
	out, err = exec.Command(binary, "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "serve") || !strings.Contains(string(out), "validate") {
		t.Errorf("--help: %v %s", err, out)
	}
	out, err = exec.Command(binary, "serve").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Errorf("serve without -c: %v %s", err, out)
	}
}

// waitAdmin waits until the gateway's admin listener at addr accepts
// connections: it opens after the public listeners.
func waitAdmin(t *testing.T, g *gateway, addr string) {
	t.Helper()
	waitFor(t, func() bool {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
		}
		return err == nil
	}, g.stderr)
}
