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
		{Name: "a-get", Host: "api.example.com", prefix: "/a", methods: []string{"GET"}},
		{Name: "wild", Host: "*.example.com", prefix: "/w"},
		{Name: "slash", prefix: normalizePrefix("/s/")},
	}
	r := newRouter(apis)
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
	r := newRouter([]*API{{Name: "only-get", prefix: "/x", methods: []string{"GET"}}})
	if a, mm := r.Match("h", "/x/1", "DELETE"); a != nil || !mm {
		t.Errorf("got %v, %v; want nil, method mismatch", a, mm)
	}
	if a, mm := r.Match("h", "/y", "GET"); a != nil || mm {
		t.Errorf("got %v, %v; want nil, no mismatch", a, mm)
	}
}

// BenchmarkRouterMatch measures route lookup with many APIs on distinct
// hosts and prefixes; the cost must stay flat as APIs are added.
func BenchmarkRouterMatch(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var apis []*API
			for i := range n {
				apis = append(apis, &API{Name: fmt.Sprint(i), Host: fmt.Sprintf("h%d.example.com", i%100), prefix: fmt.Sprintf("/p%d", i)})
			}
			r := newRouter(apis)
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
