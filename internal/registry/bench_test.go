package registry

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkGet measures a point read of one application among 1,000: the
// query on the primary key plus decoding its JSON body. The admin API and
// the reference checks read this way; the data plane never does (it reads
// the compiled snapshot).
func BenchmarkGet(b *testing.B) {
	s := openTest(b)
	ctx := context.Background()
	put(b, s, acme)
	for i := range 1000 {
		put(b, s, Application{Tenant: "acme", Name: fmt.Sprintf("app-%04d", i), APIKeyHashes: []string{keyHash(fmt.Sprint(i))}})
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := s.Get(ctx, KindApplication, "acme", fmt.Sprintf("app-%04d", i%1000)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := s.Get(ctx, KindApplication, "acme", fmt.Sprintf("app-%04d", i%1000)); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}
