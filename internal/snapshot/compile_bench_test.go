package snapshot

import (
	"fmt"
	"testing"

	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/testpki"
)

// BenchmarkCompile1000APIs measures a reload's compile step for 1,000 APIs
// with 1,000 applications, plans and subscriptions (PERFORMANCE.md: a reload
// of 1,000 APIs must finish well under a second and never block requests,
// which keep reading the old snapshot meanwhile).
func BenchmarkCompile1000APIs(b *testing.B) {
	dir := b.TempDir()
	ca := testpki.NewCA(b, "ca")
	cert, key := ca.Issue(b, "gw", testpki.Server(), testpki.DNS("localhost")).WriteFiles(b, dir, "gw")
	f := config.File{
		Listeners: []config.Listener{{Name: "public", Address: "127.0.0.1:0", TLS: config.ListenerTLS{Certificates: []config.ServerCertificate{{KeySource: config.KeySource{Cert: cert, Key: key}}}}}},
		Plans:     []config.Plan{{Name: "gold", RateLimit: &config.RateLimit{Rate: 100, Period: 1e9}}},
	}
	for i := range 1000 {
		name := fmt.Sprintf("api-%d", i)
		app := fmt.Sprintf("app-%d", i)
		f.APIs = append(f.APIs, config.API{Name: name, Match: config.Match{Host: fmt.Sprintf("h%d.example.com", i%50), PathPrefix: fmt.Sprintf("/p%d", i)},
			Auth: &config.AuthSpec{Name: "api_key"}, Plans: []string{"gold"}, Upstream: config.Upstream{Targets: []string{"http://127.0.0.1:9"}}})
		f.Applications = append(f.Applications, config.Application{ID: app, APIKeys: []string{fmt.Sprintf("sha256:%064x", i)}})
		f.Subscriptions = append(f.Subscriptions, config.Subscription{Application: app, API: name, Plan: "gold"})
	}
	f = config.WithDefaults(f)
	if ps := config.Validate(f); len(ps) > 0 {
		b.Fatal(ps[:min(3, len(ps))])
	}
	b.ReportAllocs()
	for b.Loop() {
		snap, probs := Compile(f, Options{BaseDir: dir})
		if len(probs) > 0 {
			b.Fatal(probs[:min(3, len(probs))])
		}
		snap.Close()
	}
}
