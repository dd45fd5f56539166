package config

import (
	"strings"
	"testing"
)

func TestParseAPI(t *testing.T) {
	a, probs := ParseAPI("registry api orders", []byte(`{"match":{"path_prefix":"/orders"},"auth":"api_key","upstream":{"targets":["https://127.0.0.1:9443"],"tls":{"trust":"internal"}}}`))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	if a.Match.PathPrefix != "/orders" || a.Auth.Name != "api_key" || a.Upstream.TLS.Trust != "internal" {
		t.Errorf("decoded %+v", a)
	}
	_, probs = ParseAPI("registry api bad", []byte(`{"match":{"path_prefx":"/x"}}`))
	if len(probs) != 1 || !strings.Contains(probs[0].String(), `match.path_prefx: unknown key "path_prefx" (did you mean "path_prefix"?)`) {
		t.Errorf("problems = %v", probs)
	}
}
