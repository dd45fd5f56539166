package authserver

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// tokenClaims are an access token's claims as read back by introspection
// and revocation.
type tokenClaims struct {
	jwt.RegisteredClaims
	ClientID string        `json:"client_id"`
	Scope    string        `json:"scope,omitempty"`
	Cnf      *confirmation `json:"cnf,omitempty"`
}

// introspection is the RFC 7662 §2.2 response. An inactive token gets
// {"active":false} and nothing else.
type introspection struct {
	Active    bool          `json:"active"`
	Scope     string        `json:"scope,omitempty"`
	ClientID  string        `json:"client_id,omitempty"`
	TokenType string        `json:"token_type,omitempty"`
	Exp       int64         `json:"exp,omitempty"`
	Iat       int64         `json:"iat,omitempty"`
	Nbf       int64         `json:"nbf,omitempty"`
	Sub       string        `json:"sub,omitempty"`
	Aud       audience      `json:"aud,omitempty"`
	Iss       string        `json:"iss,omitempty"`
	Jti       string        `json:"jti,omitempty"`
	Cnf       *confirmation `json:"cnf,omitempty"`
}

// errNotAccessToken means a JWT verified but is not one of this server's
// access tokens.
var errNotAccessToken = errors.New("not an access token of this server")

// verifyToken checks that raw is an access token this server issued:
// signed by a published key with its algorithm, typ at+jwt, iss the
// issuer, unexpired and already valid (no leeway: the issuer's own clock
// decides), with a jti and client_id. Revocation is not checked here.
func (s *Server) verifyToken(raw string) (*tokenClaims, error) {
	var c tokenClaims
	t, err := s.parser.ParseWithClaims(raw, &c, s.keyFor)
	if err != nil {
		return nil, err
	}
	if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		return nil, errNotAccessToken
	}
	if c.ID == "" || c.ClientID == "" {
		return nil, errNotAccessToken
	}
	return &c, nil
}

// handleIntrospect serves RFC 7662 introspection. Any registered client
// may introspect any token: a resource server is such a client, and a
// token's claims are no secret from whoever holds the token. The answer is
// active with the token's claims for a valid, unexpired, unrevoked token
// issued here, and {"active":false} for anything else.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	who, raw, ok := s.tokenRequest(w, r, "introspect", s.urls.introspect)
	if !ok {
		return
	}
	c, err := s.verifyToken(raw)
	if err == nil && s.revoked.has(c.ID, s.now()) {
		err = errors.New("token revoked")
	}
	if err != nil {
		s.log.Debug("authorization server: introspected token is inactive", "client_id", who.client.ID, "reason", err.Error())
		s.writeJSON(w, http.StatusOK, introspection{Active: false})
		return
	}
	resp := introspection{
		Active:    true,
		Scope:     c.Scope,
		ClientID:  c.ClientID,
		TokenType: "Bearer",
		Sub:       c.Subject,
		Aud:       audience(c.Audience),
		Iss:       c.Issuer,
		Jti:       c.ID,
		Cnf:       c.Cnf,
	}
	if c.ExpiresAt != nil {
		resp.Exp = c.ExpiresAt.Unix()
	}
	if c.IssuedAt != nil {
		resp.Iat = c.IssuedAt.Unix()
	}
	if c.NotBefore != nil {
		resp.Nbf = c.NotBefore.Unix()
	}
	s.writeJSON(w, http.StatusOK, resp)
}

// handleRevoke serves RFC 7009 revocation. A client may revoke only tokens
// issued to it (RFC 7009 §2.1); a request for any other token, or for
// something that is not a valid token of this server, changes nothing.
// Every authenticated request with a token gets 200 (RFC 7009 §2.2), so the
// answer does not tell a client whether a token it found is live.
// token_type_hint is ignored: only access tokens exist here.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	who, raw, ok := s.tokenRequest(w, r, "revoke", s.urls.revoke)
	if !ok {
		return
	}
	c, err := s.verifyToken(raw)
	switch {
	case err != nil:
		s.log.Info("authorization server: revocation of a token that is not a valid token of this server ignored",
			"client_id", who.client.ID, "reason", err.Error())
	case c.ClientID != who.client.ID:
		s.log.Warn("authorization server: a client tried to revoke a token issued to another client; ignored",
			"client_id", who.client.ID, "token_client_id", c.ClientID, "jti", c.ID)
	default:
		s.revoked.add(c.ID, c.ExpiresAt.Add(clockLeeway), s.now())
		s.log.Info("authorization server: access token revoked", "client_id", who.client.ID, "jti", c.ID, "until", c.ExpiresAt.UTC())
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
}

// IsRevoked reports whether the token with this jti was revoked. An entry
// is kept until the token's exp plus a minute of leeway, after which the
// token is refused for its expiry anyway. It is safe for concurrent use
// and takes no lock, so validators can call it on every request.
func (s *Server) IsRevoked(jti string) bool {
	return s.revoked.has(jti, s.now())
}

// revocationList maps revoked jti values to the time their entry may be
// dropped. Reads are lock-free on an immutable map; a revocation copies
// the map (dropping stale entries), which is cheap because revocations are
// rare and entries short-lived.
type revocationList struct {
	mu sync.Mutex
	m  atomic.Pointer[map[string]time.Time]
}

func (l *revocationList) has(jti string, now time.Time) bool {
	m := l.m.Load()
	if m == nil {
		return false
	}
	until, ok := (*m)[jti]
	return ok && until.After(now)
}

func (l *revocationList) add(jti string, until, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	next := map[string]time.Time{jti: until}
	if old := l.m.Load(); old != nil {
		for k, v := range *old {
			if v.After(now) && k != jti {
				next[k] = v
			}
		}
	}
	l.m.Store(&next)
}

// tokenRequest reads the form of an introspection or revocation request,
// authenticates the calling client against endpoint and returns it with the
// token it names. On any failure it has answered and returns ok false.
func (s *Server) tokenRequest(w http.ResponseWriter, r *http.Request, name, endpoint string) (who *authenticated, raw string, ok bool) {
	form, oe := s.readForm(w, r)
	if oe != nil {
		s.fail(w, r, name, oe)
		return nil, "", false
	}
	who, oe = s.authenticate(r, form, endpoint)
	if oe != nil {
		s.fail(w, r, name, oe)
		return nil, "", false
	}
	raw = form.Get("token")
	if raw == "" {
		s.fail(w, r, name, newError(http.StatusBadRequest, errInvalidRequest, "token is required", "no token", "client_id", who.client.ID))
		return nil, "", false
	}
	return who, raw, true
}
