package auth

import (
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/testpki"
	"github.com/portcullis/portcullis/internal/trust"
)

// TestMTLSCodes drives every mtls problem code from a real certificate
// verified by a real trust.Set.
func TestMTLSCodes(t *testing.T) {
	root := testpki.NewCA(t, "Partners Root")
	issuing := root.Intermediate(t, "Partners Issuing CA")
	other := testpki.NewCA(t, "Somebody Else's CA")

	good := issuing.Issue(t, "billing-client", testpki.Client(), testpki.OU("billing"))
	anon := issuing.Issue(t, "walk-in", testpki.Client(), testpki.OU("billing"))
	wrongOU := issuing.Issue(t, "ops-client", testpki.Client(), testpki.OU("ops"))
	foreign := other.Issue(t, "intruder", testpki.Client())
	expired := issuing.Issue(t, "old-client", testpki.Client(), testpki.Expired())
	early := issuing.Issue(t, "future-client", testpki.Client(), testpki.NotYetValid())
	serverOnly := issuing.Issue(t, "a-server", testpki.Server())
	revoked := root.Issue(t, "revoked-client", testpki.Client())
	fine := root.Issue(t, "unrevoked-client", testpki.Client())

	apps, err := NewApplications([]Application{
		{ID: "billing", Fingerprints: []string{Fingerprint(good.Cert), Fingerprint(wrongOU.Cert)}},
		{ID: "legacy", Fingerprints: []string{Fingerprint(expired.Cert), Fingerprint(early.Cert), Fingerprint(serverOnly.Cert)}},
		{ID: "crl-app", Fingerprints: []string{Fingerprint(revoked.Cert), Fingerprint(fine.Cert)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	partners := newSet(t, "partners", nil, root.Cert)
	withCRL := newSet(t, "partners-crl", &trust.RevocationOptions{CRLFiles: []string{writeCRL(t, root, revoked.Cert.SerialNumber)}}, root.Cert)
	noCRL := newSet(t, "partners-no-crl", &trust.RevocationOptions{CRLFiles: []string{filepath.Join(t.TempDir(), "missing.crl")}}, root.Cert)

	base := MTLSOptions{Sets: []Verifier{partners}, RequireClientAuthEKU: true, Apps: apps, Allow: AllowRules{OU: []string{"billing", "legacy"}}}
	tests := []struct {
		name    string
		opts    func(o *MTLSOptions)
		req     *http.Request
		code    string // "" means success
		status  int
		app     string
		reason  string
		leafArg *x509.Certificate
	}{
		{name: "plain HTTP request has no certificate", req: httptest.NewRequest(http.MethodGet, "http://api.example.com/", nil), code: problem.CodeClientCertMissing, status: 401, reason: "missing"},
		{name: "TLS without a client certificate", req: tlsRequest(), code: problem.CodeClientCertMissing, status: 401, reason: "missing"},
		{name: "certificate from another CA is untrusted", req: tlsRequest(presented(foreign)...), code: problem.CodeClientCertUntrusted, status: 401, reason: "untrusted", leafArg: foreign.Cert},
		{name: "leaf without its intermediate is untrusted", req: tlsRequest(good.Cert), code: problem.CodeClientCertUntrusted, status: 401, reason: "untrusted", leafArg: good.Cert},
		{name: "expired certificate", req: tlsRequest(presented(expired)...), code: problem.CodeClientCertExpired, status: 401, reason: "expired", leafArg: expired.Cert},
		{name: "certificate not valid yet", req: tlsRequest(presented(early)...), code: problem.CodeClientCertNotYetValid, status: 401, reason: "not_yet_valid", leafArg: early.Cert},
		{name: "server-only certificate lacks clientAuth", req: tlsRequest(presented(serverOnly)...), code: problem.CodeClientCertWrongUsage, status: 401, reason: "wrong_usage", leafArg: serverOnly.Cert},
		{name: "server-only certificate accepted when clientAuth is not required",
			opts: func(o *MTLSOptions) { o.RequireClientAuthEKU = false; o.Allow = AllowRules{} },
			req:  tlsRequest(presented(serverOnly)...), app: "legacy"},
		{name: "revoked by CRL", opts: func(o *MTLSOptions) { o.Sets = []Verifier{withCRL}; o.Allow = AllowRules{} },
			req: tlsRequest(presented(revoked)...), code: problem.CodeClientCertRevoked, status: 401, reason: "revoked", leafArg: revoked.Cert},
		{name: "not on the CRL", opts: func(o *MTLSOptions) { o.Sets = []Verifier{withCRL}; o.Allow = AllowRules{} },
			req: tlsRequest(presented(fine)...), app: "crl-app"},
		{name: "CRL unavailable fails closed", opts: func(o *MTLSOptions) { o.Sets = []Verifier{noCRL}; o.Allow = AllowRules{} },
			req: tlsRequest(presented(fine)...), code: problem.CodeRevocationUnavailable, status: 401, reason: "revocation_unavailable", leafArg: fine.Cert},
		{name: "verified but outside the allow rules is forbidden", req: tlsRequest(presented(wrongOU)...), code: problem.CodeClientCertNotAllowed, status: 403, reason: "not_allowed", leafArg: wrongOU.Cert},
		{name: "verified but registered to no application", req: tlsRequest(presented(anon)...), code: problem.CodeUnknownApplication, status: 401, reason: "unknown_application", leafArg: anon.Cert},
		{name: "anonymous holder accepted when allowed", opts: func(o *MTLSOptions) { o.AllowAnonymous = true },
			req: tlsRequest(presented(anon)...), app: ""},
		{name: "no applications at all rejects every certificate", opts: func(o *MTLSOptions) { o.Apps = nil },
			req: tlsRequest(presented(good)...), code: problem.CodeUnknownApplication, status: 401, reason: "unknown_application", leafArg: good.Cert},
		{name: "registered certificate with its intermediate", req: tlsRequest(presented(good)...), app: "billing"},
		{name: "second trust set verifies when the first does not",
			opts: func(o *MTLSOptions) { o.Sets = []Verifier{newSet(t, "others", nil, other.Cert), partners} },
			req:  tlsRequest(presented(good)...), app: "billing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			if tc.opts != nil {
				tc.opts(&o)
			}
			m, err := NewMTLS(o)
			if err != nil {
				t.Fatal(err)
			}
			p, err := m.Authenticate(tc.req)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("Authenticate: %v", err)
				}
				if p.Application != tc.app {
					t.Errorf("application = %q, want %q", p.Application, tc.app)
				}
				if p.Cert == nil || len(p.Chain) < 2 || p.Chain[0] != p.Cert || p.Fingerprint != Fingerprint(p.Cert) ||
					p.Subject != p.Cert.Subject.String() || p.Issuer != p.Cert.Issuer.String() || p.TrustSet == "" ||
					len(p.Methods) != 1 || p.Methods[0] != "mtls" {
					t.Errorf("incomplete principal: %+v", p)
				}
				return
			}
			if p != nil {
				t.Errorf("principal %+v returned with an error", p)
			}
			pe := asProblemT(t, err)
			if pe.Code != tc.code || pe.HTTPStatus() != tc.status {
				t.Fatalf("code %q status %d, want %q %d (%v)", pe.Code, pe.HTTPStatus(), tc.code, tc.status, err)
			}
			if got := logValue(pe, "reason"); got != tc.reason {
				t.Errorf("logged reason %q, want %q", got, tc.reason)
			}
			if pe.Header.Get("WWW-Authenticate") != "" {
				t.Errorf("mtls invented a WWW-Authenticate challenge: %q", pe.Header.Get("WWW-Authenticate"))
			}
			if logValue(pe, "explanation") == "" {
				t.Error("no plain explanation logged")
			}
			if tc.leafArg != nil {
				checkClientSafe(t, pe, tc.leafArg)
				if logValue(pe, "fingerprint") != Fingerprint(tc.leafArg) || logValue(pe, "subject") != tc.leafArg.Subject.String() ||
					logValue(pe, "issuer") != tc.leafArg.Issuer.String() || logValue(pe, "trust_set") == "" {
					t.Errorf("log lacks the certificate's diagnosis: %v", pe.Log)
				}
			}
		})
	}
}

// TestMTLSMostSpecificReason checks which failure is reported when several
// trust sets refuse a chain, whatever order they are tried in.
func TestMTLSMostSpecificReason(t *testing.T) {
	ca := testpki.NewCA(t, "CA")
	leaf := ca.Issue(t, "client", testpki.Client())
	tests := []struct {
		name    string
		reasons []trust.Reason
		code    string
		set     string
	}{
		{"untrusted only", []trust.Reason{trust.ReasonUntrusted, trust.ReasonUntrusted}, problem.CodeClientCertUntrusted, "s0"},
		{"expired beats untrusted", []trust.Reason{trust.ReasonUntrusted, trust.ReasonExpired}, problem.CodeClientCertExpired, "s1"},
		{"not yet valid beats wrong usage", []trust.Reason{trust.ReasonWrongUsage, trust.ReasonNotYetValid}, problem.CodeClientCertNotYetValid, "s1"},
		{"wrong usage beats untrusted", []trust.Reason{trust.ReasonWrongUsage, trust.ReasonUntrusted}, problem.CodeClientCertWrongUsage, "s0"},
		{"revoked beats expired", []trust.Reason{trust.ReasonExpired, trust.ReasonRevoked}, problem.CodeClientCertRevoked, "s1"},
		{"revoked beats revocation unavailable", []trust.Reason{trust.ReasonRevoked, trust.ReasonRevocationUnavailable}, problem.CodeClientCertRevoked, "s0"},
		{"revocation unavailable beats expired", []trust.Reason{trust.ReasonExpired, trust.ReasonRevocationUnavailable, trust.ReasonUntrusted}, problem.CodeRevocationUnavailable, "s1"},
		{"unknown reason counts as untrusted", []trust.Reason{"mystery"}, problem.CodeClientCertUntrusted, "s0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var sets []Verifier
			for i, r := range tc.reasons {
				sets = append(sets, fakeSet{name: "s" + string(rune('0'+i)), reason: r})
			}
			m, err := NewMTLS(MTLSOptions{Sets: sets, AllowAnonymous: true})
			if err != nil {
				t.Fatal(err)
			}
			_, err = m.Authenticate(tlsRequest(leaf.Cert))
			pe := asProblemT(t, err)
			if pe.Code != tc.code || logValue(pe, "trust_set") != tc.set {
				t.Errorf("code %q from set %q, want %q from %q", pe.Code, logValue(pe, "trust_set"), tc.code, tc.set)
			}
		})
	}
	t.Run("a verifier error that is not a trust.Error is untrusted", func(t *testing.T) {
		m, _ := NewMTLS(MTLSOptions{Sets: []Verifier{fakeSet{name: "odd", err: errors.New("boom")}}, AllowAnonymous: true})
		_, err := m.Authenticate(tlsRequest(leaf.Cert))
		if pe := asProblemT(t, err); pe.Code != problem.CodeClientCertUntrusted || !errors.Is(pe, pe.Cause) {
			t.Errorf("got %v", err)
		}
	})
}

func TestNewMTLSRejectsBadSettings(t *testing.T) {
	ok := []Verifier{fakeSet{name: "s"}}
	tests := []struct {
		name string
		o    MTLSOptions
		want error
	}{
		{"no trust set", MTLSOptions{}, ErrNoTrustSets},
		{"short fingerprint", MTLSOptions{Sets: ok, Allow: AllowRules{Fingerprints: []string{"ab:cd"}}}, ErrBadFingerprint},
		{"non-hex fingerprint", MTLSOptions{Sets: ok, Allow: AllowRules{Fingerprints: []string{strings.Repeat("zz", 32)}}}, ErrBadFingerprint},
		{"empty CN entry", MTLSOptions{Sets: ok, Allow: AllowRules{CN: []string{""}}}, ErrBadRule},
		{"URI without scheme", MTLSOptions{Sets: ok, Allow: AllowRules{URI: []string{"example.org/x"}}}, ErrBadRule},
		{"SPIFFE ID with a port", MTLSOptions{Sets: ok, Allow: AllowRules{URI: []string{"spiffe://example.org:8443/x"}}}, ErrBadRule},
		{"DN that is not TYPE=value", MTLSOptions{Sets: ok, Allow: AllowRules{SubjectDN: []string{"just words"}}}, ErrBadRule},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewMTLS(tc.o); !errors.Is(err, tc.want) {
				t.Errorf("NewMTLS error %v, want %v", err, tc.want)
			}
		})
	}
}

// TestMTLSConcurrent runs one authenticator from many goroutines; with
// -race it proves Authenticate shares no mutable state.
func TestMTLSConcurrent(t *testing.T) {
	ca := testpki.NewCA(t, "CA")
	good := ca.Issue(t, "good", testpki.Client())
	bad := testpki.NewCA(t, "Other").Issue(t, "bad", testpki.Client())
	m, err := NewMTLS(MTLSOptions{Sets: []Verifier{newSet(t, "ca", nil, ca.Cert)}, RequireClientAuthEKU: true, AllowAnonymous: true,
		Allow: AllowRules{CN: []string{"good", "bad"}}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				leaf, wantErr := good, false
				if (g+i)%2 == 1 {
					leaf, wantErr = bad, true
				}
				if _, err := m.Authenticate(tlsRequest(leaf.Cert)); (err != nil) != wantErr {
					t.Errorf("goroutine %d request %d: %v", g, i, err)
				}
			}
		})
	}
	wg.Wait()
}
