package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/portcullis/portcullis/internal/telemetry"
)

// This file is the forwarder for every request that does not ask for a
// protocol upgrade (those still go through httputil.ReverseProxy, see
// target.proxy). It does what ReverseProxy with target.rewrite did, in the
// same order and with the same results, but builds the outbound request with
// a handful of allocations instead of a deep clone:
//
//   - the outbound header map shares the inbound values (they are only read);
//   - hop-by-hop headers, Forwarded and X-Forwarded-* are left out;
//   - Te: trailers, X-Forwarded-For/-Host/-Proto, Forwarded and an empty
//     User-Agent are added as ReverseProxy adds them;
//   - the response headers are handed to the client's header map without
//     copying values, and Content-Type is parsed only when it could be
//     text/event-stream.

// hopHeaders are removed in both directions (RFC 9110 §7.6.1 and the
// historical list ReverseProxy keeps).
var hopHeaders = [...]string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// outbound is one forwarded request's own state, allocated once per
// request. It is not pooled: the transport may still read the request after
// RoundTrip returns (a body being written while an early response is read,
// or a request abandoned on error).
type outbound struct {
	req   http.Request
	url   url.URL
	vals  [4]string // X-Forwarded-For, -Host, -Proto and Forwarded
	trace httptrace.ClientTrace

	// mu guards done and w against informational responses that arrive
	// on the transport's goroutine.
	mu   sync.Mutex
	done bool
	w    http.ResponseWriter
}

// got1xx forwards an informational response (103 Early Hints) to the client
// while the final response is awaited.
func (o *outbound) got1xx(code int, header textproto.MIMEHeader) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done {
		// RoundTrip has returned: the header map belongs to the final
		// response now.
		return nil
	}
	h := o.w.Header()
	for k, vv := range header {
		for _, v := range vv {
			h.Add(k, v)
		}
	}
	o.w.WriteHeader(code)
	// net/http does not clear the header map after a 1xx response.
	clear(h)
	return nil
}

// isUpgrade reports whether h asks for a protocol upgrade (Connection:
// upgrade and a non-empty Upgrade), the requests ReverseProxy tunnels.
func isUpgrade(h http.Header) bool {
	return headerHasToken(h["Connection"], "upgrade") && h.Get("Upgrade") != ""
}

// headerHasToken reports whether any of the comma-separated lists in values
// contains token (ASCII case-insensitively).
func headerHasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(t), token) {
				return true
			}
		}
	}
	return false
}

// serve forwards in to tg and copies the response to rec: over the
// HTTP/1.1 client when it takes the request, over t otherwise. Failures
// before the response started are left in rec.err, as ReverseProxy's error
// handler did.
func (tg *target) serve(t *http.Transport, rec *recorder, in *http.Request, errLog *log.Logger) {
	o := &outbound{w: rec}
	out := tg.outboundRequest(o, in)
	if b, ok := out.Body.(*noCloseBody); ok {
		defer b.Close()
	}
	var res *http.Response
	var err error
	if tg.h1.eligible(out) {
		res, err = tg.h1.roundTrip(out)
	} else if res, err = t.RoundTrip(out); err == nil {
		tg.h1.noteProtocol(res)
	}
	o.mu.Lock()
	o.done = true
	o.mu.Unlock()
	if err != nil {
		rec.err = err
		return
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		// Only requests that asked for an upgrade take the tunnelling
		// path (target.proxy); this one did not.
		res.Body.Close()
		if up := res.Header.Get("Upgrade"); up != "" || headerHasToken(res.Header["Connection"], "upgrade") {
			rec.err = fmt.Errorf("backend tried to switch protocol %q when %q was requested", up, "")
		} else {
			rec.err = errors.New("backend answered 101 Switching Protocols to a request without an upgrade")
		}
		return
	}
	removeHopByHop(res.Header, res.Header["Connection"])
	h := rec.Header()
	for k, vv := range res.Header {
		// The transport's keys are canonical and its value slices are not
		// shared: hand them over instead of copying value by value.
		if prior, ok := h[k]; ok {
			h[k] = append(prior, vv...)
		} else {
			h[k] = vv
		}
	}
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, len(res.Trailer))
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		h.Add("Trailer", strings.Join(keys, ", "))
	}
	rec.WriteHeader(res.StatusCode)

	if err := copyBody(rec, res, errLog); err != nil {
		defer res.Body.Close()
		if in.Context().Value(http.ServerContextKey) == nil {
			// Not under a net/http server, which would recover the
			// panic (only benchmarks and tests call Forward that way).
			errLog.Printf("suppressing panic for copyResponse error in test; copy error: %v", err)
			return
		}
		panic(http.ErrAbortHandler)
	}
	res.Body.Close() // now, to populate res.Trailer
	if len(res.Trailer) > 0 {
		// Force chunking: a short body with trailers must not get a
		// Content-Length.
		rec.Flush()
	}
	if len(res.Trailer) == announced {
		for k, vv := range res.Trailer {
			for _, v := range vv {
				h.Add(k, v)
			}
		}
		return
	}
	for k, vv := range res.Trailer {
		k = http.TrailerPrefix + k
		for _, v := range vv {
			h.Add(k, v)
		}
	}
}

// outboundRequest builds the request sent to tg from in, in o's storage.
func (tg *target) outboundRequest(o *outbound, in *http.Request) *http.Request {
	o.trace.Got1xxResponse = o.got1xx
	out := &o.req
	*out = *in.WithContext(httptrace.WithClientTrace(in.Context(), &o.trace))
	if in.ContentLength == 0 {
		out.Body = nil // lets the transport retry on a stale connection
	} else if in.Body != nil {
		// The transport closes the body it was given; the client's body
		// belongs to the server.
		out.Body = &noCloseBody{rc: in.Body}
	}
	out.Close = false
	out.Trailer = in.Trailer.Clone()

	h := make(http.Header, len(in.Header)+5)
	for k, v := range in.Header {
		h[k] = v
	}
	removeHopByHop(h, in.Header["Connection"])
	if headerHasToken(in.Header["Te"], "trailers") {
		h["Te"] = []string{"trailers"}
	}
	// The client may not supply forwarding headers: the ones set below are
	// the only ones the upstream sees.
	delete(h, "Forwarded")
	delete(h, "X-Forwarded-For")
	delete(h, "X-Forwarded-Host")
	delete(h, "X-Forwarded-Proto")

	o.url = *in.URL
	o.url.RawQuery = cleanQuery(in.URL.RawQuery)
	o.url.Scheme = tg.url.Scheme
	o.url.Host = tg.url.Host
	joinPath(tg.url, &o.url)
	out.URL = &o.url
	// An empty Host makes the transport send the target's host, which is
	// what virtual-hosted upstreams expect; the client's Host travels in
	// X-Forwarded-Host and Forwarded.
	out.Host = ""
	out.Header = h

	if ip, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
		o.vals[0] = ip
		h["X-Forwarded-For"] = o.vals[0:1:1]
	}
	o.vals[1] = in.Host
	h["X-Forwarded-Host"] = o.vals[1:2:2]
	o.vals[2] = "http"
	if in.TLS != nil {
		o.vals[2] = "https"
	}
	h["X-Forwarded-Proto"] = o.vals[2:3:3]
	o.vals[3] = forwarded(in)
	h["Forwarded"] = o.vals[3:4:4]
	// With tracing on, the upstream sees the gateway's span as its parent;
	// with it off, the client's traceparent passes through unchanged.
	telemetry.InjectUpstream(out.Context(), h)
	if _, ok := h["User-Agent"]; !ok {
		// No User-Agent from the client: send none rather than Go's.
		h["User-Agent"] = []string{""}
	}
	return out
}

// removeHopByHop deletes from h the headers named in connection (the
// message's Connection values) and the fixed hop-by-hop list.
func removeHopByHop(h http.Header, connection []string) {
	for _, f := range connection {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

// copyBody copies the response body to w, flushing after every write when
// the response is a stream: Server-Sent Events, or a body of unknown length.
func copyBody(w *recorder, res *http.Response, errLog *log.Logger) error {
	stream := res.ContentLength == -1 || isEventStream(res.Header["Content-Type"])
	if stream {
		// Headers go out at once, even if the first body bytes take long.
		w.Flush()
	}
	buf := copyBuffers.Get()
	defer copyBuffers.Put(buf)
	for {
		nr, rerr := res.Body.Read(buf)
		if rerr != nil && rerr != io.EOF && rerr != context.Canceled {
			errLog.Printf("httputil: ReverseProxy read error during body copy: %v", rerr)
		}
		if nr > 0 {
			nw, werr := w.Write(buf[:nr])
			if werr != nil {
				return werr
			}
			if nr != nw {
				return io.ErrShortWrite
			}
			if stream {
				w.Flush()
			}
		}
		if rerr != nil {
			if rerr == io.EOF {
				return nil
			}
			return rerr
		}
	}
}

// isEventStream reports whether the Content-Type is text/event-stream. Only
// values that contain that name are parsed.
func isEventStream(ct []string) bool {
	if len(ct) == 0 {
		return false
	}
	v := ct[0]
	const name = "text/event-stream"
	if len(v) < len(name) {
		return false
	}
	found := false
	for i := 0; i+len(name) <= len(v); i++ {
		if strings.EqualFold(v[i:i+len(name)], name) {
			found = true
			break
		}
	}
	if !found {
		return false
	}
	base, _, _ := mime.ParseMediaType(v)
	return base == name
}

// copyBuffers lends every forwarder its 32 KiB copy buffers.
var copyBuffers = &bufferPool{}

// noCloseBody passes reads through to the client's request body and
// ignores Close, which the transport calls (possibly after Forward
// returned): the server closes the client's body. Reads after Close fail.
type noCloseBody struct {
	rc     io.ReadCloser
	closed atomic.Bool
}

func (b *noCloseBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errors.New("upstream: read on the request body after the exchange ended")
	}
	return b.rc.Read(p)
}

func (b *noCloseBody) Close() error {
	b.closed.Store(true)
	return nil
}

// cleanQuery re-encodes a query that net/url would not parse the same way
// (semicolons, bad escapes, too many parameters), so that the upstream
// sees the parameters the gateway sees. Other queries pass unchanged.
func cleanQuery(s string) string {
	reencode := func(s string) string {
		v, _ := url.ParseQuery(s)
		return v.Encode()
	}
	if strings.Count(s, "&")+1 > maxQueryParams {
		return reencode(s)
	}
	for i := 0; i < len(s); {
		switch s[i] {
		case ';':
			return reencode(s)
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return reencode(s)
			}
			i += 3
		default:
			i++
		}
	}
	return s
}

// maxQueryParams is net/url's default limit on query parameters.
const maxQueryParams = 10000

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
