package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/snapshot"
	"github.com/portcullis/portcullis/internal/telemetry"
	"github.com/portcullis/portcullis/internal/testpki"
)

const clientTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// tracedGateway starts a real gateway on loopback in front of a backend
// that reports the traceparent it received in X-Got-Traceparent.
func tracedGateway(t *testing.T, tr *telemetry.Tracer) (url string, client *http.Client) {
	t.Helper()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "traceCA")
	be := ca.Issue(t, "backend", testpki.Server(), testpki.DNS("localhost"))
	lis := ca.Issue(t, "listener", testpki.Server(), testpki.DNS("localhost"))
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Got-Traceparent", r.Header.Get("traceparent"))
		io.WriteString(w, "ok")
	}))
	backend.TLS = &tls.Config{Certificates: []tls.Certificate{be.TLS()}}
	backend.StartTLS()
	t.Cleanup(backend.Close)
	caFile := ca.WriteCA(t, dir, "ca")
	lc, lk := lis.WriteFiles(t, dir, "lis")
	yaml := fmt.Sprintf(`
log: { access_log: false }
listeners:
  - name: public
    address: "127.0.0.1:0"
    tls: { certificates: [{ cert: %s, key: %s }] }
trust_stores:
  internal: { pem: %s }
apis:
  - name: api-a
    match: { path_prefix: /a }
    strip_prefix: true
    upstream: { targets: [ %s ], tls: { trust: internal, server_name: localhost } }
`, lc, lk, caFile, backend.URL)
	d, probs := config.Parse("trace.yaml", []byte(yaml))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	f := config.WithDefaults(d.File)
	if ps := config.Validate(f); len(ps) > 0 {
		t.Fatal(ps)
	}
	snap, probs := snapshot.Compile(f, snapshot.Options{})
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	srv := New(slog.New(slog.DiscardHandler), slog.New(slog.DiscardHandler))
	srv.SetTracer(tr)
	if err := srv.Start(snap); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	tp := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}}
	t.Cleanup(tp.CloseIdleConnections)
	return "https://" + srv.Addr("public").String(), &http.Client{Transport: tp}
}

func get(t *testing.T, c *http.Client, url, traceparent string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// ended waits for n spans: the client can read the whole response before
// the handler returns and ends its span.
func ended(rec *tracetest.SpanRecorder, n int) []sdktrace.ReadOnlySpan {
	deadline := time.Now().Add(5 * time.Second)
	for len(rec.Ended()) < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return rec.Ended()
}

func TestTracingPropagatesToUpstream(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tr := telemetry.NewTracerWithProcessor(telemetry.TracingOptions{SampleRatio: 1}, rec)
	url, c := tracedGateway(t, tr)

	resp := get(t, c, url+"/a/hello?k=secret", clientTraceparent)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	spans := ended(rec, 2)
	if len(spans) != 2 {
		t.Fatalf("%d spans ended, want the upstream and the server span", len(spans))
	}
	// The upstream span ends first, inside the server span.
	up, s := spans[0], spans[1]
	if s.Name() != "portcullis GET" || s.Parent().SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("span %q parent %s", s.Name(), s.Parent().SpanID())
	}
	if up.Name() != "upstream GET" || up.Parent().SpanID() != s.SpanContext().SpanID() || up.SpanContext().TraceID() != s.SpanContext().TraceID() {
		t.Errorf("upstream span %q parent %s trace %s, want a child of %s", up.Name(), up.Parent().SpanID(), up.SpanContext().TraceID(), s.SpanContext().SpanID())
	}
	upAttrs := map[string]string{}
	for _, kv := range up.Attributes() {
		upAttrs[string(kv.Key)] = kv.Value.String()
	}
	if upAttrs["server.address"] != "127.0.0.1" || upAttrs["url.scheme"] != "https" || upAttrs["http.response.status_code"] != "200" || upAttrs["server.port"] == "" {
		t.Errorf("upstream span attributes %v", upAttrs)
	}
	attrs := map[string]string{}
	for _, kv := range s.Attributes() {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	for k, want := range map[string]string{
		"http.request.method": "GET", "url.path": "/a/hello", "server.address": "127.0.0.1",
		"portcullis.api": "api-a", "http.response.status_code": "200",
	} {
		if attrs[k] != want {
			t.Errorf("span attribute %s = %q, want %q", k, attrs[k], want)
		}
	}
	got := strings.Split(resp.Header.Get("X-Got-Traceparent"), "-")
	if len(got) != 4 || got[1] != "4bf92f3577b34da6a3ce929d0e0e4736" || got[2] != up.SpanContext().SpanID().String() {
		t.Errorf("backend got traceparent %q; want trace 4bf92f…4736 with the upstream span %s as parent", resp.Header.Get("X-Got-Traceparent"), up.SpanContext().SpanID())
	}

	// A 404 is traced too, with its problem code; nothing was forwarded.
	if resp := get(t, c, url+"/nowhere", ""); resp.StatusCode != 404 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	spans = ended(rec, 3)
	if len(spans) != 3 {
		t.Fatalf("%d spans ended", len(spans))
	}
	last := spans[2]
	if last.Parent().IsValid() {
		t.Errorf("request without traceparent got parent %s", last.Parent().SpanID())
	}
	var code string
	for _, kv := range last.Attributes() {
		if kv.Key == "portcullis.problem_code" {
			code = kv.Value.AsString()
		}
	}
	if code == "" {
		t.Errorf("404 span has no problem code: %v", last.Attributes())
	}
}

func TestTracingOffPassesClientTraceparent(t *testing.T) {
	url, c := tracedGateway(t, nil)
	resp := get(t, c, url+"/a/hello", clientTraceparent)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := resp.Header.Get("X-Got-Traceparent"); got != clientTraceparent {
		t.Errorf("with tracing off the backend got %q, want the client's %q", got, clientTraceparent)
	}
	if resp := get(t, c, url+"/a/hello", ""); resp.Header.Get("X-Got-Traceparent") != "" {
		t.Errorf("with tracing off the gateway invented a traceparent: %q", resp.Header.Get("X-Got-Traceparent"))
	}
}
