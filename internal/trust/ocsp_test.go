package trust_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/portcullis/portcullis/internal/testpki"
	"github.com/portcullis/portcullis/internal/trust"
)

// ocspSet builds a set that checks OCSP at the given responder, or at the
// leaf's AIA URL when responder is empty.
func ocspSet(t *testing.T, ca *testpki.CA, responder string, failOpen bool) *trust.Set {
	t.Helper()
	return mustSet(t, "ocsp", []*x509.Certificate{ca.Cert}, &trust.RevocationOptions{
		OCSP: true, OCSPResponder: responder, FailOpen: failOpen, HTTPClient: testClient(),
	})
}

func TestOCSPStatuses(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "OCSP Root")
	r := newOCSPResponder(t, ca)
	good := ca.Issue(t, "good", testpki.Client())
	revoked := ca.Issue(t, "revoked", testpki.Client())
	unknown := ca.Issue(t, "unknown", testpki.Client())
	r.set(good.Cert, ocsp.Good)
	r.set(revoked.Cert, ocsp.Revoked)

	tests := []struct {
		name       string
		leaf       *testpki.Leaf
		failOpen   bool
		want       trust.Reason
		wantDetail []string
	}{
		{name: "good", leaf: good},
		{name: "revoked", leaf: revoked, want: trust.ReasonRevoked, wantDetail: []string{"OCSP responder " + r.srv.URL, "keyCompromise", revoked.Cert.SerialNumber.Text(16)}},
		{name: "revoked even when failing open", leaf: revoked, failOpen: true, want: trust.ReasonRevoked},
		{name: "unknown fails closed", leaf: unknown, want: trust.ReasonRevocationUnavailable, wantDetail: []string{`answered "unknown"`}},
		{name: "unknown fails open", leaf: unknown, failOpen: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := ocspSet(t, ca, r.srv.URL, tc.failOpen)
			err := verifyErr(s, tc.leaf)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			wantReason(t, err, tc.want, tc.wantDetail...)
		})
	}
}

func TestOCSPResponderDown(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "Down Root")
	leaf := ca.Issue(t, "client", testpki.Client())
	r := newOCSPResponder(t, ca)
	r.srv.Close()

	for _, failOpen := range []bool{false, true} {
		name := "fail closed"
		if failOpen {
			name = "fail open"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := ocspSet(t, ca, r.srv.URL, failOpen)
			err := verifyErr(s, leaf)
			st := s.Stats()
			if st.OCSPQueries != 1 || st.OCSPFailures != 1 {
				t.Errorf("Stats = %+v; want one failed query", st)
			}
			if failOpen {
				if err != nil || st.RevocationUnavailableFailOpen != 1 {
					t.Fatalf("err = %v, Stats = %+v; want allowed and counted", err, st)
				}
				return
			}
			te := wantReason(t, err, trust.ReasonRevocationUnavailable, "no OCSP answer")
			if te.Err == nil {
				t.Error("the network error is not wrapped")
			}
		})
	}
}

func TestOCSPCachesUntilNextUpdate(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "Cache Root")
	leaf := ca.Issue(t, "client", testpki.Client())
	r := newOCSPResponder(t, ca, func(r *ocspResponder) { r.nextUpdate = 2 * time.Second })
	r.set(leaf.Cert, ocsp.Good)
	s := ocspSet(t, ca, r.srv.URL, false)

	for i := range 3 {
		if err := verifyErr(s, leaf); err != nil {
			t.Fatalf("Verify %d: %v", i, err)
		}
	}
	if n := r.hits.Load(); n != 1 {
		t.Fatalf("responder was asked %d times for three Verify calls, want 1", n)
	}
	// OCSP times have one-second precision, so wait past nextUpdate plus a
	// second.
	time.Sleep(3 * time.Second)
	if err := verifyErr(s, leaf); err != nil {
		t.Fatal(err)
	}
	if n := r.hits.Load(); n != 2 {
		t.Fatalf("responder was asked %d times after nextUpdate passed, want 2", n)
	}
}

func TestOCSPConcurrentMissesCoalesce(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "Coalesce Root")
	leaf := ca.Issue(t, "client", testpki.Client())
	gate := make(chan struct{})
	r := newOCSPResponder(t, ca, func(r *ocspResponder) { r.gate = gate })
	r.set(leaf.Cert, ocsp.Good)
	s := ocspSet(t, ca, r.srv.URL, false)

	const callers = 16
	errs := make(chan error, callers)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() { errs <- verifyErr(s, leaf) })
	}
	eventually(t, "the first query", func() bool { return r.hits.Load() >= 1 })
	time.Sleep(100 * time.Millisecond) // let the other callers reach the cache
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
	if n := r.hits.Load(); n != 1 {
		t.Fatalf("%d concurrent misses made %d queries, want 1", callers, n)
	}
}

func TestOCSPResponderChoice(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "AIA Root")
	fromAIA := newOCSPResponder(t, ca)
	configured := newOCSPResponder(t, ca)
	leaf := issueCustom(t, ca, "aia-client", func(c *x509.Certificate) { c.OCSPServer = []string{fromAIA.srv.URL} })
	noAIA := ca.Issue(t, "no-aia-client", testpki.Client())
	for _, r := range []*ocspResponder{fromAIA, configured} {
		r.set(leaf.Cert, ocsp.Good)
		r.set(noAIA.Cert, ocsp.Good)
	}

	t.Run("AIA responder when none is configured", func(t *testing.T) {
		s := ocspSet(t, ca, "", false)
		if err := verifyErr(s, leaf); err != nil {
			t.Fatal(err)
		}
		if fromAIA.hits.Load() != 1 || configured.hits.Load() != 0 {
			t.Fatalf("hits: AIA %d, configured %d; want 1, 0", fromAIA.hits.Load(), configured.hits.Load())
		}
	})
	t.Run("configured responder overrides AIA", func(t *testing.T) {
		s := ocspSet(t, ca, configured.srv.URL, false)
		if err := verifyErr(s, leaf); err != nil {
			t.Fatal(err)
		}
		if fromAIA.hits.Load() != 1 || configured.hits.Load() != 1 {
			t.Fatalf("hits: AIA %d, configured %d; want 1, 1", fromAIA.hits.Load(), configured.hits.Load())
		}
	})
	t.Run("no AIA and none configured fails closed", func(t *testing.T) {
		s := ocspSet(t, ca, "", false)
		wantReason(t, verifyErr(s, noAIA), trust.ReasonRevocationUnavailable, "no OCSP answer")
	})
}

// A delegated responder certificate must carry the OCSPSigning usage (RFC
// 6960 section 4.2.2.2); x/crypto/ocsp does not check that.
func TestOCSPDelegatedResponder(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "Delegating Root")
	leaf := ca.Issue(t, "client", testpki.Client())
	tests := []struct {
		name string
		eku  []x509.ExtKeyUsage
		want trust.Reason
	}{
		{name: "with OCSPSigning", eku: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}},
		{name: "without OCSPSigning", eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, want: trust.ReasonRevocationUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			tmpl := &x509.Certificate{
				SerialNumber: big.NewInt(time.Now().UnixNano()),
				Subject:      pkix.Name{CommonName: "responder"},
				NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
				KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: tc.eku,
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
			if err != nil {
				t.Fatal(err)
			}
			rc, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			r := newOCSPResponder(t, ca, func(r *ocspResponder) { r.signer, r.signerKey = rc, key })
			r.set(leaf.Cert, ocsp.Good)
			s := ocspSet(t, ca, r.srv.URL, false)
			err = verifyErr(s, leaf)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantReason(t, err, tc.want)
		})
	}
}

// OCSP and CRLs combine: a revoked answer from either wins.
func TestOCSPAndCRLTogether(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "Both Root")
	crlRevoked := ca.Issue(t, "crl-revoked", testpki.Client())
	ocspRevoked := ca.Issue(t, "ocsp-revoked", testpki.Client())
	r := newOCSPResponder(t, ca)
	r.set(crlRevoked.Cert, ocsp.Good)
	r.set(ocspRevoked.Cert, ocsp.Revoked)
	path := writeCRL(t, t.TempDir(), "ca.crl", freshCRL(t, ca, 1, revokedEntry(crlRevoked.Cert, 1)))
	s := mustSet(t, "both", []*x509.Certificate{ca.Cert}, &trust.RevocationOptions{
		CRLFiles: []string{path}, OCSP: true, OCSPResponder: r.srv.URL, HTTPClient: testClient(),
	})
	wantReason(t, verifyErr(s, crlRevoked), trust.ReasonRevoked, "CRL")
	wantReason(t, verifyErr(s, ocspRevoked), trust.ReasonRevoked, "OCSP")
}
