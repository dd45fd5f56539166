package snapshot

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"

	"github.com/portcullis/portcullis/internal/config"
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
	c.snap.Listeners[l.Name] = &Listener{
		Name:   l.Name,
		Static: static,
		TLS: &tls.Config{
			MinVersion:     tlsVersion(l.TLS.MinVersion),
			NextProtos:     protos,
			GetCertificate: sel.get,
		},
		Router:       newRouter(served),
		MaxBodyBytes: int64(l.Limits.MaxBodyBytes),
	}
}

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
