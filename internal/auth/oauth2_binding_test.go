package auth

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/testpki"
)

// TestOAuth2CertBinding covers RFC 8705 §3: a token with cnf.x5t#S256 is
// accepted only with the client certificate it names.
func TestOAuth2CertBinding(t *testing.T) {
	f := newOAuthFixture(t)
	ca := testpki.NewCA(t, "Client CA")
	leaf := ca.Issue(t, "client-1", testpki.Client())
	otherLeaf := ca.Issue(t, "client-2", testpki.Client())
	bound := func(x5t string) string {
		return f.es256(t, func(c jwt.MapClaims) { c["cnf"] = map[string]any{"x5t#S256": x5t} })
	}
	good := bound(Thumbprint(leaf.Cert))
	plain := f.es256(t, nil)
	a := f.auth(t, nil)
	strict := f.auth(t, func(o *OAuth2Options) { o.RequireBoundTokens = true })

	tests := []struct {
		name   string
		a      *OAuth2
		token  string
		certs  []*x509.Certificate // nil: no TLS at all
		code   string
		bound  bool
		reason string
	}{
		{"bound token with its certificate", a, good, []*x509.Certificate{leaf.Cert, ca.Cert}, "", true, ""},
		{"bound token with another certificate", a, good, []*x509.Certificate{otherLeaf.Cert}, problem.CodeOAuth2CertBindingMismatch, false, "thumbprint_mismatch"},
		{"bound token over TLS without a certificate", a, good, []*x509.Certificate{}, problem.CodeOAuth2CertBindingMismatch, false, "no_client_cert"},
		{"bound token without TLS", a, good, nil, problem.CodeOAuth2CertBindingMismatch, false, "no_client_cert"},
		{"hex fingerprint is not an RFC 8705 thumbprint", a, bound(Fingerprint(leaf.Cert)), []*x509.Certificate{leaf.Cert}, problem.CodeOAuth2CertBindingMismatch, false, "thumbprint_mismatch"},
		{"DPoP-bound token is not a bearer token", a, f.es256(t, func(c jwt.MapClaims) { c["cnf"] = map[string]any{"jkt": "abc"} }), []*x509.Certificate{leaf.Cert}, problem.CodeOAuth2CertBindingMismatch, false, "unsupported_confirmation"},
		{"unbound token is a plain bearer token", a, plain, []*x509.Certificate{leaf.Cert}, "", false, ""},
		{"unbound token where binding is required", strict, plain, []*x509.Certificate{leaf.Cert}, problem.CodeOAuth2CertBindingRequired, false, "unbound_token"},
		{"bound token where binding is required", strict, good, []*x509.Certificate{leaf.Cert}, "", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bearerRequest(http.MethodGet, "/", tt.token)
			if tt.certs != nil {
				r.TLS = &tls.ConnectionState{HandshakeComplete: true, PeerCertificates: tt.certs}
			}
			p, err := tt.a.Authenticate(r)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("refused: %v (%v)", err, asProblemT(t, err).Log)
				}
				if p.CertBound != tt.bound {
					t.Errorf("CertBound = %v, want %v", p.CertBound, tt.bound)
				}
				return
			}
			pe := wantOAuth2Error(t, err, tt.code)
			if got := logValue(pe, "reason"); got != tt.reason {
				t.Errorf("reason %q, want %q", got, tt.reason)
			}
			checkClientSafe(t, pe, leaf.Cert)
		})
	}
}

// TestOAuth2CertBindingOverTLS runs the binding check behind a real TLS
// handshake in which the server only requests a certificate, as the
// gateway's listener does.
func TestOAuth2CertBindingOverTLS(t *testing.T) {
	f := newOAuthFixture(t)
	ca := testpki.NewCA(t, "Client CA")
	leaf := ca.Issue(t, "client-1", testpki.Client())
	selfSigned := testpki.NewCA(t, "self-signed client")
	a := f.auth(t, nil)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Authenticate(r)
		if err != nil {
			pe := asProblem(err)
			w.WriteHeader(pe.HTTPStatus())
			fmt.Fprint(w, pe.Code)
			return
		}
		fmt.Fprintf(w, "ok bound=%v", p.CertBound)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	call := func(t *testing.T, cert *tls.Certificate, token string) string {
		t.Helper()
		c := srv.Client()
		tr := c.Transport.(*http.Transport).Clone()
		if cert != nil {
			tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
		}
		c.Transport = tr
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/things", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	leafTLS := leaf.TLS()
	selfTLS := tls.Certificate{Certificate: [][]byte{selfSigned.Cert.Raw}, PrivateKey: selfSigned.Key}
	boundTo := func(c *x509.Certificate) string {
		return f.es256(t, func(m jwt.MapClaims) { m["cnf"] = map[string]any{"x5t#S256": Thumbprint(c)} })
	}
	tests := []struct {
		name  string
		cert  *tls.Certificate
		token string
		want  string
	}{
		{"matching certificate", &leafTLS, boundTo(leaf.Cert), "ok bound=true"},
		{"self-signed certificate is fine for RFC 8705 binding", &selfTLS, boundTo(selfSigned.Cert), "ok bound=true"},
		{"other certificate", &selfTLS, boundTo(leaf.Cert), problem.CodeOAuth2CertBindingMismatch},
		{"no certificate", nil, boundTo(leaf.Cert), problem.CodeOAuth2CertBindingMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := call(t, tt.cert, tt.token); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestOAuth2Combined: oauth2 inside any_of and all_of with mtls.
func TestOAuth2Combined(t *testing.T) {
	f := newOAuthFixture(t)
	ca := testpki.NewCA(t, "Client CA")
	leaf := ca.Issue(t, "client-1", testpki.Client())
	apps, err := NewApplications([]Application{{ID: "acme", Fingerprints: []string{Fingerprint(leaf.Cert)}}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMTLS(MTLSOptions{Sets: []Verifier{newSet(t, "clients", nil, ca.Cert)}, Apps: apps})
	if err != nil {
		t.Fatal(err)
	}
	o := f.auth(t, nil)
	good := f.es256(t, nil)
	boundGood := f.es256(t, func(c jwt.MapClaims) { c["cnf"] = map[string]any{"x5t#S256": Thumbprint(leaf.Cert)} })

	t.Run("any_of with nothing presented asks for either credential", func(t *testing.T) {
		_, err := AnyOf(m, o).Authenticate(bearerRequest(http.MethodGet, "/", ""))
		pe := asProblemT(t, err)
		if pe.Code != problem.CodeClientCertMissing {
			t.Errorf("code %s, want the first member's missing code", pe.Code)
		}
		if !strings.Contains(pe.Detail, "client certificate") || !strings.Contains(pe.Detail, "Authorization: Bearer") {
			t.Errorf("detail %q does not list both credentials", pe.Detail)
		}
		if pe.Header.Get("WWW-Authenticate") != `Bearer realm="portcullis"` {
			t.Errorf("challenge %q", pe.Header.Get("WWW-Authenticate"))
		}
	})
	t.Run("any_of reports the bad token rather than the missing certificate", func(t *testing.T) {
		_, err := AnyOf(m, o).Authenticate(bearerRequest(http.MethodGet, "/", good+"x"))
		if pe := asProblemT(t, err); pe.Code != problem.CodeOAuth2SignatureInvalid {
			t.Errorf("code %s", pe.Code)
		}
	})
	t.Run("any_of reports the missing token rather than the missing certificate when oauth2 comes first", func(t *testing.T) {
		_, err := AnyOf(o, m).Authenticate(bearerRequest(http.MethodGet, "/", ""))
		if pe := asProblemT(t, err); pe.Code != problem.CodeOAuth2TokenMissing {
			t.Errorf("code %s", pe.Code)
		}
	})
	t.Run("any_of accepts a token without a certificate", func(t *testing.T) {
		p, err := AnyOf(m, o).Authenticate(bearerRequest(http.MethodGet, "/", good))
		if err != nil || p.Application != "acme" || p.Methods[0] != "oauth2" {
			t.Errorf("principal %+v, error %v", p, err)
		}
	})
	t.Run("all_of with a bound token and its certificate", func(t *testing.T) {
		r := bearerRequest(http.MethodGet, "/", boundGood)
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf.Cert, ca.Cert}}
		p, err := AllOf(m, o).Authenticate(r)
		if err != nil {
			t.Fatal(err)
		}
		if p.Application != "acme" || strings.Join(p.Methods, ",") != "mtls,oauth2" || p.Cert == nil {
			t.Errorf("principal %+v", p)
		}
	})
	t.Run("all_of refuses a token and a certificate of different applications", func(t *testing.T) {
		r := bearerRequest(http.MethodGet, "/", f.es256(t, func(c jwt.MapClaims) { c["client_id"] = "client-1" }))
		other := ca.Issue(t, "other", testpki.Client())
		apps2, _ := NewApplications([]Application{{ID: "globex", Fingerprints: []string{Fingerprint(other.Cert)}}})
		m2, _ := NewMTLS(MTLSOptions{Sets: []Verifier{newSet(t, "clients2", nil, ca.Cert)}, Apps: apps2})
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{other.Cert, ca.Cert}}
		_, err := AllOf(m2, o).Authenticate(r)
		if pe := asProblemT(t, err); pe.Code != problem.CodeConflictingApplications {
			t.Errorf("code %s", pe.Code)
		}
	})
}
