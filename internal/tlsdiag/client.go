package tlsdiag

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/trust"
)

// Reasons Client returns for HopClient. The set is closed, so it is safe as
// a metric label; the quiet ones (see Quiet) are a client hanging up or
// being slow rather than a misconfiguration.
const (
	ReasonClientCertRequired         = "client_cert_required"
	ReasonClientCertUnknownAuthority = "client_cert_unknown_authority"
	ReasonClientCertExpired          = "client_cert_expired"
	ReasonClientCertNotYetValid      = "client_cert_not_yet_valid"
	ReasonClientCertWrongUsage       = "client_cert_wrong_usage"
	ReasonClientCertRevoked          = "client_cert_revoked"
	ReasonClientCertRevocationUnavai = "client_cert_revocation_unavailable"
	ReasonClientCertInvalid          = "client_cert_invalid"
	ReasonProtocolVersion            = "protocol_version"
	ReasonCipherMismatch             = "cipher_mismatch"
	ReasonALPNMismatch               = "alpn_mismatch"
	ReasonNotTLS                     = "not_tls"
	ReasonSNINotServed               = "sni_not_served"
	ReasonServerCertRejected         = "server_cert_rejected"
	ReasonHandshakeFailure           = "handshake_failure"
	ReasonClosedByClient             = "closed_by_client"
	ReasonTimeout                    = "timeout"
	ReasonOther                      = "other"
)

// ClientReasons lists every reason Client can return.
var ClientReasons = []string{
	ReasonClientCertRequired, ReasonClientCertUnknownAuthority, ReasonClientCertExpired,
	ReasonClientCertNotYetValid, ReasonClientCertWrongUsage, ReasonClientCertRevoked,
	ReasonClientCertRevocationUnavai, ReasonClientCertInvalid, ReasonProtocolVersion,
	ReasonCipherMismatch, ReasonALPNMismatch, ReasonNotTLS, ReasonSNINotServed,
	ReasonServerCertRejected, ReasonHandshakeFailure, ReasonClosedByClient, ReasonTimeout,
	ReasonOther,
}

// Quiet reports whether a client-hop reason is routine noise (load-balancer
// probes and port checks open a connection and close it, or let it idle)
// rather than something an operator should be warned about.
func Quiet(reason string) bool {
	return reason == ReasonClosedByClient || reason == ReasonTimeout
}

// ClientContext is what the gateway knows about a client→gateway connection
// whose handshake failed, so a diagnosis can name names. Every field is
// optional; a diagnosis says less when one is missing.
type ClientContext struct {
	// Listener is the name of the listener the client connected to.
	Listener string
	// Peer is the client's address as host:port.
	Peer string
	// ServerName is the SNI the client sent ("" when none or not reached).
	ServerName string
	// TrustNames are the listener's client_trust stores, and TrustSubjects
	// the subjects of their certificates.
	TrustNames, TrustSubjects []string
	// MinVersion is the listener's lowest TLS version (tls.VersionTLS*).
	MinVersion uint16
	// Version is the TLS version negotiated before the failure, if any.
	Version uint16
	// ServedCert is the certificate the gateway sends for ServerName.
	ServedCert *x509.Certificate
	// ALPN lists the application protocols the listener offers.
	ALPN []string
	// Now is the gateway's clock, to tell an expired certificate from one
	// not yet valid. Zero means time.Now.
	Now time.Time
}

// Client classifies err, the error a client→gateway TLS handshake failed
// with (as crypto/tls returned it: typed for certificate verification, plain
// text for versions, suites and ALPN), into a Diagnosis for HopClient. It
// always returns one; errors it does not recognise get ReasonOther with the
// error text. The Code is the matching mtls.* problem code for failures
// about the client's certificate and empty otherwise: the client only ever
// receives the TLS alert crypto/tls sent.
func Client(err error, c ClientContext) Diagnosis {
	d := Diagnosis{Hop: HopClient, Peer: c.Peer, ServerName: c.ServerName}
	if c.Now.IsZero() {
		c.Now = time.Now()
	}
	classifyClient(&d, err, &c)
	return d
}

func classifyClient(d *Diagnosis, err error, c *ClientContext) {
	if err == nil {
		d.set("", ReasonOther, fmt.Sprintf("The TLS handshake with the client %s failed without an error.", c.Peer), "None.")
		return
	}
	if te, ok := errors.AsType[*trust.Error](err); ok {
		clientTrustFailure(d, te, c)
		return
	}
	if ve, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		clientVerifyFailure(d, ve, c)
		return
	}
	if rh, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		clientNotTLS(d, rh, c)
		return
	}
	if a, ok := remoteAlert(err); ok {
		clientAlert(d, a, c)
		return
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "client didn't provide a certificate"):
		d.set(problem.CodeClientCertMissing, ReasonClientCertRequired,
			fmt.Sprintf("The client %s sent no certificate, but listener %q requires one (client_certificates: require; %s).", c.Peer, c.Listener, clientTrustLabel(c)),
			fmt.Sprintf("Configure the client with its certificate and key (curl: --cert and --key), issued by %s; clients choose among their certificates by the CA names the gateway lists, so one holding only a certificate from another CA sends none. If some clients have no certificate, use client_certificates: request and let each API's mtls policy decide.", trustedIssuers(c)))
	case strings.Contains(msg, "client offered only unsupported versions"):
		clientVersions(d, hexList(msg, "versions: "), c)
	case strings.Contains(msg, "no cipher suite supported by both client and server"):
		clientCiphers(d, hexList(msg, "client offered: "), c)
	case strings.Contains(msg, "unsupported application protocols"):
		offered := msg
		if i := strings.Index(msg, "protocols ("); i >= 0 {
			offered = strings.TrimSuffix(msg[i+len("protocols ("):], ")")
		}
		d.set("", ReasonALPNMismatch,
			fmt.Sprintf("The client %s asked only for the application protocols %s (ALPN), none of which listener %q speaks (%s).", c.Peer, clip(offered, 160), c.Listener, strings.Join(c.ALPN, ", ")),
			"Have the client offer h2 or http/1.1 through ALPN, or no ALPN at all; check that it is meant for this port.")
	case strings.Contains(msg, "client certificate") || strings.Contains(msg, "client sent certificate"):
		d.set(problem.CodeClientCertUntrusted, ReasonClientCertInvalid,
			fmt.Sprintf("The client %s sent a certificate listener %q cannot use: %s.", c.Peer, c.Listener, clip(msg, 200)),
			"Reissue the client's certificate with an ECDSA, RSA (up to 8192 bits) or Ed25519 key, and make sure the client signs with the key that belongs to it.")
	case isTimeout(err) || strings.Contains(msg, "i/o timeout"):
		d.set("", ReasonTimeout,
			fmt.Sprintf("The client %s did not complete the TLS handshake on listener %q in time.", c.Peer, c.Listener),
			"Usually a stalled or very slow client, or a port check that connects and waits; if real clients hit it, raise the listener's limits.read_header_timeout.")
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		strings.HasSuffix(msg, "EOF") || strings.Contains(msg, "connection reset by peer"):
		d.set("", ReasonClosedByClient,
			fmt.Sprintf("The client %s closed the connection during the TLS handshake on listener %q without sending an alert.", c.Peer, c.Listener),
			"Usually a TCP health check or a port scan; if a real client does it, read its log: some clients hang up silently when they do not trust the gateway's certificate.")
	default:
		d.set("", ReasonOther,
			fmt.Sprintf("The TLS handshake with the client %s on listener %q failed: %s.", c.Peer, c.Listener, clip(msg, 200)),
			"Compare the client's TLS settings (versions, cipher suites, trusted CAs, client certificate) with the listener's.")
	}
}

// clientVerifyFailure explains a client certificate that crypto/tls's own
// chain verification (client_certificates: require) refused.
func clientVerifyFailure(d *Diagnosis, ve *tls.CertificateVerificationError, c *ClientContext) {
	var leaf *x509.Certificate
	if len(ve.UnverifiedCertificates) > 0 {
		leaf = ve.UnverifiedCertificates[0]
	}
	subject := "a certificate"
	if leaf != nil {
		subject = fmt.Sprintf("a certificate %q", leaf.Subject.String())
	}
	if ua, ok := errors.AsType[x509.UnknownAuthorityError](ve.Err); ok {
		issuer := "an unknown issuer"
		if cert := ua.Cert; cert != nil {
			issuer = strconv.Quote(cert.Issuer.String())
		} else if leaf != nil {
			issuer = strconv.Quote(leaf.Issuer.String())
		}
		chain := ""
		if len(ve.UnverifiedCertificates) == 1 && leaf != nil && !isSelfIssued(leaf) {
			chain = " It sent no intermediate certificate."
		}
		d.set(problem.CodeClientCertUntrusted, ReasonClientCertUnknownAuthority,
			fmt.Sprintf("The client %s presented %s issued by %s, which is not in listener %q's client_trust (%s).%s", c.Peer, subject, issuer, c.Listener, clientTrustLabel(c), chain),
			fmt.Sprintf("Add the CA %s (or its root) to a trust store in the listener's client_trust, or issue the client a certificate from %s; if %s is an intermediate below a trusted CA, make the client send it after its certificate.", issuer, trustedIssuers(c), issuer))
		return
	}
	if ie, ok := errors.AsType[x509.CertificateInvalidError](ve.Err); ok {
		cert := ie.Cert
		if cert == nil {
			cert = leaf
		}
		what := subject
		if cert != nil && cert != leaf {
			what = fmt.Sprintf("a certificate %q whose chain holds the CA certificate %q, which", leafSubject(leaf), cert.Subject.String())
		} else if cert != nil {
			what = fmt.Sprintf("a certificate %q, which", cert.Subject.String())
		}
		switch {
		case ie.Reason == x509.Expired && cert != nil && c.Now.Before(cert.NotBefore):
			d.set(problem.CodeClientCertNotYetValid, ReasonClientCertNotYetValid,
				fmt.Sprintf("The client %s presented %s is not valid until %s (valid from %s to %s; the gateway's clock says %s).", c.Peer, what, stamp(cert.NotBefore), stamp(cert.NotBefore), stamp(cert.NotAfter), stamp(c.Now)),
				fmt.Sprintf("Check the clocks of the client's CA (%q) and of the gateway, or wait until %s.", cert.Issuer.String(), stamp(cert.NotBefore)))
			return
		case ie.Reason == x509.Expired && cert != nil:
			d.set(problem.CodeClientCertExpired, ReasonClientCertExpired,
				fmt.Sprintf("The client %s presented %s expired at %s (valid from %s to %s).", c.Peer, what, stamp(cert.NotAfter), stamp(cert.NotBefore), stamp(cert.NotAfter)),
				fmt.Sprintf("Renew the client's certificate from its CA %q and install it on the client; if it looks current, check the gateway's clock.", cert.Issuer.String()))
			return
		case ie.Reason == x509.IncompatibleUsage:
			usages := ""
			if leaf != nil {
				usages = " with the extended key usages " + ekuNames(leaf.ExtKeyUsage)
			}
			d.set(problem.CodeClientCertWrongUsage, ReasonClientCertWrongUsage,
				fmt.Sprintf("The client %s presented %s%s, which does not allow TLS client authentication (clientAuth); listener %q requires it.", c.Peer, subject, usages, c.Listener),
				"Issue the client a certificate with the clientAuth extended key usage (portcullis pki issue --client); a server certificate cannot double as a client certificate. A CA in the chain that limits its usages must allow clientAuth too.")
			return
		}
	}
	d.set(problem.CodeClientCertUntrusted, ReasonClientCertInvalid,
		fmt.Sprintf("The client %s presented %s that listener %q could not verify: %v.", c.Peer, subject, c.Listener, ve.Err),
		fmt.Sprintf("Reissue the client's certificate as a TLS client certificate from %s.", trustedIssuers(c)))
}

// clientTrustFailure explains a refusal by the listener's trust sets, which
// check revocation after crypto/tls verified the chain.
func clientTrustFailure(d *Diagnosis, te *trust.Error, c *ClientContext) {
	plain := fmt.Sprintf("The client %s presented a certificate that trust store %q of listener %q's client_trust refuses: %s.", c.Peer, te.Set, c.Listener, te.Detail)
	switch te.Reason {
	case trust.ReasonRevoked:
		d.set(problem.CodeClientCertRevoked, ReasonClientCertRevoked, plain,
			"The client's certificate was revoked by its CA: issue the client a new one. If the revocation was a mistake, it cannot be undone; reissue.")
	case trust.ReasonRevocationUnavailable:
		d.set(problem.CodeRevocationUnavailable, ReasonClientCertRevocationUnavai, plain,
			fmt.Sprintf("Make the CRL or OCSP responder of trust store %q reachable and current, or set its revocation_policy: fail_open if accepting unchecked certificates meanwhile is acceptable.", te.Set))
	case trust.ReasonExpired:
		d.set(problem.CodeClientCertExpired, ReasonClientCertExpired, plain, "Renew the client's certificate (or the CA in its chain); if it looks current, check the gateway's clock.")
	case trust.ReasonNotYetValid:
		d.set(problem.CodeClientCertNotYetValid, ReasonClientCertNotYetValid, plain, "Check the clocks of the client's CA and of the gateway, or wait until the certificate is valid.")
	case trust.ReasonWrongUsage:
		d.set(problem.CodeClientCertWrongUsage, ReasonClientCertWrongUsage, plain, "Issue the client a certificate with the clientAuth extended key usage (portcullis pki issue --client).")
	default:
		d.set(problem.CodeClientCertUntrusted, ReasonClientCertUnknownAuthority, plain,
			fmt.Sprintf("Issue the client a certificate from %s, or add its CA to trust store %q.", trustedIssuers(c), te.Set))
	}
}

func clientNotTLS(d *Diagnosis, rh tls.RecordHeaderError, c *ClientContext) {
	head := rh.RecordHeader[:]
	if method, ok := httpMethod(head); ok {
		d.set("", ReasonNotTLS,
			fmt.Sprintf("The client %s sent a plain-HTTP request (%s …) to listener %q, which speaks only TLS; it was answered 400.", c.Peer, method, c.Listener),
			"Use an https:// URL in the client. To send http:// clients to HTTPS, give the listener an http_redirect on a port of its own.")
		return
	}
	d.set("", ReasonNotTLS,
		fmt.Sprintf("The client %s sent bytes that are not a TLS handshake to listener %q (first bytes % x).", c.Peer, c.Listener, head),
		"Find out what connects to this port: a health check or scanner speaking another protocol, or a client configured for another service. Clients must speak TLS here.")
}

// httpMethod recognises the start of an HTTP/1.x request (or the HTTP/2
// cleartext preface) in a would-be TLS record header.
func httpMethod(head []byte) (string, bool) {
	s := string(head)
	for _, m := range []string{"GET ", "HEAD ", "POST ", "PUT ", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE", "PRI *"} {
		if strings.HasPrefix(m, s) || strings.HasPrefix(s, m) {
			return strings.TrimSpace(m), true
		}
	}
	return "", false
}

// clientAlert explains an alert the client sent: nearly always its verdict
// on the gateway's certificate.
func clientAlert(d *Diagnosis, a tls.AlertError, c *ClientContext) {
	name := alertName(a)
	switch {
	case isCertAlert(a) && c.ServedCert != nil && c.ServerName != "" && c.ServedCert.VerifyHostname(c.ServerName) != nil:
		d.set("", ReasonSNINotServed,
			fmt.Sprintf("The client %s asked listener %q for the name %q (SNI), which none of its certificates covers; it got the default certificate %q, valid for %s, and refused it with TLS alert %q.",
				c.Peer, c.Listener, c.ServerName, c.ServedCert.Subject.String(), certNames(c.ServedCert), name),
			fmt.Sprintf("Add a certificate for %q to the listener's tls.certificates (or list the name in a certificate's server_names), or have the client use a name the listener serves.", c.ServerName))
	case isCertAlert(a):
		served, issuer := "the gateway's certificate", "its issuer"
		if c.ServedCert != nil {
			served = fmt.Sprintf("the gateway's certificate %q issued by %q", c.ServedCert.Subject.String(), c.ServedCert.Issuer.String())
			issuer = strconv.Quote(c.ServedCert.Issuer.String())
		}
		sni := "without SNI (it may have connected by IP address, which the certificate must then list as an IP SAN)"
		if c.ServerName != "" {
			sni = fmt.Sprintf("for the name %q", c.ServerName)
		}
		fix := fmt.Sprintf("Give the client the CA certificate of %s as a trusted root (curl --cacert, a Java truststore, the OS store), or serve a certificate from a CA the client already trusts; if %s is an intermediate, put it after the leaf in the listener's certificate file.", issuer, issuer)
		if a == alertCertificateExpired {
			fix = "Renew the listener's certificate (portcullis doctor certs lists its expiry); if it looks current, check the client's clock."
		}
		d.set("", ReasonServerCertRejected,
			fmt.Sprintf("The client %s refused %s, sent by listener %q %s, with TLS alert %q.", c.Peer, served, c.Listener, sni, name),
			fix)
	case a == alertProtocolVersion:
		d.set("", ReasonProtocolVersion,
			fmt.Sprintf("The client %s refused the TLS version listener %q chose (%s) with TLS alert %q.", c.Peer, c.Listener, versionName(c.Version), name),
			"Enable TLS 1.2 or 1.3 in the client; the gateway offers nothing older.")
	default:
		d.set("", ReasonHandshakeFailure,
			fmt.Sprintf("The client %s aborted the TLS handshake with listener %q with alert %q.", c.Peer, c.Listener, name),
			"Read the client's TLS error, and compare its settings (versions, cipher suites, trusted CAs, ALPN) with the listener's.")
	}
}

func clientVersions(d *Diagnosis, offered []uint16, c *ClientContext) {
	minV := c.MinVersion
	if minV == 0 {
		minV = tls.VersionTLS12
	}
	var names []string
	var highest uint16
	for _, v := range offered {
		names = append(names, versionName(v))
		highest = max(highest, v)
	}
	list := "versions it did not name"
	if len(names) > 0 {
		list = strings.Join(names, ", ")
	}
	fix := "Enable TLS 1.2 or 1.3 in the client (update its TLS library or its settings); the gateway never accepts TLS 1.0 or 1.1."
	if highest == tls.VersionTLS12 && minV == tls.VersionTLS13 {
		fix = fmt.Sprintf("Enable TLS 1.3 in the client, or set listener %q's tls.min_version: \"1.2\" if TLS 1.2 clients must be served.", c.Listener)
	}
	d.set("", ReasonProtocolVersion,
		fmt.Sprintf("The client %s offered only %s, but listener %q accepts %s and later (tls.min_version).", c.Peer, list, c.Listener, versionName(minV)),
		fix)
}

func clientCiphers(d *Diagnosis, offered []uint16, c *ClientContext) {
	var names []string
	for i, s := range offered {
		if i == 12 {
			names = append(names, fmt.Sprintf("and %d more", len(offered)-i))
			break
		}
		names = append(names, tls.CipherSuiteName(s))
	}
	key, example := "", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 or TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
	if c.ServedCert != nil {
		switch c.ServedCert.PublicKeyAlgorithm {
		case x509.ECDSA, x509.Ed25519:
			key, example = " with its "+c.ServedCert.PublicKeyAlgorithm.String()+" certificate", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
		case x509.RSA:
			key, example = " with its RSA certificate", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
		}
	}
	version := ""
	if c.Version != 0 {
		version = " for " + versionName(c.Version)
	}
	d.set("", ReasonCipherMismatch,
		fmt.Sprintf("The client %s offered only cipher suites listener %q does not accept%s%s: %s.", c.Peer, c.Listener, version, key, strings.Join(names, ", ")),
		fmt.Sprintf("Enable TLS 1.3 in the client, or an ECDHE suite with AES-GCM or ChaCha20-Poly1305 that matches the certificate's key (%s); RSA key exchange, 3DES and RC4 are never accepted.", example))
}

// hexList parses the "%x" rendering of a []uint16 that follows marker in
// msg, e.g. "[303 302]" after "versions: ". It returns nil when there is
// none.
func hexList(msg, marker string) []uint16 {
	i := strings.Index(msg, marker)
	if i < 0 {
		return nil
	}
	rest := msg[i+len(marker):]
	if !strings.HasPrefix(rest, "[") {
		return nil
	}
	end := strings.IndexByte(rest, ']')
	if end < 0 {
		return nil
	}
	var out []uint16
	for f := range strings.FieldsSeq(rest[1:end]) {
		if n, err := strconv.ParseUint(f, 16, 16); err == nil {
			out = append(out, uint16(n))
		}
	}
	return out
}

func clientTrustLabel(c *ClientContext) string {
	names := "client_trust"
	if len(c.TrustNames) > 0 {
		names = "client_trust: " + strings.Join(c.TrustNames, ", ")
	}
	if len(c.TrustSubjects) == 0 {
		return names
	}
	return names + "; subjects: " + strings.Join(c.TrustSubjects, "; ")
}

func trustedIssuers(c *ClientContext) string {
	if len(c.TrustSubjects) == 0 {
		return "a CA in the listener's client_trust"
	}
	return strings.Join(c.TrustSubjects, " or ")
}

func leafSubject(leaf *x509.Certificate) string {
	if leaf == nil {
		return ""
	}
	return leaf.Subject.String()
}

func isSelfIssued(c *x509.Certificate) bool {
	return string(c.RawIssuer) == string(c.RawSubject)
}

var ekuLabels = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny:             "any",
	x509.ExtKeyUsageServerAuth:      "serverAuth",
	x509.ExtKeyUsageClientAuth:      "clientAuth",
	x509.ExtKeyUsageCodeSigning:     "codeSigning",
	x509.ExtKeyUsageEmailProtection: "emailProtection",
	x509.ExtKeyUsageTimeStamping:    "timeStamping",
	x509.ExtKeyUsageOCSPSigning:     "OCSPSigning",
}

func ekuNames(ekus []x509.ExtKeyUsage) string {
	if len(ekus) == 0 {
		return "(none)"
	}
	var names []string
	for _, u := range ekus {
		if n, ok := ekuLabels[u]; ok {
			names = append(names, n)
		} else {
			names = append(names, fmt.Sprintf("#%d", u))
		}
	}
	return strings.Join(names, ", ")
}

// clip bounds text that came from the client (ALPN names, crypto/tls
// messages quoting the hello) so one connection cannot write a huge line.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
