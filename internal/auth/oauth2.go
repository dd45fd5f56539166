package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis/portcullis/internal/problem"
)

// OAuth2 defaults. Each applies when the corresponding option is zero.
const (
	// DefaultOAuth2Leeway is the clock skew allowed on exp, nbf and iat.
	DefaultOAuth2Leeway = 30 * time.Second
	// DefaultJWKSRefresh is how often a JWKS is fetched in the background.
	DefaultJWKSRefresh = 10 * time.Minute
	// DefaultJWKSMinInterval is the least time between two fetches of one
	// JWKS, which bounds the refetches an unknown kid can cause.
	DefaultJWKSMinInterval = 10 * time.Second
	// DefaultIntrospectionMaxTTL bounds how long an active introspection
	// answer is reused.
	DefaultIntrospectionMaxTTL = 5 * time.Minute
	// DefaultIntrospectionNegativeTTL is how long an inactive answer is
	// reused.
	DefaultIntrospectionNegativeTTL = 10 * time.Second
	// DefaultIntrospectionCacheEntries bounds the introspection cache.
	DefaultIntrospectionCacheEntries = 10000
	// DefaultOAuth2Realm is the realm of the Bearer challenge.
	DefaultOAuth2Realm = "portcullis"

	oauth2HTTPTimeout = 10 * time.Second
	// maxBearerLen bounds the token accepted: large enough for tokens
	// carrying group lists, small enough that parsing cost stays bounded.
	maxBearerLen = 16 << 10
)

// Errors returned by NewOAuth2. They are wrapped with the offending value.
var (
	// ErrBadOAuth2 means an oauth2 setting is invalid.
	ErrBadOAuth2 = errors.New("invalid oauth2 settings")
)

// OAuth2Issuer is one authorization server whose access tokens an API
// accepts. A JWT is matched to the issuer by its exact "iss". Exactly one
// key source (JWKSURL, StaticKeys or Keyfunc) may be set; none is allowed
// only with Introspection, and then every token of the issuer is
// introspected.
type OAuth2Issuer struct {
	// Issuer is the exact "iss" value, e.g. "https://idp.example.com/".
	// It is required and unique among an API's issuers.
	Issuer string
	// JWKSURL is the issuer's JWK Set (RFC 7517), fetched with HTTPClient.
	// It must be https, or http to a loopback address. The keys are cached
	// and refreshed every JWKSRefresh (after Start), on demand when a token
	// names an unknown kid, at most once per DefaultJWKSMinInterval. When
	// a fetch fails the cached keys stay in use; the failure is logged and
	// counted (OAuth2Stats.JWKSFetchFailed). Symmetric ("oct") keys and
	// keys whose "use" is not "sig" are ignored.
	JWKSURL string
	// JWKSRefresh is the background refresh interval. It defaults to
	// DefaultJWKSRefresh and must not be below DefaultJWKSMinInterval.
	JWKSRefresh time.Duration
	// StaticKeys are fixed verification keys, an alternative to JWKSURL:
	// *ecdsa.PublicKey (P-256, P-384, P-521), *rsa.PublicKey (2048 bits or
	// more) or ed25519.PublicKey. Secret (HMAC) keys are refused.
	StaticKeys []crypto.PublicKey
	// StaticKeyIDs optionally gives the kid of each StaticKeys entry
	// (parallel slice). "" matches any kid. Empty means every key matches
	// any kid.
	StaticKeyIDs []string
	// Keyfunc is an in-process key source, used by the built-in
	// authorization server instead of fetching its own JWKS. It must return
	// a public key or a jwt.VerificationKeySet of public keys; secret keys
	// are refused. It must be safe for concurrent use and should not block.
	Keyfunc jwt.Keyfunc
	// Introspection configures RFC 7662 introspection for this issuer's
	// opaque (non-JWT) tokens; opaque tokens name no issuer, so they are
	// offered to every issuer that sets it, in order, until one answers
	// active. A JWT of this issuer is introspected only when the issuer has
	// no key source, or when Introspection.IntrospectJWTs is set.
	Introspection *Introspection
	// Audiences, when set, requires the token's "aud" to contain at least
	// one of them. Empty means "aud" is not checked, which is safe only
	// when the issuer mints tokens for this API alone.
	Audiences []string
	// Revoked, when set, reports whether the token with this jti was revoked
	// at its issuer; a revoked token gets oauth2.token_inactive. The
	// built-in authorization server supplies it, so revocation applies
	// without an introspection round trip.
	Revoked func(jti string) bool
	// HTTPClient fetches the JWKS and calls the introspection endpoint; the
	// caller builds it with the issuer's trust set and, for mutual TLS, a
	// client certificate. Nil means a client with a 10 s timeout that
	// follows no redirects (never http.DefaultClient).
	HTTPClient *http.Client
}

// Introspection configures RFC 7662 token introspection for one issuer.
type Introspection struct {
	// URL is the introspection endpoint: https, or http to a loopback
	// address.
	URL string
	// ClientID identifies the gateway to the endpoint. It is required.
	ClientID string
	// ClientSecret is sent with ClientID as HTTP Basic credentials (RFC
	// 6749 §2.3.1, form-encoded). Empty means the client authenticates by
	// its TLS client certificate (RFC 8705 tls_client_auth) and ClientID is
	// sent in the form instead.
	ClientSecret []byte
	// IntrospectJWTs also sends this issuer's JWTs to the endpoint after
	// they verify with the key source, so a revoked JWT is refused before
	// it expires. The endpoint then decides only whether the token is still
	// active; the claims used are the verified JWT's. Forgeries never reach
	// the endpoint. Leave it false for servers that cannot introspect
	// their own JWT access tokens (oidc-provider answers 400).
	IntrospectJWTs bool
	// HTTPClient overrides OAuth2Issuer.HTTPClient for the endpoint.
	HTTPClient *http.Client
	// MaxTTL bounds how long an active answer is reused; an answer is never
	// reused beyond the token's own exp. It defaults to
	// DefaultIntrospectionMaxTTL. A negative value disables caching of
	// active answers.
	MaxTTL time.Duration
	// NegativeTTL is how long an inactive answer is reused. It defaults to
	// DefaultIntrospectionNegativeTTL; a negative value disables negative
	// caching.
	NegativeTTL time.Duration
	// MaxEntries bounds the cache. It defaults to
	// DefaultIntrospectionCacheEntries. When full, expired entries are
	// dropped and, if none were, the new answer is not cached.
	MaxEntries int
}

// RouteScope adds required scopes to requests that match it.
type RouteScope struct {
	// Methods are the HTTP methods matched (case-insensitive). Empty
	// matches every method.
	Methods []string
	// PathPrefix matches r.URL.Path by whole segments: "/v1/orders"
	// matches "/v1/orders" and "/v1/orders/7", not "/v1/ordersX". It must
	// start with "/"; "/" matches every path. The path is compared as the
	// router sees it, without further cleaning.
	PathPrefix string
	// Scopes are required in addition to OAuth2Options.Scopes. At least
	// one is required.
	Scopes []string
}

// OAuth2Options configure an OAuth2 authenticator.
type OAuth2Options struct {
	// Issuers are the accepted authorization servers. At least one is
	// required.
	Issuers []OAuth2Issuer
	// Algorithms are the accepted JWS algorithms. It defaults to ES256,
	// RS256, PS256 and EdDSA. Valid values are ES256, ES384, ES512, RS256,
	// RS384, RS512, PS256, PS384, PS512 and EdDSA; "none" and the HMAC
	// algorithms are refused, since the keys are public.
	Algorithms []string
	// Leeway is the clock skew allowed on exp, nbf and iat. It defaults to
	// DefaultOAuth2Leeway; a negative value means none.
	Leeway time.Duration
	// RequiredClaims are claims that must be present in the token (or the
	// introspection answer), whatever their value.
	RequiredClaims []string
	// Scopes are required on every request.
	Scopes []string
	// RouteScopes add scopes for matching requests; every matching entry
	// applies.
	RouteScopes []RouteScope
	// RequireBoundTokens accepts only tokens bound to a client certificate
	// (RFC 8705 cnf.x5t#S256); others fail with oauth2.cert_binding_required.
	RequireBoundTokens bool
	// ClientApplications maps the token's client id to an application id.
	// The client id is the "client_id" claim (RFC 9068), else "azp" (OpenID
	// Connect), else "sub" (RFC 9068 §2.2 makes sub the client id for
	// client_credentials tokens; a user's sub only resolves if an
	// application registers that exact value). Nil, or an unknown client,
	// gives Principal.Application "" and the request is accepted: the API's
	// subscription policy decides what an anonymous client may do.
	ClientApplications func(clientID string) (string, bool)
	// StripToken removes the Authorization header before the request is
	// forwarded. By default the token is kept, because upstreams commonly
	// authorize on its claims; a stolen copy of a certificate-bound token
	// is useless without the certificate's key.
	StripToken bool
	// Realm is the realm of the Bearer challenge. It defaults to
	// DefaultOAuth2Realm.
	Realm string
	// Now returns the time tokens are checked at. Nil means time.Now.
	Now func() time.Time
	// Logger receives JWKS refresh failures. Nil means slog.Default().
	Logger *slog.Logger
}

// OAuth2 authenticates a request by an OAuth2 access token in the
// Authorization header (RFC 6750 §2.1): a JWT verified against the
// issuer's keys (RFC 9068), or an opaque token introspected (RFC 7662). It
// is safe for concurrent use; its JWKS caches, introspection caches and
// counters are the only state that changes after NewOAuth2.
type OAuth2 struct {
	issuers       map[string]*oauth2Issuer
	introspectors []*oauth2Issuer
	parser        *jwt.Parser
	keyfunc       jwt.Keyfunc
	leeway        time.Duration
	required      []string
	scopes        []string
	routes        []RouteScope
	requireBound  bool
	apps          func(string) (string, bool)
	strip         bool
	realm         string
	now           func() time.Time
	log           *slog.Logger
	stats         *oauth2Counters

	ctx       context.Context
	cancel    context.CancelFunc
	startOnce sync.Once
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// oauth2Issuer is an OAuth2Issuer after validation.
type oauth2Issuer struct {
	iss       string
	keys      keySource
	jwks      *jwksCache
	intro     *introspector
	introJWTs bool
	audiences []string
	revoked   func(jti string) bool
}

var (
	_ Authenticator      = (*OAuth2)(nil)
	_ CredentialStripper = (*OAuth2)(nil)
)

// validAlgorithms are the JWS algorithms OAuth2Options.Algorithms may name.
func validAlgorithms() []string {
	return []string{"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}
}

// NewOAuth2 builds the authenticator. It fails, naming the setting, when no
// issuer is given, an issuer is empty or repeated, has no or several key
// sources, a URL is not https (or loopback http), a static key is not a
// supported public key, an algorithm is unknown, "none" or HMAC, or a scope
// or route is malformed. It does no network I/O: keys are fetched on first
// use or by Start.
func NewOAuth2(o OAuth2Options) (*OAuth2, error) {
	if len(o.Issuers) == 0 {
		return nil, fmt.Errorf("oauth2: %w: name at least one issuer", ErrBadOAuth2)
	}
	algs := o.Algorithms
	if len(algs) == 0 {
		algs = []string{"ES256", "RS256", "PS256", "EdDSA"}
	}
	for _, alg := range algs {
		if !slices.Contains(validAlgorithms(), alg) {
			return nil, fmt.Errorf("oauth2: %w: algorithm %q is not accepted; valid algorithms are %s (none and HMAC are never accepted: the keys are public)",
				ErrBadOAuth2, alg, strings.Join(validAlgorithms(), ", "))
		}
	}
	a := &OAuth2{
		issuers:      make(map[string]*oauth2Issuer, len(o.Issuers)),
		leeway:       o.Leeway,
		required:     slices.Clone(o.RequiredClaims),
		scopes:       slices.Clone(o.Scopes),
		requireBound: o.RequireBoundTokens,
		apps:         o.ClientApplications,
		strip:        o.StripToken,
		realm:        o.Realm,
		now:          o.Now,
		log:          o.Logger,
		stats:        newOAuth2Counters(),
	}
	if a.leeway == 0 {
		a.leeway = DefaultOAuth2Leeway
	} else if a.leeway < 0 {
		a.leeway = 0
	}
	if a.realm == "" {
		a.realm = DefaultOAuth2Realm
	}
	if !validQuotedText(a.realm) {
		return nil, fmt.Errorf("oauth2: %w: realm %q may not contain quotes, backslashes or control characters", ErrBadOAuth2, a.realm)
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	for _, c := range a.required {
		if c == "" {
			return nil, fmt.Errorf("oauth2: %w: required_claims has an empty entry", ErrBadOAuth2)
		}
	}
	if err := checkScopes("scopes", a.scopes); err != nil {
		return nil, err
	}
	for i, rs := range o.RouteScopes {
		c, err := compileRouteScope(i, rs)
		if err != nil {
			return nil, err
		}
		a.routes = append(a.routes, c)
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	for i := range o.Issuers {
		is, err := a.buildIssuer(&o.Issuers[i])
		if err != nil {
			a.cancel()
			return nil, err
		}
		if _, dup := a.issuers[is.iss]; dup {
			a.cancel()
			return nil, fmt.Errorf("oauth2: %w: issuer %q is listed twice", ErrBadOAuth2, is.iss)
		}
		a.issuers[is.iss] = is
		if is.intro != nil {
			a.introspectors = append(a.introspectors, is)
		}
	}
	a.parser = jwt.NewParser(
		jwt.WithValidMethods(slices.Clone(algs)),
		jwt.WithLeeway(a.leeway),
		jwt.WithTimeFunc(a.now),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	)
	a.keyfunc = a.keyFor
	return a, nil
}

func (a *OAuth2) buildIssuer(in *OAuth2Issuer) (*oauth2Issuer, error) {
	if in.Issuer == "" {
		return nil, fmt.Errorf("oauth2: %w: an issuer has an empty issuer value", ErrBadOAuth2)
	}
	is := &oauth2Issuer{iss: in.Issuer, audiences: slices.Clone(in.Audiences)}
	if slices.Contains(is.audiences, "") {
		return nil, fmt.Errorf("oauth2: %w: issuer %q: audiences has an empty entry", ErrBadOAuth2, in.Issuer)
	}
	sources := 0
	for _, set := range []bool{in.JWKSURL != "", len(in.StaticKeys) > 0, in.Keyfunc != nil} {
		if set {
			sources++
		}
	}
	if sources > 1 {
		return nil, fmt.Errorf("oauth2: %w: issuer %q: set only one of jwks_url, static keys and an in-process key source", ErrBadOAuth2, in.Issuer)
	}
	if sources == 0 && in.Introspection == nil {
		return nil, fmt.Errorf("oauth2: %w: issuer %q has no way to check tokens: set jwks_url, static keys or introspection", ErrBadOAuth2, in.Issuer)
	}
	client := in.HTTPClient
	if client == nil {
		client = defaultOAuth2Client()
	}
	switch {
	case in.JWKSURL != "":
		if err := checkEndpoint(in.JWKSURL); err != nil {
			return nil, fmt.Errorf("oauth2: %w: issuer %q: jwks_url: %w", ErrBadOAuth2, in.Issuer, err)
		}
		refresh := in.JWKSRefresh
		if refresh == 0 {
			refresh = DefaultJWKSRefresh
		}
		if refresh < DefaultJWKSMinInterval {
			return nil, fmt.Errorf("oauth2: %w: issuer %q: jwks_refresh %s is below the minimum %s", ErrBadOAuth2, in.Issuer, refresh, DefaultJWKSMinInterval)
		}
		c := &jwksCache{iss: in.Issuer, url: in.JWKSURL, client: client, refresh: refresh,
			minGap: DefaultJWKSMinInterval, now: a.now, log: a.log, stats: a.stats, ctx: a.ctx}
		is.keys, is.jwks = c, c
	case len(in.StaticKeys) > 0:
		s, err := newStaticKeys(in.StaticKeys, in.StaticKeyIDs)
		if err != nil {
			return nil, fmt.Errorf("oauth2: %w: issuer %q: %w", ErrBadOAuth2, in.Issuer, err)
		}
		is.keys = s
	case in.Keyfunc != nil:
		is.keys = funcKeys{f: in.Keyfunc}
	}
	if in.Introspection != nil {
		it, err := newIntrospector(in.Issuer, in.Introspection, client, a.now, a.stats)
		if err != nil {
			return nil, fmt.Errorf("oauth2: %w: issuer %q: introspection: %w", ErrBadOAuth2, in.Issuer, err)
		}
		it.required = a.required
		is.intro, is.introJWTs = it, in.Introspection.IntrospectJWTs
	}
	is.revoked = in.Revoked
	return is, nil
}

// defaultOAuth2Client is used when an issuer brings no client. Redirects
// are refused: a JWKS or introspection endpoint that moves is a
// configuration change, and following it could send the gateway's
// introspection credentials elsewhere.
func defaultOAuth2Client() *http.Client {
	return &http.Client{
		Timeout:       oauth2HTTPTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// checkEndpoint accepts https URLs, and http URLs to a loopback address (a
// sidecar), since anything else would send keys or credentials in clear.
func checkEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", raw, err)
	}
	if u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		if ip := net.ParseIP(h); h == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
		return fmt.Errorf("%q must use https (http is allowed only to a loopback address)", raw)
	default:
		return fmt.Errorf("%q must be an https URL", raw)
	}
}

// validScopeToken reports whether s is an RFC 6749 §3.3 scope-token, which
// also makes it safe inside a quoted-string.
func validScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
			return false
		}
	}
	return true
}

// validQuotedText reports whether s may be written inside a quoted-string
// as is (RFC 6750 §3 error_description and realm characters).
func validQuotedText(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c > 0x7e {
			return false
		}
	}
	return true
}

func checkScopes(where string, scopes []string) error {
	for _, s := range scopes {
		if !validScopeToken(s) {
			return fmt.Errorf("oauth2: %w: %s: %q is not a valid scope (printable ASCII without spaces, quotes or backslashes, RFC 6749 §3.3)", ErrBadOAuth2, where, s)
		}
	}
	return nil
}

func compileRouteScope(i int, rs RouteScope) (RouteScope, error) {
	where := fmt.Sprintf("route_scopes[%d]", i)
	if !strings.HasPrefix(rs.PathPrefix, "/") {
		return RouteScope{}, fmt.Errorf("oauth2: %w: %s: path_prefix %q must start with \"/\"", ErrBadOAuth2, where, rs.PathPrefix)
	}
	if len(rs.Scopes) == 0 {
		return RouteScope{}, fmt.Errorf("oauth2: %w: %s: list at least one scope", ErrBadOAuth2, where)
	}
	if err := checkScopes(where, rs.Scopes); err != nil {
		return RouteScope{}, err
	}
	c := RouteScope{PathPrefix: rs.PathPrefix, Scopes: slices.Clone(rs.Scopes)}
	if len(c.PathPrefix) > 1 {
		c.PathPrefix = strings.TrimRight(c.PathPrefix, "/")
		if c.PathPrefix == "" {
			c.PathPrefix = "/"
		}
	}
	for _, m := range rs.Methods {
		if m == "" {
			return RouteScope{}, fmt.Errorf("oauth2: %w: %s: methods has an empty entry", ErrBadOAuth2, where)
		}
		c.Methods = append(c.Methods, strings.ToUpper(m))
	}
	return c, nil
}

// matches reports whether r's method and path select this route scope.
func (rs *RouteScope) matches(method, path string) bool {
	if len(rs.Methods) > 0 && !slices.Contains(rs.Methods, method) {
		return false
	}
	if rs.PathPrefix == "/" {
		return true
	}
	rest, ok := strings.CutPrefix(path, rs.PathPrefix)
	return ok && (rest == "" || rest[0] == '/')
}

// Name returns "oauth2".
func (a *OAuth2) Name() string { return "oauth2" }

// credential describes the credential for a combined "none presented"
// detail.
func (a *OAuth2) credential() string { return "an OAuth2 access token (Authorization: Bearer)" }

// Start begins the background JWKS refresh: each JWKS is fetched at once
// and then every JWKSRefresh (sooner after a failure). Without Start, keys
// are fetched on first use only. Start is idempotent; it does not block.
func (a *OAuth2) Start() {
	a.startOnce.Do(func() {
		for _, is := range a.issuers {
			if is.jwks == nil {
				continue
			}
			a.wg.Add(1)
			go func(c *jwksCache) {
				defer a.wg.Done()
				c.run()
			}(is.jwks)
		}
	})
}

// Close stops the background refresh and waits for it to end. Cached keys
// and answers stay usable, but nothing is fetched any more: a token that
// needs a fresh key gets oauth2.unavailable. Close is idempotent.
func (a *OAuth2) Close() {
	a.closeOnce.Do(func() {
		a.cancel()
		a.wg.Wait()
	})
}

// StripCredentials removes the Authorization header when
// OAuth2Options.StripToken is set, and otherwise does nothing: by default
// the token travels on, since upstreams commonly authorize on its claims.
func (a *OAuth2) StripCredentials(r *http.Request) {
	if a.strip {
		r.Header.Del("Authorization")
	}
}

// tokenInfo is what a validated token says, from a JWT or an
// introspection answer. It is not modified once built.
type tokenInfo struct {
	iss, sub, clientID, kid string
	scopes                  []string
	exp, nbf                time.Time
	aud                     []string
	cnf                     *cnfClaim
	via                     string // "jwt" or "introspection"
	missingClaim            string
	wrongType               string // an introspected token_type other than Bearer
}

// cnfClaim is the RFC 7800 confirmation claim.
type cnfClaim struct {
	// X5tS256 is the RFC 8705 §3.1 certificate thumbprint.
	X5tS256 string `json:"x5t#S256"`
}

// Authenticate reads the bearer token from the Authorization header only
// (RFC 6750 §2.1; tokens in the query or body are ignored), validates it
// and checks scopes and certificate binding. It fails closed with a
// *problem.Error: oauth2.token_missing (no Bearer credential; the challenge
// carries no error attribute, RFC 6750 §3.1), oauth2.token_malformed,
// token_expired, token_not_yet_valid, signature_invalid, issuer_unknown,
// audience_mismatch, token_inactive, cert_binding_mismatch and
// cert_binding_required (401 with a Bearer challenge, error="invalid_token",
// or "invalid_request" for a malformed header), oauth2.insufficient_scope
// (403, error="insufficient_scope" and the scopes required), and
// oauth2.unavailable (503, no challenge) when keys or introspection are
// unreachable and nothing is cached.
//
// A token carrying cnf.x5t#S256 is accepted only when the TLS connection's
// client certificate has that thumbprint. The certificate is compared as
// presented: the listener requests certificates without verifying their
// chain, but the TLS handshake itself proves the client holds the
// certificate's private key, which is all RFC 8705 §3 binding requires
// (self-signed certificates are legitimate there). Whether the certificate
// is also trusted is the mtls authenticator's question.
func (a *OAuth2) Authenticate(r *http.Request) (*Principal, error) {
	p, err := a.authenticate(r)
	if err != nil {
		a.stats.outcome(err.Code)
		return nil, err
	}
	a.stats.outcome("ok")
	if a.strip {
		r.Header.Del("Authorization")
	}
	return p, nil
}

func (a *OAuth2) authenticate(r *http.Request) (*Principal, *problem.Error) {
	tok, perr := a.bearer(r)
	if perr != nil {
		return nil, perr
	}
	var info *tokenInfo
	if looksLikeJWT(tok) {
		info, perr = a.validateJWT(r.Context(), tok)
	} else {
		info, perr = a.introspectOpaque(r.Context(), tok)
	}
	if perr != nil {
		return nil, perr
	}
	return a.authorize(r, info)
}

// bearer extracts the token. Only the "Bearer" scheme counts as an OAuth2
// credential; any other Authorization scheme is "no token".
func (a *OAuth2) bearer(r *http.Request) (string, *problem.Error) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return "", a.fail(problem.CodeOAuth2TokenMissing, "", "This API requires an OAuth2 access token, and the request carried none.",
			nil, "reason", "missing", "explanation", "No Authorization header. Fix: send Authorization: Bearer <access token> (tokens in the URL are not accepted).")
	}
	if len(values) > 1 {
		return "", a.fail(problem.CodeOAuth2TokenMalformed, "invalid_request", "The request carried more than one Authorization header.",
			nil, "reason", "several_headers", "count", len(values), "explanation", "Several Authorization headers; which one to believe would be a guess. Fix: send exactly one.")
	}
	scheme, tok, _ := strings.Cut(strings.TrimSpace(values[0]), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", a.fail(problem.CodeOAuth2TokenMissing, "", "This API requires an OAuth2 access token, and the request carried none.",
			nil, "reason", "other_scheme", "scheme", truncate(scheme, 32), "explanation", "The Authorization header uses another scheme than Bearer. Fix: send Authorization: Bearer <access token>.")
	}
	tok = strings.TrimLeft(tok, " ")
	if tok == "" {
		return "", a.fail(problem.CodeOAuth2TokenMalformed, "invalid_request", "The Authorization header carries an empty bearer token.",
			nil, "reason", "empty_token", "explanation", "Authorization: Bearer with no token. Fix: send the access token after the scheme.")
	}
	if len(tok) > maxBearerLen {
		return "", a.fail(problem.CodeOAuth2TokenMalformed, "invalid_request", "The bearer token is too long.",
			nil, "reason", "too_long", "length", len(tok), "explanation", fmt.Sprintf("The token has %d bytes; at most %d are accepted.", len(tok), maxBearerLen))
	}
	if !validB64Token(tok) {
		return "", a.fail(problem.CodeOAuth2TokenMalformed, "invalid_request", "The bearer token contains characters a token may not contain.",
			nil, "reason", "bad_characters", "explanation", "The token is not an RFC 6750 b64token (letters, digits, - . _ ~ + / and trailing =). Fix: send the token exactly as issued.")
	}
	return tok, nil
}

// validB64Token reports whether s matches RFC 6750 §2.1 b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func validB64Token(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' {
			continue
		}
		break
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// looksLikeJWT tells a JWS compact serialisation from an opaque token: three
// segments, the first starting with the base64url of `{"`. An opaque token
// that happens to look like this fails as a malformed JWT, which is safe.
func looksLikeJWT(tok string) bool {
	return strings.HasPrefix(tok, "eyJ") && strings.Count(tok, ".") == 2
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// authorize applies the checks common to JWTs and introspected tokens:
// audience, required claims, certificate binding and scopes, then builds
// the principal.
func (a *OAuth2) authorize(r *http.Request, info *tokenInfo) (*Principal, *problem.Error) {
	is := a.issuers[info.iss]
	if info.missingClaim != "" {
		return nil, a.tokenFail(problem.CodeOAuth2TokenMalformed, "The access token lacks a required claim.", info, nil,
			"reason", "required_claim_missing", "claim", info.missingClaim,
			"explanation", "The token has no "+info.missingClaim+" claim, which oauth2.required_claims demands. Fix: configure the authorization server to include it.")
	}
	if is != nil && len(is.audiences) > 0 && !intersects(info.aud, is.audiences) {
		return nil, a.tokenFail(problem.CodeOAuth2AudienceMismatch, "The access token is not meant for this API.", info, nil,
			"reason", "audience_mismatch", "aud", strings.Join(info.aud, " "), "audiences", strings.Join(is.audiences, " "),
			"explanation", "The token's aud contains none of the issuer's configured audiences. Fix: request the token for this API's audience (resource parameter), or add the audience.")
	}
	bound := false
	if info.cnf != nil {
		if perr := a.checkBinding(r, info); perr != nil {
			return nil, perr
		}
		bound = true
	} else if a.requireBound {
		return nil, a.tokenFail(problem.CodeOAuth2CertBindingRequired, "This API accepts only access tokens bound to a client certificate.", info, nil,
			"reason", "unbound_token",
			"explanation", "The API sets require_bound_tokens and the token has no cnf.x5t#S256 (RFC 8705). Fix: obtain the token over mutual TLS from an authorization server that binds tokens.")
	}
	if perr := a.checkScopes(r, info); perr != nil {
		return nil, perr
	}
	scopes := info.scopes
	if info.via == "introspection" {
		// The info may be a cached answer shared by many requests; each
		// principal gets its own slice.
		scopes = slices.Clone(scopes)
	}
	app := ""
	if a.apps != nil && info.clientID != "" {
		if id, ok := a.apps(info.clientID); ok {
			app = id
		}
	}
	return &Principal{
		Application: app,
		Methods:     []string{"oauth2"},
		Subject:     info.sub,
		ClientID:    info.clientID,
		Scopes:      scopes,
		TokenExpiry: info.exp,
		CertBound:   bound,
	}, nil
}

func intersects(have, want []string) bool {
	for _, h := range have {
		if slices.Contains(want, h) {
			return true
		}
	}
	return false
}

// checkBinding enforces RFC 8705 §3 for a token with a cnf claim.
func (a *OAuth2) checkBinding(r *http.Request, info *tokenInfo) *problem.Error {
	want := strings.TrimRight(info.cnf.X5tS256, "=")
	if want == "" {
		return a.tokenFail(problem.CodeOAuth2CertBindingMismatch, "The access token is bound to a key this API cannot check.", info, nil,
			"reason", "unsupported_confirmation",
			"explanation", "The token has a cnf claim without x5t#S256 (for example a DPoP jkt), so it is bound to something other than a TLS client certificate; accepting it as a plain bearer token would defeat the binding. Fix: use a certificate-bound or unbound token.")
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return a.tokenFail(problem.CodeOAuth2CertBindingMismatch, "The access token is bound to a client certificate, and the connection presented none.", info, nil,
			"reason", "no_client_cert", "cnf_x5t_s256", want,
			"explanation", "The token carries cnf.x5t#S256 (RFC 8705) but the TLS connection has no client certificate. Fix: send the request with the certificate the token was issued to.")
	}
	got := Thumbprint(r.TLS.PeerCertificates[0])
	if got != want {
		return a.tokenFail(problem.CodeOAuth2CertBindingMismatch, "The access token is bound to a different client certificate.", info, nil,
			"reason", "thumbprint_mismatch", "cnf_x5t_s256", want, "cert_x5t_s256", got, "cert_subject", r.TLS.PeerCertificates[0].Subject.String(),
			"explanation", "The token's cnf.x5t#S256 is not the SHA-256 thumbprint of the connection's client certificate. Fix: send the token with the certificate it was issued to, or obtain a new token with the current certificate.")
	}
	return nil
}

// checkScopes requires the API's scopes and those of every matching route.
func (a *OAuth2) checkScopes(r *http.Request, info *tokenInfo) *problem.Error {
	ok := hasAll(info.scopes, a.scopes)
	path := ""
	if r.URL != nil {
		path = r.URL.Path
	}
	for i := range a.routes {
		if ok && a.routes[i].matches(r.Method, path) && !hasAll(info.scopes, a.routes[i].Scopes) {
			ok = false
		}
	}
	if ok {
		return nil
	}
	need := slices.Clone(a.scopes)
	for i := range a.routes {
		if a.routes[i].matches(r.Method, path) {
			for _, s := range a.routes[i].Scopes {
				if !slices.Contains(need, s) {
					need = append(need, s)
				}
			}
		}
	}
	var missing []string
	for _, s := range need {
		if !slices.Contains(info.scopes, s) {
			missing = append(missing, s)
		}
	}
	scope := strings.Join(need, " ")
	e := a.tokenFail(problem.CodeOAuth2InsufficientScope, "The access token does not grant the scopes this request needs: "+scope+".", info, nil,
		"reason", "insufficient_scope", "required_scopes", scope, "missing_scopes", strings.Join(missing, " "), "token_scopes", strings.Join(info.scopes, " "),
		"explanation", "The token lacks scopes that oauth2.scopes or a matching route_scopes entry require. Fix: request a token with the missing scopes, or grant them to the client.")
	e.Header = http.Header{"Www-Authenticate": {`Bearer realm="` + a.realm + `", error="insufficient_scope", error_description="The access token lacks a required scope", scope="` + scope + `"`}}
	return e
}

func hasAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// fail builds a rejection with its RFC 6750 §3 challenge. errCode is the
// challenge's error attribute ("invalid_token", "invalid_request"); empty
// means none, as for a missing token. oauth2.unavailable gets no
// challenge: the credential may be fine, the gateway could not check it.
func (a *OAuth2) fail(code, errCode, detail string, cause error, log ...any) *problem.Error {
	e := &problem.Error{Code: code, Detail: detail, Cause: cause, Log: append([]any{"auth", "oauth2"}, log...)}
	if code == problem.CodeOAuth2Unavailable {
		return e
	}
	challenge := `Bearer realm="` + a.realm + `"`
	if errCode != "" {
		challenge += `, error="` + errCode + `", error_description="` + challengeDescription(code) + `"`
	}
	e.Header = http.Header{"Www-Authenticate": {challenge}}
	return e
}

// tokenFail is fail for a token whose claims are known, adding iss, sub,
// client_id and kid to the log.
func (a *OAuth2) tokenFail(code, detail string, info *tokenInfo, cause error, log ...any) *problem.Error {
	attrs := append([]any{"iss", info.iss, "sub", info.sub, "client_id", info.clientID, "kid", info.kid, "via", info.via}, log...)
	return a.fail(code, "invalid_token", detail, cause, attrs...)
}

// challengeDescription is the error_description for a code: fixed
// sentences, so nothing from the token reaches the header.
func challengeDescription(code string) string {
	switch code {
	case problem.CodeOAuth2TokenExpired:
		return "The access token expired"
	case problem.CodeOAuth2TokenNotYetValid:
		return "The access token is not valid yet"
	case problem.CodeOAuth2SignatureInvalid:
		return "The access token signature is invalid"
	case problem.CodeOAuth2IssuerUnknown:
		return "The access token issuer is not accepted"
	case problem.CodeOAuth2AudienceMismatch:
		return "The access token audience is not this API"
	case problem.CodeOAuth2TokenInactive:
		return "The access token is not active"
	case problem.CodeOAuth2CertBindingMismatch:
		return "The access token is bound to another client certificate"
	case problem.CodeOAuth2CertBindingRequired:
		return "The access token must be bound to a client certificate"
	default:
		return "The access token is malformed"
	}
}

// supportedKey reports whether k is a public key the accepted algorithms
// can use: ECDSA on P-256/384/521, RSA of 2048 bits or more, or Ed25519.
func supportedKey(k crypto.PublicKey) error {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return errors.New("empty ECDSA key")
		}
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("ECDSA curve %s is not supported", k.Curve.Params().Name)
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return errors.New("empty RSA key")
		}
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits is too short (2048 or more)", k.N.BitLen())
		}
		return nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return errors.New("malformed Ed25519 key")
		}
		return nil
	case []byte:
		return errors.New("secret (HMAC) keys are not accepted: tokens must be signed with a private key")
	default:
		return fmt.Errorf("key type %T is not supported (ECDSA, RSA or Ed25519 public keys)", k)
	}
}

// keyFits reports whether k can verify alg, so a key set offers the
// signature check only keys of the right kind.
func keyFits(alg string, k crypto.PublicKey) bool {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return k.Curve == elliptic.P256()
		case "ES384":
			return k.Curve == elliptic.P384()
		case "ES512":
			return k.Curve == elliptic.P521()
		}
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// oauth2Counters are the authenticator's statistics.
type oauth2Counters struct {
	jwksOK, jwksFailed                 atomic.Uint64
	introCalls, introHits, introFailed atomic.Uint64
	outcomes                           map[string]*atomic.Uint64
}

func newOAuth2Counters() *oauth2Counters {
	c := &oauth2Counters{outcomes: map[string]*atomic.Uint64{"ok": {}}}
	for _, code := range []string{
		problem.CodeOAuth2TokenMissing, problem.CodeOAuth2TokenMalformed, problem.CodeOAuth2TokenExpired,
		problem.CodeOAuth2TokenNotYetValid, problem.CodeOAuth2SignatureInvalid, problem.CodeOAuth2IssuerUnknown,
		problem.CodeOAuth2AudienceMismatch, problem.CodeOAuth2TokenInactive, problem.CodeOAuth2CertBindingMismatch,
		problem.CodeOAuth2CertBindingRequired, problem.CodeOAuth2InsufficientScope, problem.CodeOAuth2Unavailable,
	} {
		c.outcomes[code] = &atomic.Uint64{}
	}
	return c
}

// outcome counts one validation; the map is read-only after construction.
func (c *oauth2Counters) outcome(code string) {
	if n, ok := c.outcomes[code]; ok {
		n.Add(1)
	}
}

// OAuth2Stats are cumulative counts since NewOAuth2.
type OAuth2Stats struct {
	// JWKSFetchOK and JWKSFetchFailed count JWKS fetches, background and
	// on demand, across all issuers.
	JWKSFetchOK, JWKSFetchFailed uint64
	// IntrospectionCalls counts requests sent to introspection endpoints,
	// IntrospectionCacheHits answers reused from the cache, and
	// IntrospectionFailed calls that got no usable answer.
	IntrospectionCalls, IntrospectionCacheHits, IntrospectionFailed uint64
	// Outcomes counts Authenticate results by problem code, with "ok" for
	// success.
	Outcomes map[string]uint64
}

// Stats returns a snapshot of the counters. It is safe to call
// concurrently with Authenticate.
func (a *OAuth2) Stats() OAuth2Stats {
	s := OAuth2Stats{
		JWKSFetchOK:            a.stats.jwksOK.Load(),
		JWKSFetchFailed:        a.stats.jwksFailed.Load(),
		IntrospectionCalls:     a.stats.introCalls.Load(),
		IntrospectionCacheHits: a.stats.introHits.Load(),
		IntrospectionFailed:    a.stats.introFailed.Load(),
		Outcomes:               make(map[string]uint64, len(a.stats.outcomes)),
	}
	for k, v := range a.stats.outcomes {
		s.Outcomes[k] = v.Load()
	}
	return s
}
