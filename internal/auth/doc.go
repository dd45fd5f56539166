// Package auth decides who is calling an API: it authenticates a request with
// a client certificate (mtls), an OAuth2 bearer token (oauth2: JWTs checked
// against JWKS or in-process keys, opaque tokens by RFC 7662 introspection,
// RFC 8705 certificate binding), an API key (api_key) or a combination of
// them (AnyOf, AllOf), resolves the caller to an application, and builds the
// client-certificate headers forwarded to the upstream.
//
// Every Authenticator fails closed: a request it cannot prove is rejected
// with a *problem.Error whose Code says exactly what was wrong and whose
// Detail is a sentence safe for any client. The subject, issuer,
// fingerprint, trust set, reason and a plain explanation with a fix go only
// to the operator's log, in problem.Error.Log.
//
// Client certificates are requested, not verified, during the handshake
// (tls.RequestClientCert, see DESIGN.md §7), so MTLS verifies the presented
// chain itself, against the API's own trust sets, on every request.
//
// Forwarded-certificate headers are an attack surface: the pipeline calls
// StripForwardedCertHeaders on every request before anything reads headers,
// and SetRFC9440 or SetXFCC only ever write the verified chain.
//
// Authenticators are built once per configuration snapshot and are
// immutable afterwards, so they are safe for concurrent use.
package auth
