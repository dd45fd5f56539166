package auth

import (
	"errors"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/testpki"
)

// colonUpper writes a fingerprint as openssl prints it: upper case,
// colon-separated.
func colonUpper(fp string) string {
	var parts []string
	for i := 0; i < len(fp); i += 2 {
		parts = append(parts, strings.ToUpper(fp[i:i+2]))
	}
	return strings.Join(parts, ":")
}

func TestAllowRules(t *testing.T) {
	ca := testpki.NewCA(t, "Workload CA")
	svc := ca.Issue(t, "svc-a", testpki.Client(), testpki.OU("payments", "eu"),
		testpki.DNS("svc-a.Internal.Example"), testpki.URI("spiffe://example.org/ns/prod/sa/svc-a"))
	evil := ca.Issue(t, "svc-a", testpki.Client(), testpki.OU("payments"),
		testpki.URI("spiffe://example.org.evil/ns/prod/sa/svc-a"))
	userinfo := ca.Issue(t, "svc-b", testpki.Client(), testpki.URI("spiffe://example.org@evil.example/ns/x"))
	userAtTD := ca.Issue(t, "svc-d", testpki.Client(), testpki.URI("spiffe://mallory@example.org/ns/x"))
	bare := ca.Issue(t, "svc-c", testpki.Client(), testpki.URI("spiffe://example.org"))
	web := ca.Issue(t, "web", testpki.Client(), testpki.URI("https://partner.example/clients/42"))

	tests := []struct {
		name  string
		allow AllowRules
		leaf  *testpki.Leaf
		ok    bool
	}{
		{"empty rules allow any verified certificate", AllowRules{}, svc, true},
		{"subject DN as Go and RFC 2253 write it", AllowRules{SubjectDN: []string{"CN=svc-a,OU=payments+OU=eu,O=Portcullis tests"}}, svc, true},
		{"subject DN in OpenSSL's default order and spacing", AllowRules{SubjectDN: []string{"O = Portcullis tests, OU = payments + OU = eu, CN = svc-a"}}, svc, true},
		{"subject DN in slash form", AllowRules{SubjectDN: []string{"/O=Portcullis tests/OU=payments+OU=eu/CN=svc-a"}}, svc, true},
		{"subject DN attribute types are case-insensitive", AllowRules{SubjectDN: []string{"cn=svc-a,ou=payments+ou=eu,o=Portcullis tests"}}, svc, true},
		{"subject DN values are not", AllowRules{SubjectDN: []string{"CN=SVC-A,OU=payments+OU=eu,O=Portcullis tests"}}, svc, false},
		{"subject DN missing an RDN does not match", AllowRules{SubjectDN: []string{"CN=svc-a,O=Portcullis tests"}}, svc, false},
		{"CN: any entry may match", AllowRules{CN: []string{"other", "svc-a"}}, svc, true},
		{"CN: none matches", AllowRules{CN: []string{"svc-b"}}, svc, false},
		{"CN is exact", AllowRules{CN: []string{"svc"}}, svc, false},
		{"OU: one of the certificate's units", AllowRules{OU: []string{"eu"}}, svc, true},
		{"OU: none of them", AllowRules{OU: []string{"ops"}}, svc, false},
		{"DNS compares case-insensitively", AllowRules{DNS: []string{"SVC-A.internal.example."}}, svc, true},
		{"DNS mismatch", AllowRules{DNS: []string{"svc-b.internal.example"}}, svc, false},
		{"DNS rule and a certificate without DNS SANs", AllowRules{DNS: []string{"svc-a.internal.example"}}, evil, false},
		{"SPIFFE trust domain matches an ID inside it", AllowRules{URI: []string{"spiffe://example.org"}}, svc, true},
		{"SPIFFE trust domain with a trailing slash", AllowRules{URI: []string{"spiffe://example.org/"}}, svc, true},
		{"SPIFFE trust domain is not a suffix match", AllowRules{URI: []string{"spiffe://example.org"}}, evil, false},
		{"SPIFFE user info cannot smuggle the trust domain", AllowRules{URI: []string{"spiffe://example.org"}}, userinfo, false},
		{"SPIFFE ID with user info is invalid even in the right domain", AllowRules{URI: []string{"spiffe://example.org"}}, userAtTD, false},
		{"SPIFFE trust domain ID itself is no workload", AllowRules{URI: []string{"spiffe://example.org"}}, bare, false},
		{"exact SPIFFE ID", AllowRules{URI: []string{"spiffe://example.org/ns/prod/sa/svc-a"}}, svc, true},
		{"exact SPIFFE ID is not a prefix", AllowRules{URI: []string{"spiffe://example.org/ns/prod"}}, svc, false},
		{"exact non-SPIFFE URI", AllowRules{URI: []string{"https://partner.example/clients/42"}}, web, true},
		{"other trust domain", AllowRules{URI: []string{"spiffe://other.org"}}, svc, false},
		{"fingerprint, lower case hex", AllowRules{Fingerprints: []string{Fingerprint(svc.Cert)}}, svc, true},
		{"fingerprint with colons and upper case", AllowRules{Fingerprints: []string{colonUpper(Fingerprint(svc.Cert))}}, svc, true},
		{"fingerprint of another certificate", AllowRules{Fingerprints: []string{Fingerprint(web.Cert)}}, svc, false},
		{"AND across kinds: all set kinds match", AllowRules{CN: []string{"svc-a"}, OU: []string{"payments"}, URI: []string{"spiffe://example.org"}}, svc, true},
		{"AND across kinds: CN matches but trust domain does not", AllowRules{CN: []string{"svc-a"}, URI: []string{"spiffe://example.org"}}, evil, false},
		{"AND across kinds: OU fails", AllowRules{CN: []string{"svc-a"}, OU: []string{"ops"}}, svc, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := NewMTLS(MTLSOptions{Sets: []Verifier{fakeSet{name: "all"}}, Allow: tc.allow, AllowAnonymous: true})
			if err != nil {
				t.Fatal(err)
			}
			_, err = m.Authenticate(tlsRequest(tc.leaf.Cert))
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok {
				var pe *problem.Error
				if !errors.As(err, &pe) || pe.Code != problem.CodeClientCertNotAllowed || pe.HTTPStatus() != 403 {
					t.Fatalf("got %v, want %s (403)", err, problem.CodeClientCertNotAllowed)
				}
				if logValue(pe, "failed_rule") == "" {
					t.Error("the failing rule kind is not logged")
				}
			}
		})
	}
}

func TestApplicationsForCert(t *testing.T) {
	partners := testpki.NewCA(t, "Partners CA")
	others := testpki.NewCA(t, "Other CA")
	byFP := partners.Issue(t, "acme-batch", testpki.Client())
	acme := partners.Issue(t, "acme-portal", testpki.Client(), testpki.OU("acme"))
	globex := partners.Issue(t, "globex-gw", testpki.Client(), testpki.DNS("gw.globex.example"))
	initech := partners.Issue(t, "initech", testpki.Client(), testpki.URI("spiffe://initech.example/billing"))
	lookalike := others.Issue(t, "acme-portal", testpki.Client(), testpki.OU("acme"))
	both := partners.Issue(t, "shared", testpki.Client(), testpki.DNS("shared.example"))
	pinned := partners.Issue(t, "acme-portal", testpki.Client())

	apps, err := NewApplications([]Application{
		{ID: "acme", Fingerprints: []string{colonUpper(Fingerprint(byFP.Cert))},
			Rules: []CertRule{{Issuer: partners.Cert.Subject.String(), CN: "acme-portal"}}},
		{ID: "globex", Rules: []CertRule{{Issuer: "O = Portcullis tests, CN = Partners CA", DNS: "GW.globex.example"}}},
		{ID: "initech", Rules: []CertRule{{Issuer: "CN=Partners CA,O=Portcullis tests", URI: "spiffe://initech.example/billing"}}},
		{ID: "subject-rule", Rules: []CertRule{{Issuer: "CN=Partners CA,O=Portcullis tests", SubjectDN: "CN=shared,O=Portcullis tests"}}},
		{ID: "dns-rule", Rules: []CertRule{{Issuer: "CN=Partners CA,O=Portcullis tests", DNS: "shared.example"}}},
		{ID: "pinned", Fingerprints: []string{Fingerprint(pinned.Cert)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		leaf *testpki.Leaf
		app  string
	}{
		{"registered fingerprint (written with colons, upper case)", byFP, "acme"},
		{"issuer plus CN rule", acme, "acme"},
		{"issuer in OpenSSL's default form plus DNS rule (case-insensitive)", globex, "globex"},
		{"issuer plus URI rule", initech, "initech"},
		{"same CN from another issuer maps to nothing", lookalike, ""},
		{"rules of two applications match: ambiguous, so nothing", both, ""},
		{"a registered fingerprint wins over a matching rule", pinned, "pinned"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app, ok := apps.ForCert(presented(tc.leaf))
			if app != tc.app || ok != (tc.app != "") {
				t.Errorf("ForCert = %q, %v; want %q", app, ok, tc.app)
			}
		})
	}
	if app, ok := (*Applications)(nil).ForCert(presented(acme)); ok || app != "" {
		t.Errorf("nil Applications mapped a certificate to %q", app)
	}
	if _, ok := apps.ForCert(nil); ok {
		t.Error("an empty chain mapped to an application")
	}
}

func TestNewApplicationsRejectsAmbiguity(t *testing.T) {
	fp := strings.Repeat("ab", 32)
	rule := CertRule{Issuer: "CN=CA", CN: "client"}
	tests := []struct {
		name string
		apps []Application
		want error
	}{
		{"one fingerprint, two applications", []Application{{ID: "a", Fingerprints: []string{fp}}, {ID: "b", Fingerprints: []string{colonUpper(fp)}}}, ErrAmbiguousCertificate},
		{"one rule, two applications", []Application{{ID: "a", Rules: []CertRule{rule}}, {ID: "b", Rules: []CertRule{{Issuer: "cn = CA", CN: "client"}}}}, ErrAmbiguousCertificate},
		{"rule without issuer", []Application{{ID: "a", Rules: []CertRule{{CN: "client"}}}}, ErrBadRule},
		{"rule with only an issuer", []Application{{ID: "a", Rules: []CertRule{{Issuer: "CN=CA"}}}}, ErrBadRule},
		{"rule naming a whole SPIFFE trust domain", []Application{{ID: "a", Rules: []CertRule{{Issuer: "CN=CA", URI: "spiffe://example.org"}}}}, ErrBadRule},
		{"bad fingerprint", []Application{{ID: "a", Fingerprints: []string{"00"}}}, ErrBadFingerprint},
		{"missing id", []Application{{Fingerprints: []string{fp}}}, ErrBadApplication},
		{"repeated id", []Application{{ID: "a"}, {ID: "a"}}, ErrBadApplication},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewApplications(tc.apps); !errors.Is(err, tc.want) {
				t.Errorf("NewApplications error %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := NewApplications([]Application{{ID: "a", Fingerprints: []string{fp, colonUpper(fp)}, Rules: []CertRule{rule, rule}}}); err != nil {
		t.Errorf("repeating a registration within one application is harmless, got %v", err)
	}
}
