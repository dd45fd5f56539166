package telemetry

import (
	"bytes"
	"fmt"
	"log/slog"
	"math"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape serves one GET /metrics from m and parses the text exposition.
func scrape(t testing.TB, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: status %d: %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return fams
}

// series returns the metric of family name whose labels are exactly
// labels, or nil.
func series(fams map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		for _, lp := range m.GetLabel() {
			if v, ok := labels[lp.GetName()]; !ok || v != lp.GetValue() {
				continue next
			}
		}
		return m
	}
	return nil
}

// seriesCount returns how many series family name has.
func seriesCount(fams map[string]*dto.MetricFamily, name string) int {
	return len(fams[name].GetMetric())
}

func reqLabels(api, class, app, code string) map[string]string {
	return map[string]string{"api": api, "status_class": class, "application": app, "code": code}
}

type reqCall struct {
	api    string
	status int
	app    string
	code   string
}

func TestRequestCounters(t *testing.T) {
	tests := []struct {
		name  string
		apps  []string
		calls []reqCall
		want  map[string]float64 // series (api/class/app/code) → count
	}{
		{
			name:  "api and status class",
			calls: []reqCall{{"orders", 200, "", ""}, {"orders", 204, "", ""}, {"orders", 302, "", ""}},
			want:  map[string]float64{"orders/2xx/-/-": 2, "orders/3xx/-/-": 1},
		},
		{
			name:  "no api matched",
			calls: []reqCall{{"", 404, "", "route.not_found"}},
			want:  map[string]float64{"-/4xx/-/route.not_found": 1},
		},
		{
			name:  "configured application kept",
			apps:  []string{"billing"},
			calls: []reqCall{{"orders", 503, "billing", "upstream.unavailable"}},
			want:  map[string]float64{"orders/5xx/billing/upstream.unavailable": 1},
		},
		{
			name:  "unknown application is other",
			apps:  []string{"billing"},
			calls: []reqCall{{"orders", 200, "intruder", ""}, {"orders", 200, "billing", ""}},
			want:  map[string]float64{"orders/2xx/other/-": 1, "orders/2xx/billing/-": 1},
		},
		{
			name:  "no applications configured",
			calls: []reqCall{{"orders", 200, "billing", ""}},
			want:  map[string]float64{"orders/2xx/other/-": 1},
		},
		{
			name:  "status classes at the edges",
			calls: []reqCall{{"a", 100, "", ""}, {"a", 199, "", ""}, {"a", 599, "", ""}, {"a", 0, "", ""}, {"a", 600, "", ""}},
			want:  map[string]float64{"a/1xx/-/-": 2, "a/5xx/-/-": 1, "a/other/-/-": 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMetrics()
			m.SetApplications(tt.apps)
			for _, c := range tt.calls {
				m.Request(c.api, c.status, c.app, c.code, time.Millisecond, 0)
			}
			fams := scrape(t, m)
			if got := seriesCount(fams, "portcullis_requests_total"); got != len(tt.want) {
				t.Errorf("series = %d, want %d", got, len(tt.want))
			}
			for key, want := range tt.want {
				p := strings.Split(key, "/")
				s := series(fams, "portcullis_requests_total", reqLabels(p[0], p[1], p[2], p[3]))
				if s == nil {
					t.Errorf("no series %s", key)
					continue
				}
				if got := s.GetCounter().GetValue(); got != want {
					t.Errorf("%s = %v, want %v", key, got, want)
				}
			}
		})
	}
}

// bucket returns the cumulative count of the bucket with upper bound le.
func bucket(t *testing.T, h *dto.Histogram, le float64) uint64 {
	t.Helper()
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == le {
			return b.GetCumulativeCount()
		}
	}
	t.Fatalf("no bucket le=%v", le)
	return 0
}

func TestRequestHistograms(t *testing.T) {
	tests := []struct {
		name            string
		total, upstream time.Duration
		le              float64
		wantTotal       uint64 // cumulative count at le for total
		wantUpstream    uint64 // cumulative count at le for upstream
		wantUpstreamN   uint64 // upstream sample count
	}{
		{"sub-millisecond", 300 * time.Microsecond, 200 * time.Microsecond, 0.0005, 1, 1, 1},
		{"above the bucket", 3 * time.Millisecond, 2 * time.Millisecond, 0.0025, 0, 1, 1},
		{"at the bound", 10 * time.Millisecond, 10 * time.Millisecond, 0.01, 1, 1, 1},
		{"slow", 7 * time.Second, 6 * time.Second, 5, 0, 0, 1},
		{"no upstream", 20 * time.Millisecond, 0, 0.025, 1, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMetrics()
			m.Request("orders", 200, "", "", tt.total, tt.upstream)
			fams := scrape(t, m)
			tot := series(fams, "portcullis_request_duration_seconds", map[string]string{"api": "orders", "status_class": "2xx"})
			up := series(fams, "portcullis_upstream_duration_seconds", map[string]string{"api": "orders"})
			if tot == nil || up == nil {
				t.Fatalf("missing histogram series: total %v upstream %v", tot, up)
			}
			if got := tot.GetHistogram().GetSampleCount(); got != 1 {
				t.Errorf("total samples = %d, want 1", got)
			}
			if got := math.Abs(tot.GetHistogram().GetSampleSum() - tt.total.Seconds()); got > 1e-9 {
				t.Errorf("total sum off by %v", got)
			}
			if got := bucket(t, tot.GetHistogram(), tt.le); got != tt.wantTotal {
				t.Errorf("total le=%v: %d, want %d", tt.le, got, tt.wantTotal)
			}
			if got := bucket(t, up.GetHistogram(), tt.le); got != tt.wantUpstream {
				t.Errorf("upstream le=%v: %d, want %d", tt.le, got, tt.wantUpstream)
			}
			if got := up.GetHistogram().GetSampleCount(); got != tt.wantUpstreamN {
				t.Errorf("upstream samples = %d, want %d", got, tt.wantUpstreamN)
			}
			// The exposition adds the +Inf bucket.
			if b := tot.GetHistogram().GetBucket(); len(b) != len(durationBuckets)+1 || !math.IsInf(b[len(b)-1].GetUpperBound(), 1) {
				t.Errorf("buckets = %v, want %v and +Inf", b, durationBuckets)
			}
		})
	}
}

func TestApplicationCardinalityBounded(t *testing.T) {
	m := NewMetrics()
	m.SetApplications([]string{"billing"})
	const n = 10000
	for i := range n {
		m.Request("orders", 200, fmt.Sprintf("client-%d", i), "", time.Millisecond, time.Millisecond)
	}
	m.Request("orders", 200, "billing", "", time.Millisecond, time.Millisecond)
	fams := scrape(t, m)
	if got := seriesCount(fams, "portcullis_requests_total"); got != 2 {
		t.Fatalf("requests series = %d, want 2 (other, billing)", got)
	}
	if s := series(fams, "portcullis_requests_total", reqLabels("orders", "2xx", "other", "-")); s.GetCounter().GetValue() != n {
		t.Errorf("other = %v, want %d", s.GetCounter().GetValue(), n)
	}
	if got := len(*m.series.Load()); got != 2 {
		t.Errorf("cached label sets = %d, want 2", got)
	}

	// Changing the set takes effect on the next request.
	m.SetApplications([]string{"client-7"})
	m.Request("orders", 200, "client-7", "", time.Millisecond, 0)
	m.Request("orders", 200, "billing", "", time.Millisecond, 0)
	fams = scrape(t, m)
	if s := series(fams, "portcullis_requests_total", reqLabels("orders", "2xx", "client-7", "-")); s.GetCounter().GetValue() != 1 {
		t.Errorf("client-7 = %v, want 1", s.GetCounter().GetValue())
	}
	if s := series(fams, "portcullis_requests_total", reqLabels("orders", "2xx", "other", "-")); s.GetCounter().GetValue() != n+1 {
		t.Errorf("other = %v, want %d", s.GetCounter().GetValue(), n+1)
	}
}

func TestInvalidUTF8LabelDoesNotPanic(t *testing.T) {
	m := NewMetrics()
	m.Request("bad\xff", 200, "", "", time.Millisecond, 0)
	m.TLSHandshakeFailure("downstream", "x\xfe")
	fams := scrape(t, m)
	if series(fams, "portcullis_requests_total", reqLabels("bad\uFFFD", "2xx", "-", "-")) == nil {
		t.Error("request with repaired api label not found")
	}
}

func TestCounters(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		do     func(m *Metrics)
		metric string
		labels map[string]string
		want   float64
	}{
		{"handshake failure", func(m *Metrics) {
			m.TLSHandshakeFailure("downstream", "client_cert_expired")
			m.TLSHandshakeFailure("downstream", "client_cert_expired")
			m.TLSHandshakeFailure("upstream", "unknown_authority")
		}, "portcullis_tls_handshake_failures_total", map[string]string{"hop": "downstream", "reason": "client_cert_expired"}, 2},
		{"handshake failure without reason", func(m *Metrics) { m.TLSHandshakeFailure("upstream", "") },
			"portcullis_tls_handshake_failures_total", map[string]string{"hop": "upstream", "reason": "-"}, 1},
		{"reload ok", func(m *Metrics) { m.Reload(true); m.Reload(false); m.Reload(true) },
			"portcullis_reloads_total", map[string]string{"result": "ok"}, 2},
		{"reload failed", func(m *Metrics) { m.Reload(false) },
			"portcullis_reloads_total", map[string]string{"result": "failed"}, 1},
		{"reload failed series exists before any failure", func(m *Metrics) { m.Reload(true) },
			"portcullis_reloads_total", map[string]string{"result": "failed"}, 0},
		{"last successful reload time", func(m *Metrics) {
			m.Reload(true)
			m.now = func() time.Time { return at.Add(time.Hour) }
			m.Reload(false)
		},
			"portcullis_config_last_reload_success_timestamp_seconds", map[string]string{}, float64(at.Unix())},
		{"last reload failed", func(m *Metrics) { m.Reload(true); m.Reload(false) },
			"portcullis_config_last_reload_successful", map[string]string{}, 0},
		{"last reload succeeded", func(m *Metrics) { m.Reload(false); m.Reload(true) },
			"portcullis_config_last_reload_successful", map[string]string{}, 1},
		{"rate limit allowed", func(m *Metrics) {
			m.RateLimitDecision("orders", "allowed")
			m.RateLimitDecision("orders", "limited")
			m.RateLimitDecision("orders", "allowed")
		}, "portcullis_ratelimit_decisions_total", map[string]string{"api": "orders", "result": "allowed"}, 2},
		{"rate limit quota", func(m *Metrics) { m.RateLimitDecision("orders", "quota") },
			"portcullis_ratelimit_decisions_total", map[string]string{"api": "orders", "result": "quota"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMetrics()
			m.now = func() time.Time { return at }
			tt.do(m)
			s := series(scrape(t, m), tt.metric, tt.labels)
			if s == nil {
				t.Fatalf("no series %s%v", tt.metric, tt.labels)
			}
			got := s.GetCounter().GetValue()
			if s.GetGauge() != nil {
				got = s.GetGauge().GetValue()
			}
			if got != tt.want {
				t.Errorf("%s%v = %v, want %v", tt.metric, tt.labels, got, tt.want)
			}
		})
	}
}

func TestRuntimeCollectors(t *testing.T) {
	fams := scrape(t, NewMetrics())
	for _, name := range []string{"go_goroutines", "process_start_time_seconds"} {
		if fams[name] == nil {
			t.Errorf("%s missing", name)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRegisterFunc(t *testing.T) {
	m := NewMetrics()
	var logs syncBuffer
	m.SetLogger(slog.New(slog.NewTextHandler(&logs, nil)))
	stats := map[string]float64{"ok": 5, "revoked": 2}
	m.RegisterFunc("portcullis_revocation_checks_total", "Revocation checks by result.", []string{"result"},
		func(emit func(float64, ...string)) {
			for k, v := range stats {
				emit(v, k)
			}
		})
	fams := scrape(t, m)
	f := fams["portcullis_revocation_checks_total"]
	if f.GetType() != dto.MetricType_COUNTER {
		t.Fatalf("type = %v, want counter", f.GetType())
	}
	for k, v := range stats {
		if s := series(fams, f.GetName(), map[string]string{"result": k}); s.GetCounter().GetValue() != v {
			t.Errorf("%s = %v, want %v", k, s.GetCounter().GetValue(), v)
		}
	}

	// Values are read at scrape time.
	stats["ok"] = 9
	if s := series(scrape(t, m), f.GetName(), map[string]string{"result": "ok"}); s.GetCounter().GetValue() != 9 {
		t.Errorf("after change ok = %v, want 9", s.GetCounter().GetValue())
	}

	// Registering again replaces the function; a bad emit is logged and
	// does not fail the scrape.
	m.RegisterFunc("portcullis_revocation_checks_total", "Revocation checks by result.", []string{"result"},
		func(emit func(float64, ...string)) {
			emit(1, "ok")
			emit(1, "too", "many")
		})
	fams = scrape(t, m)
	if s := series(fams, f.GetName(), map[string]string{"result": "ok"}); s.GetCounter().GetValue() != 1 {
		t.Errorf("after replace ok = %v, want 1", s.GetCounter().GetValue())
	}
	if fams["go_goroutines"] == nil {
		t.Error("scrape lost other metrics after a collector error")
	}
	if !strings.Contains(logs.String(), "metrics scrape failed") {
		t.Errorf("collector error not logged: %q", logs.String())
	}

	for _, bad := range []struct {
		name, help string
		labels     []string
	}{
		{"portcullis_revocation_checks_total", "Other help.", []string{"result"}},
		{"portcullis_revocation_checks_total", "Revocation checks by result.", []string{"kind"}},
		{"not a valid name", "x", nil},
		{"portcullis_x_total", "x", []string{"bad-label"}},
		{"portcullis_requests_total", "Clash.", []string{"api"}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("RegisterFunc(%q, %q, %v) did not panic", bad.name, bad.help, bad.labels)
				}
			}()
			m.RegisterFunc(bad.name, bad.help, bad.labels, func(func(float64, ...string)) {})
		}()
	}
}

func TestConcurrentUse(t *testing.T) {
	m := NewMetrics()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				m.Request(fmt.Sprintf("api-%d", i%7), 200+100*(i%4), fmt.Sprintf("app-%d", i%5), "", time.Millisecond, time.Millisecond)
				m.RateLimitDecision("api", "allowed")
				if i%100 == 0 {
					m.SetApplications([]string{fmt.Sprintf("app-%d", g)})
					m.Certificates([]CertInfo{{Where: "listener", Serial: fmt.Sprint(i), NotAfter: time.Now()}})
				}
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			scrape(t, m)
		}
	})
	wg.Wait()
	var total float64
	for _, s := range scrape(t, m)["portcullis_requests_total"].GetMetric() {
		total += s.GetCounter().GetValue()
	}
	if total != 2000 {
		t.Errorf("requests counted = %v, want 2000", total)
	}
}

func TestRequestDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	m := NewMetrics()
	m.SetApplications([]string{"billing"})
	m.Request("orders", 200, "billing", "", time.Millisecond, time.Millisecond)
	if n := testing.AllocsPerRun(1000, func() {
		m.Request("orders", 200, "billing", "", time.Millisecond, time.Millisecond)
	}); n != 0 {
		t.Errorf("Request allocates %v times per call, want 0", n)
	}
}

func BenchmarkRequest(b *testing.B) {
	m := NewMetrics()
	m.SetApplications([]string{"billing", "shipping"})
	apps := []string{"billing", "shipping", "unknown", ""}
	for _, app := range apps {
		m.Request("orders", 200, app, "", time.Millisecond, time.Millisecond)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.Request("orders", 200, apps[i&3], "", 1500*time.Microsecond, time.Millisecond)
		i++
	}
}

func BenchmarkRequestParallel(b *testing.B) {
	m := NewMetrics()
	m.SetApplications([]string{"billing"})
	m.Request("orders", 200, "billing", "", time.Millisecond, time.Millisecond)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Request("orders", 200, "billing", "", time.Millisecond, time.Millisecond)
		}
	})
}
