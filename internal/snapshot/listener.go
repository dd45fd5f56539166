package snapshot

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/trust"
)

func (c *compiler) listener(path string, l config.Listener, apis []config.API) {
	sel := &certSelector{exact: map[string]*tls.Certificate{}, wildcard: map[string]*tls.Certificate{}}
	for i, sc := range l.TLS.Certificates {
		cp := fmt.Sprintf("%s.tls.certificates[%d]", path, i)
		id := c.identity(cp, sc.KeySource)
		if id == nil {
			continue
		}
		cert := &id.Certificate
		c.snap.Certificates = append(c.snap.Certificates, CertUse{Where: "listener " + l.Name, Cert: cert.Leaf})
		if sel.def == nil {
			sel.def = cert
		}
		names := sc.ServerNames
		if len(names) == 0 {
			names = cert.Leaf.DNSNames
		}
		for _, n := range names {
			n = strings.ToLower(n)
			m := sel.exact
			if strings.HasPrefix(n, "*.") {
				n, m = n[2:], sel.wildcard
			}
			// The first certificate listed for a name wins, as in the
			// configuration's order.
			if _, taken := m[n]; !taken {
				m[n] = cert
			}
		}
	}
	protos := []string{"http/1.1"}
	if l.HTTP2 == nil || *l.HTTP2 {
		// Without NextProtos on the config returned by GetConfigForClient,
		// HTTP/2 silently disappears (DESIGN §7).
		protos = []string{"h2", "http/1.1"}
	}
	var served []*API
	for _, a := range c.snap.APIs {
		if len(a.listeners) == 0 || slices.Contains(a.listeners, l.Name) {
			served = append(served, a)
		}
	}
	base := &tls.Config{
		MinVersion:     tlsVersion(l.TLS.MinVersion),
		NextProtos:     protos,
		GetCertificate: sel.get,
	}
	cc := clientCerts{mode: l.TLS.ClientCertificates, plain: base, hosts: map[string]bool{}, wildcard: map[string]bool{}}
	switch cc.mode {
	case config.ClientCertRequest:
		// Ask for a certificate without verifying it in the handshake
		// (RequestClientCert, not VerifyClientCertIfGiven), so a bad one
		// reaches the API's policy and gets a precise 401 instead of a
		// handshake failure (DESIGN §7). Ask only on names that serve an API
		// using one: some clients break when asked.
		cc.requesting = base.Clone()
		cc.requesting.ClientAuth = tls.RequestClientCert
		for _, a := range served {
			if !a.needsCert {
				continue
			}
			for _, h := range a.hosts {
				switch {
				case h == "":
					cc.all = true
				case strings.HasPrefix(h, "*."):
					cc.wildcard[h[2:]] = true
				default:
					cc.hosts[h] = true
				}
			}
		}
	case config.ClientCertRequire:
		cc.requesting = base.Clone()
		cc.requesting.ClientAuth = tls.RequireAndVerifyClientCert
		cc.requesting.ClientCAs = x509.NewCertPool()
		var sets []*trust.Set
		cc.trustNames = l.TLS.ClientTrust
		for _, name := range l.TLS.ClientTrust {
			if ts, ok := c.trust[name]; ok {
				for _, cert := range ts.Certs {
					cc.requesting.ClientCAs.AddCert(cert)
					cc.trustSubjects = append(cc.trustSubjects, cert.Subject.String())
				}
			}
			if set, ok := c.sets[name]; ok {
				sets = append(sets, set)
			}
		}
		// Go's handshake verifies the chain against ClientCAs; the trust
		// sets add the revocation checks Go does not do.
		cc.requesting.VerifyConnection = func(cs tls.ConnectionState) error {
			var first error
			for _, set := range sets {
				_, err := set.Verify(cs.PeerCertificates, x509.ExtKeyUsageClientAuth, c.o.Now())
				if err == nil {
					return nil
				}
				if first == nil {
					first = err
				}
			}
			return first
		}
		cc.all = true
	}
	static := ListenerStatic{
		Address:           l.Address,
		HTTP2:             len(protos) == 2,
		MaxHeaderBytes:    int(l.Limits.MaxHeaderBytes),
		ReadHeaderTimeout: l.Limits.ReadHeaderTimeout,
		ReadTimeout:       l.Limits.ReadTimeout,
		WriteTimeout:      l.Limits.WriteTimeout,
		IdleTimeout:       l.Limits.IdleTimeout,
	}
	if r := l.HTTPRedirect; r != nil {
		static.RedirectAddress, static.RedirectPort = r.Address, r.Port
	}
	var mount *authServerMount
	if c.authServer != nil && (len(c.authServerListeners) == 0 || slices.Contains(c.authServerListeners, l.Name)) {
		mount = &authServerMount{handler: c.authServer.Handler(), prefix: c.authServerPrefix}
	}
	if mount != nil && c.authServerWantsCerts && cc.mode == config.ClientCertRequest {
		// The token endpoint is not tied to a host, so every name asks.
		cc.all = true
	}
	c.snap.Listeners[l.Name] = &Listener{
		authServer:   mount,
		Name:         l.Name,
		Static:       static,
		certs:        cc,
		Router:       newRouter(served, c.tenantRoutes()),
		MaxBodyBytes: int64(l.Limits.MaxBodyBytes),
	}
}

// clientCerts decides per SNI name whether the handshake asks for a client
// certificate.
type clientCerts struct {
	mode       config.ClientCertMode
	plain      *tls.Config
	requesting *tls.Config // nil in mode none
	all        bool        // every name asks (mode require, or an mtls API for any host)
	hosts      map[string]bool
	wildcard   map[string]bool
	// trustNames and trustSubjects describe client_trust (mode require)
	// for handshake diagnoses.
	trustNames, trustSubjects []string
}

func (cc *clientCerts) requests(serverName string) bool {
	if cc.requesting == nil {
		return false
	}
	if cc.all {
		return true
	}
	name := strings.ToLower(serverName)
	if cc.hosts[name] {
		return true
	}
	if i := strings.IndexByte(name, '.'); i > 0 && cc.wildcard[name[i+1:]] {
		return true
	}
	return false
}

// ConfigFor returns the TLS configuration for a handshake that sent
// serverName as SNI. It is called for every handshake and does not allocate.
func (l *Listener) ConfigFor(serverName string) *tls.Config {
	if l.certs.requests(serverName) {
		return l.certs.requesting
	}
	return l.certs.plain
}

// ClientTrust returns the names of the trust stores a listener in mode
// require verifies client certificates against, and the subjects of their
// certificates, for explaining a refused handshake; both are empty in the
// other modes.
func (l *Listener) ClientTrust() (names, subjects []string) {
	return l.certs.trustNames, l.certs.trustSubjects
}

// AuthServerFor returns the built-in authorization server's handler when
// path is one of its endpoints on this listener, else nil.
func (l *Listener) AuthServerFor(path string) http.Handler {
	if l.authServer.matches(path) {
		return l.authServer.handler
	}
	return nil
}

// RequestsCert reports whether a connection handshaken for serverName was
// asked for a client certificate. A request whose Host selects an API that
// needs one, on a connection that was not asked, gets 421 so the client
// retries on a connection made for that host (RFC 9110 §15.5.20).
func (l *Listener) RequestsCert(serverName string) bool { return l.certs.requests(serverName) }

// certSelector picks a listener certificate by SNI: an exact name, then a
// wildcard one label deep, then the default (the first configured). Clients
// that send no SNI (or an IP address) get the default.
type certSelector struct {
	def      *tls.Certificate
	exact    map[string]*tls.Certificate
	wildcard map[string]*tls.Certificate
}

func (s *certSelector) get(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(hello.ServerName)
	if c, ok := s.exact[name]; ok {
		return c, nil
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if c, ok := s.wildcard[name[i+1:]]; ok {
			return c, nil
		}
	}
	return s.def, nil
}
