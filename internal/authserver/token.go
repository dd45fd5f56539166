package authserver

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/auth"
)

// accessClaims are the claims of an access token (RFC 9068 §2.2). It is
// marshalled directly rather than through jwt.Token, which keeps signing
// to one JSON encoding and writes a single audience as a string.
type accessClaims struct {
	Issuer    string        `json:"iss"`
	Subject   string        `json:"sub"`
	Audience  audience      `json:"aud"`
	ExpiresAt int64         `json:"exp"`
	IssuedAt  int64         `json:"iat"`
	NotBefore int64         `json:"nbf"`
	ID        string        `json:"jti"`
	ClientID  string        `json:"client_id"`
	Scope     string        `json:"scope,omitempty"`
	Cnf       *confirmation `json:"cnf,omitempty"`
}

// confirmation is the RFC 8705 §3.1 confirmation claim.
type confirmation struct {
	X5tS256 string `json:"x5t#S256"`
}

// audience is an aud value: a string when there is one audience, an array
// otherwise (RFC 7519 §4.1.3 allows both).
type audience []string

// MarshalJSON writes a single audience as a string.
func (a audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// tokenResponse is the RFC 6749 §5.1 success response.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

// issued is a signed token and what was put in it.
type issued struct {
	token  string
	claims accessClaims
	kid    string
}

// handleToken serves the token endpoint: client authentication, then
// grant_type=client_credentials (RFC 6749 §4.4), scope and audience.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	form, oe := s.readForm(w, r)
	if oe != nil {
		s.fail(w, r, "token", oe)
		return
	}
	who, oe := s.authenticate(r, form, s.urls.token)
	if oe != nil {
		s.fail(w, r, "token", oe)
		return
	}
	switch grant := form.Get("grant_type"); grant {
	case "client_credentials":
	case "":
		s.fail(w, r, "token", newError(http.StatusBadRequest, errInvalidRequest, "grant_type is required", "no grant_type", "client_id", who.client.ID))
		return
	default:
		s.fail(w, r, "token", newError(http.StatusBadRequest, errUnsupportedGrantType,
			"only the client_credentials grant is supported", "unsupported grant_type", "client_id", who.client.ID, "grant_type", logValue(grant)))
		return
	}
	scopes, oe := s.grantScopes(who.client, form.Get("scope"))
	if oe != nil {
		s.fail(w, r, "token", oe)
		return
	}
	aud, oe := s.audience(form, who.client.ID)
	if oe != nil {
		s.fail(w, r, "token", oe)
		return
	}
	t, err := s.issue(who, scopes, aud)
	if err != nil {
		s.fail(w, r, "token", newError(http.StatusInternalServerError, errServerError, "the token could not be issued", err.Error(), "client_id", who.client.ID))
		return
	}
	s.writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken: t.token,
		TokenType:   "Bearer",
		ExpiresIn:   t.claims.ExpiresAt - t.claims.IssuedAt,
		Scope:       t.claims.Scope,
	})
	s.log.Info("authorization server: access token issued",
		"client_id", who.client.ID, "application", who.client.Application, "method", who.method,
		"scope", t.claims.Scope, "aud", strings.Join(t.claims.Audience, " "), "jti", t.claims.ID, "kid", t.kid,
		"bound", t.claims.Cnf != nil, "expires", time.Unix(t.claims.ExpiresAt, 0).UTC())
}

// grantScopes decides the scopes of a token: the requested ones, each of
// which must be registered for the client and, when SubscriptionScopes is
// set, covered by the application's subscriptions; with no scope
// requested, every scope that passes both. A requested scope that is not
// allowed fails the whole request with invalid_scope rather than being
// dropped: RFC 6749 §3.3 permits either, and failing tells the client at
// once, instead of through a 403 insufficient_scope at the API later.
func (s *Server) grantScopes(c *client, requested string) ([]string, *oauthError) {
	allowed := c.Scopes
	var subscribed []string
	if s.subscriptionScopes != nil {
		subscribed = s.subscriptionScopes(c.Application)
		allowed = slices.DeleteFunc(slices.Clone(allowed), func(sc string) bool { return !slices.Contains(subscribed, sc) })
	}
	if requested == "" {
		return slices.Clone(allowed), nil
	}
	var granted []string
	for _, sc := range strings.Split(requested, " ") {
		switch {
		case sc == "" || slices.Contains(granted, sc):
			continue
		case !validScopeToken(sc):
			return nil, newError(http.StatusBadRequest, errInvalidScope, "the scope parameter is malformed",
				"scope is not a list of RFC 6749 scope tokens", "client_id", c.ID)
		case !slices.Contains(c.Scopes, sc):
			return nil, newError(http.StatusBadRequest, errInvalidScope, "scope "+sc+" is not allowed for this client",
				"the scope is not registered for the client", "client_id", c.ID, "scope", sc)
		case !slices.Contains(allowed, sc):
			return nil, newError(http.StatusBadRequest, errInvalidScope, "scope "+sc+" is not allowed for this client",
				"no subscription of the application grants the scope", "client_id", c.ID, "application", c.Application, "scope", sc)
		}
		granted = append(granted, sc)
	}
	return granted, nil
}

// audience decides the token's aud: the RFC 8707 resource (or audience)
// values requested, each of which must be the issuer or in
// Options.Audiences; with none requested, the issuer.
func (s *Server) audience(form url.Values, clientID string) (audience, *oauthError) {
	var aud audience
	for _, v := range slices.Concat(form["resource"], form["audience"]) {
		switch {
		case v == "" || slices.Contains(aud, v):
			continue
		case v != s.issuer && !slices.Contains(s.audiences, v):
			return nil, newError(http.StatusBadRequest, errInvalidTarget, "the requested resource is not served by this authorization server",
				"resource not in Options.Audiences", "client_id", clientID, "resource", logValue(v))
		}
		aud = append(aud, v)
	}
	if len(aud) == 0 {
		aud = audience{s.issuer}
	}
	return aud, nil
}

// issue signs an access token for who with the current key.
func (s *Server) issue(who *authenticated, scopes []string, aud audience) (issued, error) {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return issued{}, fmt.Errorf("generating jti: %w", err)
	}
	now := s.now().Unix()
	c := accessClaims{
		Issuer:    s.issuer,
		Subject:   who.client.ID,
		Audience:  aud,
		ExpiresAt: now + int64(s.ttl/time.Second),
		IssuedAt:  now,
		NotBefore: now,
		ID:        base64.RawURLEncoding.EncodeToString(id[:]),
		ClientID:  who.client.ID,
		Scope:     strings.Join(scopes, " "),
	}
	if who.cert != nil && who.client.BindTokens {
		c.Cnf = &confirmation{X5tS256: auth.Thumbprint(who.cert)}
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return issued{}, fmt.Errorf("encoding claims: %w", err)
	}
	k := s.keys.Load().current
	tok, err := k.sign(payload)
	if err != nil {
		return issued{}, err
	}
	return issued{token: tok, claims: c, kid: k.kid}, nil
}
