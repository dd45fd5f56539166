package server

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/portcullis/portcullis/internal/tlsdiag"
)

// handshakeLog receives net/http's own error log for a TLS listener. Failed
// TLS handshakes are diagnosed by connClosed, which has the typed error, so
// net/http's text line about them is dropped here; anything else is logged
// at debug level as it is.
type handshakeLog struct {
	s        *Server
	listener string
}

func (h *handshakeLog) Write(p []byte) (int, error) {
	msg := string(bytes.TrimRight(p, "\n"))
	if strings.HasPrefix(msg, "http: TLS handshake error from ") {
		return len(p), nil
	}
	h.s.log.Debug("http server", "listener", h.listener, "message", msg)
	return len(p), nil
}

// connState is the listener's http.Server.ConnState hook. A connection's
// first request (StateActive after StateNew) proves its handshake
// completed, which is counted by TLS version and resumption. net/http
// reports a failed handshake only as text, but the *tls.Conn keeps the
// typed error (with the client's certificate chain when verification
// failed) and Handshake returns it again at StateClosed; on a connection
// whose handshake succeeded it returns nil after one atomic load. Later
// requests on a connection cost one map probe of a key that is absent.
func (s *Server) connState(listener string) func(net.Conn, http.ConnState) {
	return func(c net.Conn, st http.ConnState) {
		tc, ok := c.(*tls.Conn)
		if !ok {
			return
		}
		switch st {
		case http.StateNew:
			if s.metrics != nil {
				s.fresh.Store(tc, struct{}{})
			}
		case http.StateActive:
			if _, first := s.fresh.LoadAndDelete(tc); first {
				cs := tc.ConnectionState()
				s.metrics.TLSHandshake("client→gateway", tls.VersionName(cs.Version), cs.DidResume)
			}
		case http.StateClosed, http.StateHijacked:
			s.fresh.Delete(tc)
			if st == http.StateHijacked {
				return
			}
			if err := tc.Handshake(); err != nil {
				s.handshakeFailed(listener, tc, err)
			}
		}
	}
}

// handshakeFailed counts a failed client handshake by its reason and logs
// the diagnosis: at warn level, at most once per interval for each reason
// and client address (a scanner cannot flood the log), and at debug level
// otherwise. Closed connections and timeouts are routine (health checks,
// port scans) and stay at debug level.
func (s *Server) handshakeFailed(listener string, tc *tls.Conn, err error) {
	if errors.Is(err, net.ErrClosed) {
		// The gateway closed the connection itself (shutdown).
		return
	}
	cs := tc.ConnectionState()
	c := tlsdiag.ClientContext{Listener: listener, Peer: tc.RemoteAddr().String(), ServerName: cs.ServerName, Version: cs.Version}
	if snap := s.holder.Load(); snap != nil {
		if l := snap.Listeners[listener]; l != nil {
			cfg := l.ConfigFor(cs.ServerName)
			c.MinVersion = cfg.MinVersion
			c.ALPN = cfg.NextProtos
			c.TrustNames, c.TrustSubjects = l.ClientTrust()
			if cfg.GetCertificate != nil {
				if cert, err := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: cs.ServerName}); err == nil && cert != nil {
					c.ServedCert = cert.Leaf
				}
			}
		}
	}
	d := tlsdiag.Client(err, c)
	if m := s.metrics; m != nil {
		m.TLSHandshakeFailure(string(tlsdiag.HopClient), d.Reason)
	}
	attrs := append([]any{"listener", listener}, d.LogAttrs()...)
	if tlsdiag.Quiet(d.Reason) {
		s.log.Debug("tls handshake failed", attrs...)
		return
	}
	ok, suppressed := s.handshakeLimit.allow(d.Reason, c.Peer, time.Now())
	if !ok {
		s.log.Debug("tls handshake failed", attrs...)
		return
	}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	s.log.Warn("tls handshake failed", attrs...)
}

// logLimiter lets one line per reason and client address through per
// interval. It remembers at most max keys: when full it forgets the keys
// whose interval has passed (at most once a second), and if none has, new
// keys are held back until one does. Memory is therefore bounded whatever
// the number of clients, and so is the number of lines per interval.
type logLimiter struct {
	every time.Duration
	max   int

	mu        sync.Mutex
	seen      map[limitKey]limitState
	lastPrune time.Time
}

type limitKey struct {
	reason string
	addr   netip.Addr
}

type limitState struct {
	last       time.Time
	suppressed int
}

func newLogLimiter(every time.Duration, maxKeys int) *logLimiter {
	return &logLimiter{every: every, max: maxKeys, seen: make(map[limitKey]limitState)}
}

// allow reports whether a line for reason and the client at peer
// (host:port) may be written now, and how many were held back for the same
// key since the last one written.
func (l *logLimiter) allow(reason, peer string, now time.Time) (bool, int) {
	k := limitKey{reason: reason, addr: clientKey(peer)}
	l.mu.Lock()
	defer l.mu.Unlock()
	if st, ok := l.seen[k]; ok {
		if now.Sub(st.last) < l.every {
			st.suppressed++
			l.seen[k] = st
			return false, 0
		}
		l.seen[k] = limitState{last: now}
		return true, st.suppressed
	}
	if len(l.seen) >= l.max && now.Sub(l.lastPrune) >= time.Second {
		l.lastPrune = now
		for key, st := range l.seen {
			if now.Sub(st.last) >= l.every {
				delete(l.seen, key)
			}
		}
	}
	if len(l.seen) >= l.max {
		return false, 0
	}
	l.seen[k] = limitState{last: now}
	return true, 0
}

// clientKey is the client's address for rate limiting: an IPv6 client is
// keyed by its /64, which one host can rotate through at will.
func clientKey(peer string) netip.Addr {
	ap, err := netip.ParseAddrPort(peer)
	if err != nil {
		return netip.Addr{}
	}
	a := ap.Addr().Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}

// A client whose handshakes keep failing for the same reason gets one
// warning a minute; at most handshakeLogKeys reasons and addresses are
// remembered.
const (
	handshakeLogEvery = time.Minute
	handshakeLogKeys  = 1024
)
