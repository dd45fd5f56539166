package telemetry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TracingOptions configures NewTracer.
type TracingOptions struct {
	// Endpoint is the collector's OTLP/HTTP URL, e.g.
	// https://collector:4318. A URL without a path gets the standard
	// /v1/traces path; any other path is used as given.
	Endpoint string
	// Insecure allows a plain http:// endpoint. Spans then cross the
	// network unencrypted and the collector is not authenticated.
	Insecure bool
	// ServiceName is the service.name resource attribute.
	ServiceName string
	// SampleRatio is the share of new traces recorded, in [0, 1]. A trace
	// the caller already sampled (or not) keeps that decision.
	SampleRatio float64
	// Headers are sent with every export, e.g. a collector's API key. Their
	// values are never logged.
	Headers map[string]string
	// TLSConfig is the TLS client configuration for an https:// endpoint:
	// the roots the collector's certificate is verified against (nil: the
	// system roots) and the gateway's client certificate for mutual TLS.
	// Nil uses the system roots and presents no certificate.
	TLSConfig *tls.Config
	// Timeout bounds one export request (DefaultExportTimeout if not
	// positive).
	Timeout time.Duration
}

// DefaultExportTimeout bounds one export request when TracingOptions names
// no timeout.
const DefaultExportTimeout = 10 * time.Second

// instrumentation names the gateway as the instrumentation scope of its
// spans.
const instrumentation = "github.com/portcullis/portcullis"

// Tracer starts the gateway's spans and exports them over OTLP/HTTP. A nil
// *Tracer is valid and does nothing: tracing is off by default and then
// costs a nil check per request.
type Tracer struct {
	tp   *sdktrace.TracerProvider
	tr   trace.Tracer
	prop propagation.TraceContext
}

// NewTracer builds a tracer that batches spans to o.Endpoint. It does not
// contact the collector: export failures are reported by the OpenTelemetry
// SDK's error handler and never fail a request.
func NewTracer(ctx context.Context, o TracingOptions) (*Tracer, error) {
	u, err := url.Parse(o.Endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("tracing endpoint %q is not a URL", o.Endpoint)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !o.Insecure {
			return nil, errors.New("tracing endpoint " + o.Endpoint + " is plain http: set insecure: true to allow it")
		}
	default:
		return nil, fmt.Errorf("tracing endpoint %q is not an http:// or https:// URL", o.Endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultExportTimeout
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(u.String()), otlptracehttp.WithTimeout(timeout)}
	if len(o.Headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(o.Headers))
	}
	if o.TLSConfig != nil && u.Scheme == "https" {
		opts = append(opts, otlptracehttp.WithTLSClientConfig(o.TLSConfig))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing exporter: %w", err)
	}
	return newTracer(o, sdktrace.NewBatchSpanProcessor(exp)), nil
}

// NewTracerWithProcessor builds a tracer that hands its spans to sp instead
// of an OTLP exporter; o.Endpoint, o.Insecure, o.Headers, o.TLSConfig and
// o.Timeout are ignored.
// Tests use it with tracetest.SpanRecorder.
func NewTracerWithProcessor(o TracingOptions, sp sdktrace.SpanProcessor) *Tracer {
	return newTracer(o, sp)
}

func newTracer(o TracingOptions, sp sdktrace.SpanProcessor) *Tracer {
	name := o.ServiceName
	if name == "" {
		name = "portcullis"
	}
	ratio := min(max(o.SampleRatio, 0), 1)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(sp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", name))),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	)
	return &Tracer{tp: tp, tr: tp.Tracer(instrumentation)}
}

// Shutdown flushes the spans still buffered and stops the exporter.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.tp.Shutdown(ctx)
}

func endNothing(int, string, string) {}

// StartRequest starts the server span for r, continuing the W3C trace
// context (traceparent, tracestate) the client sent, if any. It returns r
// with the span in its context and the function that ends the span with the
// response status, the API name and the problem code ("" on success). On a
// nil Tracer it returns r itself and a function that does nothing.
func (t *Tracer) StartRequest(r *http.Request) (*http.Request, func(status int, api, code string)) {
	if t == nil {
		return r, endNothing
	}
	ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := t.tr.Start(ctx, "portcullis "+r.Method,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("http.request.method", r.Method),
			// The path only: query strings often carry keys and tokens.
			attribute.String("url.path", r.URL.Path),
			attribute.String("server.address", hostOf(r.Host)),
			attribute.String("client.address", hostOf(r.RemoteAddr)),
		))
	return r.WithContext(ctx), func(status int, api, code string) {
		if api != "" {
			span.SetAttributes(attribute.String("portcullis.api", api))
		}
		if status != 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", status))
		}
		if code != "" {
			span.SetAttributes(attribute.String("portcullis.problem_code", code))
		}
		if status >= 500 {
			span.SetStatus(codes.Error, code)
		}
		span.End()
	}
}

// InjectUpstream writes the trace context of the span in ctx to h as
// traceparent and tracestate, replacing what the client sent, so the
// upstream's spans become children of the gateway's. When ctx holds no span
// (tracing off) h is left alone: the client's own trace context passes
// through the gateway unchanged.
func InjectUpstream(ctx context.Context, h http.Header) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return
	}
	delete(h, "Tracestate")
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(h))
}

// UpstreamSpan is the client span of one forwarded request, a child of the
// request's server span. The zero value (tracing off, or a trace that is not
// recorded) does nothing.
type UpstreamSpan struct{ span trace.Span }

// StartUpstream starts the client span "upstream <METHOD>" for sending r to
// target and returns r with that span in its context, so the traceparent
// InjectUpstream writes for the upstream names this span as the parent. It
// needs no Tracer: the span comes from the provider of the server span in
// r's context. When that span is not recording (tracing off, or a trace not
// sampled) it returns r itself and a zero UpstreamSpan, allocating nothing;
// the upstream then gets the server span's context, if any.
func StartUpstream(r *http.Request, target *url.URL) (*http.Request, UpstreamSpan) {
	parent := trace.SpanFromContext(r.Context())
	if !parent.IsRecording() {
		return r, UpstreamSpan{}
	}
	port := target.Port()
	if port == "" {
		port = "443"
		if target.Scheme == "http" {
			port = "80"
		}
	}
	n, _ := strconv.Atoi(port)
	ctx, span := parent.TracerProvider().Tracer(instrumentation).Start(r.Context(), "upstream "+r.Method,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("http.request.method", r.Method),
			attribute.String("server.address", target.Hostname()),
			attribute.Int("server.port", n),
			attribute.String("url.scheme", target.Scheme),
		))
	return r.WithContext(ctx), UpstreamSpan{span}
}

// End records the outcome of the upstream hop and ends the span. status is
// the upstream's response status, 0 when none arrived. For a failed hop, code
// is the problem code (upstream.tls.…, upstream.timeout, …) and log the
// diagnosis's key/value pairs, of which "reason" is recorded; the
// span's status is then Error with the code as its description. A response
// of 400 or more is an Error too, as for any HTTP client span. On success
// pass "" and nil.
func (u UpstreamSpan) End(status int, code string, log []any) {
	if u.span == nil {
		return
	}
	if status != 0 {
		u.span.SetAttributes(attribute.Int("http.response.status_code", status))
	}
	switch {
	case code != "":
		u.span.SetAttributes(attribute.String("error.type", code), attribute.String("portcullis.problem_code", code))
		for i := 0; i+1 < len(log); i += 2 {
			k, _ := log[i].(string)
			v, _ := log[i+1].(string)
			if k == "reason" && v != "" {
				u.span.SetAttributes(attribute.String("portcullis.upstream.reason", v))
				break
			}
		}
		u.span.SetStatus(codes.Error, code)
	case status >= 400:
		u.span.SetAttributes(attribute.String("error.type", strconv.Itoa(status)))
		u.span.SetStatus(codes.Error, "")
	}
	u.span.End()
}

// Abandon ends the span as an Error if End has not ended it, for a forward
// cut short after the response started (net/http's ErrAbortHandler panic).
// Defer it right after StartUpstream.
func (u UpstreamSpan) Abandon() {
	if u.span == nil || !u.span.IsRecording() {
		return
	}
	u.span.SetAttributes(attribute.String("error.type", "response_aborted"))
	u.span.SetStatus(codes.Error, "response aborted")
	u.span.End()
}

// hostOf drops a port from host:port.
func hostOf(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// TraceID returns the hex trace id of the span in ctx, or "" when there is
// none (tracing off), for the access log.
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}
