package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/registry"
	"github.com/portcullis/portcullis/internal/testpki"
	"github.com/portcullis/portcullis/internal/trust"
)

// A *trust.Set is what the gateway gives the admin API as its Verifier.
var _ Verifier = (*trust.Set)(nil)

// The bearer tokens of the fixture. Only their hashes are configured.
const (
	adminToken = "pc-admin-7f3c1e9a2b"
	acmeToken  = "pc-acme-4d2b8c6e1f"
)

// fixture is an admin API served over real HTTPS, with a SQLite store in a
// temporary directory and the PKI of its admins:
//   - alice: an admin, by client certificate CN;
//   - bob: tenant-admin of "acme", by client certificate CN;
//   - carol: an admin, by client certificate fingerprint;
//   - ci-bot: an admin, by bearer token adminToken;
//   - acme-ops: tenant-admin of "acme", by bearer token acmeToken.
type fixture struct {
	t       *testing.T
	store   *registry.SQLiteStore
	srv     *Server
	ts      *httptest.Server
	changes atomic.Int64
	reloads atomic.Int64
	logs    *syncBuffer
	adminCA *testpki.CA
	alice   *testpki.Leaf
	bob     *testpki.Leaf
	carol   *testpki.Leaf
}

// syncBuffer is a log sink the server's goroutines and the test may use at
// once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	store, err := registry.OpenSQLite(filepath.Join(t.TempDir(), "registry.db"))
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return newFixtureWith(t, store)
}

func newFixtureWith(t *testing.T, store registry.Store) *fixture {
	t.Helper()
	f := &fixture{t: t, logs: &syncBuffer{}}
	if s, ok := store.(*registry.SQLiteStore); ok {
		f.store = s
	}
	f.adminCA = testpki.NewCA(t, "Portcullis Admin CA")
	f.alice = f.adminCA.Issue(t, "alice", testpki.Client())
	f.bob = f.adminCA.Issue(t, "bob", testpki.Client())
	f.carol = f.adminCA.Issue(t, "carol", testpki.Client())
	set, err := trust.NewSet("admins", []*x509.Certificate{f.adminCA.Cert}, nil)
	if err != nil {
		t.Fatalf("trust.NewSet: %v", err)
	}
	t.Cleanup(set.Close)
	carolFP := sha256.Sum256(f.carol.Cert.Raw)
	f.srv, err = New(Options{
		Store: store,
		ClientCerts: []ClientCertRule{
			{Verifier: set, CN: "alice", Principal: Principal{Name: "alice", Role: RoleAdmin}},
			{Verifier: set, CN: "bob", Principal: Principal{Name: "bob", Role: RoleTenantAdmin, Tenant: "acme"}},
			{Verifier: set, Fingerprint: strings.ToUpper(hex.EncodeToString(carolFP[:])), Principal: Principal{Role: RoleAdmin}},
		},
		Tokens: []Token{
			{Hash: tokenHash(adminToken), Principal: Principal{Name: "ci-bot", Role: RoleAdmin}},
			{Hash: tokenHash(acmeToken), Principal: Principal{Name: "acme-ops", Role: RoleTenantAdmin, Tenant: "acme"}},
		},
		Logger:   slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnChange: func() { f.changes.Add(1) },
		Reload: func(context.Context) (int, error) {
			if f.reloads.Add(1) > 1 {
				return 0, errors.New(`portcullis.yaml:3:5 apis[0].plans[0]: plan "platinum" is not defined`)
			}
			return 3, nil
		},
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.ts = httptest.NewUnstartedServer(f.srv.Handler())
	// The admin listener asks for a certificate without verifying it in
	// the handshake: the admin API verifies it, so that a token holder
	// without one gets in and a bad certificate gets a problem document.
	f.ts.TLS = &tls.Config{ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
	f.ts.Config.ErrorLog = nil
	f.ts.StartTLS()
	t.Cleanup(f.ts.Close)
	return f
}

// client makes requests to the fixture with an optional client
// certificate and an optional bearer token.
type client struct {
	t     *testing.T
	base  string
	hc    *http.Client
	token string
}

func (f *fixture) client(cert *testpki.Leaf, token string) *client {
	tr := f.ts.Client().Transport.(*http.Transport).Clone()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{cert.TLS()}
	}
	f.t.Cleanup(tr.CloseIdleConnections)
	return &client{t: f.t, base: f.ts.URL, hc: &http.Client{Transport: tr}, token: token}
}

// admin is ci-bot, the admin with a token.
func (f *fixture) admin() *client { return f.client(nil, adminToken) }

// response is a finished exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends body (nil, a string sent as is, or a value encoded as JSON) with
// headers given as name, value pairs.
func (c *client) do(method, path string, body any, headers ...string) response {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			c.t.Fatalf("encoding request body: %v", err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// want fails the test unless the response has status; it returns the
// response for more checks.
func (r response) want(t *testing.T, status int, what string) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d; body: %s", what, r.status, status, r.body)
	}
	return r
}

// problem decodes a problem document and checks its code and media type.
func (r response) problem(t *testing.T, code, what string) problem.Document {
	t.Helper()
	r.want(t, problem.Catalogue[code].Status, what)
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s: Content-Type %q, want application/problem+json", what, ct)
	}
	var d problem.Document
	if err := json.Unmarshal(r.body, &d); err != nil {
		t.Fatalf("%s: decoding problem document: %v; body: %s", what, err, r.body)
	}
	if d.Code != code {
		t.Fatalf("%s: code %q, want %q (detail %q)", what, d.Code, code, d.Detail)
	}
	if d.RequestID == "" || d.RequestID != r.header.Get("X-Request-Id") {
		t.Errorf("%s: request_id %q, X-Request-Id %q", what, d.RequestID, r.header.Get("X-Request-Id"))
	}
	return d
}

// resource is the wire form of a registry resource, spec left raw.
type resource struct {
	Kind      string          `json:"kind"`
	Tenant    string          `json:"tenant"`
	Name      string          `json:"name"`
	Version   int64           `json:"version"`
	ManagedBy string          `json:"managed_by"`
	Spec      json.RawMessage `json:"spec"`
}

func (r response) resource(t *testing.T) resource {
	t.Helper()
	var res resource
	if err := json.Unmarshal(r.body, &res); err != nil {
		t.Fatalf("decoding resource: %v; body: %s", err, r.body)
	}
	return res
}

// page is a decoded listing.
type page[T any] struct {
	Items         []T    `json:"items"`
	NextPageToken string `json:"next_page_token"`
}

func decodeJSON[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decoding %T: %v; body: %s", v, err, r.body)
	}
	return v
}
