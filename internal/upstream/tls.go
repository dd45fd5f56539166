package upstream

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/portcullis/portcullis/internal/tlsdiag"
)

// PinSHA256 returns cert's pin in the form TLSOptions.Pins expects: the
// standard base64 encoding of the SHA-256 digest of its SubjectPublicKeyInfo.
func PinSHA256(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// tlsPlan is TLSOptions checked and decoded, before any transport exists.
type tlsPlan struct {
	minVersion uint16
	pins       [][sha256.Size]byte
}

// checkTLS rejects TLS options outside their domain.
func checkTLS(o TLSOptions) (tlsPlan, error) {
	plan := tlsPlan{minVersion: o.MinVersion}
	switch plan.minVersion {
	case 0:
		plan.minVersion = tls.VersionTLS12
	case tls.VersionTLS12, tls.VersionTLS13:
	default:
		return plan, fmt.Errorf("%w: min_version %#04x (valid: TLS 1.2, TLS 1.3)", ErrBadTLSOption, o.MinVersion)
	}
	if o.Certificate != nil && len(o.Certificate.Certificate) == 0 {
		return plan, fmt.Errorf("%w: client certificate has no certificate data", ErrBadTLSOption)
	}
	for _, p := range o.Pins {
		raw, err := base64.StdEncoding.DecodeString(p)
		if err != nil || len(raw) != sha256.Size {
			return plan, fmt.Errorf("%w: pin %q is not the base64 encoding of a SHA-256 digest", ErrBadTLSOption, p)
		}
		plan.pins = append(plan.pins, [sha256.Size]byte(raw))
	}
	return plan, nil
}

// tlsConfig builds the one client configuration every connection of p
// uses. Its callbacks read the client certificate and the revocation check
// from p.live at each handshake, so holders that share p may differ in
// those values but in nothing else.
func (p *pool) tlsConfig(o TLSOptions, plan tlsPlan) *tls.Config {
	v := &verifier{
		roots:       o.RootCAs,
		verifyChain: !o.InsecureSkipVerify && !o.VerifyHostname,
		pins:        plan.pins,
		pinText:     o.Pins,
		revocation:  !o.InsecureSkipVerify && o.Revocation != nil,
		live:        &p.live,
	}
	cfg := &tls.Config{
		RootCAs:              o.RootCAs,
		ServerName:           o.ServerName,
		MinVersion:           plan.minVersion,
		GetClientCertificate: p.getClientCertificate,
	}
	if o.InsecureSkipVerify || v.verifyChain {
		// crypto/tls can verify a chain only together with a name. Without
		// hostname verification, the chain is verified in VerifyConnection
		// instead; only an explicit InsecureSkipVerify verifies nothing.
		cfg.InsecureSkipVerify = true //nolint:gosec // Named unsafe option, or chain verified in verifyConnection.
	}
	if v.verifyChain || len(v.pins) > 0 || v.revocation {
		cfg.VerifyConnection = v.verifyConnection
	}
	return cfg
}

// verifier checks what crypto/tls cannot check by itself. It is immutable
// after New and runs once per full handshake.
type verifier struct {
	roots       *x509.CertPool
	verifyChain bool
	pins        [][sha256.Size]byte
	pinText     []string
	// revocation enables the check in live's newest settings.
	revocation bool
	live       *atomic.Pointer[handshake]
}

// verifyConnection fails the handshake (closed) when the chain does not
// verify against the trust set (if verifyChain) or the leaf's key matches no
// pin. It returns *tls.CertificateVerificationError and
// *tlsdiag.PinMismatchError so diagnoses read the same as for checks done by
// crypto/tls.
func (v *verifier) verifyConnection(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("upstream presented no certificate")
	}
	leaf := cs.PeerCertificates[0]
	if v.verifyChain {
		opts := x509.VerifyOptions{
			Roots:         v.roots,
			Intermediates: x509.NewCertPool(),
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		if _, err := leaf.Verify(opts); err != nil {
			return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
		}
	}
	if v.revocation {
		// Every holder of a pool that checks revocation has a check
		// (poolKey); fail closed should that ever not hold.
		check := v.live.Load().revocation
		if check == nil {
			return errors.New("upstream revocation check missing")
		}
		if err := check(cs); err != nil {
			return err
		}
	}
	if len(v.pins) == 0 {
		return nil
	}
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	for _, p := range v.pins {
		if p == sum {
			return nil
		}
	}
	return &tlsdiag.PinMismatchError{Got: base64.StdEncoding.EncodeToString(sum[:]), Want: v.pinText}
}

// getClientCertificate presents the gateway's identity (or none) and
// remembers which CAs the upstream asked for, so a later rejection can name
// them.
func (p *pool) getClientCertificate(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	names := make([]string, 0, len(cri.AcceptableCAs))
	for _, der := range cri.AcceptableCAs {
		var rdn pkix.RDNSequence
		if rest, err := asn1.Unmarshal(der, &rdn); err != nil || len(rest) > 0 {
			names = append(names, "(unparsable name)")
			continue
		}
		var n pkix.Name
		n.FillFromRDNSequence(&rdn)
		names = append(names, n.String())
	}
	p.acceptableCAs.Store(&names)
	return p.live.Load().cert, nil
}

// diagContext precomputes the per-API part of diagnoses.
func diagContext(o Options) (tlsdiag.UpstreamContext, error) {
	c := tlsdiag.UpstreamContext{
		API:           o.API,
		TrustName:     o.TLS.TrustName,
		TrustSubjects: o.TLS.TrustSubjects,
		MinVersion:    o.TLS.MinVersion,
	}
	if o.TLS.Certificate == nil {
		return c, nil
	}
	leaf := o.TLS.Certificate.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(o.TLS.Certificate.Certificate[0]); err != nil {
			return c, fmt.Errorf("%w: parsing client certificate: %w", ErrBadTLSOption, err)
		}
	}
	c.HaveClientCert = true
	c.ClientCertSubject = leaf.Subject.String()
	c.ClientCertIssuer = leaf.Issuer.String()
	return c, nil
}
