package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/testpki"
	"github.com/portcullis/portcullis/internal/tlsdiag"
)

// handshakePKI is the cast of the client-hop failure matrix: the CA the
// listeners' certificates come from, the CA of client_trust, a foreign CA,
// and client certificates that are wrong in one way each.
type handshakePKI struct {
	gatewayCA, partners, foreign *testpki.CA
	good, unknown, expired       *testpki.Leaf
	notYet, serverOnly           *testpki.Leaf
	yaml                         string
}

func newHandshakePKI(t *testing.T) *handshakePKI {
	t.Helper()
	dir := t.TempDir()
	p := &handshakePKI{
		gatewayCA: testpki.NewCA(t, "gatewayCA"),
		partners:  testpki.NewCA(t, "partnersCA"),
		foreign:   testpki.NewCA(t, "rogueCA"),
	}
	lis := p.gatewayCA.Issue(t, "listener", testpki.Server(), testpki.DNS("localhost"), testpki.IP("127.0.0.1"))
	p.good = p.partners.Issue(t, "partner-app", testpki.Client())
	p.unknown = p.foreign.Issue(t, "rogue-app", testpki.Client())
	p.expired = p.partners.Issue(t, "old-app", testpki.Client(), testpki.Expired())
	p.notYet = p.partners.Issue(t, "future-app", testpki.Client(), testpki.NotYetValid())
	p.serverOnly = p.partners.Issue(t, "server-as-client", testpki.Server())
	lc, lk := lis.WriteFiles(t, dir, "lis")
	p.yaml = fmt.Sprintf(`
log: { access_log: false }
listeners:
  - name: strict
    address: "127.0.0.1:0"
    tls:
      client_certificates: require
      client_trust: [partners]
      certificates: [{ cert: %[1]s, key: %[2]s }]
  - name: modern
    address: "127.0.0.1:0"
    tls: { min_version: "1.3", certificates: [{ cert: %[1]s, key: %[2]s }] }
trust_stores:
  partners: { pem: %[3]s }
apis:
  - name: api-a
    match: { path_prefix: /a }
    upstream: { targets: [ "https://127.0.0.1:1" ], tls: { trust: partners } }
`, lc, lk, p.partners.WriteCA(t, dir, "partners"))
	return p
}

// tlsAttempt connects to addr with cfg, completes the handshake if it can
// and reads once, so a refusal the gateway sends after the client's side of
// a TLS 1.3 handshake is done still happens. It returns the client's error.
func tlsAttempt(t *testing.T, addr string, cfg *tls.Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := tls.Dialer{Config: cfg}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	return err
}

// TestClientHandshakeDiagnoses is the client→gateway failure matrix: each
// reason produced by a real misbehaving client on loopback, asserted on the
// warning's reason, the names and dates in its message, its fix, and the
// metric label.
func TestClientHandshakeDiagnoses(t *testing.T) {
	p := newHandshakePKI(t)
	// Sent whatever CA names the gateway asks for (a Go client with
	// Certificates would keep back a certificate from another CA).
	withCert := func(l *testpki.Leaf) *tls.Config {
		cert := l.TLS()
		return &tls.Config{RootCAs: p.gatewayCA.Pool(), ServerName: "localhost",
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }}
	}
	cases := []struct {
		name      string
		listener  string
		client    func(t *testing.T, addr string) error
		reason    string
		plain     []string
		fix       []string
		clientErr string // the TLS alert the client sees, unchanged by the diagnosis
	}{
		{
			name: "certificate from a CA outside client_trust", listener: "strict",
			client: func(t *testing.T, addr string) error { return tlsAttempt(t, addr, withCert(p.unknown)) },
			reason: tlsdiag.ReasonClientCertUnknownAuthority,
			plain:  []string{"CN=rogue-app", "issued by \"CN=rogueCA", "client_trust: partners", "subjects: CN=partnersCA"},
			fix:    []string{"CN=rogueCA", "issue the client a certificate from CN=partnersCA"}, clientErr: "unknown certificate authority",
		},
		{
			name: "expired certificate", listener: "strict",
			client: func(t *testing.T, addr string) error { return tlsAttempt(t, addr, withCert(p.expired)) },
			reason: tlsdiag.ReasonClientCertExpired,
			plain:  []string{"CN=old-app", "expired at " + p.expired.Cert.NotAfter.UTC().Format(time.RFC3339), "valid from " + p.expired.Cert.NotBefore.UTC().Format(time.RFC3339)},
			fix:    []string{"Renew", "CN=partnersCA"}, clientErr: "expired certificate",
		},
		{
			name: "certificate not yet valid", listener: "strict",
			client: func(t *testing.T, addr string) error { return tlsAttempt(t, addr, withCert(p.notYet)) },
			reason: tlsdiag.ReasonClientCertNotYetValid,
			plain:  []string{"CN=future-app", "not valid until " + p.notYet.Cert.NotBefore.UTC().Format(time.RFC3339)},
			fix:    []string{"clocks"},
		},
		{
			name: "no certificate while require", listener: "strict",
			client: func(t *testing.T, addr string) error {
				return tlsAttempt(t, addr, &tls.Config{RootCAs: p.gatewayCA.Pool(), ServerName: "localhost"})
			},
			reason: tlsdiag.ReasonClientCertRequired,
			plain:  []string{"sent no certificate", `listener "strict" requires one`, "CN=partnersCA"},
			fix:    []string{"--cert", "client_certificates: request"}, clientErr: "certificate required",
		},
		{
			name: "server certificate used as client certificate", listener: "strict",
			client: func(t *testing.T, addr string) error { return tlsAttempt(t, addr, withCert(p.serverOnly)) },
			reason: tlsdiag.ReasonClientCertWrongUsage,
			plain:  []string{"CN=server-as-client", "serverAuth", "clientAuth"},
			fix:    []string{"pki issue --client"},
		},
		{
			name: "client offering only TLS 1.0 and 1.1", listener: "strict",
			client: func(t *testing.T, addr string) error {
				return tlsAttempt(t, addr, &tls.Config{RootCAs: p.gatewayCA.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
			},
			reason: tlsdiag.ReasonProtocolVersion,
			plain:  []string{"offered only TLS 1.1, TLS 1.0", "accepts TLS 1.2 and later"},
			fix:    []string{"Enable TLS 1.2 or 1.3 in the client"}, clientErr: "protocol version",
		},
		{
			name: "TLS 1.2 client on a TLS 1.3 listener", listener: "modern",
			client: func(t *testing.T, addr string) error {
				return tlsAttempt(t, addr, &tls.Config{RootCAs: p.gatewayCA.Pool(), ServerName: "localhost", MaxVersion: tls.VersionTLS12})
			},
			reason: tlsdiag.ReasonProtocolVersion,
			plain:  []string{"offered only TLS 1.2", "accepts TLS 1.3 and later"},
			fix:    []string{"Enable TLS 1.3 in the client", `tls.min_version: "1.2"`},
		},
		{
			name: "no cipher suite in common", listener: "strict",
			client: func(t *testing.T, addr string) error {
				return tlsAttempt(t, addr, &tls.Config{RootCAs: p.gatewayCA.Pool(), ServerName: "localhost", MaxVersion: tls.VersionTLS12,
					CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}})
			},
			reason: tlsdiag.ReasonCipherMismatch,
			plain:  []string{"TLS_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDSA certificate"},
			fix:    []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}, clientErr: "handshake failure",
		},
		{
			name: "plain HTTP sent to the TLS port", listener: "modern",
			client: func(t *testing.T, addr string) error {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					return err
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				io.WriteString(c, "GET /a/x HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer s3cr3t-token\r\n\r\n")
				b, _ := io.ReadAll(c)
				if !strings.HasPrefix(string(b), "HTTP/1.0 400") {
					t.Errorf("plain HTTP got %q, want net/http's 400", b)
				}
				return nil
			},
			reason: tlsdiag.ReasonNotTLS,
			plain:  []string{"plain-HTTP request (GET …)", `listener "modern"`},
			fix:    []string{"https://", "http_redirect"},
		},
		{
			name: "SNI name no certificate covers", listener: "modern",
			client: func(t *testing.T, addr string) error {
				return tlsAttempt(t, addr, &tls.Config{RootCAs: p.gatewayCA.Pool(), ServerName: "shop.example.org"})
			},
			reason: tlsdiag.ReasonSNINotServed,
			plain:  []string{`"shop.example.org"`, "default certificate", "DNS:localhost", "bad certificate"},
			fix:    []string{`certificate for "shop.example.org"`, "server_names"},
		},
		{
			name: "client does not trust the gateway's CA", listener: "modern",
			client: func(t *testing.T, addr string) error {
				return tlsAttempt(t, addr, &tls.Config{RootCAs: p.foreign.Pool(), ServerName: "localhost"})
			},
			reason: tlsdiag.ReasonServerCertRejected,
			plain:  []string{`"CN=listener`, `issued by "CN=gatewayCA`, `for the name "localhost"`, "bad certificate"},
			fix:    []string{"CN=gatewayCA", "trusted root"},
		},
		{
			name: "no application protocol in common", listener: "modern",
			client: func(t *testing.T, addr string) error {
				return tlsAttempt(t, addr, &tls.Config{RootCAs: p.gatewayCA.Pool(), ServerName: "localhost", NextProtos: []string{"spdy/3"}})
			},
			reason: tlsdiag.ReasonALPNMismatch,
			plain:  []string{`"spdy/3"`, "h2, http/1.1"},
			fix:    []string{"ALPN"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := startGateway(t, p.yaml)
			err := tc.client(t, g.addr(tc.listener))
			if tc.clientErr != "" && (err == nil || !strings.Contains(err.Error(), tc.clientErr)) {
				t.Errorf("client error %v, want the TLS alert %q", err, tc.clientErr)
			}
			r := g.log.wait(t, "with reason "+tc.reason, func(r map[string]any) bool { return r["reason"] == tc.reason })
			if r["level"] != "WARN" || r["msg"] != "tls handshake failed" || r["hop"] != "client→gateway" || r["listener"] != tc.listener {
				t.Errorf("record %v: want a WARN \"tls handshake failed\" on hop client→gateway, listener %s", r, tc.listener)
			}
			if peer, _ := r["peer"].(string); !strings.HasPrefix(peer, "127.0.0.1:") {
				t.Errorf("peer %q", peer)
			}
			plain, _ := r["plain"].(string)
			for _, want := range tc.plain {
				if !strings.Contains(plain, want) {
					t.Errorf("plain lacks %q:\n%s", want, plain)
				}
			}
			fix, _ := r["fix"].(string)
			t.Logf("plain: %s\nfix: %s", plain, fix)
			for _, want := range tc.fix {
				if !strings.Contains(fix, want) {
					t.Errorf("fix lacks %q:\n%s", want, fix)
				}
			}
			want := fmt.Sprintf(`portcullis_tls_handshake_failures_total{hop="client→gateway",reason=%q} 1`, tc.reason)
			if m := g.metricsText(); !strings.Contains(m, want) {
				t.Errorf("metrics lack %s:\n%s", want, grepLines(m, "handshake"))
			}
			if strings.Contains(g.log.String(), "s3cr3t-token") {
				t.Error("a header of the plain-HTTP request reached the log")
			}
		})
	}
}

// TestClientHandshakeQuietAndRateLimited: a port check that connects and
// hangs up is counted but logged at debug level only, and a client failing
// the same way again within the interval is not warned about twice.
func TestClientHandshakeQuietAndRateLimited(t *testing.T) {
	p := newHandshakePKI(t)
	g := startGateway(t, p.yaml)
	addr := g.addr("strict")
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	r := g.log.wait(t, "for the closed connection", func(r map[string]any) bool { return r["reason"] == tlsdiag.ReasonClosedByClient })
	if r["level"] != "DEBUG" {
		t.Errorf("a connection closed during the handshake was logged at %v, want DEBUG", r["level"])
	}
	for range 3 {
		tlsAttempt(t, addr, &tls.Config{RootCAs: p.gatewayCA.Pool(), ServerName: "localhost"})
	}
	want := `portcullis_tls_handshake_failures_total{hop="client→gateway",reason="client_cert_required"} 3`
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(g.metricsText(), want) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if m := g.metricsText(); !strings.Contains(m, want) {
		t.Fatalf("metrics lack %s:\n%s", want, grepLines(m, "handshake"))
	}
	var warn, debug int
	for _, r := range g.log.records(t) {
		if r["reason"] != tlsdiag.ReasonClientCertRequired {
			continue
		}
		switch r["level"] {
		case "WARN":
			warn++
		case "DEBUG":
			debug++
		}
	}
	if warn != 1 || debug != 2 {
		t.Errorf("3 identical failures gave %d warnings and %d debug lines, want 1 and 2", warn, debug)
	}
}

// TestClientHandshakeInterop drives the failure matrix's version and
// plain-HTTP cases with openssl and curl, whose hellos differ from Go's.
func TestClientHandshakeInterop(t *testing.T) {
	p := newHandshakePKI(t)
	t.Run("openssl s_client -tls1_1", func(t *testing.T) {
		if _, err := exec.LookPath("openssl"); err != nil {
			t.Skip("openssl not installed")
		}
		g := startGateway(t, p.yaml)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// OpenSSL 3 sends TLS 1.1 only at security level 0.
		out, _ := exec.CommandContext(ctx, "openssl", "s_client", "-connect", g.addr("strict"), "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0").CombinedOutput()
		r := g.log.wait(t, "with reason protocol_version", func(r map[string]any) bool { return r["reason"] == tlsdiag.ReasonProtocolVersion })
		if plain, _ := r["plain"].(string); !strings.Contains(plain, "offered only TLS 1.1") {
			t.Errorf("plain %q; openssl said:\n%s", plain, out)
		}
	})
	t.Run("curl http:// to the TLS port", func(t *testing.T) {
		if _, err := exec.LookPath("curl"); err != nil {
			t.Skip("curl not installed")
		}
		g := startGateway(t, p.yaml)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, _ := exec.CommandContext(ctx, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "http://"+g.addr("modern")+"/a/x").CombinedOutput()
		if string(out) != "400" {
			t.Errorf("curl got %q, want 400", out)
		}
		r := g.log.wait(t, "with reason not_tls", func(r map[string]any) bool { return r["reason"] == tlsdiag.ReasonNotTLS })
		if plain, _ := r["plain"].(string); !strings.Contains(plain, "plain-HTTP request (GET") {
			t.Errorf("plain %q", plain)
		}
	})
}

func TestLogLimiter(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLogLimiter(time.Minute, 2)
	steps := []struct {
		name           string
		reason, peer   string
		at             time.Duration
		ok             bool
		wantSuppressed int
	}{
		{"first line for a key", "not_tls", "192.0.2.1:1000", 0, true, 0},
		{"same key, other port, within the interval", "not_tls", "192.0.2.1:2000", time.Second, false, 0},
		{"same address, other reason", "cipher_mismatch", "192.0.2.1:2000", time.Second, true, 0},
		{"full: a new key is held back", "not_tls", "192.0.2.2:1", 2 * time.Second, false, 0},
		{"after the interval: the count of held-back lines", "not_tls", "192.0.2.1:3000", 61 * time.Second, true, 1},
		{"full, but expired keys are forgotten", "not_tls", "192.0.2.3:1", 200 * time.Second, true, 0},
		{"an IPv6 client is keyed by its /64", "not_tls", "[2001:db8::1]:1", 300 * time.Second, true, 0},
		{"another address in the same /64", "not_tls", "[2001:db8::ffff]:1", 301 * time.Second, false, 0},
	}
	for _, s := range steps {
		ok, n := l.allow(s.reason, s.peer, t0.Add(s.at))
		if ok != s.ok || n != s.wantSuppressed {
			t.Errorf("%s: allow = %v, %d; want %v, %d", s.name, ok, n, s.ok, s.wantSuppressed)
		}
		if len(l.seen) > 2 {
			t.Fatalf("%s: %d keys remembered, limit 2", s.name, len(l.seen))
		}
	}
}

func grepLines(s, substr string) string {
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
