package config

import (
	"time"
)

// File is the whole configuration file.
type File struct {
	// Version is the schema version. Only 1 exists; zero means 1.
	Version int `yaml:"version"`
	// Log configures logging.
	Log Log `yaml:"log"`
	// ShutdownGrace is how long in-flight requests may run after SIGTERM or
	// SIGINT before connections are closed. Default 30s.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// Listeners are the TLS listeners clients connect to. At least one.
	Listeners []Listener `yaml:"listeners"`
	// TrustStores are named sets of trusted CA certificates, referred to by name.
	TrustStores map[string]TrustStore `yaml:"trust_stores"`
	// Tenants are isolated sets of APIs, applications, plans and
	// subscriptions, told apart by request host and/or path prefix. Every
	// resource without a tenant belongs to the tenant "default", which
	// needs no declaration.
	Tenants []Tenant `yaml:"tenants"`
	// APIs are the published APIs.
	APIs []API `yaml:"apis"`
	// Applications are the API consumers, with the credentials that identify
	// them (client certificates, API keys, OAuth2 client registrations).
	Applications []Application `yaml:"applications"`
	// Plans are offered on APIs: rate limit, quota and allowed scopes.
	Plans []Plan `yaml:"plans"`
	// Subscriptions give an application a plan on an API.
	Subscriptions []Subscription `yaml:"subscriptions"`
	// AuthorizationServer turns on the built-in OAuth2 authorization server
	// (client_credentials) for the applications' OAuth2 clients.
	AuthorizationServer *AuthorizationServer `yaml:"authorization_server"`
	// Store is the registry, "sqlite:PATH" (relative to this file). When
	// set, the file's applications, plans and subscriptions are applied
	// into it at every load (marked file-managed), and resources created
	// through the admin API are served beside them.
	Store string `yaml:"store"`
	// Admin is the management API's listener.
	Admin *Admin `yaml:"admin"`
	// Tracing exports OpenTelemetry spans over OTLP/HTTP. Off unless
	// otlp_endpoint is set; read at start only (restart to change).
	Tracing Tracing `yaml:"tracing"`
}

// DefaultTenantName is the tenant of every resource that names none.
const DefaultTenantName = "default"

// Tenant is one isolated set of resources. A request is resolved to a
// tenant by its host (Hosts) and/or path (PathPrefix) before any API is
// chosen, and only that tenant's APIs can serve it; an API authenticates
// only that tenant's applications, and subscriptions, plans and limits never
// cross tenants.
type Tenant struct {
	// Name identifies the tenant; resources name it in their tenant key.
	Name string `yaml:"name"`
	// Hosts are the request hosts (exact, or "*.example.com" for one
	// label) that belong to this tenant: its APIs are served only on them,
	// and no other tenant's API is served there.
	Hosts []string `yaml:"hosts"`
	// PathPrefix mounts the tenant's APIs under a path, e.g. "/t/acme":
	// an API matching /orders answers /t/acme/orders. The tenant prefix is
	// removed before the request goes upstream. Paths under it never reach
	// another tenant's API.
	PathPrefix string `yaml:"path_prefix"`
}

// Qualify returns the gateway-wide identifier of a tenant's resource: the
// name itself in the default tenant, else "tenant/name". It keys limits and
// metrics so equal names in two tenants never share state.
func Qualify(tenant, name string) string {
	if tenant == "" || tenant == DefaultTenantName {
		return name
	}
	return tenant + "/" + name
}

// TenantOf returns the tenant a resource's tenant field names ("" is the
// default tenant).
func TenantOf(tenant string) string {
	if tenant == "" {
		return DefaultTenantName
	}
	return tenant
}

// Tracing configures OpenTelemetry tracing. With it on, the gateway starts a
// span per request, continues the client's W3C trace context and sends its
// own to the upstream.
type Tracing struct {
	// OTLPEndpoint is the collector's OTLP/HTTP URL, e.g.
	// https://collector:4318 (the path defaults to /v1/traces). Empty turns
	// tracing off.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// Insecure allows an http:// endpoint: spans then travel unencrypted
	// to an unauthenticated collector.
	Insecure bool `yaml:"insecure"`
	// ServiceName is the service.name resource attribute.
	ServiceName string `yaml:"service_name"`
	// SampleRatio is the share of new traces recorded, 0 to 1; requests
	// whose client already decided keep that decision.
	SampleRatio *float64 `yaml:"sample_ratio"`
	// Headers are sent with every export, header name → value. For values
	// that are not secret (a tenant or dataset name); put credentials in
	// HeadersEnv.
	Headers map[string]string `yaml:"headers"`
	// HeadersEnv are sent with every export, header name → the environment
	// variable holding the value, for credentials such as a collector API
	// key. The variables must be set when the gateway starts; their values
	// are never logged.
	HeadersEnv map[string]string `yaml:"headers_env"`
	// Trust names the trust store the collector's https certificate is
	// verified against. Default: the system roots.
	Trust string `yaml:"trust"`
	// ClientCertificate is presented to the collector (mutual TLS); same
	// forms as listener certificates (PEM pair, PKCS#12 or JKS keystore).
	ClientCertificate *KeySource `yaml:"client_certificate"`
	// Timeout bounds one export request. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// Admin configures the admin listener: /metrics, /healthz and /readyz
// always, and the /admin/v1 management API when a store is configured.
type Admin struct {
	// Address defaults to 127.0.0.1:9443: loopback only unless asked.
	Address string `yaml:"address"`
	// TLS is the admin listener's certificate (same forms as listeners).
	Certificates []ServerCertificate `yaml:"certificates"`
	// ClientTrust names the trust stores admin client certificates chain to.
	ClientTrust StringList `yaml:"client_trust"`
	// Clients map verified admin certificates (by cn or fingerprint) to a
	// role: admin, or tenant-admin with a tenant.
	Clients []AdminClient `yaml:"clients"`
	// Tokens are admin bearer tokens, stored as "sha256:<hex>" hashes.
	Tokens []AdminToken `yaml:"tokens"`
}

// AdminClient maps an admin client certificate to a role.
type AdminClient struct {
	CN          string `yaml:"cn"`
	Fingerprint string `yaml:"fingerprint"`
	Role        string `yaml:"role"`
	Tenant      string `yaml:"tenant"`
}

// AdminToken is an admin bearer token's hash and role.
type AdminToken struct {
	Name   string `yaml:"name"`
	Hash   string `yaml:"hash"`
	Role   string `yaml:"role"`
	Tenant string `yaml:"tenant"`
}

// Plan is a service level an application subscribes to.
type Plan struct {
	// Tenant owns the plan. Default: the default tenant.
	Tenant string `yaml:"tenant"`
	// Name identifies the plan within its tenant; it also names the
	// rate-limit policy in the RateLimit-Policy header.
	Name string `yaml:"name"`
	// RateLimit applies per application and API.
	RateLimit *RateLimit `yaml:"rate_limit"`
	// Quota applies per application and API over a calendar day or month.
	Quota *Quota `yaml:"quota"`
	// Scopes limits the OAuth2 scopes the built-in server grants for APIs
	// subscribed on this plan. Empty: no limit.
	Scopes []string `yaml:"scopes"`
}

// RateLimit is Rate requests per Period, with bursts up to Burst.
type RateLimit struct {
	Rate   int           `yaml:"rate"`
	Period time.Duration `yaml:"period"`
	// Burst defaults to Rate.
	Burst int `yaml:"burst"`
}

// Quota is Limit requests per calendar Window (day or month, UTC).
type Quota struct {
	Limit  int64  `yaml:"limit"`
	Window string `yaml:"window"`
}

// Subscription gives Application the Plan on API.
type Subscription struct {
	// Tenant owns the subscription; its application, API and plan are
	// looked up in the same tenant. Default: the default tenant.
	Tenant      string `yaml:"tenant"`
	Application string `yaml:"application"`
	API         string `yaml:"api"`
	Plan        string `yaml:"plan"`
	// State is active (default) or suspended.
	State string `yaml:"state"`
}

// IPRules allow or deny client addresses (CIDR or single addresses); deny
// wins, and an empty allow list allows every address not denied.
type IPRules struct {
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
}

// CORS is an API's cross-origin policy.
type CORS struct {
	AllowOrigins     []string      `yaml:"allow_origins"`
	AllowMethods     []string      `yaml:"allow_methods"`
	AllowHeaders     []string      `yaml:"allow_headers"`
	ExposeHeaders    []string      `yaml:"expose_headers"`
	AllowCredentials bool          `yaml:"allow_credentials"`
	MaxAge           time.Duration `yaml:"max_age"`
}

// HeaderRule changes one header. Exactly one of Set, Add, Remove names the
// header; Value may use ${application}, ${client_cert_subject},
// ${client_cert_sha256}, ${client_ip}, ${request_id} and ${api}.
type HeaderRule struct {
	Set    string `yaml:"set"`
	Add    string `yaml:"add"`
	Remove string `yaml:"remove"`
	Value  string `yaml:"value"`
}

// AuthorizationServer configures the built-in OAuth2 authorization server.
type AuthorizationServer struct {
	// Issuer is the "iss" of its tokens and the base of its metadata, e.g.
	// "https://gateway.example.com:8443". Required.
	Issuer string `yaml:"issuer"`
	// Listeners serve its endpoints. Default: every listener.
	Listeners []string `yaml:"listeners"`
	// PathPrefix is where the token, JWKS, introspection and revocation
	// endpoints live. Default "/oauth2".
	PathPrefix string `yaml:"path_prefix"`
	// TokenTTL is the lifetime of access tokens. Default 15m.
	TokenTTL time.Duration `yaml:"token_ttl"`
	// Algorithm signs tokens: ES256 (default), RS256 or EdDSA.
	Algorithm string `yaml:"algorithm"`
	// RotateEvery replaces the signing key on this schedule; the previous
	// key stays published until its tokens expire. Default 24h.
	RotateEvery time.Duration `yaml:"rotate_every"`
	// KeyDir keeps signing keys across restarts (files 0600). Default: keys
	// live in memory only and a restart invalidates issued tokens.
	KeyDir string `yaml:"key_dir"`
	// Trust names the trust stores for tls_client_auth client certificates.
	Trust StringList `yaml:"trust"`
}

// OAuth2Client maps OAuth2 tokens to an application: tokens whose client_id
// is ClientID belong to it, whichever issuer made them. With AuthMethods it is
// also a client of the built-in authorization server.
type OAuth2Client struct {
	// ClientID defaults to the application's id.
	ClientID string `yaml:"client_id"`
	// AuthMethods allowed at the built-in server: client_secret_basic,
	// client_secret_post, private_key_jwt, tls_client_auth,
	// self_signed_tls_client_auth. Empty: not a client of the built-in server.
	AuthMethods []string `yaml:"auth_methods"`
	// SecretHashes are "sha256:<hex>" hashes of client secrets.
	SecretHashes []string `yaml:"secret_hashes"`
	// PublicKeys are PEM files with the keys that sign private_key_jwt
	// assertions.
	PublicKeys StringList `yaml:"public_keys"`
	// TLSClientAuth is what the client certificate must carry for
	// tls_client_auth (at least one field).
	TLSClientAuth *TLSClientAuth `yaml:"tls_client_auth"`
	// SelfSignedCerts are PEM files with the certificates accepted for
	// self_signed_tls_client_auth.
	SelfSignedCerts StringList `yaml:"self_signed_certs"`
	// Scopes the client may be granted.
	Scopes []string `yaml:"scopes"`
	// BindTokens binds tokens to the client certificate (RFC 8705) when the
	// client authenticated with one.
	BindTokens bool `yaml:"bind_tokens"`
}

// TLSClientAuth is RFC 8705 §2.1.2's registration of a client certificate.
type TLSClientAuth struct {
	SubjectDN string `yaml:"subject_dn"`
	DNS       string `yaml:"dns"`
	URI       string `yaml:"uri"`
}

// OAuth2Policy is an API's token validation policy.
type OAuth2Policy struct {
	// Issuers whose tokens are accepted.
	Issuers []TokenIssuer `yaml:"issuers"`
	// Algorithms allowed. Default ES256, RS256, PS256, EdDSA; "none" and
	// HMAC are never accepted.
	Algorithms []string `yaml:"algorithms"`
	// Leeway tolerates clock skew on exp, nbf and iat. Default 30s.
	Leeway time.Duration `yaml:"leeway"`
	// RequiredClaims must be present in every token.
	RequiredClaims []string `yaml:"required_claims"`
	// Scopes are required for every request.
	Scopes []string `yaml:"scopes"`
	// RouteScopes add required scopes for requests matching a method and
	// path prefix.
	RouteScopes []RouteScope `yaml:"route_scopes"`
	// RequireBoundTokens accepts only certificate-bound tokens (RFC 8705).
	RequireBoundTokens bool `yaml:"require_bound_tokens"`
}

// TokenIssuer is one accepted issuer: the built-in server, or an external
// identity provider with a JWKS URL and/or an introspection endpoint.
type TokenIssuer struct {
	// Builtin accepts tokens of the built-in authorization server.
	Builtin bool `yaml:"builtin"`
	// Issuer is the exact "iss" of the provider's tokens.
	Issuer string `yaml:"issuer"`
	// JWKSURL publishes the provider's signing keys.
	JWKSURL string `yaml:"jwks_url"`
	// Trust names the trust store for TLS to the provider. Default: system roots.
	Trust string `yaml:"trust"`
	// ClientCertificate is presented to the provider (mutual TLS).
	ClientCertificate *KeySource `yaml:"client_certificate"`
	// Audiences: a token's aud must contain one of them.
	Audiences []string `yaml:"audiences"`
	// Introspection validates opaque tokens (RFC 7662).
	Introspection *Introspection `yaml:"introspection"`
}

// Introspection is an RFC 7662 endpoint and the gateway's credentials for it.
type Introspection struct {
	URL              string `yaml:"url"`
	ClientID         string `yaml:"client_id"`
	ClientSecretEnv  string `yaml:"client_secret_env"`
	ClientSecretFile string `yaml:"client_secret_file"`
}

// RouteScope requires extra scopes on part of an API.
type RouteScope struct {
	Methods    []string `yaml:"methods"`
	PathPrefix string   `yaml:"path_prefix"`
	Scopes     []string `yaml:"scopes"`
}

// Application is an API consumer. Requests authenticated with one of its
// credentials are attributed to it.
type Application struct {
	// Tenant owns the application: only the tenant's APIs recognise its
	// credentials. Default: the default tenant.
	Tenant string `yaml:"tenant"`
	// ID identifies the application within its tenant, in logs and limits.
	ID string `yaml:"id"`
	// Certificates registers client certificates: by fingerprint, or by
	// issuer plus a subject or SAN rule.
	Certificates []AppCertificate `yaml:"certificates"`
	// OAuth2 registers the application as a client of the built-in
	// authorization server.
	OAuth2 *OAuth2Client `yaml:"oauth2"`
	// RateLimit applies to the application on each API it calls (a separate
	// budget per API), whatever its subscription.
	RateLimit *RateLimit `yaml:"rate_limit"`
	// IP restricts the addresses the application may call from.
	IP *IPRules `yaml:"ip"`
	// APIKeys are hashes of the application's API keys, written
	// "sha256:<hex>" (see `portcullis hash-api-key`). Keys are never stored
	// in plain text.
	APIKeys []string `yaml:"api_keys"`
}

// AppCertificate registers a client certificate for an application. Either
// Fingerprint, or Issuer with at least one of SubjectDN, CN, DNS, URI.
type AppCertificate struct {
	// Fingerprint is the SHA-256 fingerprint of the certificate (hex, colons
	// and case ignored).
	Fingerprint string `yaml:"fingerprint"`
	// Issuer is the issuer's distinguished name, as `openssl x509 -issuer
	// -nameopt RFC2253` prints it, e.g. "CN=partnersCA,O=Example".
	Issuer string `yaml:"issuer"`
	// SubjectDN, CN, DNS and URI must all match where set.
	SubjectDN string `yaml:"subject_dn"`
	CN        string `yaml:"cn"`
	DNS       string `yaml:"dns"`
	URI       string `yaml:"uri"`
}

// Log configures the process log and the access log.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level LogLevel `yaml:"level"`
	// AccessLog turns the per-request JSON access log on or off. Default on.
	AccessLog *bool `yaml:"access_log"`
	// AccessLogSample is the share of successful requests (status below
	// 400) written to the access log, from 0 to 1. Failures are always
	// written. Default 1: every request.
	AccessLogSample *float64 `yaml:"access_log_sample"`
	// ExpiryWarningDays are the thresholds, in days before a certificate in
	// use expires, at which a warning is logged (once per threshold).
	// Default [30, 7, 1].
	ExpiryWarningDays []int `yaml:"expiry_warning_days"`
	// AccessLogHeaders are request header names (any case) whose values
	// each access-log line includes, as "headers": {name: value} with the
	// name in lower case (several values are joined with ", "; an absent
	// header is left out). Headers that carry credentials are always
	// written as "[REDACTED]": Authorization, Proxy-Authorization, Cookie,
	// Set-Cookie, X-API-Key, the header of every API's api_key policy, and
	// those in RedactHeaders. Default none.
	AccessLogHeaders []string `yaml:"access_log_headers"`
	// RedactHeaders are more header names whose values are written as
	// "[REDACTED]" when AccessLogHeaders lists them. Default none.
	RedactHeaders []string `yaml:"redact_headers"`
	// Redact lists access-log fields to hide: client_address (kept to its
	// network: IPv4 /24, IPv6 /48, e.g. "203.0.113.0/24"),
	// client_cert_subject (written as "[REDACTED]"; client_cert_sha256
	// stays), path (only the matched API's path prefix, then "/…") and host
	// (written as "[REDACTED]"). Default none.
	Redact []AccessLogField `yaml:"redact"`
}

// AccessLogField names an access-log field that log.redact can hide.
type AccessLogField string

// Access-log fields that can be redacted.
const (
	RedactClientAddress     AccessLogField = "client_address"
	RedactClientCertSubject AccessLogField = "client_cert_subject"
	RedactPath              AccessLogField = "path"
	RedactHost              AccessLogField = "host"
)

// AccessLogFields lists the fields log.redact accepts.
var AccessLogFields = []AccessLogField{RedactClientAddress, RedactClientCertSubject, RedactPath, RedactHost}

// Listener is one TLS listening socket.
type Listener struct {
	// Name identifies the listener in logs and in APIs' listener lists.
	Name string `yaml:"name"`
	// Address is host:port to listen on, e.g. "127.0.0.1:8443" or ":8443".
	Address string `yaml:"address"`
	// TLS is the server side of the client→gateway hop.
	TLS ListenerTLS `yaml:"tls"`
	// HTTPRedirect, when set, starts a plain-HTTP listener that answers every
	// request with a permanent redirect to the HTTPS listener.
	HTTPRedirect *HTTPRedirect `yaml:"http_redirect"`
	// Limits bounds request sizes and connection timeouts.
	Limits Limits `yaml:"limits"`
	// HTTP2 offers HTTP/2 through ALPN. Default true.
	HTTP2 *bool `yaml:"http2"`
}

// ListenerTLS configures TLS termination.
type ListenerTLS struct {
	// Certificates are the listener's certificates. The first is the default;
	// the others are chosen by SNI, from ServerNames or else from the names in
	// the certificate.
	Certificates []ServerCertificate `yaml:"certificates"`
	// MinVersion is "1.2" or "1.3". Default "1.2".
	MinVersion TLSVersion `yaml:"min_version"`
	// ClientCertificates is none, request or require. Default none.
	// request asks for a certificate during the handshake, but only on SNI
	// names that serve an API using mtls; each API verifies it. require
	// fails the handshake without a certificate valid for ClientTrust.
	ClientCertificates ClientCertMode `yaml:"client_certificates"`
	// ClientTrust names the trust stores a certificate must chain to in
	// require mode.
	ClientTrust StringList `yaml:"client_trust"`
}

// ServerCertificate is one certificate a listener can present.
type ServerCertificate struct {
	KeySource `yaml:",inline"`
	// ServerNames are the SNI names this certificate is chosen for, overriding
	// the names in the certificate. "*.example.com" matches one label.
	ServerNames []string `yaml:"server_names"`
}

// KeySource locates a private key and its certificate chain: either a PEM
// pair or a keystore (JKS or PKCS#12, detected by content).
type KeySource struct {
	// Cert is a PEM file with the certificate followed by its chain.
	Cert string `yaml:"cert"`
	// Key is a PEM file with the private key (PKCS#1, SEC1, PKCS#8 or
	// encrypted PKCS#8). May be the same file as Cert.
	Key string `yaml:"key"`
	// KeyPasswordEnv names an environment variable holding the password of an
	// encrypted PEM key.
	KeyPasswordEnv string `yaml:"key_password_env"`
	// KeyPasswordFile names a file holding the password of an encrypted PEM key.
	KeyPasswordFile string `yaml:"key_password_file"`
	// Keystore is a JKS or PKCS#12 store holding the key entry.
	Keystore *Keystore `yaml:"keystore"`
}

// Keystore is a JKS or PKCS#12 file and how to open it.
type Keystore struct {
	// Path is the store file. Its type is detected from its content.
	Path string `yaml:"path"`
	// Alias selects the key entry. Required when the store holds several.
	Alias string `yaml:"alias"`
	// PasswordEnv names an environment variable holding the store password.
	PasswordEnv string `yaml:"password_env"`
	// PasswordFile names a file holding the store password.
	PasswordFile string `yaml:"password_file"`
	// KeyPasswordEnv and KeyPasswordFile give the key entry's password when it
	// differs from the store's (JKS only).
	KeyPasswordEnv  string `yaml:"key_password_env"`
	KeyPasswordFile string `yaml:"key_password_file"`
}

// HTTPRedirect is a plain-HTTP listener that redirects to HTTPS.
type HTTPRedirect struct {
	// Address is host:port to listen on, e.g. ":8080".
	Address string `yaml:"address"`
	// Port is the HTTPS port put in the redirect. Default: the TLS listener's port.
	Port int `yaml:"port"`
}

// Limits bounds what one client can make the gateway hold.
type Limits struct {
	// MaxHeaderBytes caps the request line plus headers. Default 64KiB.
	MaxHeaderBytes ByteSize `yaml:"max_header_bytes"`
	// MaxBodyBytes caps a request body; larger bodies get 413. Default 10MiB.
	// Zero after defaults means the default; use -1 for no limit.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
	// ReadHeaderTimeout bounds reading the request headers. Default 10s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request including its body. Default
	// 0 (none), so long uploads can stream; ReadHeaderTimeout and IdleTimeout
	// still stop slow clients.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing a response. Default 0 (none), so long
	// downloads and event streams can run.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes keep-alive connections idle this long. Default 120s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// TrustStore is a named set of trusted CA certificates.
type TrustStore struct {
	// PEM lists PEM bundles of CA certificates.
	PEM StringList `yaml:"pem"`
	// Truststores lists JKS or PKCS#12 truststores; their trusted entries are used.
	Truststores []Keystore `yaml:"truststores"`
	// CRL configures certificate revocation lists for certificates issued by
	// this store's CAs.
	CRL *CRL `yaml:"crl"`
	// OCSP checks client certificates with their CA's OCSP responder.
	OCSP *OCSP `yaml:"ocsp"`
	// RevocationPolicy is fail_closed (default: reject when no revocation
	// data can be had) or fail_open (accept, log and count).
	RevocationPolicy RevocationPolicy `yaml:"revocation_policy"`
	// Inline holds certificates uploaded through the admin API (a trust
	// set of the registry); it cannot be written in the file.
	Inline []InlineCertificates `yaml:"-"`
}

// InlineCertificates is a PEM bundle held in memory, named for messages.
type InlineCertificates struct {
	Name string
	PEM  string
}

// CRL locates revocation lists.
type CRL struct {
	// Files are CRL files (PEM or DER), re-read on Refresh.
	Files StringList `yaml:"files"`
	// URLs are fetched at start, every Refresh and at the CRL's nextUpdate.
	URLs StringList `yaml:"urls"`
	// Refresh is the re-read interval. Default 10m.
	Refresh time.Duration `yaml:"refresh"`
}

// OCSP configures OCSP checking of client certificates.
type OCSP struct {
	// Enabled turns OCSP checking on.
	Enabled bool `yaml:"enabled"`
	// Responder overrides the responder URL in the certificates' AIA.
	Responder string `yaml:"responder"`
}

// API is one published API: how requests reach it and where they go.
type API struct {
	// Tenant owns the API: it is served only for requests resolved to the
	// tenant, to the tenant's applications. Default: the default tenant.
	Tenant string `yaml:"tenant"`
	// Name identifies the API within its tenant in logs, metrics and
	// commands.
	Name string `yaml:"name"`
	// Listeners restricts the API to these listeners. Default: all.
	Listeners []string `yaml:"listeners"`
	// Match selects the requests that belong to this API.
	Match Match `yaml:"match"`
	// StripPrefix removes Match.PathPrefix from the path sent upstream.
	StripPrefix bool `yaml:"strip_prefix"`
	// Upstream is where requests go.
	Upstream Upstream `yaml:"upstream"`
	// Auth says which credentials the API accepts: mtls, api_key, or
	// {any_of: [...]} / {all_of: [...]} of them. Default: none (the API is
	// open) until OAuth2 becomes the default.
	Auth *AuthSpec `yaml:"auth"`
	// MTLS is the client-certificate policy used by the mtls authenticator.
	MTLS *MTLSPolicy `yaml:"mtls"`
	// APIKey configures where the api_key authenticator looks for the key.
	APIKey *APIKeyPolicy `yaml:"api_key"`
	// OAuth2 is the token policy used by the oauth2 authenticator.
	OAuth2 *OAuth2Policy `yaml:"oauth2"`
	// Plans offered on this API. When set, a caller's application needs an
	// active subscription to the API on one of them.
	Plans []string `yaml:"plans"`
	// RateLimit applies to the whole API, all callers together.
	RateLimit *RateLimit `yaml:"rate_limit"`
	// IP restricts client addresses.
	IP *IPRules `yaml:"ip"`
	// CORS answers preflights and sets cross-origin headers.
	CORS *CORS `yaml:"cors"`
	// RequestHeaders change the request before it goes upstream.
	RequestHeaders []HeaderRule `yaml:"request_headers"`
	// ResponseHeaders change the response before it goes to the client.
	ResponseHeaders []HeaderRule `yaml:"response_headers"`
	// ForwardClientCert is rfc9440, xfcc or none: the header that carries
	// the verified client certificate to the upstream. Default rfc9440 when
	// the API uses mtls, else none. Incoming copies of these headers are
	// always removed.
	ForwardClientCert ForwardMode `yaml:"forward_client_cert"`
}

// MTLSPolicy is an API's client-certificate policy.
type MTLSPolicy struct {
	// Trust names the trust stores a client certificate may chain to.
	Trust StringList `yaml:"trust"`
	// Allow restricts which verified certificates are accepted.
	Allow *AllowRules `yaml:"allow"`
	// RequireClientAuthEKU requires the clientAuth extended key usage.
	// Default true.
	RequireClientAuthEKU *bool `yaml:"require_client_auth_eku"`
	// AllowAnonymous accepts verified certificates that belong to no
	// application. Default false.
	AllowAnonymous bool `yaml:"allow_anonymous"`
}

// AllowRules restrict accepted certificates. Within a kind any entry may
// match; every kind that is set must match.
type AllowRules struct {
	SubjectDN []string `yaml:"subject_dn"`
	CN        []string `yaml:"cn"`
	OU        []string `yaml:"ou"`
	DNS       []string `yaml:"dns"`
	// URI entries match a URI SAN exactly, or "spiffe://trust.domain"
	// matches every SPIFFE ID in that trust domain.
	URI          []string `yaml:"uri"`
	Fingerprints []string `yaml:"fingerprints"`
}

// APIKeyPolicy says where an API key is read from.
type APIKeyPolicy struct {
	// Header is the request header holding the key. Default X-API-Key.
	Header string `yaml:"header"`
	// Query is a query parameter holding the key; empty means not accepted
	// in the query (keys in URLs end up in logs and browser histories).
	Query string `yaml:"query"`
}

// Match selects requests by host, path prefix and method.
type Match struct {
	// Host is the request host without port: "api.example.com",
	// "*.example.com" (one label), or empty for any host.
	Host string `yaml:"host"`
	// PathPrefix is matched on whole segments: "/a" matches "/a" and "/a/x"
	// but not "/ab". Default "/". The longest matching prefix wins.
	PathPrefix string `yaml:"path_prefix"`
	// Methods restricts the API to these methods. Default: all.
	Methods []string `yaml:"methods"`
}

// Upstream is the gateway→API hop.
type Upstream struct {
	// Targets are one or more base URLs (https:// or http://), used round robin.
	Targets []string `yaml:"targets"`
	// ConnectTimeout bounds the TCP connect. Default 5s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// TLSHandshakeTimeout bounds the TLS handshake. Default 10s.
	TLSHandshakeTimeout time.Duration `yaml:"tls_handshake_timeout"`
	// ResponseTimeout bounds the wait for the response headers after the
	// request is sent. Default 60s.
	ResponseTimeout time.Duration `yaml:"response_timeout"`
	// IdleTimeout closes pooled connections idle this long. Default 90s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxIdleConns is the idle pool size per target. Default 128.
	MaxIdleConns int `yaml:"max_idle_conns"`
	// TLS is the gateway's TLS client side for https:// targets.
	TLS UpstreamTLS `yaml:"tls"`
}

// UpstreamTLS is mutual TLS towards an API.
type UpstreamTLS struct {
	// ClientCertificate is the gateway's identity presented to the API.
	ClientCertificate *KeySource `yaml:"client_certificate"`
	// Trust names a trust store for verifying the API's certificate. Default:
	// the system's roots.
	Trust string `yaml:"trust"`
	// ServerName is sent as SNI and verified against the API's certificate.
	// Default: the target's host.
	ServerName string `yaml:"server_name"`
	// VerifyHostname checks the API's certificate names against ServerName.
	// Default true. Turning it off is logged as a warning at every load.
	VerifyHostname *bool `yaml:"verify_hostname"`
	// InsecureSkipVerify accepts any certificate from the API. Unsafe: it
	// defeats the point of upstream TLS and is logged at every load.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// MinVersion is "1.2" or "1.3". Default "1.2".
	MinVersion TLSVersion `yaml:"min_version"`
	// Pins are base64 SHA-256 hashes of the API certificate's public key
	// (SPKI); when set, one must match.
	Pins []string `yaml:"pins"`
}
