package config

import "time"

// The defaults, all in one place. README's configuration reference repeats
// them; TestDefaultsDocumented keeps the two in step.
const (
	DefaultShutdownGrace       = 30 * time.Second
	DefaultLogLevel            = LogLevel("info")
	DefaultMinTLSVersion       = TLS12
	DefaultMaxHeaderBytes      = ByteSize(64 << 10)
	DefaultMaxBodyBytes        = ByteSize(10 << 20)
	DefaultReadHeaderTimeout   = 10 * time.Second
	DefaultIdleTimeout         = 120 * time.Second
	DefaultPathPrefix          = "/"
	DefaultConnectTimeout      = 5 * time.Second
	DefaultTLSHandshakeTimeout = 10 * time.Second
	DefaultResponseTimeout     = 60 * time.Second
	DefaultUpstreamIdleTimeout = 90 * time.Second
	DefaultMaxIdleConns        = 128
	DefaultClientCertMode      = ClientCertNone
	DefaultCRLRefresh          = 10 * time.Minute
	DefaultRevocationPolicy    = FailClosed
	DefaultAPIKeyHeader        = "X-API-Key"
	DefaultOAuth2PathPrefix    = "/oauth2"
	DefaultTokenTTL            = 15 * time.Minute
	DefaultSigningAlgorithm    = "ES256"
	DefaultKeyRotation         = 24 * time.Hour
	DefaultTokenLeeway         = 30 * time.Second
	DefaultAdminAddress        = "127.0.0.1:9443"
	DefaultTracingServiceName  = "portcullis"
	DefaultTracingSampleRatio  = 1.0
	DefaultTracingTimeout      = 10 * time.Second
)

// DefaultTokenAlgorithms are the signature algorithms an API accepts when it
// names none: asymmetric only, never "none" or HMAC.
var DefaultTokenAlgorithms = []string{"ES256", "RS256", "PS256", "EdDSA"}

// WithDefaults returns f with every unset field given its default. It does
// not modify f.
func WithDefaults(f File) File {
	orDefault(&f.Version, 1)
	orDefault(&f.ShutdownGrace, DefaultShutdownGrace)
	orDefault(&f.Log.Level, DefaultLogLevel)
	if f.Log.AccessLog == nil {
		f.Log.AccessLog = ptr(true)
	}
	if len(f.TrustStores) > 0 {
		stores := make(map[string]TrustStore, len(f.TrustStores))
		for name, ts := range f.TrustStores {
			orDefault(&ts.RevocationPolicy, DefaultRevocationPolicy)
			if ts.CRL != nil && ts.CRL.Refresh == 0 {
				c := *ts.CRL
				c.Refresh = DefaultCRLRefresh
				ts.CRL = &c
			}
			stores[name] = ts
		}
		f.TrustStores = stores
	}
	orDefault(&f.Tracing.ServiceName, DefaultTracingServiceName)
	if f.Tracing.SampleRatio == nil {
		f.Tracing.SampleRatio = ptr(DefaultTracingSampleRatio)
	}
	orDefault(&f.Tracing.Timeout, DefaultTracingTimeout)
	if f.Admin != nil {
		a := *f.Admin
		orDefault(&a.Address, DefaultAdminAddress)
		f.Admin = &a
	}
	if as := f.AuthorizationServer; as != nil {
		c := *as
		orDefault(&c.PathPrefix, DefaultOAuth2PathPrefix)
		orDefault(&c.TokenTTL, DefaultTokenTTL)
		orDefault(&c.Algorithm, DefaultSigningAlgorithm)
		orDefault(&c.RotateEvery, DefaultKeyRotation)
		f.AuthorizationServer = &c
	}
	f.Applications = append([]Application(nil), f.Applications...)
	for i := range f.Applications {
		if o := f.Applications[i].OAuth2; o != nil && o.ClientID == "" {
			c := *o
			c.ClientID = f.Applications[i].ID
			f.Applications[i].OAuth2 = &c
		}
	}
	f.Listeners = append([]Listener(nil), f.Listeners...)
	for i := range f.Listeners {
		l := &f.Listeners[i]
		orDefault(&l.TLS.ClientCertificates, DefaultClientCertMode)
		orDefault(&l.TLS.MinVersion, DefaultMinTLSVersion)
		if l.HTTP2 == nil {
			l.HTTP2 = ptr(true)
		}
		lim := &l.Limits
		orDefault(&lim.MaxHeaderBytes, DefaultMaxHeaderBytes)
		orDefault(&lim.MaxBodyBytes, DefaultMaxBodyBytes)
		orDefault(&lim.ReadHeaderTimeout, DefaultReadHeaderTimeout)
		orDefault(&lim.IdleTimeout, DefaultIdleTimeout)
	}
	f.APIs = append([]API(nil), f.APIs...)
	for i := range f.APIs {
		a := &f.APIs[i]
		orDefault(&a.Match.PathPrefix, DefaultPathPrefix)
		if a.ForwardClientCert == "" {
			a.ForwardClientCert = ForwardNone
			if a.Auth.Uses("mtls") {
				a.ForwardClientCert = ForwardRFC9440
			}
		}
		if a.MTLS != nil && a.MTLS.RequireClientAuthEKU == nil {
			m := *a.MTLS
			m.RequireClientAuthEKU = ptr(true)
			a.MTLS = &m
		}
		if a.OAuth2 != nil {
			o := *a.OAuth2
			if len(o.Algorithms) == 0 {
				o.Algorithms = DefaultTokenAlgorithms
			}
			orDefault(&o.Leeway, DefaultTokenLeeway)
			a.OAuth2 = &o
		}
		if a.Auth.Uses("api_key") {
			k := APIKeyPolicy{}
			if a.APIKey != nil {
				k = *a.APIKey
			}
			orDefault(&k.Header, DefaultAPIKeyHeader)
			a.APIKey = &k
		}
		u := &a.Upstream
		orDefault(&u.ConnectTimeout, DefaultConnectTimeout)
		orDefault(&u.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout)
		orDefault(&u.ResponseTimeout, DefaultResponseTimeout)
		orDefault(&u.IdleTimeout, DefaultUpstreamIdleTimeout)
		orDefault(&u.MaxIdleConns, DefaultMaxIdleConns)
		if u.TLS.VerifyHostname == nil {
			u.TLS.VerifyHostname = ptr(true)
		}
		orDefault(&u.TLS.MinVersion, DefaultMinTLSVersion)
	}
	return f
}

func ptr[T any](v T) *T { return &v }

// orDefault sets *p to def when it holds its type's zero value.
func orDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}
