package config

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"regexp"
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
		if !nameRe.MatchString(name) {
			v.add(p, "trust store name %q may contain only letters, digits, '.', '_' and '-'", name)
		}
		if len(ts.PEM) == 0 && len(ts.Truststores) == 0 {
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
	}

	apiNames := map[string]bool{}
	type routeKey struct{ host, prefix string }
	routes := map[routeKey][]int{}
	for i, a := range v.f.APIs {
		p := fmt.Sprintf("apis[%d]", i)
		v.name(p+".name", "API", a.Name, apiNames)
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
		key := routeKey{m.Host, normalizePrefix(m.PathPrefix)}
		for _, other := range routes[key] {
			o := v.f.APIs[other]
			if overlap(o.Match.Methods, m.Methods) && overlap(o.Listeners, a.Listeners) {
				v.add(p+".match", "same host and path prefix as apis[%d] (%q): requests could not tell them apart; give one a different path_prefix, host or methods", other, o.Name)
			}
		}
		routes[key] = append(routes[key], i)
		v.upstream(p+".upstream", a.Upstream)
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
