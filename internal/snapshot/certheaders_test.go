package snapshot

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"reflect"
	"testing"

	"github.com/portcullis/portcullis/internal/auth"
	"github.com/portcullis/portcullis/internal/testpki"
)

// TestCertHeaderCache: the cached forward headers are exactly what the
// setters write, for every chain length and both forms, on first sight and
// on every later hit, and a full cache starts afresh without mixing chains
// up.
func TestCertHeaderCache(t *testing.T) {
	root := testpki.NewCA(t, "rootCA")
	inter := root.Intermediate(t, "interCA")
	inter2 := inter.Intermediate(t, "inter2CA")
	leafA := inter.Issue(t, "client-a", testpki.Client())
	leafB := inter.Issue(t, "client-b", testpki.Client())
	leafC := inter2.Issue(t, "client-c", testpki.Client())
	chains := map[string][]*x509.Certificate{
		"leaf only":         {leafA.Cert},
		"leaf, inter, root": {leafA.Cert, inter.Cert, root.Cert},
		"other leaf":        {leafB.Cert, inter.Cert, root.Cert},
		"four":              {leafC.Cert, inter2.Cert, inter.Cert, root.Cert},
		"five (uncached)":   {leafC.Cert, inter2.Cert, inter.Cert, root.Cert, root.Cert},
	}
	setters := map[string]func(http.Header, []*x509.Certificate){"rfc9440": auth.SetRFC9440, "xfcc": auth.SetXFCC}
	for form, setter := range setters {
		var c certHeaderCache
		for round := range 3 {
			for name, chain := range chains {
				// What the pipeline did before: strip the client's
				// copies, then set.
				want := http.Header{"X-Other": {"kept"}, "Client-Cert": {"stale"}, "X-Forwarded-Client-Cert": {"stale"}}
				auth.StripForwardedCertHeaders(want)
				setter(want, chain)
				got := http.Header{"X-Other": {"kept"}, "Client-Cert": {"stale"}, "X-Forwarded-Client-Cert": {"stale"}}
				c.set(got, chain, setter)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s, %s, round %d:\ngot  %v\nwant %v", form, name, round, got, want)
				}
			}
		}
	}

	// Overflow: more distinct chains than the cache holds.
	var c certHeaderCache
	ca := testpki.NewCA(t, "manyCA")
	leaves := make([]*x509.Certificate, certHeaderCacheSize+20)
	for i := range leaves {
		leaves[i] = ca.Issue(t, fmt.Sprintf("c%d", i), testpki.Client()).Cert
	}
	for round := range 2 {
		for i, l := range leaves {
			chain := []*x509.Certificate{l, ca.Cert}
			want, got := http.Header{}, http.Header{}
			auth.SetRFC9440(want, chain)
			c.set(got, chain, auth.SetRFC9440)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("chain %d, round %d: got %v, want %v", i, round, got, want)
			}
		}
	}
}

func BenchmarkCertHeaders(b *testing.B) {
	root := testpki.NewCA(b, "rootCA")
	inter := root.Intermediate(b, "interCA")
	chain := []*x509.Certificate{inter.Issue(b, "client", testpki.Client()).Cert, inter.Cert, root.Cert}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		h := http.Header{}
		for b.Loop() {
			auth.SetRFC9440(h, chain)
		}
	})
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		var c certHeaderCache
		h := http.Header{}
		for b.Loop() {
			c.set(h, chain, auth.SetRFC9440)
		}
	})
}
