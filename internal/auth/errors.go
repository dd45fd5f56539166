package auth

import "errors"

// Errors returned when building authenticators from invalid settings. They
// are wrapped with the offending value.
var (
	// ErrNoTrustSets means an MTLS authenticator was given no trust set, so
	// it could never accept a certificate.
	ErrNoTrustSets = errors.New("no trust sets")
	// ErrBadRule means an allow rule or an application certificate rule is
	// malformed.
	ErrBadRule = errors.New("invalid certificate rule")
	// ErrBadFingerprint means a fingerprint is not 64 hexadecimal digits
	// (colons and case ignored).
	ErrBadFingerprint = errors.New("invalid SHA-256 fingerprint")
	// ErrAmbiguousCertificate means two applications register the same
	// fingerprint or the same rule, so a certificate could not be attributed
	// to one of them.
	ErrAmbiguousCertificate = errors.New("certificate registered to more than one application")
	// ErrBadApplication means an application has no id or repeats one.
	ErrBadApplication = errors.New("invalid application")
	// ErrBadAPIKey means an API key entry is malformed.
	ErrBadAPIKey = errors.New("invalid API key entry")
	// ErrBadRFC9440 means a Client-Cert or Client-Cert-Chain value is not a
	// well-formed structured-field byte sequence holding one DER
	// certificate.
	ErrBadRFC9440 = errors.New("malformed RFC 9440 certificate field")
)
