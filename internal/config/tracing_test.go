package config

import (
	"strings"
	"testing"
)

func TestTracingValidation(t *testing.T) {
	base := "listeners: [{name: public, address: \"127.0.0.1:8443\", tls: {certificates: [{cert: a.crt, key: a.key}]}}]\napis: [{name: a, upstream: {targets: [https://127.0.0.1:1]}}]\n"
	for _, c := range []struct {
		tracing, wantPath, wantMsg string
	}{
		{"", "", ""},
		{"tracing: {otlp_endpoint: https://collector:4318}", "", ""},
		{"tracing: {otlp_endpoint: http://collector:4318, insecure: true, sample_ratio: 0}", "", ""},
		{"tracing: {otlp_endpoint: http://collector:4318}", "tracing.otlp_endpoint", "plain http"},
		{"tracing: {otlp_endpoint: collector:4318}", "tracing.otlp_endpoint", "not an http:// or https:// URL"},
		{"tracing: {otlp_endpoint: grpc://collector:4317}", "tracing.otlp_endpoint", "not an http:// or https:// URL"},
		{"tracing: {otlp_endpoint: \"https://c:4318/v1/traces?x=1\"}", "tracing.otlp_endpoint", "query"},
		{"tracing: {otlp_endpoint: https://c:4318, sample_ratio: -0.1}", "tracing.sample_ratio", "between 0 and 1"},
		{"tracing: {otlp_endpoint: https://c:4318, sample_ratio: 1.01}", "tracing.sample_ratio", "between 0 and 1"},
		{"tracing: {insecure: true}", "tracing.insecure", "only with otlp_endpoint"},
	} {
		d, probs := Parse("t.yaml", []byte(base+c.tracing))
		if len(probs) > 0 {
			t.Fatalf("%s: %v", c.tracing, probs)
		}
		probs = Validate(WithDefaults(d.File))
		if c.wantPath == "" {
			if len(probs) > 0 {
				t.Errorf("%s: %v", c.tracing, probs)
			}
			continue
		}
		if len(probs) != 1 || probs[0].Path != c.wantPath || !strings.Contains(probs[0].Message, c.wantMsg) {
			t.Errorf("%s: got %v, want %s: …%s…", c.tracing, probs, c.wantPath, c.wantMsg)
		}
	}
}

func TestTracingDefaultsAndWarning(t *testing.T) {
	f := WithDefaults(File{})
	if f.Tracing.OTLPEndpoint != "" || f.Tracing.ServiceName != "portcullis" || *f.Tracing.SampleRatio != 1 {
		t.Errorf("defaults: %+v", f.Tracing)
	}
	zero := 0.0
	f = WithDefaults(File{Tracing: Tracing{SampleRatio: &zero}})
	if *f.Tracing.SampleRatio != 0 {
		t.Error("an explicit sample_ratio: 0 was overridden")
	}
	ws := Warnings(File{Tracing: Tracing{OTLPEndpoint: "http://c:4318", Insecure: true}})
	if len(ws) != 1 || ws[0].Path != "tracing.insecure" {
		t.Errorf("warnings = %v", ws)
	}
	if ws := Warnings(File{Tracing: Tracing{OTLPEndpoint: "https://c:4318"}}); len(ws) != 0 {
		t.Errorf("https endpoint warned: %v", ws)
	}
}

func TestTracingCollectorValidation(t *testing.T) {
	base := "listeners: [{name: public, address: \"127.0.0.1:8443\", tls: {certificates: [{cert: a.crt, key: a.key}]}}]\n" +
		"trust_stores: {collector-ca: {pem: [ca.pem]}}\n" +
		"apis: [{name: a, upstream: {targets: [https://127.0.0.1:1]}}]\n"
	for _, c := range []struct {
		tracing   string
		wantPaths []string
		wantMsg   string
	}{
		{"tracing: {otlp_endpoint: https://c:4318, trust: collector-ca, timeout: 3s, client_certificate: {cert: gw.crt, key: gw.key}, headers: {X-Scope-OrgID: tenant-1}, headers_env: {X-Api-Key: COLLECTOR_KEY}}", nil, ""},
		{"tracing: {otlp_endpoint: https://c:4318, client_certificate: {keystore: {path: gw.p12, password_env: GW_PASS}}}", nil, ""},
		{"tracing: {otlp_endpoint: https://c:4318, trust: colector-ca}", []string{"tracing.trust"}, `trust store "colector-ca" is not defined`},
		{"tracing: {otlp_endpoint: https://c:4318, client_certificate: {cert: gw.crt}}", []string{"tracing.client_certificate.key"}, "key is required"},
		{"tracing: {otlp_endpoint: https://c:4318, timeout: -1s}", []string{"tracing.timeout"}, "positive"},
		{"tracing: {otlp_endpoint: https://c:4318, headers_env: {X-Api-Key: \"my key\"}}", []string{"tracing.headers_env.X-Api-Key"}, "not an environment variable name"},
		{"tracing: {otlp_endpoint: https://c:4318, headers: {\"bad header\": v}}", []string{"tracing.headers.bad header"}, "not an HTTP header name"},
		{"tracing: {otlp_endpoint: https://c:4318, headers: {Content-Type: text/plain}}", []string{"tracing.headers.Content-Type"}, "cannot be configured"},
		{"tracing: {otlp_endpoint: https://c:4318, headers: {X-Key: \"a\\r\\nInjected: 1\"}}", []string{"tracing.headers.X-Key"}, "line break"},
		{"tracing: {otlp_endpoint: https://c:4318, headers: {X-Key: a}, headers_env: {x-key: K}}", []string{"tracing.headers_env.x-key"}, "already set by tracing.headers.X-Key"},
		{"tracing: {otlp_endpoint: http://c:4318, insecure: true, trust: collector-ca}", []string{"tracing.trust"}, "applies to an https:// otlp_endpoint"},
		{"tracing: {otlp_endpoint: http://c:4318, insecure: true, client_certificate: {cert: a, key: b}}", []string{"tracing.client_certificate"}, "applies to an https:// otlp_endpoint"},
		{"tracing: {headers_env: {X-Api-Key: K}, trust: collector-ca}", []string{"tracing.headers_env", "tracing.trust"}, "only with otlp_endpoint"},
	} {
		d, probs := Parse("t.yaml", []byte(base+c.tracing))
		if len(probs) > 0 {
			t.Fatalf("%s: %v", c.tracing, probs)
		}
		probs = Validate(WithDefaults(d.File))
		var paths []string
		for _, p := range probs {
			paths = append(paths, p.Path)
			if !strings.Contains(p.Message, c.wantMsg) {
				t.Errorf("%s: %s: %q does not say %q", c.tracing, p.Path, p.Message, c.wantMsg)
			}
			if strings.Contains(p.Message, "Injected") {
				t.Errorf("%s: a header value is quoted in %q", c.tracing, p.Message)
			}
		}
		if strings.Join(paths, " ") != strings.Join(c.wantPaths, " ") {
			t.Errorf("%s: problems at %v, want %v (%v)", c.tracing, paths, c.wantPaths, probs)
		}
	}
	if f := WithDefaults(File{}); f.Tracing.Timeout != DefaultTracingTimeout {
		t.Errorf("default timeout %v", f.Tracing.Timeout)
	}
	ws := Warnings(File{Tracing: Tracing{OTLPEndpoint: "http://c:4318", Insecure: true, HeadersEnv: map[string]string{"X-Api-Key": "K"}}})
	if len(ws) != 2 || ws[1].Path != "tracing.headers_env" {
		t.Errorf("warnings = %v", ws)
	}
}
