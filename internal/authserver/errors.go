package authserver

import "errors"

// Errors returned by New, UpdateClients and Keyfunc. They are wrapped with
// the offending value.
var (
	// ErrBadOptions means an Options field is missing or malformed.
	ErrBadOptions = errors.New("invalid authorization server options")
	// ErrBadClient means a client registration is malformed, so the client
	// could never authenticate (or could authenticate too easily).
	ErrBadClient = errors.New("invalid client registration")
	// ErrBadKeyFile means a file in KeyDir is not a usable signing key.
	ErrBadKeyFile = errors.New("invalid signing key file")
	// ErrUnknownKey means a token names a key this server never had or has
	// retired, or a key that signs with another algorithm.
	ErrUnknownKey = errors.New("unknown signing key")
)

// RFC 6749 §5.2, RFC 7009 §2.2.1 and RFC 8707 §2 error codes.
const (
	errInvalidRequest       = "invalid_request"
	errInvalidClient        = "invalid_client"
	errUnsupportedGrantType = "unsupported_grant_type"
	errInvalidScope         = "invalid_scope"
	errInvalidTarget        = "invalid_target"
	errServerError          = "server_error"
)

// oauthError is a refused request: what the client is told (status, code,
// description) and what only the operator's log sees (reason and attrs).
type oauthError struct {
	status int
	// code is an RFC 6749 error code.
	code string
	// description is a sentence safe to show any client. RFC 6749 §5.2
	// limits it to printable ASCII without '"' and '\'.
	description string
	// reason is the operator's diagnosis; it never holds a secret.
	reason string
	// attrs are extra alternating keys and values for the log line.
	attrs []any
}

func newError(status int, code, description, reason string, attrs ...any) *oauthError {
	return &oauthError{status: status, code: code, description: description, reason: reason, attrs: attrs}
}

// clientFailure is the one answer to every failed client authentication,
// so that the response says nothing about which check failed (unknown
// client, wrong secret, method not allowed). The reason goes to the log.
func clientFailure(reason string, attrs ...any) *oauthError {
	return newError(401, errInvalidClient, "client authentication failed", reason, attrs...)
}
