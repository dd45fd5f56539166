package server

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/snapshot"
	"github.com/portcullis/portcullis/internal/telemetry"
	"github.com/portcullis/portcullis/internal/tlsdiag"
)

type handler struct {
	s    *Server
	name string
}

// exchange is the per-request state kept for the access log. It is pooled so
// the hot path does not allocate it.
type exchange struct {
	http.ResponseWriter
	status  int
	written int64
	body    countingBody
	x       snapshot.Exchange
	// prefix is the matched API's path prefix, for log.redact: path.
	prefix string
	// hdrs holds the values of the headers listed in
	// log.access_log_headers as the client sent them (stages may change
	// r.Header), in the snapshot's order. Its array is kept across uses of
	// the pooled exchange so logging headers does not allocate.
	hdrs [][]string
}

var exchanges = sync.Pool{New: func() any { return new(exchange) }}

func (e *exchange) WriteHeader(code int) {
	if e.status == 0 && code >= 200 {
		e.status = code
	}
	e.ResponseWriter.WriteHeader(code)
}

func (e *exchange) Write(b []byte) (int, error) {
	if e.status == 0 {
		e.status = http.StatusOK
	}
	n, err := e.ResponseWriter.Write(b)
	e.written += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's flusher and
// deadlines, which streaming responses rely on.
func (e *exchange) Unwrap() http.ResponseWriter { return e.ResponseWriter }

// Flush forwards to the underlying writer so code that type-asserts
// http.Flusher keeps streaming.
func (e *exchange) Flush() {
	if e.status == 0 {
		e.status = http.StatusOK
	}
	http.NewResponseController(e.ResponseWriter).Flush()
}

type countingBody struct {
	rc io.ReadCloser
	n  int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingBody) Close() error { return c.rc.Close() }

// newRequestID returns 16 hex digits. The gateway always makes its own id;
// an incoming X-Request-Id is not trusted, since a client could reuse one to
// muddle the operator's logs.
func newRequestID() string {
	const hex = "0123456789abcdef"
	var b [16]byte
	v := rand.Uint64()
	for i := range b {
		b[i] = hex[v&0xf]
		v >>= 4
	}
	return string(b[:])
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	snap := h.s.holder.Load()
	l := snap.Listeners[h.name]
	id := newRequestID()
	// One slice for both maps: header code replaces or appends to a value
	// slice (a new array at capacity 1), never writes into it.
	ids := []string{id}
	w.Header()["X-Request-Id"] = ids
	r.Header["X-Request-Id"] = ids

	ex := exchanges.Get().(*exchange)
	*ex = exchange{ResponseWriter: w, hdrs: ex.hdrs[:0]}
	defer putExchange(ex)
	if hs := snap.AccessLogFormat.Headers; len(hs) > 0 && snap.AccessLog {
		for _, h := range hs {
			ex.hdrs = append(ex.hdrs, r.Header[h.Name])
		}
	}
	if r.Body != nil && r.Body != http.NoBody {
		if l.MaxBodyBytes >= 0 {
			r.Body = http.MaxBytesReader(ex, r.Body, l.MaxBodyBytes)
		}
		ex.body.rc = r.Body
		r.Body = &ex.body
	}

	cleanPath(r)
	apiName, code := "", ""
	if t := h.s.tracer; t != nil {
		var end func(int, string, string)
		r, end = t.StartRequest(r)
		defer func() { end(ex.status, apiName, code) }()
	}
	// Stages may rewrite the path (strip_prefix); the log shows what the
	// client asked for.
	reqPath := r.URL.Path
	var err error
	switch {
	case l.MaxBodyBytes >= 0 && r.ContentLength > l.MaxBodyBytes:
		err = problem.New(problem.CodeRequestTooLarge, "The request body is larger than this gateway accepts ("+strconv.FormatInt(l.MaxBodyBytes, 10)+" bytes).")
	case l.AuthServerFor(r.URL.Path) != nil:
		// The built-in authorization server answers its own errors (RFC
		// 6749 §5.2 JSON); it is not an API.
		apiName = "authorization_server"
		l.AuthServerFor(r.URL.Path).ServeHTTP(ex, r)
	default:
		api, methodMismatch := l.Router.Match(hostOnly(r.Host), r.URL.Path, r.Method)
		switch {
		case api != nil && api.NeedsClientCert() && !l.RequestsCert(serverName(r)):
			apiName, ex.prefix = api.ID, api.PathPrefix()
			err = problem.New(problem.CodeMisdirected, "This connection was not set up for this host; open a new connection to it.")
		case api != nil:
			apiName, ex.prefix = api.ID, api.PathPrefix()
			err = api.Serve(ex, r, &ex.x)
		case methodMismatch:
			err = problem.New(problem.CodeMethodNotAllowed, "This API does not accept the "+r.Method+" method on this path.")
		default:
			err = problem.New(problem.CodeRouteNotFound, "No API is published at this host and path.")
		}
	}
	if err != nil {
		pe := asProblem(err)
		code = pe.Code
		h.logFailure(id, apiName, r, pe)
		if m := h.s.metrics; m != nil && strings.HasPrefix(code, "upstream.") {
			if reason := logValue(pe.Log, "reason"); strings.HasPrefix(code, "upstream.tls.") || reason == "handshake_timeout" || reason == "connection_closed" {
				m.TLSHandshakeFailure(string(tlsdiag.HopUpstream), reason)
			}
		}
		if ex.status == 0 {
			problem.Write(ex, pe, id)
		}
	}
	// Failures are always logged; successes may be sampled.
	if snap.AccessLog && (ex.status >= 400 || code != "" || snap.AccessLogSample >= 1 || rand.Float64() < snap.AccessLogSample) {
		h.logAccess(start, id, apiName, code, reqPath, r, ex, &snap.AccessLogFormat)
	}
	if m := h.s.metrics; m != nil {
		app := ""
		if p := ex.x.Principal; p != nil {
			app = p.Application
		}
		m.Request(apiName, ex.status, app, code, time.Since(start), ex.x.Upstream.Duration)
		if d := ex.x.RateLimit; d != "" {
			m.RateLimitDecision(apiName, d)
		}
	}
}

// asProblem turns any error from a pipeline into a problem. A body that broke
// the size limit while streaming upstream becomes 413, whatever the upstream
// layer made of it.
func asProblem(err error) *problem.Error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return problem.Wrap(problem.CodeRequestTooLarge, "The request body is larger than this gateway accepts ("+strconv.FormatInt(mbe.Limit, 10)+" bytes).", err)
	}
	var pe *problem.Error
	if errors.As(err, &pe) {
		return pe
	}
	return problem.Wrap(problem.CodeInternal, "The gateway could not handle this request; quote the request id to the operator.", err)
}

// logValue returns the string value of key in alternating key/value pairs.
func logValue(kv []any, key string) string {
	for i := 0; i+1 < len(kv); i += 2 {
		if k, _ := kv[i].(string); k == key {
			v, _ := kv[i+1].(string)
			return v
		}
	}
	return ""
}

// serverName is the SNI the connection was handshaken for.
func serverName(r *http.Request) string {
	if r.TLS == nil {
		return ""
	}
	return r.TLS.ServerName
}

// logFailure writes the operator's line for a rejection that has something
// to explain (a cause or a diagnosis); plain 404s and 405s are in the access
// log only.
func (h *handler) logFailure(id, api string, r *http.Request, pe *problem.Error) {
	status := pe.HTTPStatus()
	if status < 500 && pe.Cause == nil && len(pe.Log) == 0 {
		return
	}
	level := slog.LevelInfo
	switch {
	case pe.Code == problem.CodeInternal:
		level = slog.LevelError
	case status >= 500:
		level = slog.LevelWarn
	}
	attrs := []any{"request_id", id, "listener", h.name, "api", api, "status", status, "code", pe.Code}
	if pe.Cause != nil {
		attrs = append(attrs, "error", pe.Cause.Error())
	}
	attrs = append(attrs, pe.Log...)
	h.s.log.Log(r.Context(), level, "request rejected", attrs...)
}

// putExchange returns ex to the pool without keeping the request's header
// values alive.
func putExchange(ex *exchange) {
	clear(ex.hdrs)
	exchanges.Put(ex)
}

// redacted replaces a value log.redact or a credential header hides.
const redacted = "[REDACTED]"

func (h *handler) logAccess(start time.Time, id, api, code, reqPath string, r *http.Request, ex *exchange, f *snapshot.AccessLogFormat) {
	total := time.Since(start)
	host, client := r.Host, r.RemoteAddr
	if f.RedactHost {
		host = redacted
	}
	if f.RedactPath {
		reqPath = prefixOnly(ex.prefix)
	}
	if f.RedactClientAddress {
		client = clientNetwork(client)
	}
	attrs := make([]slog.Attr, 0, 26)
	attrs = append(attrs,
		slog.String("request_id", id),
		slog.String("listener", h.name),
		slog.String("api", api),
		slog.String("method", r.Method),
		slog.String("host", host),
		// The path only: query strings often carry keys and tokens.
		slog.String("path", reqPath),
		slog.String("proto", r.Proto),
		slog.Int("status", ex.status),
		slog.Float64("duration_ms", ms(total)),
		slog.Int64("bytes_in", ex.body.n),
		slog.Int64("bytes_out", ex.written),
		slog.String("client", client),
		slog.String("tls_version", tlsVersionName(r.TLS)),
	)
	if cs := r.TLS; cs != nil {
		attrs = append(attrs, slog.String("tls_cipher", tls.CipherSuiteName(cs.CipherSuite)), slog.Bool("tls_resumed", cs.DidResume))
	}
	if code != "" {
		attrs = append(attrs, slog.String("code", code))
	}
	if t := ex.x.Tenant; t != "" {
		attrs = append(attrs, slog.String("tenant", t))
	}
	if p := ex.x.Principal; p != nil {
		attrs = append(attrs, slog.String("application", p.Application), slog.Any("auth", p.Methods))
		if p.Cert != nil {
			subject := p.Subject
			if f.RedactClientCertSubject {
				subject = redacted
			}
			attrs = append(attrs, slog.String("client_cert_subject", subject), slog.String("client_cert_sha256", p.Fingerprint))
		}
	}
	if len(f.Headers) > 0 {
		if a, ok := headersAttr(f.Headers, ex.hdrs); ok {
			attrs = append(attrs, a)
		}
	}
	if h.s.tracer != nil {
		if id := telemetry.TraceID(r.Context()); id != "" {
			attrs = append(attrs, slog.String("trace_id", id))
		}
	}
	if u := ex.x.Upstream; u.Target != "" {
		attrs = append(attrs, slog.String("upstream", u.Target), slog.Float64("upstream_ms", ms(u.Duration)))
	}
	h.s.access.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func tlsVersionName(cs *tls.ConnectionState) string {
	if cs == nil {
		return ""
	}
	switch cs.Version {
	case tls.VersionTLS13:
		return "1.3"
	case tls.VersionTLS12:
		return "1.2"
	}
	return tls.VersionName(cs.Version)
}

// cleanPath removes dot-segments and repeated slashes from the request path
// before routing, so that "/public/../admin" cannot be routed by its "/public"
// prefix and then resolved to "/admin" by the upstream. Routing and the
// upstream see the same, cleaned path.
func cleanPath(r *http.Request) {
	p := r.URL.Path
	if !strings.Contains(p, "/.") && !strings.Contains(p, "//") {
		return
	}
	c := path.Clean("/" + p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	r.URL.Path = c
	r.URL.RawPath = ""
}

// hostOnly lower-cases the request host and drops a port.
func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	} else {
		h = strings.Trim(h, "[]")
	}
	return strings.ToLower(h)
}

// headersAttr is the "headers" object of an access-log line: the listed
// headers the client sent, credentials as "[REDACTED]".
func headersAttr(list []snapshot.LoggedHeader, values [][]string) (slog.Attr, bool) {
	var as []slog.Attr
	for i, h := range list {
		if i >= len(values) || len(values[i]) == 0 {
			continue
		}
		v := values[i][0]
		switch {
		case h.Redact:
			v = redacted
		case len(values[i]) > 1:
			v = strings.Join(values[i], ", ")
		}
		as = append(as, slog.String(h.Key, v))
	}
	if len(as) == 0 {
		return slog.Attr{}, false
	}
	return slog.Attr{Key: "headers", Value: slog.GroupValue(as...)}, true
}

// prefixOnly is the path logged under log.redact: path: the matched API's
// prefix and an ellipsis, or just the ellipsis when no API matched.
func prefixOnly(prefix string) string {
	if prefix == "" || prefix == "/" {
		return "/…"
	}
	return prefix + "/…"
}

// clientNetwork keeps the network of a client address (host:port) for
// log.redact: client_address: IPv4 to /24, IPv6 to /48. An address that
// does not parse is hidden entirely.
func clientNetwork(addr string) string {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return redacted
	}
	ip := ap.Addr().Unmap()
	bits := 48
	if ip.Is4() {
		bits = 24
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return redacted
	}
	return p.String()
}
