package snapshot

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/auth"
	"github.com/portcullis/portcullis/internal/authserver"
	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/pki"
)

// oauth2 compiles an API's token policy into the oauth2 authenticator.
func (c *compiler) oauth2(path string, a config.API) auth.Authenticator {
	o := a.OAuth2
	if o == nil {
		c.add(path, "auth uses oauth2 but the API has no oauth2 policy")
		return nil
	}
	opts := auth.OAuth2Options{
		Algorithms:         o.Algorithms,
		Leeway:             o.Leeway,
		RequiredClaims:     o.RequiredClaims,
		Scopes:             o.Scopes,
		RequireBoundTokens: o.RequireBoundTokens,
		ClientApplications: c.sc.clientApplication,
		Now:                c.o.Now,
		Logger:             c.o.Logger,
	}
	for _, rs := range o.RouteScopes {
		opts.RouteScopes = append(opts.RouteScopes, auth.RouteScope{Methods: rs.Methods, PathPrefix: rs.PathPrefix, Scopes: rs.Scopes})
	}
	for i, is := range o.Issuers {
		ip := fmt.Sprintf("%s.oauth2.issuers[%d]", path, i)
		if is.Builtin {
			if c.authServer == nil {
				// Its own problem is reported at authorization_server.
				return nil
			}
			opts.Issuers = append(opts.Issuers, c.builtinIssuer(is.Audiences))
			continue
		}
		client := c.providerClient(ip, is)
		if client == nil {
			return nil
		}
		iss := auth.OAuth2Issuer{Issuer: is.Issuer, JWKSURL: is.JWKSURL, Audiences: is.Audiences, HTTPClient: client}
		if in := is.Introspection; in != nil {
			secret := c.secret(ip+".introspection.client_secret_env", in.ClientSecretEnv, in.ClientSecretFile)
			if secret == nil {
				return nil
			}
			iss.Introspection = &auth.Introspection{URL: in.URL, ClientID: in.ClientID, ClientSecret: secret, HTTPClient: client}
		}
		opts.Issuers = append(opts.Issuers, iss)
	}
	au, err := auth.NewOAuth2(opts)
	if err != nil {
		c.add(path, "%v", err)
		return nil
	}
	c.snap.oauth2 = append(c.snap.oauth2, au)
	return au
}

// providerClient builds the HTTP client that fetches an identity provider's
// JWKS and calls its introspection endpoint: TLS against the issuer's trust
// store (system roots when none is named) and, if configured, the gateway's
// client certificate.
func (c *compiler) providerClient(path string, is config.TokenIssuer) *http.Client {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if is.Trust != "" {
		ts, ok := c.trust[is.Trust]
		if !ok {
			return nil
		}
		cfg.RootCAs = ts.Pool
	}
	if is.ClientCertificate != nil {
		id := c.identity(path+".client_certificate", *is.ClientCertificate)
		if id == nil {
			return nil
		}
		cfg.Certificates = []tls.Certificate{id.Certificate}
	}
	return &http.Client{
		Timeout: 10 * time.Second,
		// A provider that redirects is misconfigured; following it could
		// leak the introspection credentials to another host.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			TLSClientConfig:     cfg,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
		},
	}
}

// clientApplication maps a token's client_id to the tenant's application
// that registered it.
func (sc *scope) clientApplication(clientID string) (string, bool) {
	app, ok := sc.clientApps[clientID]
	return app, ok
}

// metadataPath is where RFC 8414 metadata lives (followed by the issuer's
// path, if it has one).
const metadataPath = "/.well-known/oauth-authorization-server"

// authorizationServer builds the built-in authorization server when the
// configuration has one. Its signing keys live in KeyDir, or in
// Options.AuthKeyDir (a directory the process keeps for its lifetime) so a
// reload keeps the keys and the tokens issued with them.
func (c *compiler) authorizationServer(f config.File) {
	as := f.AuthorizationServer
	if as == nil {
		return
	}
	p := "authorization_server"
	opts := authserver.Options{
		Issuer:      as.Issuer,
		PathPrefix:  as.PathPrefix,
		TokenTTL:    as.TokenTTL,
		Algorithm:   as.Algorithm,
		RotateEvery: as.RotateEvery,
		KeyDir:      c.file(as.KeyDir),
		Now:         c.o.Now,
		Logger:      c.o.Logger,
	}
	if opts.KeyDir == "" {
		opts.KeyDir = c.o.AuthKeyDir
	}
	if c.o.Validate {
		// validate must not create or rotate key files.
		opts.KeyDir = ""
	}
	for _, name := range as.Trust {
		s, ok := c.sets[name]
		if !ok {
			return
		}
		opts.Trust = append(opts.Trust, s)
	}
	for _, a := range f.APIs {
		if a.OAuth2 == nil {
			continue
		}
		for _, is := range a.OAuth2.Issuers {
			if is.Builtin {
				opts.Audiences = append(opts.Audiences, is.Audiences...)
			}
		}
	}
	for i, app := range f.Applications {
		o := app.OAuth2
		if o == nil || len(o.AuthMethods) == 0 {
			continue
		}
		cp := fmt.Sprintf("applications[%d].oauth2", i)
		cl := authserver.Client{ID: o.ClientID, Application: config.Qualify(app.Tenant, app.ID), SecretHashes: o.SecretHashes, Scopes: o.Scopes, BindTokens: o.BindTokens}
		for _, m := range o.AuthMethods {
			cl.Methods = append(cl.Methods, authserver.ClientAuthMethod(m))
		}
		if t := o.TLSClientAuth; t != nil {
			cl.TLSSubjectDN, cl.TLSSANDNS, cl.TLSSANURI = t.SubjectDN, t.DNS, t.URI
		}
		for j, file := range o.PublicKeys {
			key, err := readPublicKey(c.file(file))
			if err != nil {
				c.add(fmt.Sprintf("%s.public_keys[%d]", cp, j), "%v", err)
				continue
			}
			cl.JWKS = append(cl.JWKS, key)
		}
		for j, file := range o.SelfSignedCerts {
			data, err := os.ReadFile(c.file(file))
			if err == nil {
				var certs []*x509.Certificate
				if certs, err = pki.ParseCertificatesPEM(data); err == nil {
					cl.SelfSignedCerts = append(cl.SelfSignedCerts, certs...)
				}
			}
			if err != nil {
				c.add(fmt.Sprintf("%s.self_signed_certs[%d]", cp, j), "%v", err)
			}
		}
		opts.Clients = append(opts.Clients, cl)
	}
	opts.SubscriptionScopes = subscriptionScopes(f)
	srv, err := authserver.New(opts)
	if err != nil {
		c.add(p, "%v", err)
		return
	}
	c.authServer = srv
	c.snap.authServer = srv
	for _, cl := range opts.Clients {
		for _, m := range cl.Methods {
			if m == authserver.MethodTLSClientAuth || m == authserver.MethodSelfSignedTLSClientAuth {
				c.authServerWantsCerts = true
			}
		}
	}
	c.authServerListeners = as.Listeners
	c.authServerPrefix = as.PathPrefix
}

// builtinIssuer accepts tokens of the built-in server: keys in process,
// revocation without a round trip.
func (c *compiler) builtinIssuer(audiences []string) auth.OAuth2Issuer {
	return auth.OAuth2Issuer{
		Issuer:    c.authServer.Issuer(),
		Keyfunc:   c.authServer.Keyfunc(),
		Revoked:   c.authServer.IsRevoked,
		Audiences: audiences,
	}
}

func readPublicKey(path string) (crypto.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, fmt.Errorf("%s: no PUBLIC KEY or CERTIFICATE block", path)
		}
		switch b.Type {
		case "PUBLIC KEY":
			return x509.ParsePKIXPublicKey(b.Bytes)
		case "CERTIFICATE":
			cert, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			return cert.PublicKey, nil
		}
	}
}

// authServerMount serves the built-in authorization server's endpoints on
// the listeners it is configured for.
type authServerMount struct {
	handler http.Handler
	prefix  string
}

func (m *authServerMount) matches(path string) bool {
	if m == nil {
		return false
	}
	return path == m.prefix || strings.HasPrefix(path, m.prefix+"/") || strings.HasPrefix(path, metadataPath)
}

// subscriptionScopes limits the scopes the built-in server grants to those
// of the plans an application holds active subscriptions on (issue 6:
// granted = asked ∩ allowed ∩ subscribed). It is nil, and limits nothing,
// when no plan names scopes; a subscribed plan without scopes leaves the
// application's own scopes unlimited.
func subscriptionScopes(f config.File) func(string) []string {
	planScopes := map[string][]string{}
	limited := false
	for _, pl := range f.Plans {
		planScopes[config.Qualify(pl.Tenant, pl.Name)] = pl.Scopes
		limited = limited || len(pl.Scopes) > 0
	}
	if !limited {
		return nil
	}
	own := map[string][]string{}
	for _, a := range f.Applications {
		if a.OAuth2 != nil {
			own[config.Qualify(a.Tenant, a.ID)] = a.OAuth2.Scopes
		}
	}
	granted := map[string][]string{}
	for _, s := range f.Subscriptions {
		if s.State == "suspended" {
			continue
		}
		app := config.Qualify(s.Tenant, s.Application)
		scopes := planScopes[config.Qualify(s.Tenant, s.Plan)]
		if len(scopes) == 0 {
			scopes = own[app]
		}
		for _, sc := range scopes {
			if !slices.Contains(granted[app], sc) {
				granted[app] = append(granted[app], sc)
			}
		}
	}
	return func(app string) []string { return granted[app] }
}
