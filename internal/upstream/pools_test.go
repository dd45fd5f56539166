package upstream_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/testpki"
	"github.com/portcullis/portcullis/internal/upstream"
)

// connLog is what a backend saw of its connections: how many were opened
// and closed, and the client certificate of each handshake.
type connLog struct {
	mu             sync.Mutex
	opened, closed int
	peers          []string // client certificate CN per handshake, in order
}

func (l *connLog) counts() (opened, closed int, peers []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.opened, l.closed, append([]string(nil), l.peers...)
}

// track makes a backend record its connections in l.
func track(l *connLog) backendOpt {
	return func(s *httptest.Server) {
		prev := s.Config.ConnState
		s.Config.ConnState = func(c net.Conn, st http.ConnState) {
			if prev != nil {
				prev(c, st)
			}
			l.mu.Lock()
			defer l.mu.Unlock()
			switch st {
			case http.StateNew:
				l.opened++
			case http.StateClosed, http.StateHijacked:
				l.closed++
			}
		}
		s.TLS.VerifyConnection = func(cs tls.ConnectionState) error {
			cn := ""
			if len(cs.PeerCertificates) > 0 {
				cn = cs.PeerCertificates[0].Subject.CommonName
			}
			l.mu.Lock()
			l.peers = append(l.peers, cn)
			l.mu.Unlock()
			return nil
		}
	}
}

// eventually waits, bounded by testTimeout, until cond holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, testTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustOK(t *testing.T, u *upstream.Upstream) {
	t.Helper()
	if status, pe, _ := forward(t, u); status != http.StatusOK {
		t.Fatalf("status %d, %v", status, pe)
	}
}

func newPooled(t *testing.T, ps *upstream.Pools, o upstream.Options) *upstream.Upstream {
	t.Helper()
	o.Pools = ps
	return newUpstream(t, o)
}

// TestPoolsKeyedByConnectionIdentity: an Upstream rebuilt for a new
// snapshot reuses the connection of the one it replaces when nothing that
// shapes connections changed, and dials anew (with the new identity) when
// something did; the replaced transport's connection is then closed.
func TestPoolsKeyedByConnectionIdentity(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	gateway2 := p.trusted.Issue(t, "gateway-2", testpki.Client())
	check := func(tls.ConnectionState) error { return nil }
	cases := []struct {
		name          string
		before, after func(*upstream.Options)
		shared        bool
		wantPeer      string // client certificate of the new handshake; default "gateway"
		refused       bool   // the backend refuses the new handshake
	}{
		{name: "equal options rebuilt", shared: true},
		{name: "target path changed", after: func(o *upstream.Options) {
			u := *o.Targets[0]
			u.Path = "/v2"
			o.Targets = append(o.Targets[:0:0], &u)
		}, shared: true},
		{name: "trust set renamed", after: func(o *upstream.Options) { o.TLS.TrustName = "internal-2" }, shared: true},
		{name: "revocation data refreshed",
			before: func(o *upstream.Options) { o.TLS.Revocation = check },
			after:  func(o *upstream.Options) { o.TLS.Revocation = func(tls.ConnectionState) error { return nil } },
			shared: true},
		{name: "client certificate rotated", after: func(o *upstream.Options) {
			c := gateway2.TLS()
			o.TLS.Certificate = &c
		}, wantPeer: "gateway-2"},
		{name: "client certificate removed", after: func(o *upstream.Options) { o.TLS.Certificate = nil }, refused: true},
		{name: "trust anchors changed", after: func(o *upstream.Options) {
			pool := p.trusted.Pool()
			pool.AddCert(p.foreign.Cert)
			o.TLS.RootCAs = pool
		}},
		{name: "server name changed", after: func(o *upstream.Options) { o.TLS.ServerName = "api-a.internal" }},
		{name: "hostname verification off", after: func(o *upstream.Options) { o.TLS.VerifyHostname = false }},
		{name: "pin added", after: func(o *upstream.Options) { o.TLS.Pins = []string{upstream.PinSHA256(p.backend.Cert)} }},
		{name: "minimum version raised", after: func(o *upstream.Options) { o.TLS.MinVersion = tls.VersionTLS13 }},
		{name: "revocation check enabled", after: func(o *upstream.Options) { o.TLS.Revocation = check }},
		{name: "handshake timeout changed", after: func(o *upstream.Options) { o.TLSHandshakeTimeout = 7 * time.Second }},
		{name: "pool size changed", after: func(o *upstream.Options) { o.MaxIdleConnsPerHost = 3 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var seen connLog
			b := newBackend(t, p, nil, track(&seen))
			ps := upstream.NewPools(upstream.PoolsOptions{DrainInterval: 10 * time.Millisecond})
			// Each snapshot builds its options (and loads its files) anew.
			opts := func(change func(*upstream.Options)) upstream.Options {
				o := gatewayOptions(p, mustURL(t, b.url.String()))
				if tc.before != nil {
					tc.before(&o)
				}
				if change != nil {
					change(&o)
				}
				return o
			}
			old := newPooled(t, ps, opts(nil))
			mustOK(t, old)
			next := newPooled(t, ps, opts(tc.after))
			old.Close()
			if tc.refused {
				if status, _, _ := forward(t, next); status != 0 {
					t.Fatalf("status %d: the request went over the old connection", status)
				}
			} else {
				mustOK(t, next)
				mustOK(t, next)
			}

			opened, _, peers := seen.counts()
			if tc.shared {
				if opened != 1 || len(peers) != 1 {
					t.Fatalf("the rebuilt Upstream opened a new connection: %d connections, handshakes %q", opened, peers)
				}
				if s := ps.Stats(); s.Active != 1 || s.Draining != 0 || s.Conns != 1 {
					t.Fatalf("stats %+v, want one active transport with one connection", s)
				}
				return
			}
			if opened < 2 {
				t.Fatalf("%d connection(s): the changed identity reused the old connection", opened)
			}
			wantPeer := tc.wantPeer
			if wantPeer == "" {
				wantPeer = "gateway"
			}
			if !tc.refused && (len(peers) != 2 || peers[1] != wantPeer) {
				t.Errorf("handshakes %q, want a second one as %q", peers, wantPeer)
			}
			// The replaced transport's idle connection is closed, and the
			// transport leaves the drain.
			eventually(t, "old connection closed", func() bool { _, closed, _ := seen.counts(); return closed >= 1 })
			eventually(t, "drain finished", func() bool { s := ps.Stats(); return s.Draining == 0 && s.Active == 1 })
		})
	}
}

// TestPoolsDrainLetsRequestsFinish: when a client certificate rotation
// replaces the transport, a long response in flight on the old connection
// completes in full, the new Upstream dials with the new certificate, and
// the old connection is closed as soon as its response is done, not when it
// would idle out.
func TestPoolsDrainLetsRequestsFinish(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	gateway2 := p.trusted.Issue(t, "gateway-2", testpki.Client())
	for _, tc := range []struct {
		name string
		opts []backendOpt
	}{{"HTTP/1.1", nil}, {"HTTP/2", []backendOpt{http2()}}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var seen connLog
			started, release := make(chan struct{}, 1), make(chan struct{})
			var releaseOnce sync.Once
			done := func() { releaseOnce.Do(func() { close(release) }) }
			t.Cleanup(done) // a failing test does not hold the handler
			b := newBackend(t, p, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/slow" {
					_, _ = io.WriteString(w, "ok")
					return
				}
				_, _ = io.WriteString(w, "first half, ")
				http.NewResponseController(w).Flush()
				started <- struct{}{}
				select {
				case <-release:
				case <-time.After(testTimeout):
				}
				_, _ = io.WriteString(w, "second half")
			}, append(tc.opts, track(&seen))...)
			ps := upstream.NewPools(upstream.PoolsOptions{DrainInterval: 10 * time.Millisecond})
			old := newPooled(t, ps, gatewayOptions(p, b.url))
			mustOK(t, old)

			type result struct {
				code int
				body string
				err  error
			}
			slow := make(chan result, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				defer cancel()
				r := httptest.NewRequestWithContext(ctx, http.MethodGet, "https://gateway.example/slow", nil)
				w := httptest.NewRecorder()
				err := old.Forward(w, r, nil)
				slow <- result{w.Code, w.Body.String(), err}
			}()
			select {
			case <-started:
			case <-time.After(testTimeout):
				t.Fatal("the slow request did not reach the backend")
			}

			o := gatewayOptions(p, b.url)
			c := gateway2.TLS()
			o.TLS.Certificate = &c
			next := newPooled(t, ps, o)
			old.Close()
			mustOK(t, next)
			opened, _, peers := seen.counts()
			if opened != 2 || peers[len(peers)-1] != "gateway-2" {
				t.Fatalf("after the rotation: %d connections, handshakes %q; want a second one as gateway-2", opened, peers)
			}
			// Several drain rounds pass while the response is in flight.
			time.Sleep(100 * time.Millisecond)
			if _, closed, _ := seen.counts(); closed != 0 {
				t.Fatalf("a connection was closed while its response was in flight")
			}
			if s := ps.Stats(); s.Active != 1 || s.Draining != 1 || s.Conns != 2 {
				t.Fatalf("during the drain: %+v, want 1 active, 1 draining, 2 connections", s)
			}

			done()
			res := <-slow
			if res.err != nil || res.code != http.StatusOK || res.body != "first half, second half" {
				t.Fatalf("the response in flight was cut: %d %q %v", res.code, res.body, res.err)
			}
			eventually(t, "old connection closed after its response", func() bool { _, closed, _ := seen.counts(); return closed == 1 })
			eventually(t, "drain finished", func() bool { return ps.Stats() == upstream.PoolStats{Active: 1, Conns: 1, Dials: 2} })
			// The new connection is untouched.
			mustOK(t, next)
			if opened, _, _ := seen.counts(); opened != 2 {
				t.Fatalf("%d connections, want 2", opened)
			}
		})
	}
}

// TestPoolsHandshakesUseNewestHolder: holders of one transport may differ in
// the revocation check (each snapshot builds its own from a refreshed
// CRL); new handshakes use the most recently acquired one, also for
// requests of an older snapshot, and fall back to the previous holder's
// when the newest is released without having served (a rejected reload).
func TestPoolsHandshakesUseNewestHolder(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	var seen connLog
	b := newBackend(t, p, nil, track(&seen))
	ps := upstream.NewPools(upstream.PoolsOptions{})
	var calls [3]atomic.Int32
	withCheck := func(i int) upstream.Options {
		o := gatewayOptions(p, b.url)
		o.TLS.Revocation = func(tls.ConnectionState) error { calls[i].Add(1); return nil }
		return o
	}
	reconnect := func(u *upstream.Upstream) {
		t.Helper()
		b.srv.CloseClientConnections()
		eventually(t, "pooled connection gone", func() bool { return ps.Stats().Conns == 0 })
		mustOK(t, u)
	}
	got := func() [3]int32 { return [3]int32{calls[0].Load(), calls[1].Load(), calls[2].Load()} }

	first := newPooled(t, ps, withCheck(0))
	mustOK(t, first)
	second := newPooled(t, ps, withCheck(1))
	reconnect(first)
	if c := got(); c != [3]int32{1, 1, 0} {
		t.Fatalf("checks run %v, want the first snapshot's once and then the second's", c)
	}
	third := newPooled(t, ps, withCheck(2))
	third.Close()
	reconnect(first)
	if c := got(); c != [3]int32{1, 2, 0} {
		t.Fatalf("checks run %v: after the third holder was released the second's check should run", c)
	}
	second.Close()
	reconnect(first)
	if c := got(); c != [3]int32{2, 2, 0} {
		t.Fatalf("checks run %v: with only the first holder left its check should run", c)
	}
	if opened, _, _ := seen.counts(); opened != 4 {
		t.Fatalf("%d connections, want 4 (one per reconnect)", opened)
	}
	if s := ps.Stats(); s.Active != 1 || s.Draining != 0 {
		t.Fatalf("stats %+v: releasing holders of a transport still in use must not drain it", s)
	}
}

// TestPoolsFailingCheckRefusesHandshake: a revocation check that fails
// (a CRL that now lists the upstream) refuses new handshakes of the shared
// transport once its snapshot holds it; the connection verified before is
// kept.
func TestPoolsFailingCheckRefusesHandshake(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	b := newBackend(t, p, nil)
	ps := upstream.NewPools(upstream.PoolsOptions{})
	o := gatewayOptions(p, b.url)
	o.TLS.Revocation = func(tls.ConnectionState) error { return nil }
	old := newPooled(t, ps, o)
	mustOK(t, old)
	o = gatewayOptions(p, b.url)
	o.TLS.Revocation = func(tls.ConnectionState) error { return errors.New("revoked") }
	next := newPooled(t, ps, o)
	old.Close()
	mustOK(t, next) // the connection verified before the refresh
	b.srv.CloseClientConnections()
	eventually(t, "pooled connection gone", func() bool { return ps.Stats().Conns == 0 })
	if status, pe, _ := forward(t, next); status != 0 || pe == nil {
		t.Fatalf("a new handshake passed a failing revocation check: status %d", status)
	}
}

// TestPoolsCloseReleasesOnce: Close is idempotent, so closing one holder
// twice cannot take another holder's transport away, and New that fails
// holds nothing.
func TestPoolsCloseReleasesOnce(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	var seen connLog
	b := newBackend(t, p, nil, track(&seen))
	ps := upstream.NewPools(upstream.PoolsOptions{})
	a := newPooled(t, ps, gatewayOptions(p, b.url))
	c := newPooled(t, ps, gatewayOptions(p, b.url))
	mustOK(t, a)
	a.Close()
	a.Close()
	mustOK(t, c)
	if s := ps.Stats(); s.Active != 1 || s.Draining != 0 || s.Conns != 1 {
		t.Fatalf("stats %+v after closing one of two holders twice", s)
	}
	bad := gatewayOptions(p, b.url)
	bad.TLS.Pins = []string{"not a pin"}
	bad.Pools = ps
	bad.API = "other"
	if _, err := upstream.New(bad); err == nil {
		t.Fatal("New accepted a malformed pin")
	}
	if s := ps.Stats(); s.Active != 1 {
		t.Fatalf("a failed New holds a transport: %+v", s)
	}
	if opened, _, _ := seen.counts(); opened != 1 {
		t.Fatalf("%d connections, want 1", opened)
	}
}

// reloads simulates a gateway reloading n times under keep-alive load: each
// reload builds the API's Upstream anew and closes the one it replaces,
// with requests before and after. It returns the backend's handshakes.
func reloads(t testing.TB, p *pki, ps *upstream.Pools, n int) int {
	var seen connLog
	b := newBackend(t, p, nil, track(&seen))
	build := func() *upstream.Upstream {
		o := gatewayOptions(p, mustURL(t, b.url.String()))
		o.Pools = ps
		u, err := upstream.New(o)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	get := func(u *upstream.Upstream) {
		r := httptest.NewRequest(http.MethodGet, "https://gateway.example/orders", nil)
		if err := u.Forward(httptest.NewRecorder(), r, nil); err != nil {
			t.Fatal(err)
		}
	}
	cur := build()
	get(cur)
	for range n {
		next := build()
		get(cur) // a request of the old snapshot still running
		cur.Close()
		cur = next
		get(cur)
		get(cur)
	}
	cur.Close()
	_, _, peers := seen.counts()
	return len(peers)
}

// TestPoolsReloadHandshakes measures what sharing saves: 20 reloads under
// keep-alive requests cost one handshake per reload with a transport per
// snapshot (the behaviour without Pools) and none with Pools.
func TestPoolsReloadHandshakes(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	const n = 20
	own := reloads(t, p, nil, n)
	shared := reloads(t, p, upstream.NewPools(upstream.PoolsOptions{}), n)
	t.Logf("%d reloads under keep-alive requests: %d upstream handshakes with a transport per snapshot, %d with Pools", n, own, shared)
	if own != n+1 {
		t.Errorf("without Pools: %d handshakes, want %d (one per snapshot)", own, n+1)
	}
	if shared != 1 {
		t.Errorf("with Pools: %d handshakes, want 1", shared)
	}
}

// BenchmarkReload reports upstream handshakes per reload (build the API's
// Upstream anew, close the old one, three keep-alive requests), with a
// transport per snapshot and with Pools.
func BenchmarkReload(b *testing.B) {
	p := newPKI(b)
	for _, bc := range []struct {
		name string
		ps   func() *upstream.Pools
	}{
		{"own", func() *upstream.Pools { return nil }},
		{"shared", func() *upstream.Pools { return upstream.NewPools(upstream.PoolsOptions{}) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			hs := reloads(b, p, bc.ps(), b.N)
			b.ReportMetric(float64(hs)/float64(b.N), "handshakes/reload")
		})
	}
}
