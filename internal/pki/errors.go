package pki

import "errors"

// Sentinel errors returned (wrapped, with the file or object named) by this
// package. Test for them with errors.Is.
var (
	// ErrWrongPassword means a password did not decrypt a key or store.
	ErrWrongPassword = errors.New("wrong password")
	// ErrPasswordRequired means an encrypted key or a key store needs a
	// password and none was given.
	ErrPasswordRequired = errors.New("password required")
	// ErrPasswordEncoding means a password cannot be represented in the
	// target format (JKS passwords are Latin-1 only).
	ErrPasswordEncoding = errors.New("password cannot be encoded")
	// ErrExists means a file or CA that would be overwritten already exists.
	ErrExists = errors.New("already exists")
	// ErrUnknownSerial means a serial number is not in the CA's index.
	ErrUnknownSerial = errors.New("unknown serial number")
	// ErrAlreadyRevoked means a serial number has already been revoked.
	ErrAlreadyRevoked = errors.New("already revoked")
	// ErrBadCSR means a certificate signing request could not be parsed or
	// its self-signature does not verify.
	ErrBadCSR = errors.New("invalid certificate signing request")
	// ErrBadSerial means a serial number string could not be parsed.
	ErrBadSerial = errors.New("invalid serial number")
	// ErrInvalidOption means an option value is out of range or unknown.
	ErrInvalidOption = errors.New("invalid option")
	// ErrUnsupportedKey means a key type or size is not supported.
	ErrUnsupportedKey = errors.New("unsupported key")
	// ErrUnsupportedKeyEncryption means an encrypted private key uses an
	// algorithm this package does not implement.
	ErrUnsupportedKeyEncryption = errors.New("unsupported private key encryption")
	// ErrKeyMismatch means a private key does not belong to a certificate.
	ErrKeyMismatch = errors.New("private key does not match certificate")
	// ErrNotCA means a certificate is not a CA certificate.
	ErrNotCA = errors.New("not a CA certificate")
	// ErrNoPEM means input expected to be PEM holds no usable PEM block.
	ErrNoPEM = errors.New("no PEM data found")
	// ErrCorruptIndex means the CA's index file cannot be parsed.
	ErrCorruptIndex = errors.New("corrupt CA index")
)
