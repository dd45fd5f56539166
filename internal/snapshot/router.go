package snapshot

import (
	"strings"
)

// Router finds the API for a request by host, then longest path prefix, then
// method. It is built once per snapshot and only read afterwards, so it is
// safe for concurrent use. A lookup costs one map probe per path segment,
// whatever the number of APIs.
//
// Tenants are resolved on the way: a host that belongs to a tenant serves
// only that tenant's APIs (no fall-back to APIs for any host), and a path
// under a tenant's prefix never falls back to a shorter prefix outside it.
type Router struct {
	exact    map[string]prefixes // by host
	wildcard map[string]prefixes // by the suffix after "*."
	anyHost  prefixes
	// claimed and claimedWild are the hosts (exact, and wildcard suffixes)
	// that belong to a tenant.
	claimed     map[string]bool
	claimedWild map[string]bool
}

// prefixes maps a normalized path prefix to the APIs that share it (they
// differ by method). A tenant's prefix ends in the boundary marker.
type prefixes map[string][]*API

// boundary marks a tenant's path prefix: matching stops there.
var boundary = &API{Name: "tenant boundary"}

// tenantRoute is where one tenant is resolved: its hosts (empty: any host)
// and path prefix ("" for none).
type tenantRoute struct {
	hosts  []string
	prefix string
}

func newRouter(apis []*API, tenants []tenantRoute) *Router {
	r := &Router{exact: map[string]prefixes{}, wildcard: map[string]prefixes{}, anyHost: prefixes{},
		claimed: map[string]bool{}, claimedWild: map[string]bool{}}
	for _, a := range apis {
		r.add(a.hosts, a.prefix, a)
	}
	for _, t := range tenants {
		for _, h := range t.hosts {
			if s, ok := strings.CutPrefix(h, "*."); ok {
				r.claimedWild[s] = true
			} else {
				r.claimed[h] = true
			}
		}
		if t.prefix != "" {
			r.add(t.hosts, t.prefix, boundary)
		}
	}
	return r
}

// add files a under prefix for each of hosts (none: any host).
func (r *Router) add(hosts []string, prefix string, a *API) {
	if len(hosts) == 0 {
		hosts = []string{""}
	}
	for _, h := range hosts {
		p := r.bucket(h)
		p[prefix] = append(p[prefix], a)
	}
}

// bucket returns the prefixes for host ("" for any host), creating them.
func (r *Router) bucket(h string) prefixes {
	switch {
	case h == "":
		return r.anyHost
	case strings.HasPrefix(h, "*."):
		if r.wildcard[h[2:]] == nil {
			r.wildcard[h[2:]] = prefixes{}
		}
		return r.wildcard[h[2:]]
	default:
		if r.exact[h] == nil {
			r.exact[h] = prefixes{}
		}
		return r.exact[h]
	}
}

// Match returns the API serving host (lower-case, without port), path and
// method. A more specific host wins over a wildcard, which wins over "any
// host"; within one, the longest path prefix wins. If some API matches host
// and path but not the method, Match returns nil and methodMismatch true.
func (r *Router) Match(host, path, method string) (api *API, methodMismatch bool) {
	claimed := r.claimed[host]
	if p, ok := r.exact[host]; ok {
		a, mm, stop := p.match(path, method)
		if a != nil {
			return a, false
		}
		methodMismatch = methodMismatch || mm
		if stop {
			return nil, methodMismatch
		}
	}
	if len(r.wildcard) > 0 {
		if i := strings.IndexByte(host, '.'); i > 0 {
			suffix := host[i+1:]
			claimed = claimed || r.claimedWild[suffix]
			if p, ok := r.wildcard[suffix]; ok {
				a, mm, stop := p.match(path, method)
				if a != nil {
					return a, false
				}
				methodMismatch = methodMismatch || mm
				if stop {
					return nil, methodMismatch
				}
			}
		}
	}
	if claimed {
		// The host belongs to a tenant: another tenant's APIs (those for
		// any host) must not answer for it.
		return nil, methodMismatch
	}
	a, mm, _ := r.anyHost.match(path, method)
	if a != nil {
		return a, false
	}
	return nil, methodMismatch || mm
}

// match tries path, then each shorter whole-segment prefix of it, down to
// "/": "/a/b/c" tries "/a/b/c", "/a/b", "/a", "/". It stops (stop true) at
// a tenant's prefix.
func (p prefixes) match(path, method string) (api *API, mismatch, stop bool) {
	if len(p) == 0 {
		return nil, false, false
	}
	for {
		for _, a := range p[path] {
			if a == boundary {
				return nil, mismatch, true
			}
			if a.allowsMethod(method) {
				return a, false, false
			}
			mismatch = true
		}
		if path == "/" || path == "" {
			return nil, mismatch, false
		}
		i := strings.LastIndexByte(path, '/')
		if i <= 0 {
			path = "/"
		} else {
			path = path[:i]
		}
	}
}
