package upstream

import "errors"

// Errors New returns for options it cannot use; each is wrapped with the
// offending value.
var (
	// ErrNoTargets means Options.Targets is empty.
	ErrNoTargets = errors.New("no upstream targets")
	// ErrBadTarget means a target URL is not an absolute http:// or
	// https:// URL with a host and without user info, query or fragment.
	ErrBadTarget = errors.New("invalid upstream target")
	// ErrBadTLSOption means a TLS option has a value outside its domain.
	ErrBadTLSOption = errors.New("invalid upstream TLS option")
)
