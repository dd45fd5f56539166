// Package testpki builds throw-away certificate authorities and leaf
// certificates for tests, so no private key is ever checked in.
//
// Everything is generated in memory at test time: a CA, optional intermediates,
// and leaves with the options a test needs (client or server usage, names,
// validity in the past or future, RSA instead of ECDSA).
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority that can issue leaves and intermediates.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// Chain is the CA's own chain above it (empty for a root), nearest first.
	Chain []*x509.Certificate
}

// Leaf is an issued end-entity certificate with its key.
type Leaf struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// Chain holds the intermediates between Cert and the root, nearest first
	// (the root itself is not included).
	Chain []*x509.Certificate
}

type options struct {
	dns       []string
	ips       []net.IP
	uris      []*url.URL
	eku       []x509.ExtKeyUsage
	notBefore time.Time
	notAfter  time.Time
	rsaBits   int
	ou        []string
}

// Option changes how a certificate is made.
type Option func(*options)

// DNS adds DNS subject alternative names.
func DNS(names ...string) Option { return func(o *options) { o.dns = append(o.dns, names...) } }

// IP adds IP address subject alternative names.
func IP(addrs ...string) Option {
	return func(o *options) {
		for _, a := range addrs {
			o.ips = append(o.ips, net.ParseIP(a))
		}
	}
}

// URI adds a URI subject alternative name, e.g. a SPIFFE ID.
func URI(raw string) Option {
	return func(o *options) {
		u, err := url.Parse(raw)
		if err != nil {
			panic(err)
		}
		o.uris = append(o.uris, u)
	}
}

// OU sets the subject's organisational units.
func OU(units ...string) Option { return func(o *options) { o.ou = units } }

// Client adds the clientAuth extended key usage.
func Client() Option {
	return func(o *options) { o.eku = append(o.eku, x509.ExtKeyUsageClientAuth) }
}

// Server adds the serverAuth extended key usage.
func Server() Option {
	return func(o *options) { o.eku = append(o.eku, x509.ExtKeyUsageServerAuth) }
}

// Validity sets the validity window.
func Validity(notBefore, notAfter time.Time) Option {
	return func(o *options) { o.notBefore, o.notAfter = notBefore, notAfter }
}

// Expired makes a certificate whose validity ended a day ago.
func Expired() Option {
	return Validity(time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
}

// NotYetValid makes a certificate whose validity starts tomorrow.
func NotYetValid() Option {
	return Validity(time.Now().Add(24*time.Hour), time.Now().Add(48*time.Hour))
}

// RSA makes an RSA key of the given size instead of ECDSA P-256.
func RSA(bits int) Option { return func(o *options) { o.rsaBits = bits } }

func build(opts []Option) options {
	o := options{notBefore: time.Now().Add(-time.Hour), notAfter: time.Now().Add(24 * time.Hour)}
	for _, f := range opts {
		f(&o)
	}
	return o
}

func newKey(t testing.TB, o options) crypto.Signer {
	t.Helper()
	var (
		k   crypto.Signer
		err error
	)
	if o.rsaBits > 0 {
		k, err = rsa.GenerateKey(rand.Reader, o.rsaBits)
	} else {
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatalf("testpki: generating key: %v", err)
	}
	return k
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatalf("testpki: serial: %v", err)
	}
	return n
}

func subjectKeyID(pub crypto.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha256.Sum256(der)
	return sum[:20]
}

// NewCA makes a self-signed root CA named cn.
func NewCA(t testing.TB, cn string, opts ...Option) *CA {
	t.Helper()
	o := build(append([]Option{Validity(time.Now().Add(-time.Hour), time.Now().Add(7*24*time.Hour))}, opts...))
	key := newKey(t, o)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Portcullis tests"}},
		NotBefore:             o.notBefore,
		NotAfter:              o.notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          subjectKeyID(key.Public()),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("testpki: creating CA %q: %v", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testpki: parsing CA %q: %v", cn, err)
	}
	return &CA{Cert: cert, Key: key}
}

// Intermediate makes an intermediate CA named cn signed by ca.
func (ca *CA) Intermediate(t testing.TB, cn string, opts ...Option) *CA {
	t.Helper()
	o := build(opts)
	key := newKey(t, o)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Portcullis tests"}},
		NotBefore:             o.notBefore,
		NotAfter:              o.notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          subjectKeyID(key.Public()),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatalf("testpki: creating intermediate %q: %v", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testpki: parsing intermediate %q: %v", cn, err)
	}
	return &CA{Cert: cert, Key: key, Chain: ca.chainBelow()}
}

// chainBelow is the chain a certificate issued by ca presents after its own:
// ca and the intermediates above it, without the root.
func (ca *CA) chainBelow() []*x509.Certificate {
	if ca.Cert.CheckSignatureFrom(ca.Cert) == nil {
		return nil
	}
	return append([]*x509.Certificate{ca.Cert}, ca.Chain...)
}

// Issue makes a leaf certificate named cn signed by ca. Without Client or
// Server options the leaf carries both usages.
func (ca *CA) Issue(t testing.TB, cn string, opts ...Option) *Leaf {
	t.Helper()
	o := build(opts)
	if len(o.eku) == 0 {
		o.eku = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	key := newKey(t, o)
	ku := x509.KeyUsageDigitalSignature
	if o.rsaBits > 0 {
		ku |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Portcullis tests"}, OrganizationalUnit: o.ou},
		NotBefore:    o.notBefore,
		NotAfter:     o.notAfter,
		KeyUsage:     ku,
		ExtKeyUsage:  o.eku,
		DNSNames:     o.dns,
		IPAddresses:  o.ips,
		URIs:         o.uris,
		SubjectKeyId: subjectKeyID(key.Public()),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatalf("testpki: issuing %q: %v", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testpki: parsing %q: %v", cn, err)
	}
	return &Leaf{Cert: cert, Key: key, Chain: ca.chainBelow()}
}

// Pool returns a certificate pool holding only ca.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// CertPEM returns the CA certificate as PEM.
func (ca *CA) CertPEM() []byte { return CertsPEM(ca.Cert) }

// TLS returns the leaf as a tls.Certificate carrying its chain.
func (l *Leaf) TLS() tls.Certificate {
	c := tls.Certificate{Certificate: [][]byte{l.Cert.Raw}, PrivateKey: l.Key, Leaf: l.Cert}
	for _, ch := range l.Chain {
		c.Certificate = append(c.Certificate, ch.Raw)
	}
	return c
}

// CertPEM returns the leaf certificate followed by its chain as PEM.
func (l *Leaf) CertPEM() []byte {
	return CertsPEM(append([]*x509.Certificate{l.Cert}, l.Chain...)...)
}

// KeyPEM returns the private key as unencrypted PKCS#8 PEM.
func (l *Leaf) KeyPEM() []byte { return KeyPEM(l.Key) }

// WriteFiles writes the leaf (with chain) and key as PEM into dir, named
// NAME.crt and NAME.key, and returns their paths.
func (l *Leaf) WriteFiles(t testing.TB, dir, name string) (certPath, keyPath string) {
	t.Helper()
	certPath = filepath.Join(dir, name+".crt")
	keyPath = filepath.Join(dir, name+".key")
	WriteFile(t, certPath, l.CertPEM())
	WriteFile(t, keyPath, l.KeyPEM())
	return certPath, keyPath
}

// WriteCA writes the CA certificate as PEM to dir/NAME.crt and returns the path.
func (ca *CA) WriteCA(t testing.TB, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name+".crt")
	WriteFile(t, p, ca.CertPEM())
	return p
}

// CertsPEM encodes certificates as consecutive PEM blocks.
func CertsPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// KeyPEM encodes a private key as unencrypted PKCS#8 PEM.
func KeyPEM(key crypto.Signer) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// WriteFile writes data to path with 0600 permissions or fails the test.
func WriteFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("testpki: writing %s: %v", path, err)
	}
}
