package auth

import (
	"net/http"
	"strings"

	"github.com/portcullis/portcullis/internal/problem"
)

// anyOf succeeds when one member does.
type anyOf struct {
	name    string
	members []Authenticator
}

// allOf succeeds when every member does.
type allOf struct {
	name    string
	members []Authenticator
}

var (
	_ Authenticator      = (*anyOf)(nil)
	_ Authenticator      = (*allOf)(nil)
	_ CredentialStripper = (*anyOf)(nil)
	_ CredentialStripper = (*allOf)(nil)
)

func combinedName(kind string, list []Authenticator) string {
	names := make([]string, len(list))
	for i, a := range list {
		names[i] = a.Name()
	}
	return kind + "(" + strings.Join(names, ",") + ")"
}

// AnyOf returns an Authenticator that tries list in order and returns the
// first success; members after it are not evaluated, but those that are
// CredentialStrippers still have their credential removed from the request.
// When every member fails it returns the most useful failure: a server-side
// error (status 500 or more) first, then the first failure where a
// credential was presented (an untrusted certificate says more than a
// missing API key), then the first member's "missing" failure with a detail
// listing every credential the API accepts. The WWW-Authenticate challenges
// of all members are combined on the returned error. A list of one member
// returns that member; an empty list fails every request with
// gateway.internal (fails closed). list must not contain nil.
func AnyOf(list ...Authenticator) Authenticator {
	if len(list) == 1 {
		return list[0]
	}
	return &anyOf{name: combinedName("any_of", list), members: append([]Authenticator(nil), list...)}
}

// AllOf returns an Authenticator that requires every member of list to
// succeed, evaluated in order and stopping at the first failure, which it
// returns. The principals are merged: Methods concatenated, certificate
// fields taken from the member that verified a certificate, and the
// application taken from whichever members resolved one. Members that
// resolve different non-empty applications fail the request with
// auth.conflicting_applications, since the caller cannot be two
// applications at once. A list of one member returns that member; an empty
// list fails every request with gateway.internal (fails closed). list must
// not contain nil.
func AllOf(list ...Authenticator) Authenticator {
	if len(list) == 1 {
		return list[0]
	}
	return &allOf{name: combinedName("all_of", list), members: append([]Authenticator(nil), list...)}
}

func (a *anyOf) Name() string { return a.name }
func (a *allOf) Name() string { return a.name }

// StripCredentials strips the credentials of every member, so a nested
// combination skipped by an outer AnyOf leaves no key behind.
func (a *anyOf) StripCredentials(r *http.Request) { stripAll(a.members, r) }

// StripCredentials strips the credentials of every member.
func (a *allOf) StripCredentials(r *http.Request) { stripAll(a.members, r) }

func stripAll(members []Authenticator, r *http.Request) {
	for _, m := range members {
		if s, ok := m.(CredentialStripper); ok {
			s.StripCredentials(r)
		}
	}
}

func noMembers(name string) *problem.Error {
	return &problem.Error{
		Code:   problem.CodeInternal,
		Detail: "The gateway could not authenticate the request.",
		Log: []any{"auth", name, "reason", "no_authenticators",
			"explanation", "An any_of or all_of list is empty, so nothing can authenticate a request. Fix: list at least one authenticator."},
	}
}

// isMissing reports whether a failure means no credential of that kind was
// presented at all. By convention such codes end in "missing"
// (mtls.client_cert_missing, api_key.missing, and oauth2's token code must
// follow it).
func isMissing(e *problem.Error) bool {
	return strings.HasSuffix(e.Code, "missing")
}

// failureRank orders AnyOf failures by usefulness to the client.
func failureRank(e *problem.Error) int {
	switch {
	case e.HTTPStatus() >= 500:
		return 3
	case !isMissing(e):
		return 2
	default:
		return 1
	}
}

// Authenticate implements AnyOf; see AnyOf for the error selection.
func (a *anyOf) Authenticate(r *http.Request) (*Principal, error) {
	if len(a.members) == 0 {
		return nil, noMembers(a.name)
	}
	failures := make([]*problem.Error, 0, len(a.members))
	for i, m := range a.members {
		p, err := m.Authenticate(r)
		if err == nil && p != nil {
			stripAll(a.members[i+1:], r)
			return p, nil
		}
		if err == nil {
			err = errNilPrincipal(m)
		}
		failures = append(failures, asProblem(err))
	}
	best := failures[0]
	for _, f := range failures[1:] {
		if failureRank(f) > failureRank(best) {
			best = f
		}
	}
	out := *best
	out.Header = best.Header.Clone()
	if out.Header == nil {
		out.Header = http.Header{}
	}
	out.Header.Del("WWW-Authenticate")
	for _, f := range failures {
		for _, c := range f.Header.Values("WWW-Authenticate") {
			out.Header.Add("WWW-Authenticate", c)
		}
	}
	if len(out.Header) == 0 {
		out.Header = nil
	}
	if failureRank(best) == 1 {
		out.Detail = "This API requires a credential, and the request carried none: send " + a.accepted() + "."
	}
	out.Log = append(append([]any{}, best.Log...), "auth_combination", a.name, "all_failures", codes(failures))
	return nil, &out
}

// accepted lists what a client may send, in words.
func (a *anyOf) accepted() string {
	words := make([]string, len(a.members))
	for i, m := range a.members {
		words[i] = describeCredential(m)
	}
	return strings.Join(words, ", or ")
}

func describeCredential(m Authenticator) string {
	if d, ok := m.(interface{ credential() string }); ok {
		return d.credential()
	}
	return "a credential accepted by " + m.Name()
}

func (a *anyOf) credential() string { return a.accepted() }

func (a *allOf) credential() string {
	words := make([]string, len(a.members))
	for i, m := range a.members {
		words[i] = describeCredential(m)
	}
	return strings.Join(words, " and ")
}

func codes(list []*problem.Error) string {
	c := make([]string, len(list))
	for i, e := range list {
		c[i] = e.Code
	}
	return strings.Join(c, ",")
}

// Authenticate implements AllOf; see AllOf for how principals merge.
func (a *allOf) Authenticate(r *http.Request) (*Principal, error) {
	if len(a.members) == 0 {
		return nil, noMembers(a.name)
	}
	merged := &Principal{}
	appFrom := ""
	for _, m := range a.members {
		p, err := m.Authenticate(r)
		if err == nil && p == nil {
			err = errNilPrincipal(m)
		}
		if err != nil {
			pe := asProblem(err)
			out := *pe
			out.Log = append(append([]any{}, pe.Log...), "auth_combination", a.name)
			return nil, &out
		}
		if p.Application != "" {
			if merged.Application != "" && merged.Application != p.Application {
				return nil, &problem.Error{
					Code:   problem.CodeConflictingApplications,
					Detail: "The credentials presented belong to different applications.",
					Log: []any{"auth", a.name, "reason", "conflicting_applications",
						"application", merged.Application, "application_method", appFrom,
						"other_application", p.Application, "other_method", m.Name(),
						"subject", firstNonEmpty(merged.Subject, p.Subject), "fingerprint", firstNonEmpty(merged.Fingerprint, p.Fingerprint),
						"explanation", "Each credential is valid, but " + appFrom + " belongs to " + merged.Application + " and " + m.Name() + " to " + p.Application + ". Fix: give the client credentials of one application."},
				}
			}
			merged.Application, appFrom = p.Application, m.Name()
		}
		merged.Methods = append(merged.Methods, p.Methods...)
		if merged.Cert == nil && p.Cert != nil {
			merged.Cert, merged.Chain, merged.Fingerprint = p.Cert, p.Chain, p.Fingerprint
			merged.Subject, merged.Issuer, merged.TrustSet = p.Subject, p.Issuer, p.TrustSet
		}
		if merged.ClientID == "" && p.ClientID != "" {
			merged.ClientID, merged.Scopes, merged.TokenExpiry, merged.CertBound = p.ClientID, p.Scopes, p.TokenExpiry, p.CertBound
		}
		if merged.Subject == "" {
			merged.Subject = p.Subject
		}
	}
	return merged, nil
}

// errNilPrincipal reports a member that returned neither a principal nor an
// error; treating that as success would fail open.
func errNilPrincipal(m Authenticator) error {
	return &problem.Error{
		Code:   problem.CodeInternal,
		Detail: "The gateway could not authenticate the request.",
		Log: []any{"auth", m.Name(), "reason", "nil_principal",
			"explanation", "The authenticator returned no principal and no error; the request is refused. This is a gateway bug."},
	}
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
