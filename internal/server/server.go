package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"

	"github.com/portcullis/portcullis/internal/snapshot"
	"github.com/portcullis/portcullis/internal/telemetry"
)

// Server serves the listeners of a snapshot and swaps snapshots on reload.
type Server struct {
	holder  snapshot.Holder
	log     *slog.Logger
	access  *slog.Logger
	metrics *telemetry.Metrics
	tracer  *telemetry.Tracer
	// handshakeLimit bounds the warnings about failed client handshakes.
	handshakeLimit *logLimiter
	// fresh holds the TLS connections accepted whose first request has
	// not arrived yet, to count each completed handshake once.
	fresh sync.Map

	mu      sync.Mutex
	servers []*http.Server
	addrs   map[string]net.Addr // listener name → bound TLS address
	static  map[string]snapshot.ListenerStatic
	done    chan struct{}
	errs    chan error
}

// New returns a server that logs operational events to log and, when the
// snapshot asks for it, one JSON line per request to access.
func New(log, access *slog.Logger) *Server {
	return &Server{log: log, access: access, addrs: map[string]net.Addr{}, done: make(chan struct{}),
		handshakeLimit: newLogLimiter(handshakeLogEvery, handshakeLogKeys)}
}

// SetMetrics makes the server count every request in m. Call it before
// Start.
func (s *Server) SetMetrics(m *telemetry.Metrics) { s.metrics = m }

// Start binds every listener of snap and starts serving. If any socket
// cannot be bound, the ones already bound are closed and an error naming the
// listener is returned.
func (s *Server) Start(snap *snapshot.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap.Activate()
	s.holder.Store(snap)
	s.static = map[string]snapshot.ListenerStatic{}
	type bound struct {
		srv *http.Server
		ln  net.Listener
		tls bool
	}
	var all []bound
	fail := func(err error) error {
		for _, b := range all {
			b.ln.Close()
		}
		return err
	}
	for name, l := range snap.Listeners {
		st := l.Static
		s.static[name] = st
		ln, err := net.Listen("tcp", st.Address)
		if err != nil {
			return fail(fmt.Errorf("listener %q: %w", name, err))
		}
		s.addrs[name] = ln.Addr()
		srv := s.httpsServer(name, st)
		all = append(all, bound{srv, ln, true})
		if st.RedirectAddress != "" {
			rln, err := net.Listen("tcp", st.RedirectAddress)
			if err != nil {
				return fail(fmt.Errorf("listener %q http_redirect: %w", name, err))
			}
			port := st.RedirectPort
			if port == 0 {
				port = ln.Addr().(*net.TCPAddr).Port
			}
			all = append(all, bound{redirectServer(port, st), rln, false})
			s.log.Info("http redirect listening", "listener", name, "address", rln.Addr().String(), "to_port", port)
		}
		s.log.Info("listening", "listener", name, "address", ln.Addr().String(), "http2", st.HTTP2)
	}
	s.errs = make(chan error, len(all))
	for _, b := range all {
		s.servers = append(s.servers, b.srv)
		go func() {
			var err error
			if b.tls {
				err = b.srv.ServeTLS(b.ln, "", "")
			} else {
				err = b.srv.Serve(b.ln)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				s.errs <- err
			}
		}()
	}
	return nil
}

// Errors delivers a listener's fatal serve error (for example the socket was
// closed under it).
func (s *Server) Errors() <-chan error { return s.errs }

// Addr returns the bound address of the named listener (useful with port 0).
func (s *Server) Addr(name string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrs[name]
}

// Snapshot returns the snapshot in use.
func (s *Server) Snapshot() *snapshot.Snapshot { return s.holder.Load() }

// ErrListenersChanged is returned by Reload when a new configuration changes
// what is bound at start (listener names, addresses, timeouts, HTTP/2,
// redirect); those need a restart.
var ErrListenersChanged = errors.New("listener sockets changed")

// Reload makes snap current for every request that starts from now on;
// requests in flight finish on the snapshot they started with. It fails, and
// keeps the current snapshot, if snap changes a listener's socket settings.
func (s *Server) Reload(snap *snapshot.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(snap.Listeners) != len(s.static) {
		return fmt.Errorf("%w: listeners were added or removed; restart to apply", ErrListenersChanged)
	}
	for name, l := range snap.Listeners {
		old, ok := s.static[name]
		if !ok {
			return fmt.Errorf("%w: listener %q is new; restart to apply", ErrListenersChanged, name)
		}
		if old != l.Static {
			return fmt.Errorf("%w: listener %q changed address, limits, timeouts, http2 or redirect; restart to apply", ErrListenersChanged, name)
		}
	}
	snap.Activate()
	old := s.holder.Store(snap)
	if old != nil {
		// The old snapshot lets go of its upstream pools: a pool the new
		// snapshot shares (same TLS identity) keeps its connections, one it
		// does not is drained, its busy connections finishing first.
		go old.Close()
	}
	return nil
}

// Shutdown stops accepting connections and waits up to the snapshot's
// shutdown grace (or ctx's deadline, whichever is first) for requests in
// flight; then it closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	servers := append([]*http.Server(nil), s.servers...)
	s.mu.Unlock()
	grace := s.holder.Load().ShutdownGrace
	ctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	var wg sync.WaitGroup
	var firstErr error
	var errMu sync.Mutex
	for _, srv := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Shutdown(ctx); err != nil {
				srv.Close()
				errMu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("requests still running after the %s shutdown grace were cut off: %w", grace, err)
				}
				errMu.Unlock()
			}
		}()
	}
	wg.Wait()
	if snap := s.holder.Load(); snap != nil {
		snap.Close()
	}
	return firstErr
}

func (s *Server) httpsServer(name string, st snapshot.ListenerStatic) *http.Server {
	h := &handler{s: s, name: name}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: st.ReadHeaderTimeout,
		ReadTimeout:       st.ReadTimeout,
		WriteTimeout:      st.WriteTimeout,
		IdleTimeout:       st.IdleTimeout,
		MaxHeaderBytes:    st.MaxHeaderBytes,
		ErrorLog:          log.New(&handshakeLog{s: s, listener: name}, "", 0),
		ConnState:         s.connState(name),
		TLSConfig: &tls.Config{
			// Every handshake takes the current snapshot's configuration, so
			// new certificates apply without closing existing connections.
			GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
				return s.holder.Load().Listeners[name].ConfigFor(hello.ServerName), nil
			},
		},
	}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(st.HTTP2)
	srv.Protocols = &p
	return srv
}

// redirectServer answers every plain-HTTP request with a redirect to the same
// host and path over HTTPS on port. GET and HEAD get 301 (what browsers and
// caches know best); other methods get 308 so the method and body are kept.
func redirectServer(port int, st snapshot.ListenerStatic) *http.Server {
	suffix := ""
	if port != 443 {
		suffix = ":" + strconv.Itoa(port)
	}
	return &http.Server{
		ReadHeaderTimeout: st.ReadHeaderTimeout,
		IdleTimeout:       st.IdleTimeout,
		MaxHeaderBytes:    st.MaxHeaderBytes,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			host := r.Host
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			if host == "" {
				http.Error(w, "a Host header is required", http.StatusBadRequest)
				return
			}
			if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
				host = "[" + host + "]"
			}
			code := http.StatusPermanentRedirect
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				code = http.StatusMovedPermanently
			}
			http.Redirect(w, r, "https://"+host+suffix+r.URL.RequestURI(), code)
		}),
	}
}
