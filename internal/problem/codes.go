package problem

// Stable problem codes. Clients may rely on them; renaming one is a breaking
// change. Every code here is documented in docs/problem-codes.md, and a test
// checks that the two lists agree.
const (
	// Requests and routing.
	CodeRouteNotFound    = "route.not_found"
	CodeMethodNotAllowed = "route.method_not_allowed"
	CodeRequestTooLarge  = "request.too_large"
	CodeRequestCanceled  = "request.canceled"
	CodeInternal         = "gateway.internal"

	// Upstream connection failures (gateway → API hop).
	CodeUpstreamConnectRefused = "upstream.connect_refused"
	CodeUpstreamConnectFailed  = "upstream.connect_failed"
	CodeUpstreamTimeout        = "upstream.timeout"
	CodeUpstreamProtocol       = "upstream.protocol_error"

	// Upstream TLS failures (gateway → API hop).
	CodeUpstreamTLSUnknownAuthority      = "upstream.tls.unknown_authority"
	CodeUpstreamTLSHostnameMismatch      = "upstream.tls.hostname_mismatch"
	CodeUpstreamTLSCertExpired           = "upstream.tls.cert_expired"
	CodeUpstreamTLSCertNotYetValid       = "upstream.tls.cert_not_yet_valid"
	CodeUpstreamTLSCertInvalid           = "upstream.tls.cert_invalid"
	CodeUpstreamTLSClientCertRejected    = "upstream.tls.client_cert_rejected"
	CodeUpstreamTLSClientCertRequired    = "upstream.tls.client_cert_required"
	CodeUpstreamTLSPinMismatch           = "upstream.tls.pin_mismatch"
	CodeUpstreamTLSProtocolVersion       = "upstream.tls.protocol_version"
	CodeUpstreamTLSHandshake             = "upstream.tls.handshake_failed"
	CodeUpstreamTLSNotTLS                = "upstream.tls.not_tls"
	CodeUpstreamTLSCertRevoked           = "upstream.tls.cert_revoked"
	CodeUpstreamTLSRevocationUnavailable = "upstream.tls.revocation_unavailable"

	// The Host header selects an API whose client-certificate policy differs
	// from the one the TLS connection was negotiated under (SNI ≠ Host).
	CodeMisdirected = "route.misdirected"

	// Client-certificate authentication (consumer → gateway hop).
	CodeClientCertMissing     = "mtls.client_cert_missing"
	CodeClientCertUntrusted   = "mtls.client_cert_untrusted"
	CodeClientCertExpired     = "mtls.client_cert_expired"
	CodeClientCertNotYetValid = "mtls.client_cert_not_yet_valid"
	CodeClientCertRevoked     = "mtls.client_cert_revoked"
	CodeClientCertWrongUsage  = "mtls.client_cert_wrong_usage"
	CodeClientCertNotAllowed  = "mtls.client_cert_not_allowed"
	CodeUnknownApplication    = "mtls.unknown_application"
	CodeRevocationUnavailable = "mtls.revocation_unavailable"

	// API keys.
	CodeAPIKeyMissing = "api_key.missing"
	CodeAPIKeyInvalid = "api_key.invalid"

	// Combined authentication (all_of).
	CodeConflictingApplications = "auth.conflicting_applications"
)

// Catalogue lists every code with its HTTP status and the title clients see.
// It is the single source for documentation and tests.
var Catalogue = map[string]Entry{
	CodeRouteNotFound:                    {404, "No API matches this request"},
	CodeMethodNotAllowed:                 {405, "Method not allowed on this route"},
	CodeRequestTooLarge:                  {413, "Request body too large"},
	CodeRequestCanceled:                  {499, "Client closed the request"},
	CodeInternal:                         {500, "Internal gateway error"},
	CodeUpstreamConnectRefused:           {502, "Upstream refused the connection"},
	CodeUpstreamConnectFailed:            {502, "Could not connect to the upstream"},
	CodeUpstreamTimeout:                  {504, "Upstream did not answer in time"},
	CodeUpstreamProtocol:                 {502, "Upstream sent an invalid response"},
	CodeUpstreamTLSUnknownAuthority:      {502, "Upstream certificate is not trusted"},
	CodeUpstreamTLSHostnameMismatch:      {502, "Upstream certificate does not match its name"},
	CodeUpstreamTLSCertExpired:           {502, "Upstream certificate has expired"},
	CodeUpstreamTLSCertNotYetValid:       {502, "Upstream certificate is not yet valid"},
	CodeUpstreamTLSCertInvalid:           {502, "Upstream certificate is invalid"},
	CodeUpstreamTLSClientCertRejected:    {502, "Upstream rejected the gateway's certificate"},
	CodeUpstreamTLSClientCertRequired:    {502, "Upstream requires a client certificate"},
	CodeUpstreamTLSPinMismatch:           {502, "Upstream certificate does not match the pinned key"},
	CodeUpstreamTLSProtocolVersion:       {502, "No TLS version in common with the upstream"},
	CodeUpstreamTLSHandshake:             {502, "TLS handshake with the upstream failed"},
	CodeUpstreamTLSNotTLS:                {502, "Upstream does not speak TLS"},
	CodeUpstreamTLSCertRevoked:           {502, "Upstream certificate is revoked"},
	CodeUpstreamTLSRevocationUnavailable: {502, "Upstream certificate's revocation status is unknown"},
	CodeMisdirected:                      {421, "Request sent on a connection for another host"},
	CodeClientCertMissing:                {401, "Client certificate required"},
	CodeClientCertUntrusted:              {401, "Client certificate is not trusted"},
	CodeClientCertExpired:                {401, "Client certificate has expired"},
	CodeClientCertNotYetValid:            {401, "Client certificate is not yet valid"},
	CodeClientCertRevoked:                {401, "Client certificate has been revoked"},
	CodeClientCertWrongUsage:             {401, "Client certificate is not valid for client authentication"},
	CodeClientCertNotAllowed:             {403, "Client certificate is not allowed for this API"},
	CodeUnknownApplication:               {401, "Client certificate belongs to no application"},
	CodeRevocationUnavailable:            {401, "Client certificate revocation status unavailable"},
	CodeAPIKeyMissing:                    {401, "API key required"},
	CodeAPIKeyInvalid:                    {401, "API key is not valid"},
	CodeConflictingApplications:          {401, "Credentials belong to different applications"},
}

// Entry is the client-facing part of a code.
type Entry struct {
	Status int
	Title  string
}
