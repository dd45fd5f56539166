package upstream

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultDrainInterval is how often a released transport's idle connections
// are closed again while its last requests finish, when
// PoolsOptions.DrainInterval is zero.
const DefaultDrainInterval = 250 * time.Millisecond

// PoolsOptions configure a Pools.
type PoolsOptions struct {
	// DrainInterval is how often a released transport's idle connections
	// are closed again while requests still in flight on it finish. Zero
	// means DefaultDrainInterval.
	DrainInterval time.Duration
}

// Pools shares upstream transports, and so their pooled connections, across
// configuration snapshots. An Upstream built with Options.Pools set acquires
// the transport whose connections were made with exactly its settings (API,
// target hosts, timeouts, pool size and TLS identity: client certificate,
// trust anchors, server name, hostname verification, insecure mode, minimum
// version, pins and whether revocation is checked) and releases it on
// Close. A reload that changes none of these keeps the API's connections.
//
// When the last Upstream holding a transport releases it (its TLS identity
// changed, or the API was removed), the transport is drained: requests in
// flight finish on their connections, idle connections are closed at once,
// and connections that become idle later are closed within DrainInterval,
// until none is left open or the transport's idle timeout has passed (after
// which the transport's own idle timeout closes the rest).
//
// What may change without a new transport is read by new handshakes from
// the most recently acquired holder: the client certificate value (its
// DER is part of the key) and the revocation check, so a refreshed CRL or
// OCSP configuration reaches new handshakes while existing connections are
// kept. One Pools serves a process; it is safe for concurrent use.
type Pools struct {
	interval time.Duration
	dials    atomic.Uint64

	mu       sync.Mutex
	active   map[poolKey][]*pool
	draining map[*pool]struct{}
	// apiDials counts connections opened per API, across its pools.
	apiDials map[string]*atomic.Uint64
}

// NewPools returns an empty Pools.
func NewPools(o PoolsOptions) *Pools {
	if o.DrainInterval <= 0 {
		o.DrainInterval = DefaultDrainInterval
	}
	return &Pools{interval: o.DrainInterval, active: map[poolKey][]*pool{}, draining: map[*pool]struct{}{}, apiDials: map[string]*atomic.Uint64{}}
}

// PoolStats is a point-in-time view of a Pools.
type PoolStats struct {
	// Active counts transports held by at least one Upstream.
	Active int
	// Draining counts released transports whose connections are still
	// being closed.
	Draining int
	// Conns counts open connections of active and draining transports.
	Conns int
	// Dials counts connections opened since NewPools.
	Dials uint64
}

// Stats reports the number of transports and connections.
func (ps *Pools) Stats() PoolStats {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	s := PoolStats{Draining: len(ps.draining), Dials: ps.dials.Load()}
	for _, l := range ps.active {
		for _, p := range l {
			s.Active++
			s.Conns += int(p.open.Load())
		}
	}
	for p := range ps.draining {
		s.Conns += int(p.open.Load())
	}
	return s
}

// Conns reports the open connections per API: emit is called once per API
// that has a transport, with the connections of its active transports and
// of those draining (released, their last requests finishing).
func (ps *Pools) Conns(emit func(api string, active, draining int64)) {
	type sums struct{ active, draining int64 }
	by := map[string]*sums{}
	get := func(api string) *sums {
		s := by[api]
		if s == nil {
			s = &sums{}
			by[api] = s
		}
		return s
	}
	ps.mu.Lock()
	for _, l := range ps.active {
		for _, p := range l {
			get(p.key.api).active += p.open.Load()
		}
	}
	for p := range ps.draining {
		get(p.key.api).draining += p.open.Load()
	}
	ps.mu.Unlock()
	for api, s := range by {
		emit(api, s.active, s.draining)
	}
}

// Dials reports the connections opened per API since NewPools (each is a
// TCP connect and, for https targets, a TLS handshake).
func (ps *Pools) Dials(emit func(api string, n uint64)) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for api, n := range ps.apiDials {
		emit(api, n.Load())
	}
}

// handshake is what may differ between holders of one transport without
// changing its connections' identity. Handshakes read the newest holder's.
type handshake struct {
	// cert is presented when the upstream asks; an empty certificate means
	// none.
	cert *tls.Certificate
	// revocation, when the pool checks revocation, is the check to run.
	revocation func(tls.ConnectionState) error
}

// pool is one transport with the TLS settings its handshakes read. Without
// Pools, each Upstream has its own.
type pool struct {
	transport *http.Transport
	// fast is the HTTP/1.1 client beside the transport (h1.go); it drains
	// with it.
	fast *h1Client
	// probeBase is the transport's TLS configuration, cloned before the
	// transport first used it, for diagnostic probes.
	probeBase     *tls.Config
	live          atomic.Pointer[handshake]
	acceptableCAs atomic.Pointer[[]string]

	// The fields below are used only for pools shared through Pools.
	owner   *Pools
	key     poolKey
	roots   *x509.CertPool
	holders []*handshake // guarded by owner.mu; the newest is last
	open    atomic.Int64 // connections dialled and not closed yet
	dials   *atomic.Uint64
	idle    time.Duration
}

// poolKey is every setting that shapes a transport's connections except the
// trust anchors, which are compared with x509.CertPool.Equal (a pool does
// not expose its certificates). It holds a digest of the client certificate
// chain and never key material.
type poolKey struct {
	api                                  string
	targets                              string
	connect, handshake, header, idleConn time.Duration
	maxIdle                              int
	certSum                              [sha256.Size]byte
	hasCert, hasKey                      bool
	serverName                           string
	verifyHostname, insecure             bool
	minVersion                           uint16
	pins                                 string
	revocation                           bool
}

func keyOf(o Options, minVersion uint16) poolKey {
	k := poolKey{
		api:            o.API,
		connect:        orDefault(o.ConnectTimeout, DefaultConnectTimeout),
		handshake:      orDefault(o.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout),
		header:         o.ResponseHeaderTimeout,
		idleConn:       orDefault(o.IdleConnTimeout, DefaultIdleConnTimeout),
		maxIdle:        o.MaxIdleConnsPerHost,
		serverName:     o.TLS.ServerName,
		verifyHostname: o.TLS.VerifyHostname,
		insecure:       o.TLS.InsecureSkipVerify,
		minVersion:     minVersion,
		revocation:     o.TLS.Revocation != nil && !o.TLS.InsecureSkipVerify,
	}
	if k.maxIdle == 0 {
		k.maxIdle = DefaultMaxIdleConnsPerHost
	}
	// Only scheme and host reach the transport; a target's path does not
	// shape its connections.
	hosts := make([]string, 0, len(o.Targets))
	for _, t := range o.Targets {
		hosts = append(hosts, t.Scheme+"://"+strings.ToLower(t.Host))
	}
	slices.Sort(hosts)
	k.targets = strings.Join(slices.Compact(hosts), " ")
	pins := slices.Clone(o.TLS.Pins)
	slices.Sort(pins)
	k.pins = strings.Join(pins, " ")
	if c := o.TLS.Certificate; c != nil {
		k.hasCert, k.hasKey = true, c.PrivateKey != nil
		h := sha256.New()
		for _, der := range c.Certificate {
			var n [8]byte
			binary.BigEndian.PutUint64(n[:], uint64(len(der)))
			h.Write(n[:])
			h.Write(der)
		}
		h.Sum(k.certSum[:0])
	}
	return k
}

// acquire returns the shared pool for o, creating it if no pool has o's
// settings, and makes hs the settings its new handshakes read.
func (ps *Pools) acquire(o Options, plan tlsPlan, hs *handshake) *pool {
	k := keyOf(o, plan.minVersion)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, p := range ps.active[k] {
		if p.roots.Equal(o.TLS.RootCAs) {
			p.holders = append(p.holders, hs)
			p.live.Store(hs)
			return p
		}
	}
	p := newPool(o, plan, hs, ps)
	p.key, p.roots, p.holders = k, o.TLS.RootCAs, []*handshake{hs}
	if ps.apiDials[k.api] == nil {
		ps.apiDials[k.api] = new(atomic.Uint64)
	}
	p.dials = ps.apiDials[k.api]
	ps.active[k] = append(ps.active[k], p)
	return p
}

// release drops hs's hold on p. While others hold p, handshakes read the
// newest remaining holder's settings (a snapshot that was compiled but
// never served gives way to the one still serving); the last release
// drains p.
func (ps *Pools) release(p *pool, hs *handshake) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if i := slices.Index(p.holders, hs); i >= 0 {
		p.holders = slices.Delete(p.holders, i, i+1)
	}
	if len(p.holders) > 0 {
		p.live.Store(p.holders[len(p.holders)-1])
		return
	}
	l := ps.active[p.key]
	if i := slices.Index(l, p); i >= 0 {
		l = slices.Delete(l, i, i+1)
	}
	if len(l) == 0 {
		delete(ps.active, p.key)
	} else {
		ps.active[p.key] = l
	}
	ps.draining[p] = struct{}{}
	go ps.drain(p)
}

// drain closes p's idle connections now and again every interval, so that
// connections finishing their last request are closed soon after, until
// none is open or p's idle timeout has passed: from then on the
// transport's own idle timeout closes any connection that becomes idle.
func (ps *Pools) drain(p *pool) {
	deadline := time.Now().Add(p.idle)
	tick := time.NewTicker(ps.interval)
	defer tick.Stop()
	// From now on the client closes each connection when its request
	// ends; the transport needs its idle connections closed repeatedly.
	p.fast.drain()
	for {
		p.transport.CloseIdleConnections()
		if p.open.Load() == 0 || !time.Now().Before(deadline) {
			break
		}
		<-tick.C
	}
	ps.mu.Lock()
	delete(ps.draining, p)
	ps.mu.Unlock()
}

// dial wraps the transport's dialer to count p's open connections.
func (p *pool) dial(d func(context.Context, string, string) (net.Conn, error)) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		p.open.Add(1)
		p.owner.dials.Add(1)
		p.dials.Add(1)
		return &countedConn{Conn: c, p: p}, nil
	}
}

// countedConn counts itself out of its pool's open connections on its
// first Close.
type countedConn struct {
	net.Conn
	p      *pool
	closed atomic.Bool
}

func (c *countedConn) Close() error {
	if !c.closed.Swap(true) {
		c.p.open.Add(-1)
	}
	return c.Conn.Close()
}
