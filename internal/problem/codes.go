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

	// Subscriptions.
	CodeSubscriptionMissing   = "subscription.missing"
	CodeSubscriptionSuspended = "subscription.suspended"

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

	// OAuth2 bearer tokens (RFC 6750, RFC 9068, RFC 7662, RFC 8705).
	CodeOAuth2TokenMissing        = "oauth2.token_missing"
	CodeOAuth2TokenMalformed      = "oauth2.token_malformed"
	CodeOAuth2TokenExpired        = "oauth2.token_expired"
	CodeOAuth2TokenNotYetValid    = "oauth2.token_not_yet_valid"
	CodeOAuth2SignatureInvalid    = "oauth2.signature_invalid"
	CodeOAuth2IssuerUnknown       = "oauth2.issuer_unknown"
	CodeOAuth2AudienceMismatch    = "oauth2.audience_mismatch"
	CodeOAuth2TokenInactive       = "oauth2.token_inactive"
	CodeOAuth2CertBindingMismatch = "oauth2.cert_binding_mismatch"
	CodeOAuth2CertBindingRequired = "oauth2.cert_binding_required"
	CodeOAuth2InsufficientScope   = "oauth2.insufficient_scope"
	CodeOAuth2Unavailable         = "oauth2.unavailable"
	CodeOAuth2TenantMismatch      = "oauth2.tenant_mismatch"

	// Policies enforced in the data plane (internal/policy).
	CodeRateLimitExceeded = "ratelimit.exceeded"
	CodeQuotaExceeded     = "quota.exceeded"
	CodeIPDenied          = "ip.denied"
	CodeCORSOriginDenied  = "cors.origin_denied"

	// The admin API (/admin/v1, internal/admin).
	CodeAdminUnauthenticated      = "admin.unauthenticated"
	CodeAdminForbidden            = "admin.forbidden"
	CodeAdminNotFound             = "admin.not_found"
	CodeAdminConflict             = "admin.conflict"
	CodeAdminPreconditionFailed   = "admin.precondition_failed"
	CodeAdminInvalid              = "admin.invalid"
	CodeAdminPreconditionRequired = "admin.precondition_required"
	CodeAdminStoreUnavailable     = "admin.store_unavailable"
)

// Catalogue lists every code with its HTTP status and the title clients see.
// It is the single source for documentation and tests.
var Catalogue = map[string]Entry{
	CodeRouteNotFound:                    {404, "No API matches this request"},
	CodeMethodNotAllowed:                 {405, "Method not allowed on this route"},
	CodeRequestTooLarge:                  {413, "Request body too large"},
	CodeRequestCanceled:                  {499, "Client closed the request"},
	CodeInternal:                         {500, "Internal gateway error"},
	CodeSubscriptionMissing:              {403, "Application is not subscribed to this API"},
	CodeSubscriptionSuspended:            {403, "Application's subscription is suspended"},
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
	CodeOAuth2TokenMissing:               {401, "Access token required"},
	CodeOAuth2TokenMalformed:             {401, "Access token is malformed"},
	CodeOAuth2TokenExpired:               {401, "Access token has expired"},
	CodeOAuth2TokenNotYetValid:           {401, "Access token is not yet valid"},
	CodeOAuth2SignatureInvalid:           {401, "Access token signature is invalid"},
	CodeOAuth2IssuerUnknown:              {401, "Access token issuer is not accepted"},
	CodeOAuth2AudienceMismatch:           {401, "Access token is not meant for this API"},
	CodeOAuth2TokenInactive:              {401, "Access token is not active"},
	CodeOAuth2CertBindingMismatch:        {401, "Access token is bound to another client certificate"},
	CodeOAuth2CertBindingRequired:        {401, "Access token must be bound to a client certificate"},
	CodeOAuth2InsufficientScope:          {403, "Access token lacks a required scope"},
	CodeOAuth2Unavailable:                {503, "Access token could not be checked"},
	CodeOAuth2TenantMismatch:             {401, "Access token belongs to another tenant"},
	CodeRateLimitExceeded:                {429, "Rate limit exceeded"},
	CodeQuotaExceeded:                    {429, "Quota exceeded"},
	CodeIPDenied:                         {403, "Client address is not allowed"},
	CodeCORSOriginDenied:                 {403, "Origin is not allowed"},
	CodeAdminUnauthenticated:             {401, "Admin credentials required"},
	CodeAdminForbidden:                   {403, "Not allowed for this admin"},
	CodeAdminNotFound:                    {404, "Resource not found"},
	CodeAdminConflict:                    {409, "Resource conflict"},
	CodeAdminPreconditionFailed:          {412, "Resource changed since it was read"},
	CodeAdminInvalid:                     {422, "Invalid request"},
	CodeAdminPreconditionRequired:        {428, "If-Match required"},
	CodeAdminStoreUnavailable:            {503, "Registry unavailable"},
}

// Entry is the client-facing part of a code.
type Entry struct {
	Status int
	Title  string
}
