package auth

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/testpki"
	"github.com/portcullis/portcullis/internal/trust"
)

// tlsRequest returns a request as the server sees it after a handshake in
// which the client presented certs (leaf first).
func tlsRequest(certs ...*x509.Certificate) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "https://api.example.com/v1/things", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: certs}
	return r
}

// presented is what a client sends: the leaf and its intermediates.
func presented(l *testpki.Leaf) []*x509.Certificate {
	return append([]*x509.Certificate{l.Cert}, l.Chain...)
}

// newSet builds a real trust set, closed when the test ends.
func newSet(t testing.TB, name string, rev *trust.RevocationOptions, anchors ...*x509.Certificate) *trust.Set {
	t.Helper()
	s, err := trust.NewSet(name, anchors, rev)
	if err != nil {
		t.Fatalf("trust.NewSet(%q): %v", name, err)
	}
	t.Cleanup(s.Close)
	return s
}

// writeCRL writes a CRL signed by ca revoking the given serials and
// returns its path.
func writeCRL(t testing.TB, ca *testpki.CA, serials ...*big.Int) string {
	t.Helper()
	tmpl := &x509.RevocationList{
		Number:     big.NewInt(1),
		ThisUpdate: time.Now().Add(-time.Hour),
		NextUpdate: time.Now().Add(24 * time.Hour),
	}
	for _, s := range serials {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert, ca.Key)
	if err != nil {
		t.Fatalf("creating CRL: %v", err)
	}
	p := filepath.Join(t.TempDir(), "ca.crl")
	testpki.WriteFile(t, p, der)
	return p
}

// fakeSet is a Verifier whose answer is fixed: it returns chain, or an
// error with reason when reason is set.
type fakeSet struct {
	name   string
	reason trust.Reason
	err    error
}

func (f fakeSet) Name() string { return f.name }

func (f fakeSet) Verify(chain []*x509.Certificate, _ x509.ExtKeyUsage, _ time.Time) ([]*x509.Certificate, error) {
	if f.err != nil {
		return nil, f.err
	}
	if f.reason != "" {
		return nil, &trust.Error{Reason: f.reason, Set: f.name, Detail: "fake " + string(f.reason)}
	}
	return chain, nil
}

// asProblemT asserts err is a *problem.Error.
func asProblemT(t *testing.T, err error) *problem.Error {
	t.Helper()
	var pe *problem.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *problem.Error", err, err)
	}
	return pe
}

// logValue returns the value logged under key, or "".
func logValue(e *problem.Error, key string) string {
	for i := 0; i+1 < len(e.Log); i += 2 {
		if e.Log[i] == key {
			s, _ := e.Log[i+1].(string)
			return s
		}
	}
	return ""
}

// checkClientSafe fails when the client-visible detail leaks a name or
// fingerprint of cert.
func checkClientSafe(t *testing.T, e *problem.Error, cert *x509.Certificate) {
	t.Helper()
	if cert == nil {
		return
	}
	for _, secret := range []string{cert.Subject.CommonName, cert.Issuer.CommonName, Fingerprint(cert)[:16], cert.Subject.String()} {
		if secret != "" && strings.Contains(e.Detail, secret) {
			t.Errorf("client detail %q leaks %q", e.Detail, secret)
		}
	}
}
