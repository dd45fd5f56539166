package snapshot

import (
	"strings"
)

// Router finds the API for a request by host, then longest path prefix, then
// method. It is built once per snapshot and only read afterwards, so it is
// safe for concurrent use. A lookup costs one map probe per path segment,
// whatever the number of APIs.
type Router struct {
	exact    map[string]prefixes // by host
	wildcard map[string]prefixes // by the suffix after "*."
	anyHost  prefixes
}

// prefixes maps a normalized path prefix to the APIs that share it (they
// differ by method).
type prefixes map[string][]*API

func newRouter(apis []*API) *Router {
	r := &Router{exact: map[string]prefixes{}, wildcard: map[string]prefixes{}, anyHost: prefixes{}}
	for _, a := range apis {
		var p prefixes
		switch h := a.Host; {
		case h == "":
			p = r.anyHost
		case strings.HasPrefix(h, "*."):
			if r.wildcard[h[2:]] == nil {
				r.wildcard[h[2:]] = prefixes{}
			}
			p = r.wildcard[h[2:]]
		default:
			if r.exact[h] == nil {
				r.exact[h] = prefixes{}
			}
			p = r.exact[h]
		}
		p[a.prefix] = append(p[a.prefix], a)
	}
	return r
}

// Match returns the API serving host (lower-case, without port), path and
// method. A more specific host wins over a wildcard, which wins over "any
// host"; within one, the longest path prefix wins. If some API matches host
// and path but not the method, Match returns nil and methodMismatch true.
func (r *Router) Match(host, path, method string) (api *API, methodMismatch bool) {
	if p, ok := r.exact[host]; ok {
		if a, mm := p.match(path, method); a != nil {
			return a, false
		} else if mm {
			methodMismatch = true
		}
	}
	if len(r.wildcard) > 0 {
		if i := strings.IndexByte(host, '.'); i > 0 {
			if p, ok := r.wildcard[host[i+1:]]; ok {
				if a, mm := p.match(path, method); a != nil {
					return a, false
				} else if mm {
					methodMismatch = true
				}
			}
		}
	}
	a, mm := r.anyHost.match(path, method)
	if a != nil {
		return a, false
	}
	return nil, methodMismatch || mm
}

// match tries path, then each shorter whole-segment prefix of it, down to
// "/": "/a/b/c" tries "/a/b/c", "/a/b", "/a", "/".
func (p prefixes) match(path, method string) (*API, bool) {
	if len(p) == 0 {
		return nil, false
	}
	mismatch := false
	for {
		for _, a := range p[path] {
			if a.allowsMethod(method) {
				return a, false
			}
			mismatch = true
		}
		if path == "/" || path == "" {
			return nil, mismatch
		}
		i := strings.LastIndexByte(path, '/')
		if i <= 0 {
			path = "/"
		} else {
			path = path[:i]
		}
	}
}
