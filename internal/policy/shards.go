package policy

import (
	"hash/maphash"
	"strings"
	"sync"
)

// counterShards spreads keys over independent locks so that requests for
// different keys rarely contend.
const counterShards = 64

// minSweep is the size a shard grows to before its first sweep.
const minSweep = 64

// expiring is a counter entry that carries no information once now has
// passed its expiry, so it may be forgotten without changing any decision.
type expiring interface {
	expiredBy(now int64) bool
}

// shards is the memory of the in-process counters: a map from key to
// entry, split into counterShards mutex-guarded shards. Memory is bounded
// by the keys in use: a shard sweeps expired entries when it inserts a key
// and has doubled in size since its last sweep (amortised O(1) per
// insertion), and Sweep does the same for all shards on demand.
type shards[E expiring] struct {
	seed maphash.Seed
	s    [counterShards]shard[E]
}

type shard[E expiring] struct {
	mu sync.Mutex
	// m holds pointer-like entries, so that updating an existing key never
	// stores the caller's (possibly buffer-backed) key string.
	m       map[string]E
	sweepAt int
}

func (ss *shards[E]) init() {
	ss.seed = maphash.MakeSeed()
	for i := range ss.s {
		ss.s[i].m = make(map[string]E)
		ss.s[i].sweepAt = minSweep
	}
}

// lock returns key's shard, locked; the caller unlocks it.
func (ss *shards[E]) lock(key string) *shard[E] {
	s := &ss.s[maphash.String(ss.seed, key)%counterShards]
	s.mu.Lock()
	return s
}

// insert stores e under a copy of key, sweeping first when the shard has
// doubled since the last sweep. The caller holds s.mu.
func (s *shard[E]) insert(key string, e E, now int64) {
	if len(s.m) >= s.sweepAt {
		s.sweep(now)
	}
	s.m[strings.Clone(key)] = e
}

func (s *shard[E]) sweep(now int64) int {
	n := 0
	for k, e := range s.m {
		if e.expiredBy(now) {
			delete(s.m, k)
			n++
		}
	}
	s.sweepAt = max(2*len(s.m), minSweep)
	return n
}

// sweep forgets every expired entry and returns how many it removed.
func (ss *shards[E]) sweep(now int64) int {
	total := 0
	for i := range ss.s {
		s := &ss.s[i]
		s.mu.Lock()
		total += s.sweep(now)
		s.mu.Unlock()
	}
	return total
}

// len returns the number of keys held.
func (ss *shards[E]) len() int {
	total := 0
	for i := range ss.s {
		s := &ss.s[i]
		s.mu.Lock()
		total += len(s.m)
		s.mu.Unlock()
	}
	return total
}
