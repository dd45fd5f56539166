// Package tlsdiag turns TLS handshake and certificate-verification failures
// into a Diagnosis: which hop failed, a stable problem code and metric reason,
// one plain sentence for the operator that names the certificates, trust set,
// names, dates or alert involved, and what to change.
//
// Upstream classifies failures of the gateway→upstream hop; Client
// classifies failed client→gateway handshakes, whose reasons form the closed
// set ClientReasons.
//
// Diagnoses are for the operator's log. The client only ever sees the problem
// code and a safe sentence chosen by the caller; Plain and Fix may name
// internal hosts, issuers and trust sets and must not leave the gateway.
//
// Classification is pure: it inspects the error chain (and, for remote TLS
// alerts, the context the caller supplies) and never does I/O, so it is cheap
// enough to run on every failed request and safe to call concurrently.
package tlsdiag
