package snapshot

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/internal/auth"
	"github.com/portcullis/portcullis/internal/authserver"
	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/keymaterial"
	"github.com/portcullis/portcullis/internal/policy"
	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/trust"
	"github.com/portcullis/portcullis/internal/upstream"
)

// Snapshot is the compiled, immutable runtime view of one configuration.
type Snapshot struct {
	// Listeners by name.
	Listeners map[string]*Listener
	// APIs in configuration order.
	APIs []*API
	// Warnings are the unsafe options this configuration turns on; they are
	// logged at every load.
	Warnings config.Problems
	// AccessLog turns the per-request access log on.
	AccessLog bool
	// AccessLogSample is the share of successful requests logged (1: all).
	AccessLogSample float64
	// AccessLogFormat says which request headers the access log includes
	// and which fields it redacts.
	AccessLogFormat AccessLogFormat
	// Certificates lists every certificate the snapshot uses, for expiry
	// reporting.
	Certificates []CertUse
	// ShutdownGrace is how long in-flight requests may finish on shutdown.
	ShutdownGrace time.Duration

	trustSets  []*trust.Set
	oauth2     []*auth.OAuth2
	authServer *authserver.Server
}

// CertUse names where a certificate is used.
type CertUse struct {
	Where string
	Cert  *x509.Certificate
}

// Listener is the compiled form of one listener.
type Listener struct {
	Name string
	// Static holds the settings bound when the socket is opened; a reload
	// cannot change them.
	Static ListenerStatic
	// certs holds the TLS configurations ConfigFor returns from the
	// socket's GetConfigForClient, so a new snapshot's certificates and
	// trust apply to the next handshake.
	certs clientCerts
	// authServer mounts the built-in authorization server (nil: none here).
	authServer *authServerMount
	// Router holds the APIs served on this listener.
	Router *Router
	// MaxBodyBytes caps request bodies; negative means no limit.
	MaxBodyBytes int64
}

// ListenerStatic are the parts of a listener fixed for the life of its
// socket.
type ListenerStatic struct {
	Address           string
	HTTP2             bool
	MaxHeaderBytes    int
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// RedirectAddress, when set, is a plain-HTTP socket redirecting to HTTPS
	// on RedirectPort (0: the TLS listener's port).
	RedirectAddress string
	RedirectPort    int
}

// API is the compiled form of one API.
type API struct {
	// Name is the API's name within its tenant.
	Name string
	// Tenant owns the API; ID is its gateway-wide name (config.Qualify),
	// used in metrics, logs and limit keys.
	Tenant string
	ID     string
	// hosts are where the API is served ("" for any host) and prefix its
	// path prefix, the tenant's prefix (tenantPrefix) included.
	hosts        []string
	prefix       string
	tenantPrefix string
	// clientTenants maps OAuth2 client ids to their tenant, to refuse
	// tokens of another tenant's clients.
	clientTenants map[string]string
	methods       []string
	stripPrefix   bool
	listeners     []string
	Upstream      *upstream.Upstream
	// auth is nil for an open API.
	auth auth.Authenticator
	// needsCert is true when the API can use a client certificate, so the
	// handshake must have asked for one.
	needsCert bool
	forward   config.ForwardMode
	// certHeaders caches the forward headers of verified chains.
	certHeaders certHeaderCache
	policies    *apiPolicies
	now         func() time.Time
}

// Exchange is what a request's run through an API produced, for the access
// log.
type Exchange struct {
	// Tenant is the API's tenant.
	Tenant string
	// RateLimit is the rate-limit decision, "" when no limit applied.
	RateLimit string
	// Principal is who authenticated (nil for an open API or a rejection).
	Principal *auth.Principal
	Upstream  upstream.Result
}

// Rate-limit decisions, for Exchange.RateLimit and the metrics.
const (
	RateLimitAllowed = "allowed"
	RateLimitLimited = "limited"
	RateLimitQuota   = "quota"
)

// NeedsClientCert reports whether the API can authenticate with a client
// certificate, so the connection's handshake must have requested one.
func (a *API) NeedsClientCert() bool { return a.needsCert }

func (a *API) allowsMethod(m string) bool {
	if len(a.methods) == 0 {
		return true
	}
	for _, x := range a.methods {
		if x == m {
			return true
		}
	}
	return false
}

// Serve runs the API's pipeline: remove every incoming forwarded-certificate
// header, authenticate (the principal lands in x),
// put the verified client certificate in the configured header, remove the
// matched prefix when the API strips it, and forward to the upstream. The
// returns a *problem.Error when nothing was written.
func (a *API) Serve(w http.ResponseWriter, r *http.Request, x *Exchange) error {
	// First, on every API: nothing after this may see a client's forged
	// certificate header, and only the verified chain is forwarded.
	auth.StripForwardedCertHeaders(r.Header)
	x.Tenant = a.Tenant
	pol := a.policies
	if handled, err := pol.beforeAuth(w, r); handled || err != nil {
		return err
	}
	if a.auth != nil {
		p, err := a.auth.Authenticate(r)
		if err != nil {
			return err
		}
		x.Principal = p
		if p.ClientID != "" && p.Application == "" {
			if t, ok := a.clientTenants[p.ClientID]; ok && t != a.Tenant {
				return &problem.Error{Code: problem.CodeOAuth2TenantMismatch, Detail: "The access token was issued to a client of another tenant.",
					Header: http.Header{"Www-Authenticate": {`Bearer error="invalid_token", error_description="token of another tenant"`}},
					Log:    []any{"client_id", p.ClientID, "client_tenant", t, "reason", "tenant_mismatch", "explanation", "the token's client belongs to tenant " + t + ", the API to tenant " + a.Tenant + "; fix: call this API with a token of an application of its own tenant"}}
			}
		}
		if len(p.Chain) > 0 {
			switch a.forward {
			case config.ForwardRFC9440:
				a.certHeaders.set(r.Header, p.Chain, auth.SetRFC9440)
			case config.ForwardXFCC:
				a.certHeaders.set(r.Header, p.Chain, auth.SetXFCC)
			}
		}
	}
	if err := pol.afterAuth(w, r, a.ID, x, a.now()); err != nil {
		return err
	}
	if pol.reqHdr != nil || pol.respHdr != nil || pol.cors != nil {
		v := vars(r, a.Name, x.Principal)
		if pol.reqHdr != nil {
			pol.reqHdr.Apply(r.Header, v)
		}
		if pol.respHdr != nil || pol.cors != nil {
			w = &responseRules{ResponseWriter: w, r: r, rules: pol.respHdr, cors: pol.cors, v: v}
		}
	}
	// The tenant's prefix never goes upstream; the API's own prefix goes
	// unless the API strips it.
	strip := a.tenantPrefix
	if a.stripPrefix {
		strip = a.prefix
	}
	if strip != "" && strip != "/" {
		r.URL.Path = stripped(r.URL.Path, strip)
		if r.URL.RawPath != "" {
			r.URL.RawPath = stripped(r.URL.RawPath, strip)
		}
	}
	return a.Upstream.Forward(w, r, &x.Upstream)
}

func stripped(p, prefix string) string {
	p = strings.TrimPrefix(p, strings.TrimSuffix(prefix, "/"))
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	return p
}

// Activate starts the snapshot's background work (revocation list
// refresh). Call it when the snapshot starts serving.
func (s *Snapshot) Activate() {
	for _, t := range s.trustSets {
		t.Start()
	}
	for _, o := range s.oauth2 {
		o.Start()
	}
	if s.authServer != nil {
		s.authServer.Start()
	}
}

// Close stops background work and releases the snapshot's upstream pools:
// with Options.Pools, a pool another snapshot still holds keeps its
// connections and one nobody holds is drained; without, idle connections
// are closed. Requests still in flight on it finish normally.
func (s *Snapshot) Close() {
	for _, t := range s.trustSets {
		t.Close()
	}
	for _, o := range s.oauth2 {
		o.Close()
	}
	if s.authServer != nil {
		s.authServer.Close()
	}
	for _, a := range s.APIs {
		a.Upstream.Close()
	}
}

// Holder holds the current snapshot. Load and Store are safe for concurrent
// use; readers never block.
type Holder struct{ p atomic.Pointer[Snapshot] }

// Load returns the current snapshot.
func (h *Holder) Load() *Snapshot { return h.p.Load() }

// Store makes s current and returns the snapshot it replaced (nil at first).
func (h *Holder) Store(s *Snapshot) *Snapshot { return h.p.Swap(s) }

// Options are what Compile needs beyond the configuration.
type Options struct {
	// BaseDir resolves relative file names (usually the configuration file's
	// directory).
	BaseDir string
	// Now is the clock used to check certificate validity. Default time.Now.
	Now func() time.Time
	// Logger receives revocation refresh events. Default: discarded.
	Logger *slog.Logger
	// AuthKeyDir keeps the built-in authorization server's signing keys
	// when the configuration names no key_dir, so that a reload keeps the
	// keys (serve passes a directory it owns for the process's lifetime).
	AuthKeyDir string
	// Validate compiles for `portcullis validate`: nothing is written to
	// disk.
	Validate bool
	// Counter and Quotas keep rate-limit and quota state; serve passes the
	// same ones to every snapshot so a reload does not reset them. Nil:
	// fresh in-memory counters.
	Counter policy.Counter
	Quotas  policy.QuotaCounter
	// Pools shares upstream transports between snapshots, so a reload that
	// changes nothing about an API's connections keeps them (and a changed
	// TLS identity drains the old ones); serve passes the same one to
	// every snapshot. Nil: each snapshot's APIs get transports of their
	// own, closed with the snapshot.
	Pools *upstream.Pools
}

type compiler struct {
	o     Options
	cfg   config.File
	probs config.Problems
	snap  *Snapshot
	trust map[string]*keymaterial.TrustSet
	sets  map[string]*trust.Set
	// scopes hold each tenant's applications, plans and subscriptions;
	// sc is the one of the API being compiled.
	scopes map[string]*scope
	sc     *scope
	// clientTenants maps every OAuth2 client id to its application's
	// tenant, so an API refuses tokens of another tenant's clients.
	clientTenants map[string]string

	authServer          *authserver.Server
	authServerListeners []string
	authServerPrefix    string
	// authServerWantsCerts: some client authenticates with a certificate,
	// so listeners serving the authorization server ask for one.
	authServerWantsCerts bool
}

func (c *compiler) add(path string, format string, args ...any) {
	c.probs = append(c.probs, config.Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (c *compiler) file(name string) string {
	if name == "" || filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(c.o.BaseDir, name)
}

// Compile turns a validated configuration (after config.WithDefaults and
// config.Validate) into a snapshot, opening every key and trust file. It
// reports every file that cannot be used, with the key path that names it,
// and returns no snapshot then.
func Compile(f config.File, o Options) (*Snapshot, config.Problems) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Counter == nil {
		o.Counter = policy.NewMemoryCounter()
	}
	if o.Quotas == nil {
		o.Quotas = policy.NewMemoryQuotas()
	}
	c := &compiler{o: o, cfg: f, trust: map[string]*keymaterial.TrustSet{}, sets: map[string]*trust.Set{}, snap: &Snapshot{
		Listeners:       map[string]*Listener{},
		Warnings:        config.Warnings(f),
		AccessLog:       f.Log.AccessLog == nil || *f.Log.AccessLog,
		AccessLogSample: sampleRatio(f.Log.AccessLogSample),
		AccessLogFormat: accessLogFormat(f),
		ShutdownGrace:   f.ShutdownGrace,
	}}
	for name, ts := range f.TrustStores {
		c.trustStore(name, ts)
		c.trustSet(name, ts)
	}
	c.compileScopes(f)
	c.authorizationServer(f)
	for i, a := range f.APIs {
		c.api(fmt.Sprintf("apis[%d]", i), a)
	}
	for i, l := range f.Listeners {
		c.listener(fmt.Sprintf("listeners[%d]", i), l, f.APIs)
	}
	if len(c.probs) > 0 {
		c.snap.Close()
		return nil, c.probs
	}
	return c.snap, nil
}

func (c *compiler) secret(path, env, file string) []byte {
	b, err := keymaterial.ReadSecret(keymaterial.SecretRef{Env: env, File: c.file(file)})
	if err != nil {
		c.add(path, "%v", err)
	}
	return b
}

func (c *compiler) trustStore(name string, ts config.TrustStore) {
	path := "trust_stores." + name
	before := len(c.probs)
	src := keymaterial.TrustSource{}
	for _, p := range ts.PEM {
		src.PEMFiles = append(src.PEMFiles, c.file(p))
	}
	for i, s := range ts.Truststores {
		pw := c.secret(fmt.Sprintf("%s.truststores[%d].password_env", path, i), s.PasswordEnv, s.PasswordFile)
		src.Truststores = append(src.Truststores, keymaterial.StoreRef{Path: c.file(s.Path), Password: pw})
	}
	for _, in := range ts.Inline {
		src.Inline = append(src.Inline, keymaterial.InlinePEM{Name: in.Name, Data: []byte(in.PEM)})
	}
	if len(c.probs) > before {
		return
	}
	set, err := keymaterial.LoadTrust(src)
	if err != nil {
		c.add(path, "%v", err)
		return
	}
	c.trust[name] = set
	for _, cert := range set.Certs {
		c.snap.Certificates = append(c.snap.Certificates, CertUse{Where: "trust store " + name, Cert: cert})
	}
}

func (c *compiler) identity(path string, k config.KeySource) *keymaterial.Identity {
	before := len(c.probs)
	var src keymaterial.IdentitySource
	if k.Keystore != nil {
		ks := k.Keystore
		src = keymaterial.IdentitySource{
			Keystore:    c.file(ks.Path),
			Alias:       ks.Alias,
			Password:    c.secret(path+".keystore.password_env", ks.PasswordEnv, ks.PasswordFile),
			KeyPassword: c.secret(path+".keystore.key_password_env", ks.KeyPasswordEnv, ks.KeyPasswordFile),
		}
	} else {
		src = keymaterial.IdentitySource{
			CertFile: c.file(k.Cert),
			KeyFile:  c.file(k.Key),
			Password: c.secret(path+".key_password_env", k.KeyPasswordEnv, k.KeyPasswordFile),
		}
	}
	if len(c.probs) > before {
		// A password could not be read: opening the store without it would
		// only add a misleading "wrong password".
		return nil
	}
	id, err := keymaterial.LoadIdentity(src, c.o.Now())
	if err != nil {
		c.add(path, "%v", err)
		return nil
	}
	return id
}

func (c *compiler) api(path string, a config.API) {
	c.sc = c.scope(a.Tenant)
	u := a.Upstream
	opts := upstream.Options{
		API:                   config.Qualify(a.Tenant, a.Name),
		ConnectTimeout:        u.ConnectTimeout,
		TLSHandshakeTimeout:   u.TLSHandshakeTimeout,
		ResponseHeaderTimeout: u.ResponseTimeout,
		IdleConnTimeout:       u.IdleTimeout,
		MaxIdleConnsPerHost:   u.MaxIdleConns,
		Pools:                 c.o.Pools,
		TLS: upstream.TLSOptions{
			ServerName:         u.TLS.ServerName,
			VerifyHostname:     u.TLS.VerifyHostname == nil || *u.TLS.VerifyHostname,
			InsecureSkipVerify: u.TLS.InsecureSkipVerify,
			MinVersion:         tlsVersion(u.TLS.MinVersion),
			Pins:               u.TLS.Pins,
			TrustName:          u.TLS.Trust,
		},
	}
	for _, t := range u.Targets {
		tu, err := url.Parse(t)
		if err != nil {
			c.add(path+".upstream.targets", "%q is not a URL", t)
			continue
		}
		opts.Targets = append(opts.Targets, tu)
	}
	if u.TLS.Trust != "" {
		if ts := c.cfg.TrustStores[u.TLS.Trust]; ts.CRL != nil || (ts.OCSP != nil && ts.OCSP.Enabled) {
			if s, ok := c.sets[u.TLS.Trust]; ok {
				opts.TLS.Revocation = s.VerifyConnection(x509.ExtKeyUsageServerAuth)
			}
		}
		if set, ok := c.trust[u.TLS.Trust]; ok {
			opts.TLS.RootCAs = set.Pool
			for _, cert := range set.Certs {
				opts.TLS.TrustSubjects = append(opts.TLS.TrustSubjects, cert.Subject.String())
			}
		} else {
			// The trust store failed to load; its problem is reported already.
			return
		}
	}
	if cc := u.TLS.ClientCertificate; cc != nil {
		id := c.identity(path+".upstream.tls.client_certificate", *cc)
		if id == nil {
			return
		}
		opts.TLS.Certificate = &id.Certificate
		c.snap.Certificates = append(c.snap.Certificates, CertUse{Where: "API " + a.Name + " upstream client certificate", Cert: id.Certificate.Leaf})
	}
	up, err := upstream.New(opts)
	if err != nil {
		c.add(path+".upstream", "%v", err)
		return
	}
	pol := c.policies(path, a, c.cfg)
	var au auth.Authenticator
	if a.Auth != nil {
		if au = c.authenticator(path+".auth", a, a.Auth); au == nil {
			up.Close()
			return
		}
	}
	hosts, prefix := c.cfg.Route(a)
	for i, h := range hosts {
		hosts[i] = strings.ToLower(h)
	}
	tenant, _ := c.cfg.Tenant(a.Tenant)
	c.snap.APIs = append(c.snap.APIs, &API{
		policies:      pol,
		now:           c.o.Now,
		auth:          au,
		needsCert:     a.Auth.Uses("mtls") || (a.Auth.Uses("oauth2") && a.OAuth2 != nil && a.OAuth2.RequireBoundTokens),
		forward:       a.ForwardClientCert,
		Name:          a.Name,
		Tenant:        tenant.Name,
		ID:            config.Qualify(a.Tenant, a.Name),
		hosts:         hosts,
		prefix:        prefix,
		tenantPrefix:  normalizePrefix(tenant.PathPrefix),
		clientTenants: c.clientTenants,
		methods:       a.Match.Methods,
		stripPrefix:   a.StripPrefix,
		listeners:     a.Listeners,
		Upstream:      up,
	})
}

func normalizePrefix(p string) string {
	if len(p) > 1 {
		return strings.TrimSuffix(p, "/")
	}
	return p
}

func tlsVersion(v config.TLSVersion) uint16 {
	if v == config.TLS13 {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

func sampleRatio(p *float64) float64 {
	if p == nil {
		return 1
	}
	return *p
}
