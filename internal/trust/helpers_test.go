package trust_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/portcullis/portcullis/internal/testpki"
	"github.com/portcullis/portcullis/internal/trust"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 10 * time.Second

// testClient keeps CRL and OCSP fetches in tests short and off the default
// client.
func testClient() *http.Client {
	return &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{}}
}

// makeCRL signs a PEM CRL by ca listing revoked.
func makeCRL(t testing.TB, ca *testpki.CA, number int64, thisUpdate, nextUpdate time.Time, revoked ...x509.RevocationListEntry) []byte {
	t.Helper()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(number),
		ThisUpdate:                thisUpdate,
		NextUpdate:                nextUpdate,
		RevokedCertificateEntries: revoked,
	}, ca.Cert, ca.Key)
	if err != nil {
		t.Fatalf("creating CRL: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// freshCRL is a CRL valid from an hour ago for a day.
func freshCRL(t testing.TB, ca *testpki.CA, number int64, revoked ...x509.RevocationListEntry) []byte {
	t.Helper()
	now := time.Now()
	return makeCRL(t, ca, number, now.Add(-time.Hour), now.Add(24*time.Hour), revoked...)
}

func revokedEntry(c *x509.Certificate, reason int) x509.RevocationListEntry {
	return x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: time.Now().Add(-time.Minute).UTC().Truncate(time.Second), ReasonCode: reason}
}

func writeCRL(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	testpki.WriteFile(t, p, data)
	return p
}

// issueCustom issues a leaf from ca whose template mutate may change, for
// extensions testpki does not offer (AIA, OCSP signing).
func issueCustom(t testing.TB, ca *testpki.CA, cn string, mutate func(*x509.Certificate)) *testpki.Leaf {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 100))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	if mutate != nil {
		mutate(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatalf("issuing %q: %v", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	var chain []*x509.Certificate
	if !bytes.Equal(ca.Cert.RawSubject, ca.Cert.RawIssuer) {
		chain = append([]*x509.Certificate{ca.Cert}, ca.Chain...)
	}
	return &testpki.Leaf{Cert: cert, Key: key, Chain: chain}
}

// presented is what a peer sends: the leaf and its intermediates.
func presented(l *testpki.Leaf) []*x509.Certificate {
	return append([]*x509.Certificate{l.Cert}, l.Chain...)
}

func asTrustError(t *testing.T, err error) *trust.Error {
	t.Helper()
	var te *trust.Error
	if !errors.As(err, &te) {
		t.Fatalf("error %v (%T) is not a *trust.Error", err, err)
	}
	return te
}

func wantReason(t *testing.T, err error, want trust.Reason, detail ...string) *trust.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("Verify succeeded; want reason %s", want)
	}
	te := asTrustError(t, err)
	if te.Reason != want {
		t.Fatalf("reason = %s, want %s (error: %v)", te.Reason, want, err)
	}
	for _, d := range detail {
		if !strings.Contains(te.Detail, d) {
			t.Errorf("detail %q does not mention %q", te.Detail, d)
		}
	}
	return te
}

// eventually polls cond until it holds or the test timeout passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// crlServer serves whatever CRL was last published; when down it answers
// 503, as a CA's web server in trouble would.
type crlServer struct {
	srv  *httptest.Server
	crl  atomic.Pointer[[]byte]
	down atomic.Bool
	hits atomic.Int64
}

func newCRLServer(t *testing.T, initial []byte) *crlServer {
	t.Helper()
	c := &crlServer{}
	c.publish(initial)
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.hits.Add(1)
		if c.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/pkix-crl")
		_, _ = w.Write(*c.crl.Load())
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *crlServer) publish(data []byte) { c.crl.Store(&data) }

// ocspResponder is a real OCSP responder for one CA, answering from a table
// of serial → status (unknown when absent).
type ocspResponder struct {
	ca         *testpki.CA
	signer     *x509.Certificate // nil: the CA signs
	signerKey  crypto.Signer
	nextUpdate time.Duration
	hits       atomic.Int64
	// gate, when set, holds every request until it is closed.
	gate chan struct{}

	mu     sync.Mutex
	status map[string]int
	srv    *httptest.Server
}

// newOCSPResponder starts a responder for ca; configure, if given, runs
// before the server starts so that the handler reads settled fields.
func newOCSPResponder(t *testing.T, ca *testpki.CA, configure ...func(*ocspResponder)) *ocspResponder {
	t.Helper()
	r := &ocspResponder{ca: ca, nextUpdate: time.Hour, status: map[string]int{}}
	for _, f := range configure {
		f(r)
	}
	r.srv = httptest.NewServer(r)
	t.Cleanup(r.srv.Close)
	return r
}

func (r *ocspResponder) set(c *x509.Certificate, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status[c.SerialNumber.String()] = status
}

func (r *ocspResponder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.hits.Add(1)
	if r.gate != nil {
		<-r.gate
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q, err := ocsp.ParseRequest(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	st, ok := r.status[q.SerialNumber.String()]
	r.mu.Unlock()
	if !ok {
		st = ocsp.Unknown
	}
	now := time.Now()
	tmpl := ocsp.Response{
		Status:       st,
		SerialNumber: q.SerialNumber,
		ThisUpdate:   now.Add(-time.Minute),
		NextUpdate:   now.Add(r.nextUpdate),
	}
	if st == ocsp.Revoked {
		tmpl.RevokedAt = now.Add(-time.Hour)
		tmpl.RevocationReason = ocsp.KeyCompromise
	}
	signer, key := r.ca.Cert, r.ca.Key
	if r.signer != nil {
		signer, key = r.signer, r.signerKey
		tmpl.Certificate = r.signer
	}
	der, err := ocsp.CreateResponse(r.ca.Cert, signer, tmpl, key)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	_, _ = w.Write(der)
}

// syncBuffer is a log sink safe for the refresher goroutines.
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

func testLogger(b *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func mustSet(t testing.TB, name string, anchors []*x509.Certificate, rev *trust.RevocationOptions) *trust.Set {
	t.Helper()
	s, err := trust.NewSet(name, anchors, rev)
	if err != nil {
		t.Fatalf("NewSet: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}
