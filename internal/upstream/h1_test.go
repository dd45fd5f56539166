package upstream_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/upstream"
)

// These tests cover the connection handling of the gateway's HTTP/1.1
// client (bodyless requests to HTTP/1.1 upstreams), where it differs from
// net/http's Transport in mechanism but must not in behaviour: pooled
// connections the upstream closed, unasked bytes, retries, idle timeout,
// concurrency, cancellation and the Transport's refusals.

// rawBackend is a TLS listener that requires the gateway's certificate and
// lets each test script the bytes of every connection. serve gets the
// connection's index (from 0) and the buffered reader of the connection.
type rawBackend struct {
	ln    net.Listener
	url   string
	conns atomic.Int32
}

func newRawBackend(t *testing.T, p *pki, serve func(i int, c net.Conn, br *bufio.Reader)) *rawBackend {
	t.Helper()
	cfg := &tls.Config{
		Certificates: []tls.Certificate{p.backend.TLS()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.trusted.Pool(),
		NextProtos:   []string{"http/1.1"},
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	b := &rawBackend{ln: ln, url: "https://" + ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			i := int(b.conns.Add(1) - 1)
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(testTimeout))
				serve(i, c, bufio.NewReader(c))
			})
		}
	})
	return b
}

// readRequest reads one request head from br, or returns nil.
func readRequest(br *bufio.Reader) *http.Request {
	r, err := http.ReadRequest(br)
	if err != nil {
		return nil
	}
	return r
}

func okResponse(body string) string {
	return "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// forwardMethod sends one bodyless request through u and returns the
// status (0 on failure), the body and the problem.
func forwardMethod(t *testing.T, u *upstream.Upstream, method string) (int, string, *problem.Error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	r := httptest.NewRequestWithContext(ctx, method, "https://gateway.example/x", nil)
	w := httptest.NewRecorder()
	if err := u.Forward(w, r, nil); err != nil {
		pe, _ := err.(*problem.Error)
		return 0, "", pe
	}
	return w.Code, w.Body.String(), nil
}

// TestPooledConnectionClosedByUpstream: an idle connection the upstream
// closed (keep-alive timeout) is not used, for any method, and the request
// goes out on a new connection.
func TestPooledConnectionClosedByUpstream(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	b := newRawBackend(t, p, func(i int, c net.Conn, br *bufio.Reader) {
		if readRequest(br) == nil {
			return
		}
		io.WriteString(c, okResponse("conn "+strconv.Itoa(i)))
		// Then close, as a server whose keep-alive timeout passed.
	})
	u := newUpstream(t, gatewayOptions(p, mustURL(t, b.url)))
	for i, method := range []string{http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodGet} {
		if i > 0 {
			time.Sleep(50 * time.Millisecond) // let the close arrive
		}
		status, body, pe := forwardMethod(t, u, method)
		if status != 200 || body != "conn "+strconv.Itoa(i) {
			t.Fatalf("%s #%d: status %d body %q problem %v", method, i, status, body, pe)
		}
	}
}

// TestUnaskedBytesCondemnConnection: bytes an upstream sends beyond a
// response, with it or later, must never be read as the next response.
func TestUnaskedBytesCondemnConnection(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	const smuggled = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nforged!"
	b := newRawBackend(t, p, func(i int, c net.Conn, br *bufio.Reader) {
		for n := 0; ; n++ {
			if readRequest(br) == nil {
				return
			}
			switch i {
			case 0: // extra bytes in the same write
				io.WriteString(c, okResponse("first")+smuggled)
			case 1: // extra bytes a little later
				io.WriteString(c, okResponse("second"))
				time.Sleep(30 * time.Millisecond)
				io.WriteString(c, smuggled)
			default:
				io.WriteString(c, okResponse("clean "+strconv.Itoa(n)))
			}
		}
	})
	u := newUpstream(t, gatewayOptions(p, mustURL(t, b.url)))
	want := []string{"first", "second", "clean 0", "clean 1"}
	for i, w := range want {
		if i == 2 {
			time.Sleep(100 * time.Millisecond)
		}
		status, body, pe := forwardMethod(t, u, http.MethodGet)
		if status != 200 || body != w {
			t.Fatalf("request %d: status %d body %q (want %q) problem %v", i, status, body, w, pe)
		}
	}
	if n := b.conns.Load(); n != 3 {
		t.Fatalf("%d connections, want 3 (the two tainted ones dropped)", n)
	}
}

// TestRetryOnReusedConnection: when a reused connection fails before any
// response byte (the upstream closed it as the request went out), an
// idempotent request is sent again on a new connection and a
// non-idempotent one fails, as with net/http's Transport.
func TestRetryOnReusedConnection(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	b := newRawBackend(t, p, func(i int, c net.Conn, br *bufio.Reader) {
		for n := 0; ; n++ {
			if readRequest(br) == nil {
				return
			}
			if n == 1 {
				return // the second request on every connection: hang up
			}
			io.WriteString(c, okResponse("ok"))
		}
	})
	cases := []struct {
		method string
		key    bool
		ok     bool
	}{
		{http.MethodGet, false, true},
		{http.MethodHead, false, true},
		{http.MethodDelete, true, true}, // Idempotency-Key makes it replayable
		{http.MethodPost, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.method, func(t *testing.T) {
			u := newUpstream(t, gatewayOptions(p, mustURL(t, b.url)))
			send := func() (int, *problem.Error) {
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				defer cancel()
				r := httptest.NewRequestWithContext(ctx, tc.method, "https://gateway.example/x", nil)
				if tc.key {
					r.Header.Set("Idempotency-Key", "k1")
				}
				w := httptest.NewRecorder()
				if err := u.Forward(w, r, nil); err != nil {
					pe, _ := err.(*problem.Error)
					return 0, pe
				}
				return w.Code, nil
			}
			if status, pe := send(); status != 200 {
				t.Fatalf("first request: %d %v", status, pe)
			}
			status, pe := send() // on the pooled connection, which hangs up
			if tc.ok && status != 200 {
				t.Fatalf("replayable request was not retried: %d %v", status, pe)
			}
			if !tc.ok && (status != 0 || pe == nil || pe.HTTPStatus() != http.StatusBadGateway) {
				t.Fatalf("non-idempotent request: status %d problem %v, want a 502", status, pe)
			}
		})
	}
}

// TestIdleConnectionsExpire: pooled connections are closed after the idle
// timeout.
func TestIdleConnectionsExpire(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	b := newBackend(t, p, nil)
	ps := upstream.NewPools(upstream.PoolsOptions{})
	o := gatewayOptions(p, b.url)
	o.IdleConnTimeout = 200 * time.Millisecond
	u := newPooled(t, ps, o)
	mustOK(t, u)
	if c := ps.Stats().Conns; c != 1 {
		t.Fatalf("%d connections after a request, want 1", c)
	}
	eventually(t, "idle connection closed", func() bool { return ps.Stats().Conns == 0 })
	mustOK(t, u) // and a new one is made
}

// TestConcurrentRequestsKeepTheirResponses: many requests in parallel over
// pooled connections each get their own response.
func TestConcurrentRequestsKeepTheirResponses(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	b := newBackend(t, p, func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Id")
		if strings.HasSuffix(id, "0") {
			time.Sleep(time.Millisecond) // mix the order up
		}
		w.Header().Set("X-Echo", id)
		io.WriteString(w, "body-"+id)
	})
	o := gatewayOptions(p, b.url)
	o.MaxIdleConnsPerHost = 4 // fewer idle slots than callers: some close
	u := newUpstream(t, o)
	var wg sync.WaitGroup
	var failures atomic.Int32
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				id := fmt.Sprintf("%d-%d", g, i)
				r := httptest.NewRequest(http.MethodGet, "https://gateway.example/x", nil)
				r.Header.Set("X-Id", id)
				w := httptest.NewRecorder()
				if err := u.Forward(w, r, nil); err != nil || w.Header().Get("X-Echo") != id || w.Body.String() != "body-"+id {
					if failures.Add(1) == 1 {
						t.Errorf("request %s: err %v, echo %q, body %q", id, err, w.Header().Get("X-Echo"), w.Body.String())
					}
				}
			}
		})
	}
	wg.Wait()
}

// TestCancelledDuringBody: a client that goes away while the response body
// streams ends the upstream exchange: the upstream sees its connection
// closed.
func TestCancelledDuringBody(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	upstreamSawClose := make(chan struct{})
	b := newBackend(t, p, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "part")
		http.NewResponseController(w).Flush()
		select {
		case <-r.Context().Done():
			close(upstreamSawClose)
		case <-time.After(testTimeout):
		}
	})
	f := newFront(t, newUpstream(t, gatewayOptions(p, b.url)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+"/stream", nil)
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part := make([]byte, 4)
	if _, err := io.ReadFull(resp.Body, part); err != nil || string(part) != "part" {
		t.Fatalf("first part %q, %v", part, err)
	}
	cancel()
	resp.Body.Close()
	select {
	case <-upstreamSawClose:
	case <-time.After(testTimeout):
		t.Fatal("the upstream exchange was not ended when the client went away")
	}
}

// TestRefusedHeaders: header names and values the Transport refuses are
// refused the same way by the HTTP/1.1 client, before anything is sent.
func TestRefusedHeaders(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	b := newBackend(t, p, nil)
	u := newUpstream(t, gatewayOptions(p, b.url))
	for _, tc := range []struct {
		name, key, value, want string
		body                   bool
	}{
		{"control character in a value", "X-Rule", "a\x01b", `invalid header field value for "X-Rule"`, false},
		{"same with a body (Transport)", "X-Rule", "a\x01b", `invalid header field value for "X-Rule"`, true},
		{"name not a token", "X Rule", "v", `invalid header field name "X Rule"`, false},
		{"same with a body (Transport)", "X Rule", "v", `invalid header field name "X Rule"`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body {
				body = strings.NewReader("data")
			}
			r := httptest.NewRequest(http.MethodPost, "https://gateway.example/x", body)
			r.Header[tc.key] = []string{tc.value}
			err := u.Forward(newStrictWriter(), r, nil)
			pe, ok := err.(*problem.Error)
			if !ok || pe.Code != problem.CodeUpstreamProtocol || pe.Cause == nil || !strings.Contains(pe.Cause.Error(), tc.want) {
				t.Fatalf("got %v (cause %v), want %s with %q", err, causeOf(pe), problem.CodeUpstreamProtocol, tc.want)
			}
			if strings.Contains(fmt.Sprint(pe.Log...), "a\x01b") {
				t.Errorf("the refused value reached the log: %v", pe.Log)
			}
		})
	}
	if _, _, _, n := b.seen(); n != 0 {
		t.Fatalf("backend got %d requests, want none", n)
	}
}

func causeOf(pe *problem.Error) error {
	if pe == nil {
		return nil
	}
	return pe.Cause
}
