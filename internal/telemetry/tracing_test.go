package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// newTracerWithExporter is a tracer that records every span synchronously.
func newTracerWithExporter(t *testing.T, ratio float64) (*Tracer, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tr := NewTracerWithProcessor(TracingOptions{ServiceName: "gw-test", SampleRatio: ratio}, rec)
	t.Cleanup(func() { tr.Shutdown(context.Background()) })
	return tr, rec
}

const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestStartRequestContinuesIncomingTrace(t *testing.T) {
	tr, rec := newTracerWithExporter(t, 1)
	r := httptest.NewRequest("POST", "https://api.example.com:8443/orders/1?token=secret", nil)
	r.Header.Set("traceparent", incoming)
	r.Header.Set("tracestate", "vendor=1")
	r2, end := tr.StartRequest(r)
	if id := TraceID(r2.Context()); id != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("TraceID = %q, want the incoming trace id", id)
	}
	if id := TraceID(r.Context()); id != "" {
		t.Errorf("TraceID without a span = %q, want empty", id)
	}
	out := http.Header{"Traceparent": {incoming}, "Tracestate": {"vendor=1"}}
	InjectUpstream(r2.Context(), out)
	end(502, "orders", "upstream.timeout")

	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	s := spans[0]
	if s.Name() != "portcullis POST" || s.SpanKind() != trace.SpanKindServer {
		t.Errorf("span %q kind %v", s.Name(), s.SpanKind())
	}
	if s.Parent().SpanID().String() != "00f067aa0ba902b7" || s.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("parent %v trace %v", s.Parent().SpanID(), s.SpanContext().TraceID())
	}
	attrs := map[string]string{}
	for _, kv := range s.Attributes() {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	for k, want := range map[string]string{
		"http.request.method": "POST", "url.path": "/orders/1", "server.address": "api.example.com",
		"portcullis.api": "orders", "http.response.status_code": "502", "portcullis.problem_code": "upstream.timeout",
	} {
		if attrs[k] != want {
			t.Errorf("%s = %q, want %q", k, attrs[k], want)
		}
	}
	for k, v := range attrs {
		if strings.Contains(v, "secret") {
			t.Errorf("attribute %s carries the query: %q", k, v)
		}
	}
	want := "00-4bf92f3577b34da6a3ce929d0e0e4736-" + s.SpanContext().SpanID().String() + "-01"
	if got := out.Get("traceparent"); got != want {
		t.Errorf("upstream traceparent %q, want %q", got, want)
	}
	if got := out.Get("tracestate"); got != "vendor=1" {
		t.Errorf("upstream tracestate %q", got)
	}
}

func TestSampleRatioZeroStillPropagates(t *testing.T) {
	tr, rec := newTracerWithExporter(t, 0)
	r2, end := tr.StartRequest(httptest.NewRequest("GET", "/", nil))
	out := http.Header{}
	InjectUpstream(r2.Context(), out)
	end(200, "a", "")
	if n := len(rec.Ended()); n != 0 {
		t.Errorf("%d spans recorded at ratio 0", n)
	}
	if tp := out.Get("traceparent"); !strings.HasSuffix(tp, "-00") {
		t.Errorf("traceparent %q, want an unsampled context", tp)
	}
}

func TestNilTracerIsInert(t *testing.T) {
	var tr *Tracer
	r := httptest.NewRequest("GET", "/", nil)
	h := http.Header{"Traceparent": {incoming}}
	allocs := testing.AllocsPerRun(100, func() {
		r2, end := tr.StartRequest(r)
		InjectUpstream(r2.Context(), h)
		end(200, "a", "")
	})
	if allocs != 0 {
		t.Errorf("nil tracer allocates %v per request", allocs)
	}
	if h.Get("traceparent") != incoming {
		t.Errorf("client traceparent changed with tracing off: %q", h.Get("traceparent"))
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestNewTracerChecksEndpoint(t *testing.T) {
	ctx := context.Background()
	for _, o := range []TracingOptions{
		{Endpoint: "http://collector:4318"},
		{Endpoint: "collector:4318"},
		{Endpoint: "ftp://collector"},
	} {
		if _, err := NewTracer(ctx, o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	for _, o := range []TracingOptions{
		{Endpoint: "https://collector:4318", SampleRatio: 1, Headers: map[string]string{"x-key": "k"}},
		{Endpoint: "http://127.0.0.1:1/custom/path", Insecure: true},
	} {
		tr, err := NewTracer(ctx, o)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		// Nothing was exported, so shutdown does not contact the collector.
		if err := tr.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}
}
