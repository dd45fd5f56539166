package snapshot

import (
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/testpki"
)

func TestCompileCollector(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "otelCA")
	caFile := ca.WriteCA(t, dir, "otel-ca")
	cert, key := ca.Issue(t, "gateway-otel", testpki.Client()).WriteFiles(t, dir, "gw-otel")
	t.Setenv("TEST_OTEL_KEY", "k-123")
	f := config.File{
		TrustStores: map[string]config.TrustStore{"otel": {PEM: config.StringList{caFile}}, "unused": {PEM: config.StringList{"missing.pem"}}},
		Tracing: config.Tracing{
			OTLPEndpoint:      "https://collector:4318",
			Trust:             "otel",
			ClientCertificate: &config.KeySource{Cert: cert, Key: key},
			Headers:           map[string]string{"X-Scope-OrgID": "gw"},
			HeadersEnv:        map[string]string{"X-Api-Key": "TEST_OTEL_KEY"},
			Timeout:           3 * time.Second,
		},
	}
	col, probs := CompileCollector(f, Options{})
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	if col.TLSConfig == nil || col.TLSConfig.RootCAs == nil || len(col.TLSConfig.Certificates) != 1 {
		t.Fatalf("TLS config %+v", col.TLSConfig)
	}
	if col.Headers["X-Scope-OrgID"] != "gw" || col.Headers["X-Api-Key"] != "k-123" || col.Timeout != 3*time.Second {
		t.Errorf("headers %v timeout %v", col.Headers, col.Timeout)
	}

	// Plain http: no TLS configuration; tracing off: nothing at all.
	f.Tracing = config.Tracing{OTLPEndpoint: "http://collector:4318", Insecure: true}
	if col, probs := CompileCollector(f, Options{}); len(probs) > 0 || col.TLSConfig != nil {
		t.Errorf("http endpoint: %+v %v", col, probs)
	}
	if col, probs := CompileCollector(config.File{}, Options{}); col != nil || probs != nil {
		t.Errorf("tracing off: %+v %v", col, probs)
	}

	// Every unusable setting is a problem at its key; no value is quoted.
	t.Setenv("TEST_OTEL_EMPTY", "")
	f.Tracing = config.Tracing{
		OTLPEndpoint:      "https://collector:4318",
		Trust:             "unused",
		ClientCertificate: &config.KeySource{Cert: "nothere.crt", Key: "nothere.key"},
		HeadersEnv:        map[string]string{"X-Api-Key": "TEST_OTEL_UNSET_VAR", "X-Other": "TEST_OTEL_EMPTY"},
	}
	_, probs = CompileCollector(f, Options{BaseDir: dir})
	var paths []string
	for _, p := range probs {
		paths = append(paths, p.Path)
	}
	want := "trust_stores.unused tracing.client_certificate tracing.headers_env.X-Api-Key tracing.headers_env.X-Other"
	if strings.Join(paths, " ") != want {
		t.Errorf("problems at %v, want %s: %v", paths, want, probs)
	}
}
