package policy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/problem"
)

func asProblem(t *testing.T, err error) *problem.Error {
	t.Helper()
	var pe *problem.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *problem.Error", err)
	}
	return pe
}

// writeProblem is the pipeline's error writer, for test servers.
func writeProblem(w http.ResponseWriter, err error) {
	var pe *problem.Error
	if !errors.As(err, &pe) {
		pe = problem.Wrap(problem.CodeInternal, "not a problem", err)
	}
	problem.Write(w, pe, "req-1")
}

// logValue returns the value after key in a problem's Log.
func logValue(pe *problem.Error, key string) any {
	for i := 0; i+1 < len(pe.Log); i += 2 {
		if pe.Log[i] == key {
			return pe.Log[i+1]
		}
	}
	return nil
}

// Structured-field shapes of draft-ietf-httpapi-ratelimit-headers-10.
var (
	policyField = regexp.MustCompile(`^"[^"\\]*";q=\d+;w=\d+$`)
	limitField  = regexp.MustCompile(`^"[^"\\]*";r=\d+;t=\d+$`)
)

func TestRateLimitHeaders(t *testing.T) {
	tests := []struct {
		name       string
		rule       Rule
		requests   int
		policy     string
		limit      string
		retryAfter string
	}{
		{
			name:     "first request of a burst",
			rule:     Rule{Name: "gold", Scope: ScopeApplication, Limit: Limit{Rate: 100, Period: time.Second, Burst: 20}},
			requests: 1,
			policy:   `"gold";q=100;w=1`,
			limit:    `"gold";r=19;t=1`,
		},
		{
			name:     "a per-minute limit has a 60 second window",
			rule:     Rule{Name: "bronze", Scope: ScopeApplication, Limit: Limit{Rate: 60, Period: time.Minute}},
			requests: 30,
			policy:   `"bronze";q=60;w=60`,
			limit:    `"bronze";r=30;t=30`,
		},
		{
			name:     "a sub-second period is scaled to whole seconds",
			rule:     Rule{Name: "fast", Scope: ScopeAPI, Limit: Limit{Rate: 10, Period: 500 * time.Millisecond}},
			requests: 1,
			policy:   `"fast";q=20;w=1`,
			limit:    `"fast";r=9;t=1`,
		},
		{
			name:       "denied: r=0, t equals Retry-After, rounded up",
			rule:       Rule{Name: "tiny", Scope: ScopeClientIP, Limit: Limit{Rate: 1, Period: 90 * time.Second}},
			requests:   2,
			policy:     `"tiny";q=1;w=90`,
			limit:      `"tiny";r=0;t=90`,
			retryAfter: "90",
		},
		{
			name:     "quotes and backslashes in a name are escaped",
			rule:     Rule{Name: `a"b\c`, Scope: ScopeAPI, Limit: Limit{Rate: 5, Period: time.Second}},
			requests: 1,
			policy:   `"a\"b\\c";q=5;w=1`,
			limit:    `"a\"b\\c";r=4;t=1`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewRateLimiter("api-a", []Rule{tt.rule}, nil, NewMemoryCounter(), nil)
			h := http.Header{}
			var err error
			for range tt.requests {
				h = http.Header{}
				err = l.Check(h, "", "app-1", "192.0.2.1", t0)
			}
			if (err != nil) != (tt.retryAfter != "") {
				t.Fatalf("Check() = %v", err)
			}
			if got := h.Get("RateLimit-Policy"); got != tt.policy {
				t.Errorf("RateLimit-Policy = %q, want %q", got, tt.policy)
			}
			if got := h.Get("RateLimit"); got != tt.limit {
				t.Errorf("RateLimit = %q, want %q", got, tt.limit)
			}
			if got := h.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
			escaped := strings.ContainsAny(tt.rule.Name, `"\`)
			if !escaped && (!policyField.MatchString(h.Get("RateLimit-Policy")) || !limitField.MatchString(h.Get("RateLimit"))) {
				t.Errorf("fields do not have the draft's syntax: %q, %q", h.Get("RateLimit-Policy"), h.Get("RateLimit"))
			}
		})
	}
}

func TestRateLimiterRules(t *testing.T) {
	apiWide := Rule{Name: "api", Scope: ScopeAPI, Limit: Limit{Rate: 100, Period: time.Second}}
	perApp := Rule{Name: "app", Scope: ScopeApplication, Limit: Limit{Rate: 3, Period: time.Second}}
	perIP := Rule{Name: "ip", Scope: ScopeClientIP, Limit: Limit{Rate: 2, Period: time.Second}}
	daily := QuotaRule{Name: "daily", Scope: ScopeApplication, Quota: Quota{Limit: 4, Window: QuotaDay}}

	type req struct {
		app, ip  string
		code     string // "" for allowed
		rule     string // the policy the headers describe
		rlHeader string
	}
	tests := []struct {
		name   string
		rules  []Rule
		quotas []QuotaRule
		reqs   []req
	}{
		{
			name:  "the most restrictive allowing rule is reported",
			rules: []Rule{apiWide, perApp},
			reqs: []req{
				{app: "a", rlHeader: `"app";r=2;t=1`},
				{app: "a", rlHeader: `"app";r=1;t=1`},
			},
		},
		{
			name:  "the denying rule is reported and named in the log",
			rules: []Rule{apiWide, perApp},
			reqs: []req{
				{app: "a"}, {app: "a"}, {app: "a"},
				{app: "a", code: problem.CodeRateLimitExceeded, rule: "app", rlHeader: `"app";r=0;t=1`},
				{app: "b", rlHeader: `"app";r=2;t=1`},
			},
		},
		{
			name:  "client addresses have separate budgets",
			rules: []Rule{perIP},
			reqs: []req{
				{ip: "192.0.2.1"}, {ip: "192.0.2.1"},
				{ip: "192.0.2.1", code: problem.CodeRateLimitExceeded, rule: "ip"},
				{ip: "192.0.2.2", rlHeader: `"ip";r=1;t=1`},
			},
		},
		{
			name:   "a quota nearly used up is more restrictive than a rate",
			rules:  []Rule{apiWide},
			quotas: []QuotaRule{daily},
			reqs: []req{
				{app: "a", rlHeader: `"daily";r=3;t=32400`},
				{app: "a"}, {app: "a"},
				{app: "a", rlHeader: `"daily";r=0;t=32400`},
				{app: "a", code: problem.CodeQuotaExceeded, rule: "daily", rlHeader: `"daily";r=0;t=32400`},
				{app: "b", rlHeader: `"daily";r=3;t=32400`},
			},
		},
	}
	now := utc(2026, 5, 10, 15, 0, 0) // 9 hours before the day ends
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewRateLimiter("api-a", tt.rules, tt.quotas, NewMemoryCounter(), NewMemoryQuotas())
			for i, r := range tt.reqs {
				h := http.Header{}
				err := l.Check(h, "", r.app, r.ip, now)
				if r.code == "" {
					if err != nil {
						t.Fatalf("request %d: %v", i, err)
					}
				} else {
					pe := asProblem(t, err)
					if pe.Code != r.code || pe.HTTPStatus() != http.StatusTooManyRequests {
						t.Fatalf("request %d: code %s status %d, want %s 429", i, pe.Code, pe.HTTPStatus(), r.code)
					}
					if logValue(pe, "rule") != r.rule || logValue(pe, "api") != "api-a" {
						t.Errorf("request %d: log %v does not name rule %q and the API", i, pe.Log, r.rule)
					}
					if h.Get("Retry-After") == "" {
						t.Errorf("request %d: denied without Retry-After", i)
					}
				}
				if r.rlHeader != "" && h.Get("RateLimit") != r.rlHeader {
					t.Errorf("request %d: RateLimit = %q, want %q", i, h.Get("RateLimit"), r.rlHeader)
				}
			}
		})
	}
}

// countingQuotas records Spend calls.
type countingQuotas struct {
	mu    sync.Mutex
	calls int
	inner QuotaCounter
}

func (c *countingQuotas) Spend(key string, q Quota, now time.Time) QuotaDecision {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	return c.inner.Spend(key, q, now)
}

func TestQuotaNotSpentWhenThrottled(t *testing.T) {
	q := &countingQuotas{inner: NewMemoryQuotas()}
	l := NewRateLimiter("api-a",
		[]Rule{{Name: "slow", Scope: ScopeApplication, Limit: Limit{Rate: 1, Period: time.Minute}}},
		[]QuotaRule{{Name: "monthly", Scope: ScopeApplication, Quota: Quota{Limit: 100, Window: QuotaMonth}}},
		NewMemoryCounter(), q)
	allowed := 0
	for range 5 {
		if l.Check(http.Header{}, "", "app", "", t0) == nil {
			allowed++
		}
	}
	if allowed != 1 || q.calls != 1 {
		t.Fatalf("allowed %d, quota spent %d times; want 1 and 1", allowed, q.calls)
	}
}

func TestCheckWithPlan(t *testing.T) {
	l := NewRateLimiter("api-a",
		[]Rule{{Name: "api", Scope: ScopeAPI, Limit: Limit{Rate: 1000, Period: time.Second}}},
		nil, NewMemoryCounter(), NewMemoryQuotas())
	gold := []Rule{{Name: "gold", Scope: ScopeApplication, Limit: Limit{Rate: 2, Period: time.Second}}}
	goldQuota := []QuotaRule{{Name: "gold-day", Scope: ScopeApplication, Quota: Quota{Limit: 1000, Window: QuotaDay}}}
	key := Key{Application: "app-1", ClientIP: "192.0.2.1"}
	for i := range 2 {
		h := http.Header{}
		if err := l.CheckWith(h, gold, goldQuota, key, t0); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	h := http.Header{}
	pe := asProblem(t, l.CheckWith(h, gold, goldQuota, key, t0))
	if logValue(pe, "rule") != "gold" || logValue(pe, "key") != "app-1" {
		t.Errorf("log %v does not name the plan rule and the application", pe.Log)
	}
	if h.Get("RateLimit-Policy") != `"gold";q=2;w=1` {
		t.Errorf("RateLimit-Policy = %q", h.Get("RateLimit-Policy"))
	}
	// The same plan on another API is another budget.
	if err := l.CheckWith(http.Header{}, gold, goldQuota, Key{API: "api-b", Application: "app-1"}, t0); err != nil {
		t.Errorf("api-b shares api-a's budget: %v", err)
	}
}

func TestRateLimiterFailsClosed(t *testing.T) {
	good := Rule{Name: "ok", Scope: ScopeAPI, Limit: Limit{Rate: 1, Period: time.Second}}
	tests := []struct {
		name   string
		rules  []Rule
		quotas []QuotaRule
		extra  []Rule
		c      Counter
		q      QuotaCounter
	}{
		{name: "zero rate", rules: []Rule{{Name: "x", Scope: ScopeAPI, Limit: Limit{Period: time.Second}}}, c: NewMemoryCounter()},
		{name: "unknown scope", rules: []Rule{{Name: "x", Scope: "tenant", Limit: good.Limit}}, c: NewMemoryCounter()},
		{name: "empty name", rules: []Rule{{Scope: ScopeAPI, Limit: good.Limit}}, c: NewMemoryCounter()},
		{name: "control character in name", rules: []Rule{{Name: "a\nb", Scope: ScopeAPI, Limit: good.Limit}}, c: NewMemoryCounter()},
		{name: "no counter", rules: []Rule{good}},
		{name: "no quota counter", rules: []Rule{good}, c: NewMemoryCounter(), quotas: []QuotaRule{{Name: "d", Scope: ScopeAPI, Quota: Quota{Limit: 1, Window: QuotaDay}}}},
		{name: "bad quota window", c: NewMemoryCounter(), q: NewMemoryQuotas(), quotas: []QuotaRule{{Name: "d", Scope: ScopeAPI, Quota: Quota{Limit: 1, Window: "year"}}}},
		{name: "bad per-request rule", rules: []Rule{good}, c: NewMemoryCounter(), extra: []Rule{{Name: "p", Scope: ScopeAPI}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewRateLimiter("api-a", tt.rules, tt.quotas, tt.c, tt.q)
			err := l.CheckWith(http.Header{}, tt.extra, nil, Key{}, t0)
			if pe := asProblem(t, err); pe.Code != problem.CodeInternal || pe.Cause == nil {
				t.Errorf("got %v, want gateway.internal with a cause", err)
			}
		})
	}
	if err := NewRateLimiter("api-a", nil, nil, nil, nil).Check(http.Header{}, "", "", "", t0); err != nil {
		t.Errorf("a limiter without rules rejected: %v", err)
	}
}

// TestRateLimitAccuracy sends 25 quick requests over real loopback HTTP to a
// handler limited to 10 per second with a burst of 10: exactly 10 pass, 15
// are refused with a problem document, Retry-After and the RateLimit fields,
// and a request sent Retry-After seconds later passes. The handler's clock
// advances 1ms per request, as a quick client's would, so the outcome does
// not depend on how fast a loaded machine serves the requests.
func TestRateLimitAccuracy(t *testing.T) {
	l := NewRateLimiter("api-a",
		[]Rule{{Name: "plan", Scope: ScopeApplication, Limit: Limit{Rate: 10, Period: time.Second, Burst: 10}}},
		nil, NewMemoryCounter(), nil)
	var mu sync.Mutex
	now := t0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		now = now.Add(time.Millisecond)
		at := now
		mu.Unlock()
		if err := l.Check(w.Header(), "", r.Header.Get("X-App"), r.RemoteAddr, at); err != nil {
			writeProblem(w, err)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()

	send := func() *http.Response {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		req.Header.Set("X-App", "app-1")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp
	}

	statuses := map[int]int{}
	maxRetry := 0
	for i := range 25 {
		resp := send()
		statuses[resp.StatusCode]++
		if !policyField.MatchString(resp.Header.Get("RateLimit-Policy")) || !limitField.MatchString(resp.Header.Get("RateLimit")) {
			t.Errorf("request %d: RateLimit-Policy %q, RateLimit %q", i, resp.Header.Get("RateLimit-Policy"), resp.Header.Get("RateLimit"))
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			if err != nil || ra < 1 {
				t.Errorf("request %d: Retry-After %q", i, resp.Header.Get("Retry-After"))
			}
			if resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("request %d: Content-Type %q", i, resp.Header.Get("Content-Type"))
			}
			maxRetry = max(maxRetry, ra)
		}
	}
	if statuses[200] != 10 || statuses[429] != 15 || len(statuses) != 2 {
		t.Fatalf("statuses %v, want exactly 10 × 200 and 15 × 429", statuses)
	}
	mu.Lock()
	now = now.Add(time.Duration(maxRetry) * time.Second)
	mu.Unlock()
	if resp := send(); resp.StatusCode != http.StatusOK {
		t.Errorf("after waiting Retry-After (%ds): status %d", maxRetry, resp.StatusCode)
	}
}

// TestRateLimitAccuracyWallClock is the same with the real clock, using a
// limit whose refill (one per 6s) cannot happen while the test runs.
func TestRateLimitAccuracyWallClock(t *testing.T) {
	l := NewRateLimiter("api-a",
		[]Rule{{Name: "plan", Scope: ScopeAPI, Limit: Limit{Rate: 10, Period: time.Minute}}},
		nil, NewMemoryCounter(), nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := l.Check(w.Header(), "", "", r.RemoteAddr, time.Now()); err != nil {
			writeProblem(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	got := map[int]int{}
	for range 25 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		got[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests {
			if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < 1 || ra > 6 {
				t.Errorf("Retry-After %q, want 1..6", resp.Header.Get("Retry-After"))
			}
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(map[int]int{204: 10, 429: 15}) {
		t.Fatalf("statuses %v, want exactly 10 × 204 and 15 × 429", got)
	}
}
