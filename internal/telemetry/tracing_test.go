package telemetry

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
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
		{Endpoint: "https://collector:4318", TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}, Timeout: time.Second},
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

func spanAttrs(s interface {
	Attributes() []attribute.KeyValue
}) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes() {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

func TestStartUpstreamIsChildOfServerSpan(t *testing.T) {
	tr, rec := newTracerWithExporter(t, 1)
	r := httptest.NewRequest("PUT", "https://api.example.com/orders/1", nil)
	r.Header.Set("traceparent", incoming)
	r2, endServer := tr.StartRequest(r)
	target, _ := url.Parse("https://orders.internal:9443/base")
	r3, span := StartUpstream(r2, target)
	out := http.Header{"Traceparent": {incoming}}
	InjectUpstream(r3.Context(), out)
	span.End(201, "", nil)
	span.Abandon() // after End: no effect
	endServer(201, "orders", "")

	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want upstream and server", len(spans))
	}
	up, srv := spans[0], spans[1]
	if up.Name() != "upstream PUT" || up.SpanKind() != trace.SpanKindClient {
		t.Errorf("upstream span %q kind %v", up.Name(), up.SpanKind())
	}
	if up.Parent().SpanID() != srv.SpanContext().SpanID() || up.SpanContext().TraceID() != srv.SpanContext().TraceID() {
		t.Errorf("upstream span parent %s trace %s; server span %s trace %s",
			up.Parent().SpanID(), up.SpanContext().TraceID(), srv.SpanContext().SpanID(), srv.SpanContext().TraceID())
	}
	want := "00-4bf92f3577b34da6a3ce929d0e0e4736-" + up.SpanContext().SpanID().String() + "-01"
	if got := out.Get("traceparent"); got != want {
		t.Errorf("upstream traceparent %q, want the upstream span's %q", got, want)
	}
	attrs := spanAttrs(up)
	for k, v := range map[string]string{
		"http.request.method": "PUT", "server.address": "orders.internal", "server.port": "9443",
		"url.scheme": "https", "http.response.status_code": "201",
	} {
		if attrs[k] != v {
			t.Errorf("%s = %q, want %q", k, attrs[k], v)
		}
	}
	if up.Status().Code != codes.Unset {
		t.Errorf("status %v on success", up.Status())
	}
}

func TestUpstreamSpanOutcomes(t *testing.T) {
	for _, c := range []struct {
		name       string
		target     string
		status     int
		code       string
		log        []any
		abandon    bool
		wantPort   string
		wantStatus codes.Code
		wantAttrs  map[string]string
	}{
		{
			name: "tls failure", target: "https://orders.internal", code: "upstream.tls.untrusted",
			log:      []any{"hop", "gateway→upstream", "peer", "orders.internal:443", "reason", "unknown_authority", "plain", "…"},
			wantPort: "443", wantStatus: codes.Error,
			wantAttrs: map[string]string{"error.type": "upstream.tls.untrusted", "portcullis.problem_code": "upstream.tls.untrusted", "portcullis.upstream.reason": "unknown_authority"},
		},
		{
			name: "upstream 503", target: "http://orders.internal", status: 503,
			wantPort: "80", wantStatus: codes.Error,
			wantAttrs: map[string]string{"error.type": "503", "http.response.status_code": "503"},
		},
		{
			name: "aborted", target: "https://orders.internal:8443", status: 200, abandon: true,
			wantPort: "8443", wantStatus: codes.Error,
			wantAttrs: map[string]string{"error.type": "response_aborted"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr, rec := newTracerWithExporter(t, 1)
			r, endServer := tr.StartRequest(httptest.NewRequest("GET", "/", nil))
			target, _ := url.Parse(c.target)
			_, span := StartUpstream(r, target)
			if c.abandon {
				span.Abandon()
			} else {
				span.End(c.status, c.code, c.log)
			}
			endServer(502, "orders", c.code)
			spans := rec.Ended()
			if len(spans) != 2 {
				t.Fatalf("%d spans", len(spans))
			}
			up := spans[0]
			if up.Status().Code != c.wantStatus {
				t.Errorf("status %v, want %v", up.Status(), c.wantStatus)
			}
			if c.code != "" && up.Status().Description != c.code {
				t.Errorf("status description %q, want the problem code", up.Status().Description)
			}
			attrs := spanAttrs(up)
			if attrs["server.port"] != c.wantPort {
				t.Errorf("server.port %q, want %q", attrs["server.port"], c.wantPort)
			}
			for k, v := range c.wantAttrs {
				if attrs[k] != v {
					t.Errorf("%s = %q, want %q", k, attrs[k], v)
				}
			}
			if _, ok := attrs["plain"]; ok {
				t.Error("the diagnosis sentence was copied into the span")
			}
		})
	}
}

func TestStartUpstreamUnsampledOrOff(t *testing.T) {
	target, _ := url.Parse("https://orders.internal")
	// Not sampled: no upstream span; the upstream gets the server span's
	// (unsampled) context.
	tr, rec := newTracerWithExporter(t, 0)
	r, endServer := tr.StartRequest(httptest.NewRequest("GET", "/", nil))
	r2, span := StartUpstream(r, target)
	if r2 != r {
		t.Error("an unsampled request was copied")
	}
	span.End(200, "", nil)
	endServer(200, "a", "")
	if n := len(rec.Ended()); n != 0 {
		t.Errorf("%d spans recorded at ratio 0", n)
	}

	// Off: nothing at all, and no allocation.
	plain := httptest.NewRequest("GET", "/", nil)
	allocs := testing.AllocsPerRun(100, func() {
		r2, span := StartUpstream(plain, target)
		defer span.Abandon()
		span.End(502, "upstream.timeout", []any{"reason", "timeout"})
		if r2 != plain {
			t.Fatal("request copied with tracing off")
		}
	})
	if allocs != 0 {
		t.Errorf("StartUpstream with tracing off allocates %v per request", allocs)
	}
}
