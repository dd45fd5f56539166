package snapshot

import (
	"crypto/x509"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/portcullis/portcullis/internal/auth"
)

// certHeaderCache remembers, per API, the forwarded-certificate header
// values (RFC 9440 or XFCC) of recently verified chains. They are a pure
// function of the chain, and the chain repeats on every request of a
// keep-alive connection (and, through the trust set's cache of verified
// chains, with the same certificate objects for every connection of a
// client), so encoding them again each time is wasted work.
//
// Keys are the chain's certificate pointers; the cache holds at most
// certHeaderCacheSize chains and starts afresh when full. The cached value
// slices are shared by the requests that get them; header code replaces or
// appends to value slices and never writes into them.
type certHeaderCache struct {
	m atomic.Pointer[sync.Map] // chainPtrs → []cachedHeader
	n atomic.Int32
}

const certHeaderCacheSize = 256

// chainPtrs identifies a verified chain of up to four certificates.
type chainPtrs struct {
	n int
	c [4]*x509.Certificate
}

type cachedHeader struct {
	name string
	vals []string
}

// set replaces every forwarded-certificate header in h (the pipeline's
// first stage removed the client's copies already) by chain's, as setter
// writes them, from the cache when chain was seen before.
func (c *certHeaderCache) set(h http.Header, chain []*x509.Certificate, setter func(http.Header, []*x509.Certificate)) {
	for _, name := range auth.ForwardedCertHeaders {
		delete(h, name)
	}
	if len(chain) > len(chainPtrs{}.c) {
		setter(h, chain)
		return
	}
	k := chainPtrs{n: len(chain)}
	copy(k.c[:], chain)
	m := c.m.Load()
	if m == nil {
		m = new(sync.Map)
		if !c.m.CompareAndSwap(nil, m) {
			m = c.m.Load()
		}
	}
	if v, ok := m.Load(k); ok {
		for _, e := range v.([]cachedHeader) {
			h[e.name] = e.vals
		}
		return
	}
	setter(h, chain)
	var entries []cachedHeader
	for _, name := range auth.ForwardedCertHeaders {
		if v, ok := h[name]; ok {
			entries = append(entries, cachedHeader{name, v})
		}
	}
	if c.n.Add(1) > certHeaderCacheSize {
		fresh := new(sync.Map)
		c.m.Store(fresh)
		c.n.Store(1)
		m = fresh
	}
	m.Store(k, entries)
}
