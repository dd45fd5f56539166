package tlsdiag

import (
	"strconv"
	"strings"
)

// PinMismatchError reports that an upstream's leaf certificate carries a
// public key none of the configured pins match. Pins are the standard base64
// encoding of the SHA-256 digest of the certificate's SubjectPublicKeyInfo.
//
// The upstream package returns it from tls.Config.VerifyConnection, so the
// handshake fails closed and Upstream can name both the key seen and the keys
// expected.
type PinMismatchError struct {
	// Got is the pin of the key the upstream presented.
	Got string
	// Want lists the configured pins; any one of them would have passed.
	Want []string
}

func (e *PinMismatchError) Error() string {
	return "upstream certificate key " + e.Got + " matches none of the " +
		strconv.Itoa(len(e.Want)) + " configured pins (" + strings.Join(e.Want, ", ") + ")"
}
