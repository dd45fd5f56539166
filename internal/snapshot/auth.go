package snapshot

import (
	"fmt"
	"strings"

	"github.com/portcullis/portcullis/internal/auth"
	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/trust"
)

// trustSet builds the verifier for a trust store: its anchors plus the
// revocation data the store configures. CRLs are loaded now; a source that
// cannot be loaded does not stop the configuration (the CA may be briefly
// down), but it becomes a warning logged at every load, saying what the
// revocation policy will do meanwhile.
func (c *compiler) trustSet(name string, ts config.TrustStore) {
	set := c.trust[name]
	if set == nil {
		return
	}
	var rev *trust.RevocationOptions
	if ts.CRL != nil || (ts.OCSP != nil && ts.OCSP.Enabled) {
		rev = &trust.RevocationOptions{FailOpen: ts.RevocationPolicy == config.FailOpen, Logger: c.o.Logger}
		if ts.CRL != nil {
			for _, f := range ts.CRL.Files {
				rev.CRLFiles = append(rev.CRLFiles, c.file(f))
			}
			rev.CRLURLs = ts.CRL.URLs
			rev.Refresh = ts.CRL.Refresh
		}
		if ts.OCSP != nil && ts.OCSP.Enabled {
			rev.OCSP = true
			rev.OCSPResponder = ts.OCSP.Responder
		}
	}
	s, err := trust.NewSet(name, set.Certs, rev)
	if err != nil {
		c.add("trust_stores."+name, "%v", err)
		return
	}
	c.sets[name] = s
	c.snap.trustSets = append(c.snap.trustSets, s)
	for _, st := range s.Status() {
		if st.Loaded || st.LastError == nil {
			continue
		}
		effect := "certificates it covers are refused until it loads (revocation_policy: fail_closed)"
		if ts.RevocationPolicy == config.FailOpen {
			effect = "certificates it covers are accepted unchecked until it loads (revocation_policy: fail_open)"
		}
		c.snap.Warnings = append(c.snap.Warnings, config.Problem{Path: "trust_stores." + name + ".crl",
			Message: fmt.Sprintf("revocation source %s could not be loaded (%v); %s", st.Source, st.LastError, effect)})
	}
}

// authenticator compiles an API's auth expression.
func (c *compiler) authenticator(path string, a config.API, spec *config.AuthSpec) auth.Authenticator {
	switch {
	case len(spec.AnyOf) > 0:
		list := c.authList(path+".any_of", a, spec.AnyOf)
		if list == nil {
			return nil
		}
		return auth.AnyOf(list...)
	case len(spec.AllOf) > 0:
		list := c.authList(path+".all_of", a, spec.AllOf)
		if list == nil {
			return nil
		}
		return auth.AllOf(list...)
	case spec.Name == "mtls":
		return c.mtls(path, a)
	case spec.Name == "oauth2":
		return c.oauth2(path, a)
	case spec.Name == "api_key":
		k := a.APIKey
		if k == nil {
			k = &config.APIKeyPolicy{Header: config.DefaultAPIKeyHeader}
		}
		// Every API reading keys from the same place shares one index of
		// all applications' keys: building one per API would cost
		// APIs × keys at every reload.
		if ak, ok := c.sc.apiKeys[*k]; ok {
			return ak
		}
		opts := auth.APIKeyOptions{Header: k.Header, Query: k.Query}
		for _, app := range c.sc.apps {
			for _, h := range app.APIKeys {
				opts.Keys = append(opts.Keys, auth.APIKey{Application: app.ID, Hash: h})
			}
		}
		ak, err := auth.NewAPIKey(opts)
		if err != nil {
			c.add(path, "%v", err)
			return nil
		}
		c.sc.apiKeys[*k] = ak
		return ak
	}
	c.add(path, "unknown authenticator %q", spec.Name)
	return nil
}

func (c *compiler) authList(path string, a config.API, specs []config.AuthSpec) []auth.Authenticator {
	var list []auth.Authenticator
	for i := range specs {
		au := c.authenticator(fmt.Sprintf("%s[%d]", path, i), a, &specs[i])
		if au == nil {
			return nil
		}
		list = append(list, au)
	}
	return list
}

func (c *compiler) mtls(path string, a config.API) auth.Authenticator {
	m := a.MTLS
	if m == nil {
		c.add(path, "auth uses mtls but the API has no mtls policy")
		return nil
	}
	opts := auth.MTLSOptions{
		RequireClientAuthEKU: m.RequireClientAuthEKU == nil || *m.RequireClientAuthEKU,
		Apps:                 c.sc.applications,
		AllowAnonymous:       m.AllowAnonymous,
		Now:                  c.o.Now,
	}
	for _, name := range m.Trust {
		s, ok := c.sets[name]
		if !ok {
			// The trust store failed to load; its problem is reported already.
			return nil
		}
		opts.Sets = append(opts.Sets, s)
	}
	if al := m.Allow; al != nil {
		opts.Allow = auth.AllowRules{SubjectDN: al.SubjectDN, CN: al.CN, OU: al.OU, DNS: al.DNS, URI: al.URI, Fingerprints: al.Fingerprints}
	}
	au, err := auth.NewMTLS(opts)
	if err != nil {
		c.add(path, "%v", err)
		return nil
	}
	return au
}

// compileApplications indexes a tenant's applications' certificates once
// per snapshot, so the request path resolves a certificate with a map
// lookup.
func (c *compiler) compileApplications(sc *scope, apps []config.Application) {
	sc.apps = apps
	for _, a := range apps {
		if a.OAuth2 != nil {
			sc.clientApps[a.OAuth2.ClientID] = a.ID
		}
	}
	var list []auth.Application
	for _, a := range apps {
		app := auth.Application{ID: a.ID}
		for _, cert := range a.Certificates {
			if cert.Fingerprint != "" {
				app.Fingerprints = append(app.Fingerprints, strings.ToLower(strings.ReplaceAll(cert.Fingerprint, ":", "")))
				continue
			}
			app.Rules = append(app.Rules, auth.CertRule{Issuer: cert.Issuer, SubjectDN: cert.SubjectDN, CN: cert.CN, DNS: cert.DNS, URI: cert.URI})
		}
		list = append(list, app)
	}
	idx, err := auth.NewApplications(list)
	if err != nil {
		c.add("applications", "tenant %q: %v", sc.tenant, err)
		return
	}
	sc.applications = idx
}
