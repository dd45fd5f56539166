package config

import (
	"path/filepath"
	"slices"
)

// Files returns every file the configuration f reads when it is compiled:
// listener and admin certificates, keys and keystores, password files, trust
// store PEM bundles and truststores, CRL files, upstream and OAuth2 issuer
// client certificates, introspection secret files, and the public keys and
// self-signed certificates registered for the built-in authorization
// server's clients. Relative names are resolved against baseDir (the
// configuration file's directory). The result is absolute, cleaned,
// de-duplicated and sorted.
//
// Directories the gateway writes to (the authorization server's key_dir and
// the store) are not included: they are not inputs to a reload.
func Files(f File, baseDir string) []string {
	var c fileCollector
	c.base = baseDir
	for _, l := range f.Listeners {
		for _, sc := range l.TLS.Certificates {
			c.keySource(&sc.KeySource)
		}
	}
	if f.Admin != nil {
		for _, sc := range f.Admin.Certificates {
			c.keySource(&sc.KeySource)
		}
	}
	for _, ts := range f.TrustStores {
		c.add(ts.PEM...)
		for i := range ts.Truststores {
			c.keystore(&ts.Truststores[i])
		}
		if ts.CRL != nil {
			c.add(ts.CRL.Files...)
		}
	}
	for _, a := range f.APIs {
		c.keySource(a.Upstream.TLS.ClientCertificate)
		if a.OAuth2 == nil {
			continue
		}
		for _, iss := range a.OAuth2.Issuers {
			c.keySource(iss.ClientCertificate)
			if iss.Introspection != nil {
				c.add(iss.Introspection.ClientSecretFile)
			}
		}
	}
	for _, app := range f.Applications {
		if app.OAuth2 == nil {
			continue
		}
		c.add(app.OAuth2.PublicKeys...)
		c.add(app.OAuth2.SelfSignedCerts...)
	}
	slices.Sort(c.out)
	return slices.Compact(c.out)
}

type fileCollector struct {
	base string
	out  []string
}

func (c *fileCollector) add(names ...string) {
	for _, n := range names {
		if n == "" {
			continue
		}
		if !filepath.IsAbs(n) {
			n = filepath.Join(c.base, n)
		}
		if abs, err := filepath.Abs(n); err == nil {
			n = abs
		}
		c.out = append(c.out, filepath.Clean(n))
	}
}

func (c *fileCollector) keySource(k *KeySource) {
	if k == nil {
		return
	}
	c.add(k.Cert, k.Key, k.KeyPasswordFile)
	c.keystore(k.Keystore)
}

func (c *fileCollector) keystore(k *Keystore) {
	if k == nil {
		return
	}
	c.add(k.Path, k.PasswordFile, k.KeyPasswordFile)
}
