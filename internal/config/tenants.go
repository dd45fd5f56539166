package config

import (
	"fmt"
	"strings"
)

// Tenant returns the declared tenant called name, or the implicit default
// tenant (no hosts, no prefix) for "" and "default" when it is not
// declared. ok is false for an undeclared tenant.
func (f File) Tenant(name string) (t Tenant, ok bool) {
	name = TenantOf(name)
	for _, t := range f.Tenants {
		if t.Name == name {
			return t, true
		}
	}
	return Tenant{Name: name}, name == DefaultTenantName
}

// Route returns where an API is served once its tenant is applied: the
// hosts ("" for any host) and the path prefix, normalised (no trailing
// slash except for "/"). An API's own match.host wins; otherwise it is
// served on every host of its tenant. The tenant's path prefix comes in
// front of the API's.
func (f File) Route(a API) (hosts []string, prefix string) {
	t, _ := f.Tenant(a.Tenant)
	switch {
	case a.Match.Host != "":
		hosts = []string{a.Match.Host}
	case len(t.Hosts) > 0:
		hosts = t.Hosts
	default:
		hosts = []string{""}
	}
	prefix = normalizePrefix(a.Match.PathPrefix)
	if prefix == "" {
		prefix = "/"
	}
	if t.PathPrefix != "" {
		tp := normalizePrefix(t.PathPrefix)
		if prefix == "/" {
			prefix = tp
		} else {
			prefix = tp + prefix
		}
	}
	return hosts, prefix
}

// tenants checks the tenant declarations: names, hosts and prefixes that
// tell them apart, and no host or prefix claimed twice.
func (v *validator) tenants() {
	names := map[string]bool{}
	hosts := map[string]string{}
	var prefixes []Tenant
	for i, t := range v.f.Tenants {
		p := fmt.Sprintf("tenants[%d]", i)
		v.name(p+".name", "tenant", t.Name, names)
		if t.Name != DefaultTenantName && len(t.Hosts) == 0 && t.PathPrefix == "" {
			v.add(p, "tenant %q has neither hosts nor path_prefix, so no request could be told to belong to it: give it hosts (e.g. [api.%s.example.com]) or a path_prefix (e.g. /t/%s)", t.Name, t.Name, t.Name)
		}
		for j, h := range t.Hosts {
			hp := fmt.Sprintf("%s.hosts[%d]", p, j)
			if !hostRe.MatchString(h) {
				v.add(hp, "%q is not a host name: write it lower-case without scheme or port (api.example.com, *.example.com)", h)
				continue
			}
			if other, dup := hosts[h]; dup {
				v.add(hp, "host %q already belongs to tenant %q; a host resolves to one tenant", h, other)
			}
			hosts[h] = t.Name
		}
		if t.PathPrefix != "" {
			pp := p + ".path_prefix"
			switch {
			case !strings.HasPrefix(t.PathPrefix, "/") || normalizePrefix(t.PathPrefix) == "/":
				v.add(pp, "%q must start with \"/\" and name at least one segment, e.g. /t/%s", t.PathPrefix, t.Name)
			case strings.Contains(t.PathPrefix, "//") || strings.Contains(t.PathPrefix, "/./") || strings.Contains(t.PathPrefix, "/../") || strings.HasSuffix(t.PathPrefix, "/..") || strings.HasSuffix(t.PathPrefix, "/."):
				v.add(pp, "%q must be a clean path (no empty, \".\" or \"..\" segments)", t.PathPrefix)
			default:
				for _, o := range prefixes {
					if nested(normalizePrefix(o.PathPrefix), normalizePrefix(t.PathPrefix)) && (len(o.Hosts) == 0 || len(t.Hosts) == 0 || overlap(o.Hosts, t.Hosts)) {
						v.add(pp, "%q overlaps tenant %q's path_prefix %q: requests could not tell the tenants apart", t.PathPrefix, o.Name, o.PathPrefix)
					}
				}
				prefixes = append(prefixes, t)
			}
		}
	}
}

// nested reports whether one whole-segment prefix contains the other.
func nested(a, b string) bool {
	within := func(x, y string) bool { return x == y || strings.HasPrefix(y, x+"/") }
	return within(a, b) || within(b, a)
}

// tenantRef checks that a resource's tenant is declared (the default tenant
// always is).
func (v *validator) tenantRef(path, tenant string) {
	if _, ok := v.f.Tenant(tenant); !ok {
		var declared []string
		for _, t := range v.f.Tenants {
			declared = append(declared, t.Name)
		}
		v.add(path, "tenant %q is not declared under tenants%s", tenant, definedHint(tenant, declared))
	}
}

// qualifiedName checks a tenant's resource name; names are unique within
// their tenant.
func (v *validator) qualifiedName(path, kind, tenant, name string, seen map[string]bool) {
	if name != "" && nameRe.MatchString(name) && seen[Qualify(tenant, name)] {
		if TenantOf(tenant) == DefaultTenantName {
			v.add(path, "%s name %q is used twice; names must be unique", kind, name)
		} else {
			v.add(path, "%s name %q is used twice in tenant %q; names must be unique within a tenant", kind, name, tenant)
		}
		return
	}
	v.name(path, kind, name, map[string]bool{})
	seen[Qualify(tenant, name)] = true
}

// apiHost checks an API's own host against the tenants' hosts: a tenant's
// API is served only on its tenant's hosts, and another tenant's host
// belongs to that tenant alone.
func (v *validator) apiHost(path string, a API) {
	h := a.Match.Host
	if h == "" {
		return
	}
	t, _ := v.f.Tenant(a.Tenant)
	if len(t.Hosts) > 0 && !hostCovered(h, t.Hosts) {
		v.add(path, "%q is not one of tenant %q's hosts (%s): leave match.host empty to serve on all of them, or name one", h, t.Name, strings.Join(t.Hosts, ", "))
		return
	}
	for _, o := range v.f.Tenants {
		if o.Name != t.Name && hostCovered(h, o.Hosts) {
			v.add(path, "host %q belongs to tenant %q; an API of tenant %q cannot be served there", h, o.Name, t.Name)
		}
	}
}

// hostCovered reports whether host is one of hosts or matched by one of
// their "*." wildcards.
func hostCovered(host string, hosts []string) bool {
	for _, h := range hosts {
		if h == host {
			return true
		}
		if suffix, ok := strings.CutPrefix(h, "*."); ok && !strings.HasPrefix(host, "*.") {
			if i := strings.IndexByte(host, '.'); i > 0 && host[i+1:] == suffix {
				return true
			}
		}
	}
	return false
}

// namesIn picks the names of one tenant out of qualified names (see
// Qualify), for hints that never suggest another tenant's resource.
func namesIn(tenant string, qualified []string) []string {
	var out []string
	for _, q := range qualified {
		t, name, ok := strings.Cut(q, "/")
		switch {
		case !ok && TenantOf(tenant) == DefaultTenantName:
			out = append(out, q)
		case ok && t == TenantOf(tenant):
			out = append(out, name)
		}
	}
	return out
}
