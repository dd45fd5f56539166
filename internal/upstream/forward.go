package upstream

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/telemetry"
	"github.com/portcullis/portcullis/internal/tlsdiag"
)

// Result describes one forwarded request for the access log.
type Result struct {
	// Target is the target URL the request went to.
	Target string
	// Status is the upstream's response status, or 0 if no response was
	// received.
	Status int
	// Duration runs from Forward's start until the response body was
	// copied (or the failure).
	Duration time.Duration
	// BytesOut counts response body bytes written to the client. Bytes
	// relayed after a protocol upgrade (101) are not counted.
	BytesOut int64
}

// Forward proxies r to the next target in round-robin order. The caller has
// already rewritten r.URL.Path (for example stripped the API's prefix); the
// target's own path is prepended to it. res, if not nil, is filled for the
// access log.
//
// If the upstream fails before any response byte was written, Forward
// writes nothing and returns a *problem.Error with a 502 or 504 status, an
// upstream.* code, a client-safe Detail, the transport error as Cause and
// the diagnosis as Log; the caller writes the problem document and the log
// line. A client that goes away yields problem.CodeRequestCanceled. Once the
// response has started, a failure aborts the handler the way net/http does
// (panic with http.ErrAbortHandler) and the client sees a truncated body.
func (u *Upstream) Forward(w http.ResponseWriter, r *http.Request, res *Result) error {
	start := time.Now()
	tg := &u.targets[(u.next.Add(1)-1)%uint64(len(u.targets))]
	// With tracing on, the hop gets a client span, and rewrite sends the
	// upstream that span's trace context.
	r, span := telemetry.StartUpstream(r, tg.url)
	defer span.Abandon()

	rec := recorderPool.Get().(*recorder)
	rec.w = w
	if isUpgrade(r.Header) {
		// The transport dials upgrade requests a connection without ALPN
		// (HTTP/2 cannot carry most upgrades); see h1Client.dialForTransport.
		tg.proxy.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), onlyH1Key{}, true)))
	} else {
		tg.serve(u.transport, rec, r, u.errLog)
	}
	err, status, n := rec.err, rec.status, rec.bytes
	*rec = recorder{}
	recorderPool.Put(rec)

	if res != nil {
		*res = Result{Target: tg.name, Status: status, Duration: time.Since(start), BytesOut: n}
	}
	if err == nil {
		span.End(status, "", nil)
		return nil
	}
	pe := u.failure(err, tg, r)
	span.End(status, pe.Code, pe.Log)
	return pe
}

// failure turns a transport error into the problem the caller writes.
func (u *Upstream) failure(err error, tg *target, r *http.Request) *problem.Error {
	c := u.diag
	c.Peer, c.ServerName = tg.peer, tg.serverName
	if p := u.pool.acceptableCAs.Load(); p != nil {
		c.AcceptableCAs = *p
	}
	if errors.Is(r.Context().Err(), context.Canceled) {
		return &problem.Error{
			Code:   problem.CodeRequestCanceled,
			Detail: "The request was cancelled before the upstream service answered.",
			Cause:  err,
			Log: []any{"hop", string(tlsdiag.HopUpstream), "peer", c.Peer, "server_name", c.ServerName,
				"reason", "client_canceled", "plain", "The client closed the request before the upstream answered.", "fix", "None needed unless this is frequent; then check upstream latency."},
		}
	}
	d, ok := tlsdiag.Upstream(err, c)
	if tg.url.Scheme == "https" && (d.Reason == "connection_closed" || !ok && err.Error() == errH2NotEstablished) {
		if perr := u.probe(r.Context(), tg); perr != nil {
			if p := u.pool.acceptableCAs.Load(); p != nil {
				c.AcceptableCAs = *p
			}
			if pd, pok := tlsdiag.Upstream(perr, c); pok && pd.Reason != "connection_closed" {
				d, ok = pd, true
			}
		}
	}
	if !ok {
		d = tlsdiag.Diagnosis{
			Hop: tlsdiag.HopUpstream, Code: problem.CodeUpstreamProtocol, Reason: "upstream_error",
			Plain:      "The exchange with the upstream " + c.Peer + " failed: " + err.Error() + ".",
			Fix:        "Check the upstream's logs for this request; the error above comes from the gateway's HTTP client.",
			Peer:       c.Peer,
			ServerName: c.ServerName,
		}
	}
	return &problem.Error{Code: d.Code, Detail: clientDetail(d.Code), Cause: err, Log: d.LogAttrs()}
}

// clientDetail is the sentence a client sees. It never names hosts,
// certificates or trust sets: those are for the operator's log.
func clientDetail(code string) string {
	switch code {
	case problem.CodeUpstreamConnectRefused, problem.CodeUpstreamConnectFailed:
		return "The gateway could not reach the upstream service."
	case problem.CodeUpstreamTimeout:
		return "The upstream service did not answer in time."
	case problem.CodeUpstreamProtocol:
		return "The upstream service did not return a valid response."
	}
	return "The gateway could not establish a trusted connection to the upstream service; the gateway's log has the reason under this request's id."
}

// captureError is every target's ReverseProxy.ErrorHandler (for upgrade
// requests, see target.proxy). ReverseProxy calls it only before it has
// written the response, so it stores the error for Forward instead of
// answering.
func captureError(w http.ResponseWriter, _ *http.Request, err error) {
	if rec, ok := w.(*recorder); ok {
		rec.err = err
		return
	}
	// Unreachable: Forward always passes a *recorder. Fail closed anyway.
	w.WriteHeader(http.StatusBadGateway)
}

// recorder wraps the client's ResponseWriter to count what Forward reports
// and to carry the proxy's error back to Forward. Recorders are pooled.
type recorder struct {
	w      http.ResponseWriter
	status int
	bytes  int64
	err    error
}

var recorderPool = sync.Pool{New: func() any { return new(recorder) }}

func (rec *recorder) Header() http.Header { return rec.w.Header() }

func (rec *recorder) WriteHeader(code int) {
	// Informational responses (103 Early Hints) precede the real status;
	// 101 is final because the connection then changes protocol.
	if rec.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		rec.status = code
	}
	rec.w.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	n, err := rec.w.Write(b)
	rec.bytes += int64(n)
	return n, err
}

// Flush lets the forwarder, and handlers that type-assert http.Flusher,
// stream through the recorder; ReverseProxy itself reaches the flusher
// through Unwrap.
func (rec *recorder) Flush() {
	_ = http.NewResponseController(rec.w).Flush()
}

// Hijack takes over the client connection for a protocol upgrade.
// ReverseProxy writes the upstream's 101 response straight to the hijacked
// connection, so this is where the recorder learns the status.
func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(rec.w).Hijack()
	if err == nil {
		rec.status = http.StatusSwitchingProtocols
	}
	return conn, brw, err
}

// Unwrap exposes the client's ResponseWriter to http.ResponseController for
// the other optional interfaces (deadlines, full-duplex).
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.w }

// rewrite points an upgrade request at the target. ReverseProxy has
// already removed hop-by-hop headers and every incoming Forwarded and
// X-Forwarded-* header, so the ones set here are the only ones the upstream
// sees: the client is not trusted to supply them.
func (tg *target) rewrite(pr *httputil.ProxyRequest) {
	out := pr.Out
	out.URL.Scheme = tg.url.Scheme
	out.URL.Host = tg.url.Host
	joinPath(tg.url, out.URL)
	// An empty Host makes the transport send the target's host, which is
	// what virtual-hosted upstreams expect; the client's Host travels in
	// X-Forwarded-Host and Forwarded.
	out.Host = ""
	pr.SetXForwarded()
	out.Header["Forwarded"] = []string{forwarded(pr.In)}
	// With tracing on, the upstream sees the gateway's span as its parent;
	// with it off, the client's traceparent passes through unchanged.
	telemetry.InjectUpstream(out.Context(), out.Header)
}

// joinPath prepends base's path to u's, with exactly one slash between them,
// keeping u's escaping when either path has a non-canonical encoding.
func joinPath(base, u *url.URL) {
	if base.Path == "" || base.Path == "/" {
		return
	}
	if base.RawPath == "" && u.RawPath == "" {
		u.Path = joinSlash(base.Path, u.Path)
		return
	}
	raw := joinSlash(base.EscapedPath(), u.EscapedPath())
	u.Path = joinSlash(base.Path, u.Path)
	u.RawPath = raw
}

func joinSlash(a, b string) string {
	if b == "" {
		return a
	}
	aSlash, bSlash := strings.HasSuffix(a, "/"), strings.HasPrefix(b, "/")
	switch {
	case aSlash && bSlash:
		return a + b[1:]
	case !aSlash && !bSlash:
		return a + "/" + b
	}
	return a + b
}

// forwarded builds an RFC 7239 Forwarded element for the hop from the client
// to the gateway: for=client address, host=requested host, proto=scheme.
func forwarded(in *http.Request) string {
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	var b strings.Builder
	b.Grow(32 + len(in.Host))
	b.WriteString("for=")
	writeNode(&b, in.RemoteAddr)
	if in.Host != "" {
		b.WriteString(";host=")
		writeValue(&b, in.Host)
	}
	b.WriteString(";proto=")
	b.WriteString(proto)
	return b.String()
}

// writeNode writes the client's IP as an RFC 7239 node: IPv6 addresses are
// bracketed and therefore quoted (section 6); an address that cannot be
// parsed is "unknown" rather than whatever the connection claimed.
func writeNode(b *strings.Builder, remoteAddr string) {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		b.WriteString("unknown")
		return
	}
	if ip.Is4() {
		// A parsed IPv4 address prints as it was written.
		b.WriteString(host)
		return
	}
	ip = ip.WithZone("").Unmap()
	if ip.Is4() {
		b.WriteString(ip.String())
		return
	}
	b.WriteString(`"[`)
	b.WriteString(ip.String())
	b.WriteString(`]"`)
}

// writeValue writes v as an RFC 7239 value: a token when it is one, a
// quoted-string otherwise (a host with a port contains ':').
func writeValue(b *strings.Builder, v string) {
	if isToken(v) {
		b.WriteString(v)
		return
	}
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
}

// isToken reports whether v is an RFC 7230 token.
func isToken(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
