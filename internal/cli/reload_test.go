package cli_test

import (
	"io"
	"strings"
	"syscall"
	"testing"

	"github.com/portcullis/portcullis/internal/testpki"
)

// TestReloadKeepsUpstreamConnections: reloads that change nothing about an
// API's upstream keep the gateway's connection to the backend (no new TLS
// handshake there); a reload that rotates the upstream client certificate
// makes the next request arrive over a new connection presenting the new
// certificate, and the old connection is closed.
func TestReloadKeepsUpstreamConnections(t *testing.T) {
	const reloads = 5
	p := newPKI(t)
	b := newBackend(t, p)
	cfgFile := writeConfig(t, p.dir, storyAConfig(p, b, ""))
	// Reloads come from SIGHUP only, so each one is counted exactly.
	g := startGateway(t, cfgFile, "PORTCULLIS_NO_WATCH=true")
	c := clientFor(p)
	defer c.CloseIdleConnections()
	get := func(wantBody string) string {
		t.Helper()
		resp, err := c.Get("https://" + g.addr + "/a/x")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != wantBody {
			t.Fatalf("got %s %q, want 200 %q", resp.Status, body, wantBody)
		}
		return resp.Header.Get("X-Backend-Peer")
	}
	reload := func(n int) {
		t.Helper()
		if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return strings.Count(g.stderr.String(), "configuration reloaded") >= n }, g.stderr)
	}

	get("hello /x")
	get("hello /x")
	for i := 1; i <= reloads; i++ {
		// Toggling strip_prefix shows that each reload took effect.
		cfg, want := storyAConfig(p, b, ""), "hello /x"
		if i%2 == 1 {
			cfg, want = strings.Replace(cfg, "strip_prefix: true", "strip_prefix: false", 1), "hello /a/x"
		}
		writeConfig(t, p.dir, cfg)
		reload(i)
		get(want)
		get(want)
	}
	hs, open := b.conns()
	t.Logf("%d reloads that left the upstream alone: %d upstream handshake(s), %d connection(s) open", reloads, len(hs), open)
	if len(hs) != 1 || open != 1 {
		t.Fatalf("the backend saw handshakes %q and %d open connections, want one of each: the reloads replaced the upstream connection", hs, open)
	}

	next := p.ca.Issue(t, "gateway-2", testpki.Client())
	replaceFile(t, p.clientKey, next.KeyPEM())
	replaceFile(t, p.clientCert, next.CertPEM())
	writeConfig(t, p.dir, storyAConfig(p, b, ""))
	reload(reloads + 1)
	if peer := get("hello /x"); peer != "gateway-2" {
		t.Fatalf("after rotating the upstream client certificate the backend saw %q, want gateway-2", peer)
	}
	hs, _ = b.conns()
	if len(hs) != 2 || hs[1] != "gateway-2" {
		t.Fatalf("backend handshakes %q, want a second one presenting gateway-2", hs)
	}
	waitFor(t, func() bool { _, open := b.conns(); return open == 1 }, g.stderr)
	get("hello /x")
	if hs, _ = b.conns(); len(hs) != 2 {
		t.Fatalf("backend handshakes %q: the new connection was not kept", hs)
	}
}
