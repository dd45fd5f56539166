package auth

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"time"

	"github.com/portcullis/portcullis/internal/problem"
)

// Principal is the caller an Authenticator proved: the application it
// belongs to and, when a client certificate was used, the verified
// certificate. A Principal is not modified after it is returned.
type Principal struct {
	// Application is the resolved application id. It is empty only for a
	// certificate holder the API accepts anonymously (MTLSOptions.AllowAnonymous).
	Application string
	// Methods lists the authenticators that succeeded, in evaluation order,
	// e.g. ["mtls"] or ["mtls", "api_key"].
	Methods []string
	// Cert is the verified leaf certificate, nil unless mtls succeeded.
	Cert *x509.Certificate
	// Chain is the verified chain, leaf first and trust anchor last, nil
	// unless mtls succeeded.
	Chain []*x509.Certificate
	// Fingerprint is the lower-case hex SHA-256 of the leaf's DER, without
	// colons, empty unless mtls succeeded.
	Fingerprint string
	// Subject and Issuer are the leaf's distinguished names as
	// pkix.Name.String writes them (RFC 2253 order) when mtls succeeded.
	// When only oauth2 succeeded, Subject is the token's "sub" claim and
	// Issuer is empty.
	Subject, Issuer string
	// TrustSet names the trust set that verified the chain, empty unless
	// mtls succeeded.
	TrustSet string
	// ClientID is the OAuth2 client the access token was issued to
	// ("client_id", else "azp", else "sub"), empty unless oauth2 succeeded.
	ClientID string
	// Scopes are the access token's scopes in the order the token lists
	// them, nil unless oauth2 succeeded.
	Scopes []string
	// TokenExpiry is the access token's "exp", zero unless oauth2
	// succeeded.
	TokenExpiry time.Time
	// CertBound reports that the access token was bound to the
	// connection's client certificate (RFC 8705 cnf.x5t#S256) and the
	// binding was checked.
	CertBound bool
}

// Authenticator proves who sent a request. Implementations are immutable
// after construction and safe for concurrent use.
type Authenticator interface {
	// Name is the configuration name: "mtls", "api_key", "oauth2", or any_of(...) /
	// all_of(...) for combinations.
	Name() string
	// Authenticate returns the caller, or a *problem.Error when the request
	// does not prove one (it fails closed: no principal without proof). The
	// error's Status comes from the catalogue, Header carries
	// WWW-Authenticate where a standard challenge exists, Detail is safe for
	// clients and Log holds the operator's diagnosis. Authenticate may
	// remove the credential it consumed from r so the upstream never sees
	// it.
	Authenticate(r *http.Request) (*Principal, error)
}

// CredentialStripper is implemented by authenticators whose credential must
// never reach the upstream (API keys). AnyOf calls StripCredentials on the
// members it did not need to evaluate, so a key sent beside a certificate is
// removed even when the certificate alone authenticated the request.
type CredentialStripper interface {
	// StripCredentials removes the authenticator's credential from r. It
	// never fails.
	StripCredentials(r *http.Request)
}

type principalKey struct{}

// WithPrincipal returns a copy of ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the Principal stored by WithPrincipal, or nil when
// the request was not authenticated.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// asProblem turns any error from an Authenticator into a *problem.Error.
// Errors of another type are a programming error in a member, so they
// become gateway.internal rather than being mistaken for a credential
// failure.
func asProblem(err error) *problem.Error {
	var pe *problem.Error
	if errors.As(err, &pe) {
		return pe
	}
	return &problem.Error{
		Code:   problem.CodeInternal,
		Detail: "The gateway could not authenticate the request.",
		Cause:  err,
	}
}
