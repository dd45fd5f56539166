package auth

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/problem"
)

// stub is an Authenticator with a fixed answer.
type stub struct {
	name  string
	p     *Principal
	err   error
	calls *int
}

func (s stub) Name() string { return s.name }
func (s stub) Authenticate(*http.Request) (*Principal, error) {
	if s.calls != nil {
		*s.calls++
	}
	return s.p, s.err
}

func okStub(name, app string) stub {
	return stub{name: name, p: &Principal{Application: app, Methods: []string{name}}}
}

func failStub(name, code string, challenge ...string) stub {
	e := &problem.Error{Code: code, Detail: name + " failed", Log: []any{"auth", name}}
	for _, c := range challenge {
		if e.Header == nil {
			e.Header = http.Header{}
		}
		e.Header.Add("WWW-Authenticate", c)
	}
	return stub{name: name, err: e}
}

// TestCombinatorTruthTables evaluates AnyOf and AllOf for every combination
// of two members succeeding or failing.
func TestCombinatorTruthTables(t *testing.T) {
	for _, aOK := range []bool{false, true} {
		for _, bOK := range []bool{false, true} {
			a, b := failStub("a", problem.CodeClientCertUntrusted), failStub("b", problem.CodeAPIKeyInvalid)
			if aOK {
				a = okStub("a", "app")
			}
			if bOK {
				b = okStub("b", "app")
			}
			name := fmt.Sprintf("a=%v,b=%v", aOK, bOK)
			t.Run("any_of/"+name, func(t *testing.T) {
				p, err := AnyOf(a, b).Authenticate(httptest.NewRequest("GET", "/", nil))
				if want := aOK || bOK; (err == nil) != want || (p != nil) != want {
					t.Fatalf("success = %v (%v), want %v", err == nil, err, want)
				}
				if p != nil && p.Methods[0] != map[bool]string{true: "a", false: "b"}[aOK] {
					t.Errorf("methods %v: the first success must win", p.Methods)
				}
			})
			t.Run("all_of/"+name, func(t *testing.T) {
				p, err := AllOf(a, b).Authenticate(httptest.NewRequest("GET", "/", nil))
				if want := aOK && bOK; (err == nil) != want || (p != nil) != want {
					t.Fatalf("success = %v (%v), want %v", err == nil, err, want)
				}
				if p != nil && !slices.Equal(p.Methods, []string{"a", "b"}) {
					t.Errorf("methods %v, want [a b]", p.Methods)
				}
				if err != nil {
					wantCode := problem.CodeClientCertUntrusted
					if aOK {
						wantCode = problem.CodeAPIKeyInvalid
					}
					if got := asProblemT(t, err).Code; got != wantCode {
						t.Errorf("code %s, want the first failure %s", got, wantCode)
					}
				}
			})
		}
	}
}

func TestAnyOfErrorSelection(t *testing.T) {
	tests := []struct {
		name       string
		members    []Authenticator
		code       string
		challenges []string
		detailHas  string
	}{
		{"a presented credential beats a missing one (missing first)",
			[]Authenticator{failStub("api_key", problem.CodeAPIKeyMissing), failStub("mtls", problem.CodeClientCertUntrusted)},
			problem.CodeClientCertUntrusted, nil, "mtls failed"},
		{"a presented credential beats a missing one (missing last)",
			[]Authenticator{failStub("mtls", problem.CodeClientCertExpired), failStub("api_key", problem.CodeAPIKeyMissing)},
			problem.CodeClientCertExpired, nil, "mtls failed"},
		{"two presented: the first in order",
			[]Authenticator{failStub("api_key", problem.CodeAPIKeyInvalid), failStub("mtls", problem.CodeClientCertRevoked)},
			problem.CodeAPIKeyInvalid, nil, "api_key failed"},
		{"a gateway error beats credential failures",
			[]Authenticator{failStub("mtls", problem.CodeClientCertUntrusted), stub{name: "broken", err: errors.New("boom")}},
			problem.CodeInternal, nil, "could not authenticate"},
		{"nothing presented: first code, detail lists every accepted credential, challenges combined",
			[]Authenticator{oauthMissing(), mustMTLSStub(), mustAPIKeyStub()},
			"oauth2.token_missing", []string{`Bearer realm="api"`}, "a client certificate, or an API key (X-Api-Key header)"},
		{"challenges of every member are kept",
			[]Authenticator{failStub("one", problem.CodeAPIKeyMissing, "Basic"), failStub("two", problem.CodeAPIKeyInvalid, `Bearer error="invalid_token"`)},
			problem.CodeAPIKeyInvalid, []string{"Basic", `Bearer error="invalid_token"`}, "two failed"},
		{"a member returning neither principal nor error fails closed",
			[]Authenticator{stub{name: "silent"}, failStub("api_key", problem.CodeAPIKeyMissing)},
			problem.CodeInternal, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := AnyOf(tc.members...).Authenticate(httptest.NewRequest("GET", "/", nil))
			pe := asProblemT(t, err)
			if pe.Code != tc.code {
				t.Fatalf("code %s, want %s", pe.Code, tc.code)
			}
			if got := pe.Header.Values("WWW-Authenticate"); !slices.Equal(got, tc.challenges) {
				t.Errorf("challenges %q, want %q", got, tc.challenges)
			}
			if !strings.Contains(pe.Detail, tc.detailHas) {
				t.Errorf("detail %q lacks %q", pe.Detail, tc.detailHas)
			}
		})
	}
	t.Run("the members' errors are not modified", func(t *testing.T) {
		m := failStub("one", problem.CodeAPIKeyMissing, "Basic")
		_, _ = AnyOf(m, failStub("two", problem.CodeClientCertMissing, "Bearer")).Authenticate(httptest.NewRequest("GET", "/", nil))
		if pe := m.err.(*problem.Error); len(pe.Header.Values("WWW-Authenticate")) != 1 || pe.Detail != "one failed" {
			t.Errorf("member error mutated: %+v", pe)
		}
	})
}

// oauthMissing stands in for the oauth2 authenticator of the next issue:
// its code is not catalogued yet, so the status is explicit.
func oauthMissing() Authenticator {
	s := failStub("oauth2", "oauth2.token_missing", `Bearer realm="api"`)
	s.err.(*problem.Error).Status = http.StatusUnauthorized
	return s
}

func mustMTLSStub() Authenticator {
	m, err := NewMTLS(MTLSOptions{Sets: []Verifier{fakeSet{name: "s"}}})
	if err != nil {
		panic(err)
	}
	return m
}

func mustAPIKeyStub() Authenticator {
	a, err := NewAPIKey(APIKeyOptions{Header: "x-api-key"})
	if err != nil {
		panic(err)
	}
	return a
}

func TestAnyOfStripsCredentialsItDidNotNeed(t *testing.T) {
	keys, err := NewAPIKey(APIKeyOptions{Query: "key", Keys: []APIKey{{Application: "acme", Hash: HashAPIKey("secret")}}})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/x?key=secret&q=1", nil)
	r.Header.Set("X-API-Key", "secret")
	p, err := AnyOf(okStub("mtls", "acme"), keys).Authenticate(r)
	if err != nil || p.Methods[0] != "mtls" {
		t.Fatalf("got %+v, %v", p, err)
	}
	if r.Header.Get("X-API-Key") != "" || r.URL.RawQuery != "q=1" {
		t.Errorf("API key still forwarded: header %q, query %q", r.Header.Get("X-API-Key"), r.URL.RawQuery)
	}

	r = httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("X-API-Key", "secret")
	if _, err := AnyOf(okStub("mtls", "acme"), AllOf(keys, okStub("other", ""))).Authenticate(r); err != nil {
		t.Fatal(err)
	}
	if r.Header.Get("X-API-Key") != "" {
		t.Error("API key inside a skipped nested all_of still forwarded")
	}
}

func TestAllOfMergesPrincipals(t *testing.T) {
	cert := &Principal{Application: "acme", Methods: []string{"mtls"}, Cert: &x509.Certificate{}, Fingerprint: "ff", Subject: "CN=c", Issuer: "CN=ca", TrustSet: "partners"}
	tests := []struct {
		name    string
		members []Authenticator
		app     string
		code    string
	}{
		{"same application", []Authenticator{stub{name: "mtls", p: cert}, okStub("api_key", "acme")}, "acme", ""},
		{"anonymous certificate and a key", []Authenticator{okStub("mtls", ""), okStub("api_key", "acme")}, "acme", ""},
		{"key then anonymous certificate", []Authenticator{okStub("api_key", "acme"), okStub("mtls", "")}, "acme", ""},
		{"different applications conflict", []Authenticator{stub{name: "mtls", p: cert}, okStub("api_key", "globex")}, "", problem.CodeConflictingApplications},
		{"conflict found in a nested combination", []Authenticator{okStub("a", "x"), AllOf(okStub("b", ""), okStub("c", "y"))}, "", problem.CodeConflictingApplications},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := AllOf(tc.members...).Authenticate(httptest.NewRequest("GET", "/", nil))
			if tc.code != "" {
				pe := asProblemT(t, err)
				if pe.Code != tc.code || pe.HTTPStatus() != 401 {
					t.Fatalf("got %v, want %s", err, tc.code)
				}
				if strings.Contains(pe.Detail, "acme") || strings.Contains(pe.Detail, "globex") {
					t.Errorf("detail names applications: %q", pe.Detail)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Application != tc.app {
				t.Errorf("application %q, want %q", p.Application, tc.app)
			}
		})
	}
	p, err := AllOf(okStub("api_key", "acme"), stub{name: "mtls", p: cert}).Authenticate(httptest.NewRequest("GET", "/", nil))
	if err != nil || p.Fingerprint != "ff" || p.TrustSet != "partners" || !slices.Equal(p.Methods, []string{"api_key", "mtls"}) {
		t.Errorf("certificate fields not merged: %+v, %v", p, err)
	}
}

func TestCombinatorEdges(t *testing.T) {
	calls := 0
	second := stub{name: "b", p: &Principal{Methods: []string{"b"}}, calls: &calls}
	if _, err := AnyOf(okStub("a", "x"), second).Authenticate(httptest.NewRequest("GET", "/", nil)); err != nil || calls != 0 {
		t.Errorf("any_of evaluated a member after the first success (calls=%d, err=%v)", calls, err)
	}
	if _, err := AllOf(failStub("a", problem.CodeAPIKeyMissing), second).Authenticate(httptest.NewRequest("GET", "/", nil)); err == nil || calls != 0 {
		t.Errorf("all_of went on after a failure (calls=%d)", calls)
	}
	for _, a := range []Authenticator{AnyOf(), AllOf()} {
		if _, err := a.Authenticate(httptest.NewRequest("GET", "/", nil)); asProblemT(t, err).Code != problem.CodeInternal {
			t.Errorf("%s with no members: %v, want a fail-closed internal error", a.Name(), err)
		}
	}
	single := okStub("mtls", "x")
	if AnyOf(single) != Authenticator(single) || AllOf(single) != Authenticator(single) {
		t.Error("a one-member combination should be the member itself")
	}
	if got := AnyOf(okStub("mtls", ""), AllOf(okStub("mtls", ""), okStub("api_key", ""))).Name(); got != "any_of(mtls,all_of(mtls,api_key))" {
		t.Errorf("Name() = %q", got)
	}
}

// TestAllOfKeepsTokenFields: all_of(mtls, oauth2) must keep what the token
// said (client, scopes, binding) next to the certificate's fields.
func TestAllOfKeepsTokenFields(t *testing.T) {
	cert := &Principal{Application: "app", Methods: []string{"mtls"}, Subject: "CN=client"}
	token := &Principal{Application: "app", Methods: []string{"oauth2"}, Subject: "client-1", ClientID: "client-1", Scopes: []string{"a", "b"}, CertBound: true}
	p, err := AllOf(fixed{"mtls", cert}, fixed{"oauth2", token}).Authenticate(httptest.NewRequest("GET", "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	if p.ClientID != "client-1" || len(p.Scopes) != 2 || !p.CertBound || p.Subject != "CN=client" {
		t.Errorf("merged principal lost token fields: %+v", p)
	}
}

type fixed struct {
	name string
	p    *Principal
}

func (f fixed) Name() string                                   { return f.name }
func (f fixed) Authenticate(*http.Request) (*Principal, error) { c := *f.p; return &c, nil }
