// Package upstream forwards requests from the gateway to an API's upstream
// targets over a pooled, per-API transport that carries the API's mutual-TLS
// settings: the gateway's client identity, the trust set, the server name
// sent and verified, the minimum TLS version and optional SPKI pins.
//
// An Upstream is built once per configuration snapshot (New) and only read on
// the request path (Forward), so it is safe for concurrent use. Every TLS
// setting is enforced by the one *tls.Config built in New; tests prove that
// each of them changes behaviour. Failures are returned to the caller as a
// *problem.Error whose log attributes carry a tlsdiag.Diagnosis, and nothing
// is written to the client in that case.
//
// A Pools shares transports between the Upstreams of successive snapshots:
// a reload that changes nothing about an API's connections keeps them, and
// one that changes their TLS identity drains the old transport while its
// requests finish.
//
// The hot path (proxy.go, h1.go, h1wire.go) is built for CPU per request:
// the forwarder does what httputil.ReverseProxy did (hop-by-hop headers,
// X-Forwarded-*, Forwarded, trailers, informational responses, flushing)
// without deep-copying the request, and the common request (no body, no
// upgrade) to an HTTP/1.1 upstream is written and its response read on the
// caller's goroutine by the pool's own HTTP/1.1 client instead of the
// Transport's two goroutines per connection. HTTP/2 upstreams, request
// bodies and upgrades stay with net/http's Transport (upgrades with
// ReverseProxy), over connections dialled with the same settings.
package upstream
