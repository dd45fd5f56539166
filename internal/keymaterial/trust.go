package keymaterial

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	keystore "github.com/pavlo-v-chernykh/keystore-go/v4"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// StoreRef names a truststore file and its password.
type StoreRef struct {
	// Path is a JKS, JCEKS or PKCS#12 store (detected by content) or a PEM
	// bundle.
	Path string
	// Password is the store password; it is ignored for PEM bundles.
	Password []byte
}

// TrustSource lists where trusted certificates come from.
type TrustSource struct {
	// PEMFiles are PEM bundles; every CERTIFICATE block is trusted.
	PEMFiles []string
	// Truststores are keystores whose trusted entries are trusted.
	Truststores []StoreRef
	// Inline are PEM bundles held in memory (certificates uploaded through
	// the admin API), each named for messages.
	Inline []InlinePEM
}

// InlinePEM is a PEM bundle held in memory.
type InlinePEM struct {
	Name string
	Data []byte
}

// TrustSet is a loaded set of trust anchors.
type TrustSet struct {
	// Pool holds every certificate of Certs. Intermediate CAs are anchors in
	// their own right, so trusting an issuing CA without its root works.
	Pool *x509.CertPool
	// Certs are the trusted certificates, de-duplicated, in load order.
	Certs []*x509.Certificate
	// Sources describes each file loaded, for logs.
	Sources []string
}

// LoadTrust gathers the trusted certificates of src: every CERTIFICATE block
// of the PEM files, the trustedCertEntry entries of JKS stores, and the
// certificate bags keytool marks as trusted in PKCS#12 stores (or all
// certificate bags of a PKCS#12 store that holds no keys). Certificates that
// are only part of a key entry's chain are not trusted: a keystore's chain
// says who the key holder is, not whom to trust. It fails closed: a source
// that yields no certificate, or no certificate at all, is an error.
func LoadTrust(src TrustSource) (*TrustSet, error) {
	return loadTrust(src, defaultLimits)
}

func loadTrust(src TrustSource, lim limits) (*TrustSet, error) {
	ts := &TrustSet{Pool: x509.NewCertPool()}
	add := func(path string, format Format, certs []*x509.Certificate) {
		for _, c := range certs {
			if !hasCert(ts.Certs, c) {
				ts.Certs = append(ts.Certs, c)
				ts.Pool.AddCert(c)
			}
		}
		ts.Sources = append(ts.Sources, fmt.Sprintf("%s (%s, %d certificates)", path, format, len(certs)))
	}
	for _, path := range src.PEMFiles {
		data, err := readFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading trust bundle: %w", err)
		}
		if f := Detect(data); f != FormatPEM {
			return nil, fmt.Errorf("trust bundle %q is %s, not pem; list keystores as truststores with a password: %w", path, f, ErrUnsupportedFormat)
		}
		certs, err := trustFromStore(data, path, nil, lim)
		if err != nil {
			return nil, err
		}
		add(path, FormatPEM, certs)
	}
	for _, ref := range src.Truststores {
		data, err := readFile(ref.Path)
		if err != nil {
			return nil, fmt.Errorf("reading truststore: %w", err)
		}
		certs, err := trustFromStore(data, ref.Path, ref.Password, lim)
		if err != nil {
			return nil, err
		}
		add(ref.Path, Detect(data), certs)
	}
	for _, in := range src.Inline {
		certs, err := trustFromStore(in.Data, in.Name, nil, lim)
		if err != nil {
			return nil, err
		}
		add(in.Name, FormatPEM, certs)
	}
	if len(ts.Certs) == 0 {
		return nil, fmt.Errorf("trust: no pem files or truststores given: %w", ErrNoCertificates)
	}
	return ts, nil
}

// trustFromStore returns the trusted certificates of one file; name is the
// path used in messages.
func trustFromStore(data []byte, name string, password []byte, lim limits) ([]*x509.Certificate, error) {
	format := Detect(data)
	var (
		certs []*x509.Certificate
		err   error
	)
	switch format {
	case FormatPEM:
		certs, err = pemCertificates(data, "bundle")
		if err == nil && len(certs) == 0 {
			err = fmt.Errorf("no CERTIFICATE block: %w", ErrNoCertificates)
		}
	case FormatJKS:
		certs, err = trustFromJKS(data, password)
	case FormatPKCS12:
		certs, err = trustFromPKCS12(data, password, lim)
	case FormatJCEKS:
		certs, err = trustFromJCEKS(data, name, password, lim)
	default:
		err = fmt.Errorf("content is not pem, pkcs12, jks or jceks: %w", ErrUnsupportedFormat)
	}
	if err != nil {
		return nil, fmt.Errorf("trust source %q (%s): %w", name, format, err)
	}
	return certs, nil
}

func trustFromJKS(data, password []byte) ([]*x509.Certificate, error) {
	st, err := loadJKS(data, password)
	if err != nil {
		return nil, err
	}
	keys, trusted := st.aliases()
	var certs []*x509.Certificate
	for _, a := range trusted {
		e, err := st.ks.GetTrustedCertificateEntry(a)
		if err != nil {
			return nil, fmt.Errorf("alias %q: %v: %w", a, err, ErrCorrupt)
		}
		c, err := jksCertificates([]keystore.Certificate{e.Certificate})
		if err != nil {
			return nil, fmt.Errorf("alias %q: %w", a, err)
		}
		certs = append(certs, c...)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("store holds no trusted certificate entries, only key entries (%s) whose chains are not trusted; add CAs with `keytool -importcert -trustcacerts`: %w", quoteList(keys), ErrNoCertificates)
	}
	return certs, nil
}

func trustFromJCEKS(data []byte, name string, password []byte, lim limits) ([]*x509.Certificate, error) {
	st, err := loadJCEKS(data, password, name, lim)
	if err != nil {
		return nil, err
	}
	keys, trusted := st.aliases()
	var certs []*x509.Certificate
	for _, a := range trusted {
		c, err := st.chain(a)
		if err != nil {
			return nil, fmt.Errorf("alias %q: %w", a, err)
		}
		certs = append(certs, c...)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("store holds no trusted certificate entries, only key entries (%s) whose chains are not trusted; add CAs with `keytool -importcert -trustcacerts`: %w", quoteList(keys), ErrNoCertificates)
	}
	return certs, nil
}

func trustFromPKCS12(data, password []byte, lim limits) ([]*x509.Certificate, error) {
	st, err := parsePKCS12(data, password, lim)
	if err != nil {
		return nil, err
	}
	if len(st.skipped) > 0 {
		// go-pkcs12 reads truststores only when every bag carries keytool's
		// trust attribute, which files needing this fallback (OpenSSL
		// -legacy) lack, so this mostly turns into the hint below.
		certs, err := pkcs12.DecodeTrustStore(data, string(password))
		if errors.Is(err, pkcs12.ErrIncorrectPassword) {
			return nil, fmt.Errorf("cannot decrypt with the given password: %w", ErrWrongPassword)
		}
		if err != nil {
			return nil, fmt.Errorf("the store uses %s, which is not supported (%v); re-export it with current OpenSSL defaults (no -legacy) or `keytool -importkeystore -deststoretype pkcs12`: %w",
				strings.Join(st.skipped, ", "), err, ErrUnsupportedFormat)
		}
		return certs, nil
	}
	var certs []*x509.Certificate
	for _, c := range st.certs {
		// Without keys every certificate is meant as an anchor (OpenSSL
		// -nokeys exports carry no trust attribute); with keys, only those
		// keytool marked as trusted entries are.
		if len(st.keys) == 0 || c.trusted {
			certs = append(certs, c.cert)
		}
	}
	if len(certs) == 0 {
		if len(st.keys) > 0 {
			return nil, fmt.Errorf("store holds only key entries and their chains, no trusted certificate entries; add CAs with `keytool -importcert -trustcacerts`: %w", ErrNoCertificates)
		}
		return nil, fmt.Errorf("store holds no certificates: %w", ErrNoCertificates)
	}
	return certs, nil
}
