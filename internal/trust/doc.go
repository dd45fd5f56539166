// Package trust decides whether a peer's certificate chain is trusted: it
// verifies the chain against a named set of anchor certificates, checks the
// extended key usage the caller asks for, and checks revocation with CRLs
// (from files and URLs, refreshed in the background) and optionally OCSP.
//
// Every rejection is a *Error whose Reason is a stable word (untrusted,
// expired, not_yet_valid, wrong_usage, revoked, revocation_unavailable) and
// whose Detail is a plain sentence for the operator's log naming the
// certificate, the issuer, the dates or the revocation source. Detail may name
// internal hosts and CAs and must not be sent to clients.
//
// Any anchor ends a chain, including an intermediate CA trusted without its
// root. Go's verifier checks no revocation at all, so a Set does it: a
// certificate in the verified chain is checked against every CRL its issuer
// signed, and the leaf is also checked with OCSP when that is enabled. When
// revocation data is missing or out of date the check fails closed
// (revocation_unavailable) unless the set is configured to fail open, in
// which case the certificate is allowed and the event is logged and counted.
//
// A Set is immutable apart from its revocation data, which is swapped
// atomically by a background refresher, so Verify is safe for concurrent use
// and does no I/O except an OCSP query when its cache has no fresh answer.
package trust
