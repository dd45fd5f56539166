package keymaterial

import "errors"

// Sentinel errors. Every error returned by this package wraps one of them
// (test with errors.Is) and names the file or alias concerned. No error
// message ever contains a password or key material.
var (
	// ErrWrongPassword means a store's integrity check or a key's decryption
	// failed with the given password, or an encrypted key has no password.
	ErrWrongPassword = errors.New("wrong password")
	// ErrAliasNotFound means the requested alias is not in the store; the
	// message lists the aliases present.
	ErrAliasNotFound = errors.New("alias not found")
	// ErrAliasRequired means the store holds several key entries and no alias
	// was given; the message lists them.
	ErrAliasRequired = errors.New("alias required")
	// ErrNoPrivateKey means an identity was requested from a file that holds
	// no usable private key (for example a truststore).
	ErrNoPrivateKey = errors.New("no private key")
	// ErrExpired means the leaf certificate's validity ended before now.
	ErrExpired = errors.New("certificate expired")
	// ErrNotYetValid means the leaf certificate's validity starts after now.
	ErrNotYetValid = errors.New("certificate not yet valid")
	// ErrKeyMismatch means the private key does not belong to the leaf
	// certificate.
	ErrKeyMismatch = errors.New("private key does not match certificate")
	// ErrUnsupportedFormat means the content was recognised (or not) but
	// cannot be used; the message says what was detected and what to do.
	ErrUnsupportedFormat = errors.New("unsupported format")
	// ErrNoCertificates means a source yielded no certificates.
	ErrNoCertificates = errors.New("no certificates")
	// ErrCorrupt means the content looks like the detected format but does
	// not parse as it (truncated, damaged, or not DER).
	ErrCorrupt = errors.New("corrupt data")
	// ErrInvalidSource means a source or secret reference is incomplete or
	// ambiguous, such as a certificate file without a key file.
	ErrInvalidSource = errors.New("invalid source")
	// ErrSecretUnavailable means a secret reference points at an environment
	// variable that is not set.
	ErrSecretUnavailable = errors.New("secret unavailable")
)
