package upstream_test

import (
	"crypto/tls"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/testpki"
	"github.com/portcullis/portcullis/internal/upstream"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 10 * time.Second

// pki holds the certificates of Story A: apimanCA signs the backend's and
// the gateway's certificates; foreignCA signs impostors.
type pki struct {
	trusted, foreign *testpki.CA
	backend          *testpki.Leaf // DNS api-a.internal and IP 127.0.0.1
	gateway          *testpki.Leaf
	foreignGateway   *testpki.Leaf
	foreignBackend   *testpki.Leaf
	expiredBackend   *testpki.Leaf
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	p := &pki{trusted: testpki.NewCA(t, "apimanCA"), foreign: testpki.NewCA(t, "foreignCA")}
	p.backend = p.trusted.Issue(t, "api-a", testpki.Server(), testpki.DNS("api-a.internal"), testpki.IP("127.0.0.1"))
	p.gateway = p.trusted.Issue(t, "gateway", testpki.Client())
	p.foreignGateway = p.foreign.Issue(t, "impostor", testpki.Client())
	p.foreignBackend = p.foreign.Issue(t, "api-a", testpki.Server(), testpki.DNS("api-a.internal"), testpki.IP("127.0.0.1"))
	p.expiredBackend = p.trusted.Issue(t, "api-a", testpki.Server(), testpki.DNS("api-a.internal"), testpki.IP("127.0.0.1"), testpki.Expired())
	return p
}

// backend is a loopback API that, like Story A's backends, requires a
// client certificate from apimanCA. It records what it observed.
type backend struct {
	srv   *httptest.Server
	url   *url.URL
	conns atomic.Int32 // TCP connections accepted

	mu       sync.Mutex
	sni      []string // ServerName of each ClientHello
	clientCN string   // CN of the last verified client certificate
	proto    int      // ProtoMajor of the last request
	requests int
}

type backendOpt func(*httptest.Server)

func http2() backendOpt    { return func(s *httptest.Server) { s.EnableHTTP2 = true } }
func maxTLS12() backendOpt { return func(s *httptest.Server) { s.TLS.MaxVersion = tls.VersionTLS12 } }
func cert(l *testpki.Leaf) backendOpt {
	return func(s *httptest.Server) { s.TLS.Certificates = []tls.Certificate{l.TLS()} }
}

func newBackend(t testing.TB, p *pki, h http.HandlerFunc, opts ...backendOpt) *backend {
	t.Helper()
	b := &backend{}
	if h == nil {
		h = func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hello from api-a") }
	}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.requests++
		b.proto = r.ProtoMajor
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			b.clientCN = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		b.mu.Unlock()
		h(w, r)
	}))
	b.srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{p.backend.TLS()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.trusted.Pool(),
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			b.mu.Lock()
			b.sni = append(b.sni, hello.ServerName)
			b.mu.Unlock()
			return nil, nil
		},
	}
	b.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are the point of many tests
	b.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			b.conns.Add(1)
		}
	}
	for _, o := range opts {
		o(b.srv)
	}
	b.srv.StartTLS()
	t.Cleanup(b.srv.Close)
	u, err := url.Parse(b.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b.url = u
	return b
}

func (b *backend) seen() (sni []string, cn string, proto, requests int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.sni...), b.clientCN, b.proto, b.requests
}

// gatewayOptions are the Story A settings: the gateway's certificate, trust
// in apimanCA, hostname verification on.
func gatewayOptions(p *pki, targets ...*url.URL) upstream.Options {
	c := p.gateway.TLS()
	return upstream.Options{
		API:     "api-a",
		Targets: targets,
		TLS: upstream.TLSOptions{
			Certificate:    &c,
			RootCAs:        p.trusted.Pool(),
			TrustName:      "internal",
			TrustSubjects:  []string{p.trusted.Cert.Subject.String()},
			VerifyHostname: true,
		},
		ConnectTimeout:      2 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
	}
}

func newUpstream(t testing.TB, o upstream.Options) *upstream.Upstream {
	t.Helper()
	u, err := upstream.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(u.Close)
	return u
}

// strictWriter is a ResponseWriter that remembers whether anything was
// written, to prove Forward writes nothing when it returns an error.
type strictWriter struct {
	*httptest.ResponseRecorder
	wrote bool
}

func newStrictWriter() *strictWriter {
	return &strictWriter{ResponseRecorder: httptest.NewRecorder()}
}

func (w *strictWriter) WriteHeader(code int) {
	w.wrote = true
	w.ResponseRecorder.WriteHeader(code)
}

func (w *strictWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseRecorder.Write(b)
}

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
