package admin

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/portcullis/portcullis/internal/problem"
)

// How a principal authenticated, as whoami and the log say it.
const (
	viaClientCertificate = "client_certificate"
	viaBearerToken       = "bearer_token"
)

// authenticate finds the principal of r and records it in ex. An
// Authorization header, when present, decides: it must carry a known bearer
// token, whatever certificate the connection has, so a mistyped token is
// reported instead of being masked by a certificate. Otherwise a client
// certificate must verify and match a rule. It fails closed with 401.
func (s *Server) authenticate(r *http.Request, ex *exchange) *problem.Error {
	if values := r.Header.Values("Authorization"); len(values) > 0 {
		p, err := s.bearer(values)
		if err != nil {
			return unauthenticated("The bearer token is not a valid admin token.", err, `, error="invalid_token"`)
		}
		ex.principal, ex.via = p, viaBearerToken
		return nil
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		p, err := s.clientCert(r.TLS.PeerCertificates)
		if err != nil {
			return unauthenticated("The client certificate is not an admin certificate.", err, "")
		}
		ex.principal, ex.via = p, viaClientCertificate
		return nil
	}
	return unauthenticated("Admin credentials are required: present an admin client certificate or send Authorization: Bearer <token>.",
		errors.New("no client certificate and no Authorization header"), "")
}

// unauthenticated is a 401 whose WWW-Authenticate names the realm, with
// extra RFC 6750 attributes.
func unauthenticated(detail string, cause error, attrs string) *problem.Error {
	pe := problem.Wrap(problem.CodeAdminUnauthenticated, detail, cause)
	pe.Header = http.Header{"Www-Authenticate": {realm + attrs}}
	return pe
}

// bearer matches the token of an Authorization header against every
// configured hash in constant time. The errors never contain the token.
func (s *Server) bearer(values []string) (Principal, error) {
	if len(values) > 1 {
		return Principal{}, errors.New("more than one Authorization header")
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return Principal{}, errors.New("the Authorization header is not \"Bearer <token>\"")
	}
	sum := sha256.Sum256([]byte(token))
	// Every hash is compared, so the time taken does not tell which one
	// matched.
	match := -1
	for i, t := range s.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.sum) == 1 && match < 0 {
			match = i
		}
	}
	if match < 0 {
		return Principal{}, errors.New("the bearer token matches no admin token hash")
	}
	return s.tokens[match].principal, nil
}

// clientCert returns the principal of the first rule that matches the leaf
// and whose verifier accepts the chain for client authentication.
func (s *Server) clientCert(chain []*x509.Certificate) (Principal, error) {
	leaf := chain[0]
	fp := sha256.Sum256(leaf.Raw)
	var verifyErr error
	for _, rule := range s.certs {
		if rule.cn != "" && rule.cn != leaf.Subject.CommonName {
			continue
		}
		if rule.fingerprint != nil && !bytes.Equal(rule.fingerprint, fp[:]) {
			continue
		}
		if _, err := rule.verifier.Verify(chain, x509.ExtKeyUsageClientAuth, s.now()); err != nil {
			if verifyErr == nil {
				verifyErr = err
			}
			continue
		}
		p := rule.principal
		if p.Name == "" {
			p.Name = leaf.Subject.String()
		}
		return p, nil
	}
	if verifyErr != nil {
		return Principal{}, fmt.Errorf("client certificate %q: %w", leaf.Subject, verifyErr)
	}
	return Principal{}, fmt.Errorf("client certificate %q (sha256 %x) matches no admin rule", leaf.Subject, fp)
}

// forbidden is the 403 of a principal acting outside its role.
func forbidden(p Principal, detail string) *problem.Error {
	return problem.Wrap(problem.CodeAdminForbidden, detail,
		fmt.Errorf("principal %q (role %s, tenant %q) refused", p.Name, p.Role, p.Tenant))
}

// allowTenant lets an admin into any tenant and a tenant-admin into its own.
func allowTenant(p Principal, tenant string) *problem.Error {
	if p.Role == RoleAdmin || p.Tenant == tenant {
		return nil
	}
	return forbidden(p, fmt.Sprintf("A tenant-admin of %q may not act in tenant %q.", p.Tenant, tenant))
}

// allowTenantless lets only an admin act on resources outside any tenant.
func allowTenantless(p Principal) *problem.Error {
	if p.Role == RoleAdmin {
		return nil
	}
	return forbidden(p, "Tenants themselves are administered by the admin role only.")
}
