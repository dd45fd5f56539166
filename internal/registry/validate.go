package registry

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Limits on names and free text.
const (
	maxNameLen        = 128
	maxDisplayNameLen = 200
)

var (
	// nameRe is the name rule of the config package, so a resource can be
	// moved between the YAML file and the admin API unchanged.
	nameRe  = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]*$`)
	hex64Re = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	hostRe  = regexp.MustCompile(`^(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	// scopeRe is RFC 6749 §3.3 scope-token: printable ASCII except space,
	// '"' and '\'.
	scopeRe = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+$`)
	// clientIDRe is RFC 6749 Appendix A.1 VSCHAR without spaces, so a
	// client id survives HTTP Basic authentication unescaped.
	clientIDRe = regexp.MustCompile(`^[\x21-\x7E]+$`)
)

// OAuth2 client authentication methods (the IANA token endpoint
// authentication method names).
const (
	methodSecretBasic    = "client_secret_basic"
	methodSecretPost     = "client_secret_post"
	methodPrivateKeyJWT  = "private_key_jwt"
	methodTLSClientAuth  = "tls_client_auth"
	methodSelfSignedAuth = "self_signed_tls_client_auth"
)

var authMethods = []string{methodSecretBasic, methodSecretPost, methodPrivateKeyJWT, methodTLSClientAuth, methodSelfSignedAuth}

// link is a reference from one field of an object to another resource.
type link struct {
	field string
	to    Key
}

// claim reserves value in namespace for one object within its tenant.
type claim struct {
	field     string
	namespace string
	value     string
}

// The claim namespaces.
const (
	claimFingerprint  = "fingerprint"
	claimAPIKeyHash   = "api_key_hash"
	claimClientID     = "oauth2_client_id"
	claimSubscription = "subscription"
	claimTenantHost   = "tenant_host"
	claimTenantPrefix = "tenant_path_prefix"
)

// links are what an object refers to and what it claims exclusively.
type links struct {
	refs   []link
	claims []claim
}

func tenantLink(tenant string) link {
	return link{field: "tenant", to: Key{Kind: KindTenant, Name: tenant}}
}

func (p *problems) name(field, value string) {
	switch {
	case value == "":
		p.add(field, "is required")
	case len(value) > maxNameLen:
		p.add(field, "is %d characters long; the limit is %d", len(value), maxNameLen)
	case !nameRe.MatchString(value):
		p.add(field, "%q may contain only letters, digits, '.', '_' and '-', and must start with a letter or digit", value)
	}
}

func (p *problems) scopes(field string, scopes []string) {
	seen := map[string]bool{}
	for i, s := range scopes {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case !scopeRe.MatchString(s):
			p.add(f, "%q is not an OAuth2 scope token (printable ASCII without spaces, '\"' or '\\')", s)
		case seen[s]:
			p.add(f, "scope %q appears twice", s)
		}
		seen[s] = true
	}
}

// sha256Hash checks a "sha256:<64 hex digits>" hash and returns it in lower
// case, the form claims compare.
func (p *problems) sha256Hash(field, h string) (string, bool) {
	rest, ok := strings.CutPrefix(h, "sha256:")
	if !ok || !hex64Re.MatchString(rest) {
		p.add(field, "must be \"sha256:\" followed by 64 hex digits (the SHA-256 of the secret); secrets are never stored in plain text")
		return "", false
	}
	return "sha256:" + strings.ToLower(rest), true
}

// Validate checks the tenant's name and display name.
func (t Tenant) Validate() error {
	p := problems{key: t.Key()}
	p.name("name", t.Name)
	if len(t.DisplayName) > maxDisplayNameLen {
		p.add("display_name", "is %d characters long; the limit is %d", len(t.DisplayName), maxDisplayNameLen)
	}
	seen := map[string]bool{}
	for i, h := range t.Hosts {
		f := fmt.Sprintf("hosts[%d]", i)
		switch {
		case !hostRe.MatchString(h):
			p.add(f, "%q is not a host name: write it lower-case without scheme or port (api.acme.example, *.acme.example)", h)
		case seen[h]:
			p.add(f, "host %q appears twice", h)
		}
		seen[h] = true
	}
	if pp := t.PathPrefix; pp != "" {
		clean := strings.TrimSuffix(pp, "/")
		if !strings.HasPrefix(pp, "/") || clean == "" || strings.Contains(pp, "//") || slices.Contains(strings.Split(clean, "/")[1:], ".") || slices.Contains(strings.Split(clean, "/")[1:], "..") {
			p.add("path_prefix", "%q is not a clean path prefix such as /t/%s", pp, t.Name)
		}
	}
	return p.err()
}

// links claims the tenant's hosts and path prefix: tenants have no tenant,
// so these claims are unique across all tenants.
func (t Tenant) links() links {
	var l links
	for i, h := range t.Hosts {
		l.claims = append(l.claims, claim{fmt.Sprintf("hosts[%d]", i), claimTenantHost, h})
	}
	if t.PathPrefix != "" {
		l.claims = append(l.claims, claim{"path_prefix", claimTenantPrefix, strings.TrimSuffix(t.PathPrefix, "/")})
	}
	return l
}

// Validate checks the API's names and that Spec, when set, is a JSON
// object.
func (a API) Validate() error {
	p := problems{key: a.Key()}
	p.name("tenant", a.Tenant)
	p.name("name", a.Name)
	if len(a.Spec) > 0 {
		if !json.Valid(a.Spec) {
			p.add("spec", "is not valid JSON")
		} else if t := bytes.TrimLeft(a.Spec, " \t\r\n"); t[0] != '{' {
			p.add("spec", "must be a JSON object")
		}
	}
	return p.err()
}

func (a API) links() links { return links{refs: []link{tenantLink(a.Tenant)}} }

// Validate checks the application's names and credentials: certificate
// references, API key hashes and the OAuth2 registration, including that
// each OAuth2 method has the credential it needs.
func (a Application) Validate() error {
	p := problems{key: a.Key()}
	p.name("tenant", a.Tenant)
	p.name("name", a.Name)
	var fingerprints, rules int
	seen := map[string]bool{}
	for i, c := range a.Certificates {
		f := fmt.Sprintf("certificates[%d]", i)
		ruleSet := c.SubjectDN != "" || c.CN != "" || c.DNS != "" || c.URI != ""
		switch {
		case c.Fingerprint != "" && (c.Issuer != "" || ruleSet):
			p.add(f, "set either fingerprint, or issuer with subject_dn, cn, dns or uri, not both")
		case c.Fingerprint != "":
			fp := normalizeFingerprint(c.Fingerprint)
			if !hex64Re.MatchString(fp) {
				p.add(f+".fingerprint", "must be the 64 hex digits of a SHA-256 fingerprint (colons allowed)")
			} else if seen[fp] {
				p.add(f+".fingerprint", "fingerprint appears twice")
			}
			seen[fp] = true
			fingerprints++
		case c.Issuer == "":
			p.add(f+".issuer", "is required unless fingerprint is set: a rule matches certificates of one issuing CA")
		case !ruleSet:
			p.add(f, "a rule needs at least one of subject_dn, cn, dns and uri besides issuer")
		default:
			rules++
		}
	}
	seenKey := map[string]bool{}
	for i, h := range a.APIKeyHashes {
		f := fmt.Sprintf("api_key_hashes[%d]", i)
		if norm, ok := p.sha256Hash(f, h); ok {
			if seenKey[norm] {
				p.add(f, "hash appears twice")
			}
			seenKey[norm] = true
		}
	}
	if o := a.OAuth2; o != nil {
		o.validate(&p, fingerprints, rules)
	}
	return p.err()
}

func (o *OAuth2Client) validate(p *problems, fingerprints, rules int) {
	switch {
	case o.ClientID == "":
		p.add("oauth2.client_id", "is required")
	case len(o.ClientID) > 255 || !clientIDRe.MatchString(o.ClientID):
		p.add("oauth2.client_id", "must be 1 to 255 printable ASCII characters without spaces")
	}
	if len(o.AuthMethods) == 0 {
		p.add("oauth2.auth_methods", "is required (valid: %s)", strings.Join(authMethods, ", "))
	}
	uses := map[string]bool{}
	for i, m := range o.AuthMethods {
		f := fmt.Sprintf("oauth2.auth_methods[%d]", i)
		switch {
		case !slices.Contains(authMethods, m):
			p.add(f, "unknown method %q (valid: %s)", m, strings.Join(authMethods, ", "))
		case uses[m]:
			p.add(f, "method %q appears twice", m)
		}
		uses[m] = true
	}
	seen := map[string]bool{}
	for i, h := range o.SecretHashes {
		f := fmt.Sprintf("oauth2.secret_hashes[%d]", i)
		if norm, ok := p.sha256Hash(f, h); ok {
			if seen[norm] {
				p.add(f, "hash appears twice")
			}
			seen[norm] = true
		}
	}
	secretMethod := uses[methodSecretBasic] || uses[methodSecretPost]
	switch {
	case secretMethod && len(o.SecretHashes) == 0:
		p.add("oauth2.secret_hashes", "client_secret_basic and client_secret_post need at least one secret hash")
	case !secretMethod && len(o.SecretHashes) > 0:
		p.add("oauth2.secret_hashes", "no method uses secrets: add client_secret_basic or client_secret_post to auth_methods, or remove the hashes")
	}
	if uses[methodPrivateKeyJWT] {
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal(o.JWKS, &set); err != nil || len(set.Keys) == 0 {
			p.add("oauth2.jwks", "private_key_jwt needs the client's public keys as a JWK Set: {\"keys\": [...]}")
		}
	}
	if uses[methodTLSClientAuth] && rules == 0 {
		p.add("oauth2.auth_methods", "tls_client_auth needs a certificate rule (issuer with subject_dn, cn, dns or uri) in certificates")
	}
	if uses[methodSelfSignedAuth] && fingerprints == 0 {
		p.add("oauth2.auth_methods", "self_signed_tls_client_auth needs a certificate fingerprint in certificates")
	}
	p.scopes("oauth2.scopes", o.Scopes)
}

// normalizeFingerprint drops colons and lowers the case, the form claims
// compare.
func normalizeFingerprint(s string) string {
	return strings.ToLower(strings.ReplaceAll(s, ":", ""))
}

func (a Application) links() links {
	l := links{refs: []link{tenantLink(a.Tenant)}}
	for i, c := range a.Certificates {
		if c.Fingerprint != "" {
			l.claims = append(l.claims, claim{fmt.Sprintf("certificates[%d].fingerprint", i), claimFingerprint, normalizeFingerprint(c.Fingerprint)})
		}
	}
	for i, h := range a.APIKeyHashes {
		l.claims = append(l.claims, claim{fmt.Sprintf("api_key_hashes[%d]", i), claimAPIKeyHash, strings.ToLower(h)})
	}
	if a.OAuth2 != nil {
		l.claims = append(l.claims, claim{"oauth2.client_id", claimClientID, a.OAuth2.ClientID})
	}
	return l
}

// Validate checks the plan's names, rate limit, quota and scopes.
func (p Plan) Validate() error {
	v := problems{key: p.Key()}
	v.name("tenant", p.Tenant)
	v.name("name", p.Name)
	if r := p.RateLimit; r != nil {
		if r.Rate < 1 {
			v.add("rate_limit.rate", "must be at least 1 (got %d)", r.Rate)
		}
		if d, err := time.ParseDuration(r.Period); err != nil || d <= 0 {
			v.add("rate_limit.period", "must be a positive duration such as \"1s\" or \"1m\" (got %q)", r.Period)
		}
		if r.Burst < 0 {
			v.add("rate_limit.burst", "must not be negative (0 means the rate)")
		}
	}
	if q := p.Quota; q != nil {
		if q.Limit < 1 {
			v.add("quota.limit", "must be at least 1 (got %d)", q.Limit)
		}
		if q.Window != QuotaDay && q.Window != QuotaMonth {
			v.add("quota.window", "unknown window %q (valid: day, month)", q.Window)
		}
	}
	v.scopes("scopes", p.Scopes)
	return v.err()
}

func (p Plan) links() links { return links{refs: []link{tenantLink(p.Tenant)}} }

// Validate checks the subscription's names and state.
func (s Subscription) Validate() error {
	p := problems{key: s.Key()}
	p.name("tenant", s.Tenant)
	p.name("name", s.Name)
	p.name("application", s.Application)
	p.name("api", s.API)
	p.name("plan", s.Plan)
	if s.State != StateActive && s.State != StateSuspended {
		p.add("state", "unknown state %q (valid: active, suspended)", s.State)
	}
	return p.err()
}

func (s Subscription) links() links {
	return links{
		refs: []link{
			tenantLink(s.Tenant),
			{field: "application", to: Key{Kind: KindApplication, Tenant: s.Tenant, Name: s.Application}},
			{field: "api", to: Key{Kind: KindAPI, Tenant: s.Tenant, Name: s.API}},
			{field: "plan", to: Key{Kind: KindPlan, Tenant: s.Tenant, Name: s.Plan}},
		},
		// Names cannot contain '/', so the pair is unambiguous.
		claims: []claim{{field: "api", namespace: claimSubscription, value: s.Application + "/" + s.API}},
	}
}

// Validate checks the certificate's names and that PEM holds only
// parseable certificates.
func (c Certificate) Validate() error {
	p := problems{key: c.Key()}
	p.name("tenant", c.Tenant)
	p.name("name", c.Name)
	rest := []byte(c.PEM)
	n := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		n++
		switch {
		case strings.Contains(block.Type, "PRIVATE KEY"):
			p.add("pem", "block %d is a %s: upload certificates only, never private keys", n, block.Type)
		case block.Type != "CERTIFICATE":
			p.add("pem", "block %d is a %q block; only CERTIFICATE blocks are accepted", n, block.Type)
		default:
			if _, err := x509.ParseCertificate(block.Bytes); err != nil {
				p.add("pem", "certificate %d does not parse: %v", n, err)
			}
		}
	}
	switch {
	case n == 0:
		p.add("pem", "holds no PEM block: expected one or more -----BEGIN CERTIFICATE----- blocks")
	case len(bytes.TrimSpace(rest)) > 0:
		p.add("pem", "has data after the last PEM block that is not PEM")
	}
	return p.err()
}

func (c Certificate) links() links { return links{refs: []link{tenantLink(c.Tenant)}} }

// Validate checks the trust set's names and its certificate list.
func (t TrustSet) Validate() error {
	p := problems{key: t.Key()}
	p.name("tenant", t.Tenant)
	p.name("name", t.Name)
	if len(t.CertificateNames) == 0 {
		p.add("certificates", "is required: name at least one certificate")
	}
	seen := map[string]bool{}
	for i, n := range t.CertificateNames {
		f := fmt.Sprintf("certificates[%d]", i)
		p.name(f, n)
		if seen[n] {
			p.add(f, "certificate %q appears twice", n)
		}
		seen[n] = true
	}
	return p.err()
}

func (t TrustSet) links() links {
	l := links{refs: []link{tenantLink(t.Tenant)}}
	for i, n := range t.CertificateNames {
		l.refs = append(l.refs, link{field: fmt.Sprintf("certificates[%d]", i), to: Key{Kind: KindCertificate, Tenant: t.Tenant, Name: n}})
	}
	return l
}

// DecodeObject decodes the JSON of one object of kind strictly: unknown
// fields and trailing data are errors (ErrInvalid). It does not validate
// the object; call its Validate method.
func DecodeObject(kind Kind, data []byte) (Object, error) {
	obj, err := decode(kind, data, true)
	if err != nil && kind.Valid() {
		return nil, invalidf("decoding %s: %w", kind, err)
	}
	return obj, err
}

// decodeStored decodes a row's body leniently, so a newer binary's extra
// fields do not make the row unreadable after a rollback.
func decodeStored(kind Kind, body []byte) (Object, error) {
	obj, err := decode(kind, body, false)
	if err != nil && kind.Valid() {
		return nil, fmt.Errorf("decoding stored %s: %w", kind, err)
	}
	return obj, err
}

func decode(kind Kind, data []byte, strict bool) (Object, error) {
	switch kind {
	case KindTenant:
		return decodeAs[Tenant](data, strict)
	case KindAPI:
		return decodeAs[API](data, strict)
	case KindApplication:
		return decodeAs[Application](data, strict)
	case KindPlan:
		return decodeAs[Plan](data, strict)
	case KindSubscription:
		return decodeAs[Subscription](data, strict)
	case KindCertificate:
		return decodeAs[Certificate](data, strict)
	case KindTrustSet:
		return decodeAs[TrustSet](data, strict)
	}
	return nil, checkKind(kind)
}

func decodeAs[T Object](data []byte, strict bool) (Object, error) {
	var v T
	dec := json.NewDecoder(bytes.NewReader(data))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if strict && dec.More() {
		return nil, errors.New("data after the object")
	}
	return v, nil
}
