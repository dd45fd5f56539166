package auth

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Fingerprint returns the lower-case hex SHA-256 of cert's DER encoding,
// without colons: the form Principal.Fingerprint and the logs use.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// normalizeFingerprint accepts a SHA-256 fingerprint written in hex with or
// without colons (as openssl prints it), in any case, and returns the
// lower-case form without colons. It fails unless exactly 32 bytes remain.
func normalizeFingerprint(s string) (string, error) {
	f := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	if len(f) != 2*sha256.Size {
		return "", fmt.Errorf("%w %q: want 64 hex digits, got %d", ErrBadFingerprint, s, len(f))
	}
	if _, err := hex.DecodeString(f); err != nil {
		return "", fmt.Errorf("%w %q: %v", ErrBadFingerprint, s, err)
	}
	return f, nil
}

// dnComponents splits a distinguished name written as text into its
// relative distinguished names, with attribute types upper-cased and the
// unescaped spaces around ',', '+' and '=' removed. It accepts RFC 2253 /
// RFC 4514 text ("CN=a,O=b", what pkix.Name.String and `openssl x509
// -nameopt RFC2253` print), OpenSSL's default ("O = b, CN = a") and the
// slash form ("/O=b/CN=a"); the caller decides about order.
func dnComponents(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%w: empty distinguished name", ErrBadRule)
	}
	sep := byte(',')
	if s[0] == '/' {
		sep = '/'
		s = s[1:]
	}
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] == '\\' {
			i++
			if i == len(s) {
				return nil, fmt.Errorf("%w: distinguished name %q ends in a lone backslash", ErrBadRule, s)
			}
			continue
		}
		if i < len(s) && s[i] != sep {
			continue
		}
		rdn, err := normalizeRDN(s[start:i])
		if err != nil {
			return nil, fmt.Errorf("%w: distinguished name %q: %v", ErrBadRule, s, err)
		}
		out = append(out, rdn)
		start = i + 1
	}
	return out, nil
}

// normalizeRDN normalises one relative distinguished name, which may be
// multi-valued ("CN=a+OU=b"). The values of a multi-valued RDN are a SET,
// unordered in meaning and sorted by DER, so they are sorted here too.
func normalizeRDN(s string) (string, error) {
	var parts []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] == '\\' {
			i++
			continue
		}
		if i < len(s) && s[i] != '+' {
			continue
		}
		atv := s[start:i]
		eq := strings.IndexByte(atv, '=')
		if eq <= 0 {
			return "", fmt.Errorf("%q is not TYPE=value", strings.TrimSpace(atv))
		}
		parts = append(parts, strings.ToUpper(strings.TrimSpace(atv[:eq]))+"="+trimUnescapedSpace(atv[eq+1:]))
		start = i + 1
	}
	if len(parts) == 1 {
		return parts[0], nil
	}
	slices.Sort(parts)
	return strings.Join(parts, "+"), nil
}

// trimUnescapedSpace removes leading spaces and trailing spaces that are not
// escaped with a backslash (RFC 4514 writes a significant trailing space as
// "\ ").
func trimUnescapedSpace(s string) string {
	s = strings.TrimLeft(s, " ")
	for strings.HasSuffix(s, " ") {
		bs := 0
		for j := len(s) - 2; j >= 0 && s[j] == '\\'; j-- {
			bs++
		}
		if bs%2 == 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}

// dnKeys returns the normalised forms under which a configured DN matches:
// as written and reversed. pkix.Name.String and RFC 2253 list the most
// specific RDN first while OpenSSL's default and slash forms list it last;
// accepting both orders lets an operator paste either without conflating
// two different names (only an exact reversal matches).
func dnKeys(s string) ([]string, error) {
	c, err := dnComponents(s)
	if err != nil {
		return nil, err
	}
	fwd := strings.Join(c, ",")
	rev := make([]string, len(c))
	for i := range c {
		rev[len(c)-1-i] = c[i]
	}
	r := strings.Join(rev, ",")
	if r == fwd {
		return []string{fwd}, nil
	}
	return []string{fwd, r}, nil
}

// certDN returns the normalised key of a certificate's name as
// pkix.Name.String writes it. Go writes no optional spaces, so this is the
// canonical form dnKeys produces for the RFC 2253 order.
func certDN(s string) string {
	c, err := dnComponents(s)
	if err != nil {
		// pkix.Name.String never yields an unparsable name; an empty key
		// matches no configured DN, which fails closed.
		return ""
	}
	return strings.Join(c, ",")
}

// uriRule is a parsed URI allow entry: an exact URI, or a SPIFFE trust
// domain that matches every SPIFFE ID inside it.
type uriRule struct {
	exact       string
	trustDomain string
}

// parseURIRule reads an allow entry. "spiffe://example.org" (with or without
// a trailing slash) names a trust domain; anything else is an exact URI,
// compared after the same parsing crypto/x509 applies to URI SANs.
func parseURIRule(s string) (uriRule, error) {
	u, err := url.Parse(s)
	if err != nil {
		return uriRule{}, fmt.Errorf("%w: uri %q: %v", ErrBadRule, s, err)
	}
	if u.Scheme == "" {
		return uriRule{}, fmt.Errorf("%w: uri %q has no scheme (want e.g. spiffe://example.org or spiffe://example.org/workload)", ErrBadRule, s)
	}
	if strings.EqualFold(u.Scheme, "spiffe") {
		if u.Host == "" || u.User != nil || u.Port() != "" || u.RawQuery != "" || u.Fragment != "" {
			return uriRule{}, fmt.Errorf("%w: SPIFFE ID %q must be spiffe://trust-domain[/path] without user, port, query or fragment", ErrBadRule, s)
		}
		if u.Path == "" || u.Path == "/" {
			return uriRule{trustDomain: strings.ToLower(u.Host)}, nil
		}
	}
	return uriRule{exact: u.String()}, nil
}

// match reports whether u, a URI SAN, matches the rule. A trust-domain rule
// requires the spiffe scheme, a host equal to the trust domain (so
// spiffe://example.org.evil is outside spiffe://example.org), no user info
// or port (which would move the host: spiffe://example.org@evil), and a
// workload path.
func (r uriRule) match(u *url.URL) bool {
	if r.trustDomain == "" {
		return u.String() == r.exact
	}
	return u.Scheme == "spiffe" && u.Host == r.trustDomain && u.User == nil &&
		u.Path != "" && u.Path != "/" && u.RawQuery == "" && u.Fragment == ""
}

// normalizeDNS lower-cases a DNS name and drops a trailing dot, since DNS
// names compare case-insensitively and "a.example." is "a.example".
func normalizeDNS(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}
