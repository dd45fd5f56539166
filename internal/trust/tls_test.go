package trust_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/testpki"
	"github.com/portcullis/portcullis/internal/trust"
)

// serveTLS accepts TLS connections on loopback with cfg until the test ends
// and reports each handshake's result on the returned channel.
func serveTLS(t *testing.T, cfg *tls.Config) (string, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	results := make(chan error, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := tls.Server(c, cfg)
				_ = tc.SetDeadline(time.Now().Add(testTimeout))
				results <- tc.Handshake()
			}()
		}
	}()
	return ln.Addr().String(), results
}

func dial(addr string, cfg *tls.Config) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: testTimeout}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	// A TLS 1.3 client learns of the server's verdict on its certificate
	// only when it reads.
	_, err = conn.Read(make([]byte, 1))
	conn.Close()
	return err
}

// The gateway as a client: Go checks chain and name against RootCAs, and the
// set's VerifyConnection adds revocation, which Go does not check.
func TestVerifyConnectionUpstream(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "Upstream Root")
	good := ca.Issue(t, "api-good", testpki.Server(), testpki.DNS("api.internal"))
	revoked := ca.Issue(t, "api-revoked", testpki.Server(), testpki.DNS("api.internal"))
	path := writeCRL(t, t.TempDir(), "ca.crl", freshCRL(t, ca, 1, revokedEntry(revoked.Cert, 1)))
	s := mustSet(t, "upstream", []*x509.Certificate{ca.Cert}, &trust.RevocationOptions{CRLFiles: []string{path}})

	tests := []struct {
		name   string
		server *testpki.Leaf
		want   trust.Reason
	}{
		{name: "valid upstream certificate", server: good},
		{name: "revoked upstream certificate fails the handshake", server: revoked, want: trust.ReasonRevoked},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, _ := serveTLS(t, &tls.Config{Certificates: []tls.Certificate{tc.server.TLS()}, MinVersion: tls.VersionTLS12})
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: testTimeout}, "tcp", addr, &tls.Config{
				RootCAs:          ca.Pool(),
				ServerName:       "api.internal",
				MinVersion:       tls.VersionTLS12,
				VerifyConnection: s.VerifyConnection(x509.ExtKeyUsageServerAuth),
			})
			if err == nil {
				conn.Close()
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("handshake: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("handshake with a revoked server certificate succeeded")
			}
			var te *trust.Error
			if !errors.As(err, &te) || te.Reason != tc.want {
				t.Fatalf("handshake error %v; want a *trust.Error with reason %s", err, tc.want)
			}
		})
	}
}

// The gateway as a server that requests client certificates without Go
// verifying them (tls.RequestClientCert): the set does all of it.
func TestVerifyConnectionClientCertificates(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "Client Root")
	other := testpki.NewCA(t, "Other Root")
	serverLeaf := ca.Issue(t, "gateway", testpki.Server(), testpki.DNS("gw.internal"))
	good := ca.Issue(t, "app", testpki.Client())
	revoked := ca.Issue(t, "revoked-app", testpki.Client())
	serverOnly := ca.Issue(t, "server-only-app", testpki.Server())
	foreign := other.Issue(t, "foreign-app", testpki.Client())
	path := writeCRL(t, t.TempDir(), "ca.crl", freshCRL(t, ca, 1, revokedEntry(revoked.Cert, 1)))
	s := mustSet(t, "clients", []*x509.Certificate{ca.Cert}, &trust.RevocationOptions{CRLFiles: []string{path}})

	tests := []struct {
		name   string
		client *testpki.Leaf
		want   trust.Reason
	}{
		{name: "valid client certificate", client: good},
		{name: "revoked client certificate", client: revoked, want: trust.ReasonRevoked},
		{name: "server-only certificate as a client", client: serverOnly, want: trust.ReasonWrongUsage},
		{name: "client certificate from another CA", client: foreign, want: trust.ReasonUntrusted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, results := serveTLS(t, &tls.Config{
				Certificates:     []tls.Certificate{serverLeaf.TLS()},
				ClientAuth:       tls.RequestClientCert,
				MinVersion:       tls.VersionTLS12,
				VerifyConnection: s.VerifyConnection(x509.ExtKeyUsageClientAuth),
			})
			clientErr := dial(addr, &tls.Config{
				RootCAs:      ca.Pool(),
				ServerName:   "gw.internal",
				Certificates: []tls.Certificate{tc.client.TLS()},
				MinVersion:   tls.VersionTLS12,
			})
			var serverErr error
			select {
			case serverErr = <-results:
			case <-time.After(testTimeout):
				t.Fatal("server handshake did not finish")
			}
			if tc.want == "" {
				if serverErr != nil {
					t.Fatalf("server handshake: %v", serverErr)
				}
				return
			}
			if clientErr == nil {
				t.Error("the client was not told its certificate was refused")
			}
			var te *trust.Error
			if !errors.As(serverErr, &te) || te.Reason != tc.want {
				t.Fatalf("server handshake error %v; want a *trust.Error with reason %s", serverErr, tc.want)
			}
		})
	}
}
