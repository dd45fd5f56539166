package tlsdiag_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/testpki"
	"github.com/portcullis/portcullis/internal/tlsdiag"
)

// pki is the cast of every test: the trusted CA, a foreign CA, the
// upstream's and the gateway's certificates.
type pki struct {
	trusted, foreign *testpki.CA
	server, gateway  *testpki.Leaf
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{trusted: testpki.NewCA(t, "apimanCA"), foreign: testpki.NewCA(t, "foreignCA")}
	p.server = p.trusted.Issue(t, "api-a", testpki.Server(), testpki.DNS("api-a.internal"), testpki.IP("127.0.0.1"))
	p.gateway = p.trusted.Issue(t, "gateway", testpki.Client())
	return p
}

// outcome is what a real handshake produced, plus what the gateway knew.
type outcome struct {
	err error
	ctx tlsdiag.UpstreamContext
}

// handshake runs one TLS connection between srv and cli over loopback. The
// server writes one byte after a successful handshake and the client reads
// it, so failures the server only reports after the client's handshake
// completes (TLS 1.3 client authentication) reach the client as they would
// reach the gateway's HTTP client.
func handshake(t *testing.T, srv, cli *tls.Config, ctx tlsdiag.UpstreamContext) outcome {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		tc := tls.Server(c, srv)
		if tc.Handshake() == nil {
			_, _ = tc.Write([]byte{'!'})
		}
	}()
	var asked []string
	cli = cli.Clone()
	cert := cli.GetClientCertificate
	cli.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		asked = caNames(t, cri.AcceptableCAs)
		if cert != nil {
			return cert(cri)
		}
		return &tls.Certificate{}, nil
	}
	ctx.Peer = ln.Addr().String()
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := tls.Dialer{Config: cli}
	conn, err := d.DialContext(dctx, "tcp", ctx.Peer)
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	ctx.AcceptableCAs = asked
	return outcome{err: err, ctx: ctx}
}

func caNames(t *testing.T, ders [][]byte) []string {
	var out []string
	for _, der := range ders {
		var rdn pkix.RDNSequence
		if _, err := asn1.Unmarshal(der, &rdn); err != nil {
			t.Errorf("parsing acceptable CA: %v", err)
			continue
		}
		var n pkix.Name
		n.FillFromRDNSequence(&rdn)
		out = append(out, n.String())
	}
	return out
}

func leafCert(l *testpki.Leaf) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	c := l.TLS()
	return func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
}

func TestUpstreamHandshakes(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	expired := p.trusted.Issue(t, "api-old", testpki.Server(), testpki.DNS("api-a.internal"), testpki.Expired())
	future := p.trusted.Issue(t, "api-new", testpki.Server(), testpki.DNS("api-a.internal"), testpki.NotYetValid())
	clientOnly := p.trusted.Issue(t, "api-a", testpki.Client(), testpki.DNS("api-a.internal"))
	foreignServer := p.foreign.Issue(t, "api-a", testpki.Server(), testpki.DNS("api-a.internal"))
	foreignGateway := p.foreign.Issue(t, "gateway", testpki.Client())
	cnOnly := p.trusted.Issue(t, "api-a.internal", testpki.Server())

	base := tlsdiag.UpstreamContext{
		API:           "orders",
		ServerName:    "api-a.internal",
		TrustName:     "internal",
		TrustSubjects: []string{p.trusted.Cert.Subject.String()},
	}
	withCert := base
	withCert.HaveClientCert = true
	withCert.ClientCertSubject = p.gateway.Cert.Subject.String()
	withCert.ClientCertIssuer = p.gateway.Cert.Issuer.String()
	foreignCtx := withCert
	foreignCtx.ClientCertSubject = foreignGateway.Cert.Subject.String()
	foreignCtx.ClientCertIssuer = foreignGateway.Cert.Issuer.String()
	tls13 := base
	tls13.MinVersion = tls.VersionTLS13

	server := func(leaf *testpki.Leaf, mod ...func(*tls.Config)) *tls.Config {
		c := &tls.Config{
			Certificates: []tls.Certificate{leaf.TLS()},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    p.trusted.Pool(),
		}
		for _, m := range mod {
			m(c)
		}
		return c
	}
	client := func(mod ...func(*tls.Config)) *tls.Config {
		c := &tls.Config{RootCAs: p.trusted.Pool(), ServerName: "api-a.internal", GetClientCertificate: leafCert(p.gateway)}
		for _, m := range mod {
			m(c)
		}
		return c
	}
	noCert := func(c *tls.Config) { c.GetClientCertificate = nil }
	max12 := func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }

	cases := []struct {
		name       string
		srv, cli   *tls.Config
		ctx        tlsdiag.UpstreamContext
		wantCode   string
		wantReason string
		wantPlain  []string
	}{
		{
			name: "server certificate from a CA outside the trust set",
			srv:  server(foreignServer), cli: client(), ctx: withCert,
			wantCode: problem.CodeUpstreamTLSUnknownAuthority, wantReason: "unknown_authority",
			wantPlain: []string{"CN=foreignCA", `trust set "internal"`, "CN=apimanCA"},
		},
		{
			name: "server certificate without the name checked",
			srv:  server(p.server), cli: client(func(c *tls.Config) { c.ServerName = "api-b.internal" }), ctx: withCert,
			wantCode: problem.CodeUpstreamTLSHostnameMismatch, wantReason: "hostname_mismatch",
			wantPlain: []string{"DNS:api-a.internal", "IP:127.0.0.1", `"api-b.internal"`},
		},
		{
			name: "server certificate with only a common name",
			srv:  server(cnOnly), cli: client(), ctx: withCert,
			wantCode: problem.CodeUpstreamTLSHostnameMismatch, wantReason: "hostname_mismatch",
			wantPlain: []string{"legacy common name", `"api-a.internal"`},
		},
		{
			name: "expired server certificate",
			srv:  server(expired), cli: client(), ctx: withCert,
			wantCode: problem.CodeUpstreamTLSCertExpired, wantReason: "cert_expired",
			wantPlain: []string{"CN=api-old", "expired at " + expired.Cert.NotAfter.UTC().Format(time.RFC3339)},
		},
		{
			name: "server certificate not yet valid",
			srv:  server(future), cli: client(), ctx: withCert,
			wantCode: problem.CodeUpstreamTLSCertNotYetValid, wantReason: "cert_not_yet_valid",
			wantPlain: []string{"CN=api-new", "not valid until " + future.Cert.NotBefore.UTC().Format(time.RFC3339)},
		},
		{
			name: "server certificate without the serverAuth usage",
			srv:  server(clientOnly), cli: client(), ctx: withCert,
			wantCode: problem.CodeUpstreamTLSCertInvalid, wantReason: "cert_invalid",
			wantPlain: []string{"CN=api-a"},
		},
		{
			name: "no client certificate, TLS 1.3 sends certificate_required",
			srv:  server(p.server), cli: client(noCert), ctx: base,
			wantCode: problem.CodeUpstreamTLSClientCertRequired, wantReason: "client_cert_required",
			wantPlain: []string{"certificate required", `"orders"`, "CN=apimanCA"},
		},
		{
			name: "no client certificate, TLS 1.2 sends handshake_failure",
			srv:  server(p.server, max12), cli: client(noCert), ctx: base,
			wantCode: problem.CodeUpstreamTLSClientCertRequired, wantReason: "client_cert_required",
			wantPlain: []string{"handshake failure", "CN=apimanCA"},
		},
		{
			name: "client certificate from a foreign CA, TLS 1.3",
			srv:  server(p.server), cli: client(func(c *tls.Config) { c.GetClientCertificate = leafCert(foreignGateway) }), ctx: foreignCtx,
			wantCode: problem.CodeUpstreamTLSClientCertRejected, wantReason: "client_cert_rejected",
			wantPlain: []string{"unknown certificate authority", "CN=foreignCA", "asks for certificates issued by CN=apimanCA"},
		},
		{
			name: "client certificate from a foreign CA, TLS 1.2",
			srv:  server(p.server, max12), cli: client(func(c *tls.Config) { c.GetClientCertificate = leafCert(foreignGateway) }), ctx: foreignCtx,
			wantCode: problem.CodeUpstreamTLSClientCertRejected, wantReason: "client_cert_rejected",
			wantPlain: []string{"unknown certificate authority", "CN=gateway"},
		},
		{
			name: "gateway requires TLS 1.3, upstream offers at most TLS 1.2",
			srv:  server(p.server, max12), cli: client(func(c *tls.Config) { c.MinVersion = tls.VersionTLS13 }), ctx: tls13,
			wantCode: problem.CodeUpstreamTLSProtocolVersion, wantReason: "protocol_version",
			wantPlain: []string{"protocol version not supported", "TLS 1.3"},
		},
		{
			name: "pin mismatch reported by VerifyConnection",
			srv:  server(p.server),
			cli: client(func(c *tls.Config) {
				c.VerifyConnection = func(tls.ConnectionState) error {
					return &tlsdiag.PinMismatchError{Got: "got=", Want: []string{"want="}}
				}
			}),
			ctx:      withCert,
			wantCode: problem.CodeUpstreamTLSPinMismatch, wantReason: "pin_mismatch",
			wantPlain: []string{"got=", "1 pins"},
		},
		{
			name: "success is not a failure",
			srv:  server(p.server), cli: client(), ctx: withCert,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := handshake(t, tc.srv, tc.cli, tc.ctx)
			checkDiagnosis(t, out.err, out.ctx, tc.wantCode, tc.wantReason, tc.wantPlain)
		})
	}
}

func checkDiagnosis(t *testing.T, err error, ctx tlsdiag.UpstreamContext, wantCode, wantReason string, wantPlain []string) {
	t.Helper()
	d, ok := tlsdiag.Upstream(err, ctx)
	if wantCode == "" {
		if err != nil || ok {
			t.Fatalf("want success, got err %v, diagnosis %+v", err, d)
		}
		return
	}
	if !ok {
		t.Fatalf("error %v (%T) not diagnosed", err, err)
	}
	if d.Code != wantCode || d.Reason != wantReason {
		t.Fatalf("got code %q reason %q, want %q %q (error %v; plain %q)", d.Code, d.Reason, wantCode, wantReason, err, d.Plain)
	}
	if _, known := problem.Catalogue[d.Code]; !known {
		t.Errorf("code %q is not in the problem catalogue", d.Code)
	}
	for _, s := range wantPlain {
		if !strings.Contains(d.Plain, s) {
			t.Errorf("plain %q does not mention %q", d.Plain, s)
		}
	}
	if d.Hop != tlsdiag.HopUpstream || d.Peer != ctx.Peer || d.ServerName != ctx.ServerName || d.Fix == "" {
		t.Errorf("incomplete diagnosis %+v", d)
	}
	if testing.Verbose() {
		t.Logf("%s: %s | fix: %s", d.Reason, d.Plain, d.Fix)
	}
}

// TestUpstreamConnections covers failures below TLS with real sockets.
func TestUpstreamConnections(t *testing.T) {
	t.Parallel()
	ctx := tlsdiag.UpstreamContext{API: "orders", ServerName: "api-a.internal"}
	cli := &tls.Config{ServerName: "api-a.internal", RootCAs: x509.NewCertPool()}

	cases := []struct {
		name       string
		listen     func(t *testing.T, ln net.Listener) // serves one connection
		closed     bool                                // listener closed before dialing
		timeout    time.Duration
		wantCode   string
		wantReason string
		wantPlain  []string
	}{
		{
			name: "plain HTTP on the target port",
			listen: func(_ *testing.T, ln net.Listener) {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"))
			},
			wantCode: problem.CodeUpstreamTLSNotTLS, wantReason: "not_tls",
			wantPlain: []string{"plain-text HTTP response"},
		},
		{
			name:     "nothing listening",
			closed:   true,
			wantCode: problem.CodeUpstreamConnectRefused, wantReason: "connect_refused",
			wantPlain: []string{"refused"},
		},
		{
			name: "peer accepts and never answers the handshake",
			listen: func(_ *testing.T, ln net.Listener) {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_, _ = io.Copy(io.Discard, c)
			},
			timeout:  100 * time.Millisecond,
			wantCode: problem.CodeUpstreamTimeout, wantReason: "timeout",
		},
		{
			name: "peer closes during the handshake",
			listen: func(_ *testing.T, ln net.Listener) {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_, _ = c.Read(make([]byte, 5))
				c.Close()
			},
			wantCode: problem.CodeUpstreamConnectFailed, wantReason: "connection_closed",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			if tc.closed {
				ln.Close()
			} else {
				go tc.listen(t, ln)
			}
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			dctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			d := tls.Dialer{Config: cli}
			c := ctx
			c.Peer = ln.Addr().String()
			conn, err := d.DialContext(dctx, "tcp", c.Peer)
			if err == nil {
				conn.Close()
				t.Fatal("handshake succeeded")
			}
			checkDiagnosis(t, err, c, tc.wantCode, tc.wantReason, tc.wantPlain)
		})
	}
}

// TestUpstreamErrorValues covers errors a loopback test cannot produce
// reliably (a dial timeout needs a black-holed address) or that net/http
// builds around crypto/tls errors, in the shapes those packages return.
func TestUpstreamErrorValues(t *testing.T) {
	t.Parallel()
	ctx := tlsdiag.UpstreamContext{API: "orders", Peer: "10.0.0.1:443", ServerName: "api-a.internal", HaveClientCert: true}
	remote := func(a uint8) error { return &net.OpError{Op: "remote error", Err: tls.AlertError(a)} }
	cases := []struct {
		name       string
		err        error
		wantCode   string
		wantReason string
	}{
		{"dial timeout", &net.OpError{Op: "dial", Net: "tcp", Err: &timeoutErr{}}, problem.CodeUpstreamTimeout, "connect_timeout"},
		{"context deadline", fmt.Errorf("forwarding: %w", context.DeadlineExceeded), problem.CodeUpstreamTimeout, "timeout"},
		{"dial failure", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("no route to host")}, problem.CodeUpstreamConnectFailed, "connect_failed"},
		{"dns failure", &net.DNSError{Err: "no such host", Name: "api-a.internal", IsNotFound: true}, problem.CodeUpstreamConnectFailed, "connect_failed"},
		{"unrecognized name alert", remote(112), problem.CodeUpstreamTLSHandshake, "unrecognized_name"},
		{"other alert", remote(40), problem.CodeUpstreamTLSHandshake, "handshake_failed"},
		{"certificate expired alert", remote(45), problem.CodeUpstreamTLSClientCertRejected, "client_cert_rejected"},
		{"alert wrapped by net/http", fmt.Errorf("net/http: HTTP/1.x transport connection broken: %w", remote(48)), problem.CodeUpstreamTLSClientCertRejected, "client_cert_rejected"},
		{"QUIC-style alert error", fmt.Errorf("handshake: %w", tls.AlertError(70)), problem.CodeUpstreamTLSProtocolVersion, "protocol_version"},
		{"server picked an old version", errors.New("tls: server selected unsupported protocol version 303"), problem.CodeUpstreamTLSProtocolVersion, "protocol_version"},
		{"reset", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, problem.CodeUpstreamConnectFailed, "connection_closed"},
		{"unrelated error", errors.New("net/http: malformed HTTP response"), "", ""},
		{"nil", nil, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, ok := tlsdiag.Upstream(tc.err, ctx)
			if tc.wantCode == "" {
				if ok {
					t.Fatalf("unexpected diagnosis %+v", d)
				}
				return
			}
			if !ok || d.Code != tc.wantCode || d.Reason != tc.wantReason {
				t.Fatalf("got %v %q %q, want %q %q", ok, d.Code, d.Reason, tc.wantCode, tc.wantReason)
			}
		})
	}
}

func TestLogAttrs(t *testing.T) {
	t.Parallel()
	d := tlsdiag.Diagnosis{Hop: tlsdiag.HopUpstream, Reason: "r", Plain: "p", Fix: "f", Peer: "h:1", ServerName: "s"}
	got := fmt.Sprint(d.LogAttrs())
	want := "[hop gateway→upstream peer h:1 server_name s reason r plain p fix f]"
	if got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

type timeoutErr struct{}

func (*timeoutErr) Error() string   { return "i/o timeout" }
func (*timeoutErr) Timeout() bool   { return true }
func (*timeoutErr) Temporary() bool { return true }
