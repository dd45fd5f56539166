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
