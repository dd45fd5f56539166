package auth

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
)

// ForwardedCertHeaders are the headers that carry a client certificate to
// an upstream. StripForwardedCertHeaders removes every incoming copy.
var ForwardedCertHeaders = []string{"Client-Cert", "Client-Cert-Chain", "X-Forwarded-Client-Cert"}

// RFC 9440 and Envoy header names as the pipeline writes them.
const (
	headerClientCert      = "Client-Cert"
	headerClientCertChain = "Client-Cert-Chain"
	headerXFCC            = "X-Forwarded-Client-Cert"
)

// StripForwardedCertHeaders deletes from h every header named in
// ForwardedCertHeaders or extra. Names compare case-insensitively and with
// '-' and '_' treated alike, because many backends (CGI, WSGI, PHP, nginx
// with underscores_in_headers) fold X_Forwarded_Client_Cert into the same
// variable as X-Forwarded-Client-Cert; a spoofed underscore spelling must
// not survive. It must run before anything reads these headers.
func StripForwardedCertHeaders(h http.Header, extra ...string) {
	for k := range h {
		if sameHeaderName(k, ForwardedCertHeaders) || sameHeaderName(k, extra) {
			delete(h, k)
		}
	}
}

func sameHeaderName(k string, names []string) bool {
	for _, n := range names {
		if len(n) != len(k) {
			continue
		}
		eq := true
		for i := 0; i < len(k) && eq; i++ {
			a, b := foldHeaderByte(k[i]), foldHeaderByte(n[i])
			eq = a == b
		}
		if eq {
			return true
		}
	}
	return false
}

func foldHeaderByte(c byte) byte {
	switch {
	case c == '_':
		return '-'
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	}
	return c
}

// SetRFC9440 replaces the RFC 9440 headers with the verified chain, leaf
// first. Client-Cert is the leaf's DER as a structured-field byte sequence
// (":base64:", RFC 8941 §3.3.5). Client-Cert-Chain lists every other
// certificate of chain in order, trust anchor included: RFC 9440 §2.3 allows
// omitting the root only when the origin is known to hold it, which the
// gateway cannot know. It is omitted when chain holds only the leaf, since
// an empty structured-field list is sent as no field at all. With an empty
// chain both headers are removed. chain must be the verified chain, never
// what the client sent.
func SetRFC9440(h http.Header, chain []*x509.Certificate) {
	h.Del(headerClientCert)
	h.Del(headerClientCertChain)
	if len(chain) == 0 {
		return
	}
	h[headerClientCert] = []string{byteSequence(chain[0].Raw)}
	if len(chain) == 1 {
		return
	}
	size := 0
	for _, c := range chain[1:] {
		size += base64.StdEncoding.EncodedLen(len(c.Raw)) + 4
	}
	var b strings.Builder
	b.Grow(size)
	for i, c := range chain[1:] {
		if i > 0 {
			b.WriteString(", ")
		}
		writeByteSequence(&b, c.Raw)
	}
	h[headerClientCertChain] = []string{b.String()}
}

func byteSequence(der []byte) string {
	var b strings.Builder
	b.Grow(base64.StdEncoding.EncodedLen(len(der)) + 2)
	writeByteSequence(&b, der)
	return b.String()
}

func writeByteSequence(b *strings.Builder, der []byte) {
	b.WriteByte(':')
	enc := base64.NewEncoder(base64.StdEncoding, b)
	_, _ = enc.Write(der)
	_ = enc.Close()
	b.WriteByte(':')
}

// ParseRFC9440 decodes a Client-Cert field value: one structured-field byte
// sequence holding one DER certificate. It is strict: apart from leading
// and trailing spaces (which RFC 8941 parsing discards), the value must be
// ':' + padded standard base64 + ':'; parameters, lists, whitespace inside
// and trailing bytes after the certificate are errors wrapping
// ErrBadRFC9440.
func ParseRFC9440(v string) (*x509.Certificate, error) {
	v = strings.Trim(v, " ")
	der, err := parseByteSequence(v)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRFC9440, err)
	}
	return cert, nil
}

// ParseRFC9440Chain decodes a Client-Cert-Chain field value: a
// comma-separated list of byte sequences, each one DER certificate. Join
// several field lines with ", " before calling it. An empty value is an
// empty chain. Like ParseRFC9440 it is strict and fails with an error
// wrapping ErrBadRFC9440.
func ParseRFC9440Chain(v string) ([]*x509.Certificate, error) {
	v = strings.Trim(v, " ")
	if v == "" {
		return nil, nil
	}
	var out []*x509.Certificate
	for i, item := range strings.Split(v, ",") {
		c, err := ParseRFC9440(strings.Trim(item, " \t"))
		if err != nil {
			return nil, fmt.Errorf("item %d of Client-Cert-Chain: %w", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func parseByteSequence(v string) ([]byte, error) {
	if len(v) < 2 || v[0] != ':' || v[len(v)-1] != ':' {
		return nil, fmt.Errorf("%w: want a colon, padded base64 and a colon", ErrBadRFC9440)
	}
	body := v[1 : len(v)-1]
	if strings.IndexByte(body, ':') >= 0 {
		return nil, fmt.Errorf("%w: more than one byte sequence or parameters", ErrBadRFC9440)
	}
	// encoding/base64 skips CR and LF even in strict mode; a field value
	// cannot carry them, so their presence means the input is not one.
	if strings.ContainsAny(body, "\r\n") {
		return nil, fmt.Errorf("%w: line break inside the byte sequence", ErrBadRFC9440)
	}
	der, err := base64.StdEncoding.Strict().DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("%w: base64: %v", ErrBadRFC9440, err)
	}
	if len(der) == 0 {
		return nil, fmt.Errorf("%w: empty byte sequence", ErrBadRFC9440)
	}
	return der, nil
}

// SetXFCC replaces X-Forwarded-Client-Cert with one element describing the
// verified leaf, chain[0], in Envoy's format (as Envoy's SANITIZE_SET does):
//
//	Hash=<hex sha256>;Cert="<url-encoded PEM>";Subject="<DN>";URI=<uri>;DNS=<dns>
//
// URI and DNS repeat once per SAN. Subject and Cert are always quoted; other
// values are quoted when they contain ',', ';', '=', '"', '\\' or a space.
// Inside quotes '"' and '\\' are escaped with a backslash (an RFC 9110
// quoted-string, of which Envoy's rule is the '"' part). Cert is
// percent-encoded except for RFC 3986 unreserved characters, so
// query-style decoders ('+' as space) and path-style decoders agree. A
// control character in the subject is written as an RFC 4514 "\HH" escape;
// a SAN holding one is left out, since no header may carry it. Only the
// leaf is sent; use SetRFC9440 to forward the chain. With an empty chain
// the header is removed.
func SetXFCC(h http.Header, chain []*x509.Certificate) {
	h.Del(headerXFCC)
	if len(chain) == 0 {
		return
	}
	leaf := chain[0]
	sum := sha256.Sum256(leaf.Raw)
	var b strings.Builder
	b.Grow(3 * base64.StdEncoding.EncodedLen(len(leaf.Raw)))
	b.WriteString("Hash=")
	b.WriteString(hex.EncodeToString(sum[:]))
	b.WriteString(`;Cert="`)
	percentEncode(&b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}))
	b.WriteString(`";Subject=`)
	writeQuoted(&b, escapeDNControls(leaf.Subject.String()))
	for _, u := range leaf.URIs {
		writeXFCCPair(&b, "URI", u.String())
	}
	for _, d := range leaf.DNSNames {
		writeXFCCPair(&b, "DNS", d)
	}
	h[headerXFCC] = []string{b.String()}
}

func writeXFCCPair(b *strings.Builder, key, v string) {
	if hasControl(v) {
		return
	}
	b.WriteByte(';')
	b.WriteString(key)
	b.WriteByte('=')
	if strings.ContainsAny(v, `,;="\ `) {
		writeQuoted(b, v)
	} else {
		b.WriteString(v)
	}
}

func writeQuoted(b *strings.Builder, v string) {
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// escapeDNControls rewrites control characters, which pkix.Name.String
// leaves as they are, into RFC 4514 hex escapes so the DN stays the same
// name and can travel in a header.
func escapeDNControls(s string) string {
	if !hasControl(s) {
		return s
	}
	const digits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			b.WriteByte('\\')
			b.WriteByte(digits[c>>4])
			b.WriteByte(digits[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func percentEncode(b *strings.Builder, data []byte) {
	const digits = "0123456789ABCDEF"
	for _, c := range data {
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(digits[c>>4])
		b.WriteByte(digits[c&15])
	}
}

// Thumbprint returns the RFC 8705 §3.1 certificate thumbprint, the value of
// a bound token's cnf "x5t#S256": the SHA-256 of the certificate's DER,
// base64url-encoded without padding (not hex).
func Thumbprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
