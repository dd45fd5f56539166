package trust

import (
	"crypto/x509"
	"fmt"
	"time"

	"golang.org/x/crypto/ocsp"
)

// unavailability records the first certificate whose status could not be
// established, to be reported only if nothing in the chain is revoked.
type unavailability struct {
	cert   *x509.Certificate
	detail string
	err    error
}

// checkRevocation checks every certificate of a verified chain except the
// anchor against the CRLs of its issuer, and the leaf with OCSP when enabled.
// A revoked certificate anywhere wins; otherwise every configured source
// must give a fresh answer for the certificates it covers, or the chain's
// status is unavailable and the set's failure policy decides.
func (s *Set) checkRevocation(chain []*x509.Certificate, now time.Time) error {
	var un unavailability
	if len(s.sources) > 0 {
		ix := s.crls.Load()
		for i := 0; i+1 < len(chain); i++ {
			c := chain[i]
			out, e, d := ix.checkCRL(c, chain[i+1], now)
			switch out {
			case crlRevoked:
				return s.revoked(c, i == 0, e.revokedAt, e.reason, "the CRL from "+d.source)
			case crlUnavailable:
				if un.cert == nil {
					un = s.crlUnavailable(c, ix, d)
				}
			}
		}
	}
	if s.ocspEnabled && len(chain) > 1 {
		r := s.ocspStatus(chain[0], chain[1], now)
		switch {
		case r.err != nil:
			if un.cert == nil {
				un = unavailability{cert: chain[0], err: r.err, detail: fmt.Sprintf(
					"no OCSP answer for certificate %s", describe(chain[0]))}
			}
		case r.status == ocsp.Revoked:
			return s.revoked(chain[0], true, r.revokedAt, r.reason, "OCSP responder "+r.responder)
		case r.status != ocsp.Good:
			if un.cert == nil {
				un = unavailability{cert: chain[0], detail: fmt.Sprintf(
					"OCSP responder %s answered \"unknown\" for certificate %s; it does not vouch for it", r.responder, describe(chain[0]))}
			}
		}
	}
	if un.cert == nil {
		s.stats.ok.Add(1)
		return nil
	}
	if s.failOpen {
		s.stats.failOpen.Add(1)
		s.logger.Warn("revocation status unavailable; allowing the certificate because the trust set fails open",
			"trust_set", s.name, "subject", un.cert.Subject.String(), "serial", un.cert.SerialNumber.Text(16),
			"detail", un.detail, "error", un.err)
		return nil
	}
	s.stats.failClosed.Add(1)
	return &Error{
		Reason: ReasonRevocationUnavailable,
		Set:    s.name,
		Detail: un.detail + "; the trust set fails closed, so the certificate is refused until fresh revocation data is available (set fail_open to allow it meanwhile)",
		Cert:   un.cert,
		Err:    un.err,
	}
}

func (s *Set) crlUnavailable(c *x509.Certificate, ix *crlIndex, d *crlData) unavailability {
	if d != nil {
		return unavailability{cert: c, detail: fmt.Sprintf(
			"the CRL for issuer %q from %s passed its nextUpdate at %s and no newer one could be loaded, so the status of certificate %s is unknown",
			d.issuerName, d.source, d.nextUpdate.UTC().Format(dateFormat), describe(c))}
	}
	return unavailability{cert: c, detail: fmt.Sprintf(
		"no CRL could be loaded from %s, which may cover certificate %s",
		describeSources(ix.missing), describe(c))}
}

func (s *Set) revoked(c *x509.Certificate, isLeaf bool, at time.Time, reason int, source string) *Error {
	s.stats.revoked.Add(1)
	what := "CA certificate"
	if isLeaf {
		what = "certificate"
	}
	return &Error{
		Reason: ReasonRevoked,
		Set:    s.name,
		Detail: fmt.Sprintf("%s %s was revoked at %s (reason: %s) according to %s",
			what, describe(c), at.UTC().Format(dateFormat), reasonName(reason), source),
		Cert: c,
	}
}
