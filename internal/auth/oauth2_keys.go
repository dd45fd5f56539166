package auth

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// Key lookup failures. They travel through jwt's keyfunc error and are
// mapped to problem codes by jwtFailure.
var (
	errUnknownKID      = errors.New("no key with this kid")
	errNoKeyForAlg     = errors.New("no key of the issuer fits the token's algorithm")
	errKeysUnavailable = errors.New("the issuer's keys could not be fetched")
	errSecretKey       = errors.New("key source returned a secret key")
)

// maxJWKSBytes bounds a JWKS response; real sets are a few kilobytes.
const maxJWKSBytes = 1 << 20

// keySource finds the verification key for a token. Implementations are
// safe for concurrent use.
type keySource interface {
	// key returns a public key or a jwt.VerificationKeySet for a token
	// signed with alg whose header names kid (hasKID false: no kid). Errors
	// wrap errUnknownKID, errNoKeyForAlg, errKeysUnavailable or
	// errSecretKey.
	key(t *jwt.Token, alg, kid string, hasKID bool) (any, error)
}

// verificationKey is one usable public key of an issuer.
type verificationKey struct {
	kid string
	alg string // the JWK's "alg", "" when it names none
	key crypto.PublicKey
}

// pickKey selects the keys that may verify the token: those with the kid
// (or any key when the token names none, or the key names none), of the
// right type for alg, and whose own alg, if any, is alg. One key is
// returned as is, several as a set the parser tries in turn.
func pickKey(keys []verificationKey, alg, kid string, hasKID bool) (any, error) {
	var (
		found    crypto.PublicKey
		set      []jwt.VerificationKey
		kidKnown bool
	)
	for i := range keys {
		k := &keys[i]
		if hasKID && k.kid != "" && k.kid != kid {
			continue
		}
		kidKnown = true
		if (k.alg != "" && k.alg != alg) || !keyFits(alg, k.key) {
			continue
		}
		switch {
		case found == nil:
			found = k.key
		case set == nil:
			set = []jwt.VerificationKey{found, k.key}
		default:
			set = append(set, k.key)
		}
	}
	switch {
	case set != nil:
		return jwt.VerificationKeySet{Keys: set}, nil
	case found != nil:
		return found, nil
	case hasKID && !kidKnown:
		return nil, fmt.Errorf("%w %q", errUnknownKID, kid)
	default:
		return nil, fmt.Errorf("%w %s", errNoKeyForAlg, alg)
	}
}

// staticKeys are keys fixed in the configuration.
type staticKeys struct{ keys []verificationKey }

func newStaticKeys(keys []crypto.PublicKey, ids []string) (staticKeys, error) {
	if len(ids) != 0 && len(ids) != len(keys) {
		return staticKeys{}, fmt.Errorf("%d static key ids for %d static keys: give one id per key, or none", len(ids), len(keys))
	}
	s := staticKeys{keys: make([]verificationKey, len(keys))}
	for i, k := range keys {
		if err := supportedKey(k); err != nil {
			return staticKeys{}, fmt.Errorf("static key %d: %w", i, err)
		}
		s.keys[i].key = k
		if len(ids) > 0 {
			s.keys[i].kid = ids[i]
		}
	}
	return s, nil
}

func (s staticKeys) key(_ *jwt.Token, alg, kid string, hasKID bool) (any, error) {
	return pickKey(s.keys, alg, kid, hasKID)
}

// funcKeys adapts an in-process jwt.Keyfunc, refusing secret keys so a
// misconfigured source cannot open the HMAC confusion attack.
type funcKeys struct{ f jwt.Keyfunc }

func (f funcKeys) key(t *jwt.Token, _, _ string, _ bool) (any, error) {
	k, err := f.f(t)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnknownKID, err)
	}
	switch k := k.(type) {
	case []byte:
		return nil, errSecretKey
	case jwt.VerificationKeySet:
		for _, v := range k.Keys {
			if _, secret := v.([]byte); secret {
				return nil, errSecretKey
			}
		}
	case nil:
		return nil, errUnknownKID
	}
	return k, nil
}

// jwksSnapshot is one successfully fetched JWK Set; it is never modified.
type jwksSnapshot struct {
	keys    []verificationKey
	fetched time.Time
}

// jwksCache holds an issuer's JWK Set. Lookups read an atomic snapshot; a
// mutex is taken only to fetch, which happens in the background, on first
// use and when a token names an unknown kid (at most once per minGap,
// whatever the cause). A failed fetch keeps the previous snapshot.
type jwksCache struct {
	iss     string
	url     string
	client  *http.Client
	refresh time.Duration
	minGap  time.Duration
	now     func() time.Time
	log     *slog.Logger
	stats   *oauth2Counters
	ctx     context.Context

	snap        atomic.Pointer[jwksSnapshot]
	lastAttempt atomic.Int64 // a.now().UnixNano() of the last fetch, 0 before any
	lastFailed  atomic.Bool
	mu          sync.Mutex // serialises fetches
}

func (c *jwksCache) key(_ *jwt.Token, alg, kid string, hasKID bool) (any, error) {
	s := c.snap.Load()
	if s != nil {
		k, err := pickKey(s.keys, alg, kid, hasKID)
		if !errors.Is(err, errUnknownKID) {
			return k, err
		}
	}
	// Never fetched, or the kid is unknown: the issuer may have rotated
	// its keys, so refetch, rate-limited so random kids cannot make the
	// gateway hammer the IdP.
	fresh, err := c.refetch(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errKeysUnavailable, err)
	}
	if fresh == nil {
		if s == nil || c.lastFailed.Load() {
			return nil, fmt.Errorf("%w: the last fetch of %s failed and the next is not due yet", errKeysUnavailable, c.url)
		}
		return nil, fmt.Errorf("%w %q (JWKS refetch rate-limited)", errUnknownKID, kid)
	}
	return pickKey(fresh.keys, alg, kid, hasKID)
}

// refetch fetches the set unless another caller replaced seen meanwhile
// (then it returns that) or the last fetch is less than minGap ago (then
// it returns nil and no error).
func (c *jwksCache) refetch(seen *jwksSnapshot) (*jwksSnapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.snap.Load(); cur != seen {
		return cur, nil
	}
	now := c.now()
	if last := c.lastAttempt.Load(); last != 0 && now.Sub(time.Unix(0, last)) < c.minGap {
		return nil, nil
	}
	if err := c.fetchLocked(now); err != nil {
		return nil, err
	}
	return c.snap.Load(), nil
}

// run is the background refresh loop; it ends when the authenticator is
// closed. After a failure it retries sooner, every 30 s at most.
func (c *jwksCache) run() {
	wait := time.Duration(0)
	for {
		t := time.NewTimer(wait)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		c.mu.Lock()
		err := c.fetchLocked(c.now())
		c.mu.Unlock()
		wait = c.refresh
		if err != nil {
			wait = min(c.refresh, max(3*c.minGap, 30*time.Second))
		}
	}
}

// fetchLocked fetches and installs the set; c.mu must be held. Failures
// are logged and counted, and the previous snapshot stays.
func (c *jwksCache) fetchLocked(now time.Time) error {
	c.lastAttempt.Store(now.UnixNano())
	keys, skipped, err := c.fetch()
	if err != nil && c.ctx.Err() != nil {
		// Close interrupted the fetch; that is no failure of the endpoint.
		return err
	}
	if err != nil {
		c.stats.jwksFailed.Add(1)
		c.lastFailed.Store(true)
		attrs := []any{"auth", "oauth2", "issuer", c.iss, "jwks_url", c.url, "error", err.Error()}
		if s := c.snap.Load(); s != nil {
			attrs = append(attrs, "cached_keys", len(s.keys), "cached_since", s.fetched)
		}
		c.log.Warn("oauth2: JWKS fetch failed; cached keys stay in use", attrs...)
		return err
	}
	c.stats.jwksOK.Add(1)
	c.lastFailed.Store(false)
	c.snap.Store(&jwksSnapshot{keys: keys, fetched: now})
	if len(skipped) > 0 {
		c.log.Warn("oauth2: JWKS keys ignored", "auth", "oauth2", "issuer", c.iss, "jwks_url", c.url, "ignored", skipped)
	}
	return nil
}

// fetch downloads and parses the set. A response with no usable signing
// key is a failure, so a broken endpoint cannot wipe the cached keys.
func (c *jwksCache) fetch() ([]verificationKey, []string, error) {
	ctx, cancel := context.WithTimeout(c.ctx, oauth2HTTPTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("building JWKS request for %s: %w", c.url, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("fetching JWKS %s: %w", c.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, nil, fmt.Errorf("fetching JWKS %s: status %d, want 200", c.url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading JWKS %s: %w", c.url, err)
	}
	if len(body) > maxJWKSBytes {
		return nil, nil, fmt.Errorf("JWKS %s is larger than %d bytes", c.url, maxJWKSBytes)
	}
	return parseJWKS(body)
}

// parseJWKS returns the usable signing keys of a JWK Set and a note for
// each key it ignored: symmetric keys (a public set must never hold one),
// encryption keys, unsupported types and keys that do not decode.
func parseJWKS(body []byte) ([]verificationKey, []string, error) {
	var set struct {
		Keys *[]jwkset.JWKMarshal `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, nil, fmt.Errorf("JWKS is not a JWK Set: %w", err)
	}
	if set.Keys == nil {
		return nil, nil, errors.New(`JWKS has no "keys" member`)
	}
	var (
		keys    []verificationKey
		skipped []string
	)
	for i, m := range *set.Keys {
		name := fmt.Sprintf("%d (kid %q)", i, m.KID)
		switch {
		case m.KTY == jwkset.KtyOct:
			skipped = append(skipped, name+": symmetric key")
			continue
		case m.USE != "" && m.USE != jwkset.UseSig:
			skipped = append(skipped, name+": use "+string(m.USE))
			continue
		}
		m.D, m.P, m.Q, m.DP, m.DQ, m.QI, m.OTH, m.K = "", "", "", "", "", "", nil, ""
		j, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			skipped = append(skipped, name+": "+err.Error())
			continue
		}
		pub := j.Key()
		if p, ok := pub.(interface{ Public() crypto.PublicKey }); ok {
			pub = p.Public()
		}
		if err := supportedKey(pub); err != nil {
			skipped = append(skipped, name+": "+err.Error())
			continue
		}
		keys = append(keys, verificationKey{kid: m.KID, alg: string(m.ALG), key: pub})
	}
	if len(keys) == 0 {
		return nil, skipped, fmt.Errorf("JWKS has no usable signing key (%d ignored)", len(skipped))
	}
	return keys, skipped, nil
}
