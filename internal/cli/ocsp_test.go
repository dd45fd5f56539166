package cli_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/testpki"
)

// ocspResponder is a loopback OCSP responder for one CA. It answers Good or
// Revoked for the serials it was told about, Unknown for any other, and
// counts the queries it gets per serial.
type ocspResponder struct {
	*httptest.Server
	ca *testpki.CA

	mu      sync.Mutex
	revoked map[string]bool // serial (hex) → revoked; absent → unknown
	queries map[string]int  // serial (hex) → queries received
}

func newOCSPResponder(t *testing.T, ca *testpki.CA) *ocspResponder {
	t.Helper()
	r := &ocspResponder{ca: ca, revoked: map[string]bool{}, queries: map[string]int{}}
	r.Server = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	r.Config.ErrorLog = log.New(io.Discard, "", 0)
	r.Start()
	t.Cleanup(r.Close)
	return r
}

// set records the status the responder gives for serial.
func (r *ocspResponder) set(serial *big.Int, revoked bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.revoked[serial.Text(16)] = revoked
}

func (r *ocspResponder) count(serial *big.Int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.queries[serial.Text(16)]
}

func (r *ocspResponder) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<16))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q, err := ocsp.ParseRequest(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	key := q.SerialNumber.Text(16)
	r.mu.Lock()
	r.queries[key]++
	revoked, known := r.revoked[key]
	r.mu.Unlock()

	now := time.Now()
	tmpl := ocsp.Response{
		Status:       ocsp.Unknown,
		SerialNumber: q.SerialNumber,
		ThisUpdate:   now.Add(-time.Minute),
		NextUpdate:   now.Add(time.Hour),
	}
	switch {
	case known && revoked:
		tmpl.Status = ocsp.Revoked
		tmpl.RevokedAt = now.Add(-time.Hour)
		tmpl.RevocationReason = ocsp.KeyCompromise
	case known:
		tmpl.Status = ocsp.Good
	}
	der, err := ocsp.CreateResponse(r.ca.Cert, r.ca.Cert, tmpl, r.ca.Key)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Write(der)
}

// TestOCSPThroughTheGateway runs the gateway with a trust store that checks
// client certificates with a loopback OCSP responder: a good certificate gets
// through, a revoked one is refused, the answer is cached, and once the
// responder is gone a certificate with no cached answer is refused because
// the store fails closed.
func TestOCSPThroughTheGateway(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p)
	ca := testpki.NewCA(t, "ocspCA")
	caFile := ca.WriteCA(t, p.dir, "ocsp-ca")
	certs := map[string]tls.Certificate{}
	for _, name := range []string{"good", "revoked", "late"} {
		certs[name] = ca.Issue(t, name+"-client", testpki.Client()).TLS()
	}
	responder := newOCSPResponder(t, ca)
	responder.set(certs["good"].Leaf.SerialNumber, false)
	responder.set(certs["revoked"].Leaf.SerialNumber, true)
	responder.set(certs["late"].Leaf.SerialNumber, false)

	cfg := fmt.Sprintf(`
listeners:
  - name: public
    address: "127.0.0.1:0"
    tls:
      certificates: [{ cert: %s, key: %s }]
      client_certificates: request
trust_stores:
  internal: { pem: %s }
  partners:
    pem: %s
    ocsp: { enabled: true, responder: "%s" }
    revocation_policy: fail_closed
apis:
  - name: cert-api
    match: { host: certs.example.test }
    auth: mtls
    mtls: { trust: partners, allow_anonymous: true }
    upstream:
      targets: [ %s ]
      tls: { client_certificate: { cert: %s, key: %s }, trust: internal, server_name: localhost }
`, p.gwCert, p.gwKey, p.caFile, caFile, responder.URL, b.URL, p.clientCert, p.clientKey)
	g := startGateway(t, writeConfig(t, p.dir, cfg))

	get := func(t *testing.T, name string) *http.Response {
		t.Helper()
		tc := &tls.Config{RootCAs: p.ca.Pool(), ServerName: "certs.example.test", Certificates: []tls.Certificate{certs[name]}}
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
		defer c.CloseIdleConnections()
		req, _ := http.NewRequest("GET", "https://"+g.addr+"/x", nil)
		req.Host = "certs.example.test"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET with %s: %v", name, err)
		}
		return resp
	}
	wantOK := func(t *testing.T, name string) {
		t.Helper()
		resp := get(t, name)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %s %s", name, resp.Status, body)
		}
	}
	wantProblem := func(t *testing.T, name, code string) {
		t.Helper()
		resp := get(t, name)
		if d := readProblem(t, resp); resp.StatusCode != 401 || d.Code != code {
			t.Errorf("%s: got %d %q, want 401 %q", name, resp.StatusCode, d.Code, code)
		}
	}
	serial := func(name string) *big.Int { return certs[name].Leaf.SerialNumber }

	t.Run("good certificate passes, answer cached", func(t *testing.T) {
		wantOK(t, "good")
		wantOK(t, "good")
		if n := responder.count(serial("good")); n != 1 {
			t.Errorf("two requests with the good certificate made %d OCSP queries, want 1 (cached until nextUpdate)", n)
		}
	})

	t.Run("revoked certificate refused", func(t *testing.T) {
		wantProblem(t, "revoked", problem.CodeClientCertRevoked)
		wantProblem(t, "revoked", problem.CodeClientCertRevoked)
		if n := responder.count(serial("revoked")); n != 1 {
			t.Errorf("two requests with the revoked certificate made %d OCSP queries, want 1", n)
		}
		waitFor(t, func() bool {
			log := g.stderr.String()
			return strings.Contains(log, problem.CodeClientCertRevoked) && strings.Contains(log, "revoked-client")
		}, g.stderr)
	})

	t.Run("responder down, fail_closed", func(t *testing.T) {
		responder.Close()
		wantProblem(t, "late", problem.CodeRevocationUnavailable)
		if n := responder.count(serial("late")); n != 0 {
			t.Errorf("the stopped responder answered %d queries", n)
		}
		// Cached answers keep working while the responder is away.
		wantOK(t, "good")
		wantProblem(t, "revoked", problem.CodeClientCertRevoked)
		waitFor(t, func() bool { return strings.Contains(g.stderr.String(), problem.CodeRevocationUnavailable) }, g.stderr)
	})
}
