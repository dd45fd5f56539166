package cli_test

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/testpki"
)

// collector is an OTLP/HTTP trace receiver on loopback: https with mutual
// TLS (the client certificate must chain to ca and be named clientCN) and an
// API key header. It decodes every export it accepts.
type collector struct {
	*httptest.Server
	mu       sync.Mutex
	exports  []*coltracepb.ExportTraceServiceRequest
	headers  []http.Header
	peers    []string
	rejected []string
}

func newCollector(t *testing.T, ca *testpki.CA, server *testpki.Leaf, clientCN, apiKey string) *collector {
	t.Helper()
	c := &collector{}
	c.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer := r.TLS.PeerCertificates[0].Subject.CommonName
		reject := func(status int, why string) {
			c.mu.Lock()
			c.rejected = append(c.rejected, why)
			c.mu.Unlock()
			http.Error(w, why, status)
		}
		switch {
		case r.Method != http.MethodPost || r.URL.Path != "/v1/traces":
			reject(http.StatusNotFound, r.Method+" "+r.URL.Path)
			return
		case peer != clientCN:
			reject(http.StatusForbidden, "client certificate "+peer)
			return
		case r.Header.Get("X-Api-Key") != apiKey:
			reject(http.StatusUnauthorized, "wrong or missing X-Api-Key")
			return
		case r.Header.Get("Content-Type") != "application/x-protobuf":
			reject(http.StatusUnsupportedMediaType, r.Header.Get("Content-Type"))
			return
		}
		var body io.Reader = io.LimitReader(r.Body, 8<<20)
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(body)
			if err != nil {
				reject(http.StatusBadRequest, err.Error())
				return
			}
			body = zr
		}
		data, err := io.ReadAll(body)
		var req coltracepb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(data, &req)
		}
		if err != nil {
			reject(http.StatusBadRequest, "decoding: "+err.Error())
			return
		}
		c.mu.Lock()
		c.exports = append(c.exports, &req)
		c.headers = append(c.headers, r.Header.Clone())
		c.peers = append(c.peers, peer)
		c.mu.Unlock()
		resp, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(resp)
	}))
	c.Config.ErrorLog = log.New(io.Discard, "", 0)
	c.TLS = &tls.Config{
		Certificates: []tls.Certificate{server.TLS()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool(),
	}
	c.StartTLS()
	t.Cleanup(c.Close)
	return c
}

// exportedSpan is one span as the collector received it, with its
// resource's service.name.
type exportedSpan struct {
	service string
	*tracepb.Span
}

func (c *collector) spans() []exportedSpan {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []exportedSpan
	for _, req := range c.exports {
		for _, rs := range req.GetResourceSpans() {
			service := ""
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.GetKey() == "service.name" {
					service = kv.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					out = append(out, exportedSpan{service, s})
				}
			}
		}
	}
	return out
}

// attr returns a span attribute as text ("" when absent).
func attr(s *tracepb.Span, key string) string {
	for _, kv := range s.GetAttributes() {
		if kv.GetKey() != key {
			continue
		}
		switch v := kv.GetValue(); {
		case v.GetStringValue() != "":
			return v.GetStringValue()
		default:
			return fmt.Sprint(v.GetIntValue())
		}
	}
	return ""
}

// writeP12 writes leaf as a PKCS#12 keystore protected by password.
func writeP12(t *testing.T, path string, leaf *testpki.Leaf, password string) {
	t.Helper()
	data, err := pkcs12.Modern.Encode(leaf.Key, leaf.Cert, nil, password)
	if err != nil {
		t.Fatal(err)
	}
	testpki.WriteFile(t, path, data)
}

// TestTracingExportsToCollector drives the real binary with tracing on,
// exporting over mutual TLS with an API key from the environment to a real
// OTLP/HTTP receiver, and checks the spans it receives: the server span and
// the upstream client span in one trace, the backend's traceparent naming
// the upstream span, and the error status of a failed upstream hop.
func TestTracingExportsToCollector(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p)
	otelCA := testpki.NewCA(t, "otelCA")
	col := newCollector(t,
		otelCA,
		otelCA.Issue(t, "collector", testpki.Server(), testpki.DNS("localhost"), testpki.IP("127.0.0.1")),
		"gateway-otel",
		secret("otel-key-4f1d9a7c2e"))
	otelCAFile := otelCA.WriteCA(t, p.dir, "otel-ca")
	p12 := filepath.Join(p.dir, "gateway-otel.p12")
	p12Pass := secret("p12-pass-8c3e51")
	writeP12(t, p12, otelCA.Issue(t, "gateway-otel", testpki.Client()), p12Pass)

	cfg := fmt.Sprintf(`
log: { access_log: false }
listeners:
  - name: public
    address: "127.0.0.1:0"
    tls: { certificates: [{ cert: %s, key: %s }] }
trust_stores:
  internal: { pem: %s }
  otel: { pem: %s }
apis:
  - name: api-a
    match: { path_prefix: /a }
    strip_prefix: true
    upstream:
      targets: [ %s ]
      tls: { client_certificate: { cert: %s, key: %s }, trust: internal, server_name: localhost }
  - name: api-bad
    match: { path_prefix: /bad }
    upstream:
      targets: [ %s ]
      tls: { client_certificate: { cert: %s, key: %s }, trust: internal, server_name: wrong.example.test }
tracing:
  otlp_endpoint: %s
  service_name: edge-gw
  trust: otel
  client_certificate: { keystore: { path: %s, password_env: OTEL_P12_PASS } }
  headers: { X-Scope-OrgID: gateways }
  headers_env: { X-Api-Key: OTEL_API_KEY }
  timeout: 5s
`, p.gwCert, p.gwKey, p.caFile, otelCAFile, b.URL, p.clientCert, p.clientKey, b.URL, p.clientCert, p.clientKey, col.URL, p12)
	cfgFile := writeConfig(t, p.dir, cfg)
	g := startGateway(t, cfgFile, "OTEL_API_KEY=otel-key-4f1d9a7c2e", "OTEL_P12_PASS="+p12Pass)
	c := clientFor(p)

	// The collector's client certificate is watched for expiry like every
	// other certificate in use.
	doctor := exec.Command(binary, "doctor", "certs", "-c", cfgFile)
	doctor.Env = append(os.Environ(), "OTEL_API_KEY=otel-key-4f1d9a7c2e", "OTEL_P12_PASS="+p12Pass)
	if out, err := doctor.CombinedOutput(); err != nil || !strings.Contains(string(out), "tracing collector client certificate") {
		t.Errorf("doctor certs: %v\n%s", err, out)
	}

	const clientTrace, clientSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, _ := http.NewRequest("GET", "https://"+g.addr+"/a/hello", nil)
	req.Header.Set("traceparent", "00-"+clientTrace+"-"+clientSpan+"-01")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("through the gateway: %s", resp.Status)
	}
	b.mu.Lock()
	backendTP := b.hdrs[len(b.hdrs)-1].Get("traceparent")
	b.mu.Unlock()

	resp, err = c.Get("https://" + g.addr + "/bad/x")
	if err != nil {
		t.Fatal(err)
	}
	d := readProblem(t, resp)
	if resp.StatusCode != 502 || d.Code != problem.CodeUpstreamTLSHostnameMismatch {
		t.Fatalf("failing upstream: %d %+v", resp.StatusCode, d)
	}

	// SIGTERM flushes the spans still batched.
	if err := g.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, g.stderr)
	}
	col.mu.Lock()
	rejected := append([]string(nil), col.rejected...)
	peers, headers := append([]string(nil), col.peers...), append([]http.Header(nil), col.headers...)
	col.mu.Unlock()
	if len(rejected) > 0 {
		t.Errorf("collector rejected exports: %v", rejected)
	}
	if len(peers) == 0 {
		t.Fatalf("nothing exported; gateway log:\n%s", g.stderr)
	}
	for i, h := range headers {
		if peers[i] != "gateway-otel" || h.Get("X-Scope-OrgID") != "gateways" {
			t.Errorf("export %d: client certificate %q, X-Scope-OrgID %q", i, peers[i], h.Get("X-Scope-OrgID"))
		}
	}

	byTrace := map[string][]exportedSpan{}
	for _, s := range col.spans() {
		if s.service != "edge-gw" {
			t.Errorf("span %q has service.name %q, want edge-gw", s.GetName(), s.service)
		}
		id := hex.EncodeToString(s.GetTraceId())
		byTrace[id] = append(byTrace[id], s)
	}
	if len(byTrace) != 2 {
		t.Fatalf("%d traces exported, want 2: %v", len(byTrace), byTrace)
	}
	// pair returns the server span and the upstream span of one trace.
	pair := func(spans []exportedSpan) (server, up *tracepb.Span) {
		t.Helper()
		for _, s := range spans {
			switch s.GetKind() {
			case tracepb.Span_SPAN_KIND_SERVER:
				server = s.Span
			case tracepb.Span_SPAN_KIND_CLIENT:
				up = s.Span
			}
		}
		if len(spans) != 2 || server == nil || up == nil {
			t.Fatalf("trace has %d spans, want one server and one client span: %v", len(spans), spans)
		}
		if !bytes.Equal(up.GetParentSpanId(), server.GetSpanId()) {
			t.Errorf("upstream span's parent %x is not the server span %x", up.GetParentSpanId(), server.GetSpanId())
		}
		return server, up
	}

	server, up := pair(byTrace[clientTrace])
	if got := hex.EncodeToString(server.GetParentSpanId()); got != clientSpan {
		t.Errorf("server span's parent %s, want the client's %s", got, clientSpan)
	}
	if server.GetName() != "portcullis GET" || attr(server, "portcullis.api") != "api-a" || attr(server, "http.response.status_code") != "200" {
		t.Errorf("server span %q attributes %v", server.GetName(), server.GetAttributes())
	}
	_, backendPort, _ := strings.Cut(strings.TrimPrefix(b.URL, "https://"), ":")
	if up.GetName() != "upstream GET" || attr(up, "server.address") != "127.0.0.1" || attr(up, "server.port") != backendPort ||
		attr(up, "url.scheme") != "https" || attr(up, "http.response.status_code") != "200" {
		t.Errorf("upstream span %q attributes %v", up.GetName(), up.GetAttributes())
	}
	if up.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("successful upstream span has status %v", up.GetStatus())
	}
	if want := "00-" + clientTrace + "-" + hex.EncodeToString(up.GetSpanId()) + "-01"; backendTP != want {
		t.Errorf("backend received traceparent %q, want %q (parent: the upstream span)", backendTP, want)
	}

	var failed []exportedSpan
	for id, spans := range byTrace {
		if id != clientTrace {
			failed = spans
		}
	}
	server, up = pair(failed)
	if len(server.GetParentSpanId()) != 0 {
		t.Errorf("a request without traceparent got a parent %x", server.GetParentSpanId())
	}
	if st := up.GetStatus(); st.GetCode() != tracepb.Status_STATUS_CODE_ERROR || st.GetMessage() != problem.CodeUpstreamTLSHostnameMismatch {
		t.Errorf("failed upstream span status %v, want ERROR %s", st, problem.CodeUpstreamTLSHostnameMismatch)
	}
	if attr(up, "portcullis.upstream.reason") != "hostname_mismatch" || attr(up, "error.type") != problem.CodeUpstreamTLSHostnameMismatch {
		t.Errorf("failed upstream span attributes %v", up.GetAttributes())
	}
	if server.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_ERROR || attr(server, "portcullis.problem_code") != problem.CodeUpstreamTLSHostnameMismatch {
		t.Errorf("server span of the failed request: status %v attributes %v", server.GetStatus(), server.GetAttributes())
	}

	logs := g.stderr.String()
	if !strings.Contains(logs, `"msg":"tracing on"`) || !strings.Contains(logs, "X-Api-Key") {
		t.Errorf("no tracing-on line naming the headers:\n%s", logs)
	}
	for _, s := range []string{"otel-key-4f1d9a7c2e", p12Pass} {
		if strings.Contains(logs, s) {
			t.Errorf("a secret reached the log:\n%s", logs)
		}
	}
}

// TestTracingCollectorProblemsFailValidate: a collector setting that
// cannot be used stops validate and serve, naming its key path and never
// the secret.
func TestTracingCollectorProblemsFailValidate(t *testing.T) {
	p := newPKI(t)
	base := fmt.Sprintf(`
listeners:
  - name: public
    address: "127.0.0.1:0"
    tls: { certificates: [{ cert: %s, key: %s }] }
trust_stores:
  internal: { pem: %s }
apis:
  - name: a
    upstream: { targets: [ "https://127.0.0.1:1" ], tls: { trust: internal } }
tracing:
  otlp_endpoint: "https://127.0.0.1:1"
`, p.gwCert, p.gwKey, p.caFile)
	const unset = "PORTCULLIS_TEST_OTEL_KEY_UNSET"
	os.Unsetenv(unset)
	for _, c := range []struct {
		name, extra, want string
		env               []string
	}{
		{"unknown trust store", "  trust: colector\n",
			`:13:3 tracing.trust: trust store "colector" is not defined`, nil},
		{"missing client certificate", "  client_certificate: { cert: nothere.crt, key: nothere.key }\n",
			":13:3 tracing.client_certificate: ", nil},
		{"keystore password variable unset", "  client_certificate: { keystore: { path: gw.p12, password_env: " + unset + " } }\n",
			":13:51 tracing.client_certificate.keystore.password_env: ", nil},
		{"header variable unset", "  headers_env: { X-Api-Key: " + unset + " }\n",
			":13:18 tracing.headers_env.X-Api-Key: environment variable " + unset + " is not set", nil},
		{"header variable with a line break", "  headers_env: { X-Api-Key: OTEL_BROKEN_KEY }\n",
			":13:18 tracing.headers_env.X-Api-Key: environment variable OTEL_BROKEN_KEY holds a line break", []string{"OTEL_BROKEN_KEY=" + secret("brk-7d2a61\nInjected: 1")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := writeConfig(t, t.TempDir(), base+c.extra)
			for _, cmd := range []string{"validate", "serve"} {
				run := exec.Command(binary, cmd, "-c", cfg)
				run.Env = append(os.Environ(), c.env...)
				out, err := run.CombinedOutput()
				ee, ok := err.(*exec.ExitError)
				if !ok || ee.ExitCode() != 1 {
					t.Fatalf("%s: exit = %v, want status 1\n%s", cmd, err, out)
				}
				if !strings.Contains(string(out), cfg+c.want) {
					t.Errorf("%s output lacks %q:\n%s", cmd, cfg+c.want, out)
				}
				if strings.Contains(string(out), "brk-7d2a61") || strings.Contains(string(out), `"msg":"listening"`) {
					t.Errorf("%s leaked the secret or started:\n%s", cmd, out)
				}
			}
		})
	}
}

// TestTracingSettingsApplyAtRestart: a reload that keeps the tracing block
// says nothing about tracing; one that changes any collector setting is
// applied for everything else and warns that tracing keeps its settings
// until the next start.
func TestTracingSettingsApplyAtRestart(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p)
	tracing := func(timeout string) string {
		return "tracing:\n  otlp_endpoint: \"https://127.0.0.1:1\"\n  headers_env: { X-Api-Key: OTEL_RELOAD_KEY }\n  timeout: " + timeout + "\n"
	}
	cfgFile := writeConfig(t, p.dir, storyAConfig(p, b, tracing("5s")))
	g := startGateway(t, cfgFile, "OTEL_RELOAD_KEY="+secret("reload-key-5e0b2c"))
	reloads := func() int { return strings.Count(g.stderr.String(), `"msg":"configuration reloaded"`) }

	g.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return reloads() == 1 }, g.stderr)
	if strings.Contains(g.stderr.String(), "tracing settings changed") {
		t.Fatalf("an unchanged tracing block was reported as changed:\n%s", g.stderr)
	}
	writeConfig(t, p.dir, storyAConfig(p, b, tracing("6s")))
	g.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Contains(g.stderr.String(), "tracing settings changed") }, g.stderr)
	if err := g.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, g.stderr)
	}
}
