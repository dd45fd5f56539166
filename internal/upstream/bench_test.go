package upstream_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/portcullis/portcullis/internal/upstream"
)

// discardWriter is a ResponseWriter that keeps nothing, so the benchmark
// measures Forward, the transport and the loopback backend, not a recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkForward measures one proxied GET with a 16-byte response through
// a pooled mutual-TLS connection to a loopback backend (HTTP/1.1 and
// HTTP/2), serially and with parallel callers. Handshakes happen once, in
// the warm-up request, so allocations are the per-request cost of
// Forward, ReverseProxy and the transport.
func BenchmarkForward(b *testing.B) {
	p := newPKI(b)
	for _, bc := range []struct {
		name string
		opts []backendOpt
	}{{"h1", nil}, {"h2", []backendOpt{http2()}}} {
		be := newBackend(b, p, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hello from api-a") }, bc.opts...)
		u := newUpstream(b, gatewayOptions(p, be.url))
		run := func(pb interface{ Next() bool }) {
			w := &discardWriter{h: make(http.Header)}
			r, err := http.NewRequest(http.MethodGet, "https://gateway.example/orders", nil)
			if err != nil {
				b.Error(err)
				return
			}
			r.RemoteAddr = "127.0.0.1:40000"
			var res upstream.Result
			for pb.Next() {
				clear(w.h)
				if err := u.Forward(w, r, &res); err != nil {
					// Error, not Fatal: this may run on a RunParallel goroutine.
					b.Error(err)
					return
				}
			}
		}
		warm := 1
		run(countdown{&warm})
		b.Run(bc.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			n := b.N
			b.ResetTimer()
			run(countdown{&n})
		})
		b.Run(bc.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) { run(pb) })
		})
	}
}

// countdown gives a serial loop the Next method testing.PB has.
type countdown struct{ n *int }

func (c countdown) Next() bool {
	if *c.n <= 0 {
		return false
	}
	*c.n--
	return true
}
