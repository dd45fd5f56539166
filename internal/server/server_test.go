package server

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/snapshot"
	"github.com/portcullis/portcullis/internal/testpki"
)

// fixture is an in-process gateway in front of a loopback backend that
// requires the gateway's client certificate, as in Story A.
type fixture struct {
	srv     *Server
	h       *handler
	backend *httptest.Server
	client  *http.Client // straight to the backend, with the gateway's certificate
}

func newFixture(tb testing.TB, accessLog bool) *fixture {
	tb.Helper()
	return newFixtureLog(tb, fmt.Sprintf("{ access_log: %v }", accessLog))
}

// newFixtureLog is newFixture with logYAML as the log section.
func newFixtureLog(tb testing.TB, logYAML string) *fixture {
	tb.Helper()
	dir := tb.TempDir()
	ca := testpki.NewCA(tb, "apimanCA")
	be := ca.Issue(tb, "backend", testpki.Server(), testpki.DNS("localhost"))
	gwc := ca.Issue(tb, "gateway", testpki.Client())
	lis := ca.Issue(tb, "listener", testpki.Server(), testpki.DNS("localhost"))
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Backend-Peer", r.TLS.PeerCertificates[0].Subject.CommonName)
		io.WriteString(w, "hello from backend!")
	}))
	backend.TLS = &tls.Config{Certificates: []tls.Certificate{be.TLS()}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()}
	backend.Config.ErrorLog = log.New(io.Discard, "", 0)
	backend.StartTLS()
	tb.Cleanup(backend.Close)

	caFile := ca.WriteCA(tb, dir, "ca")
	gc, gk := gwc.WriteFiles(tb, dir, "gw")
	lc, lk := lis.WriteFiles(tb, dir, "lis")
	yaml := fmt.Sprintf(`
log: %s
listeners:
  - name: public
    address: "127.0.0.1:0"
    tls: { certificates: [{ cert: %s, key: %s }] }
trust_stores:
  internal: { pem: %s }
apis:
  - name: other
    match: { path_prefix: /other }
    upstream: { targets: [ %[5]s ], tls: { trust: internal, server_name: localhost } }
  - name: api-a
    match: { path_prefix: /a }
    strip_prefix: true
    upstream:
      targets: [ %[5]s ]
      tls:
        client_certificate: { cert: %[6]s, key: %[7]s }
        trust: internal
        server_name: localhost
`, logYAML, lc, lk, caFile, backend.URL, gc, gk)
	d, probs := config.Parse("bench.yaml", []byte(yaml))
	if len(probs) > 0 {
		tb.Fatal(probs)
	}
	f := config.WithDefaults(d.File)
	if ps := config.Validate(f); len(ps) > 0 {
		tb.Fatal(ps)
	}
	snap, probs := snapshot.Compile(f, snapshot.Options{})
	if len(probs) > 0 {
		tb.Fatal(probs)
	}
	quiet := slog.New(slog.DiscardHandler)
	// The access log really encodes its JSON line; only the bytes are dropped.
	srv := New(quiet, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	srv.holder.Store(snap)
	tb.Cleanup(snap.Close)
	return &fixture{
		srv:     srv,
		h:       &handler{s: srv, name: "public"},
		backend: backend,
		client: &http.Client{Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{gwc.TLS()}},
			MaxIdleConnsPerHost: 64,
		}},
	}
}

func TestHandlerForwardsAndLogs(t *testing.T) {
	f := newFixture(t, true)
	var logged strings.Builder
	f.srv.access = slog.New(slog.NewJSONHandler(&logged, nil))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "https://localhost/a/hello?token=secret", nil)
	f.h.ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Body.String() != "hello from backend!" || rec.Header().Get("X-Backend-Peer") != "gateway" {
		t.Fatalf("got %d %q peer %q", rec.Code, rec.Body, rec.Header().Get("X-Backend-Peer"))
	}
	if !strings.Contains(logged.String(), `"path":"/a/hello"`) || strings.Contains(logged.String(), "secret") {
		t.Errorf("access log must show the client's path and never the query: %s", logged.String())
	}
}

// BenchmarkServeHTTP measures the gateway's request path in process: snapshot
// load, routing, prefix stripping, forwarding over a pooled mutual-TLS
// connection to a loopback backend, response copy, and (sub-benchmark) the
// JSON access log. The backend's and the in-process client's costs are
// included; BenchmarkDirect measures them alone, so the difference is the
// gateway's.
//
// The last variant turns on every access-log option (two listed headers, one
// of them a credential, and all four redactions) and sends those headers, to
// show what the options cost; the others must not pay for them.
func BenchmarkServeHTTP(b *testing.B) {
	for _, v := range []struct{ name, log string }{
		{"access_log=false", "{ access_log: false }"},
		{"access_log=true", "{ access_log: true }"},
		{"access_log=headers+redact", "{ access_log: true, access_log_headers: [User-Agent, Authorization], redact: [client_address, client_cert_subject, path, host] }"},
	} {
		b.Run(v.name, func(b *testing.B) {
			f := newFixtureLog(b, v.log)
			headers := strings.Contains(v.log, "access_log_headers")
			b.Run("serial", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					serveOnce(b, f, headers)
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						serveOnce(b, f, headers)
					}
				})
			})
		})
	}
}

type discardWriter struct {
	h    http.Header
	code int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }

func serveOnce(b *testing.B, f *fixture, headers bool) {
	req, _ := http.NewRequest("GET", "https://localhost/a/hello", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Host = "localhost"
	if headers {
		req.Header["User-Agent"] = benchUserAgent
		req.Header["Authorization"] = benchAuthorization
	}
	w := &discardWriter{h: http.Header{}}
	f.h.ServeHTTP(w, req)
	if w.code != 200 {
		b.Fatalf("status %d", w.code)
	}
}

var (
	benchUserAgent     = []string{"bench/1.0"}
	benchAuthorization = []string{"Bearer not-a-real-token"}
)

// BenchmarkDirect is the same request sent straight to the backend with the
// gateway's certificate: the floor BenchmarkServeHTTP is compared with.
func BenchmarkDirect(b *testing.B) {
	f := newFixture(b, false)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := f.client.Get(f.backend.URL + "/hello")
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
