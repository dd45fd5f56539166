package tlsdiag_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/testpki"
	"github.com/portcullis/portcullis/internal/tlsdiag"
	"github.com/portcullis/portcullis/internal/trust"
)

// TestClientErrorValues covers the client-hop classifier on error values
// that are hard to provoke from a real client (revocation, odd alerts,
// socket errors); internal/server's failure matrix drives the rest with
// real clients.
func TestClientErrorValues(t *testing.T) {
	served := testpki.NewCA(t, "gatewayCA").Issue(t, "listener", testpki.Server(), testpki.DNS("api.example.com"))
	c := tlsdiag.ClientContext{Listener: "public", Peer: "198.51.100.7:50000", ServerName: "api.example.com",
		TrustNames: []string{"partners"}, TrustSubjects: []string{"CN=partnersCA"}, MinVersion: tls.VersionTLS12, ServedCert: served.Cert}
	cases := []struct {
		name       string
		err        error
		ctx        func(*tlsdiag.ClientContext)
		wantCode   string
		wantReason string
		wantPlain  []string
	}{
		{name: "revoked by the trust set", err: fmt.Errorf("wrapped: %w", &trust.Error{Reason: trust.ReasonRevoked, Set: "partners", Detail: `certificate "CN=app" (serial 0x2a) is revoked`}),
			wantCode: problem.CodeClientCertRevoked, wantReason: tlsdiag.ReasonClientCertRevoked, wantPlain: []string{`trust store "partners"`, "serial 0x2a"}},
		{name: "revocation data unavailable", err: &trust.Error{Reason: trust.ReasonRevocationUnavailable, Set: "partners", Detail: "no current CRL"},
			wantCode: problem.CodeRevocationUnavailable, wantReason: tlsdiag.ReasonClientCertRevocationUnavai, wantPlain: []string{"no current CRL"}},
		{name: "versions as crypto/tls words them", err: errors.New("tls: client offered only unsupported versions: [302 301]"),
			wantReason: tlsdiag.ReasonProtocolVersion, wantPlain: []string{"offered only TLS 1.1, TLS 1.0", "TLS 1.2 and later"}},
		{name: "suites as crypto/tls words them", err: errors.New("tls: no cipher suite supported by both client and server; client offered: [2f 35 a]"),
			wantReason: tlsdiag.ReasonCipherMismatch, wantPlain: []string{"TLS_RSA_WITH_AES_128_CBC_SHA, TLS_RSA_WITH_AES_256_CBC_SHA, TLS_RSA_WITH_3DES_EDE_CBC_SHA", "ECDSA certificate"}},
		{name: "client says our certificate expired", err: tls.AlertError(45),
			wantReason: tlsdiag.ReasonServerCertRejected, wantPlain: []string{`"expired certificate"`, `"CN=listener`}},
		{name: "client refuses our certificate, no SNI", err: tls.AlertError(48), ctx: func(c *tlsdiag.ClientContext) { c.ServerName = "" },
			wantReason: tlsdiag.ReasonServerCertRejected, wantPlain: []string{"without SNI", "unknown certificate authority"}},
		{name: "client refuses the version", err: tls.AlertError(70),
			wantReason: tlsdiag.ReasonProtocolVersion, wantPlain: []string{"protocol version not supported"}},
		{name: "other alert", err: tls.AlertError(80),
			wantReason: tlsdiag.ReasonHandshakeFailure, wantPlain: []string{"internal error"}},
		{name: "bytes that are not TLS nor HTTP", err: tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake", RecordHeader: [5]byte{'S', 'S', 'H', '-', '2'}},
			wantReason: tlsdiag.ReasonNotTLS, wantPlain: []string{"53 53 48 2d 32"}},
		{name: "oversized client key", err: errors.New("tls: client sent certificate containing RSA key larger than 8192 bits"),
			wantCode: problem.CodeClientCertUntrusted, wantReason: tlsdiag.ReasonClientCertInvalid, wantPlain: []string{"8192 bits"}},
		{name: "hang-up", err: fmt.Errorf("read: %w", io.EOF), wantReason: tlsdiag.ReasonClosedByClient},
		{name: "reset", err: &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}, wantReason: tlsdiag.ReasonClosedByClient},
		{name: "slow client", err: &net.OpError{Op: "read", Err: &timeoutErr{}}, wantReason: tlsdiag.ReasonTimeout},
		{name: "unknown text is clipped", err: errors.New("tls: " + strings.Repeat("x", 500)), wantReason: tlsdiag.ReasonOther, wantPlain: []string{"xxx…"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := c
			if tc.ctx != nil {
				tc.ctx(&ctx)
			}
			d := tlsdiag.Client(tc.err, ctx)
			if d.Hop != tlsdiag.HopClient || d.Code != tc.wantCode || d.Reason != tc.wantReason || d.Peer != ctx.Peer {
				t.Errorf("got hop %s code %q reason %q peer %q; want code %q reason %q", d.Hop, d.Code, d.Reason, d.Peer, tc.wantCode, tc.wantReason)
			}
			if !slices.Contains(tlsdiag.ClientReasons, d.Reason) {
				t.Errorf("reason %q is not in ClientReasons", d.Reason)
			}
			if d.Plain == "" || d.Fix == "" || len(d.Plain) > 800 {
				t.Errorf("plain (%d bytes) %q, fix %q", len(d.Plain), d.Plain, d.Fix)
			}
			for _, w := range tc.wantPlain {
				if !strings.Contains(d.Plain, w) {
					t.Errorf("plain lacks %q: %s", w, d.Plain)
				}
			}
			if q := tlsdiag.Quiet(d.Reason); q != (d.Reason == tlsdiag.ReasonClosedByClient || d.Reason == tlsdiag.ReasonTimeout) {
				t.Errorf("Quiet(%s) = %v", d.Reason, q)
			}
		})
	}
}

// TestClientReasonsDocumented keeps docs/troubleshooting-tls.md's table of
// client-hop reasons in step with ClientReasons.
func TestClientReasonsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/troubleshooting-tls.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, _ := strings.Cut(string(doc), "## Failed client handshakes")
	for _, r := range tlsdiag.ClientReasons {
		if !strings.Contains(table, "`"+r+"`") {
			t.Errorf("reason %s is not documented under \"Failed client handshakes\"", r)
		}
	}
}
