package authserver

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis/portcullis/internal/auth"
)

// assertionType is the client_assertion_type of private_key_jwt (RFC 7523
// §2.2).
const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// maxAssertionSize bounds a client assertion; a real one is well under
// 2 KiB even with an RSA-4096 signature.
const maxAssertionSize = 16 << 10

// authenticated is a client that proved its identity.
type authenticated struct {
	client *client
	method ClientAuthMethod
	// cert is the client certificate the client authenticated with (the
	// verified leaf for tls_client_auth, the registered certificate for
	// self_signed_tls_client_auth), nil for the other methods.
	cert *x509.Certificate
}

// authenticate finds out which one client authentication method the
// request uses and checks it. The certificate methods apply only when the
// request carries no other credential: the listener requests a certificate
// from every client, so its mere presence is not a choice of method. It
// fails closed with invalid_client (or invalid_request when the request
// mixes methods); endpointURL is the URL of the endpoint being called, an
// audience a client assertion may name.
func (s *Server) authenticate(r *http.Request, form url.Values, endpointURL string) (*authenticated, *oauthError) {
	reg := s.clients.Load()
	authz := r.Header.Values("Authorization")
	hasBasic := len(authz) > 0
	hasPost := form.Get("client_secret") != ""
	hasAssertion := form.Get("client_assertion") != "" || form.Get("client_assertion_type") != ""
	n := 0
	for _, b := range []bool{hasBasic, hasPost, hasAssertion} {
		if b {
			n++
		}
	}
	if n > 1 || len(authz) > 1 {
		return nil, newError(http.StatusBadRequest, errInvalidRequest,
			"use exactly one client authentication method", "the request carries more than one client credential")
	}
	switch {
	case hasBasic:
		return s.authBasic(reg, authz[0], form)
	case hasPost:
		return s.checkSecret(reg, form.Get("client_id"), form.Get("client_secret"), MethodSecretPost)
	case hasAssertion:
		return s.authAssertion(reg, form, endpointURL)
	}
	return s.authCertificate(reg, r, form.Get("client_id"))
}

// authBasic reads RFC 6749 §2.3.1 Basic credentials: base64 of the
// form-urlencoded client_id, a colon and the form-urlencoded secret.
func (s *Server) authBasic(reg *registry, authz string, form url.Values) (*authenticated, *oauthError) {
	scheme, cred, _ := strings.Cut(authz, " ")
	if !strings.EqualFold(scheme, "Basic") {
		return nil, clientFailure("the Authorization header uses a scheme other than Basic")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return nil, clientFailure("malformed Basic credentials: not base64")
	}
	idEnc, secretEnc, ok := strings.Cut(string(raw), ":")
	if !ok {
		return nil, clientFailure("malformed Basic credentials: no colon between client_id and secret")
	}
	id, err := url.QueryUnescape(idEnc)
	if err != nil {
		return nil, clientFailure("malformed Basic credentials: client_id is not form-urlencoded")
	}
	secret, err := url.QueryUnescape(secretEnc)
	if err != nil {
		return nil, clientFailure("malformed Basic credentials: the secret is not form-urlencoded", "client_id", logValue(id))
	}
	if other := form.Get("client_id"); other != "" && other != id {
		return nil, newError(http.StatusBadRequest, errInvalidRequest,
			"client_id does not match the authenticated client", "client_id in the body differs from the Basic credentials",
			"client_id", logValue(id))
	}
	return s.checkSecret(reg, id, secret, MethodSecretBasic)
}

// checkSecret authenticates a client by secret, comparing SHA-256 hashes in
// constant time. Every registered hash is compared, so the time taken does
// not say which one matched.
func (s *Server) checkSecret(reg *registry, id, secret string, method ClientAuthMethod) (*authenticated, *oauthError) {
	if id == "" {
		return nil, clientFailure(string(method) + " without a client_id")
	}
	c := reg.byID[id]
	if c == nil {
		return nil, clientFailure("unknown client", "client_id", logValue(id), "method", method)
	}
	if !c.allows(method) {
		return nil, clientFailure("the client is not registered for this authentication method", "client_id", id, "method", method)
	}
	if secret == "" {
		return nil, clientFailure("empty client secret", "client_id", id, "method", method)
	}
	sum := sha256.Sum256([]byte(secret))
	match := 0
	for _, h := range c.secrets {
		match |= subtle.ConstantTimeCompare(sum[:], h[:])
	}
	if match != 1 {
		return nil, clientFailure("wrong client secret", "client_id", id, "method", method)
	}
	return &authenticated{client: c, method: method}, nil
}

// authAssertion authenticates a client by a private_key_jwt assertion
// (RFC 7523 §3): iss and sub are the client_id, aud names this server (its
// issuer, its token endpoint or the endpoint called), exp is required and at
// most MaxAssertionLifetime ahead, and jti is required and accepted once.
func (s *Server) authAssertion(reg *registry, form url.Values, endpointURL string) (*authenticated, *oauthError) {
	raw := form.Get("client_assertion")
	typ := form.Get("client_assertion_type")
	if raw == "" || typ == "" {
		return nil, newError(http.StatusBadRequest, errInvalidRequest,
			"client_assertion and client_assertion_type are both required", "half a private_key_jwt credential")
	}
	if typ != assertionType {
		return nil, clientFailure("unsupported client_assertion_type", "client_assertion_type", logValue(typ))
	}
	if len(raw) > maxAssertionSize {
		return nil, clientFailure(fmt.Sprintf("client assertion of %d bytes (the limit is %d)", len(raw), maxAssertionSize))
	}
	// The signature can only be checked with the client's keys, so the
	// client is found from the unverified claims first; nothing else is
	// read from them before the signature is verified.
	var unverified jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(raw, &unverified); err != nil {
		return nil, clientFailure("malformed client assertion", "error", err.Error())
	}
	id := unverified.Subject
	if id == "" || unverified.Issuer != id {
		return nil, clientFailure("the assertion's iss and sub must both be the client_id")
	}
	if other := form.Get("client_id"); other != "" && other != id {
		return nil, clientFailure("the client_id parameter differs from the assertion's subject", "client_id", logValue(other))
	}
	c := reg.byID[id]
	if c == nil {
		return nil, clientFailure("unknown client", "client_id", logValue(id), "method", MethodPrivateKeyJWT)
	}
	if !c.allows(MethodPrivateKeyJWT) {
		return nil, clientFailure("the client is not registered for this authentication method", "client_id", id, "method", MethodPrivateKeyJWT)
	}
	var claims jwt.RegisteredClaims
	p := jwt.NewParser(
		jwt.WithValidMethods(c.algs),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(clockLeeway),
		jwt.WithTimeFunc(s.now),
		jwt.WithIssuer(id),
		jwt.WithSubject(id),
		jwt.WithAudience(s.issuer, s.urls.token, endpointURL),
	)
	if _, err := p.ParseWithClaims(raw, &claims, c.assertionKeys); err != nil {
		return nil, clientFailure("client assertion refused", "client_id", id, "method", MethodPrivateKeyJWT, "error", err.Error())
	}
	now := s.now()
	exp := claims.ExpiresAt.Time
	if exp.After(now.Add(MaxAssertionLifetime + clockLeeway)) {
		return nil, clientFailure(fmt.Sprintf("the assertion expires %s from now (at most %s is accepted)", exp.Sub(now).Round(time.Second), MaxAssertionLifetime),
			"client_id", id, "method", MethodPrivateKeyJWT)
	}
	if claims.ID == "" {
		return nil, clientFailure("the assertion has no jti", "client_id", id, "method", MethodPrivateKeyJWT)
	}
	// Only a verified assertion is remembered, so nobody can burn another
	// client's jti values with forged assertions. The entry is kept until
	// the assertion can no longer pass the expiry check.
	if !s.replays.add(id+"\x00"+claims.ID, exp.Add(clockLeeway), now) {
		return nil, clientFailure("client assertion replayed (its jti was already used)", "client_id", id, "method", MethodPrivateKeyJWT, "jti", logValue(claims.ID))
	}
	return &authenticated{client: c, method: MethodPrivateKeyJWT}, nil
}

// assertionKeys returns the client's keys for an assertion: the key with
// the assertion's kid when the registration names key ids, otherwise every
// key. golang-jwt's signing methods check the key type, so a key is never
// used with an algorithm of another family.
func (c *client) assertionKeys(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	var set jwt.VerificationKeySet
	for _, k := range c.keys {
		if kid != "" && k.kid != "" && k.kid != kid {
			continue
		}
		set.Keys = append(set.Keys, k.key)
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("no registered key has kid %s", quoteForLog(kid))
	}
	return set, nil
}

// authCertificate authenticates a client that sent only its client_id by
// the certificate it presented in the TLS handshake: a registered
// self-signed certificate (RFC 8705 §2.2), or a certificate that verifies
// against Options.Trust and carries the registered subject DN or SANs
// (RFC 8705 §2.1).
func (s *Server) authCertificate(reg *registry, r *http.Request, id string) (*authenticated, *oauthError) {
	if id == "" {
		return nil, clientFailure("no client credentials: no Authorization header, client_secret, client_assertion or client_id")
	}
	c := reg.byID[id]
	if c == nil {
		return nil, clientFailure("unknown client", "client_id", logValue(id))
	}
	if !c.allows(MethodTLSClientAuth) && !c.allows(MethodSelfSignedTLSClientAuth) {
		return nil, clientFailure("only a client_id was sent, and the client is not registered for certificate authentication", "client_id", id)
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, clientFailure("no client certificate was presented in the TLS handshake", "client_id", id)
	}
	leaf := r.TLS.PeerCertificates[0]
	now := s.now()
	var reasons []string
	if c.allows(MethodSelfSignedTLSClientAuth) {
		switch {
		case !slices.ContainsFunc(c.selfSigned, func(der []byte) bool { return bytes.Equal(der, leaf.Raw) }):
			reasons = append(reasons, "the certificate is not one of the client's registered self-signed certificates")
		case now.Before(leaf.NotBefore) || now.After(leaf.NotAfter):
			reasons = append(reasons, "the registered self-signed certificate is outside its validity period")
		default:
			return &authenticated{client: c, method: MethodSelfSignedTLSClientAuth, cert: leaf}, nil
		}
	}
	if c.allows(MethodTLSClientAuth) {
		chain, why := s.verifyChain(r.TLS.PeerCertificates, now)
		if chain != nil {
			if why = c.matchCertificate(chain[0]); why == "" {
				return &authenticated{client: c, method: MethodTLSClientAuth, cert: chain[0]}, nil
			}
		}
		reasons = append(reasons, why)
	}
	return nil, clientFailure(strings.Join(reasons, "; "), "client_id", id,
		"subject", leaf.Subject.String(), "issuer", leaf.Issuer.String(), "fingerprint", auth.Fingerprint(leaf))
}

// verifyChain verifies the presented chain for client authentication
// against each trust set in turn. It returns the verified chain, or nil and
// every set's refusal.
func (s *Server) verifyChain(presented []*x509.Certificate, now time.Time) ([]*x509.Certificate, string) {
	var refusals []string
	for _, v := range s.trust {
		chain, err := v.Verify(presented, x509.ExtKeyUsageClientAuth, now)
		if err == nil && len(chain) > 0 {
			return chain, ""
		}
		if err == nil {
			err = fmt.Errorf("trust set %q returned no chain and no error", v.Name())
		}
		refusals = append(refusals, fmt.Sprintf("trust set %q: %v", v.Name(), err))
	}
	return nil, "the certificate did not verify: " + strings.Join(refusals, "; ")
}

// matchCertificate returns "" when leaf carries every registered
// tls_client_auth name, or why it does not.
func (c *client) matchCertificate(leaf *x509.Certificate) string {
	if c.subjectDN != "" {
		got, err := normalizeDN(leaf.Subject.String())
		if err != nil || got != c.subjectDN {
			return fmt.Sprintf("the certificate's subject DN %q is not the registered %q", leaf.Subject.String(), c.TLSSubjectDN)
		}
	}
	if c.dns != "" && !slices.ContainsFunc(leaf.DNSNames, func(d string) bool { return normalizeDNS(d) == c.dns }) {
		return fmt.Sprintf("the certificate has no DNS SAN %q (it has %q)", c.TLSSANDNS, leaf.DNSNames)
	}
	if c.TLSSANURI != "" && !slices.ContainsFunc(leaf.URIs, func(u *url.URL) bool { return u.String() == c.TLSSANURI }) {
		return fmt.Sprintf("the certificate has no URI SAN %q", c.TLSSANURI)
	}
	return ""
}

// replayCache remembers accepted assertion ids until their assertions
// expire. Entries come only from verified assertions, each at most
// MaxAssertionLifetime plus leeway, so its size is bounded by what
// authenticated clients send in that window.
type replayCache struct {
	mu   sync.Mutex
	seen map[string]time.Time
	// sweepAt is the size at which expired entries are next swept, so
	// sweeping costs amortised O(1) per insert.
	sweepAt int
}

// add records key until the given time and reports whether it was new (or
// its earlier use has expired).
func (c *replayCache) add(key string, until, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]time.Time{}
	}
	if exp, ok := c.seen[key]; ok && exp.After(now) {
		return false
	}
	if len(c.seen) >= c.sweepAt {
		for k, exp := range c.seen {
			if !exp.After(now) {
				delete(c.seen, k)
			}
		}
		c.sweepAt = max(2*len(c.seen), 64)
	}
	c.seen[key] = until
	return true
}

// logValue shortens an attacker-supplied value for a log attribute.
func logValue(s string) string {
	const limit = 128
	if len(s) > limit {
		return s[:limit] + "..."
	}
	return s
}
