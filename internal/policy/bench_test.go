package policy

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// BenchmarkRateLimitCheck measures one allowed request through a limiter
// with one per-application rule on the in-memory counter: key building,
// the counter's lock and GCRA step, and the two RateLimit fields. The clock
// advances by one emission interval per request so every request is
// allowed, and the header map is reused as a server's would be per
// response. "parallel" spreads 1024
// applications over the cores to show shard contention.
func BenchmarkRateLimitCheck(b *testing.B) {
	l := NewRateLimiter("api-a",
		[]Rule{{Name: "gold", Scope: ScopeApplication, Limit: Limit{Rate: 1_000_000, Period: time.Second, Burst: 1 << 20}}},
		nil, NewMemoryCounter(), nil)
	now := time.Now()
	b.Run("serial", func(b *testing.B) {
		h := http.Header{}
		b.ReportAllocs()
		for b.Loop() {
			now = now.Add(time.Microsecond)
			if err := l.Check(h, "", "app-17", "192.0.2.1", now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		apps := make([]string, 1024)
		for i := range apps {
			apps[i] = "app-" + strconv.Itoa(i)
		}
		b.ReportAllocs()
		now := now // 1024 keys × a burst of 2^20 outlast any run at one instant
		b.RunParallel(func(pb *testing.PB) {
			h := http.Header{}
			i := 0
			for pb.Next() {
				i++
				if err := l.Check(h, "", apps[i%len(apps)], "192.0.2.1", now); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkRateLimitCheckWithPlan is the realistic stage: an API-wide rule,
// the plan's rule and the plan's monthly quota chosen per request.
func BenchmarkRateLimitCheckWithPlan(b *testing.B) {
	l := NewRateLimiter("api-a",
		[]Rule{{Name: "api", Scope: ScopeAPI, Limit: Limit{Rate: 1_000_000, Period: time.Second}}},
		nil, NewMemoryCounter(), NewMemoryQuotas())
	plan := []Rule{{Name: "gold", Scope: ScopeApplication, Limit: Limit{Rate: 1_000_000, Period: time.Second}}}
	quota := []QuotaRule{{Name: "gold-month", Scope: ScopeApplication, Quota: Quota{Limit: 1 << 62, Window: QuotaMonth}}}
	key := Key{Application: "app-17", ClientIP: "192.0.2.1"}
	now := time.Now()
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Microsecond)
		if err := l.CheckWith(h, plan, quota, key, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIPRules measures an allowed lookup of a "host:port" address
// against 1000 allow prefixes of several lengths and a deny list, for IPv4
// and IPv6 clients.
func BenchmarkIPRules(b *testing.B) {
	var allow []string
	for i := range 1000 {
		allow = append(allow, "10."+strconv.Itoa(i%256)+"."+strconv.Itoa(i/256)+".0/24")
	}
	allow = append(allow, "172.16.0.0/12", "192.0.2.7", "2001:db8::/32", "2001:db8:1::/48")
	r, err := NewIPRules(allow, []string{"10.9.9.0/24", "2001:db8:dead::/48"})
	if err != nil {
		b.Fatal(err)
	}
	for _, addr := range []string{"10.3.2.77:51234", "[2001:db8:1::5]:443"} {
		b.Run(addr, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := r.Check(addr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHeaderRules applies a typical request rule set: remove a
// credential header, set two literal headers, set the application and the
// certificate fingerprint, and add a templated trace value. Each set or add
// allocates its value slice and each templated value its string; the header
// map is refilled each round so remove has work to do.
func BenchmarkHeaderRules(b *testing.B) {
	h, err := NewHeaderRules([]HeaderRule{
		{Op: "remove", Name: "Cookie"},
		{Op: "set", Name: "X-Gateway", Value: "portcullis"},
		{Op: "set", Name: "X-Forwarded-Api", Value: "${api}"},
		{Op: "set", Name: "X-Application", Value: "${application}"},
		{Op: "set", Name: "X-Client-Cert-Sha256", Value: "${client_cert_sha256}"},
		{Op: "add", Name: "X-Trace", Value: "${api}/${request_id}"},
	})
	if err != nil {
		b.Fatal(err)
	}
	v := &Vars{Application: "app-17", ClientCertSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", ClientIP: "192.0.2.1", RequestID: "5f0c9a1e7b2d4c3a", API: "api-a"}
	hdr := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		hdr["Cookie"] = nil
		delete(hdr, "X-Trace")
		h.Apply(hdr, v)
	}
}

// BenchmarkCORSHandle measures a simple request from an allowed origin, the
// common case on a CORS-enabled API: one origin lookup, Vary and three
// fields set on a header map cleared each round.
func BenchmarkCORSHandle(b *testing.B) {
	p, err := NewCORS(CORS{
		AllowOrigins:     []string{"https://app.example.com", "https://admin.example.com"},
		ExposeHeaders:    []string{"RateLimit", "X-Request-Id"},
		AllowCredentials: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "https://api.example.com/a/orders", nil)
	r.Header.Set("Origin", "https://app.example.com")
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		clear(w.Header())
		if handled, err := p.Handle(w, r); handled || err != nil {
			b.Fatal(handled, err)
		}
	}
}
