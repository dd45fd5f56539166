package auth

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/trust"
)

// Verifier verifies a presented chain against one named set of trust
// anchors. *trust.Set implements it; the interface is owned here so the
// authenticator can be tested with any verifier.
type Verifier interface {
	// Name is the trust set's configured name, for logs.
	Name() string
	// Verify returns the verified chain (leaf first, anchor last) or an
	// error, normally a *trust.Error whose Reason says why. It must be safe
	// for concurrent use.
	Verify(chain []*x509.Certificate, usage x509.ExtKeyUsage, now time.Time) ([]*x509.Certificate, error)
}

// AllowRules restrict which verified certificates an API accepts. The
// empty value allows every certificate that verified. Otherwise every kind
// of rule that has at least one entry must match the leaf (AND across
// kinds), and within a kind any one entry is enough (OR within a kind). For
// example {CN: [a, b], OU: [ops]} accepts CN a or b, and only in OU ops.
type AllowRules struct {
	// SubjectDN entries match the leaf's whole subject DN, written as
	// pkix.Name.String / `openssl x509 -nameopt RFC2253` prints it ("CN=a,O=b")
	// or in OpenSSL's reversed default or slash form. Attribute types are
	// case-insensitive and spaces around separators are ignored; values
	// compare exactly.
	SubjectDN []string
	// CN entries match the subject common name exactly.
	CN []string
	// OU entries match any of the subject's organisational units exactly.
	OU []string
	// DNS entries match any DNS SAN, case-insensitively, without wildcards.
	DNS []string
	// URI entries match any URI SAN. "spiffe://trust.domain" (no path)
	// matches every SPIFFE ID in that trust domain and no other domain
	// (spiffe://example.org does not match spiffe://example.org.evil/x);
	// any other entry matches that URI exactly.
	URI []string
	// Fingerprints match the leaf's SHA-256 fingerprint, hex with colons and
	// case ignored.
	Fingerprints []string
}

// compiledAllow is AllowRules normalised once; a nil slice or map means the
// kind is not set.
type compiledAllow struct {
	subject      map[string]bool
	cn           []string
	ou           []string
	dns          []string
	uri          []uriRule
	fingerprints map[string]bool
}

func compileAllow(a AllowRules) (*compiledAllow, error) {
	c := &compiledAllow{}
	for _, s := range a.SubjectDN {
		keys, err := dnKeys(s)
		if err != nil {
			return nil, fmt.Errorf("allow subject_dn: %w", err)
		}
		if c.subject == nil {
			c.subject = map[string]bool{}
		}
		for _, k := range keys {
			c.subject[k] = true
		}
	}
	for kind, list := range map[string][]string{"cn": a.CN, "ou": a.OU, "dns": a.DNS} {
		if slices.Contains(list, "") {
			return nil, fmt.Errorf("%w: allow %s has an empty entry", ErrBadRule, kind)
		}
	}
	c.cn = slices.Clone(a.CN)
	c.ou = slices.Clone(a.OU)
	for _, d := range a.DNS {
		c.dns = append(c.dns, normalizeDNS(d))
	}
	for _, s := range a.URI {
		u, err := parseURIRule(s)
		if err != nil {
			return nil, fmt.Errorf("allow uri: %w", err)
		}
		c.uri = append(c.uri, u)
	}
	for _, f := range a.Fingerprints {
		fp, err := normalizeFingerprint(f)
		if err != nil {
			return nil, fmt.Errorf("allow fingerprints: %w", err)
		}
		if c.fingerprints == nil {
			c.fingerprints = map[string]bool{}
		}
		c.fingerprints[fp] = true
	}
	return c, nil
}

// check returns "" when leaf passes, or the name of the first rule kind it
// fails, for the log. subject is leaf.Subject.String(), computed once by
// the caller.
func (c *compiledAllow) check(leaf *x509.Certificate, fingerprint, subject string) string {
	if c.subject != nil && !c.subject[certDN(subject)] {
		return "subject_dn"
	}
	if c.cn != nil && !slices.Contains(c.cn, leaf.Subject.CommonName) {
		return "cn"
	}
	if c.ou != nil && !slices.ContainsFunc(leaf.Subject.OrganizationalUnit, func(ou string) bool { return slices.Contains(c.ou, ou) }) {
		return "ou"
	}
	if c.dns != nil && !slices.ContainsFunc(leaf.DNSNames, func(d string) bool { return slices.Contains(c.dns, normalizeDNS(d)) }) {
		return "dns"
	}
	if c.uri != nil && !slices.ContainsFunc(c.uri, func(r uriRule) bool {
		return slices.ContainsFunc(leaf.URIs, r.match)
	}) {
		return "uri"
	}
	if c.fingerprints != nil && !c.fingerprints[fingerprint] {
		return "fingerprints"
	}
	return ""
}

// MTLSOptions configure an MTLS authenticator.
type MTLSOptions struct {
	// Sets are the trust sets a client chain may verify against, tried in
	// order. At least one is required.
	Sets []Verifier
	// Allow restricts the verified certificates accepted; the zero value
	// accepts all of them.
	Allow AllowRules
	// RequireClientAuthEKU makes verification require the clientAuth
	// extended key usage (x509.ExtKeyUsageClientAuth); when false any usage
	// is accepted. The configuration's default is true; the zero value here
	// is false, so callers pass the configured value explicitly.
	RequireClientAuthEKU bool
	// Apps maps certificates to applications. Nil means no certificate is
	// registered.
	Apps *Applications
	// AllowAnonymous accepts a verified, allowed certificate that belongs to
	// no application, with an empty Principal.Application. When false such
	// a certificate is rejected with mtls.unknown_application.
	AllowAnonymous bool
	// Now returns the time certificates are checked at. Nil means
	// time.Now.
	Now func() time.Time
}

// MTLS authenticates a request by the client certificate presented in the
// TLS handshake. It is immutable and safe for concurrent use.
type MTLS struct {
	sets      []Verifier
	setNames  string
	allow     *compiledAllow
	usage     x509.ExtKeyUsage
	apps      *Applications
	anonymous bool
	now       func() time.Time
}

var (
	_ Authenticator = (*MTLS)(nil)
	_ Verifier      = (*trust.Set)(nil)
)

// NewMTLS builds the authenticator. It fails when no trust set is given or
// an allow rule is malformed, naming the rule.
func NewMTLS(o MTLSOptions) (*MTLS, error) {
	if len(o.Sets) == 0 {
		return nil, fmt.Errorf("mtls: %w: name at least one trust set", ErrNoTrustSets)
	}
	allow, err := compileAllow(o.Allow)
	if err != nil {
		return nil, fmt.Errorf("mtls: %w", err)
	}
	names := make([]string, len(o.Sets))
	for i, s := range o.Sets {
		names[i] = s.Name()
	}
	m := &MTLS{
		sets:      slices.Clone(o.Sets),
		setNames:  strings.Join(names, ", "),
		allow:     allow,
		usage:     x509.ExtKeyUsageAny,
		apps:      o.Apps,
		anonymous: o.AllowAnonymous,
		now:       o.Now,
	}
	if o.RequireClientAuthEKU {
		m.usage = x509.ExtKeyUsageClientAuth
	}
	if m.now == nil {
		m.now = time.Now
	}
	return m, nil
}

// Name returns "mtls".
func (m *MTLS) Name() string { return "mtls" }

// credential describes the credential for a combined "none presented"
// detail.
func (m *MTLS) credential() string { return "a client certificate" }

// reasonRank orders verification failures from least to most specific.
// When several trust sets refuse a chain, the most specific reason is
// reported: a revoked certificate is revoked whichever set was asked, and an
// "untrusted" from one set says less than an expiry found by another.
// revocation_unavailable ranks just below revoked because it is only
// reached by a chain that otherwise verified.
var reasonRank = map[trust.Reason]int{
	trust.ReasonUntrusted:             1,
	trust.ReasonWrongUsage:            2,
	trust.ReasonExpired:               3,
	trust.ReasonNotYetValid:           3,
	trust.ReasonRevocationUnavailable: 4,
	trust.ReasonRevoked:               5,
}

// Authenticate verifies r.TLS.PeerCertificates against each trust set in
// turn and succeeds on the first that verifies; then it applies the allow
// rules and resolves the application. It fails closed with:
// mtls.client_cert_missing when no certificate was presented (or the
// request is not over TLS); the most specific trust failure (revoked,
// revocation_unavailable, expired / not_yet_valid, wrong_usage, untrusted)
// when no set verifies; mtls.client_cert_not_allowed (403) when an allow
// rule fails; mtls.unknown_application when no application owns the
// certificate and anonymous holders are not allowed. No WWW-Authenticate
// header is set: no HTTP authentication scheme exists for TLS client
// certificates, and inventing one would mislead clients.
func (m *MTLS) Authenticate(r *http.Request) (*Principal, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, &problem.Error{
			Code:   problem.CodeClientCertMissing,
			Detail: "This API requires a client certificate, and the connection presented none.",
			Log: []any{
				"auth", "mtls", "reason", "missing", "trust_sets", m.setNames,
				"explanation", "The TLS connection carried no client certificate. Fix: configure the client with a certificate and key issued by a CA in the trust sets (curl --cert/--key); if it has one, check it is not sent only on a different host name.",
			},
		}
	}
	presented := r.TLS.PeerCertificates
	leaf := presented[0]
	fp := Fingerprint(leaf)
	now := m.now()

	var (
		verified []*x509.Certificate
		set      Verifier
		worst    *trust.Error
		worstErr error
	)
	for _, s := range m.sets {
		chain, err := s.Verify(presented, m.usage, now)
		if err == nil && len(chain) > 0 {
			verified, set = chain, s
			break
		}
		if err == nil {
			err = fmt.Errorf("trust set %q returned no chain and no error", s.Name())
		}
		var te *trust.Error
		if !errors.As(err, &te) {
			te = &trust.Error{Reason: trust.ReasonUntrusted, Set: s.Name(), Detail: err.Error(), Err: err}
		}
		if worst == nil || reasonRank[te.Reason] > reasonRank[worst.Reason] {
			worst, worstErr = te, err
		}
	}
	if verified == nil {
		return nil, m.trustFailure(leaf, fp, worst, worstErr)
	}
	leaf = verified[0]
	p := &Principal{
		Methods:     []string{"mtls"},
		Cert:        leaf,
		Chain:       verified,
		Fingerprint: fp,
		Subject:     leaf.Subject.String(),
		Issuer:      leaf.Issuer.String(),
		TrustSet:    set.Name(),
	}
	if kind := m.allow.check(leaf, fp, p.Subject); kind != "" {
		return nil, &problem.Error{
			Code:   problem.CodeClientCertNotAllowed,
			Detail: "The client certificate is valid but not permitted to use this API.",
			Log: m.certLog(p, "not_allowed", "failed_rule", kind,
				"explanation", "The certificate verified but does not match the API's mtls.allow "+kind+" rule (every rule kind that is set must match). Fix: use a permitted certificate, or add its "+kind+" to mtls.allow."),
		}
	}
	app, ok := m.apps.forLeaf(leaf, fp, p.Subject, p.Issuer)
	if !ok && !m.anonymous {
		return nil, &problem.Error{
			Code:   problem.CodeUnknownApplication,
			Detail: "The client certificate is valid but is not registered to any application.",
			Log: m.certLog(p, "unknown_application",
				"explanation", "The certificate verified but no application registers its fingerprint or an issuer+subject rule matching it (or rules of two applications match). Fix: add its fingerprint or a rule under applications[].certificates, or set mtls.allow_anonymous."),
		}
	}
	p.Application = app
	return p, nil
}

// certLog builds the operator's log attributes for a certificate that
// verified.
func (m *MTLS) certLog(p *Principal, reason string, more ...any) []any {
	return append([]any{
		"auth", "mtls", "reason", reason, "subject", p.Subject, "issuer", p.Issuer,
		"fingerprint", p.Fingerprint, "trust_set", p.TrustSet,
	}, more...)
}

// trustFailure maps the most specific trust failure to a problem code, a
// client-safe sentence and a plain explanation with a fix.
func (m *MTLS) trustFailure(leaf *x509.Certificate, fp string, te *trust.Error, cause error) *problem.Error {
	var code, detail, explain string
	switch te.Reason {
	case trust.ReasonRevoked:
		code, detail = problem.CodeClientCertRevoked, "The client certificate has been revoked."
		explain = "A CRL or OCSP responder lists the certificate, or a CA above it, as revoked. Fix: issue the client a new certificate."
	case trust.ReasonRevocationUnavailable:
		code, detail = problem.CodeRevocationUnavailable, "The revocation status of the client certificate could not be checked."
		explain = "The trust set fails closed and holds no fresh CRL or OCSP answer for this chain. Fix: make the CRL or OCSP source reachable and current; fail_open accepts the risk instead."
	case trust.ReasonExpired:
		code, detail = problem.CodeClientCertExpired, "The client certificate, or a certificate authority in its chain, has expired."
		explain = "The certificate or a CA in its chain is past its NotAfter date. Fix: renew it; if it looks current, check the gateway's clock."
	case trust.ReasonNotYetValid:
		code, detail = problem.CodeClientCertNotYetValid, "The client certificate is not valid yet."
		explain = "The certificate or a CA in its chain is before its NotBefore date. Fix: check the clocks of the issuing CA and the gateway, or wait."
	case trust.ReasonWrongUsage:
		code, detail = problem.CodeClientCertWrongUsage, "The client certificate is not valid for client authentication."
		explain = "The certificate's extended key usage does not include clientAuth. Fix: reissue it with clientAuth (portcullis pki issue --client), or set mtls.require_client_auth_eku: false."
	default:
		code, detail = problem.CodeClientCertUntrusted, "The client certificate was not issued by a certificate authority this API trusts."
		explain = "No chain leads from the certificate to an anchor of the trust sets (" + m.setNames + "). Fix: issue the client a certificate from a trusted CA, make the client send its intermediate CAs, or add its CA to a trust set."
	}
	return &problem.Error{
		Code:   code,
		Detail: detail,
		Cause:  cause,
		Log: []any{
			"auth", "mtls", "reason", string(te.Reason), "subject", leaf.Subject.String(), "issuer", leaf.Issuer.String(),
			"fingerprint", fp, "trust_set", te.Set, "trust_sets", m.setNames, "trust_detail", te.Detail,
			"explanation", explain,
		},
	}
}
