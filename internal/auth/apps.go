package auth

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Application is an API consumer and the client certificates registered to
// it.
type Application struct {
	// ID identifies the application in principals, limits and logs. It must
	// be non-empty and unique.
	ID string
	// Fingerprints register certificates by SHA-256 fingerprint (hex, colons
	// and case ignored).
	Fingerprints []string
	// Rules register certificates by issuer plus subject or SAN.
	Rules []CertRule
}

// CertRule registers every certificate from one issuing CA whose names
// match. Issuer is required, with at least one of SubjectDN, CN, DNS and URI;
// every field that is set must match (AND).
type CertRule struct {
	// Issuer is the leaf's issuer DN (the CA that signed it), as
	// pkix.Name.String or `openssl x509 -issuer -nameopt RFC2253` prints it,
	// e.g. "CN=Partners CA,O=Example". OpenSSL's default and slash forms
	// (most general RDN first) are accepted too. Matching by DN is safe only
	// because the chain was verified first: the trust set decides which CAs
	// may carry that name.
	Issuer string
	// SubjectDN is the leaf's full subject DN, written like Issuer.
	SubjectDN string
	// CN is the leaf's subject common name, compared exactly.
	CN string
	// DNS is a DNS SAN the leaf must carry (case-insensitive, no
	// wildcards).
	DNS string
	// URI is a URI SAN the leaf must carry, compared exactly (a SPIFFE ID,
	// for example).
	URI string
}

// compiledRule is a CertRule with its names normalised once.
type compiledRule struct {
	app     string
	subject []string // dnKeys of SubjectDN, nil when unset
	cn      string
	dns     string
	uri     string // url.URL.String form, "" when unset
	source  CertRule
}

// Applications maps verified client certificates to application ids. It is
// built once per configuration and is safe for concurrent use.
type Applications struct {
	byFingerprint map[string]string
	byIssuer      map[string][]*compiledRule
}

// NewApplications indexes apps: fingerprints in a map for O(1) lookup,
// rules grouped by issuer. It fails when an id is empty or repeated, a
// fingerprint or rule is malformed, or two applications register the same
// fingerprint or an identical rule (the certificate would be ambiguous).
func NewApplications(apps []Application) (*Applications, error) {
	a := &Applications{byFingerprint: map[string]string{}, byIssuer: map[string][]*compiledRule{}}
	ids := map[string]bool{}
	seenRule := map[string]string{}
	for i, app := range apps {
		if app.ID == "" {
			return nil, fmt.Errorf("%w: application %d has no id", ErrBadApplication, i)
		}
		if ids[app.ID] {
			return nil, fmt.Errorf("%w: application id %q appears twice", ErrBadApplication, app.ID)
		}
		ids[app.ID] = true
		for _, f := range app.Fingerprints {
			fp, err := normalizeFingerprint(f)
			if err != nil {
				return nil, fmt.Errorf("application %q: %w", app.ID, err)
			}
			if other, ok := a.byFingerprint[fp]; ok && other != app.ID {
				return nil, fmt.Errorf("%w: fingerprint %s is registered to %q and %q", ErrAmbiguousCertificate, fp, other, app.ID)
			}
			a.byFingerprint[fp] = app.ID
		}
		for j, r := range app.Rules {
			cr, issuerKeys, err := compileRule(app.ID, r)
			if err != nil {
				return nil, fmt.Errorf("application %q certificate rule %d: %w", app.ID, j, err)
			}
			sig := issuerKeys[0] + "\x00" + strings.Join(cr.subject, "|") + "\x00" + cr.cn + "\x00" + cr.dns + "\x00" + cr.uri
			if other, ok := seenRule[sig]; ok && other != app.ID {
				return nil, fmt.Errorf("%w: the rule %+v is registered to %q and %q", ErrAmbiguousCertificate, r, other, app.ID)
			}
			seenRule[sig] = app.ID
			for _, k := range issuerKeys {
				a.byIssuer[k] = append(a.byIssuer[k], cr)
			}
		}
	}
	return a, nil
}

func compileRule(app string, r CertRule) (*compiledRule, []string, error) {
	if strings.TrimSpace(r.Issuer) == "" {
		return nil, nil, fmt.Errorf("%w: issuer is required", ErrBadRule)
	}
	if r.SubjectDN == "" && r.CN == "" && r.DNS == "" && r.URI == "" {
		return nil, nil, fmt.Errorf("%w: issuer %q needs at least one of subject_dn, cn, dns, uri (otherwise every certificate of that CA would belong to one application)", ErrBadRule, r.Issuer)
	}
	issuerKeys, err := dnKeys(r.Issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("issuer: %w", err)
	}
	cr := &compiledRule{app: app, cn: r.CN, source: r}
	if r.SubjectDN != "" {
		if cr.subject, err = dnKeys(r.SubjectDN); err != nil {
			return nil, nil, fmt.Errorf("subject_dn: %w", err)
		}
	}
	if r.DNS != "" {
		cr.dns = normalizeDNS(r.DNS)
	}
	if r.URI != "" {
		u, err := parseURIRule(r.URI)
		if err != nil {
			return nil, nil, err
		}
		if u.exact == "" {
			return nil, nil, fmt.Errorf("%w: uri %q names a whole SPIFFE trust domain; an application rule needs one SPIFFE ID", ErrBadRule, r.URI)
		}
		cr.uri = u.exact
	}
	return cr, issuerKeys, nil
}

// matches reports whether every field the rule sets matches leaf; the
// issuer was matched by the index.
func (r *compiledRule) matches(leaf *x509.Certificate, subject string) bool {
	if r.subject != nil && !slices.Contains(r.subject, subject) {
		return false
	}
	if r.cn != "" && leaf.Subject.CommonName != r.cn {
		return false
	}
	if r.dns != "" && !slices.ContainsFunc(leaf.DNSNames, func(d string) bool { return normalizeDNS(d) == r.dns }) {
		return false
	}
	if r.uri != "" && !slices.ContainsFunc(leaf.URIs, func(u *url.URL) bool { return u.String() == r.uri }) {
		return false
	}
	return true
}

// ForCert returns the application a verified chain (leaf first) belongs to.
// A registered fingerprint wins; otherwise the rules for the leaf's issuer
// are tried. It reports false when nothing matches, when rules of two
// different applications match (ambiguous, so it fails closed), or when a
// is nil or chain is empty. The chain must already be verified: ForCert
// trusts the names in it.
func (a *Applications) ForCert(chain []*x509.Certificate) (string, bool) {
	if len(chain) == 0 {
		return "", false
	}
	return a.forLeaf(chain[0], Fingerprint(chain[0]), chain[0].Subject.String(), chain[0].Issuer.String())
}

// forLeaf is ForCert with the fingerprint and the names (as
// pkix.Name.String writes them) already computed by the caller.
func (a *Applications) forLeaf(leaf *x509.Certificate, fingerprint, subjectDN, issuerDN string) (string, bool) {
	if a == nil {
		return "", false
	}
	if app, ok := a.byFingerprint[fingerprint]; ok {
		return app, true
	}
	rules := a.byIssuer[certDN(issuerDN)]
	if len(rules) == 0 {
		return "", false
	}
	subject := certDN(subjectDN)
	found := ""
	for _, r := range rules {
		if !r.matches(leaf, subject) {
			continue
		}
		if found != "" && found != r.app {
			return "", false
		}
		found = r.app
	}
	return found, found != ""
}
