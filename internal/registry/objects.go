package registry

import (
	"encoding/json"
	"time"
)

// Tenant is an isolated set of APIs, applications and plans, usually one
// customer or team. Tenants belong to no tenant: their Key has an empty
// Tenant.
type Tenant struct {
	// Name identifies the tenant: letters, digits, '.', '_' and '-',
	// starting with a letter or digit, at most 128 characters.
	Name string `json:"name"`
	// DisplayName is free text for consoles, at most 200 characters.
	DisplayName string `json:"display_name,omitempty"`
	// Hosts are the request hosts ("api.acme.example", "*.acme.example")
	// resolved to this tenant; a host belongs to one tenant.
	Hosts []string `json:"hosts,omitempty"`
	// PathPrefix mounts the tenant's APIs under a path such as "/t/acme";
	// a prefix belongs to one tenant. A tenant other than "default" needs
	// hosts or a path prefix for its APIs to be reachable.
	PathPrefix string `json:"path_prefix,omitempty"`
}

// API is an API published through the gateway. Its configuration block is
// carried as JSON and compiled by the snapshot package, not interpreted here.
type API struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
	// Spec is the API's configuration block as a JSON object, or empty.
	Spec json.RawMessage `json:"spec,omitempty"`
}

// Application is a consumer of APIs and the credentials it calls with.
// Within a tenant, a certificate fingerprint, an API key hash or an OAuth2
// client id belongs to at most one application, so every credential names
// exactly one caller.
type Application struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
	// Certificates register the application's client certificates.
	Certificates []CertificateRef `json:"certificates,omitempty"`
	// APIKeyHashes are "sha256:" followed by the 64 hex digits of the
	// SHA-256 of each API key; keys themselves are never stored.
	APIKeyHashes []string `json:"api_key_hashes,omitempty"`
	// OAuth2 registers the application with the built-in authorization
	// server; nil when it does not use OAuth2.
	OAuth2 *OAuth2Client `json:"oauth2,omitempty"`
}

// CertificateRef registers client certificates either by SHA-256
// fingerprint or by a rule: the issuer DN plus at least one of SubjectDN,
// CN, DNS and URI, every one that is set having to match. The fields mean
// what they mean in auth.CertRule.
type CertificateRef struct {
	// Fingerprint is the hex SHA-256 of the certificate's DER (colons and
	// case ignored). It excludes every other field.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Issuer is the issuer DN, e.g. "CN=Partners CA,O=Example".
	Issuer    string `json:"issuer,omitempty"`
	SubjectDN string `json:"subject_dn,omitempty"`
	CN        string `json:"cn,omitempty"`
	DNS       string `json:"dns,omitempty"`
	URI       string `json:"uri,omitempty"`
}

// OAuth2Client is an application's registration as an OAuth2 client.
type OAuth2Client struct {
	// ClientID is the client_id, unique within the tenant.
	ClientID string `json:"client_id"`
	// AuthMethods are the token endpoint authentication methods the client
	// may use: client_secret_basic, client_secret_post, private_key_jwt,
	// tls_client_auth or self_signed_tls_client_auth.
	AuthMethods []string `json:"auth_methods"`
	// SecretHashes are "sha256:<64 hex digits>" hashes of the client's
	// secrets; required by the client_secret_* methods. Several allow a
	// secret to be rolled over.
	SecretHashes []string `json:"secret_hashes,omitempty"`
	// JWKS is the client's public JWK Set ({"keys": [...]}), required by
	// private_key_jwt.
	JWKS json.RawMessage `json:"jwks,omitempty"`
	// Scopes are the scopes the client may request.
	Scopes []string `json:"scopes,omitempty"`
}

// Plan is what a subscription grants: throughput, volume and scopes. A plan
// without RateLimit or Quota does not limit that dimension.
type Plan struct {
	Tenant    string     `json:"tenant"`
	Name      string     `json:"name"`
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
	Quota     *Quota     `json:"quota,omitempty"`
	// Scopes are the scopes a subscriber may use on the API.
	Scopes []string `json:"scopes,omitempty"`
}

// RateLimit allows Rate requests per Period, with bursts of up to Burst.
type RateLimit struct {
	// Rate is the number of requests per Period, at least 1.
	Rate int `json:"rate"`
	// Period is a Go duration such as "1s" or "1m", greater than zero.
	Period string `json:"period"`
	// Burst is how many requests may arrive at once. 0 means Rate.
	Burst int `json:"burst,omitempty"`
}

// PeriodDuration returns Period parsed; it is meaningful only once the
// plan has validated.
func (r RateLimit) PeriodDuration() time.Duration {
	d, _ := time.ParseDuration(r.Period)
	return d
}

// QuotaWindow is the calendar window a quota counts over, in UTC.
type QuotaWindow string

// The quota windows.
const (
	QuotaDay   QuotaWindow = "day"
	QuotaMonth QuotaWindow = "month"
)

// Quota allows Limit requests per Window.
type Quota struct {
	// Limit is the number of requests per window, at least 1.
	Limit int64 `json:"limit"`
	// Window is "day" or "month".
	Window QuotaWindow `json:"window"`
}

// SubscriptionState says whether a subscription lets calls through.
type SubscriptionState string

// The subscription states.
const (
	StateActive    SubscriptionState = "active"
	StateSuspended SubscriptionState = "suspended"
)

// Subscription lets an application call an API under a plan. An
// application holds at most one subscription per API.
type Subscription struct {
	Tenant      string            `json:"tenant"`
	Name        string            `json:"name"`
	Application string            `json:"application"`
	API         string            `json:"api"`
	Plan        string            `json:"plan"`
	State       SubscriptionState `json:"state"`
}

// Certificate is a PEM bundle of X.509 certificates uploaded through the
// admin API, for trust sets. Private keys are refused.
type Certificate struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
	// PEM holds one or more CERTIFICATE blocks and nothing else.
	PEM string `json:"pem"`
}

// TrustSet is a named set of uploaded certificates that client or upstream
// certificates are verified against.
type TrustSet struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
	// CertificateNames name Certificate resources of the same tenant.
	CertificateNames []string `json:"certificates"`
}

// Key identifies the tenant.
func (t Tenant) Key() Key { return Key{Kind: KindTenant, Name: t.Name} }

// Key identifies the API.
func (a API) Key() Key { return Key{Kind: KindAPI, Tenant: a.Tenant, Name: a.Name} }

// Key identifies the application.
func (a Application) Key() Key { return Key{Kind: KindApplication, Tenant: a.Tenant, Name: a.Name} }

// Key identifies the plan.
func (p Plan) Key() Key { return Key{Kind: KindPlan, Tenant: p.Tenant, Name: p.Name} }

// Key identifies the subscription.
func (s Subscription) Key() Key { return Key{Kind: KindSubscription, Tenant: s.Tenant, Name: s.Name} }

// Key identifies the certificate.
func (c Certificate) Key() Key { return Key{Kind: KindCertificate, Tenant: c.Tenant, Name: c.Name} }

// Key identifies the trust set.
func (t TrustSet) Key() Key { return Key{Kind: KindTrustSet, Tenant: t.Tenant, Name: t.Name} }

// Interface guards.
var (
	_ Object = Tenant{}
	_ Object = API{}
	_ Object = Application{}
	_ Object = Plan{}
	_ Object = Subscription{}
	_ Object = Certificate{}
	_ Object = TrustSet{}
)
