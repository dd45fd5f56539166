package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/internal/tlsdiag"
)

// Defaults used when the corresponding Options field is zero.
const (
	DefaultConnectTimeout      = 10 * time.Second
	DefaultTLSHandshakeTimeout = 10 * time.Second
	DefaultIdleConnTimeout     = 90 * time.Second
	DefaultMaxIdleConnsPerHost = 64
)

// bufferSize is the size of the buffers ReverseProxy copies bodies through.
const bufferSize = 32 << 10

// TLSOptions are the settings for https:// targets. The zero value verifies
// the upstream against the system roots and the target host name, presents
// no client certificate and requires TLS 1.2.
type TLSOptions struct {
	// Certificate is the gateway's client identity, presented when the
	// upstream asks for one. Nil means none: the gateway then answers a
	// certificate request with an empty certificate list.
	Certificate *tls.Certificate
	// RootCAs is the trust set the upstream's chain is verified against.
	// Nil means the system roots.
	RootCAs *x509.CertPool
	// TrustName names the trust set in diagnoses ("" means system roots).
	TrustName string
	// TrustSubjects lists the trust set's certificate subjects for
	// diagnoses.
	TrustSubjects []string
	// ServerName is always sent as SNI and is the name the certificate is
	// verified against. Empty means each target URL's host; for an IP
	// address target no SNI is sent and the certificate must carry that IP.
	ServerName string
	// VerifyHostname enables checking the certificate's names against
	// ServerName. The configuration layer defaults it to true; false still
	// verifies the chain against RootCAs (in VerifyConnection) and is
	// logged as a warning by New.
	VerifyHostname bool
	// InsecureSkipVerify disables all verification of the upstream's
	// certificate. Pins are still enforced. New logs a warning for it.
	InsecureSkipVerify bool
	// MinVersion is tls.VersionTLS12 or tls.VersionTLS13. Zero means
	// TLS 1.2.
	MinVersion uint16
	// Revocation, when set, runs after the chain and name checks of every
	// full handshake (for example a trust set's CRL/OCSP check); its error
	// fails the handshake. It is skipped only with InsecureSkipVerify.
	Revocation func(tls.ConnectionState) error
	// Pins are standard base64 encodings of the SHA-256 digest of a
	// certificate's SubjectPublicKeyInfo. When any are set, the upstream's
	// leaf must match one of them (in addition to chain verification).
	Pins []string
}

// Options configure one API's Upstream.
type Options struct {
	// API names the API, for diagnoses and logs.
	API string
	// Targets are http:// or https:// base URLs, used in round-robin
	// order. A target's path is prepended to each forwarded request's path.
	Targets []*url.URL
	// TLS applies to https:// targets.
	TLS TLSOptions
	// ConnectTimeout bounds establishing a TCP connection. Zero means
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake. Zero means
	// DefaultTLSHandshakeTimeout.
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the response headers after
	// the request was written. Zero means no limit beyond the request's
	// context, because some APIs legitimately answer slowly.
	ResponseHeaderTimeout time.Duration
	// IdleConnTimeout is how long an idle pooled connection is kept. Zero
	// means DefaultIdleConnTimeout.
	IdleConnTimeout time.Duration
	// MaxIdleConnsPerHost caps idle pooled connections per target. Zero
	// means DefaultMaxIdleConnsPerHost (net/http's own default of 2 is too
	// small for a gateway and causes connection churn under load).
	MaxIdleConnsPerHost int
	// Logger receives load-time warnings and ReverseProxy's own messages.
	// Nil discards them.
	Logger *slog.Logger
	// Pools, when set, shares the transport (and its pooled connections)
	// with every other Upstream built from the same Pools with the same
	// connection settings; see Pools. Nil gives the Upstream a transport of
	// its own.
	Pools *Pools
}

// Upstream forwards requests to one API's targets. It is safe for
// concurrent use; its configuration is fixed at New.
type Upstream struct {
	targets   []target
	next      atomic.Uint64
	pool      *pool
	transport *http.Transport // pool.transport
	// fast is the pool's HTTP/1.1 client (see h1.go).
	fast *h1Client
	// pools and hs are set when the pool is shared: Close releases hs's
	// hold on it, once.
	pools  *Pools
	hs     *handshake
	closed atomic.Bool
	// diag is the per-API part of every diagnosis; Forward copies it and
	// adds the target and the last certificate request seen (from
	// pool.acceptableCAs, written on handshakes and read only to explain
	// failures).
	diag tlsdiag.UpstreamContext
	// errLog receives the forwarder's and ReverseProxy's own messages
	// (body copy errors), tagged with the API.
	errLog *log.Logger
	// probing admits one diagnostic probe at a time (see probe).
	probing      atomic.Bool
	probeTimeout time.Duration
}

// target is one upstream base URL. Requests go through the forwarder
// (target.serve); protocol upgrades go through the target's own
// ReverseProxy, so that Rewrite knows the target without a per-request
// closure.
type target struct {
	url        *url.URL
	name       string // url.String(), for Result.Target
	peer       string // host:port with the scheme's default port
	serverName string // name verified and sent as SNI, for diagnoses
	proxy      *httputil.ReverseProxy
	probeTLS   *tls.Config // the transport's settings for this target, for probe
	// h1 is the target's address in the pool's HTTP/1.1 client; nil when
	// that client cannot serve it (every request then uses the transport).
	h1 *h1Host
}

// New builds the proxies for o over a transport of their own, or over the
// transport o.Pools shares for o's settings. It fails on an empty or
// malformed target list and on TLS options it cannot honour (acquiring
// nothing then), and logs a warning for each unsafe TLS option at every
// call, since New runs once per configuration load.
func New(o Options) (*Upstream, error) {
	if len(o.Targets) == 0 {
		return nil, fmt.Errorf("api %q: %w", o.API, ErrNoTargets)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	plan, err := checkTLS(o.TLS)
	if err != nil {
		return nil, fmt.Errorf("api %q: %w", o.API, err)
	}
	diag, err := diagContext(o)
	if err != nil {
		return nil, fmt.Errorf("api %q: %w", o.API, err)
	}
	targets := make([]target, 0, len(o.Targets))
	for _, t := range o.Targets {
		tg, err := newTarget(t, o.TLS.ServerName)
		if err != nil {
			return nil, fmt.Errorf("api %q: %w", o.API, err)
		}
		targets = append(targets, tg)
	}

	hs := &handshake{cert: o.TLS.Certificate}
	if hs.cert == nil {
		// An empty certificate tells crypto/tls to send no certificate;
		// allocated once so handshakes do not allocate it.
		hs.cert = &tls.Certificate{}
	}
	if !o.TLS.InsecureSkipVerify {
		hs.revocation = o.TLS.Revocation
	}
	u := &Upstream{diag: diag, targets: targets}
	if o.Pools != nil {
		u.pool = o.Pools.acquire(o, plan, hs)
		u.pools, u.hs = o.Pools, hs
	} else {
		u.pool = newPool(o, plan, hs, nil)
	}
	u.transport = u.pool.transport
	u.fast = u.pool.fast
	u.probeTimeout = orDefault(o.ConnectTimeout, DefaultConnectTimeout) + orDefault(o.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout)
	errLog := slog.NewLogLogger(log.With("api", o.API).Handler(), slog.LevelWarn)
	u.errLog = errLog

	anyTLS, anyPlain := false, false
	for i, t := range o.Targets {
		tg := &u.targets[i]
		tg.probeTLS = u.pool.probeBase
		tg.h1 = u.fast.host(t, tg.peer)
		if tg.probeTLS.ServerName == "" {
			tg.probeTLS = u.pool.probeBase.Clone()
			tg.probeTLS.ServerName = t.Hostname()
		}
		tg.proxy = &httputil.ReverseProxy{
			Rewrite:      tg.rewrite,
			Transport:    u.transport,
			BufferPool:   copyBuffers,
			ErrorHandler: captureError,
			ErrorLog:     errLog,
		}
		anyTLS = anyTLS || t.Scheme == "https"
		anyPlain = anyPlain || t.Scheme == "http"
	}
	warnUnsafe(log, o, anyTLS, anyPlain)
	return u, nil
}

// Close closes u's idle connections when its transport is its own:
// requests in flight finish on their connections, which are then closed
// when they idle out. With Options.Pools it releases u's hold on the shared
// transport instead, which is drained once no Upstream holds it (see
// Pools). Call Close when a snapshot holding u is replaced; it is
// idempotent.
func (u *Upstream) Close() {
	if u.pools == nil {
		u.transport.CloseIdleConnections()
		u.fast.drain()
		return
	}
	if !u.closed.Swap(true) {
		u.pools.release(u.pool, u.hs)
	}
}

// newPool builds a transport and its TLS configuration; owner, when not
// nil, is the Pools that will share it, whose connections it counts.
func newPool(o Options, plan tlsPlan, hs *handshake, owner *Pools) *pool {
	p := &pool{owner: owner, idle: orDefault(o.IdleConnTimeout, DefaultIdleConnTimeout)}
	p.live.Store(hs)
	cfg := p.tlsConfig(o.TLS, plan)
	// Cloned before the transport first uses cfg, which sets its NextProtos.
	p.probeBase = cfg.Clone()
	p.probeBase.NextProtos = []string{"h2", "http/1.1"}
	p.transport = newTransport(o, cfg)
	if owner != nil {
		p.transport.DialContext = p.dial(p.transport.DialContext)
	}
	// The HTTP/1.1 client dials with the (counted) dialer above and the
	// same TLS settings; the transport dials TLS through it, so that a
	// connection the client made and found to speak HTTP/2 can be handed
	// over.
	p.fast = newH1Client(o, p.transport, p.probeBase)
	p.transport.DialTLSContext = p.fast.dialForTransport
	return p
}

func newTransport(o Options, cfg *tls.Config) *http.Transport {
	dialer := &net.Dialer{Timeout: orDefault(o.ConnectTimeout, DefaultConnectTimeout), KeepAlive: 30 * time.Second}
	maxIdle := o.MaxIdleConnsPerHost
	if maxIdle == 0 {
		maxIdle = DefaultMaxIdleConnsPerHost
	}
	// A custom TLSClientConfig turns HTTP/2 off unless asked for; listing
	// both protocols makes the transport offer h2 and http/1.1 by ALPN and
	// use whichever the upstream selects. Unencrypted HTTP/2 stays off.
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	return &http.Transport{
		// Upstreams are reached directly: environment proxy variables
		// meant for other tools must not reroute (and break) mTLS.
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       cfg,
		TLSHandshakeTimeout:   orDefault(o.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout),
		ResponseHeaderTimeout: o.ResponseHeaderTimeout,
		IdleConnTimeout:       orDefault(o.IdleConnTimeout, DefaultIdleConnTimeout),
		MaxIdleConnsPerHost:   maxIdle,
		// A proxy must pass Accept-Encoding and compressed bodies through
		// untouched; the transport's transparent gzip would rewrite them.
		DisableCompression: true,
		Protocols:          &protos,
	}
}

func newTarget(t *url.URL, serverName string) (target, error) {
	if t == nil || (t.Scheme != "http" && t.Scheme != "https") || t.Host == "" ||
		t.User != nil || t.RawQuery != "" || t.ForceQuery || t.Fragment != "" || t.Opaque != "" {
		return target{}, fmt.Errorf("%w: %v (want http:// or https:// with a host, and no user info, query or fragment)", ErrBadTarget, t)
	}
	port := t.Port()
	if port == "" {
		port = "80"
		if t.Scheme == "https" {
			port = "443"
		}
	}
	if serverName == "" {
		serverName = t.Hostname()
	}
	cp := *t
	return target{
		url:        &cp,
		name:       cp.String(),
		peer:       net.JoinHostPort(t.Hostname(), port),
		serverName: serverName,
	}, nil
}

func warnUnsafe(log *slog.Logger, o Options, anyTLS, anyPlain bool) {
	if !anyTLS {
		if o.TLS.Certificate != nil || o.TLS.RootCAs != nil || len(o.TLS.Pins) > 0 {
			log.Warn("upstream TLS settings are configured but every target is plain http://, so none of them apply", "api", o.API)
		}
		return
	}
	if anyPlain {
		log.Warn("some upstream targets are plain http://: those connections are neither encrypted nor authenticated", "api", o.API)
	}
	switch {
	case o.TLS.InsecureSkipVerify:
		log.Warn("upstream certificate verification is disabled (insecure_skip_verify): any server can impersonate this upstream", "api", o.API, "pins", len(o.TLS.Pins))
	case !o.TLS.VerifyHostname:
		log.Warn("upstream hostname verification is disabled (verify_hostname: false): any certificate from the trust set is accepted for this upstream", "api", o.API, "trust", o.TLS.TrustName)
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// bufferPool lends ReverseProxy 32 KiB copy buffers. It pools pointers to
// arrays, which fit in an interface without allocating, and converts the
// returned slice back to its array so that Put does not allocate either.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if a, ok := b.p.Get().(*[bufferSize]byte); ok {
		return a[:]
	}
	return new([bufferSize]byte)[:]
}

func (b *bufferPool) Put(s []byte) {
	if len(s) != bufferSize {
		return
	}
	b.p.Put((*[bufferSize]byte)(s))
}
