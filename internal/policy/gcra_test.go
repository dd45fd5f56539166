package policy

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

var t0 = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

type takeStep struct {
	at         time.Duration // offset from t0
	allowed    bool
	remaining  int
	retryAfter time.Duration
	reset      time.Duration
}

func TestGCRA(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name  string
		limit Limit
		steps []takeStep
	}{
		{
			name:  "a rested client gets exactly the burst, then waits one interval",
			limit: Limit{Rate: 10, Period: time.Second, Burst: 10},
			steps: []takeStep{
				{0, true, 9, 0, 100 * ms},
				{0, true, 8, 0, 200 * ms},
				{0, true, 7, 0, 300 * ms},
				{0, true, 6, 0, 400 * ms},
				{0, true, 5, 0, 500 * ms},
				{0, true, 4, 0, 600 * ms},
				{0, true, 3, 0, 700 * ms},
				{0, true, 2, 0, 800 * ms},
				{0, true, 1, 0, 900 * ms},
				{0, true, 0, 0, 1000 * ms},
				{0, false, 0, 100 * ms, 1000 * ms},
				{30 * ms, false, 0, 70 * ms, 970 * ms},
				{100 * ms, true, 0, 0, 1000 * ms},
				{150 * ms, false, 0, 50 * ms, 950 * ms},
				{1100 * ms, true, 9, 0, 100 * ms},
			},
		},
		{
			name:  "burst zero means the rate",
			limit: Limit{Rate: 3, Period: time.Second},
			steps: []takeStep{
				{0, true, 2, 0, 333333333},
				{0, true, 1, 0, 666666666},
				{0, true, 0, 0, 999999999},
				{0, false, 0, 333333333, 999999999},
			},
		},
		{
			name:  "a burst larger than the rate",
			limit: Limit{Rate: 1, Period: time.Second, Burst: 3},
			steps: []takeStep{
				{0, true, 2, 0, time.Second},
				{0, true, 1, 0, 2 * time.Second},
				{0, true, 0, 0, 3 * time.Second},
				{0, false, 0, time.Second, 3 * time.Second},
				{2500 * ms, true, 1, 0, 1500 * ms},
			},
		},
		{
			name:  "a burst of one spaces requests evenly",
			limit: Limit{Rate: 2, Period: time.Second, Burst: 1},
			steps: []takeStep{
				{0, true, 0, 0, 500 * ms},
				{499 * ms, false, 0, ms, ms},
				{500 * ms, true, 0, 0, 500 * ms},
			},
		},
		{
			name:  "an invalid limit denies (fails closed)",
			limit: Limit{Rate: 0, Period: time.Second},
			steps: []takeStep{{0, false, 0, 0, 0}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewMemoryCounter()
			for i, s := range tt.steps {
				d := c.Take("k", tt.limit, t0.Add(s.at))
				want := Decision{Allowed: s.allowed, Remaining: s.remaining, RetryAfter: s.retryAfter, Reset: s.reset}
				if d != want {
					t.Fatalf("step %d at +%s: got %+v, want %+v", i, s.at, d, want)
				}
			}
		})
	}
}

func TestLimitValidate(t *testing.T) {
	tests := []struct {
		name  string
		limit Limit
		ok    bool
	}{
		{"ordinary", Limit{Rate: 100, Period: time.Second, Burst: 20}, true},
		{"zero rate", Limit{Rate: 0, Period: time.Second}, false},
		{"negative period", Limit{Rate: 1, Period: -time.Second}, false},
		{"negative burst", Limit{Rate: 1, Period: time.Second, Burst: -1}, false},
		{"faster than a nanosecond", Limit{Rate: 10, Period: 5}, false},
		{"burst window overflows", Limit{Rate: 1, Period: 24 * time.Hour, Burst: 1 << 30}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.limit.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestMemoryCounterConcurrent takes from one key in parallel at one instant:
// under -race, and never more than the burst may be allowed.
func TestMemoryCounterConcurrent(t *testing.T) {
	c := NewMemoryCounter()
	lim := Limit{Rate: 50, Period: time.Second}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 40 {
				if c.Take("shared", lim, t0).Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != 50 {
		t.Fatalf("allowed %d of 640 concurrent requests, want exactly 50", got)
	}
}

// TestMemoryCounterKeyNotRetained passes keys backed by a buffer that is
// then overwritten, as RateLimiter does: the counter must have copied them.
func TestMemoryCounterKeyNotRetained(t *testing.T) {
	c := NewMemoryCounter()
	lim := Limit{Rate: 1, Period: time.Minute}
	buf := []byte("app-1")
	key := unsafe.String(&buf[0], len(buf))
	if !c.Take(key, lim, t0).Allowed {
		t.Fatal("first request denied")
	}
	copy(buf, "app-2")
	if !c.Take(key, lim, t0).Allowed {
		t.Fatal("app-2's first request denied")
	}
	if c.Take("app-1", lim, t0).Allowed || c.Take("app-2", lim, t0).Allowed {
		t.Fatal("a second request within the minute was allowed")
	}
}

// TestMemoryCounterSweep checks the memory bound: full buckets are forgotten,
// and forgetting them changes no decision.
func TestMemoryCounterSweep(t *testing.T) {
	c := NewMemoryCounter()
	lim := Limit{Rate: 10, Period: time.Second, Burst: 2}
	for i := range 1000 {
		c.Take("k"+strconv.Itoa(i), lim, t0)
	}
	c.Take("busy", lim, t0.Add(time.Second))
	c.Take("busy", lim, t0.Add(time.Second))
	if got := c.Len(); got != 1001 {
		t.Fatalf("Len() = %d, want 1001", got)
	}
	if n := c.Sweep(t0.Add(time.Second)); n != 1000 {
		t.Errorf("Sweep removed %d, want the 1000 full buckets", n)
	}
	if d := c.Take("busy", lim, t0.Add(time.Second)); d.Allowed {
		t.Errorf("the busy key lost its state in the sweep: %+v", d)
	}
	if d := c.Take("k1", lim, t0.Add(time.Second)); !d.Allowed || d.Remaining != 1 {
		t.Errorf("a swept key does not behave as new: %+v", d)
	}

	// Inserting sweeps by itself once a shard has doubled, so the map
	// stays near the number of live keys.
	c = NewMemoryCounter()
	for i := range 100_000 {
		c.Take("k"+strconv.Itoa(i), lim, t0.Add(time.Duration(i)*time.Millisecond))
	}
	if got := c.Len(); got > 20_000 {
		t.Errorf("after 100000 keys, each idle 200ms later, Len() = %d; idle keys are not evicted", got)
	}
}
