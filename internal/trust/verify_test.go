package trust_test

import (
	"bytes"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/testpki"
	"github.com/portcullis/portcullis/internal/trust"
)

func TestVerifyEndsAtAnyAnchor(t *testing.T) {
	t.Parallel()
	root := testpki.NewCA(t, "Anchor Root")
	inter := root.Intermediate(t, "Issuing CA")
	leafFromRoot := root.Issue(t, "direct", testpki.Client())
	leafFromInter := inter.Issue(t, "via-intermediate", testpki.Client())
	if bytes.Equal(inter.Cert.RawSubject, inter.Cert.RawIssuer) {
		t.Fatal("the intermediate must not be self-signed for this test to mean anything")
	}

	tests := []struct {
		name       string
		anchors    []*x509.Certificate
		chain      []*x509.Certificate
		wantAnchor *x509.Certificate
		wantLen    int
	}{
		{
			name:    "leaf issued directly by the root anchor",
			anchors: []*x509.Certificate{root.Cert}, chain: []*x509.Certificate{leafFromRoot.Cert},
			wantAnchor: root.Cert, wantLen: 2,
		},
		{
			name:    "root anchor with the intermediate sent by the peer",
			anchors: []*x509.Certificate{root.Cert}, chain: presented(leafFromInter),
			wantAnchor: root.Cert, wantLen: 3,
		},
		{
			name:    "intermediate alone is an anchor, trusted without its root",
			anchors: []*x509.Certificate{inter.Cert}, chain: []*x509.Certificate{leafFromInter.Cert},
			wantAnchor: inter.Cert, wantLen: 2,
		},
		{
			name:    "intermediate anchor while the peer also sends the intermediate",
			anchors: []*x509.Certificate{inter.Cert}, chain: presented(leafFromInter),
			wantAnchor: inter.Cert, wantLen: 2,
		},
		{
			name:    "peer sends intermediates in the wrong order with an unrelated extra",
			anchors: []*x509.Certificate{root.Cert}, chain: []*x509.Certificate{leafFromInter.Cert, testpki.NewCA(t, "Noise").Cert, inter.Cert},
			wantAnchor: root.Cert, wantLen: 3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := mustSet(t, "partners", tc.anchors, nil)
			got, err := s.Verify(tc.chain, x509.ExtKeyUsageClientAuth, time.Now())
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if len(got) != tc.wantLen {
				t.Fatalf("verified chain has %d certificates, want %d", len(got), tc.wantLen)
			}
			if got[0] != tc.chain[0] || !got[len(got)-1].Equal(tc.wantAnchor) {
				t.Fatalf("verified chain runs %q … %q, want the leaf … %q",
					got[0].Subject, got[len(got)-1].Subject, tc.wantAnchor.Subject)
			}
		})
	}
}

func TestVerifyReasons(t *testing.T) {
	t.Parallel()
	root := testpki.NewCA(t, "Partner Root")
	inter := root.Intermediate(t, "Partner Issuing CA")
	other := testpki.NewCA(t, "Someone Else CA")
	expiredInter := root.Intermediate(t, "Expired Issuing CA", testpki.Expired())
	futureInter := root.Intermediate(t, "Future Issuing CA", testpki.NotYetValid())
	expiredRoot := testpki.NewCA(t, "Expired Root", testpki.Expired())

	expiredLeaf := inter.Issue(t, "expired-client", testpki.Client(), testpki.Expired())
	futureLeaf := inter.Issue(t, "future-client", testpki.Client(), testpki.NotYetValid())
	serverOnly := inter.Issue(t, "server-only", testpki.Server())
	clientOnly := inter.Issue(t, "client-only", testpki.Client())
	foreign := other.Issue(t, "foreign-client", testpki.Client())
	underExpired := expiredInter.Issue(t, "under-expired-ca", testpki.Client())
	underFuture := futureInter.Issue(t, "under-future-ca", testpki.Client())
	underExpiredRoot := expiredRoot.Issue(t, "under-expired-root", testpki.Client(),
		testpki.Validity(time.Now().Add(-72*time.Hour), time.Now().Add(time.Hour)))

	tests := []struct {
		name       string
		anchors    []*x509.Certificate
		chain      []*x509.Certificate
		usage      x509.ExtKeyUsage
		want       trust.Reason // empty: accepted
		wantCert   *x509.Certificate
		wantDetail []string
	}{
		{name: "valid client certificate for clientAuth", chain: presented(clientOnly), usage: x509.ExtKeyUsageClientAuth},
		{name: "server-only certificate accepted when no usage is asked", chain: presented(serverOnly), usage: x509.ExtKeyUsageAny},
		{
			name: "expired leaf", chain: presented(expiredLeaf), usage: x509.ExtKeyUsageClientAuth,
			want: trust.ReasonExpired, wantCert: expiredLeaf.Cert, wantDetail: []string{"expired-client", "expired at"},
		},
		{
			name: "leaf not yet valid", chain: presented(futureLeaf), usage: x509.ExtKeyUsageClientAuth,
			want: trust.ReasonNotYetValid, wantCert: futureLeaf.Cert, wantDetail: []string{"future-client", "not valid until"},
		},
		{
			name: "expired intermediate sent by the peer", chain: presented(underExpired), usage: x509.ExtKeyUsageClientAuth,
			want: trust.ReasonExpired, wantCert: expiredInter.Cert, wantDetail: []string{"CA certificate", "Expired Issuing CA"},
		},
		{
			name: "intermediate not yet valid", chain: presented(underFuture), usage: x509.ExtKeyUsageClientAuth,
			want: trust.ReasonNotYetValid, wantCert: futureInter.Cert, wantDetail: []string{"Future Issuing CA"},
		},
		{
			name: "expired anchor", anchors: []*x509.Certificate{expiredRoot.Cert}, chain: presented(underExpiredRoot), usage: x509.ExtKeyUsageClientAuth,
			want: trust.ReasonExpired, wantCert: expiredRoot.Cert, wantDetail: []string{"Expired Root"},
		},
		{
			name: "server-only certificate used for clientAuth", chain: presented(serverOnly), usage: x509.ExtKeyUsageClientAuth,
			want: trust.ReasonWrongUsage, wantCert: serverOnly.Cert, wantDetail: []string{"serverAuth", "not clientAuth"},
		},
		{
			name: "client-only certificate used for serverAuth", chain: presented(clientOnly), usage: x509.ExtKeyUsageServerAuth,
			want: trust.ReasonWrongUsage, wantCert: clientOnly.Cert, wantDetail: []string{"clientAuth", "not serverAuth"},
		},
		{
			name: "certificate from another CA", chain: presented(foreign), usage: x509.ExtKeyUsageClientAuth,
			want: trust.ReasonUntrusted, wantCert: foreign.Cert, wantDetail: []string{"Someone Else CA", "Partner Root"},
		},
		{
			name: "intermediate missing and only the root trusted", chain: []*x509.Certificate{clientOnly.Cert}, usage: x509.ExtKeyUsageClientAuth,
			want: trust.ReasonUntrusted, wantCert: clientOnly.Cert, wantDetail: []string{"Partner Issuing CA", "send its intermediate"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			anchors := tc.anchors
			if anchors == nil {
				anchors = []*x509.Certificate{root.Cert}
			}
			s := mustSet(t, "partners", anchors, nil)
			_, err := s.Verify(tc.chain, tc.usage, time.Now())
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			te := wantReason(t, err, tc.want, tc.wantDetail...)
			if te.Set != "partners" {
				t.Errorf("Set = %q, want partners", te.Set)
			}
			if te.Cert == nil || !te.Cert.Equal(tc.wantCert) {
				t.Errorf("Cert = %v, want %q", te.Cert, tc.wantCert.Subject)
			}
			if !strings.Contains(err.Error(), string(tc.want)) || !strings.Contains(err.Error(), `"partners"`) {
				t.Errorf("Error() = %q; want the set and reason in it", err)
			}
		})
	}
}

func TestVerifyEmptyChain(t *testing.T) {
	t.Parallel()
	s := mustSet(t, "partners", []*x509.Certificate{testpki.NewCA(t, "Root").Cert}, nil)
	_, err := s.Verify(nil, x509.ExtKeyUsageClientAuth, time.Now())
	wantReason(t, err, trust.ReasonUntrusted)
	if !errors.Is(err, trust.ErrNoCertificate) {
		t.Errorf("error %v does not wrap ErrNoCertificate", err)
	}
}

func TestNewSetRejectsBadConfiguration(t *testing.T) {
	t.Parallel()
	root := testpki.NewCA(t, "Root").Cert
	tests := []struct {
		name    string
		anchors []*x509.Certificate
		rev     *trust.RevocationOptions
		want    string
	}{
		{name: "no anchors", want: "no anchor certificates"},
		{name: "nil anchor", anchors: []*x509.Certificate{nil}, want: "anchor 0 is nil"},
		{name: "negative refresh", anchors: []*x509.Certificate{root}, rev: &trust.RevocationOptions{Refresh: -time.Second}, want: "negative"},
		{name: "CRL URL without http scheme", anchors: []*x509.Certificate{root}, rev: &trust.RevocationOptions{CRLURLs: []string{"ldap://ca/crl"}}, want: "not an http or https URL"},
		{name: "responder without OCSP enabled", anchors: []*x509.Certificate{root}, rev: &trust.RevocationOptions{OCSPResponder: "http://127.0.0.1:1/"}, want: "OCSP is not enabled"},
		{name: "empty CRL file path", anchors: []*x509.Certificate{root}, rev: &trust.RevocationOptions{CRLFiles: []string{""}}, want: "empty CRL file path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := trust.NewSet("bad", tc.anchors, tc.rev)
			if err == nil {
				s.Close()
				t.Fatal("NewSet succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `"bad"`) {
				t.Fatalf("error %q; want it to name the set and say %q", err, tc.want)
			}
		})
	}
}

func TestStartCloseAreIdempotent(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "Root")
	dir := t.TempDir()
	path := writeCRL(t, dir, "ca.crl", freshCRL(t, ca, 1))
	s, err := trust.NewSet("idem", []*x509.Certificate{ca.Cert}, &trust.RevocationOptions{CRLFiles: []string{path}, Refresh: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	s.Start()
	s.Close()
	s.Close()
	s.Start() // after Close: must not restart refreshers
	time.Sleep(60 * time.Millisecond)
	before := s.Stats().CRLRefreshOK
	time.Sleep(60 * time.Millisecond)
	if after := s.Stats().CRLRefreshOK; after != before {
		t.Fatalf("refreshes continued after Close: %d → %d", before, after)
	}
	if s.Name() != "idem" {
		t.Fatalf("Name() = %q", s.Name())
	}
	// Close before Start is fine too.
	s2 := mustSet(t, "never-started", []*x509.Certificate{ca.Cert}, nil)
	s2.Close()
}

// Verify remembers verified chains; a remembered chain must not outlive its
// certificates' validity, and callers may not corrupt it.
func TestVerifyCacheRespectsTime(t *testing.T) {
	t.Parallel()
	root := testpki.NewCA(t, "Cache Root")
	leaf := root.Issue(t, "client", testpki.Client())
	s := mustSet(t, "cache", []*x509.Certificate{root.Cert}, nil)
	chain := presented(leaf)

	got, err := s.Verify(chain, x509.ExtKeyUsageClientAuth, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got[0], got[1] = nil, nil // the caller owns the returned slice
	again, err := s.Verify(chain, x509.ExtKeyUsageClientAuth, time.Now())
	if err != nil || again[0] != leaf.Cert {
		t.Fatalf("second Verify = %v, %v; want the leaf again", again, err)
	}
	_, err = s.Verify(chain, x509.ExtKeyUsageClientAuth, leaf.Cert.NotAfter.Add(time.Minute))
	wantReason(t, err, trust.ReasonExpired)
	_, err = s.Verify(chain, x509.ExtKeyUsageServerAuth, time.Now())
	wantReason(t, err, trust.ReasonWrongUsage)
}
