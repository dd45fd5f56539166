package keymaterial

import (
	"bytes"
	"encoding/pem"
)

// Format is a key-material container format, as detected from content.
type Format string

// The formats Detect tells apart.
const (
	FormatPEM     Format = "pem"
	FormatPKCS12  Format = "pkcs12"
	FormatJKS     Format = "jks"
	FormatJCEKS   Format = "jceks"
	FormatUnknown Format = "unknown"
)

var (
	magicJKS   = []byte{0xfe, 0xed, 0xfe, 0xed}
	magicJCEKS = []byte{0xce, 0xce, 0xce, 0xce}
	// DER of the PKCS#7 data and signedData content types, the only two
	// types a PFX's authSafe may have (RFC 7292 §4).
	derOIDData       = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01}
	derOIDSignedData = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02}
)

// Detect returns the format of data judged by its content alone, never by a
// file name: Java 9+ keytool writes PKCS#12 even into files named .jks.
// JKS and JCEKS are recognised by their magic numbers, PKCS#12 by the DER
// header of a PFX (a SEQUENCE holding version 3 and a data or signedData
// ContentInfo), and PEM by a parsable "-----BEGIN" block. Only the header of
// a PFX is examined, so a truncated PKCS#12 file is still reported as pkcs12
// and fails later as corrupt rather than as an unknown format.
func Detect(data []byte) Format {
	switch {
	case bytes.HasPrefix(data, magicJKS):
		return FormatJKS
	case bytes.HasPrefix(data, magicJCEKS):
		return FormatJCEKS
	case looksLikePFX(data):
		return FormatPKCS12
	case looksLikePEM(data):
		return FormatPEM
	default:
		return FormatUnknown
	}
}

// looksLikePFX checks the PFX prefix: SEQUENCE { INTEGER 3, SEQUENCE { OID
// data|signedData ... } ... }. Lengths may exceed the data (truncation) and
// may be indefinite (BER), because only the shape matters here.
func looksLikePFX(data []byte) bool {
	rest, ok := enterHeader(data, 0x30)
	if !ok || !bytes.HasPrefix(rest, []byte{0x02, 0x01, 0x03}) {
		return false
	}
	rest, ok = enterHeader(rest[3:], 0x30)
	if !ok {
		return false
	}
	return bytes.HasPrefix(rest, derOIDData) || bytes.HasPrefix(rest, derOIDSignedData)
}

// enterHeader skips the tag and length of a TLV whose tag is want and returns
// what follows the header. It does not require the content to be present.
func enterHeader(b []byte, want byte) ([]byte, bool) {
	if len(b) < 2 || b[0] != want {
		return nil, false
	}
	l := b[1]
	switch {
	case l < 0x80, l == 0x80:
		return b[2:], true
	default:
		n := int(l & 0x7f)
		if n > 4 || len(b) < 2+n {
			return nil, false
		}
		return b[2+n:], true
	}
}

func looksLikePEM(data []byte) bool {
	i := bytes.Index(data, []byte("-----BEGIN "))
	if i < 0 {
		return false
	}
	block, _ := pem.Decode(data[i:])
	return block != nil
}
