package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/problem"
)

func TestHashAPIKeyKnownVectors(t *testing.T) {
	// SHA-256 test vectors from FIPS 180-2.
	for key, want := range map[string]string{
		"":    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"abc": "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	} {
		if got := HashAPIKey(key); got != want {
			t.Errorf("HashAPIKey(%q) = %s, want %s", key, got, want)
		}
	}
}

func TestAPIKey(t *testing.T) {
	const acmeKey, globexKey = "pk_live_4f1c9b2e7d6a", "pk_live_0a9e8d7c6b5f"
	a, err := NewAPIKey(APIKeyOptions{Query: "api_key", Keys: []APIKey{
		{Application: "acme", Hash: HashAPIKey(acmeKey)},
		{Application: "globex", Hash: strings.ToUpper(HashAPIKey(globexKey)[len("sha256:"):])},
	}})
	if err == nil {
		t.Fatal("a hash without the sha256: prefix was accepted")
	}
	a, err = NewAPIKey(APIKeyOptions{Query: "api_key", Keys: []APIKey{
		{Application: "acme", Hash: HashAPIKey(acmeKey)},
		{Application: "globex", Hash: "sha256:" + strings.ToUpper(HashAPIKey(globexKey)[len("sha256:"):])},
	}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		target    string
		header    map[string][]string
		code      string
		app       string
		wantQuery string
	}{
		{name: "key in the default header", target: "/v1/x", header: map[string][]string{"X-Api-Key": {acmeKey}}, app: "acme"},
		{name: "upper-case stored hash", target: "/v1/x", header: map[string][]string{"X-Api-Key": {globexKey}}, app: "globex"},
		{name: "key in the query parameter, other parameters kept", target: "/v1/x?a=1&api_key=" + acmeKey + "&b=2%203", app: "acme", wantQuery: "a=1&b=2%203"},
		{name: "percent-encoded parameter name", target: "/v1/x?api%5Fkey=" + acmeKey, app: "acme", wantQuery: ""},
		{name: "no key at all", target: "/v1/x?a=1", code: problem.CodeAPIKeyMissing, wantQuery: "a=1"},
		{name: "empty header", target: "/v1/x", header: map[string][]string{"X-Api-Key": {"  "}}, code: problem.CodeAPIKeyMissing},
		{name: "unknown key", target: "/v1/x", header: map[string][]string{"X-Api-Key": {"pk_live_guess"}}, code: problem.CodeAPIKeyInvalid},
		{name: "the hash itself is not a key", target: "/v1/x", header: map[string][]string{"X-Api-Key": {HashAPIKey(acmeKey)}}, code: problem.CodeAPIKeyInvalid},
		{name: "two keys are refused", target: "/v1/x?api_key=" + globexKey, header: map[string][]string{"X-Api-Key": {acmeKey}}, code: problem.CodeAPIKeyInvalid, wantQuery: ""},
		{name: "non-canonical header spelling is read and stripped", target: "/v1/x", header: map[string][]string{"x-api-key": {acmeKey}}, code: problem.CodeAPIKeyMissing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tc.target, nil)
			for k, v := range tc.header {
				r.Header[k] = v
			}
			p, err := a.Authenticate(r)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("Authenticate: %v", err)
				}
				if p.Application != tc.app || len(p.Methods) != 1 || p.Methods[0] != "api_key" || p.Cert != nil {
					t.Errorf("principal %+v, want application %q via api_key", p, tc.app)
				}
			} else {
				var pe *problem.Error
				if !errors.As(err, &pe) || pe.Code != tc.code || pe.HTTPStatus() != 401 {
					t.Fatalf("got %v, want %s", err, tc.code)
				}
				if strings.Contains(pe.Error(), acmeKey) || strings.Contains(pe.Error(), globexKey) {
					t.Error("the key leaked into the error")
				}
			}
			for k := range r.Header {
				if strings.EqualFold(k, "X-Api-Key") {
					t.Errorf("header %q still forwarded", k)
				}
			}
			if r.URL.RawQuery != tc.wantQuery && (tc.wantQuery != "" || strings.Contains(tc.target, "api")) {
				t.Errorf("RawQuery %q, want %q", r.URL.RawQuery, tc.wantQuery)
			}
			if strings.Contains(r.URL.String(), "pk_live") || strings.Contains(r.RequestURI, "pk_live") {
				t.Errorf("the key is still in the URL %q / RequestURI %q", r.URL, r.RequestURI)
			}
		})
	}
}

func TestAPIKeyCustomHeaderNoQuery(t *testing.T) {
	a, err := NewAPIKey(APIKeyOptions{Header: "x-partner-token", Keys: []APIKey{{Application: "acme", Hash: HashAPIKey("k1")}}})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/v1/x?api_key=k1", nil)
	if _, err := a.Authenticate(r); asProblemT(t, err).Code != problem.CodeAPIKeyMissing {
		t.Errorf("a key in the query was accepted although no query parameter is configured: %v", err)
	}
	r.Header.Set("X-Partner-Token", "k1")
	if p, err := a.Authenticate(r); err != nil || p.Application != "acme" {
		t.Errorf("custom header: %v, %v", p, err)
	}
	if r.URL.RawQuery != "api_key=k1" {
		t.Errorf("an unconfigured query parameter was rewritten: %q", r.URL.RawQuery)
	}
}

func TestNewAPIKeyRejectsBadEntries(t *testing.T) {
	for name, keys := range map[string][]APIKey{
		"plain text key":                  {{Application: "a", Hash: "pk_live_123"}},
		"short hash":                      {{Application: "a", Hash: "sha256:abcd"}},
		"no application":                  {{Hash: HashAPIKey("k")}},
		"one key for two applications":    {{Application: "a", Hash: HashAPIKey("k")}, {Application: "b", Hash: HashAPIKey("k")}},
		"another algorithm is not sha256": {{Application: "a", Hash: "md5:900150983cd24fb0d6963f7d28e17f72"}},
	} {
		if _, err := NewAPIKey(APIKeyOptions{Keys: keys}); !errors.Is(err, ErrBadAPIKey) {
			t.Errorf("%s: error %v, want ErrBadAPIKey", name, err)
		}
	}
}
