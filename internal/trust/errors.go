package trust

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
)

// Reason is the stable, machine-readable cause of a verification failure.
// Callers map it to a problem code; its spelling never changes.
type Reason string

// The reasons Verify reports.
const (
	// ReasonUntrusted means no chain leads from the certificate to any anchor
	// of the set (or a CA on the way may not issue certificates).
	ReasonUntrusted Reason = "untrusted"
	// ReasonExpired means the leaf or a CA in its chain is past its NotAfter.
	ReasonExpired Reason = "expired"
	// ReasonNotYetValid means the leaf or a CA in its chain is before its
	// NotBefore.
	ReasonNotYetValid Reason = "not_yet_valid"
	// ReasonWrongUsage means an extended key usage in the chain does not
	// allow the usage asked for (for example a server-only certificate used
	// as a client certificate).
	ReasonWrongUsage Reason = "wrong_usage"
	// ReasonRevoked means a CRL or an OCSP responder says a certificate in the
	// chain is revoked.
	ReasonRevoked Reason = "revoked"
	// ReasonRevocationUnavailable means the set fails closed and holds no
	// fresh CRL or OCSP answer for a certificate in the chain.
	ReasonRevocationUnavailable Reason = "revocation_unavailable"
)

// ErrNoCertificate is wrapped by the *Error that Verify returns for an empty
// chain.
var ErrNoCertificate = errors.New("no certificate to verify")

// Errors wrapped by CRL load failures, shown in SourceStatus.LastError.
var (
	errNoCRL                     = errors.New("no CRL found (expected PEM \"X509 CRL\" blocks or DER)")
	errUnsupportedCRLPartitioned = errors.New("it covers only some revocation reasons or is an indirect CRL, which is not supported")
)

// Error is the error Verify returns. Detail is written for the operator, in
// plain words; it may name internal CAs, hosts and files, so it belongs in
// logs and never in a response to a client.
type Error struct {
	// Reason is the stable cause.
	Reason Reason
	// Set is the name of the trust set that refused the chain.
	Set string
	// Detail says what was wrong and with which certificate, dates or
	// revocation source.
	Detail string
	// Cert is the certificate at fault: the leaf, a CA in the chain, or nil
	// when there is none.
	Cert *x509.Certificate
	// Err is the underlying error (from crypto/x509, a CRL or an OCSP
	// exchange), or nil.
	Err error
}

// Error renders the set, the reason, the detail and the underlying error.
func (e *Error) Error() string {
	msg := "trust set " + strconv.Quote(e.Set) + ": " + string(e.Reason)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// reasonName names an RFC 5280 section 5.3.1 CRLReason code (OCSP uses the
// same codes, RFC 6960 section 4.2.1), or gives its number when it has no
// name.
func reasonName(code int) string {
	switch code {
	case 0:
		return "unspecified"
	case 1:
		return "keyCompromise"
	case 2:
		return "cACompromise"
	case 3:
		return "affiliationChanged"
	case 4:
		return "superseded"
	case 5:
		return "cessationOfOperation"
	case 6:
		return "certificateHold"
	case 8:
		return "removeFromCRL"
	case 9:
		return "privilegeWithdrawn"
	case 10:
		return "aACompromise"
	}
	return "reason code " + strconv.Itoa(code)
}

// describe names a certificate for a Detail sentence: its subject and serial.
func describe(c *x509.Certificate) string {
	return fmt.Sprintf("%q (serial %s)", c.Subject.String(), c.SerialNumber.Text(16))
}
