package upstream_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/upstream"
)

// front is the gateway's listener in miniature: a TLS server whose handler
// calls Forward and writes the problem document on failure, as the server
// package does.
type front struct {
	srv    *httptest.Server
	client *http.Client
	mu     sync.Mutex
	seen   http.Header // the inbound request's headers, as the gateway got them
	res    upstream.Result
}

func newFront(t testing.TB, u *upstream.Upstream) *front {
	t.Helper()
	f := &front{}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var res upstream.Result
		err := u.Forward(w, r, &res)
		f.mu.Lock()
		f.seen, f.res = r.Header.Clone(), res
		f.mu.Unlock()
		if err != nil {
			var pe *problem.Error
			if !errors.As(err, &pe) {
				pe = problem.Wrap(problem.CodeInternal, "internal", err)
			}
			problem.Write(w, pe, "req-1")
		}
	}))
	t.Cleanup(f.srv.Close)
	f.client = f.srv.Client()
	f.client.Timeout = testTimeout
	return f
}

func (f *front) get(t testing.TB, path string, h http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestForwardEndToEnd(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	cases := []struct {
		name      string
		opts      []backendOpt
		wantProto int
	}{
		{"HTTP/1.1 backend", nil, 1},
		{"HTTP/2 used when the backend offers h2", []backendOpt{http2()}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newBackend(t, p, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Path", r.URL.RequestURI())
				fmt.Fprintf(w, "proto=%d", r.ProtoMajor)
			}, tc.opts...)
			f := newFront(t, newUpstream(t, gatewayOptions(p, b.url)))
			resp, body := f.get(t, "/orders/42?x=1", nil)
			if resp.StatusCode != http.StatusOK || body != fmt.Sprintf("proto=%d", tc.wantProto) {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
			if got := resp.Header.Get("X-Path"); got != "/orders/42?x=1" {
				t.Errorf("backend saw %q", got)
			}
			_, cn, proto, _ := b.seen()
			if cn != "gateway" || proto != tc.wantProto {
				t.Errorf("backend saw client CN %q over HTTP/%d, want gateway over HTTP/%d", cn, proto, tc.wantProto)
			}
			f.mu.Lock()
			res := f.res
			f.mu.Unlock()
			if res.Status != 200 || res.BytesOut != int64(len(body)) || res.Duration <= 0 || res.Target != b.url.String() {
				t.Errorf("result %+v", res)
			}
		})
	}
}

func TestForwardProblemReachesClient(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	o := gatewayOptions(p, closedPort(t))
	f := newFront(t, newUpstream(t, o))
	resp, body := f.get(t, "/", nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, `"code":"upstream.connect_refused"`) ||
		resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("got %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

func TestTargetBasePath(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	b := newBackend(t, p, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, r.URL.EscapedPath()) })
	cases := []struct{ base, path, want string }{
		{"", "/orders", "/orders"},
		{"/", "/orders", "/orders"},
		{"/v1", "/orders", "/v1/orders"},
		{"/v1/", "/orders", "/v1/orders"},
		{"/v1", "/", "/v1/"},
		{"/v1", "/a%2Fb", "/v1/a%2Fb"},
	}
	for _, tc := range cases {
		t.Run(tc.base+" + "+tc.path, func(t *testing.T) {
			t.Parallel()
			target := *b.url
			target.Path = tc.base
			f := newFront(t, newUpstream(t, gatewayOptions(p, &target)))
			if _, body := f.get(t, tc.path, nil); body != tc.want {
				t.Fatalf("backend saw %q, want %q", body, tc.want)
			}
		})
	}
}

func TestRoundRobin(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	a := newBackend(t, p, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "a") })
	b := newBackend(t, p, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "b") })
	f := newFront(t, newUpstream(t, gatewayOptions(p, a.url, b.url)))
	var got strings.Builder
	for range 6 {
		_, body := f.get(t, "/", nil)
		got.WriteString(body)
	}
	if got.String() != "ababab" {
		t.Fatalf("targets in order %q, want ababab", got.String())
	}
}

func TestForwardedHeaders(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	b := newBackend(t, p, func(w http.ResponseWriter, r *http.Request) {
		for _, k := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
			"X-Foo", "Keep-Alive", "Te", "Upgrade", "Proxy-Connection", "X-Keep"} {
			w.Header()["Seen-"+k] = r.Header.Values(k)
		}
		w.Header().Set("Seen-Host", r.Host)
	})
	f := newFront(t, newUpstream(t, gatewayOptions(p, b.url)))
	spoofed := http.Header{
		"Forwarded":         {"for=6.6.6.6;proto=http"},
		"X-Forwarded-For":   {"6.6.6.6"},
		"X-Forwarded-Host":  {"evil.example"},
		"X-Forwarded-Proto": {"http"},
		"Connection":        {"X-Foo"},
		"X-Foo":             {"hop"},
		"Keep-Alive":        {"timeout=5"},
		"Te":                {"gzip"},
		"Upgrade":           {"websocket"},
		"Proxy-Connection":  {"keep-alive"},
		"X-Keep":            {"end-to-end"},
	}
	resp, _ := f.get(t, "/", spoofed)
	f.mu.Lock()
	inbound := f.seen
	f.mu.Unlock()
	if inbound.Get("X-Foo") != "hop" || inbound.Get("X-Forwarded-For") != "6.6.6.6" {
		t.Fatalf("the gateway did not receive the spoofed headers, so the test proves nothing: %v", inbound)
	}
	frontHost := strings.TrimPrefix(f.srv.URL, "https://")
	want := map[string]string{
		"Forwarded":         fmt.Sprintf(`for=127.0.0.1;host="%s";proto=https`, frontHost),
		"X-Forwarded-For":   "127.0.0.1",
		"X-Forwarded-Host":  frontHost,
		"X-Forwarded-Proto": "https",
		"X-Keep":            "end-to-end",
		"Host":              b.url.Host,
		// Hop-by-hop headers end at the gateway (RFC 9110 §7.6.1).
		"X-Foo": "", "Keep-Alive": "", "Te": "", "Upgrade": "", "Proxy-Connection": "",
	}
	for k, v := range want {
		got := resp.Header.Values("Seen-" + k)
		if strings.Join(got, ",") != v {
			t.Errorf("backend saw %s = %q, want %q", k, got, v)
		}
	}
}

// TestStreaming proves bodies are not buffered either way: each side only
// sends its second part after the other side received the first.
func TestStreaming(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	for _, tc := range []struct {
		name string
		opts []backendOpt
	}{{"HTTP/1.1", nil}, {"HTTP/2", []backendOpt{http2()}}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			gotFirst := make(chan string, 1)
			sendSecond := make(chan struct{})
			b := newBackend(t, p, func(w http.ResponseWriter, r *http.Request) {
				first := make([]byte, 6)
				if _, err := io.ReadFull(r.Body, first); err != nil {
					t.Errorf("backend reading first part: %v", err)
					return
				}
				gotFirst <- string(first)
				rest, err := io.ReadAll(r.Body)
				if err != nil {
					t.Errorf("backend reading rest: %v", err)
					return
				}
				w.Header().Set("Content-Type", "text/event-stream")
				fmt.Fprintf(w, "data: got %s%s\n\n", first, rest)
				http.NewResponseController(w).Flush()
				select {
				case <-sendSecond:
				case <-time.After(testTimeout):
					t.Error("test never asked for the second event")
				}
				io.WriteString(w, "data: bye\n\n")
			}, tc.opts...)
			f := newFront(t, newUpstream(t, gatewayOptions(p, b.url)))

			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			pr, pw := io.Pipe()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.srv.URL+"/stream", pr)
			type result struct {
				resp *http.Response
				err  error
			}
			done := make(chan result, 1)
			go func() {
				resp, err := f.client.Do(req)
				done <- result{resp, err}
			}()
			if _, err := io.WriteString(pw, "first "); err != nil {
				t.Fatal(err)
			}
			select {
			case s := <-gotFirst:
				if s != "first " {
					t.Fatalf("backend got %q", s)
				}
			case <-ctx.Done():
				t.Fatal("request body was not streamed: the backend never got the first part")
			}
			io.WriteString(pw, "second")
			pw.Close()
			var r result
			select {
			case r = <-done:
			case <-ctx.Done():
				t.Fatal("no response")
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			defer r.resp.Body.Close()
			br := bufio.NewReader(r.resp.Body)
			line, err := br.ReadString('\n')
			if err != nil || line != "data: got first second\n" {
				t.Fatalf("first event %q, %v: response was not streamed", line, err)
			}
			close(sendSecond)
			rest, err := io.ReadAll(br)
			if err != nil || string(rest) != "\ndata: bye\n\n" {
				t.Fatalf("rest %q, %v", rest, err)
			}
		})
	}
}

func TestConnectionReuse(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	for _, tc := range []struct {
		name string
		opts []backendOpt
	}{{"HTTP/1.1", nil}, {"HTTP/2", []backendOpt{http2()}}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newBackend(t, p, nil, tc.opts...)
			u := newUpstream(t, gatewayOptions(p, b.url))
			for range 20 {
				if status, pe, _ := forward(t, u); status != http.StatusOK {
					t.Fatalf("status %d, %v", status, pe)
				}
			}
			sni, _, _, n := b.seen()
			if c := b.conns.Load(); c != 1 || len(sni) != 1 || n != 20 {
				t.Fatalf("%d requests used %d connections and %d handshakes, want 20, 1 and 1", n, c, len(sni))
			}
		})
	}
}

func TestClientCancel(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	started := make(chan struct{}, 1)
	b := newBackend(t, p, func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-time.After(testTimeout):
		}
	})
	u := newUpstream(t, gatewayOptions(p, b.url))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-started:
		case <-time.After(testTimeout):
		}
		cancel()
	}()
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, "https://gateway.example/", nil)
	w := newStrictWriter()
	err := u.Forward(w, r, nil)
	var pe *problem.Error
	if !errors.As(err, &pe) || pe.Code != problem.CodeRequestCanceled || w.wrote {
		t.Fatalf("got %v (wrote %v), want %s", err, w.wrote, problem.CodeRequestCanceled)
	}
}

// TestUpgrade checks that a protocol upgrade (WebSocket style) keeps its
// Upgrade header and becomes a bidirectional stream, even to a backend that
// offers HTTP/2 (net/http dials an HTTP/1.1 connection for a WebSocket
// upgrade; other upgrade protocols cannot cross an HTTP/2 connection).
func TestUpgrade(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	b := newBackend(t, p, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "upgrade missing", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(testTimeout))
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo " + line)
		brw.Flush()
	}, http2())
	f := newFront(t, newUpstream(t, gatewayOptions(p, b.url)))

	conn, err := tls.Dial("tcp", strings.TrimPrefix(f.srv.URL, "https://"), f.client.Transport.(*http.Transport).TLSClientConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	io.WriteString(conn, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "echo ping\n" {
		t.Fatalf("got %q, %v", line, err)
	}
	conn.Close()
	deadline := time.Now().Add(testTimeout)
	for {
		f.mu.Lock()
		status := f.res.Status
		f.mu.Unlock()
		if status == http.StatusSwitchingProtocols {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Result.Status = %d, want 101", status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
