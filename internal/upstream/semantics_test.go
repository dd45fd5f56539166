package upstream_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/problem"
)

// These tests pin what the forwarder does with the parts of HTTP that the
// common request does not exercise: trailers, informational responses,
// hop-by-hop response headers, flushing, query cleaning, request framing and
// failures after the response started. Each runs against an HTTP/1.1 and an
// HTTP/2 backend where the protocol matters.

var protocols = []struct {
	name string
	opts []backendOpt
}{{"HTTP/1.1", nil}, {"HTTP/2", []backendOpt{http2()}}}

// TestResponseTrailers runs over HTTP/1.1 only: an HTTP/2 upstream that
// also sends Content-Length (Go's server does for short bodies) has its
// trailers dropped, because the client response then carries that length
// and cannot be chunked. That is net/http/httputil's behaviour too.
func TestResponseTrailers(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	for _, pc := range protocols[:1] {
		t.Run(pc.name, func(t *testing.T) {
			t.Parallel()
			b := newBackend(t, p, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Trailer", "X-Checksum")
				io.WriteString(w, "body")
				w.Header().Set("X-Checksum", "abc")
				// Not announced: sent with the trailer prefix.
				w.Header().Set(http.TrailerPrefix+"X-Late", "late")
			}, pc.opts...)
			f := newFront(t, newUpstream(t, gatewayOptions(p, b.url)))
			req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/t", nil)
			resp, err := f.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(body) != "body" {
				t.Fatalf("body %q, %v", body, err)
			}
			if got := resp.Trailer.Get("X-Checksum"); got != "abc" {
				t.Errorf("announced trailer %q, want abc (trailers %v)", got, resp.Trailer)
			}
			if got := resp.Trailer.Get("X-Late"); got != "late" {
				t.Errorf("unannounced trailer %q, want late (trailers %v)", got, resp.Trailer)
			}
			if resp.ContentLength != -1 {
				t.Errorf("a response with trailers must be chunked, got Content-Length %d", resp.ContentLength)
			}
		})
	}
}

func TestInformationalResponses(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	for _, pc := range protocols {
		t.Run(pc.name, func(t *testing.T) {
			t.Parallel()
			b := newBackend(t, p, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Link", "</style.css>; rel=preload")
				w.WriteHeader(http.StatusEarlyHints)
				w.Header().Del("Link")
				w.Header().Set("X-Final", "yes")
				io.WriteString(w, "done")
			}, pc.opts...)
			f := newFront(t, newUpstream(t, gatewayOptions(p, b.url)))
			var mu sync.Mutex
			var got []string
			ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
				Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
					mu.Lock()
					got = append(got, strconv.Itoa(code)+" "+h.Get("Link"))
					mu.Unlock()
					return nil
				},
			})
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+"/hints", nil)
			resp, err := f.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "done" || resp.Header.Get("X-Final") != "yes" {
				t.Fatalf("final response %d %q %v", resp.StatusCode, body, resp.Header)
			}
			if resp.Header.Get("Link") != "" {
				t.Errorf("the 103's header leaked into the final response: %v", resp.Header)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 1 || got[0] != "103 </style.css>; rel=preload" {
				t.Fatalf("client saw informational responses %q, want one 103 with the Link header", got)
			}
			f.mu.Lock()
			status := f.res.Status
			f.mu.Unlock()
			if status != 200 {
				t.Errorf("Result.Status = %d, want 200 (the final status, not the 103)", status)
			}
		})
	}
}

func TestResponseHopByHopHeaders(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	b := newBackend(t, p, func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Hop")
		h.Set("X-Hop", "1")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("Upgrade", "h2c")
		h.Set("X-End", "kept")
		h.Add("X-Multi", "a")
		h.Add("X-Multi", "b")
		io.WriteString(w, "ok")
	})
	f := newFront(t, newUpstream(t, gatewayOptions(p, b.url)))
	resp, body := f.get(t, "/", nil)
	if resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	for _, k := range []string{"X-Hop", "Keep-Alive", "Proxy-Authenticate", "Upgrade"} {
		if v := resp.Header.Values(k); len(v) > 0 {
			t.Errorf("hop-by-hop response header %s = %q reached the client", k, v)
		}
	}
	if resp.Header.Get("X-End") != "kept" || strings.Join(resp.Header.Values("X-Multi"), ",") != "a,b" {
		t.Errorf("end-to-end headers lost: %v", resp.Header)
	}
}

// TestChunkedResponseFlushed proves that a response of unknown length is
// streamed: the client gets the headers and the first part before the
// backend writes the rest.
func TestChunkedResponseFlushed(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	for _, pc := range protocols {
		t.Run(pc.name, func(t *testing.T) {
			t.Parallel()
			headersOnly, part := make(chan struct{}), make(chan struct{})
			b := newBackend(t, p, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusOK)
				http.NewResponseController(w).Flush()
				select {
				case <-headersOnly:
				case <-time.After(testTimeout):
					return
				}
				io.WriteString(w, "[1,")
				http.NewResponseController(w).Flush()
				select {
				case <-part:
				case <-time.After(testTimeout):
					return
				}
				io.WriteString(w, "2]")
			}, pc.opts...)
			f := newFront(t, newUpstream(t, gatewayOptions(p, b.url)))
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+"/s", nil)
			resp, err := f.client.Do(req)
			if err != nil {
				t.Fatalf("headers were not forwarded before the body: %v", err)
			}
			defer resp.Body.Close()
			close(headersOnly)
			first := make([]byte, 3)
			if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "[1," {
				t.Fatalf("first part %q, %v: response was not streamed", first, err)
			}
			close(part)
			rest, err := io.ReadAll(resp.Body)
			if err != nil || string(rest) != "2]" {
				t.Fatalf("rest %q, %v", rest, err)
			}
		})
	}
}

func TestQueryCleaning(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	b := newBackend(t, p, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.RawQuery) })
	f := newFront(t, newUpstream(t, gatewayOptions(p, b.url)))
	cases := []struct{ in, want string }{
		{"", ""},
		{"a=1&b=2", "a=1&b=2"},
		{"b=2&a=1&a=0", "b=2&a=1&a=0"},
		{"q=caf%C3%A9&x=%2F", "q=caf%C3%A9&x=%2F"},
		// Unparsable queries are re-encoded, dropping what cannot be
		// parsed, so the upstream and the gateway agree on the parameters.
		{"x=1&bad=a;b", "x=1"},
		{"z=%zz&y=2", "y=2"},
	}
	for _, tc := range cases {
		path := "/q"
		if tc.in != "" {
			path += "?" + tc.in
		}
		if _, body := f.get(t, path, nil); body != tc.want {
			t.Errorf("query %q reached the backend as %q, want %q", tc.in, body, tc.want)
		}
	}
}

func TestRequestHeadersAndFraming(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	for _, pc := range protocols {
		t.Run(pc.name, func(t *testing.T) {
			t.Parallel()
			b := newBackend(t, p, func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				fmt.Fprintf(w, "ua=%q te=%q len=%d body=%q te-chunked=%v", r.Header.Values("User-Agent"), r.Header.Get("Te"),
					r.ContentLength, body, len(r.TransferEncoding) > 0)
			}, pc.opts...)
			f := newFront(t, newUpstream(t, gatewayOptions(p, b.url)))
			do := func(method, ua, te string, body io.Reader) string {
				t.Helper()
				req, _ := http.NewRequest(method, f.srv.URL+"/h", body)
				if ua != "" {
					req.Header.Set("User-Agent", ua)
				} else {
					req.Header["User-Agent"] = []string{""} // the client sends none
				}
				if te != "" {
					req.Header.Set("Te", te)
				}
				resp, err := f.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				got, _ := io.ReadAll(resp.Body)
				return string(got)
			}
			if got := do(http.MethodGet, "", "", nil); got != `ua=[] te="" len=0 body="" te-chunked=false` {
				t.Errorf("no User-Agent: backend saw %s", got)
			}
			if got := do(http.MethodGet, "client/1", "trailers, deflate", nil); got != `ua=["client/1"] te="trailers" len=0 body="" te-chunked=false` {
				t.Errorf("User-Agent and TE: backend saw %s", got)
			}
			if got := do(http.MethodPost, "c", "", strings.NewReader("0123456789")); got != `ua=["c"] te="" len=10 body="0123456789" te-chunked=false` {
				t.Errorf("fixed-length body: backend saw %s", got)
			}
			if got := do(http.MethodPost, "c", "", io.MultiReader(strings.NewReader("ab"), strings.NewReader("cd"))); !strings.Contains(got, `body="abcd"`) {
				t.Errorf("body of unknown length: backend saw %s", got)
			}
		})
	}
}

// TestBodyFailureAbortsResponse: once the response has started, a broken
// upstream body cannot become a problem document; the client must see a
// truncated response, not a complete-looking one.
func TestBodyFailureAbortsResponse(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	b := newBackend(t, p, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "only ten!!")
		http.NewResponseController(w).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	f := newFront(t, newUpstream(t, gatewayOptions(p, b.url)))
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/broken", nil)
	resp, err := f.client.Do(req)
	if err != nil {
		return // the connection was cut before the buffered headers went out
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("client read a complete body %q after the upstream failed mid-body", body)
	}
	if resp.StatusCode != 200 {
		t.Errorf("status %d, want the upstream's 200", resp.StatusCode)
	}
}

// TestUnrequestedSwitchingProtocols: a 101 to a request that asked for no
// upgrade is a protocol error, not a hijacked connection.
func TestUnrequestedSwitchingProtocols(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	b := newBackend(t, p, func(w http.ResponseWriter, _ *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n")
		brw.Flush()
		_ = conn.SetReadDeadline(time.Now().Add(testTimeout))
		_, _ = bufio.NewReader(conn).ReadByte()
	})
	u := newUpstream(t, gatewayOptions(p, b.url))
	status, pe, _ := forward(t, u)
	if status != 0 || pe == nil || pe.Code != problem.CodeUpstreamProtocol {
		t.Fatalf("status %d, problem %v; want %s", status, pe, problem.CodeUpstreamProtocol)
	}
	if pe.Cause == nil || !strings.Contains(pe.Cause.Error(), "switch protocol") {
		t.Errorf("cause %v", pe.Cause)
	}
}

// TestHeadAndNoContent: responses without a body keep their framing headers.
func TestHeadAndNoContent(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	for _, pc := range protocols {
		t.Run(pc.name, func(t *testing.T) {
			t.Parallel()
			b := newBackend(t, p, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/empty" {
					w.WriteHeader(http.StatusNoContent)
					return
				}
				w.Header().Set("Content-Length", "5")
				if r.Method != http.MethodHead {
					io.WriteString(w, "hello")
				}
			}, pc.opts...)
			f := newFront(t, newUpstream(t, gatewayOptions(p, b.url)))
			req, _ := http.NewRequest(http.MethodHead, f.srv.URL+"/x", nil)
			resp, err := f.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.ContentLength != 5 {
				t.Errorf("HEAD: %d, Content-Length %d, want 200 and 5", resp.StatusCode, resp.ContentLength)
			}
			resp, body := f.get(t, "/empty", nil)
			if resp.StatusCode != http.StatusNoContent || body != "" {
				t.Errorf("204: got %d %q", resp.StatusCode, body)
			}
		})
	}
}
