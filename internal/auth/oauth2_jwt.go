package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis/portcullis/internal/problem"
)

// Header and routing failures raised inside the keyfunc, before the
// signature is checked.
var (
	errIssuerUnknown   = errors.New("issuer not accepted")
	errIntrospectOnly  = errors.New("issuer is checked by introspection")
	errBadTyp          = errors.New("typ is not an access token type")
	errCritHeader      = errors.New("crit header present")
	errBadKIDHeader    = errors.New("kid header is not a string")
	errUnexpectedClaim = errors.New("unexpected claims type")
)

// accessClaims are the JWT access token claims (RFC 9068 §2.2) Portcullis
// reads. The unexported fields carry what the keyfunc learnt back to
// validateJWT.
type accessClaims struct {
	jwt.RegisteredClaims
	Scope    jwt.ClaimStrings `json:"scope"`
	Scp      jwt.ClaimStrings `json:"scp"`
	ClientID string           `json:"client_id"`
	Azp      string           `json:"azp"`
	Cnf      *cnfClaim        `json:"cnf"`

	issuer *oauth2Issuer
	kid    string
	keyed  bool // the keyfunc ran, so the algorithm was allowed
}

// acceptedTyp reports whether a JWT "typ" header denotes an access token.
// RFC 9068 §2.1 says "at+jwt"; the full media type is equivalent, and
// "JWT" (or no typ) is accepted because many identity providers still mint
// access tokens that way. Other types (an OpenID Connect logout token,
// a DPoP proof, a JWT-secured authorization request) are refused so a JWT
// meant for another purpose cannot pass as an access token. Media types
// compare case-insensitively (RFC 7515 §4.1.9).
func acceptedTyp(typ string) bool {
	return strings.EqualFold(typ, "at+jwt") || strings.EqualFold(typ, "application/at+jwt") || strings.EqualFold(typ, "JWT")
}

// keyFor is the jwt.Keyfunc. jwt calls it after decoding the header and
// claims and checking alg against the allowed algorithms, before verifying
// the signature.
func (a *OAuth2) keyFor(t *jwt.Token) (any, error) {
	c, ok := t.Claims.(*accessClaims)
	if !ok {
		return nil, errUnexpectedClaim
	}
	c.keyed = true
	if _, crit := t.Header["crit"]; crit {
		// RFC 7515 §4.1.11: extensions listed in crit must be understood,
		// and Portcullis understands none.
		return nil, errCritHeader
	}
	if v, ok := t.Header["typ"]; ok {
		if s, _ := v.(string); !acceptedTyp(s) {
			return nil, errBadTyp
		}
	}
	kid, hasKID := "", false
	if v, ok := t.Header["kid"]; ok {
		s, isString := v.(string)
		if !isString {
			return nil, errBadKIDHeader
		}
		kid, hasKID = s, true
	}
	c.kid = kid
	is := a.issuers[c.Issuer]
	if is == nil {
		return nil, errIssuerUnknown
	}
	c.issuer = is
	if is.keys == nil {
		return nil, errIntrospectOnly
	}
	return is.keys.key(t, t.Method.Alg(), kid, hasKID)
}

// validateJWT verifies a JWT access token and, when its issuer configures
// introspection, confirms that it is still active.
func (a *OAuth2) validateJWT(ctx context.Context, tok string) (*tokenInfo, *problem.Error) {
	c := &accessClaims{}
	t, err := a.parser.ParseWithClaims(tok, c, a.keyfunc)
	if err != nil {
		if errors.Is(err, errIntrospectOnly) {
			return a.introspectAt(ctx, c.issuer, tok)
		}
		return nil, a.jwtFailure(err, t, c)
	}
	info := c.info()
	if rv := c.issuer.revoked; rv != nil && c.ID != "" && rv(c.ID) {
		return nil, a.tokenFail(problem.CodeOAuth2TokenInactive, "The access token is no longer active.", info, nil,
			"reason", "revoked", "jti", truncate(c.ID, 64),
			"explanation", "The token was revoked at its issuer (RFC 7009). Fix: obtain a new token.")
	}
	if len(a.required) > 0 {
		_, payload, _ := strings.Cut(tok, ".")
		payload, _, _ = strings.Cut(payload, ".")
		raw, derr := base64.RawURLEncoding.DecodeString(payload)
		if derr == nil {
			info.missingClaim, derr = firstMissingClaim(raw, a.required)
		}
		if derr != nil {
			return nil, a.tokenFail(problem.CodeOAuth2TokenMalformed, "The access token is not a well-formed JWT.", info, derr,
				"reason", "payload_undecodable", "explanation", "The verified token's payload could not be decoded again for required_claims. Fix: report this as a gateway bug.")
		}
	}
	if c.issuer.introJWTs {
		if _, perr := a.introspectAt(ctx, c.issuer, tok); perr != nil {
			return nil, perr
		}
	}
	return info, nil
}

// info is what a verified token says.
func (c *accessClaims) info() *tokenInfo {
	ti := &tokenInfo{
		iss: c.Issuer, sub: c.Subject, kid: c.kid, aud: c.Audience, cnf: c.Cnf, via: "jwt",
		clientID: firstNonEmpty(c.ClientID, firstNonEmpty(c.Azp, c.Subject)),
		scopes:   splitScopes(c.Scope, c.Scp),
	}
	if c.ExpiresAt != nil {
		ti.exp = c.ExpiresAt.Time
	}
	return ti
}

// jwtFailure maps a parse or verification error to a problem. The claims
// in c are unverified here, so they go to the log only.
func (a *OAuth2) jwtFailure(err error, t *jwt.Token, c *accessClaims) *problem.Error {
	info := &tokenInfo{iss: c.Issuer, sub: c.Subject, kid: c.kid, clientID: firstNonEmpty(c.ClientID, c.Azp), via: "jwt"}
	alg := ""
	if t != nil {
		alg, _ = t.Header["alg"].(string)
	}
	malformed := func(reason, explanation string) *problem.Error {
		return a.tokenFail(problem.CodeOAuth2TokenMalformed, "The access token is not a well-formed JWT access token.", info, err,
			"reason", reason, "alg", truncate(alg, 16), "explanation", explanation)
	}
	badSig := func(reason, explanation string) *problem.Error {
		return a.tokenFail(problem.CodeOAuth2SignatureInvalid, "The access token's signature is not valid.", info, err,
			"reason", reason, "alg", truncate(alg, 16), "explanation", explanation)
	}
	switch {
	case errors.Is(err, errIssuerUnknown):
		return a.tokenFail(problem.CodeOAuth2IssuerUnknown, "The access token was issued by an authorization server this API does not accept.", info, err,
			"reason", "issuer_unknown",
			"explanation", "The token's iss is not one of the API's issuers (compared exactly, trailing slash included). Fix: obtain the token from an accepted issuer, or add this issuer to oauth2.issuers.")
	case errors.Is(err, errKeysUnavailable):
		return a.fail(problem.CodeOAuth2Unavailable, "", "The access token could not be checked; try again later.", err,
			"reason", "jwks_unavailable", "iss", info.iss, "sub", info.sub, "client_id", info.clientID, "kid", info.kid,
			"explanation", "The issuer's JWKS could not be fetched and no cached key fits the token. Fix: check the jwks_url, its TLS trust set and the IdP's availability.")
	case errors.Is(err, errBadTyp):
		typ, _ := t.Header["typ"].(string)
		return malformed("typ", "The JWT typ header is "+truncate(typ, 40)+", not at+jwt or JWT, so it is not an access token (RFC 9068 §2.1). Fix: send an access token, not an ID token, logout token or other JWT.")
	case errors.Is(err, errCritHeader):
		return malformed("crit", "The JWT has a crit header; Portcullis implements no JWS extensions, so it must refuse the token (RFC 7515 §4.1.11).")
	case errors.Is(err, errBadKIDHeader):
		return malformed("kid", "The JWT kid header is not a string.")
	case errors.Is(err, errUnknownKID):
		return badSig("unknown_kid", "The issuer's keys have no key with the token's kid, even after a refetch of the JWKS (refetches are rate-limited). Fix: check that the token comes from this issuer and that the IdP publishes its current key.")
	case errors.Is(err, errNoKeyForAlg):
		return badSig("no_key_for_alg", "No key of the issuer fits the token's algorithm (key type, curve or the JWK's own alg differ). Fix: check the IdP's signing algorithm and oauth2.algorithms.")
	case errors.Is(err, errSecretKey):
		return badSig("secret_key", "The in-process key source returned a secret key; HMAC tokens are never accepted. Fix: this is a gateway configuration bug.")
	case errors.Is(err, jwt.ErrTokenMalformed):
		return malformed("malformed", "The token is not a JWS compact serialisation that decodes: three base64url segments, a JSON header and JSON claims of the right types.")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid) && !c.keyed:
		return badSig("alg_not_allowed", "The token's alg is not in oauth2.algorithms (none and HMAC are never accepted). Fix: have the IdP sign with an allowed algorithm, or allow it.")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return badSig("bad_signature", "The signature does not verify with the issuer's key: the token was altered or signed by another key. Fix: obtain a new token from the issuer.")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return malformed("exp_missing", "The token has no exp claim; access tokens must expire (RFC 9068 §2.2). Fix: configure the IdP to set exp.")
	case errors.Is(err, jwt.ErrTokenExpired):
		return a.tokenFail(problem.CodeOAuth2TokenExpired, "The access token has expired.", info, err,
			"reason", "expired", "exp", c.ExpiresAt, "leeway", a.leeway.String(),
			"explanation", "The token's exp is in the past, beyond the leeway. Fix: obtain a new token; if it looks current, check the gateway's clock.")
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return a.tokenFail(problem.CodeOAuth2TokenNotYetValid, "The access token is not valid yet.", info, err,
			"reason", "not_yet_valid", "nbf", c.NotBefore, "iat", c.IssuedAt, "leeway", a.leeway.String(),
			"explanation", "The token's nbf or iat is in the future, beyond the leeway. Fix: check the clocks of the IdP and the gateway.")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return badSig("alg_unsupported", "The token names no signing algorithm or one Portcullis does not implement.")
	default:
		return malformed("invalid_claims", "The token's claims did not validate.")
	}
}
