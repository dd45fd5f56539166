package config

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Validate checks f (after WithDefaults) and returns every problem found, each
// with its key path; Document.Locate adds file positions. It never modifies f
// and does no I/O: whether a keystore opens is checked when the snapshot is
// compiled.
func Validate(f File) Problems {
	v := &validator{f: f}
	v.top()
	return v.probs
}

type validator struct {
	f     File
	probs Problems
}

func (v *validator) add(path, format string, args ...any) {
	v.probs = append(v.probs, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

var (
	nameRe   = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]*$`)
	methodRe = regexp.MustCompile(`^[A-Z]+$`)
	hostRe   = regexp.MustCompile(`^(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
)

func (v *validator) top() {
	if v.f.Version != 1 {
		v.add("version", "unsupported version %d (valid: 1)", v.f.Version)
	}
	for i, d := range v.f.Log.ExpiryWarningDays {
		if d <= 0 {
			v.add(fmt.Sprintf("log.expiry_warning_days[%d]", i), "must be a positive number of days")
		}
	}
	if s := v.f.Log.AccessLogSample; s != nil && (*s < 0 || *s > 1) {
		v.add("log.access_log_sample", "must be between 0 and 1 (the share of successful requests logged; failures are always logged)")
	}
	v.accessLog()
	if v.f.ShutdownGrace < 0 {
		v.add("shutdown_grace", "must not be negative")
	}
	if len(v.f.Listeners) == 0 {
		v.add("listeners", "at least one listener is needed, e.g. listeners: [{name: public, address: \":8443\", tls: {certificates: [{cert: gw.crt, key: gw.key}]}}]")
	}
	listenerNames := map[string]bool{}
	addrs := map[string]string{}
	for i, l := range v.f.Listeners {
		p := fmt.Sprintf("listeners[%d]", i)
		v.name(p+".name", "listener", l.Name, listenerNames)
		v.address(p+".address", l.Address, addrs)
		if len(l.TLS.Certificates) == 0 {
			v.add(p+".tls.certificates", "at least one certificate is needed (cert + key, or a keystore)")
		}
		for j, c := range l.TLS.Certificates {
			cp := fmt.Sprintf("%s.tls.certificates[%d]", p, j)
			v.keySource(cp, c.KeySource)
			for k, n := range c.ServerNames {
				if !hostRe.MatchString(strings.ToLower(n)) {
					v.add(fmt.Sprintf("%s.server_names[%d]", cp, k), "%q is not a host name (write api.example.com or *.example.com)", n)
				}
			}
		}
		switch l.TLS.ClientCertificates {
		case ClientCertRequire:
			if len(l.TLS.ClientTrust) == 0 {
				v.add(p+".tls.client_trust", "client_certificates: require needs client_trust: the trust store(s) client certificates must chain to")
			}
		default:
			if len(l.TLS.ClientTrust) > 0 {
				v.add(p+".tls.client_trust", "client_trust applies only with client_certificates: require; in request mode each API's mtls.trust decides")
			}
		}
		for j, ts := range l.TLS.ClientTrust {
			v.trustRef(fmt.Sprintf("%s.tls.client_trust[%d]", p, j), ts)
		}
		if r := l.HTTPRedirect; r != nil {
			v.address(p+".http_redirect.address", r.Address, addrs)
			if r.Port < 0 || r.Port > 65535 {
				v.add(p+".http_redirect.port", "port %d is out of range 1-65535", r.Port)
			}
		}
		lim := l.Limits
		for _, d := range []struct {
			key string
			val int64
		}{
			{"max_header_bytes", int64(lim.MaxHeaderBytes)},
			{"read_header_timeout", int64(lim.ReadHeaderTimeout)},
			{"read_timeout", int64(lim.ReadTimeout)},
			{"write_timeout", int64(lim.WriteTimeout)},
			{"idle_timeout", int64(lim.IdleTimeout)},
		} {
			if d.val < 0 {
				v.add(p+".limits."+d.key, "must not be negative")
			}
		}
	}

	for _, name := range sortedKeys(v.f.TrustStores) {
		ts := v.f.TrustStores[name]
		p := "trust_stores." + name
		if !nameRe.MatchString(name) && len(ts.Inline) == 0 {
			v.add(p, "trust store name %q may contain only letters, digits, '.', '_' and '-'", name)
		}
		if len(ts.PEM) == 0 && len(ts.Truststores) == 0 && len(ts.Inline) == 0 {
			v.add(p, "trust store has no certificates: set pem (a PEM bundle) and/or truststores (JKS or PKCS#12)")
		}
		for i, f := range ts.PEM {
			if strings.TrimSpace(f) == "" {
				v.add(fmt.Sprintf("%s.pem[%d]", p, i), "empty file name")
			}
		}
		for i, s := range ts.Truststores {
			v.keystore(fmt.Sprintf("%s.truststores[%d]", p, i), s, false)
		}
		if c := ts.CRL; c != nil {
			if len(c.Files) == 0 && len(c.URLs) == 0 {
				v.add(p+".crl", "crl needs files and/or urls")
			}
			for i, u := range c.URLs {
				v.httpURL(fmt.Sprintf("%s.crl.urls[%d]", p, i), u)
			}
			if c.Refresh < 0 {
				v.add(p+".crl.refresh", "must not be negative")
			}
		}
		if o := ts.OCSP; o != nil && o.Responder != "" {
			v.httpURL(p+".ocsp.responder", o.Responder)
		}
	}
	v.tenants()
	v.applications()
	v.authorizationServer()
	v.plansAndSubscriptions()
	v.storeAndAdmin()
	v.tracing()

	apiNames := map[string]bool{}
	type routeKey struct{ host, prefix string }
	routes := map[routeKey][]int{}
	for i, a := range v.f.APIs {
		p := fmt.Sprintf("apis[%d]", i)
		v.tenantRef(p+".tenant", a.Tenant)
		v.qualifiedName(p+".name", "API", a.Tenant, a.Name, apiNames)
		for j, ln := range a.Listeners {
			if !listenerNames[ln] {
				v.add(fmt.Sprintf("%s.listeners[%d]", p, j), "listener %q is not defined%s", ln, definedHint(ln, keysOf(listenerNames)))
			}
		}
		m := a.Match
		if m.Host != "" && !hostRe.MatchString(m.Host) {
			v.add(p+".match.host", "%q is not a host name: write it lower-case without scheme or port (api.example.com, *.example.com)", m.Host)
		}
		if !strings.HasPrefix(m.PathPrefix, "/") {
			v.add(p+".match.path_prefix", "%q must start with \"/\"", m.PathPrefix)
		}
		for j, meth := range m.Methods {
			if !methodRe.MatchString(meth) {
				v.add(fmt.Sprintf("%s.match.methods[%d]", p, j), "%q is not an HTTP method (write it upper-case, e.g. GET)", meth)
			}
		}
		v.apiHost(p+".match.host", a)
		hosts, prefix := v.f.Route(a)
		for _, h := range hosts {
			key := routeKey{h, prefix}
			for _, other := range routes[key] {
				o := v.f.APIs[other]
				if overlap(o.Match.Methods, m.Methods) && overlap(o.Listeners, a.Listeners) {
					v.add(p+".match", "same host and path prefix as apis[%d] (%q): requests could not tell them apart; give one a different path_prefix, host or methods", other, o.Name)
				}
			}
			routes[key] = append(routes[key], i)
		}
		v.upstream(p+".upstream", a.Upstream)
		v.apiAuth(p, a)
	}
}

// tracing checks the tracing block; an empty endpoint leaves tracing off.
func (v *validator) tracing() {
	t := v.f.Tracing
	if r := t.SampleRatio; r != nil && (*r < 0 || *r > 1 || *r != *r) {
		v.add("tracing.sample_ratio", "%v is not a ratio between 0 and 1 (e.g. 0.1 records one new trace in ten)", *r)
	}
	if t.Timeout < 0 {
		v.add("tracing.timeout", "must be positive (e.g. 10s)")
	}
	if t.OTLPEndpoint == "" {
		for _, k := range []struct {
			key string
			set bool
		}{
			{"insecure", t.Insecure},
			{"headers", len(t.Headers) > 0},
			{"headers_env", len(t.HeadersEnv) > 0},
			{"trust", t.Trust != ""},
			{"client_certificate", t.ClientCertificate != nil},
		} {
			if k.set {
				v.add("tracing."+k.key, "%s applies only with otlp_endpoint", k.key)
			}
		}
		return
	}
	u, err := url.Parse(t.OTLPEndpoint)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		v.add("tracing.otlp_endpoint", "%q is not an http:// or https:// URL (e.g. https://collector:4318)", t.OTLPEndpoint)
	case u.Scheme == "http" && !t.Insecure:
		v.add("tracing.otlp_endpoint", "%q is plain http: spans would travel unencrypted; use https, or set insecure: true to accept that", t.OTLPEndpoint)
	case u.RawQuery != "" || u.Fragment != "":
		v.add("tracing.otlp_endpoint", "%q must not have a query or fragment", t.OTLPEndpoint)
	}
	plain := err == nil && u.Scheme == "http"
	if t.Trust != "" {
		if plain {
			v.add("tracing.trust", "trust applies to an https:// otlp_endpoint; %q is plain http", t.OTLPEndpoint)
		} else {
			v.trustRef("tracing.trust", t.Trust)
		}
	}
	if t.ClientCertificate != nil {
		if plain {
			v.add("tracing.client_certificate", "client_certificate applies to an https:// otlp_endpoint; %q is plain http", t.OTLPEndpoint)
		} else {
			v.keySource("tracing.client_certificate", *t.ClientCertificate)
		}
	}
	v.collectorHeaders(t)
}

// envNameRe is a portable environment variable name.
var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// collectorHeaders checks tracing.headers and tracing.headers_env. Values
// are never quoted in a problem: headers_env values are variable names, but
// a headers value may be a credential put there by mistake.
func (v *validator) collectorHeaders(t Tracing) {
	seen := map[string]string{}
	check := func(key, name string) {
		p := "tracing." + key + "." + name
		lower := strings.ToLower(name)
		switch {
		case !headerNameRe.MatchString(name):
			v.add(p, "%q is not an HTTP header name (e.g. X-Api-Key)", name)
		case slices.Contains([]string{"content-type", "content-encoding", "content-length", "host", "transfer-encoding", "connection", "te", "trailer", "upgrade", "keep-alive", "proxy-connection"}, lower):
			v.add(p, "%s is set by the exporter or the HTTP connection and cannot be configured", name)
		case seen[lower] != "":
			v.add(p, "header %s is already set by %s", name, seen[lower])
		}
		seen[lower] = "tracing." + key + "." + name
	}
	for _, name := range sortedKeys(t.Headers) {
		check("headers", name)
		if strings.ContainsFunc(t.Headers[name], func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			v.add("tracing.headers."+name, "the value contains a line break or another control character")
		}
	}
	for _, name := range sortedKeys(t.HeadersEnv) {
		check("headers_env", name)
		if env := t.HeadersEnv[name]; !envNameRe.MatchString(env) {
			v.add("tracing.headers_env."+name, "%q is not an environment variable name: headers_env maps a header to the variable holding its value (e.g. X-Api-Key: COLLECTOR_API_KEY)", env)
		}
	}
}

func (v *validator) trustRef(path, name string) {
	if _, ok := v.f.TrustStores[name]; !ok {
		v.add(path, "trust store %q is not defined%s", name, definedHint(name, sortedKeys(v.f.TrustStores)))
	}
}

func (v *validator) httpURL(path, raw string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add(path, "%q is not an http:// or https:// URL", raw)
	}
}

func (v *validator) authSpec(path string, a *AuthSpec) {
	for i := range a.AnyOf {
		v.authSpec(fmt.Sprintf("%s.any_of[%d]", path, i), &a.AnyOf[i])
	}
	for i := range a.AllOf {
		v.authSpec(fmt.Sprintf("%s.all_of[%d]", path, i), &a.AllOf[i])
	}
}

// apiAuth checks an API's authentication against its policies and the
// listeners that serve it.
func (v *validator) apiAuth(p string, a API) {
	usesMTLS := a.Auth.Uses("mtls")
	if a.Auth != nil {
		v.authSpec(p+".auth", a.Auth)
	}
	switch {
	case usesMTLS && (a.MTLS == nil || len(a.MTLS.Trust) == 0):
		v.add(p+".mtls.trust", "auth uses mtls, so the API needs mtls.trust: the trust store(s) client certificates must chain to")
	case !usesMTLS && a.MTLS != nil:
		v.add(p+".mtls", "an mtls policy has no effect unless auth uses mtls (auth: mtls, or inside any_of / all_of)")
	}
	if a.MTLS != nil {
		for i, t := range a.MTLS.Trust {
			v.trustRef(fmt.Sprintf("%s.mtls.trust[%d]", p, i), t)
		}
		if al := a.MTLS.Allow; al != nil {
			for i, fp := range al.Fingerprints {
				if !validFingerprint(fp) {
					v.add(fmt.Sprintf("%s.mtls.allow.fingerprints[%d]", p, i), "%q is not a SHA-256 fingerprint (64 hex digits, colons allowed); get one with: openssl x509 -in client.crt -noout -fingerprint -sha256", fp)
				}
			}
			for i, u := range al.URI {
				if pu, err := url.Parse(u); err != nil || pu.Scheme == "" {
					v.add(fmt.Sprintf("%s.mtls.allow.uri[%d]", p, i), "%q is not an absolute URI (e.g. spiffe://example.org or spiffe://example.org/ns/prod/sa/api)", u)
				}
			}
		}
	}
	needsCert := usesMTLS || (a.Auth.Uses("oauth2") && a.OAuth2 != nil && a.OAuth2.RequireBoundTokens)
	if needsCert {
		for i, l := range v.f.Listeners {
			if (len(a.Listeners) == 0 || slices.Contains(a.Listeners, l.Name)) && l.TLS.ClientCertificates == ClientCertNone {
				v.add(fmt.Sprintf("listeners[%d].tls.client_certificates", i), "API %q needs client certificates (mtls or require_bound_tokens), but listener %q does not ask for them: set client_certificates: request (or require), or restrict the API to other listeners", a.Name, l.Name)
			}
		}
	}
	if a.Auth.Uses("api_key") {
		hasKeys := false
		for _, app := range v.f.Applications {
			hasKeys = hasKeys || (TenantOf(app.Tenant) == TenantOf(a.Tenant) && len(app.APIKeys) > 0)
		}
		if !hasKeys {
			v.add(p+".auth", "auth uses api_key, but no application of tenant %q has api_keys: add their hashes under applications[].api_keys", TenantOf(a.Tenant))
		}
	} else if a.APIKey != nil {
		v.add(p+".api_key", "an api_key policy has no effect unless auth uses api_key")
	}
	v.oauth2Policy(p, a)
	v.apiPolicies(p, a)
	if a.ForwardClientCert != ForwardNone && a.ForwardClientCert != "" && !usesMTLS {
		v.add(p+".forward_client_cert", "there is no verified client certificate to forward: the API's auth does not use mtls (set forward_client_cert: none or add mtls)")
	}
}

var (
	hexRe     = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	keyHashRe = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

func validFingerprint(s string) bool {
	return hexRe.MatchString(strings.ReplaceAll(s, ":", ""))
}

func (v *validator) applications() {
	ids := map[string]bool{}
	// Credentials are unique within a tenant: each tenant's APIs resolve
	// them in the tenant's own index.
	fps := map[string]string{}
	keys := map[string]string{}
	for i, app := range v.f.Applications {
		p := fmt.Sprintf("applications[%d]", i)
		v.tenantRef(p+".tenant", app.Tenant)
		v.qualifiedName(p+".id", "application", app.Tenant, app.ID, ids)
		for j, c := range app.Certificates {
			cp := fmt.Sprintf("%s.certificates[%d]", p, j)
			switch {
			case c.Fingerprint != "":
				if !validFingerprint(c.Fingerprint) {
					v.add(cp+".fingerprint", "%q is not a SHA-256 fingerprint (64 hex digits, colons allowed)", c.Fingerprint)
					continue
				}
				if c.Issuer != "" || c.SubjectDN != "" || c.CN != "" || c.DNS != "" || c.URI != "" {
					v.add(cp, "a fingerprint identifies one certificate: do not combine it with issuer or subject rules")
				}
				fp := TenantOf(app.Tenant) + "/" + strings.ToLower(strings.ReplaceAll(c.Fingerprint, ":", ""))
				if other, dup := fps[fp]; dup {
					v.add(cp+".fingerprint", "this certificate is already registered to application %q; a certificate maps to one application", other)
				}
				fps[fp] = app.ID
			case c.Issuer == "":
				v.add(cp, "register a certificate by fingerprint, or by issuer plus subject_dn, cn, dns or uri")
			case c.SubjectDN == "" && c.CN == "" && c.DNS == "" && c.URI == "":
				v.add(cp, "an issuer alone would map every certificate of that CA to this application: add subject_dn, cn, dns or uri")
			}
		}
		for j, k := range app.APIKeys {
			kp := fmt.Sprintf("%s.api_keys[%d]", p, j)
			h, ok := strings.CutPrefix(k, "sha256:")
			if !ok || !keyHashRe.MatchString(h) {
				v.add(kp, "API keys are stored hashed: write \"sha256:<64 lower-case hex digits>\" (portcullis hash-api-key prints it), never the key itself")
				continue
			}
			if other, dup := keys[TenantOf(app.Tenant)+"/"+h]; dup {
				v.add(kp, "this key is already registered to application %q", other)
			}
			keys[TenantOf(app.Tenant)+"/"+h] = app.ID
		}
	}
}

func (v *validator) name(path, kind, name string, seen map[string]bool) {
	switch {
	case name == "":
		v.add(path, "every %s needs a name", kind)
	case !nameRe.MatchString(name):
		v.add(path, "%s name %q may contain only letters, digits, '.', '_' and '-'", kind, name)
	case seen[name]:
		v.add(path, "%s name %q is used twice; names must be unique", kind, name)
	}
	seen[name] = true
}

func (v *validator) address(path, addr string, seen map[string]string) {
	if addr == "" {
		v.add(path, "address is required, e.g. \"127.0.0.1:8443\" or \":8443\"")
		return
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.add(path, "%q is not host:port (e.g. \"127.0.0.1:8443\" or \":8443\")", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.add(path, "port %q is not a number in 0-65535", port)
		return
	}
	if prev, dup := seen[addr]; dup && port != "0" {
		v.add(path, "address %q is already used by %s", addr, prev)
	}
	seen[addr] = path
}

func (v *validator) keySource(path string, k KeySource) {
	hasPEM := k.Cert != "" || k.Key != ""
	switch {
	case hasPEM && k.Keystore != nil:
		v.add(path, "set either cert + key (PEM) or keystore, not both")
	case !hasPEM && k.Keystore == nil:
		v.add(path, "no key material: set cert + key (PEM files) or keystore (JKS or PKCS#12)")
	case hasPEM:
		if k.Cert == "" {
			v.add(path+".cert", "cert is required with key (a PEM file holding the certificate and its chain)")
		}
		if k.Key == "" {
			v.add(path+".key", "key is required with cert (a PEM file holding the private key; may be the same file)")
		}
		v.secret(path, "key_password", k.KeyPasswordEnv, k.KeyPasswordFile)
	default:
		if k.KeyPasswordEnv != "" || k.KeyPasswordFile != "" {
			v.add(path+".key_password_env", "key_password_env/key_password_file apply to PEM keys; for a keystore set them inside keystore")
		}
		v.keystore(path+".keystore", *k.Keystore, true)
	}
}

func (v *validator) keystore(path string, s Keystore, keyEntry bool) {
	if s.Path == "" {
		v.add(path+".path", "path is required (a JKS or PKCS#12 file)")
	}
	v.secret(path, "password", s.PasswordEnv, s.PasswordFile)
	v.secret(path, "key_password", s.KeyPasswordEnv, s.KeyPasswordFile)
	if !keyEntry && (s.Alias != "" || s.KeyPasswordEnv != "" || s.KeyPasswordFile != "") {
		v.add(path, "alias and key_password apply to key entries; a truststore uses all its trusted certificates")
	}
}

func (v *validator) secret(path, name, env, file string) {
	if env != "" && file != "" {
		v.add(path+"."+name+"_env", "set %s_env or %s_file, not both", name, name)
	}
}

func (v *validator) upstream(path string, u Upstream) {
	if len(u.Targets) == 0 {
		v.add(path+".targets", "at least one target URL is needed, e.g. https://api.internal:8443")
	}
	anyHTTPS := false
	for i, t := range u.Targets {
		p := fmt.Sprintf("%s.targets[%d]", path, i)
		pu, err := url.Parse(t)
		switch {
		case err != nil:
			v.add(p, "%q is not a URL", t)
		case pu.Scheme != "https" && pu.Scheme != "http":
			v.add(p, "%q: scheme must be https:// or http://", t)
		case pu.Host == "":
			v.add(p, "%q has no host", t)
		case pu.RawQuery != "" || pu.Fragment != "" || pu.User != nil:
			v.add(p, "%q: a target is scheme://host[:port][/base-path], without user, query or fragment", t)
		default:
			anyHTTPS = anyHTTPS || pu.Scheme == "https"
		}
	}
	for _, d := range []struct {
		key string
		val int64
	}{
		{"connect_timeout", int64(u.ConnectTimeout)},
		{"tls_handshake_timeout", int64(u.TLSHandshakeTimeout)},
		{"response_timeout", int64(u.ResponseTimeout)},
		{"idle_timeout", int64(u.IdleTimeout)},
		{"max_idle_conns", int64(u.MaxIdleConns)},
	} {
		if d.val < 0 {
			v.add(path+"."+d.key, "must not be negative")
		}
	}
	t := u.TLS
	p := path + ".tls"
	tlsSet := t.ClientCertificate != nil || t.Trust != "" || t.ServerName != "" || t.InsecureSkipVerify || len(t.Pins) > 0
	if tlsSet && !anyHTTPS && len(u.Targets) > 0 {
		v.add(p, "TLS settings have no effect: every target is http://; use https:// targets")
	}
	if t.ClientCertificate != nil {
		v.keySource(p+".client_certificate", *t.ClientCertificate)
	}
	if t.Trust != "" {
		if _, ok := v.f.TrustStores[t.Trust]; !ok {
			v.add(p+".trust", "trust store %q is not defined%s", t.Trust, definedHint(t.Trust, sortedKeys(v.f.TrustStores)))
		}
	}
	if t.ServerName != "" && !hostRe.MatchString(t.ServerName) && net.ParseIP(t.ServerName) == nil {
		v.add(p+".server_name", "%q is not a host name", t.ServerName)
	}
	for i, pin := range t.Pins {
		b, err := base64.StdEncoding.DecodeString(pin)
		if err != nil || len(b) != 32 {
			v.add(fmt.Sprintf("%s.pins[%d]", p, i), "%q is not a base64 SHA-256 hash (44 characters); get one with: openssl x509 -in api.crt -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64", pin)
		}
	}
}

// Warnings lists the unsafe options f turns on. They are valid, but the
// gateway logs each of them at every load and validate prints them.
func Warnings(f File) Problems {
	var ws Problems
	for i, a := range f.APIs {
		p := fmt.Sprintf("apis[%d].upstream", i)
		t := a.Upstream.TLS
		if t.InsecureSkipVerify {
			ws = append(ws, Problem{Path: p + ".tls.insecure_skip_verify", Message: fmt.Sprintf("API %q accepts ANY certificate from its upstream: anyone who can intercept the connection can impersonate it; set trust instead", a.Name)})
		} else if t.VerifyHostname != nil && !*t.VerifyHostname {
			ws = append(ws, Problem{Path: p + ".tls.verify_hostname", Message: fmt.Sprintf("API %q does not check its upstream certificate's name: any certificate from the trust store is accepted for it", a.Name)})
		}
		for j, target := range a.Upstream.Targets {
			if strings.HasPrefix(target, "http://") {
				ws = append(ws, Problem{Path: fmt.Sprintf("%s.targets[%d]", p, j), Message: fmt.Sprintf("API %q sends requests to %s unencrypted and unauthenticated", a.Name, target)})
			}
		}
	}
	if t := f.Tracing; t.Insecure && strings.HasPrefix(t.OTLPEndpoint, "http://") {
		ws = append(ws, Problem{Path: "tracing.insecure", Message: fmt.Sprintf("spans go to %s unencrypted, to a collector that is not authenticated; they carry paths, hosts and client addresses", t.OTLPEndpoint)})
		if len(t.HeadersEnv) > 0 {
			ws = append(ws, Problem{Path: "tracing.headers_env", Message: fmt.Sprintf("the collector credentials in headers_env go to %s unencrypted: anyone on the path can read and reuse them", t.OTLPEndpoint)})
		}
	}
	if a := f.Admin; a != nil {
		if host, _, err := net.SplitHostPort(a.Address); err == nil {
			if ip := net.ParseIP(host); host == "" || (ip != nil && !ip.IsLoopback()) || (ip == nil && host != "localhost") {
				ws = append(ws, Problem{Path: "admin.address", Message: fmt.Sprintf("the admin API listens on %s, not only on loopback: anyone who can reach it can try credentials", a.Address)})
			}
		}
	}
	return ws
}

func normalizePrefix(p string) string {
	if len(p) > 1 {
		return strings.TrimSuffix(p, "/")
	}
	return p
}

// overlap reports whether two restriction lists can both match; an empty
// list means "all".
func overlap(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

func definedHint(got string, defined []string) string {
	if len(defined) == 0 {
		return " (none are defined)"
	}
	h := " (defined: " + strings.Join(defined, ", ") + ")"
	if s := closest(got, defined); s != "" {
		h = fmt.Sprintf(" (did you mean %q?)", s) + h
	}
	return h
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func keysOf(m map[string]bool) []string { return sortedKeys(m) }

var (
	tokenAlgorithms = []string{"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}
	clientMethods   = []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "tls_client_auth", "self_signed_tls_client_auth"}
)

func (v *validator) authorizationServer() {
	as := v.f.AuthorizationServer
	if as == nil {
		for i, app := range v.f.Applications {
			if app.OAuth2 != nil && len(app.OAuth2.AuthMethods) > 0 {
				v.add(fmt.Sprintf("applications[%d].oauth2.auth_methods", i), "auth_methods register a client of the built-in authorization server, which is not configured: add authorization_server, or keep only client_id to map an external provider's tokens to this application")
			}
		}
		return
	}
	p := "authorization_server"
	if u, err := url.Parse(as.Issuer); err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(as.Issuer, "/") {
		v.add(p+".issuer", "issuer must be an https:// URL without query, fragment or trailing slash, e.g. https://gateway.example.com:8443 (RFC 8414)")
	}
	for i, l := range as.Listeners {
		if !v.listenerDefined(l) {
			v.add(fmt.Sprintf("%s.listeners[%d]", p, i), "listener %q is not defined", l)
		}
	}
	if !strings.HasPrefix(as.PathPrefix, "/") {
		v.add(p+".path_prefix", "%q must start with \"/\"", as.PathPrefix)
	}
	if !slices.Contains([]string{"ES256", "RS256", "EdDSA"}, as.Algorithm) {
		v.add(p+".algorithm", "unsupported signing algorithm %q (valid: ES256, RS256, EdDSA)", as.Algorithm)
	}
	if as.TokenTTL < 0 || as.RotateEvery < 0 {
		v.add(p, "token_ttl and rotate_every must not be negative")
	}
	for i, t := range as.Trust {
		v.trustRef(fmt.Sprintf("%s.trust[%d]", p, i), t)
	}
	ids := map[string]bool{}
	for i, app := range v.f.Applications {
		o := app.OAuth2
		if o == nil {
			continue
		}
		cp := fmt.Sprintf("applications[%d].oauth2", i)
		if ids[o.ClientID] {
			v.add(cp+".client_id", "client_id %q is used twice", o.ClientID)
		}
		ids[o.ClientID] = true
		for j, m := range o.AuthMethods {
			mp := fmt.Sprintf("%s.auth_methods[%d]", cp, j)
			if m == "tls_client_auth" || m == "self_signed_tls_client_auth" {
				for li, l := range v.f.Listeners {
					if (len(as.Listeners) == 0 || slices.Contains(as.Listeners, l.Name)) && l.TLS.ClientCertificates == ClientCertNone {
						v.add(fmt.Sprintf("listeners[%d].tls.client_certificates", li), "client %q authenticates with a certificate (%s), but listener %q, which serves the authorization server, does not ask for one: set client_certificates: request", o.ClientID, m, l.Name)
					}
				}
			}
			switch m {
			case "client_secret_basic", "client_secret_post":
				if len(o.SecretHashes) == 0 {
					v.add(mp, "%s needs secret_hashes (sha256:<hex> of each client secret)", m)
				}
			case "private_key_jwt":
				if len(o.PublicKeys) == 0 {
					v.add(mp, "private_key_jwt needs public_keys: PEM files of the keys that sign the client's assertions")
				}
			case "tls_client_auth":
				if o.TLSClientAuth == nil || (o.TLSClientAuth.SubjectDN == "" && o.TLSClientAuth.DNS == "" && o.TLSClientAuth.URI == "") {
					v.add(mp, "tls_client_auth needs tls_client_auth with subject_dn, dns or uri of the client's certificate")
				}
				if len(as.Trust) == 0 {
					v.add(mp, "tls_client_auth needs authorization_server.trust: the CA(s) client certificates must chain to")
				}
			case "self_signed_tls_client_auth":
				if len(o.SelfSignedCerts) == 0 {
					v.add(mp, "self_signed_tls_client_auth needs self_signed_certs: PEM files of the client's certificates")
				}
			default:
				v.add(mp, "unknown client authentication method %q (valid: %s)", m, strings.Join(clientMethods, ", "))
			}
		}
		for j, h := range o.SecretHashes {
			if hex, ok := strings.CutPrefix(h, "sha256:"); !ok || !keyHashRe.MatchString(hex) {
				v.add(fmt.Sprintf("%s.secret_hashes[%d]", cp, j), "client secrets are stored hashed: write \"sha256:<64 lower-case hex digits>\" (portcullis hash-api-key prints it)")
			}
		}
	}
}

func (v *validator) listenerDefined(name string) bool {
	for _, l := range v.f.Listeners {
		if l.Name == name {
			return true
		}
	}
	return false
}

func (v *validator) oauth2Policy(p string, a API) {
	uses := a.Auth.Uses("oauth2")
	o := a.OAuth2
	switch {
	case uses && (o == nil || len(o.Issuers) == 0):
		v.add(p+".oauth2.issuers", "auth uses oauth2, so the API needs oauth2.issuers: [{builtin: true}] and/or external issuers with jwks_url or introspection")
		return
	case !uses && o != nil:
		v.add(p+".oauth2", "an oauth2 policy has no effect unless auth uses oauth2")
		return
	case o == nil:
		return
	}
	for i, alg := range o.Algorithms {
		if !slices.Contains(tokenAlgorithms, alg) {
			v.add(fmt.Sprintf("%s.oauth2.algorithms[%d]", p, i), "algorithm %q is not accepted (valid: %s; \"none\" and HMAC never are, since the gateway holds only public keys)", alg, strings.Join(tokenAlgorithms, ", "))
		}
	}
	for i, is := range o.Issuers {
		ip := fmt.Sprintf("%s.oauth2.issuers[%d]", p, i)
		if is.Builtin {
			if v.f.AuthorizationServer == nil {
				v.add(ip+".builtin", "builtin tokens need the built-in authorization server: add authorization_server")
			}
			if is.Issuer != "" || is.JWKSURL != "" || is.Introspection != nil {
				v.add(ip, "builtin: true takes its issuer and keys from authorization_server; remove issuer, jwks_url and introspection")
			}
			continue
		}
		if is.Issuer == "" {
			v.add(ip+".issuer", "issuer is required: the exact \"iss\" of the provider's tokens")
		}
		if is.JWKSURL == "" && is.Introspection == nil {
			v.add(ip, "give jwks_url (JWT access tokens) and/or introspection (opaque tokens)")
		}
		if is.JWKSURL != "" {
			v.httpURL(ip+".jwks_url", is.JWKSURL)
		}
		if is.Trust != "" {
			v.trustRef(ip+".trust", is.Trust)
		}
		if is.ClientCertificate != nil {
			v.keySource(ip+".client_certificate", *is.ClientCertificate)
		}
		if in := is.Introspection; in != nil {
			v.httpURL(ip+".introspection.url", in.URL)
			if in.ClientID == "" {
				v.add(ip+".introspection.client_id", "client_id is required: the gateway authenticates to the introspection endpoint")
			}
			if in.ClientSecretEnv == "" && in.ClientSecretFile == "" {
				v.add(ip+".introspection", "set client_secret_env or client_secret_file")
			}
			v.secret(ip+".introspection", "client_secret", in.ClientSecretEnv, in.ClientSecretFile)
		}
	}
	for i, rs := range o.RouteScopes {
		rp := fmt.Sprintf("%s.oauth2.route_scopes[%d]", p, i)
		if !strings.HasPrefix(rs.PathPrefix, "/") {
			v.add(rp+".path_prefix", "%q must start with \"/\"", rs.PathPrefix)
		}
		if len(rs.Scopes) == 0 {
			v.add(rp+".scopes", "name the scopes this route requires")
		}
	}
	if o.Leeway < 0 {
		v.add(p+".oauth2.leeway", "must not be negative")
	}
}

func (v *validator) rateLimit(path string, r *RateLimit) {
	if r == nil {
		return
	}
	if r.Rate <= 0 || r.Period <= 0 {
		v.add(path, "rate_limit needs a positive rate and period, e.g. {rate: 100, period: 1s, burst: 20}")
	}
	if r.Burst < 0 {
		v.add(path+".burst", "must not be negative")
	}
}

func (v *validator) ipRules(path string, r *IPRules) {
	if r == nil {
		return
	}
	for kind, list := range map[string][]string{"allow": r.Allow, "deny": r.Deny} {
		for i, e := range list {
			if _, _, err := net.ParseCIDR(e); err != nil && net.ParseIP(e) == nil {
				v.add(fmt.Sprintf("%s.%s[%d]", path, kind, i), "%q is neither an IP address nor a CIDR range (e.g. 10.0.0.0/8, 2001:db8::/32)", e)
			}
		}
	}
}

var headerVarRe = regexp.MustCompile(`\$\{([^}]*)\}`)

var headerVars = []string{"application", "client_cert_subject", "client_cert_sha256", "client_ip", "request_id", "api"}

func (v *validator) headerRules(path string, rules []HeaderRule) {
	for i, r := range rules {
		p := fmt.Sprintf("%s[%d]", path, i)
		n := 0
		for _, name := range []string{r.Set, r.Add, r.Remove} {
			if name != "" {
				n++
			}
		}
		if n != 1 {
			v.add(p, "write exactly one of set, add or remove, naming the header")
			continue
		}
		if r.Remove != "" && r.Value != "" {
			v.add(p+".value", "remove takes no value")
		}
		for _, m := range headerVarRe.FindAllStringSubmatch(r.Value, -1) {
			if !slices.Contains(headerVars, m[1]) {
				v.add(p+".value", "unknown variable ${%s} (valid: ${%s})", m[1], strings.Join(headerVars, "}, ${"))
			}
		}
	}
}

func (v *validator) apiPolicies(p string, a API) {
	v.rateLimit(p+".rate_limit", a.RateLimit)
	v.ipRules(p+".ip", a.IP)
	if c := a.CORS; c != nil {
		if len(c.AllowOrigins) == 0 {
			v.add(p+".cors.allow_origins", "name the allowed origins (e.g. https://app.example.com), or \"*\"")
		}
		if c.AllowCredentials && slices.Contains(c.AllowOrigins, "*") {
			v.add(p+".cors.allow_credentials", "browsers refuse credentials with allow_origins \"*\": list the origins instead")
		}
	}
	v.headerRules(p+".request_headers", a.RequestHeaders)
	v.headerRules(p+".response_headers", a.ResponseHeaders)
	plans := map[string]bool{}
	for _, pl := range v.f.Plans {
		if TenantOf(pl.Tenant) == TenantOf(a.Tenant) {
			plans[pl.Name] = true
		}
	}
	for i, pl := range a.Plans {
		if !plans[pl] {
			v.add(fmt.Sprintf("%s.plans[%d]", p, i), "plan %q is not defined%s", pl, definedHint(pl, sortedKeys(plans)))
		}
	}
	if len(a.Plans) > 0 && a.Auth == nil {
		v.add(p+".plans", "plans need to know the caller's application: give the API auth (oauth2, mtls or api_key)")
	}
}

func (v *validator) plansAndSubscriptions() {
	names := map[string]bool{}
	for i, pl := range v.f.Plans {
		p := fmt.Sprintf("plans[%d]", i)
		v.tenantRef(p+".tenant", pl.Tenant)
		v.qualifiedName(p+".name", "plan", pl.Tenant, pl.Name, names)
		v.rateLimit(p+".rate_limit", pl.RateLimit)
		if q := pl.Quota; q != nil {
			if q.Limit <= 0 {
				v.add(p+".quota.limit", "must be positive")
			}
			if q.Window != "day" && q.Window != "month" {
				v.add(p+".quota.window", "unknown window %q (valid: day, month)", q.Window)
			}
		}
	}
	apps := map[string]bool{}
	for i, a := range v.f.Applications {
		apps[Qualify(a.Tenant, a.ID)] = true
		v.rateLimit(fmt.Sprintf("applications[%d].rate_limit", i), a.RateLimit)
		v.ipRules(fmt.Sprintf("applications[%d].ip", i), a.IP)
	}
	apis := map[string]API{}
	for _, a := range v.f.APIs {
		apis[Qualify(a.Tenant, a.Name)] = a
	}
	type pair struct{ app, api string }
	seen := map[pair]bool{}
	for i, s := range v.f.Subscriptions {
		p := fmt.Sprintf("subscriptions[%d]", i)
		v.tenantRef(p+".tenant", s.Tenant)
		in := ""
		if TenantOf(s.Tenant) != DefaultTenantName {
			in = fmt.Sprintf(" in tenant %q", s.Tenant)
		}
		if !apps[Qualify(s.Tenant, s.Application)] {
			v.add(p+".application", "application %q is not defined%s%s", s.Application, in, definedHint(s.Application, namesIn(s.Tenant, sortedKeys(apps))))
		}
		api, ok := apis[Qualify(s.Tenant, s.API)]
		if !ok {
			v.add(p+".api", "API %q is not defined%s%s", s.API, in, definedHint(s.API, namesIn(s.Tenant, sortedKeys(apis))))
		}
		if !names[Qualify(s.Tenant, s.Plan)] {
			v.add(p+".plan", "plan %q is not defined%s%s", s.Plan, in, definedHint(s.Plan, namesIn(s.Tenant, sortedKeys(names))))
		} else if ok && !slices.Contains(api.Plans, s.Plan) {
			v.add(p+".plan", "API %q does not offer plan %q (its plans: %s)", s.API, s.Plan, strings.Join(api.Plans, ", "))
		}
		if s.State != "" && s.State != "active" && s.State != "suspended" {
			v.add(p+".state", "unknown state %q (valid: active, suspended)", s.State)
		}
		k := pair{Qualify(s.Tenant, s.Application), Qualify(s.Tenant, s.API)}
		if seen[k] {
			v.add(p, "application %q already has a subscription to API %q", s.Application, s.API)
		}
		seen[k] = true
	}
}

func (v *validator) storeAndAdmin() {
	if v.f.Store != "" && !strings.HasPrefix(v.f.Store, "sqlite:") {
		v.add("store", "unsupported store %q (valid: sqlite:PATH; PostgreSQL comes with clustering)", v.f.Store)
	}
	a := v.f.Admin
	if a == nil {
		return
	}
	v.address("admin.address", a.Address, map[string]string{})
	if len(a.Certificates) == 0 {
		v.add("admin.certificates", "the admin API serves HTTPS only: give it a certificate")
	}
	for i, c := range a.Certificates {
		v.keySource(fmt.Sprintf("admin.certificates[%d]", i), c.KeySource)
	}
	if v.f.Store != "" && len(a.Clients) == 0 && len(a.Tokens) == 0 {
		v.add("admin", "nobody could use the admin API: add clients (admin certificates) and/or tokens")
	}
	if len(a.Clients) > 0 && len(a.ClientTrust) == 0 {
		v.add("admin.client_trust", "admin client certificates need client_trust: the trust store(s) they chain to")
	}
	for i, t := range a.ClientTrust {
		v.trustRef(fmt.Sprintf("admin.client_trust[%d]", i), t)
	}
	role := func(p, role, tenant string) {
		switch role {
		case "admin":
			if tenant != "" {
				v.add(p+".tenant", "an admin manages every tenant; tenant applies to tenant-admin")
			}
		case "tenant-admin":
			if tenant == "" {
				v.add(p+".tenant", "a tenant-admin needs its tenant")
			}
		default:
			v.add(p+".role", "unknown role %q (valid: admin, tenant-admin)", role)
		}
	}
	for i, c := range a.Clients {
		p := fmt.Sprintf("admin.clients[%d]", i)
		if (c.CN == "") == (c.Fingerprint == "") {
			v.add(p, "identify the certificate by cn or by fingerprint (one of them)")
		}
		if c.Fingerprint != "" && !validFingerprint(c.Fingerprint) {
			v.add(p+".fingerprint", "%q is not a SHA-256 fingerprint", c.Fingerprint)
		}
		role(p, c.Role, c.Tenant)
	}
	for i, t := range a.Tokens {
		p := fmt.Sprintf("admin.tokens[%d]", i)
		if h, ok := strings.CutPrefix(t.Hash, "sha256:"); !ok || !keyHashRe.MatchString(h) {
			v.add(p+".hash", "admin tokens are stored hashed: write \"sha256:<64 lower-case hex digits>\" (portcullis hash-api-key --generate)")
		}
		if t.Name == "" {
			v.add(p+".name", "name the token (it appears in the audit log)")
		}
		role(p, t.Role, t.Tenant)
	}
}

// headerNameRe is an HTTP field name (RFC 9110 §5.1: a token).
var headerNameRe = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

func (v *validator) accessLog() {
	for i, h := range v.f.Log.AccessLogHeaders {
		if !headerNameRe.MatchString(h) {
			v.add(fmt.Sprintf("log.access_log_headers[%d]", i), "%q is not an HTTP header name (write it as sent, e.g. User-Agent)", h)
		}
	}
	for i, h := range v.f.Log.RedactHeaders {
		if !headerNameRe.MatchString(h) {
			v.add(fmt.Sprintf("log.redact_headers[%d]", i), "%q is not an HTTP header name (write it as sent, e.g. X-Auth-Token)", h)
		}
	}
	valid := make([]string, len(AccessLogFields))
	for i, f := range AccessLogFields {
		valid[i] = string(f)
	}
	for i, f := range v.f.Log.Redact {
		if !slices.Contains(AccessLogFields, f) {
			v.add(fmt.Sprintf("log.redact[%d]", i), "unknown access-log field %q (valid: %s)", f, strings.Join(valid, ", "))
		}
	}
}
