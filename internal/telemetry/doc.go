// Package telemetry provides the gateway's operational signals: Prometheus
// metrics on a private registry, certificate-expiry warnings, and the
// /healthz and /readyz endpoints served on the admin listener.
// OpenTelemetry tracing (a span per request, exported over OTLP/HTTP, W3C
// trace context passed to upstreams) is off unless a Tracer is built.
package telemetry
