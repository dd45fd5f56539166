package authserver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// signingKey is one gateway signing key. It is immutable once published in
// a keyRing.
type signingKey struct {
	kid     string
	alg     string
	method  jwt.SigningMethod
	private crypto.Signer
	public  crypto.PublicKey
	// created is when the key started signing; for the next key, when it
	// was generated (and published).
	created time.Time
	// retireAt is when the key leaves the JWKS and Keyfunc: the moment it
	// stopped signing plus TokenTTL plus clockLeeway. Zero while it signs.
	retireAt time.Time
	// header is the encoded JOSE header of every token the key signs.
	header string
	jwk    jwkset.JWKMarshal
	// path is the key's file in KeyDir, empty when keys live in memory.
	path string
}

// keyRing is the published key state, swapped whole on rotation.
type keyRing struct {
	current *signingKey
	// next is the key that signs after the next rotation. It is published
	// from the moment it is made, so validators that cache the JWKS know it
	// well before its first token; it does not sign yet.
	next *signingKey
	// retired are keys that no longer sign but whose tokens may still be
	// valid, newest first.
	retired []*signingKey
}

// lookup returns the key named kid that is still published at now, or nil.
func (r *keyRing) lookup(kid string, now time.Time) *signingKey {
	if r.current.kid == kid {
		return r.current
	}
	if r.next != nil && r.next.kid == kid {
		return r.next
	}
	for _, k := range r.retired {
		if k.kid == kid && k.retireAt.After(now) {
			return k
		}
	}
	return nil
}

// published returns the keys in the JWKS at now: current, next, then the
// retired keys still published, newest first.
func (r *keyRing) published(now time.Time) []*signingKey {
	keys := []*signingKey{r.current}
	if r.next != nil {
		keys = append(keys, r.next)
	}
	for _, k := range r.retired {
		if k.retireAt.After(now) {
			keys = append(keys, k)
		}
	}
	return keys
}

// jwks encodes the public keys published at now as a JWK Set (RFC 7517
// §5). jwkset marshals public keys only, so no private member can leak.
func (r *keyRing) jwks(now time.Time) ([]byte, error) {
	var set jwkset.JWKSMarshal
	for _, k := range r.published(now) {
		set.Keys = append(set.Keys, k.jwk)
	}
	return json.Marshal(set)
}

// signingAlgorithms are the algorithms the server can sign with.
func signingAlgorithms() []string { return []string{"ES256", "RS256", "EdDSA"} }

// generateKey makes a new private key for alg.
func generateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case "ES256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256":
		return rsa.GenerateKey(rand.Reader, 2048)
	case "EdDSA":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("%w: unsupported signing algorithm %q (valid: %s)", ErrBadOptions, alg, strings.Join(signingAlgorithms(), ", "))
}

// algorithmOf returns the algorithm a private key signs with.
func algorithmOf(k crypto.Signer) (string, jwt.SigningMethod, error) {
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve == elliptic.P256() {
			return "ES256", jwt.SigningMethodES256, nil
		}
		return "", nil, errors.New("ECDSA key is not on P-256 (ES256)")
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return "", nil, fmt.Errorf("RSA key of %d bits (at least 2048 are required)", k.N.BitLen())
		}
		return "RS256", jwt.SigningMethodRS256, nil
	case ed25519.PrivateKey:
		return "EdDSA", jwt.SigningMethodEdDSA, nil
	}
	return "", nil, fmt.Errorf("unsupported key type %T (valid: ECDSA P-256, RSA, Ed25519)", k)
}

// newSigningKey describes priv: its algorithm, its kid (the RFC 7638 JWK
// thumbprint, so the same key always has the same kid, also after a
// restart), its JWK and the JOSE header of its tokens.
func newSigningKey(priv crypto.Signer, created time.Time) (*signingKey, error) {
	alg, method, err := algorithmOf(priv)
	if err != nil {
		return nil, err
	}
	pub := priv.Public()
	j, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{ALG: jwkset.ALG(alg), USE: jwkset.UseSig},
	})
	if err != nil {
		return nil, fmt.Errorf("encoding public key as JWK: %w", err)
	}
	m := j.Marshal()
	kid, err := thumbprint(m)
	if err != nil {
		return nil, err
	}
	m.KID = kid
	header, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{alg, kid, "at+jwt"})
	if err != nil {
		return nil, fmt.Errorf("encoding JOSE header: %w", err)
	}
	return &signingKey{
		kid:     kid,
		alg:     alg,
		method:  method,
		private: priv,
		public:  pub,
		created: created.UTC(),
		header:  base64.RawURLEncoding.EncodeToString(header),
		jwk:     m,
	}, nil
}

// thumbprint is the RFC 7638 JWK thumbprint: base64url SHA-256 of the
// required members in lexicographic order, without whitespace.
func thumbprint(m jwkset.JWKMarshal) (string, error) {
	var members string
	switch m.KTY {
	case jwkset.KtyEC:
		members = fmt.Sprintf(`{"crv":%q,"kty":"EC","x":%q,"y":%q}`, m.CRV, m.X, m.Y)
	case jwkset.KtyRSA:
		members = fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`, m.E, m.N)
	case jwkset.KtyOKP:
		members = fmt.Sprintf(`{"crv":%q,"kty":"OKP","x":%q}`, m.CRV, m.X)
	default:
		return "", fmt.Errorf("no thumbprint for key type %q", m.KTY)
	}
	sum := sha256.Sum256([]byte(members))
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// sign returns the compact JWS of claims.
func (k *signingKey) sign(claims []byte) (string, error) {
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(k.header)+1+enc.EncodedLen(len(claims))+1+enc.EncodedLen(512))
	buf = append(buf, k.header...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, claims)
	sig, err := k.method.Sign(string(buf), k.private)
	if err != nil {
		return "", fmt.Errorf("signing token with key %s: %w", k.kid, err)
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
}

// keyTimeLayout names key files by the time the key started signing, so
// the names sort in signing order and tell each key's history.
const keyTimeLayout = "20060102T150405.000000000Z"

// nextKeyPrefix marks the file of the next key: "next-<generated>-<kid>.pem".
// Versions before the next key existed do not parse "next" as a time, so
// they skip such a file with a warning instead of signing with it.
const nextKeyPrefix = "next-"

// keyFileName is "<created>-<kid>.pem" for a signing or retired key and
// "next-<generated>-<kid>.pem" for the next key.
func keyFileName(k *signingKey, next bool) string {
	name := k.created.UTC().Format(keyTimeLayout) + "-" + k.kid + ".pem"
	if next {
		name = nextKeyPrefix + name
	}
	return name
}

// writeKeyFile stores k in dir as a 0600 PKCS#8 PEM file, named as the next
// key when next is set. It writes a temporary file and renames it, so a
// crash never leaves half a key.
func writeKeyFile(dir string, k *signingKey, next bool) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.private)
	if err != nil {
		return "", fmt.Errorf("encoding signing key %s: %w", k.kid, err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	f, err := os.CreateTemp(dir, ".tmp-key-*")
	if err != nil {
		return "", fmt.Errorf("writing signing key: %w", err)
	}
	tmp := f.Name()
	defer func() { _ = os.Remove(tmp) }() // a no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return "", fmt.Errorf("writing signing key %q: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return "", fmt.Errorf("writing signing key %q: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("writing signing key %q: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("writing signing key %q: %w", tmp, err)
	}
	path := filepath.Join(dir, keyFileName(k, next))
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("writing signing key %q: %w", path, err)
	}
	return path, nil
}

// readKeyFile loads one key file written by writeKeyFile.
func readKeyFile(path string, created time.Time) (*signingKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading signing key %q: %w", path, err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w %q: no PKCS#8 \"PRIVATE KEY\" PEM block", ErrBadKeyFile, path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrBadKeyFile, path, err)
	}
	signer, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w %q: %T cannot sign", ErrBadKeyFile, path, parsed)
	}
	k, err := newSigningKey(signer, created)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrBadKeyFile, path, err)
	}
	k.path = path
	return k, nil
}

// loadKeys reads every key file in dir and rebuilds the ring: the newest
// key signs, and each older key retires TokenTTL plus clockLeeway after
// its successor started signing. Files of keys retired by now are
// removed. The oldest file marked as next becomes the next key (a crash
// during a rotation can leave two; the younger, never used, is removed).
// The ring has no next key when dir holds none (e.g. it was written by an
// older version); the caller makes one. A nil ring means dir holds no
// signing key. Names that are not key files are ignored; a key file that
// cannot be read fails the load (fails closed: a damaged key is for the
// operator to look at, not to replace silently).
func (s *Server) loadKeys(dir string, now time.Time) (*keyRing, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading key directory %q: %w", dir, err)
	}
	var keys, nexts []*signingKey
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".pem") {
			continue
		}
		rest, next := strings.CutPrefix(name, nextKeyPrefix)
		stamp, _, ok := strings.Cut(rest, "-")
		created, err := time.Parse(keyTimeLayout, stamp)
		if !ok || err != nil {
			s.log.Warn("authorization server: ignoring a file in the key directory that is not named like a signing key",
				"key_dir", dir, "file", name)
			continue
		}
		path := filepath.Join(dir, name)
		if info, err := e.Info(); err == nil && info.Mode().Perm()&0o077 != 0 {
			s.log.Warn("authorization server: signing key file is readable by group or others; restrict it to mode 0600",
				"file", path, "mode", info.Mode().Perm().String())
		}
		k, err := readKeyFile(path, created)
		if err != nil {
			return nil, err
		}
		if next {
			nexts = append(nexts, k)
		} else {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		// A next key alone never signed; start afresh.
		for _, k := range nexts {
			s.removeKeyFile(k)
		}
		return nil, nil
	}
	slices.SortFunc(keys, func(a, b *signingKey) int { return a.created.Compare(b.created) })
	ring := &keyRing{current: keys[len(keys)-1]}
	slices.SortFunc(nexts, func(a, b *signingKey) int { return a.created.Compare(b.created) })
	for i, k := range nexts {
		if i == 0 && k.kid != ring.current.kid {
			ring.next = k
			continue
		}
		s.removeKeyFile(k)
	}
	for i := len(keys) - 2; i >= 0; i-- {
		k := keys[i]
		k.retireAt = keys[i+1].created.Add(s.ttl + clockLeeway)
		if !k.retireAt.After(now) {
			s.removeKeyFile(k)
			continue
		}
		ring.retired = append(ring.retired, k)
	}
	return ring, nil
}

// removeKeyFile deletes a retired key's file; a failure is only logged,
// since the key is already unpublished.
func (s *Server) removeKeyFile(k *signingKey) {
	if k.path == "" {
		return
	}
	if err := os.Remove(k.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("authorization server: could not remove a retired signing key file", "file", k.path, "error", err)
	}
}

// Rotate promotes the next key, published in the JWKS since the previous
// rotation (or since start), to sign every later token, and makes and
// publishes a new next key. The previous key stays in the JWKS and in
// Keyfunc until the last token it signed has expired (TokenTTL plus a
// minute of clock leeway). With KeyDir the new next key is written and the
// promoted key's file renamed before it is used; if that fails, the old key
// keeps signing and the error is returned. Rotate is safe to call
// concurrently with everything else.
func (s *Server) Rotate() error {
	s.rotateMu.Lock()
	defer s.rotateMu.Unlock()
	return s.rotateLocked(s.keys.Load())
}

// makeKey generates a key for the configured algorithm, writing it to
// KeyDir (as the next key when next is set) if there is one.
func (s *Server) makeKey(created time.Time, next bool) (*signingKey, error) {
	priv, err := generateKey(s.alg)
	if err != nil {
		return nil, err
	}
	k, err := newSigningKey(priv, created)
	if err != nil {
		return nil, err
	}
	if s.keyDir != "" {
		if k.path, err = writeKeyFile(s.keyDir, k, next); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// ensureNextLocked returns ring with a next key, making one if it has none
// or one of another algorithm (whose file is removed). The caller holds
// rotateMu (or owns ring exclusively).
func (s *Server) ensureNextLocked(ring *keyRing) (*keyRing, error) {
	if ring.next != nil && ring.next.alg == s.alg {
		return ring, nil
	}
	next, err := s.makeKey(s.now(), true)
	if err != nil {
		return nil, err
	}
	if ring.next != nil {
		s.removeKeyFile(ring.next)
	}
	r := *ring
	r.next = next
	return &r, nil
}

// rotateLocked replaces the current key of old (which may be nil) by its
// next key, or by a new key when it has no next key of the configured
// algorithm, and makes a new next key. The caller holds rotateMu.
func (s *Server) rotateLocked(old *keyRing) error {
	now := s.now()
	created := now.UTC()
	// Start times must strictly increase: they order the key files, and a
	// clock stepping back (or a frozen test clock) must not reorder them.
	if old != nil && !created.After(old.current.created) {
		created = old.current.created.Add(time.Nanosecond)
	}
	// The new next key is written first: should promoting fail, it is
	// removed again and nothing has changed; should the process die in
	// between, loadKeys keeps the older next key and drops this one.
	next, err := s.makeKey(created, true)
	if err != nil {
		return err
	}
	var k *signingKey
	promoted := old != nil && old.next != nil && old.next.alg == s.alg
	if promoted {
		c := *old.next
		c.created = created
		c.path = ""
		if s.keyDir != "" {
			path := filepath.Join(s.keyDir, keyFileName(&c, false))
			if err := os.Rename(old.next.path, path); err != nil {
				s.removeKeyFile(next)
				return fmt.Errorf("promoting the next signing key %q: %w", old.next.path, err)
			}
			c.path = path
		}
		k = &c
	} else {
		if k, err = s.makeKey(created, false); err != nil {
			s.removeKeyFile(next)
			return err
		}
		if old != nil && old.next != nil {
			s.removeKeyFile(old.next)
		}
	}
	ring := &keyRing{current: k, next: next}
	if old != nil {
		prev := *old.current
		prev.retireAt = created.Add(s.ttl + clockLeeway)
		ring.retired = append(ring.retired, &prev)
		for _, r := range old.retired {
			if r.retireAt.After(now) {
				ring.retired = append(ring.retired, r)
			} else {
				s.removeKeyFile(r)
			}
		}
	}
	s.keys.Store(ring)
	attrs := []any{"kid", k.kid, "alg", k.alg, "published_in_advance", promoted, "next_kid", next.kid}
	if old != nil {
		attrs = append(attrs, "previous_kid", old.current.kid, "previous_published_until", created.Add(s.ttl+clockLeeway))
	}
	s.log.Info("authorization server: signing key rotated", attrs...)
	return nil
}

// Keyfunc returns the in-process key lookup for validating this server's
// tokens with golang-jwt: it resolves the token's kid among the current,
// the next (which signs nothing yet, so accepting it is harmless) and the
// still-published retired keys, and refuses a key whose algorithm
// differs from the token's alg (no algorithm confusion). Callers still pass
// jwt.WithValidMethods, jwt.WithIssuer and jwt.WithAudience, and check typ.
// The returned function is safe for concurrent use and follows rotations.
func (s *Server) Keyfunc() jwt.Keyfunc { return s.keyFor }

func (s *Server) keyFor(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, fmt.Errorf("%w: the token names no kid", ErrUnknownKey)
	}
	k := s.keys.Load().lookup(kid, s.now())
	if k == nil {
		return nil, fmt.Errorf("%w: kid %s", ErrUnknownKey, quoteForLog(kid))
	}
	if t.Method == nil || t.Method.Alg() != k.alg {
		return nil, fmt.Errorf("%w: key %s signs %s, not the token's algorithm", ErrUnknownKey, k.kid, k.alg)
	}
	return k.public, nil
}

// quoteForLog quotes an attacker-supplied value for an error message,
// shortened so a huge header cannot flood a log.
func quoteForLog(s string) string {
	const limit = 64
	if len(s) > limit {
		s = s[:limit] + "..."
	}
	return fmt.Sprintf("%+q", s)
}
