package tlsdiag

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
)

// TLS alert numbers (RFC 8446 §6 and RFC 5246 §7.2) that change a diagnosis.
const (
	alertHandshakeFailure       tls.AlertError = 40
	alertBadCertificate         tls.AlertError = 42
	alertUnsupportedCertificate tls.AlertError = 43
	alertCertificateRevoked     tls.AlertError = 44
	alertCertificateExpired     tls.AlertError = 45
	alertCertificateUnknown     tls.AlertError = 46
	alertUnknownCA              tls.AlertError = 48
	alertAccessDenied           tls.AlertError = 49
	alertProtocolVersion        tls.AlertError = 70
	alertUnrecognizedName       tls.AlertError = 112
	alertCertificateRequired    tls.AlertError = 116
)

// remoteAlert finds a fatal alert sent by the peer in err. crypto/tls reports
// a received alert as a *net.OpError with Op "remote error" wrapping an
// unexported type whose text equals that of tls.AlertError with the same
// number, so the number is recovered by comparing texts (this runs only on
// failed connections). A tls.AlertError in the chain (QUIC, or a future
// crypto/tls) is used directly.
func remoteAlert(err error) (tls.AlertError, bool) {
	if a, ok := errors.AsType[tls.AlertError](err); ok {
		return a, true
	}
	oe, ok := errors.AsType[*net.OpError](err)
	if !ok || oe.Op != "remote error" || oe.Err == nil {
		return 0, false
	}
	text := oe.Err.Error()
	for n := range 256 {
		if a := tls.AlertError(n); a.Error() == text {
			return a, true
		}
	}
	return 0, false
}

// alertName is the alert's text without crypto/tls's "tls: " prefix.
func alertName(a tls.AlertError) string {
	return strings.TrimPrefix(a.Error(), "tls: ")
}

// isCertAlert reports whether a is an alert a server sends about the
// client's certificate.
func isCertAlert(a tls.AlertError) bool {
	switch a {
	case alertBadCertificate, alertUnsupportedCertificate, alertCertificateRevoked,
		alertCertificateExpired, alertCertificateUnknown, alertUnknownCA,
		alertAccessDenied, alertCertificateRequired:
		return true
	}
	return false
}
