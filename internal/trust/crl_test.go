package trust_test

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/testpki"
	"github.com/portcullis/portcullis/internal/trust"
)

func TestCRLFileRevokes(t *testing.T) {
	t.Parallel()
	root := testpki.NewCA(t, "CRL Root")
	inter := root.Intermediate(t, "CRL Issuing CA")
	good := inter.Issue(t, "good-client", testpki.Client())
	bad := inter.Issue(t, "stolen-client", testpki.Client())
	badInter := root.Intermediate(t, "Revoked Issuing CA")
	underBadInter := badInter.Issue(t, "under-revoked-ca", testpki.Client())

	dir := t.TempDir()
	// One file holds the CRLs of two CAs, as an operator's bundle might.
	bundle := append(freshCRL(t, inter, 1, revokedEntry(bad.Cert, 1)), freshCRL(t, root, 1, revokedEntry(badInter.Cert, 2))...)
	path := writeCRL(t, dir, "bundle.crl", bundle)

	tests := []struct {
		name       string
		anchors    []*x509.Certificate
		leaf       *testpki.Leaf
		want       trust.Reason
		wantCert   *x509.Certificate
		wantDetail []string
	}{
		{name: "certificate not on the CRL is accepted", leaf: good},
		{
			name: "revoked leaf names serial, reason, time and source", leaf: bad, want: trust.ReasonRevoked, wantCert: bad.Cert,
			wantDetail: []string{bad.Cert.SerialNumber.Text(16), "keyCompromise", "revoked at", path},
		},
		{
			name: "revoked intermediate CA refuses its leaves", leaf: underBadInter, want: trust.ReasonRevoked, wantCert: badInter.Cert,
			wantDetail: []string{"CA certificate", "Revoked Issuing CA", "cACompromise"},
		},
		{
			name: "CRL issued by an anchor that is an intermediate", anchors: []*x509.Certificate{inter.Cert}, leaf: bad,
			want: trust.ReasonRevoked, wantCert: bad.Cert,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			anchors := tc.anchors
			if anchors == nil {
				anchors = []*x509.Certificate{root.Cert}
			}
			s := mustSet(t, "crl-file", anchors, &trust.RevocationOptions{CRLFiles: []string{path}})
			_, err := s.Verify(presented(tc.leaf), x509.ExtKeyUsageClientAuth, time.Now())
			st := s.Stats()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if st.RevocationOK != 1 {
					t.Errorf("Stats.RevocationOK = %d, want 1", st.RevocationOK)
				}
				return
			}
			te := wantReason(t, err, tc.want, tc.wantDetail...)
			if !te.Cert.Equal(tc.wantCert) {
				t.Errorf("Cert = %q, want %q", te.Cert.Subject, tc.wantCert.Subject)
			}
			if st.RevocationRevoked != 1 {
				t.Errorf("Stats.RevocationRevoked = %d, want 1", st.RevocationRevoked)
			}
		})
	}
}

// A CRL from an issuer that is not an anchor (an intermediate the peer
// sends) is checked against that intermediate on first use; a CRL with the
// same issuer name from a different key must not apply.
func TestCRLFromPeerSentIntermediate(t *testing.T) {
	t.Parallel()
	root := testpki.NewCA(t, "Lazy Root")
	inter := root.Intermediate(t, "Lazy Issuing CA")
	impostor := testpki.NewCA(t, "Lazy Issuing CA")
	victim := inter.Issue(t, "victim", testpki.Client())

	tests := []struct {
		name   string
		signer *testpki.CA
		want   trust.Reason
	}{
		{name: "CRL signed by the real intermediate applies", signer: inter, want: trust.ReasonRevoked},
		{name: "CRL with the same issuer name from another key is ignored", signer: impostor},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := writeCRL(t, t.TempDir(), "inter.crl", freshCRL(t, tc.signer, 1, revokedEntry(victim.Cert, 1)))
			s := mustSet(t, "lazy", []*x509.Certificate{root.Cert}, &trust.RevocationOptions{CRLFiles: []string{path}})
			for range 2 { // the second call takes the cached-signature path
				_, err := s.Verify(presented(victim), x509.ExtKeyUsageClientAuth, time.Now())
				if tc.want == "" {
					if err != nil {
						t.Fatalf("Verify: %v", err)
					}
					continue
				}
				wantReason(t, err, tc.want)
			}
		})
	}
}

func TestCRLWithBadSignatureKeepsLastGood(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "Signing Root")
	impostor := testpki.NewCA(t, "Signing Root") // same name, different key
	revoked := ca.Issue(t, "revoked-client", testpki.Client())
	other := ca.Issue(t, "other-client", testpki.Client())

	path := writeCRL(t, t.TempDir(), "ca.crl", freshCRL(t, ca, 1, revokedEntry(revoked.Cert, 1)))
	var logs syncBuffer
	s := mustSet(t, "sig", []*x509.Certificate{ca.Cert}, &trust.RevocationOptions{
		CRLFiles: []string{path}, Refresh: 20 * time.Millisecond, Logger: testLogger(&logs),
	})
	wantReason(t, verifyErr(s, revoked), trust.ReasonRevoked)

	// The forged CRL drops the revoked serial and revokes another one.
	testpki.WriteFile(t, path, freshCRL(t, impostor, 2, revokedEntry(other.Cert, 1)))
	s.Start()
	eventually(t, "a failed refresh", func() bool { return s.Stats().CRLRefreshFailed > 0 })

	wantReason(t, verifyErr(s, revoked), trust.ReasonRevoked)
	if err := verifyErr(s, other); err != nil {
		t.Fatalf("the forged CRL was used: %v", err)
	}
	st := s.Status()
	if len(st) != 1 || !st[0].Loaded || st[0].LastError == nil || !strings.Contains(st[0].LastError.Error(), "different CA") {
		t.Fatalf("Status = %+v; want the last good copy loaded and the signature error reported", st)
	}
	if !strings.Contains(logs.String(), "keeping the last good copy") {
		t.Errorf("the failed refresh was not logged; logs:\n%s", logs.String())
	}
}

func TestCRLForgedAtStartFailsClosed(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "Start Root")
	impostor := testpki.NewCA(t, "Start Root")
	leaf := ca.Issue(t, "client", testpki.Client())
	path := writeCRL(t, t.TempDir(), "ca.crl", freshCRL(t, impostor, 1))
	s := mustSet(t, "forged", []*x509.Certificate{ca.Cert}, &trust.RevocationOptions{CRLFiles: []string{path}})
	wantReason(t, verifyErr(s, leaf), trust.ReasonRevocationUnavailable, path)
	if st := s.Stats(); st.CRLRefreshFailed != 1 || st.RevocationUnavailableFailClosed != 1 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestCRLRollbackRefused(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "Rollback Root")
	leaf := ca.Issue(t, "client", testpki.Client())
	srv := newCRLServer(t, freshCRL(t, ca, 5, revokedEntry(leaf.Cert, 1)))
	s := mustSet(t, "rollback", []*x509.Certificate{ca.Cert}, &trust.RevocationOptions{
		CRLURLs: []string{srv.srv.URL}, Refresh: 20 * time.Millisecond, HTTPClient: testClient(),
	})
	wantReason(t, verifyErr(s, leaf), trust.ReasonRevoked)
	now := time.Now()
	srv.publish(makeCRL(t, ca, 4, now.Add(-2*time.Hour), now.Add(time.Hour)))
	s.Start()
	eventually(t, "a refused rollback", func() bool { return s.Stats().CRLRefreshFailed > 0 })
	wantReason(t, verifyErr(s, leaf), trust.ReasonRevoked)
	if err := s.Status()[0].LastError; err == nil || !strings.Contains(err.Error(), "roll back") {
		t.Fatalf("LastError = %v; want a rollback refusal", err)
	}
}

func TestCRLURLRefreshRevokes(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "Online Root")
	leaf := ca.Issue(t, "soon-revoked", testpki.Client())
	srv := newCRLServer(t, freshCRL(t, ca, 1))
	s := mustSet(t, "online", []*x509.Certificate{ca.Cert}, &trust.RevocationOptions{
		CRLURLs: []string{srv.srv.URL}, Refresh: 50 * time.Millisecond, HTTPClient: testClient(),
	})
	if srv.hits.Load() != 1 {
		t.Fatalf("NewSet fetched the CRL %d times, want once", srv.hits.Load())
	}
	s.Start()
	if err := verifyErr(s, leaf); err != nil {
		t.Fatalf("before revocation: %v", err)
	}

	srv.publish(freshCRL(t, ca, 2, revokedEntry(leaf.Cert, 4)))
	eventually(t, "the new CRL to take effect", func() bool { return verifyErr(s, leaf) != nil })
	wantReason(t, verifyErr(s, leaf), trust.ReasonRevoked, "superseded", srv.srv.URL)
	if st := s.Stats(); st.CRLRefreshOK < 2 || st.RevocationOK < 1 || st.RevocationRevoked < 1 {
		t.Fatalf("Stats = %+v", st)
	}
}

// The refresher also wakes at the CRL's nextUpdate when that is sooner than
// Refresh.
func TestCRLRefreshAtNextUpdate(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "Short Root")
	now := time.Now()
	srv := newCRLServer(t, makeCRL(t, ca, 1, now.Add(-time.Minute), now.Add(1500*time.Millisecond)))
	s := mustSet(t, "short", []*x509.Certificate{ca.Cert}, &trust.RevocationOptions{
		CRLURLs: []string{srv.srv.URL}, Refresh: time.Hour, HTTPClient: testClient(),
	})
	srv.publish(freshCRL(t, ca, 2))
	s.Start()
	eventually(t, "a refresh at nextUpdate", func() bool { return srv.hits.Load() >= 2 })
}

func TestCRLUnavailable(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "Flaky Root")
	leaf := ca.Issue(t, "client", testpki.Client())
	listed := ca.Issue(t, "listed", testpki.Client())
	now := time.Now()
	staleCRL := makeCRL(t, ca, 1, now.Add(-2*time.Hour), now.Add(-time.Minute), revokedEntry(listed.Cert, 1))

	tests := []struct {
		name       string
		initial    []byte // nil: the server is down from the start
		failOpen   bool
		want       trust.Reason
		wantDetail string
	}{
		{name: "stale CRL, server down, fail closed", initial: staleCRL, want: trust.ReasonRevocationUnavailable, wantDetail: "passed its nextUpdate"},
		{name: "stale CRL, server down, fail open", initial: staleCRL, failOpen: true},
		{name: "never loaded, fail closed", want: trust.ReasonRevocationUnavailable, wantDetail: "no CRL could be loaded"},
		{name: "never loaded, fail open", failOpen: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newCRLServer(t, tc.initial)
			srv.down.Store(tc.initial == nil)
			var logs syncBuffer
			s := mustSet(t, "flaky", []*x509.Certificate{ca.Cert}, &trust.RevocationOptions{
				CRLURLs: []string{srv.srv.URL}, Refresh: 20 * time.Millisecond, FailOpen: tc.failOpen,
				HTTPClient: testClient(), Logger: testLogger(&logs),
			})
			srv.down.Store(true)
			s.Start()
			eventually(t, "a failed refresh", func() bool { return s.Stats().CRLRefreshFailed > 0 })

			err := verifyErr(s, leaf)
			st := s.Stats()
			if tc.failOpen {
				if err != nil {
					t.Fatalf("fail open refused: %v", err)
				}
				if st.RevocationUnavailableFailOpen != 1 || st.RevocationUnavailableFailClosed != 0 {
					t.Fatalf("Stats = %+v; want one fail-open event", st)
				}
				if !strings.Contains(logs.String(), "fails open") {
					t.Errorf("the fail-open event was not logged; logs:\n%s", logs.String())
				}
			} else {
				te := wantReason(t, err, tc.want, tc.wantDetail, "fails closed")
				if !te.Cert.Equal(leaf.Cert) {
					t.Errorf("Cert = %q", te.Cert.Subject)
				}
				if st.RevocationUnavailableFailClosed != 1 || st.RevocationUnavailableFailOpen != 0 {
					t.Fatalf("Stats = %+v; want one fail-closed event", st)
				}
			}
			// A serial listed on a stale CRL stays revoked: revocation is permanent.
			if tc.initial != nil {
				wantReason(t, verifyErr(s, listed), trust.ReasonRevoked)
			}
		})
	}
}

func TestCRLRefusedKinds(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "Kinds Root")
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{name: "not a CRL", data: []byte("hello"), want: "parsing"},
		{name: "PEM without CRL blocks", data: testpki.CertsPEM(ca.Cert), want: "no CRL found"},
		{name: "empty file", data: nil, want: "no CRL found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := writeCRL(t, t.TempDir(), "x.crl", tc.data)
			s := mustSet(t, "kinds", []*x509.Certificate{ca.Cert}, &trust.RevocationOptions{CRLFiles: []string{path}})
			st := s.Status()
			if st[0].Loaded || st[0].LastError == nil || !strings.Contains(st[0].LastError.Error(), tc.want) {
				t.Fatalf("Status = %+v; want not loaded with an error mentioning %q", st[0], tc.want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		path := t.TempDir() + "/absent.crl"
		s := mustSet(t, "kinds", []*x509.Certificate{ca.Cert}, &trust.RevocationOptions{CRLFiles: []string{path}})
		if err := s.Status()[0].LastError; !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("LastError = %v; want a not-exist error", err)
		}
	})
}

func verifyErr(s *trust.Set, l *testpki.Leaf) error {
	_, err := s.Verify(presented(l), x509.ExtKeyUsageClientAuth, time.Now())
	return err
}

func TestCRLExtensions(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "Extensions Root")
	leaf := ca.Issue(t, "client", testpki.Client())
	idp := asn1.ObjectIdentifier{2, 5, 29, 28}
	tests := []struct {
		name       string
		ext        pkix.Extension
		wantLoaded bool
		wantErr    string
	}{
		{name: "IDP for user certificates only is usable", ext: pkix.Extension{Id: idp, Critical: true, Value: []byte{0x30, 0x03, 0x81, 0x01, 0xff}}, wantLoaded: true},
		{name: "IDP limited to some reasons is refused", ext: pkix.Extension{Id: idp, Critical: true, Value: []byte{0x30, 0x04, 0x83, 0x02, 0x07, 0x80}}, wantErr: "some revocation reasons"},
		{name: "indirect CRL is refused", ext: pkix.Extension{Id: idp, Critical: true, Value: []byte{0x30, 0x03, 0x84, 0x01, 0xff}}, wantErr: "indirect"},
		{name: "delta CRL is refused", ext: pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 27}, Critical: true, Value: []byte{0x02, 0x01, 0x01}}, wantErr: "delta CRL"},
		{name: "unknown critical extension is refused", ext: pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Critical: true, Value: []byte{0x05, 0x00}}, wantErr: "unsupported critical extension"},
		{name: "unknown non-critical extension is ignored", ext: pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: []byte{0x05, 0x00}}, wantLoaded: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			now := time.Now()
			der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
				Number: big.NewInt(1), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(time.Hour),
				ExtraExtensions: []pkix.Extension{tc.ext},
			}, ca.Cert, ca.Key)
			if err != nil {
				t.Fatal(err)
			}
			path := writeCRL(t, t.TempDir(), "ext.crl", der) // DER, not PEM
			s := mustSet(t, "ext", []*x509.Certificate{ca.Cert}, &trust.RevocationOptions{CRLFiles: []string{path}})
			st := s.Status()[0]
			if st.Loaded != tc.wantLoaded {
				t.Fatalf("Loaded = %v, want %v (error: %v)", st.Loaded, tc.wantLoaded, st.LastError)
			}
			if tc.wantLoaded {
				if err := verifyErr(s, leaf); err != nil {
					t.Fatal(err)
				}
				return
			}
			if st.LastError == nil || !strings.Contains(st.LastError.Error(), tc.wantErr) {
				t.Fatalf("LastError = %v; want it to mention %q", st.LastError, tc.wantErr)
			}
		})
	}
}
