package auth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis/portcullis/internal/problem"
)

// maxIntrospectionBytes bounds an introspection answer.
const maxIntrospectionBytes = 1 << 20

// introspector calls one issuer's RFC 7662 endpoint and caches answers by
// the SHA-256 of the token, so the token itself is never kept.
type introspector struct {
	iss        string
	url        string
	clientID   string
	secret     []byte
	client     *http.Client
	maxTTL     time.Duration
	negTTL     time.Duration
	maxEntries int
	now        func() time.Time
	stats      *oauth2Counters
	// required lists claims whose presence is recorded per answer.
	required []string

	cache sync.Map // [sha256.Size]byte → *introspectionEntry
	size  atomic.Int64
}

// introspectionEntry is a cached answer; info is nil for an inactive token.
type introspectionEntry struct {
	info  *tokenInfo
	until time.Time
}

// introspectionAnswer is the RFC 7662 §2.2 response members Portcullis
// uses.
type introspectionAnswer struct {
	Active    bool             `json:"active"`
	Scope     jwt.ClaimStrings `json:"scope"`
	Scp       jwt.ClaimStrings `json:"scp"`
	ClientID  string           `json:"client_id"`
	Sub       string           `json:"sub"`
	Iss       string           `json:"iss"`
	Aud       jwt.ClaimStrings `json:"aud"`
	Exp       *jwt.NumericDate `json:"exp"`
	Nbf       *jwt.NumericDate `json:"nbf"`
	TokenType string           `json:"token_type"`
	Cnf       *cnfClaim        `json:"cnf"`
}

func newIntrospector(iss string, in *Introspection, client *http.Client, now func() time.Time, stats *oauth2Counters) (*introspector, error) {
	if err := checkEndpoint(in.URL); err != nil {
		return nil, err
	}
	if in.ClientID == "" {
		return nil, errors.New("client_id is required: RFC 7662 endpoints authenticate their callers")
	}
	it := &introspector{
		iss: iss, url: in.URL, clientID: in.ClientID, secret: append([]byte(nil), in.ClientSecret...),
		client: client, maxTTL: in.MaxTTL, negTTL: in.NegativeTTL, maxEntries: in.MaxEntries, now: now, stats: stats,
	}
	if in.HTTPClient != nil {
		it.client = in.HTTPClient
	}
	if it.maxTTL == 0 {
		it.maxTTL = DefaultIntrospectionMaxTTL
	}
	if it.negTTL == 0 {
		it.negTTL = DefaultIntrospectionNegativeTTL
	}
	if it.maxEntries <= 0 {
		it.maxEntries = DefaultIntrospectionCacheEntries
	}
	return it, nil
}

// lookup returns the token's info, nil when the endpoint says it is
// inactive, or an error when no answer could be had.
func (it *introspector) lookup(ctx context.Context, tok string) (*tokenInfo, error) {
	key := sha256.Sum256([]byte(tok))
	now := it.now()
	if v, ok := it.cache.Load(key); ok {
		e := v.(*introspectionEntry)
		if now.Before(e.until) {
			it.stats.introHits.Add(1)
			return e.info, nil
		}
		if it.cache.CompareAndDelete(key, v) {
			it.size.Add(-1)
		}
	}
	it.stats.introCalls.Add(1)
	info, err := it.call(ctx, tok)
	if err != nil {
		it.stats.introFailed.Add(1)
		return nil, err
	}
	ttl := it.negTTL
	if info != nil {
		ttl = it.maxTTL
		if !info.exp.IsZero() {
			ttl = min(ttl, info.exp.Sub(now))
		}
	}
	if ttl > 0 {
		it.store(key, &introspectionEntry{info: info, until: now.Add(ttl)}, now)
	}
	return info, nil
}

// store caches e unless the cache is full of live entries.
func (it *introspector) store(key [sha256.Size]byte, e *introspectionEntry, now time.Time) {
	if it.size.Load() >= int64(it.maxEntries) {
		it.cache.Range(func(k, v any) bool {
			if !now.Before(v.(*introspectionEntry).until) && it.cache.CompareAndDelete(k, v) {
				it.size.Add(-1)
			}
			return true
		})
		if it.size.Load() >= int64(it.maxEntries) {
			return
		}
	}
	if _, loaded := it.cache.Swap(key, e); !loaded {
		it.size.Add(1)
	}
}

// call asks the endpoint. Client credentials go in HTTP Basic, each
// form-encoded first (RFC 6749 §2.3.1); without a secret the gateway is
// taken to authenticate by its TLS client certificate and sends client_id
// in the form.
func (it *introspector) call(ctx context.Context, tok string) (*tokenInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, oauth2HTTPTimeout)
	defer cancel()
	form := url.Values{"token": {tok}, "token_type_hint": {"access_token"}}
	if len(it.secret) == 0 {
		form.Set("client_id", it.clientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, it.url, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("building introspection request for %s: %w", it.url, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if len(it.secret) > 0 {
		req.SetBasicAuth(url.QueryEscape(it.clientID), url.QueryEscape(string(it.secret)))
	}
	resp, err := it.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("calling introspection endpoint %s: %w", it.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("introspection endpoint %s answered status %d, want 200", it.url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIntrospectionBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading introspection answer from %s: %w", it.url, err)
	}
	if len(body) > maxIntrospectionBytes {
		return nil, fmt.Errorf("introspection answer from %s is larger than %d bytes", it.url, maxIntrospectionBytes)
	}
	var ans introspectionAnswer
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, fmt.Errorf("introspection answer from %s is not valid RFC 7662 JSON: %w", it.url, err)
	}
	if !ans.Active {
		return nil, nil
	}
	info := &tokenInfo{
		iss: ans.Iss, sub: ans.Sub, clientID: firstNonEmpty(ans.ClientID, ans.Sub),
		scopes: splitScopes(ans.Scope, ans.Scp), aud: ans.Aud, cnf: ans.Cnf, via: "introspection",
	}
	if ans.Exp != nil {
		info.exp = ans.Exp.Time
	}
	if ans.Nbf != nil {
		info.nbf = ans.Nbf.Time
	}
	if len(it.required) > 0 {
		missing, err := firstMissingClaim(body, it.required)
		if err != nil {
			return nil, fmt.Errorf("introspection answer from %s: %w", it.url, err)
		}
		info.missingClaim = missing
	}
	if tt := strings.ToLower(ans.TokenType); tt != "" && tt != "bearer" && tt != "access_token" {
		info.wrongType = ans.TokenType
	}
	return info, nil
}

// firstMissingClaim returns the first of required that the JSON object
// lacks, or "".
func firstMissingClaim(object []byte, required []string) (string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(object, &m); err != nil {
		return "", err
	}
	for _, c := range required {
		if _, ok := m[c]; !ok {
			return c, nil
		}
	}
	return "", nil
}

// splitScopes collects the space-separated scopes of the "scope" claim
// (RFC 9068, RFC 7662) and of "scp" (used by some IdPs, as a string or an
// array).
func splitScopes(lists ...jwt.ClaimStrings) []string {
	var out []string
	for _, l := range lists {
		for _, s := range l {
			out = append(out, strings.Fields(s)...)
		}
	}
	return out
}

// introspectOpaque introspects a token that is not a JWT at each issuer
// that configures introspection, in order, and accepts the first active
// answer. An opaque token names no issuer, so all configured endpoints,
// which the operator trusts, may see it.
func (a *OAuth2) introspectOpaque(ctx context.Context, tok string) (*tokenInfo, *problem.Error) {
	if len(a.introspectors) == 0 {
		return nil, a.fail(problem.CodeOAuth2TokenMalformed, "invalid_token", "The access token is not a JWT.", nil,
			"reason", "not_jwt", "explanation", "The token is not a signed JWT and no issuer configures introspection for opaque tokens. Fix: configure the authorization server to issue JWT access tokens, or set introspection on the issuer.")
	}
	var unavailable *problem.Error
	for _, is := range a.introspectors {
		info, perr := a.introspectAt(ctx, is, tok)
		if perr == nil {
			return info, nil
		}
		if perr.Code == problem.CodeOAuth2Unavailable {
			unavailable = perr
			continue
		}
		if perr.Code != problem.CodeOAuth2TokenInactive || len(a.introspectors) == 1 {
			return nil, perr
		}
	}
	if unavailable != nil {
		return nil, unavailable
	}
	return nil, a.fail(problem.CodeOAuth2TokenInactive, "invalid_token", "The access token is not active.", nil,
		"reason", "inactive", "via", "introspection",
		"explanation", "Every introspection endpoint answered active: false (revoked, expired or unknown token). Fix: obtain a new token.")
}

// introspectAt asks is's endpoint about tok and checks the answer's time
// bounds, issuer and token type; audience, binding and scopes are checked
// by authorize.
func (a *OAuth2) introspectAt(ctx context.Context, is *oauth2Issuer, tok string) (*tokenInfo, *problem.Error) {
	info, err := is.intro.lookup(ctx, tok)
	if err != nil {
		return nil, a.fail(problem.CodeOAuth2Unavailable, "", "The access token could not be checked; try again later.", err,
			"reason", "introspection_failed", "iss", is.iss, "introspection_url", is.intro.url,
			"explanation", "The introspection endpoint could not be reached or gave no usable answer, and no cached answer exists. Fix: check the endpoint, its TLS trust set and the gateway's client credentials (an answer of 401 means they were refused).")
	}
	if info == nil {
		return nil, a.fail(problem.CodeOAuth2TokenInactive, "invalid_token", "The access token is not active.", nil,
			"reason", "inactive", "iss", is.iss, "via", "introspection",
			"explanation", "The introspection endpoint answered active: false: the token is revoked, expired or unknown to it. Fix: obtain a new token.")
	}
	if info.iss == "" {
		cp := *info
		cp.iss = is.iss
		info = &cp
	}
	now := a.now()
	switch {
	case info.iss != is.iss:
		return nil, a.tokenFail(problem.CodeOAuth2TokenInactive, "The access token is not active.", info, nil,
			"reason", "issuer_mismatch", "expected_iss", is.iss,
			"explanation", "The introspection endpoint of "+is.iss+" answered for a token of another issuer. Fix: check which issuer's endpoint is configured.")
	case info.wrongType != "":
		return nil, a.tokenFail(problem.CodeOAuth2TokenInactive, "The token is not an access token.", info, nil,
			"reason", "not_access_token", "token_type", info.wrongType,
			"explanation", "The introspection answer's token_type is not Bearer, so the token is not a plain access token (a refresh or DPoP token, for example). Fix: send an access token.")
	case !info.exp.IsZero() && !now.Before(info.exp.Add(a.leeway)):
		return nil, a.tokenFail(problem.CodeOAuth2TokenExpired, "The access token has expired.", info, nil,
			"reason", "expired", "exp", info.exp,
			"explanation", "The introspection answer's exp is in the past. Fix: obtain a new token; if it looks current, check the gateway's clock.")
	case !info.nbf.IsZero() && now.Add(a.leeway).Before(info.nbf):
		return nil, a.tokenFail(problem.CodeOAuth2TokenNotYetValid, "The access token is not valid yet.", info, nil,
			"reason", "not_yet_valid", "nbf", info.nbf,
			"explanation", "The introspection answer's nbf is in the future. Fix: check the clocks of the authorization server and the gateway.")
	}
	return info, nil
}
