package tlsdiag

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/trust"
)

// Hop names the connection a diagnosis is about.
type Hop string

// The two hops a request crosses.
const (
	HopUpstream Hop = "gateway→upstream"
	HopClient   Hop = "client→gateway"
)

// Diagnosis explains one failed connection to the operator.
type Diagnosis struct {
	// Hop is the connection that failed.
	Hop Hop
	// Code is the stable problem code (one of the problem.Code* constants).
	// It is empty for client→gateway handshake failures that have none: the
	// client of a failed handshake only receives a TLS alert.
	Code string
	// Reason is a short, stable label suitable for a metric, such as
	// "unknown_authority". Several reasons may share one Code.
	Reason string
	// Plain is one plain-language sentence saying what happened, naming the
	// issuer, trust set, certificate names, dates or TLS alert involved.
	Plain string
	// Fix says what to change.
	Fix string
	// Peer is the remote address as host:port.
	Peer string
	// ServerName is the name sent as SNI and verified, if any.
	ServerName string
}

// LogAttrs returns the diagnosis as alternating slog keys and values: hop,
// peer, server_name, reason, plain and fix.
func (d Diagnosis) LogAttrs() []any {
	return []any{
		"hop", string(d.Hop),
		"peer", d.Peer,
		"server_name", d.ServerName,
		"reason", d.Reason,
		"plain", d.Plain,
		"fix", d.Fix,
	}
}

// UpstreamContext is what the caller knows about a gateway→upstream
// connection, so a diagnosis can name names instead of quoting an error.
type UpstreamContext struct {
	// API is the name of the API the connection was for.
	API string
	// Peer is the upstream address as host:port.
	Peer string
	// ServerName is the name sent as SNI and checked against the
	// certificate (the target host when none is configured).
	ServerName string
	// TrustName is the configured trust set; empty means the system roots.
	TrustName string
	// TrustSubjects lists the subjects of the certificates in the trust set.
	TrustSubjects []string
	// HaveClientCert reports whether the gateway has a client certificate
	// for this upstream.
	HaveClientCert bool
	// ClientCertSubject and ClientCertIssuer describe that certificate.
	ClientCertSubject, ClientCertIssuer string
	// AcceptableCAs lists the CA names the upstream asked for in its
	// certificate request, when known.
	AcceptableCAs []string
	// MinVersion is the lowest TLS version the gateway offers (a
	// tls.VersionTLS* constant); zero means unknown.
	MinVersion uint16
}

// Upstream classifies err, returned while connecting to or exchanging a
// request with an upstream, into a Diagnosis for HopUpstream. It reports
// false when err is not a TLS or connection failure it recognises (for
// example a malformed HTTP response), in which case the caller chooses a
// generic code.
func Upstream(err error, c UpstreamContext) (Diagnosis, bool) {
	if err == nil {
		return Diagnosis{}, false
	}
	d := Diagnosis{Hop: HopUpstream, Peer: c.Peer, ServerName: c.ServerName}
	if !classifyUpstream(&d, err, &c) {
		return Diagnosis{}, false
	}
	return d, true
}

// classifyUpstream fills d from err. Verification failures are checked
// before alerts and socket errors because they are the most specific: a
// failed verification also sends an alert and closes the connection.
func classifyUpstream(d *Diagnosis, err error, c *UpstreamContext) bool {
	if pe, ok := errors.AsType[*PinMismatchError](err); ok {
		d.set(problem.CodeUpstreamTLSPinMismatch, "pin_mismatch",
			fmt.Sprintf("The upstream %s presented a certificate whose public key (pin %s) matches none of the %d pins configured for API %q.",
				c.Peer, pe.Got, len(pe.Want), c.API),
			fmt.Sprintf("If the upstream's key was rotated on purpose, add %s to the API's upstream.tls.pins (keep the old pin until the rollout ends); otherwise treat this as possible interception.", pe.Got))
		return true
	}
	if te, ok := errors.AsType[*trust.Error](err); ok {
		trustFailure(d, te, c)
		return true
	}
	if ua, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		presented := 0
		if ve, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
			presented = len(ve.UnverifiedCertificates)
		}
		unknownAuthority(d, ua, presented, c)
		return true
	}
	if he, ok := errors.AsType[x509.HostnameError](err); ok {
		hostnameMismatch(d, he, c)
		return true
	}
	if ie, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		certInvalid(d, ie, c)
		return true
	}
	if ve, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		d.set(problem.CodeUpstreamTLSCertInvalid, "cert_invalid",
			fmt.Sprintf("The upstream %s presented a certificate%s that the gateway could not verify: %v.", c.Peer, leafLabel(ve.UnverifiedCertificates), ve.Err),
			"Reissue the upstream's certificate so that it verifies against the trust set, or correct the trust set.")
		return true
	}
	if rh, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		notTLS(d, rh, c)
		return true
	}
	if a, ok := remoteAlert(err); ok {
		peerAlert(d, a, c)
		return true
	}
	if strings.Contains(err.Error(), "tls: server selected unsupported protocol version") {
		// The upstream answered with a version below our minimum instead
		// of sending an alert (what TLS 1.2-only stacks do when offered
		// only TLS 1.3). crypto/tls has no typed error for this.
		d.set(problem.CodeUpstreamTLSProtocolVersion, "protocol_version",
			fmt.Sprintf("The upstream %s answered with a TLS version below the gateway's minimum of %s.", c.Peer, versionName(c.MinVersion)),
			"Enable a newer TLS version on the upstream, or lower the API's upstream.tls.min_version if that is acceptable.")
		return true
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		d.set(problem.CodeUpstreamConnectRefused, "connect_refused",
			fmt.Sprintf("The upstream %s refused the TCP connection: nothing is listening on that port.", c.Peer),
			"Check that the upstream is running and that the target's host and port are correct.")
		return true
	}
	if isTimeout(err) {
		timeout(d, err, c)
		return true
	}
	if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Op == "dial" {
		d.set(problem.CodeUpstreamConnectFailed, "connect_failed",
			fmt.Sprintf("The gateway could not connect to the upstream %s: %v.", c.Peer, oe.Err),
			"Check DNS for the target's host, and routing and firewalls between the gateway and the upstream.")
		return true
	}
	if _, ok := errors.AsType[*net.DNSError](err); ok {
		d.set(problem.CodeUpstreamConnectFailed, "connect_failed",
			fmt.Sprintf("The gateway could not resolve the upstream %s: %v.", c.Peer, err),
			"Check the target's host name and the gateway's DNS resolver.")
		return true
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		connectionClosed(d, c)
		return true
	}
	return false
}

func (d *Diagnosis) set(code, reason, plain, fix string) {
	d.Code, d.Reason, d.Plain, d.Fix = code, reason, plain, fix
}

// unknownAuthority explains a chain that reaches no trust anchor. presented
// is the number of certificates the upstream sent (0: unknown): a leaf sent
// alone and not self-signed may be the classic missing intermediate, which
// the message then mentions (it cannot tell that from a leaf issued
// directly by an untrusted CA).
func unknownAuthority(d *Diagnosis, ua x509.UnknownAuthorityError, presented int, c *UpstreamContext) {
	issuer, leaf := "an unknown issuer", ""
	alone := false
	if ua.Cert != nil {
		issuer = fmt.Sprintf("%q", ua.Cert.Issuer.String())
		leaf = fmt.Sprintf(" for %q", ua.Cert.Subject.String())
		alone = presented == 1 && !bytes.Equal(ua.Cert.RawIssuer, ua.Cert.RawSubject)
	}
	plain := fmt.Sprintf("The upstream %s presented a certificate%s issued by %s, which %s does not trust (%s).",
		c.Peer, leaf, issuer, trustLabel(c), trustedLabel(c))
	chain := "if that issuer is an intermediate, also make the upstream send its full chain"
	if alone {
		plain += " It sent no intermediate certificate."
		chain = "if that issuer is an intermediate CA under one you trust, make the upstream send its full chain (its certificate followed by the intermediates, e.g. fullchain.pem) instead"
	}
	d.set(problem.CodeUpstreamTLSUnknownAuthority, "unknown_authority", plain,
		fmt.Sprintf("Add the CA that issued the upstream's certificate (%s) to %s, or reissue the upstream's certificate from a CA in it; %s.",
			issuer, trustLabel(c), chain))
}

func hostnameMismatch(d *Diagnosis, he x509.HostnameError, c *UpstreamContext) {
	names := "no names"
	if he.Certificate != nil {
		names = certNames(he.Certificate)
	}
	d.set(problem.CodeUpstreamTLSHostnameMismatch, "hostname_mismatch",
		fmt.Sprintf("The upstream %s presented a certificate valid for %s, but the gateway checked the name %q.", c.Peer, names, he.Host),
		fmt.Sprintf("Set the API's upstream.tls.server_name to one of the certificate's names, or reissue the upstream's certificate with %q as a subject alternative name.", he.Host))
}

func certInvalid(d *Diagnosis, ie x509.CertificateInvalidError, c *UpstreamContext) {
	cert := ie.Cert
	what := "a certificate"
	if cert != nil {
		what = fmt.Sprintf("the certificate %q", cert.Subject.String())
		if cert.IsCA {
			what = fmt.Sprintf("the CA certificate %q in its chain", cert.Subject.String())
		}
	}
	if ie.Reason == x509.Expired && cert != nil {
		window := fmt.Sprintf("valid from %s to %s", stamp(cert.NotBefore), stamp(cert.NotAfter))
		if time.Now().Before(cert.NotBefore) {
			d.set(problem.CodeUpstreamTLSCertNotYetValid, "cert_not_yet_valid",
				fmt.Sprintf("The upstream %s presented %s, which is not valid until %s (%s).", c.Peer, what, stamp(cert.NotBefore), window),
				"Check the clocks of the gateway and the upstream, or reissue the certificate with a validity that has begun.")
			return
		}
		d.set(problem.CodeUpstreamTLSCertExpired, "cert_expired",
			fmt.Sprintf("The upstream %s presented %s, which expired at %s (%s).", c.Peer, what, stamp(cert.NotAfter), window),
			"Renew the upstream's certificate and reload the upstream; if it looks current, check the gateway's clock.")
		return
	}
	d.set(problem.CodeUpstreamTLSCertInvalid, "cert_invalid",
		fmt.Sprintf("The upstream %s presented %s that is not acceptable: %v.", c.Peer, what, ie),
		"Reissue the upstream's certificate as a TLS server certificate (serverAuth usage, signed by a CA allowed to issue it).")
}

func notTLS(d *Diagnosis, rh tls.RecordHeaderError, c *UpstreamContext) {
	answer := "bytes that are not a TLS record"
	if strings.HasPrefix(string(rh.RecordHeader[:]), "HTTP/") {
		answer = "a plain-text HTTP response"
	}
	d.set(problem.CodeUpstreamTLSNotTLS, "not_tls",
		fmt.Sprintf("The upstream %s answered the gateway's TLS handshake with %s, so it does not speak TLS on that port.", c.Peer, answer),
		"Use an http:// target if the upstream really serves plain HTTP, or point the https:// target at the upstream's TLS port.")
}

// peerAlert explains a fatal alert the upstream sent. Go servers send
// certificate_required (TLS 1.3) or handshake_failure (TLS 1.2) when a
// client sends no certificate, and unknown_ca, certificate_expired or
// bad_certificate when it cannot verify the one sent; other stacks mostly
// send bad_certificate or handshake_failure for both.
func peerAlert(d *Diagnosis, a tls.AlertError, c *UpstreamContext) {
	name := alertName(a)
	askedFor := ""
	if len(c.AcceptableCAs) > 0 {
		askedFor = "; it asks for certificates issued by " + strings.Join(c.AcceptableCAs, "; ")
	}
	switch {
	case a == alertProtocolVersion:
		d.set(problem.CodeUpstreamTLSProtocolVersion, "protocol_version",
			fmt.Sprintf("The upstream %s refused the handshake with TLS alert %q: it supports no TLS version at or above the gateway's minimum of %s.", c.Peer, name, versionName(c.MinVersion)),
			"Enable a newer TLS version on the upstream, or lower the API's upstream.tls.min_version if that is acceptable.")
	case !c.HaveClientCert && (a == alertCertificateRequired || a == alertBadCertificate ||
		(a == alertHandshakeFailure && len(c.AcceptableCAs) > 0)):
		d.set(problem.CodeUpstreamTLSClientCertRequired, "client_cert_required",
			fmt.Sprintf("The upstream %s requires a client certificate (TLS alert %q), but API %q has no client certificate configured for the gateway%s.", c.Peer, name, c.API, askedFor),
			"Configure the API's upstream.tls.client_certificate with a certificate issued by a CA the upstream trusts.")
	case c.HaveClientCert && isCertAlert(a):
		d.set(problem.CodeUpstreamTLSClientCertRejected, "client_cert_rejected",
			fmt.Sprintf("The upstream %s rejected the gateway's client certificate %q issued by %q with TLS alert %q%s.", c.Peer, c.ClientCertSubject, c.ClientCertIssuer, name, askedFor),
			fmt.Sprintf("Add the gateway's issuer %q to the upstream's trust store, or give API %q a client certificate from a CA the upstream trusts (and check that it is current and carries the clientAuth usage).", c.ClientCertIssuer, c.API))
	case a == alertUnrecognizedName:
		d.set(problem.CodeUpstreamTLSHandshake, "unrecognized_name",
			fmt.Sprintf("The upstream %s does not serve the name %q sent as SNI (TLS alert %q).", c.Peer, c.ServerName, name),
			"Set the API's upstream.tls.server_name to a name the upstream serves.")
	default:
		d.set(problem.CodeUpstreamTLSHandshake, "handshake_failed",
			fmt.Sprintf("The upstream %s aborted the TLS handshake with alert %q.", c.Peer, name),
			fmt.Sprintf("Compare the upstream's TLS settings (versions, cipher suites, ALPN, client-certificate requirement) with the gateway's; `portcullis doctor upstream --api %s` shows the handshake.", c.API))
	}
}

func timeout(d *Diagnosis, err error, c *UpstreamContext) {
	msg := err.Error()
	switch oe, dial := errors.AsType[*net.OpError](err); {
	case dial && oe.Op == "dial":
		d.set(problem.CodeUpstreamTimeout, "connect_timeout",
			fmt.Sprintf("The upstream %s did not accept a TCP connection within the connect timeout.", c.Peer),
			"Check that the upstream host is up and that no firewall silently drops traffic to it, or raise the API's connect timeout.")
	// net/http reports these two phases only through its error text.
	case strings.Contains(msg, "TLS handshake timeout"):
		d.set(problem.CodeUpstreamTimeout, "handshake_timeout",
			fmt.Sprintf("The upstream %s accepted the connection but did not complete the TLS handshake within the handshake timeout.", c.Peer),
			"Check that the target port serves TLS and that the upstream is not overloaded, or raise the API's TLS handshake timeout.")
	case strings.Contains(msg, "timeout awaiting response headers"):
		d.set(problem.CodeUpstreamTimeout, "response_timeout",
			fmt.Sprintf("The upstream %s did not send response headers within the response header timeout.", c.Peer),
			"Find out why the upstream is slow for this request, or raise the API's response header timeout.")
	default:
		d.set(problem.CodeUpstreamTimeout, "timeout",
			fmt.Sprintf("The request to the upstream %s timed out: %v.", c.Peer, err),
			"Find out why the upstream is slow, or raise the API's upstream timeouts.")
	}
}

func connectionClosed(d *Diagnosis, c *UpstreamContext) {
	fix := "Check the upstream's logs for why it closed the connection."
	if !c.HaveClientCert {
		fix = "Check the upstream's logs for why it closed the connection; if it requires client certificates, configure the API's upstream.tls.client_certificate."
	} else if c.ClientCertIssuer != "" {
		fix = fmt.Sprintf("Check the upstream's logs for why it closed the connection; if it verifies client certificates, check that it trusts the gateway's issuer %q.", c.ClientCertIssuer)
	}
	d.set(problem.CodeUpstreamConnectFailed, "connection_closed",
		fmt.Sprintf("The upstream %s closed the connection before sending a response, without a TLS alert.", c.Peer),
		fix)
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}

// trustLabel names the trust set the way the operator configured it.
func trustLabel(c *UpstreamContext) string {
	if c.TrustName == "" {
		return "the system trust store"
	}
	return fmt.Sprintf("trust set %q", c.TrustName)
}

func trustedLabel(c *UpstreamContext) string {
	if len(c.TrustSubjects) == 0 {
		if c.TrustName == "" {
			return "it holds the operating system's public roots"
		}
		return "it holds no certificates"
	}
	return "it trusts " + strings.Join(c.TrustSubjects, "; ")
}

func leafLabel(certs []*x509.Certificate) string {
	if len(certs) == 0 {
		return ""
	}
	return fmt.Sprintf(" %q", certs[0].Subject.String())
}

// certNames lists the names a certificate is valid for. Go ignores the
// legacy common name since 1.15, so it is shown only to explain why a
// certificate without subject alternative names matches nothing.
func certNames(cert *x509.Certificate) string {
	var names []string
	for _, n := range cert.DNSNames {
		names = append(names, "DNS:"+n)
	}
	for _, ip := range cert.IPAddresses {
		names = append(names, "IP:"+ip.String())
	}
	for _, u := range cert.URIs {
		names = append(names, "URI:"+u.String())
	}
	if len(names) == 0 {
		if cert.Subject.CommonName != "" {
			return fmt.Sprintf("no names (it has only the legacy common name %q, which is not checked; subject alternative names are required)", cert.Subject.CommonName)
		}
		return "no names"
	}
	return strings.Join(names, ", ")
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func versionName(v uint16) string {
	if v == 0 {
		return "TLS 1.2"
	}
	return tls.VersionName(v)
}

// trustFailure explains a failure of the trust set's own verification, which
// runs for upstreams whose trust store has revocation configured.
func trustFailure(d *Diagnosis, te *trust.Error, c *UpstreamContext) {
	plain := fmt.Sprintf("The upstream %s presented a certificate that trust set %q rejects: %s.", c.Peer, te.Set, te.Detail)
	switch te.Reason {
	case trust.ReasonRevoked:
		d.set(problem.CodeUpstreamTLSCertRevoked, "cert_revoked", plain,
			"The upstream's certificate was revoked by its CA: give the upstream a new certificate.")
	case trust.ReasonRevocationUnavailable:
		d.set(problem.CodeUpstreamTLSRevocationUnavailable, "revocation_unavailable", plain,
			fmt.Sprintf("Make the CRL or OCSP responder of trust store %q reachable, or set its revocation_policy: fail_open if that risk is acceptable.", te.Set))
	case trust.ReasonExpired:
		d.set(problem.CodeUpstreamTLSCertExpired, "cert_expired", plain, "Renew the upstream's certificate (or the CA in its chain).")
	case trust.ReasonNotYetValid:
		d.set(problem.CodeUpstreamTLSCertNotYetValid, "cert_not_yet_valid", plain, "Check the clocks of the gateway and the CA, or wait until the certificate is valid.")
	case trust.ReasonWrongUsage:
		d.set(problem.CodeUpstreamTLSCertInvalid, "cert_invalid", plain, "Reissue the upstream's certificate with the serverAuth extended key usage.")
	default:
		d.set(problem.CodeUpstreamTLSUnknownAuthority, "unknown_authority", plain,
			fmt.Sprintf("Add the upstream's CA to trust store %q, or fix the upstream's chain (a missing intermediate is common).", te.Set))
	}
}
