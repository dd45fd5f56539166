// Package telemetry provides the gateway's operational signals: Prometheus
// metrics on a private registry, certificate-expiry warnings, and the
// /healthz and /readyz endpoints served on the admin listener.
// OpenTelemetry tracing (a server span per request and a client span per
// upstream hop, exported over OTLP/HTTP, W3C trace context passed to
// upstreams) is off unless a Tracer is built.
package telemetry
