package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// This file is the gateway's own HTTP/1.1 client for the common request: no
// body, no protocol upgrade. net/http's Transport runs every exchange on two
// goroutines of its own (one writes the request, one reads the response) and
// hands the request and the response between them and the caller; at tens
// of thousands of requests per second those hand-offs cost more CPU than the
// HTTP work. Here the request is written and the response read on the
// handler's goroutine, over the same connections the Transport would make:
//
//   - connections are dialled with the pool's dialer (counted by Pools) and
//     the pool's TLS configuration, offering h2 and http/1.1 by ALPN as the
//     Transport does. When an upstream selects h2, the connection is handed
//     to the Transport (through its DialTLSContext, see dialForTransport) and
//     the target's requests go to the Transport from then on;
//   - the common message is written and read by writeRequestHead and
//     parseResponseHead (h1wire.go), which the tests hold to the bytes
//     http.Request.Write writes and the responses http.ReadResponse returns;
//     anything else is written and read by those two functions themselves;
//   - timeouts, retries on a reused connection that the upstream closed,
//     keep-alive and the idle pool follow the Transport's rules, and its
//     error texts where diagnoses read them (TLS handshake timeout, response
//     header timeout);
//   - before an idle connection is reused, one non-blocking peek checks that
//     the upstream has neither closed it nor sent anything unasked.
//
// Requests with a body, with trailers, or asking for an upgrade, and every
// request to an HTTP/2 upstream, go through the Transport unchanged.

// maxResponseHeaderBytes is the Transport's default limit on response
// headers.
const maxResponseHeaderBytes = 10 << 20

// h1BufferSize is the size of each connection's read and write buffer (the
// Transport's default).
const h1BufferSize = 4 << 10

// Protocol an upstream address selected, as far as the client knows.
const (
	protoUnknown int32 = iota // no connection yet: offer h2 and http/1.1
	protoH1                   // HTTP/1.1 (or no ALPN): this client
	protoH2                   // HTTP/2: the Transport
)

// Errors with the Transport's texts, which tlsdiag reads.
var (
	errResponseHeaderTimeout = &timeoutError{"net/http: timeout awaiting response headers"}
	errHandshakeTimeout      = &timeoutError{"net/http: TLS handshake timeout"}
)

type timeoutError struct{ msg string }

func (e *timeoutError) Error() string   { return e.msg }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }

// aLongTimeAgo is a deadline in the past: setting it wakes blocked reads
// and writes.
var aLongTimeAgo = time.Unix(1, 0)

// h1Client holds one pool's HTTP/1.1 connections, per upstream address.
type h1Client struct {
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	transport   *http.Transport
	base        *tls.Config
	hsTimeout   time.Duration
	respTimeout time.Duration
	idleTimeout time.Duration
	maxIdle     int

	mu    sync.Mutex
	hosts map[string]*h1Host // by scheme + "://" + host:port
	// closing is set when the pool is released: connections are closed
	// instead of kept idle from then on.
	closing atomic.Bool
	armed   atomic.Bool // the idle sweep is scheduled
	sweeper *time.Timer
}

// h1Host is one upstream address.
type h1Host struct {
	c     *h1Client
	addr  string // host:port, with the scheme's default port
	tls   bool
	cfg   *tls.Config // ALPN h2 and http/1.1, server name set
	proto atomic.Int32

	mu   sync.Mutex
	idle []*h1Conn // most recently used last
}

func newH1Client(o Options, transport *http.Transport, base *tls.Config) *h1Client {
	c := &h1Client{
		dial:        transport.DialContext,
		transport:   transport,
		base:        base,
		hsTimeout:   orDefault(o.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout),
		respTimeout: o.ResponseHeaderTimeout,
		idleTimeout: orDefault(o.IdleConnTimeout, DefaultIdleConnTimeout),
		maxIdle:     o.MaxIdleConnsPerHost,
		hosts:       map[string]*h1Host{},
	}
	if c.maxIdle == 0 {
		c.maxIdle = DefaultMaxIdleConnsPerHost
	}
	c.sweeper = time.AfterFunc(time.Hour, c.sweep)
	c.sweeper.Stop()
	return c
}

// host returns the state for target t, or nil when the client cannot serve
// it (a host name that is not ASCII, which the Transport converts to
// punycode): its requests then all go to the Transport.
func (c *h1Client) host(t *url.URL, peer string) *h1Host {
	for i := 0; i < len(peer); i++ {
		if peer[i] >= 0x80 {
			return nil
		}
	}
	key := t.Scheme + "://" + peer
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.hosts[key]; ok {
		return h
	}
	h := &h1Host{c: c, addr: peer, tls: t.Scheme == "https"}
	if h.tls {
		h.cfg = c.tlsConfig(peer, []string{"h2", "http/1.1"})
	}
	c.hosts[key] = h
	return h
}

// tlsConfig is the pool's configuration for addr, as the Transport would
// derive it: the host as server name unless one is configured.
func (c *h1Client) tlsConfig(addr string, protos []string) *tls.Config {
	cfg := c.base.Clone()
	if cfg.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cfg.ServerName = host
		}
	}
	cfg.NextProtos = protos
	return cfg
}

// handoff carries a connection that negotiated h2 from this client to the
// Transport's dialer, through the request's context.
type handoff struct {
	addr string
	conn atomic.Pointer[tls.Conn]
}

type handoffKey struct{}

// onlyH1Key marks the context of a request that asks for a protocol
// upgrade: the Transport must dial it a connection without ALPN, as it does
// when it dials itself.
type onlyH1Key struct{}

// dialForTransport is the Transport's DialTLSContext: it takes a connection
// this client handed over, or dials one as the Transport itself would.
func (c *h1Client) dialForTransport(ctx context.Context, _, addr string) (net.Conn, error) {
	if ho, ok := ctx.Value(handoffKey{}).(*handoff); ok && ho.addr == addr {
		if tc := ho.conn.Swap(nil); tc != nil {
			return tc, nil
		}
	}
	var cfg *tls.Config
	if ctx.Value(onlyH1Key{}) != nil {
		cfg = c.tlsConfig(addr, nil)
	} else {
		c.mu.Lock()
		h := c.hosts["https://"+addr]
		c.mu.Unlock()
		if h != nil {
			cfg = h.cfg
		} else {
			cfg = c.tlsConfig(addr, []string{"h2", "http/1.1"})
		}
	}
	return c.dialTLS(ctx, addr, cfg)
}

// dialTLS connects to addr and completes the TLS handshake within the
// handshake timeout.
func (c *h1Client) dialTLS(ctx context.Context, addr string, cfg *tls.Config) (*tls.Conn, error) {
	raw, err := c.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if c.hsTimeout > 0 {
		_ = raw.SetDeadline(time.Now().Add(c.hsTimeout))
	}
	tc := tls.Client(raw, cfg)
	err = tc.HandshakeContext(ctx)
	if err == nil && c.hsTimeout > 0 {
		err = raw.SetDeadline(time.Time{})
	}
	if err != nil {
		raw.Close()
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() && ctx.Err() == nil {
			return nil, errHandshakeTimeout
		}
		return nil, err
	}
	return tc, nil
}

// drain makes the client close its idle connections now, and every
// connection when its request ends from now on. It is called when the pool
// is released.
func (c *h1Client) drain() {
	c.closing.Store(true)
	c.mu.Lock()
	hosts := make([]*h1Host, 0, len(c.hosts))
	for _, h := range c.hosts {
		hosts = append(hosts, h)
	}
	c.mu.Unlock()
	for _, h := range hosts {
		h.mu.Lock()
		idle := h.idle
		h.idle = nil
		h.mu.Unlock()
		for _, pc := range idle {
			pc.close()
		}
	}
	c.sweeper.Stop()
}

// sweepInterval is how often idle connections are checked: closed when
// idle for longer than the idle timeout, or when the upstream closed them
// (the Transport notices that at once, through the read it keeps pending
// on every idle connection; this client looks once per interval).
const sweepInterval = time.Second

// sweepEvery is the sweep interval: sweepInterval, or the idle timeout
// when that is shorter.
func (c *h1Client) sweepEvery() time.Duration { return min(sweepInterval, c.idleTimeout) }

// sweep closes expired and dead idle connections, and schedules itself
// again while any connection is idle.
func (c *h1Client) sweep() {
	c.armed.Store(false)
	now := time.Now()
	more := false
	c.mu.Lock()
	hosts := make([]*h1Host, 0, len(c.hosts))
	for _, h := range c.hosts {
		hosts = append(hosts, h)
	}
	c.mu.Unlock()
	for _, h := range hosts {
		var gone []*h1Conn
		h.mu.Lock()
		keep := h.idle[:0]
		for _, pc := range h.idle {
			if now.Sub(pc.idleAt) >= c.idleTimeout || !pc.alive() {
				gone = append(gone, pc)
			} else {
				keep = append(keep, pc)
			}
		}
		clear(h.idle[len(keep):])
		h.idle = keep
		more = more || len(keep) > 0
		h.mu.Unlock()
		for _, pc := range gone {
			pc.close()
		}
	}
	if more && !c.closing.Load() && c.armed.CompareAndSwap(false, true) {
		c.sweeper.Reset(c.sweepEvery())
	}
}

// h1Conn is one connection. It belongs to one exchange at a time, or to
// its host's idle list.
type h1Conn struct {
	h      *h1Host
	conn   net.Conn // *tls.Conn for https
	peek   *peeker
	br     *bufio.Reader
	bw     *bufio.Writer
	tls    *tls.ConnectionState
	reused bool
	idleAt time.Time
	// limit bounds what the response headers may read (Read below).
	limit  int64
	nwrite int64
	// aborted is set when the request's context ended during the exchange
	// (abort moved the deadline into the past).
	aborted atomic.Bool
	abortFn func()
}

func (pc *h1Conn) Read(p []byte) (int, error) {
	if pc.limit <= 0 {
		return 0, fmt.Errorf("read limit of %d bytes exhausted", maxResponseHeaderBytes)
	}
	if int64(len(p)) > pc.limit {
		p = p[:pc.limit]
	}
	n, err := pc.conn.Read(p)
	pc.limit -= int64(n)
	return n, err
}

func (pc *h1Conn) Write(p []byte) (int, error) {
	n, err := pc.conn.Write(p)
	pc.nwrite += int64(n)
	return n, err
}

func (pc *h1Conn) abort() {
	pc.aborted.Store(true)
	_ = pc.conn.SetDeadline(aLongTimeAgo)
}

func (pc *h1Conn) close() { _ = pc.conn.Close() }

// newConn dials a connection to h. For https it returns the handshaken
// connection in h2 when the upstream selected HTTP/2.
func (h *h1Host) newConn(ctx context.Context) (pc *h1Conn, h2 *tls.Conn, err error) {
	var conn net.Conn
	var state *tls.ConnectionState
	if h.tls {
		tc, err := h.c.dialTLS(ctx, h.addr, h.cfg)
		if err != nil {
			return nil, nil, err
		}
		cs := tc.ConnectionState()
		if cs.NegotiatedProtocol == "h2" {
			h.proto.Store(protoH2)
			return nil, tc, nil
		}
		conn, state = tc, &cs
	} else {
		if conn, err = h.c.dial(ctx, "tcp", h.addr); err != nil {
			return nil, nil, err
		}
	}
	h.proto.Store(protoH1)
	pc = &h1Conn{h: h, conn: conn, tls: state}
	pc.br = bufio.NewReaderSize(pc, h1BufferSize)
	pc.bw = bufio.NewWriterSize(pc, h1BufferSize)
	pc.abortFn = pc.abort
	pc.peek = newPeeker(rawConnOf(conn))
	return pc, nil, nil
}

// rawConnOf returns the socket under conn, for the liveness peek.
func rawConnOf(conn net.Conn) syscall.RawConn {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	if cc, ok := conn.(*countedConn); ok {
		conn = cc.Conn
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// idleConn takes the most recently used idle connection that is still
// usable, or returns nil.
func (h *h1Host) idleConn() *h1Conn {
	for {
		h.mu.Lock()
		n := len(h.idle)
		if n == 0 {
			h.mu.Unlock()
			return nil
		}
		pc := h.idle[n-1]
		h.idle[n-1] = nil
		h.idle = h.idle[:n-1]
		h.mu.Unlock()
		if time.Since(pc.idleAt) < h.c.idleTimeout && pc.alive() {
			pc.reused = true
			return pc
		}
		pc.close()
	}
}

// alive reports whether an idle connection can carry a request: the
// upstream has not closed it and has sent nothing while it was idle (an
// unasked response, or a TLS alert before closing). Where the socket cannot
// be inspected, the connection is assumed usable; a failure on it is then
// retried as the Transport retries.
func (pc *h1Conn) alive() bool {
	if pc.br.Buffered() > 0 {
		return false
	}
	r := pc.peek.look()
	return r == peekEmpty || r == peekUnknown
}

// put returns pc to the idle list, or closes it.
func (h *h1Host) put(pc *h1Conn) {
	c := h.c
	if c.closing.Load() {
		pc.close()
		return
	}
	pc.idleAt = time.Now()
	h.mu.Lock()
	if len(h.idle) >= c.maxIdle || c.closing.Load() {
		h.mu.Unlock()
		pc.close()
		return
	}
	h.idle = append(h.idle, pc)
	h.mu.Unlock()
	if c.armed.CompareAndSwap(false, true) {
		c.sweeper.Reset(c.sweepEvery())
	}
}

// eligible reports whether this client sends req (see the file comment);
// the others go to the Transport.
func (h *h1Host) eligible(req *http.Request) bool {
	return h != nil && h.proto.Load() != protoH2 && req.Body == nil && req.Trailer == nil
}

// roundTrip sends req, which must be eligible, on a connection of h. A
// connection that negotiates HTTP/2 is handed to the Transport with req.
func (h *h1Host) roundTrip(req *http.Request) (*http.Response, error) {
	if err := validRequest(req); err != nil {
		return nil, err
	}
	ctx := req.Context()
	for {
		pc := h.idleConn()
		if pc == nil {
			var h2 *tls.Conn
			var err error
			pc, h2, err = h.newConn(ctx)
			if err != nil {
				return nil, err
			}
			if h2 != nil {
				return h.handOver(req, h2)
			}
		}
		res, err := pc.exchange(req)
		if err == nil {
			return res, nil
		}
		if !pc.reused || ctx.Err() != nil || !retryable(req, err) {
			return nil, unwrapRetry(err)
		}
	}
}

// handOver sends req through the Transport on tc, a new connection that
// negotiated HTTP/2. If the Transport had an HTTP/2 connection to the
// upstream already, tc is not needed and is closed.
func (h *h1Host) handOver(req *http.Request, tc *tls.Conn) (*http.Response, error) {
	ho := &handoff{addr: h.addr}
	ho.conn.Store(tc)
	res, err := h.c.transport.RoundTrip(req.WithContext(context.WithValue(req.Context(), handoffKey{}, ho)))
	if left := ho.conn.Swap(nil); left != nil {
		left.Close()
	}
	return res, err
}

// noteProtocol learns from a response the Transport received for h which
// protocol the upstream speaks now (an upstream may stop offering h2).
func (h *h1Host) noteProtocol(res *http.Response) {
	if h != nil && res.ProtoMajor == 1 && h.proto.Load() == protoH2 {
		h.proto.Store(protoUnknown)
	}
}

// validRequest applies the Transport's checks of the request line; the
// header is checked as it is written (writeRequestHead).
func validRequest(req *http.Request) error {
	if req.URL == nil {
		return errors.New("http: nil Request.URL")
	}
	if req.URL.Host == "" {
		return errors.New("http: no Host in request URL")
	}
	if req.Method != "" && !isToken(req.Method) {
		return fmt.Errorf("net/http: invalid method %q", req.Method)
	}
	return nil
}

// retryError marks a failure on a reused connection that the Transport
// would retry on another connection.
type retryError struct {
	err         error
	nothingSent bool
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

func retryable(req *http.Request, err error) bool {
	re, ok := err.(*retryError)
	if !ok {
		return false
	}
	if re.nothingSent {
		return true
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, key := req.Header["Idempotency-Key"]
	_, xkey := req.Header["X-Idempotency-Key"]
	return key || xkey
}

func unwrapRetry(err error) error {
	if re, ok := err.(*retryError); ok {
		return re.err
	}
	return err
}

// exchange writes req on pc and reads the response head. On success pc
// belongs to the response body (h1Body), or is already back in the idle
// list when the response has no body.
func (pc *h1Conn) exchange(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	pc.aborted.Store(false)
	stop := context.AfterFunc(ctx, pc.abortFn)
	fail := func(err error) (*http.Response, error) {
		stop()
		pc.close()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, err
	}

	start := pc.nwrite
	fast, err := writeRequestHead(pc.bw, req)
	if err != nil {
		// Refused before anything was written: the connection is fine.
		pc.release(true, stop)
		return nil, err
	}
	if !fast {
		err = req.Write(pc.bw)
	}
	if err == nil {
		err = pc.bw.Flush()
	}
	if err != nil {
		pc.bw.Reset(pc)
		if pc.nwrite == start {
			return fail(&retryError{err: err, nothingSent: true})
		}
		return fail(fmt.Errorf("net/http: HTTP/1.x transport connection broken: %w", err))
	}

	if pc.h.c.respTimeout > 0 {
		_ = pc.conn.SetReadDeadline(time.Now().Add(pc.h.c.respTimeout))
	}
	res, err := pc.readResponse(req)
	if pc.h.c.respTimeout > 0 {
		// The deadline bounds the response head only. It can stay when
		// the whole body is buffered already (nothing more is read in
		// this exchange, and the next one sets its own deadline).
		if err != nil || !bodyBuffered(res, pc.br) {
			if e := pc.conn.SetReadDeadline(time.Time{}); e == nil && pc.aborted.Load() {
				// The context ended while the deadline was cleared.
				_ = pc.conn.SetDeadline(aLongTimeAgo)
			}
		}
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() && !pc.aborted.Load() {
			err = errResponseHeaderTimeout
		}
	}
	if err != nil {
		if pc.limit <= 0 {
			return fail(fmt.Errorf("net/http: server response headers exceeded %d bytes; aborted", maxResponseHeaderBytes))
		}
		if err == errResponseHeaderTimeout {
			return fail(err)
		}
		return fail(&retryError{err: err})
	}
	pc.limit = math.MaxInt64

	if isProtocolSwitch(res) {
		// The caller owns the connection now (ReverseProxy tunnels it).
		stop()
		res.Body = &switchBody{br: pc.br, conn: pc.conn}
		if pc.br.Buffered() == 0 {
			res.Body.(*switchBody).br = nil
		}
		return res, nil
	}
	res.TLS = pc.tls
	keep := !res.Close && !req.Close && res.StatusCode > 199
	if req.Method == http.MethodHead || res.ContentLength == 0 {
		// No body to wait for: release the connection now, as the
		// Transport does, so the next request can take it.
		pc.release(keep, stop)
		return res, nil
	}
	res.Body = &h1Body{rc: res.Body, pc: pc, ctx: ctx, stop: stop, keep: keep}
	return res, nil
}

// bodyBuffered reports whether res's body is in br already, so reading it
// does not touch the connection.
func bodyBuffered(res *http.Response, br *bufio.Reader) bool {
	if isProtocolSwitch(res) {
		return false
	}
	if res.Body == http.NoBody {
		return true
	}
	b, ok := res.Body.(*lengthBody)
	return ok && b.n <= int64(br.Buffered())
}

// readResponse reads the final response head, passing informational
// responses to the request's httptrace.ClientTrace as the Transport does.
func (pc *h1Conn) readResponse(req *http.Request) (*http.Response, error) {
	trace := httptrace.ContextClientTrace(req.Context())
	pc.limit = maxResponseHeaderBytes
	for {
		var res *http.Response
		if _, err := pc.br.Peek(1); err == nil {
			res = parseResponseHead(pc.br, req)
		}
		if res == nil {
			var err error
			if res, err = http.ReadResponse(pc.br, req); err != nil {
				return nil, err
			}
		}
		code := res.StatusCode
		if code < 100 || code > 199 || code == http.StatusSwitchingProtocols {
			return res, nil
		}
		if trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(res.Header)); err != nil {
				return nil, err
			}
			pc.limit = maxResponseHeaderBytes
		}
	}
}

// release ends pc's exchange: back to the idle list when keep holds and the
// context did not abort it, closed otherwise.
func (pc *h1Conn) release(keep bool, stop func() bool) {
	if stop() && keep && !pc.aborted.Load() && pc.br.Buffered() == 0 {
		pc.h.put(pc)
		return
	}
	pc.close()
}

// h1Body is a response body read from pc; the connection is released when
// the body has been read to its end, and closed when the body is closed
// before that or fails.
type h1Body struct {
	rc   io.ReadCloser
	pc   *h1Conn
	ctx  context.Context
	stop func() bool
	keep bool
	done bool
	mu   sync.Mutex
}

func (b *h1Body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return 0, errors.New("http: read on closed response body")
	}
	n, err := b.rc.Read(p)
	if err != nil {
		b.done = true
		if err == io.EOF {
			b.pc.release(b.keep, b.stop)
		} else {
			b.stop()
			b.pc.close()
			if b.pc.aborted.Load() {
				// Cut off because the request's context ended: report
				// that, as the Transport does, not the deadline.
				if cause := context.Cause(b.ctx); cause != nil {
					err = cause
				}
			}
		}
	}
	return n, err
}

func (b *h1Body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return nil
	}
	b.done = true
	// Closed before its end: the rest of the body is still on the wire.
	b.stop()
	b.pc.close()
	return nil
}

// isProtocolSwitch reports whether res is a 101 that switches protocols
// (Connection: upgrade and an Upgrade header), as the Transport decides.
func isProtocolSwitch(res *http.Response) bool {
	return res.StatusCode == http.StatusSwitchingProtocols && res.Header.Get("Upgrade") != "" &&
		headerHasToken(res.Header["Connection"], "upgrade")
}

// switchBody is the body of a 101 response: the connection itself, after
// whatever was buffered.
type switchBody struct {
	br   *bufio.Reader // until drained
	conn net.Conn
}

func (b *switchBody) Read(p []byte) (int, error) {
	if b.br != nil {
		if n := b.br.Buffered(); len(p) > n {
			p = p[:n]
		}
		n, err := b.br.Read(p)
		if b.br.Buffered() == 0 {
			b.br = nil
		}
		return n, err
	}
	return b.conn.Read(p)
}

func (b *switchBody) Write(p []byte) (int, error) { return b.conn.Write(p) }
func (b *switchBody) Close() error                { return b.conn.Close() }

// peeker checks an idle connection's socket (peek, per platform).
type peeker struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool // p.peek, bound once
	res peekResult
	buf [1]byte
}

func newPeeker(rc syscall.RawConn) *peeker {
	p := &peeker{rc: rc}
	p.fn = p.peek
	return p
}

// look reports what is on the socket.
func (p *peeker) look() peekResult {
	if p.rc == nil {
		return peekUnknown
	}
	p.res = peekUnknown
	if err := p.rc.Read(p.fn); err != nil {
		return peekClosed
	}
	return p.res
}

// peekResult is what peek saw on an idle connection.
type peekResult int

const (
	peekUnknown peekResult = iota // could not look: read to find out
	peekEmpty                     // nothing to read: usable
	peekData                      // bytes waiting
	peekClosed                    // closed by the peer, or failed
)
