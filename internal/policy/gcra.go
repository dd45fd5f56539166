package policy

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Limit is a rate: Rate requests per Period, of which up to Burst may arrive
// at once. It is enforced with the generic cell rate algorithm (GCRA): one
// request is allowed every Period/Rate on average, and a client that has
// been quiet may spend Burst requests back to back.
type Limit struct {
	// Rate is the number of requests allowed per Period. It must be
	// positive.
	Rate int
	// Period is the time Rate requests are spread over. It must be at least
	// Rate nanoseconds, so that one request costs at least one nanosecond.
	Period time.Duration
	// Burst is the number of requests a rested client may send at once.
	// Zero means Rate; it must not be negative.
	Burst int
}

// Validate reports whether l can be enforced. A RateLimiter built with an
// invalid limit rejects every request (it fails closed), so callers compile
// limits through Validate first.
func (l Limit) Validate() error {
	switch {
	case l.Rate <= 0:
		return fmt.Errorf("rate %d: must be positive", l.Rate)
	case l.Period <= 0:
		return fmt.Errorf("period %s: must be positive", l.Period)
	case l.Burst < 0:
		return fmt.Errorf("burst %d: must not be negative", l.Burst)
	case l.Period < time.Duration(l.Rate):
		return fmt.Errorf("rate %d per %s: more than one request per nanosecond", l.Rate, l.Period)
	}
	// The theoretical arrival time moves at most burst×interval ahead of
	// now; keep that far away from overflowing int64 nanoseconds.
	if int64(l.burst()) > math.MaxInt64/4/int64(l.interval()) {
		return fmt.Errorf("burst %d of %d per %s: the burst window does not fit in 70 years", l.burst(), l.Rate, l.Period)
	}
	return nil
}

// String describes l for logs, e.g. "10 per 1s, burst 20".
func (l Limit) String() string {
	return strconv.Itoa(l.Rate) + " per " + l.Period.String() + ", burst " + strconv.Itoa(l.burst())
}

// interval is the emission interval of the GCRA: the time one request
// costs. Validate guarantees it is at least one nanosecond.
func (l Limit) interval() time.Duration { return l.Period / time.Duration(l.Rate) }

func (l Limit) burst() int {
	if l.Burst == 0 {
		return l.Rate
	}
	return l.Burst
}

// Decision is a Counter's answer for one request.
type Decision struct {
	// Allowed reports whether the request may proceed; a denied request
	// spent nothing.
	Allowed bool
	// Remaining is the number of further requests the burst allows right
	// now. It is zero when the request was denied.
	Remaining int
	// RetryAfter is how long a denied client must wait until one request
	// will be allowed; zero when allowed.
	RetryAfter time.Duration
	// Reset is the time until the bucket is full again, that is until a
	// whole burst is available.
	Reset time.Duration
}

// Counter keeps GCRA state per key. Implementations are safe for concurrent
// use; the in-memory one is MemoryCounter, and a shared store (Redis) can
// implement the same contract for a cluster.
type Counter interface {
	// Take tries to spend one request for key under lim at now and reports
	// the outcome. An invalid lim (see Limit.Validate) is denied: Take fails
	// closed. Take must not retain key after it returns: callers may pass a
	// string backed by a reused buffer, so an implementation that stores
	// the key copies it first.
	Take(key string, lim Limit, now time.Time) Decision
}

// gcra is the whole algorithm. tat is the key's theoretical arrival time
// (Unix nanoseconds; zero or anything before now for a full bucket), and the
// returned value is the one to store. A request is allowed when now is no
// earlier than newTAT − burst×interval, i.e. when the requests admitted so
// far, at one per interval, leave room for one more within the burst.
func gcra(tat, now int64, lim Limit) (int64, Decision) {
	if lim.Validate() != nil {
		return tat, Decision{}
	}
	t := int64(lim.interval())
	window := int64(lim.burst()) * t
	if tat < now {
		tat = now
	}
	next := tat + t
	allowAt := next - window
	if now < allowAt {
		return tat, Decision{RetryAfter: time.Duration(allowAt - now), Reset: time.Duration(tat - now)}
	}
	return next, Decision{
		Allowed:   true,
		Remaining: int((now - allowAt) / t),
		Reset:     time.Duration(next - now),
	}
}

// MemoryCounter is the in-process Counter: a map from key to theoretical
// arrival time, split into 64 shards with a mutex each. It is safe for
// concurrent use.
//
// Memory is bounded by the keys that are in use. A key whose theoretical
// arrival time has passed has a full bucket, which is exactly the state of
// a key never seen, so it can be forgotten without changing any decision
// (see shards for when that happens).
type MemoryCounter struct {
	tats shards[*tat]
}

// tat is a key's theoretical arrival time, in Unix nanoseconds.
type tat struct{ at int64 }

func (t *tat) expiredBy(now int64) bool { return t.at <= now }

// NewMemoryCounter returns an empty MemoryCounter.
func NewMemoryCounter() *MemoryCounter {
	c := &MemoryCounter{}
	c.tats.init()
	return c
}

var _ Counter = (*MemoryCounter)(nil)

// Take implements Counter. It allocates only when key is new.
func (c *MemoryCounter) Take(key string, lim Limit, now time.Time) Decision {
	n := now.UnixNano()
	s := c.tats.lock(key)
	defer s.mu.Unlock()
	p := s.m[key]
	if p == nil {
		next, d := gcra(0, n, lim)
		if d.Allowed {
			s.insert(key, &tat{at: next}, n)
		}
		return d
	}
	next, d := gcra(p.at, n, lim)
	p.at = next
	return d
}

// Sweep forgets every key whose bucket is full at now and returns how many
// it removed. Decisions are unaffected; it only returns memory.
func (c *MemoryCounter) Sweep(now time.Time) int { return c.tats.sweep(now.UnixNano()) }

// Len returns the number of keys held, for metrics and tests.
func (c *MemoryCounter) Len() int { return c.tats.len() }
