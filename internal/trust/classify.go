package trust

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// dateFormat renders validity dates in Detail sentences.
const dateFormat = time.RFC3339

// maxDiagnosisDepth bounds the issuer walk in diagnoseUnknownAuthority.
const maxDiagnosisDepth = 8

// classify turns an error from x509.Certificate.Verify into a *Error.
func (s *Set) classify(chain []*x509.Certificate, now time.Time, err error) *Error {
	leaf := chain[0]
	var invalid x509.CertificateInvalidError
	if errors.As(err, &invalid) && invalid.Reason == x509.Expired {
		c := invalid.Cert
		if c == nil {
			c = leaf
		}
		return s.timeError(c, c == leaf, now, err)
	}
	var unknown x509.UnknownAuthorityError
	if errors.As(err, &unknown) {
		// Go reports an expired or not-yet-valid CA as an unknown authority
		// and keeps the real cause unexported, so walk the issuers ourselves
		// to name the CA whose dates are wrong.
		if e := s.diagnoseUnknownAuthority(chain, now, err); e != nil {
			return e
		}
		return &Error{
			Reason: ReasonUntrusted,
			Set:    s.name,
			Detail: fmt.Sprintf("certificate %s was issued by %q, and no chain from it reaches an anchor of this set (anchors: %s); add the issuing CA (or its root) to the trust set, or have the peer send its intermediate certificates",
				describe(leaf), leaf.Issuer.String(), s.anchorSubjects),
			Cert: leaf,
			Err:  err,
		}
	}
	if errors.As(err, &invalid) {
		c := invalid.Cert
		if c == nil {
			c = leaf
		}
		return &Error{
			Reason: ReasonUntrusted,
			Set:    s.name,
			Detail: fmt.Sprintf("certificate %s cannot be chained to an anchor of this set: %s", describe(c), invalidReason(invalid.Reason)),
			Cert:   c,
			Err:    err,
		}
	}
	return &Error{
		Reason: ReasonUntrusted,
		Set:    s.name,
		Detail: fmt.Sprintf("certificate %s could not be verified against this set's anchors (%s)", describe(leaf), s.anchorSubjects),
		Cert:   leaf,
		Err:    err,
	}
}

func invalidReason(r x509.InvalidReason) string {
	switch r {
	case x509.NotAuthorizedToSign:
		return "a certificate in the chain is not a CA but signed another certificate"
	case x509.CANotAuthorizedForThisName, x509.CANotAuthorizedForExtKeyUsage:
		return "a CA in the chain is constrained and may not issue this certificate"
	case x509.TooManyIntermediates:
		return "the chain is longer than a CA's path length constraint allows"
	case x509.TooManyConstraints:
		return "the chain has too many name constraints to check"
	case x509.NameConstraintsWithoutSANs, x509.UnconstrainedName:
		return "a name in the certificate is outside a CA's name constraints"
	}
	return "the certificate is invalid"
}

// timeError reports that c is outside its validity window at now.
func (s *Set) timeError(c *x509.Certificate, isLeaf bool, now time.Time, err error) *Error {
	what := "CA certificate"
	if isLeaf {
		what = "certificate"
	}
	if now.Before(c.NotBefore) {
		return &Error{
			Reason: ReasonNotYetValid,
			Set:    s.name,
			Detail: fmt.Sprintf("%s %s is not valid until %s (it is now %s); check the issuer's and this host's clocks",
				what, describe(c), c.NotBefore.UTC().Format(dateFormat), now.UTC().Format(dateFormat)),
			Cert: c,
			Err:  err,
		}
	}
	return &Error{
		Reason: ReasonExpired,
		Set:    s.name,
		Detail: fmt.Sprintf("%s %s expired at %s (it is now %s); renew it",
			what, describe(c), c.NotAfter.UTC().Format(dateFormat), now.UTC().Format(dateFormat)),
		Cert: c,
		Err:  err,
	}
}

func outsideValidity(c *x509.Certificate, now time.Time) bool {
	return now.Before(c.NotBefore) || now.After(c.NotAfter)
}

// diagnoseUnknownAuthority walks from the leaf towards the anchors through
// the certificates the peer sent and the anchors, following issuer names and
// signatures, and returns an expired or not_yet_valid error for the first CA
// on such a path that is outside its validity window at now. It returns nil
// when it finds none. It runs only on the failure path.
func (s *Set) diagnoseUnknownAuthority(chain []*x509.Certificate, now time.Time, err error) *Error {
	candidates := make([]*x509.Certificate, 0, len(chain)-1+len(s.anchors))
	for _, c := range chain[1:] {
		if c != nil {
			candidates = append(candidates, c)
		}
	}
	candidates = append(candidates, s.anchors...)
	var walk func(cur *x509.Certificate, depth int) *Error
	walk = func(cur *x509.Certificate, depth int) *Error {
		if depth > maxDiagnosisDepth {
			return nil
		}
		for _, cand := range candidates {
			if cand == cur || !bytes.Equal(cand.RawSubject, cur.RawIssuer) || cur.CheckSignatureFrom(cand) != nil {
				continue
			}
			if outsideValidity(cand, now) {
				return s.timeError(cand, false, now, err)
			}
			if bytes.Equal(cand.RawSubject, cand.RawIssuer) {
				continue
			}
			if e := walk(cand, depth+1); e != nil {
				return e
			}
		}
		return nil
	}
	return walk(chain[0], 0)
}

// usageFault returns the first certificate, from the anchor down, whose
// extended key usages do not allow usage, or nil if the chain allows it. It
// follows crypto/x509: a certificate without extended key usages, or with
// anyExtendedKeyUsage, allows every usage, and the Server Gated Crypto
// usages count as serverAuth.
func usageFault(chain []*x509.Certificate, usage x509.ExtKeyUsage) *x509.Certificate {
	if usage == x509.ExtKeyUsageAny {
		return nil
	}
	for i := len(chain) - 1; i >= 0; i-- {
		c := chain[i]
		if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
			continue
		}
		if !allowsUsage(c.ExtKeyUsage, usage) {
			return c
		}
	}
	return nil
}

func allowsUsage(have []x509.ExtKeyUsage, want x509.ExtKeyUsage) bool {
	for _, u := range have {
		switch {
		case u == x509.ExtKeyUsageAny, u == want:
			return true
		case want == x509.ExtKeyUsageServerAuth &&
			(u == x509.ExtKeyUsageNetscapeServerGatedCrypto || u == x509.ExtKeyUsageMicrosoftServerGatedCrypto):
			return true
		}
	}
	return false
}

func (s *Set) wrongUsage(leaf, bad *x509.Certificate, usage x509.ExtKeyUsage) *Error {
	names := make([]string, 0, len(bad.ExtKeyUsage)+len(bad.UnknownExtKeyUsage))
	for _, u := range bad.ExtKeyUsage {
		names = append(names, usageName(u))
	}
	for _, oid := range bad.UnknownExtKeyUsage {
		names = append(names, oid.String())
	}
	what := "certificate"
	if bad != leaf {
		what = "CA certificate"
	}
	return &Error{
		Reason: ReasonWrongUsage,
		Set:    s.name,
		Detail: fmt.Sprintf("%s %s allows only the extended key usages %s, not %s; issue a certificate with %s",
			what, describe(bad), strings.Join(names, ", "), usageName(usage), usageName(usage)),
		Cert: bad,
	}
}

// usageName gives the RFC 5280 name of an extended key usage.
func usageName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageAny:
		return "anyExtendedKeyUsage"
	case x509.ExtKeyUsageServerAuth:
		return "serverAuth"
	case x509.ExtKeyUsageClientAuth:
		return "clientAuth"
	case x509.ExtKeyUsageCodeSigning:
		return "codeSigning"
	case x509.ExtKeyUsageEmailProtection:
		return "emailProtection"
	case x509.ExtKeyUsageTimeStamping:
		return "timeStamping"
	case x509.ExtKeyUsageOCSPSigning:
		return "OCSPSigning"
	case x509.ExtKeyUsageIPSECEndSystem, x509.ExtKeyUsageIPSECTunnel, x509.ExtKeyUsageIPSECUser:
		return "ipsec"
	case x509.ExtKeyUsageNetscapeServerGatedCrypto, x509.ExtKeyUsageMicrosoftServerGatedCrypto:
		return "serverGatedCrypto"
	}
	return fmt.Sprintf("usage %d", int(u))
}
