package authserver

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis/portcullis/internal/testpki"
)

func secretClient(hash string) []Client {
	return []Client{{ID: "app", Methods: []ClientAuthMethod{MethodSecretBasic}, SecretHashes: []string{hash}}}
}

func TestKeyRotation(t *testing.T) {
	secret, hash, _ := NewSecret()
	e := newEnv(t, Options{TokenTTL: 10 * time.Minute, Clients: secretClient(hash)})
	creds := basic("app", secret)

	before, _ := e.token(nil, url.Values{}, creds)
	old, _, err := e.parseToken(before, testIssuer)
	if err != nil {
		t.Fatal(err)
	}
	oldKid := old.Header["kid"].(string)
	// The key that signs after the rotation is published from the start.
	published := kids(e.jwks())
	if len(published) != 2 || published[0] != oldKid || published[1] == oldKid {
		t.Fatalf("JWKS kids = %v, want [%s <next>]", published, oldKid)
	}
	nextKid := published[1]

	e.clock.Advance(time.Minute)
	if err := e.srv.Rotate(); err != nil {
		t.Fatal(err)
	}
	after, _ := e.token(nil, url.Values{}, creds)
	fresh, _, err := e.parseToken(after, testIssuer)
	if err != nil {
		t.Fatal(err)
	}
	newKid := fresh.Header["kid"].(string)
	if newKid == oldKid {
		t.Fatal("the token issued after Rotate uses the old kid")
	}
	if newKid != nextKid {
		t.Fatalf("the token issued after Rotate uses kid %s, not the published next key %s", newKid, nextKid)
	}
	afterRotation := kids(e.jwks())
	if len(afterRotation) != 3 || afterRotation[0] != newKid || afterRotation[2] != oldKid || slices.Contains([]string{newKid, oldKid}, afterRotation[1]) {
		t.Fatalf("JWKS kids after rotation = %v, want [%s <new next> %s]", afterRotation, newKid, oldKid)
	}
	newNextKid := afterRotation[1]

	// Until it expires the old token validates through Keyfunc and through
	// the JWKS, and introspects as active.
	e.clock.Advance(9*time.Minute - time.Second)
	if _, _, err := e.parseToken(before, testIssuer); err != nil {
		t.Errorf("the token issued before Rotate no longer validates: %v", err)
	}
	p := jwt.NewParser(jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(e.clock.Now))
	if _, err := p.Parse(before, jwksKeyfunc(t, e.jwks())); err != nil {
		t.Errorf("the token issued before Rotate does not validate with the JWKS: %v", err)
	}
	if r := introspect(e, before, creds); r.body["active"] != true {
		t.Errorf("introspection of the old token = %s, want active", r.raw)
	}

	// Once every token the old key can have signed has expired (it stopped
	// signing at the rotation, a minute in, so the last expire TokenTTL
	// later) plus the leeway, only the new key and its successor are
	// published.
	e.clock.Advance(time.Minute + time.Second + clockLeeway)
	if got := kids(e.jwks()); !slices.Equal(got, []string{newKid, newNextKid}) {
		t.Errorf("JWKS kids after the old tokens expired = %v, want [%s %s]", got, newKid, newNextKid)
	}
	tok := &jwt.Token{Header: map[string]any{"kid": oldKid}, Method: jwt.SigningMethodES256}
	if _, err := e.srv.Keyfunc()(tok); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Keyfunc for a retired kid: %v, want ErrUnknownKey", err)
	}
	tok.Header["kid"] = newKid
	if _, err := e.srv.Keyfunc()(tok); err != nil {
		t.Errorf("Keyfunc for the current kid: %v", err)
	}
	tok.Header["kid"] = newNextKid
	if _, err := e.srv.Keyfunc()(tok); err != nil {
		t.Errorf("Keyfunc for the next kid: %v", err)
	}
}

// TestRotationUnderLoad issues and validates tokens while the key rotates;
// not one request may fail.
func TestRotationUnderLoad(t *testing.T) {
	secret, hash, _ := NewSecret()
	e := newEnv(t, Options{Clients: secretClient(hash)})
	var failures atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.client(nil)
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := e.post(c, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, basic("app", secret))
				if r.status != 200 {
					failures.Add(1)
					continue
				}
				if _, _, err := e.parseToken(r.str("access_token"), testIssuer); err != nil {
					failures.Add(1)
				}
			}
		}()
	}
	for range 5 {
		time.Sleep(20 * time.Millisecond)
		if err := e.srv.Rotate(); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Errorf("%d requests failed during rotation", n)
	}
	// Current, next, and the five retired keys.
	if n := len(e.jwks().Keys); n != 7 {
		t.Errorf("JWKS has %d keys after 5 rotations within the TTL, want 7", n)
	}
}

func TestKeyDirPersistence(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	secret, hash, _ := NewSecret()
	clock := newClock()
	o := Options{Issuer: testIssuer, KeyDir: dir, TokenTTL: 5 * time.Minute, Clients: secretClient(hash), Now: clock.Now}

	first := newEnv(t, o)
	tok, _ := first.token(nil, url.Values{}, basic("app", secret))
	files, _ := filepath.Glob(filepath.Join(dir, "*.pem"))
	nexts, _ := filepath.Glob(filepath.Join(dir, "next-*.pem"))
	if len(files) != 2 || len(nexts) != 1 {
		t.Fatalf("key files = %v, want the signing key and one next key", files)
	}
	for _, f := range files {
		info, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("key file %s mode = %v, want 0600", f, info.Mode().Perm())
		}
	}
	if dirInfo, _ := os.Stat(dir); dirInfo.Mode().Perm() != 0o700 {
		t.Errorf("key directory mode = %v, want 0700", dirInfo.Mode().Perm())
	}

	// A restart keeps the keys, the next one too: the old token
	// validates, new tokens share the kid.
	second := newEnv(t, o)
	if _, _, err := second.parseToken(tok, testIssuer); err != nil {
		t.Fatalf("a token issued before the restart does not validate: %v", err)
	}
	if a, b := first.jwks(), second.jwks(); !slices.Equal(kids(a), kids(b)) {
		t.Errorf("kids before and after restart: %v, %v", kids(a), kids(b))
	}

	// Rotation survives a restart too, with the previous key still
	// published until its tokens expire.
	clock.Advance(time.Minute)
	if err := second.srv.Rotate(); err != nil {
		t.Fatal(err)
	}
	if got := kids(second.jwks()); len(got) != 3 || got[0] != kids(first.jwks())[1] {
		t.Errorf("kids after rotation = %v, want the former next key signing", got)
	}
	third := newEnv(t, o)
	if got, want := kids(third.jwks()), kids(second.jwks()); !slices.Equal(got, want) || len(got) != 3 {
		t.Errorf("kids after rotation and restart = %v, want %v", got, want)
	}
	if _, _, err := third.parseToken(tok, testIssuer); err != nil {
		t.Errorf("the pre-rotation token does not validate after a restart: %v", err)
	}
	newTok, _ := third.token(nil, url.Values{}, basic("app", secret))
	parsed, _, err := third.parseToken(newTok, testIssuer)
	if err != nil || parsed.Header["kid"] != kids(second.jwks())[0] {
		t.Errorf("after restart the newest key does not sign (%v)", err)
	}

	// Once the retired key's tokens have expired, a restart drops its file.
	clock.Advance(5*time.Minute + clockLeeway)
	fourth := newEnv(t, o)
	if n := len(fourth.jwks().Keys); n != 2 {
		t.Errorf("JWKS has %d keys, want 2 (current and next)", n)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.pem")); len(files) != 2 {
		t.Errorf("key files after expiry = %v, want two (current and next)", files)
	}

	// A key older than RotateEvery, or of another algorithm, is replaced
	// at start; the old one keeps validating its tokens.
	o.Algorithm = "EdDSA"
	fifth := newEnv(t, o)
	// The ES256 next key never signed, so it is dropped, not published.
	got := fifth.jwks()
	if len(got.Keys) != 3 || got.Keys[0].ALG != "EdDSA" || got.Keys[1].ALG != "EdDSA" || got.Keys[2].ALG != "ES256" {
		t.Errorf("after an algorithm change JWKS = %v, want EdDSA (current), EdDSA (next) then ES256", got.Keys)
	}
	if nexts, _ := filepath.Glob(filepath.Join(dir, "next-*.pem")); len(nexts) != 1 {
		t.Errorf("next key files after an algorithm change = %v, want one", nexts)
	}
}

func TestKeyDirDamagedFileFailsClosed(t *testing.T) {
	dir := t.TempDir()
	testpki.WriteFile(t, filepath.Join(dir, "20260101T000000.000000000Z-x.pem"), []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	testpki.WriteFile(t, filepath.Join(dir, "README"), []byte("not a key"))
	_, err := New(Options{Issuer: testIssuer, KeyDir: dir})
	if !errors.Is(err, ErrBadKeyFile) {
		t.Fatalf("New with a damaged key file: %v, want ErrBadKeyFile", err)
	}
}

func TestStartRotatesOnSchedule(t *testing.T) {
	s, err := New(Options{Issuer: testIssuer, RotateEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	first := s.keys.Load().current.kid
	s.Start()
	s.Start()
	deadline := time.Now().Add(5 * time.Second)
	for s.keys.Load().current.kid == first {
		if time.Now().After(deadline) {
			t.Fatal("the key did not rotate within 5s with RotateEvery=1s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Close()
	s.Close()
	rotated := s.keys.Load().current.kid
	time.Sleep(1200 * time.Millisecond)
	if s.keys.Load().current.kid != rotated {
		t.Error("the key rotated after Close")
	}
}

func TestThumbprintKid(t *testing.T) {
	// RFC 7638 §3.1's example key and thumbprint.
	const n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	got, err := thumbprint(jwksetMarshal("RSA", n, "AQAB"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Errorf("thumbprint = %s, want %s", got, want)
	}
}

// TestKeyDirNextKeyFiles loads key directories written by a version without
// a next key and left by a rotation interrupted between writing the new
// next key and promoting the old one.
func TestKeyDirNextKeyFiles(t *testing.T) {
	clock := newClock()
	mk := func(t *testing.T, dir string, created time.Time, next bool) *signingKey {
		t.Helper()
		priv, err := generateKey("ES256")
		if err != nil {
			t.Fatal(err)
		}
		k, err := newSigningKey(priv, created)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := writeKeyFile(dir, k, next); err != nil {
			t.Fatal(err)
		}
		return k
	}
	open := func(t *testing.T, dir string) *keyRing {
		t.Helper()
		s, err := New(Options{Issuer: testIssuer, KeyDir: dir, Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		return s.keys.Load()
	}

	t.Run("older version", func(t *testing.T) {
		dir := t.TempDir()
		cur := mk(t, dir, clock.Now().Add(-time.Minute), false)
		ring := open(t, dir)
		if ring.current.kid != cur.kid || ring.next == nil || ring.next.kid == cur.kid {
			t.Fatalf("ring = current %s next %v, want current %s and a new next key", ring.current.kid, ring.next, cur.kid)
		}
		if nexts, _ := filepath.Glob(filepath.Join(dir, "next-*.pem")); len(nexts) != 1 {
			t.Errorf("next key files = %v, want one", nexts)
		}
		if again := open(t, dir); again.current.kid != cur.kid || again.next.kid != ring.next.kid {
			t.Errorf("a restart changed the keys")
		}
	})

	t.Run("interrupted rotation", func(t *testing.T) {
		dir := t.TempDir()
		cur := mk(t, dir, clock.Now().Add(-2*time.Minute), false)
		older := mk(t, dir, clock.Now().Add(-2*time.Minute), true)
		mk(t, dir, clock.Now().Add(-time.Minute), true)
		ring := open(t, dir)
		if ring.current.kid != cur.kid || ring.next == nil || ring.next.kid != older.kid {
			t.Fatalf("ring = current %s next %v, want current %s next %s", ring.current.kid, ring.next, cur.kid, older.kid)
		}
		if nexts, _ := filepath.Glob(filepath.Join(dir, "next-*.pem")); len(nexts) != 1 {
			t.Errorf("next key files = %v, want the older one only", nexts)
		}
	})
}
