package trust

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
)

// verifyCacheMax bounds the verified-chain cache; when it fills, it starts
// over, which costs one full verification per distinct chain.
const verifyCacheMax = 4096

// verifyCache remembers chains crypto/x509 has verified, keyed by a hash of
// the certificates the peer sent, so the many requests of one client do not
// repeat the signature checks. It holds only successes, and only answers for
// times at which every certificate of every chain is within its validity, so
// a hit gives exactly the result a fresh verification would. Usage and
// revocation are still checked on every call.
type verifyCache struct {
	entries atomic.Pointer[sync.Map] // [sha256.Size]byte → *verifiedChains
	size    atomic.Int64
}

type verifiedChains struct {
	chains    [][]*x509.Certificate
	notBefore time.Time // latest NotBefore in the chains
	notAfter  time.Time // earliest NotAfter in the chains
}

func chainKey(chain []*x509.Certificate) [sha256.Size]byte {
	h := sha256.New()
	var n [4]byte
	for _, c := range chain {
		if c == nil {
			continue
		}
		binary.BigEndian.PutUint32(n[:], uint32(len(c.Raw)))
		h.Write(n[:])
		h.Write(c.Raw)
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	return key
}

func (vc *verifyCache) load(key [sha256.Size]byte, now time.Time) [][]*x509.Certificate {
	m := vc.entries.Load()
	if m == nil {
		return nil
	}
	v, ok := m.Load(key)
	if !ok {
		return nil
	}
	e := v.(*verifiedChains)
	if now.Before(e.notBefore) || now.After(e.notAfter) {
		return nil
	}
	return e.chains
}

func (vc *verifyCache) store(key [sha256.Size]byte, chains [][]*x509.Certificate) {
	e := &verifiedChains{chains: chains}
	for _, ch := range chains {
		for _, c := range ch {
			if e.notBefore.IsZero() || c.NotBefore.After(e.notBefore) {
				e.notBefore = c.NotBefore
			}
			if e.notAfter.IsZero() || c.NotAfter.Before(e.notAfter) {
				e.notAfter = c.NotAfter
			}
		}
	}
	m := vc.entries.Load()
	if m == nil || vc.size.Load() >= verifyCacheMax {
		m = new(sync.Map)
		vc.entries.Store(m)
		vc.size.Store(0)
	}
	if _, loaded := m.LoadOrStore(key, e); !loaded {
		vc.size.Add(1)
	}
}
