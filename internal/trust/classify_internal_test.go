package trust

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/testpki"
)

// crypto/x509 usually reports an expired CA as a CertificateInvalidError,
// but when another candidate issuer is tried after it the error becomes an
// UnknownAuthorityError whose cause is unexported. classify then walks the
// issuers itself; this drives that path directly.
func TestClassifyUnknownAuthorityWalk(t *testing.T) {
	t.Parallel()
	root := testpki.NewCA(t, "Walk Root")
	expired := root.Intermediate(t, "Walk Expired CA", testpki.Expired())
	future := root.Intermediate(t, "Walk Future CA", testpki.NotYetValid())
	valid := root.Intermediate(t, "Walk Valid CA")
	other := testpki.NewCA(t, "Walk Other CA")
	s, err := NewSet("walk", []*x509.Certificate{root.Cert}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	tests := []struct {
		name     string
		leaf     *testpki.Leaf
		want     Reason
		wantCert *x509.Certificate
	}{
		{name: "expired intermediate on the path", leaf: expired.Issue(t, "a", testpki.Client()), want: ReasonExpired, wantCert: expired.Cert},
		{name: "future intermediate on the path", leaf: future.Issue(t, "b", testpki.Client()), want: ReasonNotYetValid, wantCert: future.Cert},
		{name: "nothing out of date: untrusted", leaf: valid.Issue(t, "c", testpki.Client()), want: ReasonUntrusted},
		{name: "foreign issuer: untrusted", leaf: other.Issue(t, "d", testpki.Client()), want: ReasonUntrusted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			chain := append([]*x509.Certificate{tc.leaf.Cert}, tc.leaf.Chain...)
			e := s.classify(chain, time.Now(), x509.UnknownAuthorityError{Cert: tc.leaf.Cert})
			if e.Reason != tc.want {
				t.Fatalf("reason %s, want %s (%v)", e.Reason, tc.want, e)
			}
			if tc.wantCert != nil && !e.Cert.Equal(tc.wantCert) {
				t.Fatalf("Cert = %q, want %q", e.Cert.Subject, tc.wantCert.Subject)
			}
		})
	}
}
