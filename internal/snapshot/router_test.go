package snapshot

import (
	"fmt"
	"testing"
)

func TestRouterMatch(t *testing.T) {
	apis := []*API{
		{Name: "root", prefix: "/"},
		{Name: "a", prefix: "/a"},
		{Name: "a-b", prefix: "/a/b"},
		{Name: "a-get", hosts: []string{"api.example.com"}, prefix: "/a", methods: []string{"GET"}},
		{Name: "wild", hosts: []string{"*.example.com"}, prefix: "/w"},
		{Name: "slash", prefix: normalizePrefix("/s/")},
	}
	r := newRouter(apis, nil)
	tests := []struct {
		name, host, path, method string
		want                     string
		mismatch                 bool
	}{
		{"longest prefix wins", "x", "/a/b/c", "GET", "a-b", false},
		{"whole segments only", "x", "/ab", "GET", "root", false},
		{"exact prefix", "x", "/a", "GET", "a", false},
		{"exact host beats any host", "api.example.com", "/a/x", "GET", "a-get", false},
		{"method restriction falls back to any host", "api.example.com", "/a/x", "POST", "a", false},
		{"wildcard host one label", "v1.example.com", "/w/x", "GET", "wild", false},
		{"wildcard does not match two labels", "a.v1.example.com", "/w/x", "GET", "root", false},
		{"wildcard does not match apex", "example.com", "/w", "GET", "root", false},
		{"trailing-slash prefix", "x", "/s/x", "GET", "slash", false},
		{"a trailing slash in the prefix is the same prefix", "x", "/s", "GET", "slash", false},
		{"trailing slash in the path", "x", "/a/b/", "GET", "a-b", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, mm := r.Match(tc.host, tc.path, tc.method)
			name := ""
			if got != nil {
				name = got.Name
			}
			if name != tc.want || mm != tc.mismatch {
				t.Errorf("Match(%q, %q, %q) = %q, %v; want %q, %v", tc.host, tc.path, tc.method, name, mm, tc.want, tc.mismatch)
			}
		})
	}
}

func TestRouterMethodMismatchWithoutFallback(t *testing.T) {
	r := newRouter([]*API{{Name: "only-get", prefix: "/x", methods: []string{"GET"}}}, nil)
	if a, mm := r.Match("h", "/x/1", "DELETE"); a != nil || !mm {
		t.Errorf("got %v, %v; want nil, method mismatch", a, mm)
	}
	if a, mm := r.Match("h", "/y", "GET"); a != nil || mm {
		t.Errorf("got %v, %v; want nil, no mismatch", a, mm)
	}
}

// TestRouterTenants: a tenant's host serves only its APIs (no fall-back to
// APIs for any host) and a path under a tenant's prefix never reaches an API
// outside it.
func TestRouterTenants(t *testing.T) {
	apis := []*API{
		{Name: "default-root", prefix: "/"},
		{Name: "default-orders", prefix: "/orders"},
		{Name: "acme-orders", Tenant: "acme", hosts: []string{"acme.example.com"}, prefix: "/orders"},
		{Name: "globex-orders", Tenant: "globex", prefix: "/t/globex/orders"},
		{Name: "globex-root", Tenant: "globex", prefix: "/t/globex", methods: []string{"GET"}},
		{Name: "initech-any", Tenant: "initech", hosts: []string{"*.initech.example"}, prefix: "/"},
	}
	r := newRouter(apis, []tenantRoute{
		{hosts: []string{"acme.example.com"}},
		{prefix: "/t/globex"},
		{hosts: []string{"*.initech.example"}},
	})
	tests := []struct {
		name, host, path, method string
		want                     string
		mismatch                 bool
	}{
		{"tenant host serves its API", "acme.example.com", "/orders/1", "GET", "acme-orders", false},
		{"tenant host does not fall back to the default tenant", "acme.example.com", "/other", "GET", "", false},
		{"other hosts reach the default tenant", "www.example.com", "/orders/1", "GET", "default-orders", false},
		{"tenant prefix serves its API", "x", "/t/globex/orders/1", "GET", "globex-orders", false},
		{"tenant prefix root", "x", "/t/globex/else", "GET", "globex-root", false},
		{"tenant prefix root, other method: 405, not the default tenant", "x", "/t/globex/else", "POST", "", true},
		{"prefix is matched on whole segments", "x", "/t/globexx", "GET", "default-root", false},
		{"wildcard tenant host", "eu.initech.example", "/orders", "GET", "initech-any", false},
		{"tenant prefix under another tenant's host is not served", "acme.example.com", "/t/globex/orders", "GET", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, mm := r.Match(tc.host, tc.path, tc.method)
			name := ""
			if got != nil {
				name = got.Name
			}
			if name != tc.want || mm != tc.mismatch {
				t.Errorf("Match(%q, %q, %q) = %q, %v; want %q, %v", tc.host, tc.path, tc.method, name, mm, tc.want, tc.mismatch)
			}
		})
	}
	// Without the globex-root API, a path under the tenant prefix stops
	// there instead of reaching the default tenant's root.
	r = newRouter(apis[:4], []tenantRoute{{prefix: "/t/globex"}})
	if a, _ := r.Match("x", "/t/globex/unknown", "GET"); a != nil {
		t.Errorf("/t/globex/unknown reached %q; want no API", a.Name)
	}
}

// BenchmarkRouterMatch measures route lookup with many APIs on distinct
// hosts and prefixes; the cost must stay flat as APIs are added.
func BenchmarkRouterMatch(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var apis []*API
			for i := range n {
				apis = append(apis, &API{Name: fmt.Sprint(i), hosts: []string{fmt.Sprintf("h%d.example.com", i%100)}, prefix: fmt.Sprintf("/p%d", i)})
			}
			r := newRouter(apis, nil)
			host, path := "h7.example.com", fmt.Sprintf("/p%d/x", n-93)
			b.ReportAllocs()
			for b.Loop() {
				if a, _ := r.Match(host, path, "GET"); a == nil {
					b.Fatal("no match")
				}
			}
		})
	}
}
