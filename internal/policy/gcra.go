package policy

import (
	"fmt"
	"hash/maphash"
	"math"
	"strconv"
	"strings"
	"sync"
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

// counterShards spreads keys over independent locks so that requests for
// different keys rarely contend.
const counterShards = 64

// minSweep is the size a shard grows to before its first sweep.
const minSweep = 64

// MemoryCounter is the in-process Counter: a map from key to theoretical
// arrival time, split into 64 shards with a mutex each. It is safe for
// concurrent use.
//
// Memory is bounded by the keys that are in use. A key whose theoretical
// arrival time has passed has a full bucket, which is exactly the state of
// a key never seen, so it can be forgotten without changing any decision.
// Each shard sweeps such entries when it inserts a key and has doubled in
// size since its last sweep (amortised O(1) per insertion); Sweep does the
// same for all shards on demand, for example from a periodic janitor.
type MemoryCounter struct {
	seed   maphash.Seed
	shards [counterShards]counterShard
}

type counterShard struct {
	mu sync.Mutex
	// tat holds pointers so that updating an existing key never stores the
	// caller's (possibly buffer-backed) key string in the map.
	tat     map[string]*int64
	sweepAt int
}

// NewMemoryCounter returns an empty MemoryCounter.
func NewMemoryCounter() *MemoryCounter {
	c := &MemoryCounter{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].tat = make(map[string]*int64)
		c.shards[i].sweepAt = minSweep
	}
	return c
}

var _ Counter = (*MemoryCounter)(nil)

// Take implements Counter. It allocates only when key is new.
func (c *MemoryCounter) Take(key string, lim Limit, now time.Time) Decision {
	n := now.UnixNano()
	s := &c.shards[maphash.String(c.seed, key)%counterShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.tat[key]
	if p == nil {
		next, d := gcra(0, n, lim)
		if d.Allowed {
			s.insert(key, next, n)
		}
		return d
	}
	next, d := gcra(*p, n, lim)
	*p = next
	return d
}

// insert stores a copy of key, sweeping full buckets first when the shard
// has doubled since the last sweep. The caller holds s.mu.
func (s *counterShard) insert(key string, tat, now int64) {
	if len(s.tat) >= s.sweepAt {
		s.sweep(now)
	}
	v := tat
	s.tat[strings.Clone(key)] = &v
}

func (s *counterShard) sweep(now int64) int {
	n := 0
	for k, p := range s.tat {
		if *p <= now {
			delete(s.tat, k)
			n++
		}
	}
	s.sweepAt = max(2*len(s.tat), minSweep)
	return n
}

// Sweep forgets every key whose bucket is full at now and returns how many
// it removed. Decisions are unaffected; it only returns memory.
func (c *MemoryCounter) Sweep(now time.Time) int {
	n, total := now.UnixNano(), 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		total += s.sweep(n)
		s.mu.Unlock()
	}
	return total
}

// Len returns the number of keys held, for metrics and tests.
func (c *MemoryCounter) Len() int {
	total := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		total += len(s.tat)
		s.mu.Unlock()
	}
	return total
}
