package policy

import (
	"fmt"
	"time"
)

// QuotaWindow is the calendar period a Quota counts over. Windows are
// calendar days or months in UTC, and a quota resets when its window ends.
type QuotaWindow string

// The quota windows.
const (
	QuotaDay   QuotaWindow = "day"
	QuotaMonth QuotaWindow = "month"
)

// bounds returns the start and end of the window holding now.
func (w QuotaWindow) bounds(now time.Time) (start, end time.Time, ok bool) {
	u := now.UTC()
	switch w {
	case QuotaDay:
		start = time.Date(u.Year(), u.Month(), u.Day(), 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 0, 1), true
	case QuotaMonth:
		start = time.Date(u.Year(), u.Month(), 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 1, 0), true
	}
	return time.Time{}, time.Time{}, false
}

// Quota is a number of requests allowed per calendar window.
type Quota struct {
	// Limit is the number of requests per window. It must be positive.
	Limit int64
	// Window is QuotaDay or QuotaMonth.
	Window QuotaWindow
}

// Validate reports whether q can be enforced. An invalid quota denies every
// request (it fails closed).
func (q Quota) Validate() error {
	if q.Limit <= 0 {
		return fmt.Errorf("quota limit %d: must be positive", q.Limit)
	}
	if _, _, ok := q.Window.bounds(time.Time{}); !ok {
		return fmt.Errorf("quota window %q: must be %q or %q", q.Window, QuotaDay, QuotaMonth)
	}
	return nil
}

// String describes q for logs, e.g. "10000 per month".
func (q Quota) String() string {
	return fmt.Sprintf("%d per %s", q.Limit, q.Window)
}

// QuotaDecision is a QuotaCounter's answer for one request.
type QuotaDecision struct {
	// Allowed reports whether the request may proceed; a denied request
	// spent nothing.
	Allowed bool
	// Remaining is the number of requests left in the window after this
	// one.
	Remaining int64
	// Reset is the time until the window ends and the quota is full again.
	Reset time.Duration
}

// QuotaCounter counts requests per key and calendar window. Implementations
// are safe for concurrent use; MemoryQuotas is the in-process one.
type QuotaCounter interface {
	// Spend counts one request for key under q at now, unless the window's
	// quota is used up. An invalid q is denied (Spend fails closed). Spend
	// must not retain key after it returns; an implementation that stores
	// it copies it first.
	Spend(key string, q Quota, now time.Time) QuotaDecision
}

// MemoryQuotas is the in-process QuotaCounter: per key, the end of the
// current window and the requests counted in it, in 64 mutex-guarded
// shards. It is safe for concurrent use.
//
// Memory is bounded by the keys used in the current windows: an entry whose
// window has ended carries no information (the next request starts a new
// window at zero), so a shard sweeps such entries when it has doubled in
// size since its last sweep, and Sweep does it on demand.
type MemoryQuotas struct {
	entries shards[*quotaEntry]
}

type quotaEntry struct {
	end  int64 // Unix nanoseconds at which the counted window ends
	used int64
}

func (e *quotaEntry) expiredBy(now int64) bool { return e.end <= now }

// NewMemoryQuotas returns an empty MemoryQuotas.
func NewMemoryQuotas() *MemoryQuotas {
	c := &MemoryQuotas{}
	c.entries.init()
	return c
}

var _ QuotaCounter = (*MemoryQuotas)(nil)

// Spend implements QuotaCounter. It allocates only when key is new.
func (c *MemoryQuotas) Spend(key string, q Quota, now time.Time) QuotaDecision {
	if q.Limit <= 0 {
		return QuotaDecision{}
	}
	_, end, ok := q.Window.bounds(now)
	if !ok {
		return QuotaDecision{}
	}
	n, e := now.UnixNano(), end.UnixNano()
	reset := end.Sub(now)
	s := c.entries.lock(key)
	defer s.mu.Unlock()
	p := s.m[key]
	if p == nil {
		p = &quotaEntry{end: e}
		s.insert(key, p, n)
	}
	if p.end != e {
		// A new window (or a changed quota window): start counting afresh.
		p.end, p.used = e, 0
	}
	if p.used >= q.Limit {
		return QuotaDecision{Reset: reset}
	}
	p.used++
	return QuotaDecision{Allowed: true, Remaining: q.Limit - p.used, Reset: reset}
}

// Sweep forgets every key whose window has ended at now and returns how
// many it removed. Decisions are unaffected.
func (c *MemoryQuotas) Sweep(now time.Time) int { return c.entries.sweep(now.UnixNano()) }

// Len returns the number of keys held, for metrics and tests.
func (c *MemoryQuotas) Len() int { return c.entries.len() }
