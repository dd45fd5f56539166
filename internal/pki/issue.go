package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// IssueOptions describes a leaf certificate to issue or request.
type IssueOptions struct {
	// Name is the subject common name. Required.
	Name string
	// DNS, IPs and URIs are the subject alternative names, for example a
	// SPIFFE ID as a URI.
	DNS  []string
	IPs  []net.IP
	URIs []*url.URL
	// Client and Server select the extended key usages. If neither is set,
	// the certificate is for both.
	Client, Server bool
	// Days is the validity in days; zero means DefaultLeafDays. The
	// certificate never outlives the issuing CA: NotAfter is cut to the CA's.
	Days int
	// KeyType is the key to generate; empty means KeyEC.
	KeyType KeyType
	// RSABits is the RSA modulus size for KeyRSA; zero means DefaultRSABits.
	RSABits int
}

// Issued is a freshly issued certificate with its key.
type Issued struct {
	// Cert is the leaf certificate.
	Cert *x509.Certificate
	// Key is the leaf private key.
	Key crypto.Signer
	// Chain holds the issuing CA and every certificate above it, nearest
	// first, ending with the root.
	Chain []*x509.Certificate
}

// SignOptions says how to sign a certificate signing request.
type SignOptions struct {
	// Client and Server select the extended key usages. If neither is set,
	// the certificate is for both.
	Client, Server bool
	// Days is the validity in days; zero means DefaultLeafDays.
	Days int
}

// extKeyUsages maps the Client/Server flags to EKUs; neither means both.
func extKeyUsages(client, server bool) []x509.ExtKeyUsage {
	if !client && !server {
		client, server = true, true
	}
	var eku []x509.ExtKeyUsage
	if server {
		eku = append(eku, x509.ExtKeyUsageServerAuth)
	}
	if client {
		eku = append(eku, x509.ExtKeyUsageClientAuth)
	}
	return eku
}

// validity turns a day count into a window starting slightly in the past.
func validity(days int) (time.Time, time.Time, error) {
	if days == 0 {
		days = DefaultLeafDays
	}
	if days < 0 {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: validity of %d days; it must be positive", ErrInvalidOption, days)
	}
	now := time.Now()
	return now.Add(-backdate), now.AddDate(0, 0, days), nil
}

// serverNames returns the SANs to use: the given ones, or, for a server
// certificate with neither DNS names nor IP addresses, the common name as a
// DNS name (or IP address), because TLS clients match names only against
// SANs. When server use was asked for explicitly and the name is not a host
// name, that is an error; when it is only implied (neither flag set) the
// certificate stays a client certificate in practice and no SAN is added.
func serverNames(name string, dns []string, ips []net.IP, client, server bool) ([]string, []net.IP, error) {
	if len(dns) > 0 || len(ips) > 0 || (client && !server) {
		return dns, ips, nil
	}
	if ip := net.ParseIP(name); ip != nil {
		return nil, []net.IP{ip}, nil
	}
	if validHostname(name) {
		return []string{name}, nil, nil
	}
	if server {
		return nil, nil, fmt.Errorf("%w: server certificate %q needs a DNS name or IP address: the name is not a host name, so give DNS names or IPs", ErrInvalidOption, name)
	}
	return nil, nil, nil
}

// validHostname reports whether s is a DNS name usable as a SAN: labels of
// letters, digits, '-' and '_' (which Go's verifier also accepts), at most
// 63 bytes each, with an optional leading "*." wildcard.
func validHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	s = strings.TrimPrefix(s, "*.")
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			default:
				return false
			}
		}
	}
	return true
}

func checkDNSNames(dns []string) error {
	for _, d := range dns {
		if !validHostname(d) {
			return fmt.Errorf("%w: DNS name %q is not a valid host name", ErrInvalidOption, d)
		}
	}
	return nil
}

// Issue generates a key pair and a leaf certificate for it, signed by the
// CA, with a random 128-bit serial, subject and authority key identifiers,
// and the requested SANs and extended key usages. A server certificate with
// no DNS name or IP address gets Name as a DNS SAN. The certificate is
// recorded in the CA's index before it is returned.
func (ca *CA) Issue(o IssueOptions) (*Issued, error) {
	if strings.TrimSpace(o.Name) == "" {
		return nil, fmt.Errorf("%w: a certificate needs a name", ErrInvalidOption)
	}
	if err := checkDNSNames(o.DNS); err != nil {
		return nil, err
	}
	dns, ips, err := serverNames(o.Name, o.DNS, o.IPs, o.Client, o.Server)
	if err != nil {
		return nil, err
	}
	notBefore, notAfter, err := validity(o.Days)
	if err != nil {
		return nil, err
	}
	key, err := generateKey(o.KeyType, o.RSABits)
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: o.Name},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              keyUsageFor(key.Public()),
		ExtKeyUsage:           extKeyUsages(o.Client, o.Server),
		BasicConstraintsValid: true,
		DNSNames:              dns,
		IPAddresses:           ips,
		URIs:                  o.URIs,
		SubjectKeyId:          ski,
	}
	cert, err := ca.sign(tmpl, key.Public())
	if err != nil {
		return nil, fmt.Errorf("issuing certificate %q: %w", o.Name, err)
	}
	return &Issued{Cert: cert, Key: key, Chain: ca.chainFromCA()}, nil
}

// chainFromCA returns the CA certificate followed by its own chain.
func (ca *CA) chainFromCA() []*x509.Certificate {
	return append([]*x509.Certificate{ca.Cert}, ca.Chain...)
}

// NewCSR generates a key pair and a PEM "CERTIFICATE REQUEST" for it with
// subject CN=Name and the requested SANs; as in Issue, a request for server
// use without DNS names or IPs carries Name as a DNS SAN. Days and the
// Client/Server usages are not encoded: the signer decides them (see
// SignOptions).
func NewCSR(o IssueOptions) (csrPEM []byte, key crypto.Signer, err error) {
	if strings.TrimSpace(o.Name) == "" {
		return nil, nil, fmt.Errorf("%w: a certificate request needs a name", ErrInvalidOption)
	}
	if err := checkDNSNames(o.DNS); err != nil {
		return nil, nil, err
	}
	dns, ips, err := serverNames(o.Name, o.DNS, o.IPs, o.Client, o.Server)
	if err != nil {
		return nil, nil, err
	}
	key, err = generateKey(o.KeyType, o.RSABits)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: o.Name},
		DNSNames:    dns,
		IPAddresses: ips,
		URIs:        o.URIs,
	}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating certificate request %q: %w", o.Name, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), key, nil
}

// ParseCSR reads a certificate signing request in PEM, with the header
// "CERTIFICATE REQUEST" or keytool's "NEW CERTIFICATE REQUEST", or in DER,
// and verifies its self-signature. Every failure wraps ErrBadCSR.
func ParseCSR(data []byte) (*x509.CertificateRequest, error) {
	der := data
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
			return nil, fmt.Errorf("%w: PEM block is %q, want \"CERTIFICATE REQUEST\" or \"NEW CERTIFICATE REQUEST\"", ErrBadCSR, block.Type)
		}
		der = block.Bytes
	} else if strings.Contains(string(data), "-----BEGIN") {
		return nil, fmt.Errorf("%w: malformed PEM", ErrBadCSR)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: signature does not verify: %v", ErrBadCSR, err)
	}
	return csr, nil
}

// SignCSR signs a certificate signing request (see ParseCSR for the accepted
// encodings) and records the certificate in the CA's index. The subject and
// the DNS, IP, URI and e-mail SANs are copied from the request; every other
// requested extension, notably basic constraints and key usages, is ignored,
// so a request can never obtain a CA certificate. A server certificate from
// a request without DNS or IP SANs gets the subject common name as a DNS SAN
// (as Issue does), because TLS clients match names only against SANs.
func (ca *CA) SignCSR(csrPEM []byte, o SignOptions) (*x509.Certificate, error) {
	csr, err := ParseCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	if err := checkPublicKey(csr.PublicKey); err != nil {
		return nil, fmt.Errorf("signing request for %q: %w", csr.Subject.String(), err)
	}
	dns, ips, err := serverNames(csr.Subject.CommonName, csr.DNSNames, csr.IPAddresses, o.Client, o.Server)
	if err != nil {
		return nil, fmt.Errorf("signing request for %q: %w", csr.Subject.String(), err)
	}
	notBefore, notAfter, err := validity(o.Days)
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(csr.PublicKey)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		RawSubject:            csr.RawSubject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              keyUsageFor(csr.PublicKey),
		ExtKeyUsage:           extKeyUsages(o.Client, o.Server),
		BasicConstraintsValid: true,
		DNSNames:              dns,
		IPAddresses:           ips,
		URIs:                  csr.URIs,
		EmailAddresses:        csr.EmailAddresses,
		SubjectKeyId:          ski,
	}
	cert, err := ca.sign(tmpl, csr.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("signing request for %q: %w", csr.Subject.String(), err)
	}
	return cert, nil
}
