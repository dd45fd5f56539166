package pki

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Names of the files in a CA directory.
const (
	// CertFile holds the CA certificate as PEM.
	CertFile = "ca.crt"
	// KeyFile holds the CA private key as PKCS#8 PEM, mode 0600, encrypted
	// when the CA was created with a key password.
	KeyFile = "ca.key"
	// ChainFile holds the CA certificate followed by its parents up to and
	// including the root, as PEM.
	ChainFile = "chain.pem"
	// IndexFile holds the JSON index of issued serials and the CRL number.
	IndexFile = "index.json"
)

// Default validity periods, in days.
const (
	DefaultRootDays         = 3650
	DefaultIntermediateDays = 1825
	// DefaultLeafDays is 397 days, the CA/Browser Forum ceiling for TLS
	// server certificates, which many clients enforce.
	DefaultLeafDays = 397
)

// backdate is subtracted from NotBefore so that peers with slightly slow
// clocks accept a certificate used right after it is issued.
const backdate = 5 * time.Minute

// CAOptions describes a CA to create.
type CAOptions struct {
	// Name is the subject common name, for example "apimanCA". Required.
	Name string
	// KeyType is the key to generate; empty means KeyEC.
	KeyType KeyType
	// RSABits is the RSA modulus size (2048, 3072 or 4096) when KeyType is
	// KeyRSA; zero means DefaultRSABits. It must be zero for KeyEC.
	RSABits int
	// Days is the validity in days; zero means DefaultRootDays for a root
	// and DefaultIntermediateDays for an intermediate. An intermediate never
	// outlives its parent: its validity is cut to the parent's NotAfter.
	Days int
	// KeyPassword encrypts ca.key (PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC).
	// Nil or empty leaves the key unencrypted.
	KeyPassword []byte
}

// CA is a certificate authority loaded from, and recording into, a
// directory. Its methods are safe for concurrent use within one process;
// they are not coordinated across processes.
type CA struct {
	// Cert is the CA certificate.
	Cert *x509.Certificate
	// Key is the CA private key.
	Key crypto.Signer
	// Chain holds the certificates above Cert, nearest first, up to and
	// including the root; it is empty for a root CA.
	Chain []*x509.Certificate
	// Dir is the CA directory holding the index.
	Dir string

	mu sync.Mutex
}

// InitCA creates a self-signed root CA in dir: the directory (mode 0700 if
// it is created), ca.crt, ca.key (mode 0600), chain.pem and index.json. It
// refuses with ErrExists if dir already holds any of these files, and
// removes what it wrote if it fails part-way.
func InitCA(dir string, o CAOptions) (*CA, error) {
	return initCA(dir, nil, o)
}

// InitIntermediate creates in dir an intermediate CA signed by parent, with
// a path length constraint of zero, so it can issue only leaf certificates.
// The intermediate is recorded in the parent's index before its files are
// written. Otherwise it behaves like InitCA.
func InitIntermediate(dir string, parent *CA, o CAOptions) (*CA, error) {
	if parent == nil {
		return nil, fmt.Errorf("%w: intermediate CA %q needs a parent CA", ErrInvalidOption, o.Name)
	}
	return initCA(dir, parent, o)
}

func initCA(dir string, parent *CA, o CAOptions) (*CA, error) {
	if strings.TrimSpace(o.Name) == "" {
		return nil, fmt.Errorf("%w: a CA needs a name", ErrInvalidOption)
	}
	days := o.Days
	if days == 0 {
		days = DefaultRootDays
		if parent != nil {
			days = DefaultIntermediateDays
		}
	}
	if days < 0 {
		return nil, fmt.Errorf("%w: validity of %d days; it must be positive", ErrInvalidOption, o.Days)
	}
	if err := prepareCADir(dir); err != nil {
		return nil, err
	}
	key, err := generateKey(o.KeyType, o.RSABits)
	if err != nil {
		return nil, err
	}
	keyPEM, err := MarshalPrivateKeyPEM(key, o.KeyPassword)
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: o.Name},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.AddDate(0, 0, days),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          ski,
	}
	var cert *x509.Certificate
	var chain []*x509.Certificate
	if parent == nil {
		tmpl.SerialNumber, err = randomSerial()
		if err != nil {
			return nil, err
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			return nil, fmt.Errorf("creating CA certificate %q: %w", o.Name, err)
		}
		if cert, err = x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("parsing CA certificate %q: %w", o.Name, err)
		}
	} else {
		tmpl.MaxPathLen = 0
		tmpl.MaxPathLenZero = true
		if cert, err = parent.sign(tmpl, key.Public()); err != nil {
			return nil, fmt.Errorf("creating intermediate CA %q: %w", o.Name, err)
		}
		chain = append([]*x509.Certificate{parent.Cert}, parent.Chain...)
	}

	var written []string
	cleanup := func() {
		for _, p := range written {
			os.Remove(p)
		}
	}
	ix := &index{}
	ixData, err := ix.bytes()
	if err != nil {
		return nil, err
	}
	files := []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{KeyFile, keyPEM, 0o600},
		{CertFile, encodeCertsPEM(cert), 0o644},
		{ChainFile, encodeCertsPEM(append([]*x509.Certificate{cert}, chain...)...), 0o644},
		{IndexFile, ixData, 0o600},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := writeNewFile(p, f.data, f.perm); err != nil {
			cleanup()
			return nil, fmt.Errorf("creating CA in %q: %w", dir, err)
		}
		written = append(written, p)
	}
	return &CA{Cert: cert, Key: key, Chain: chain, Dir: dir}, nil
}

// prepareCADir creates dir with mode 0700, or accepts an existing directory
// that holds none of the CA files.
func prepareCADir(dir string) error {
	if dir == "" {
		return fmt.Errorf("%w: empty CA directory", ErrInvalidOption)
	}
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("creating CA directory %q: %w", dir, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("checking CA directory %q: %w", dir, err)
	case !st.IsDir():
		return fmt.Errorf("CA directory %q is not a directory: %w", dir, ErrExists)
	}
	for _, name := range []string{CertFile, KeyFile, ChainFile, IndexFile} {
		if err := refuseExisting(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("CA directory %q already holds a CA: %w", dir, err)
		}
	}
	return nil
}

// LoadCA reads the CA in dir. keyPassword decrypts an encrypted ca.key; a
// missing password is ErrPasswordRequired and a wrong one ErrWrongPassword.
// It checks that the key belongs to the certificate, that the certificate is
// a CA, that chain.pem starts with it, and that index.json parses; every
// error names the file at fault.
func LoadCA(dir string, keyPassword []byte) (*CA, error) {
	certPath := filepath.Join(dir, CertFile)
	certs, err := readCertsFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("loading CA certificate: %w", err)
	}
	cert := certs[0]
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, fmt.Errorf("loading CA certificate %q: %w", certPath, ErrNotCA)
	}

	keyPath := filepath.Join(dir, KeyFile)
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("loading CA key: reading %q: %w", keyPath, err)
	}
	key, err := ParsePrivateKeyPEM(keyPEM, keyPassword)
	clear(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("loading CA key %q: %w", keyPath, err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("loading CA key %q for %q: %w", keyPath, certPath, ErrKeyMismatch)
	}

	chainPath := filepath.Join(dir, ChainFile)
	chain, err := readCertsFile(chainPath)
	if err != nil {
		return nil, fmt.Errorf("loading CA chain: %w", err)
	}
	if !bytes.Equal(chain[0].Raw, cert.Raw) {
		return nil, fmt.Errorf("loading CA chain %q: first certificate is not the one in %q", chainPath, certPath)
	}
	for i := 0; i+1 < len(chain); i++ {
		if err := chain[i].CheckSignatureFrom(chain[i+1]); err != nil {
			return nil, fmt.Errorf("loading CA chain %q: certificate %d is not signed by certificate %d: %w", chainPath, i+1, i+2, err)
		}
	}

	if _, err := loadIndex(dir); err != nil {
		return nil, fmt.Errorf("loading CA: %w", err)
	}
	return &CA{Cert: cert, Key: key, Chain: chain[1:], Dir: dir}, nil
}

// sign completes tmpl with a fresh serial, a backdated NotBefore and a
// NotAfter no later than the CA's own, signs it for pub and records it in
// the index. The certificate is returned only once it is recorded (fails
// closed: an unrecorded certificate could never be revoked).
func (ca *CA) sign(tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, fmt.Errorf("%w: CA is not loaded", ErrInvalidOption)
	}
	if ca.Dir == "" {
		return nil, fmt.Errorf("%w: CA %q has no directory for its index", ErrInvalidOption, ca.Cert.Subject.CommonName)
	}
	if err := checkPublicKey(pub); err != nil {
		return nil, err
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ix, err := loadIndex(ca.Dir)
	if err != nil {
		return nil, err
	}
	var serial *big.Int
	for serial == nil || ix.find(serial) != nil {
		if serial, err = randomSerial(); err != nil {
			return nil, err
		}
	}
	tmpl.SerialNumber = serial
	if tmpl.NotBefore.Before(ca.Cert.NotBefore) {
		tmpl.NotBefore = ca.Cert.NotBefore
	}
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("signing certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing signed certificate: %w", err)
	}
	ix.Issued = append(ix.Issued, IndexEntry{
		Serial:   FormatSerial(serial),
		Subject:  cert.Subject.String(),
		NotAfter: cert.NotAfter.UTC(),
	})
	if err := ix.save(ca.Dir); err != nil {
		return nil, fmt.Errorf("recording serial %s: %w", FormatSerial(serial), err)
	}
	return cert, nil
}

// Entries returns the CA's index: every certificate it has signed, in
// issue order, with revocation state.
func (ca *CA) Entries() ([]IndexEntry, error) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ix, err := loadIndex(ca.Dir)
	if err != nil {
		return nil, err
	}
	return ix.Issued, nil
}

// randomSerial returns a uniformly random, non-zero 128-bit serial number,
// well above the 64 bits of entropy CA/Browser Forum rules require.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("generating serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}
