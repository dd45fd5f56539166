// Package telemetry provides the gateway's operational signals: Prometheus
// metrics on a private registry, certificate-expiry warnings, and the
// /healthz and /readyz endpoints served on the admin listener.
package telemetry
