package keymaterial

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// IdentitySource says where a TLS identity (private key and certificate
// chain) comes from: either PEM files (CertFile and KeyFile) or a keystore
// (Keystore), never both.
type IdentitySource struct {
	// CertFile is a PEM file holding the leaf certificate, optionally
	// followed by its chain. The leaf is the certificate matching the key.
	CertFile string
	// KeyFile is a PEM file holding the private key: PKCS#1, SEC1 (EC
	// PRIVATE KEY), PKCS#8, or PKCS#8 ENCRYPTED PRIVATE KEY (PBES2), which
	// is decrypted with Password. It may be the same file as CertFile.
	KeyFile string
	// Keystore is a JKS, JCEKS or PKCS#12 store, detected by content
	// whatever its name. A PEM file holding both key and certificates is accepted too.
	Keystore string
	// Alias selects the key entry. It is required when the store holds more
	// than one key entry and is matched case-insensitively, as keytool does.
	Alias string
	// Password is the store password, and the password of an encrypted PEM
	// key.
	Password []byte
	// KeyPassword is the JKS key-entry password when it differs from the
	// store password. Nil means Password.
	KeyPassword []byte
}

// Identity is a loaded and checked TLS identity.
type Identity struct {
	// Certificate holds the leaf then its chain (DER), the private key and
	// the parsed leaf.
	Certificate tls.Certificate
	// Alias is the key entry's alias in a keystore, empty for PEM.
	Alias string
	// Format is the detected format of the keystore or key file.
	Format Format
	// Source describes where the identity came from, for logs. It holds
	// paths and aliases, never secrets.
	Source string
}

// maxFileSize bounds what is read from a key-material file; real keystores
// and bundles are kilobytes, and a misconfigured path to a large file should
// fail rather than be read into memory.
const maxFileSize = 16 << 20

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%q is larger than %d bytes; it is not key material: %w", path, maxFileSize, ErrUnsupportedFormat)
	}
	return data, nil
}

// LoadIdentity reads and decrypts the identity src describes and checks it:
// the private key must match the leaf's public key and the leaf must be
// valid at now (ErrExpired and ErrNotYetValid name the dates). The chain is
// de-duplicated and ordered from the leaf towards the root. It fails closed:
// any doubt about which key or certificate is meant is an error, not a
// guess. Errors wrap this package's sentinels and never contain secrets.
func LoadIdentity(src IdentitySource, now time.Time) (*Identity, error) {
	return loadIdentity(src, now, defaultLimits)
}

func loadIdentity(src IdentitySource, now time.Time, lim limits) (*Identity, error) {
	switch {
	case src.Keystore != "" && (src.CertFile != "" || src.KeyFile != ""):
		return nil, fmt.Errorf("identity: set either a keystore (%q) or cert and key files, not both: %w", src.Keystore, ErrInvalidSource)
	case src.Keystore != "":
		data, err := readFile(src.Keystore)
		if err != nil {
			return nil, fmt.Errorf("reading keystore: %w", err)
		}
		return identityFromStore(data, src.Keystore, src, now, lim)
	case src.CertFile == "" && src.KeyFile == "":
		return nil, fmt.Errorf("identity: no keystore and no cert/key files given: %w", ErrInvalidSource)
	case src.CertFile == "":
		return nil, fmt.Errorf("identity: key file %q given without a certificate file: %w", src.KeyFile, ErrInvalidSource)
	case src.KeyFile == "":
		return nil, fmt.Errorf("identity: certificate file %q given without a key file: %w", src.CertFile, ErrInvalidSource)
	}
	certData, err := readFile(src.CertFile)
	if err != nil {
		return nil, fmt.Errorf("reading certificate file: %w", err)
	}
	keyData := certData
	if src.KeyFile != src.CertFile {
		if keyData, err = readFile(src.KeyFile); err != nil {
			return nil, fmt.Errorf("reading key file: %w", err)
		}
	}
	source := fmt.Sprintf("cert %s, key %s", src.CertFile, src.KeyFile)
	if src.KeyFile == src.CertFile {
		source = "pem " + src.CertFile
	}
	return identityFromPEM(certData, keyData, src.CertFile, src.KeyFile, source, src.Password, now, lim)
}

func identityFromPEM(certData, keyData []byte, certName, keyName, source string, password []byte, now time.Time, lim limits) (*Identity, error) {
	for _, f := range []struct {
		name string
		data []byte
	}{{certName, certData}, {keyName, keyData}} {
		if got := Detect(f.data); got != FormatPEM {
			return nil, fmt.Errorf("%q is %s, not pem; give a keystore as keystore (jks or pkcs12): %w", f.name, got, ErrUnsupportedFormat)
		}
	}
	certs, err := pemCertificates(certData, fmt.Sprintf("certificate file %q", certName))
	if err != nil {
		return nil, err
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("certificate file %q holds no CERTIFICATE block: %w", certName, ErrNoCertificates)
	}
	key, err := pemPrivateKey(keyData, fmt.Sprintf("key file %q", keyName), password, lim)
	if err != nil {
		return nil, err
	}
	leaf := certs[0]
	if i := slices.IndexFunc(certs, func(c *x509.Certificate) bool { return keyMatches(key, c) }); i >= 0 {
		leaf = certs[i]
	}
	id, err := newIdentity(key, leaf, orderChain(leaf, certs, true), now)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	id.Format, id.Source = FormatPEM, source
	return id, nil
}

// identityFromStore loads an identity from keystore bytes; name is the path
// used in messages.
func identityFromStore(data []byte, name string, src IdentitySource, now time.Time, lim limits) (*Identity, error) {
	format := Detect(data)
	prefix := fmt.Sprintf("keystore %q (%s)", name, format)
	var (
		id  *Identity
		err error
	)
	switch format {
	case FormatJKS:
		id, err = identityFromJKS(data, src, now)
	case FormatPKCS12:
		id, err = identityFromPKCS12(data, src, now, lim)
	case FormatPEM:
		// A combined PEM file given as a keystore is unambiguous, so it is
		// accepted rather than refused; its errors already name the file.
		return identityFromPEM(data, data, name, name, "pem "+name, src.Password, now, lim)
	case FormatJCEKS:
		id, err = identityFromJCEKS(data, name, src, now, lim)
	default:
		err = fmt.Errorf("content is not pem, pkcs12, jks or jceks: %w", ErrUnsupportedFormat)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", prefix, err)
	}
	id.Format = format
	id.Source = fmt.Sprintf("keystore %s (%s, alias %q)", name, format, id.Alias)
	return id, nil
}

func identityFromJKS(data []byte, src IdentitySource, now time.Time) (*Identity, error) {
	st, err := loadJKS(data, src.Password)
	if err != nil {
		return nil, err
	}
	return identityFromJavaStore(st, src, now)
}

func identityFromJCEKS(data []byte, name string, src IdentitySource, now time.Time, lim limits) (*Identity, error) {
	st, err := loadJCEKS(data, src.Password, name, lim)
	if err != nil {
		return nil, err
	}
	return identityFromJavaStore(st, src, now)
}

// javaStore is what JKS and JCEKS stores have in common: named key entries
// with their own (optional) passwords, and trusted certificate entries.
type javaStore interface {
	aliases() (keys, trusted []string)
	privateKey(alias string, passwords ...[]byte) (any, []*x509.Certificate, error)
}

func identityFromJavaStore(st javaStore, src IdentitySource, now time.Time) (*Identity, error) {
	keys, trusted := st.aliases()
	alias, err := chooseAlias(src.Alias, keys, trusted)
	if err != nil {
		return nil, err
	}
	keyPassword := src.KeyPassword
	if keyPassword == nil {
		keyPassword = src.Password
	}
	key, chain, err := st.privateKey(alias, keyPassword)
	if err != nil {
		return nil, fmt.Errorf("alias %q: %w", alias, err)
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("alias %q: key entry has no certificate: %w", alias, ErrNoCertificates)
	}
	id, err := newIdentity(key, chain[0], orderChain(chain[0], chain, true), now)
	if err != nil {
		return nil, fmt.Errorf("alias %q: %w", alias, err)
	}
	id.Alias = alias
	return id, nil
}

func identityFromPKCS12(data []byte, src IdentitySource, now time.Time, lim limits) (*Identity, error) {
	st, err := parsePKCS12(data, src.Password, lim)
	if err != nil {
		return nil, err
	}
	if len(st.skipped) > 0 {
		if err := st.fillFromGoPKCS12(data, src.Password, lim); err != nil {
			return nil, err
		}
	}
	var keyAliases, certAliases []string
	for _, k := range st.keys {
		keyAliases = append(keyAliases, k.alias)
	}
	for _, c := range st.certs {
		if c.named && c.trusted {
			certAliases = append(certAliases, c.alias)
		}
	}
	if len(keyAliases) == 0 && len(certAliases) == 0 {
		return nil, fmt.Errorf("store holds no private key, only %d certificate(s); use it as a truststore: %w", len(st.certs), ErrNoPrivateKey)
	}
	alias, err := chooseAlias(src.Alias, keyAliases, certAliases)
	if err != nil {
		return nil, err
	}
	entry := &st.keys[slices.Index(keyAliases, alias)]
	passwords := [][]byte{src.Password}
	if src.KeyPassword != nil {
		passwords = append(passwords, src.KeyPassword)
	}
	key, err := entry.decryptKey(lim, passwords...)
	if err != nil {
		return nil, fmt.Errorf("alias %q: %w", alias, err)
	}
	leaf, err := st.leafFor(entry, key)
	if err != nil {
		return nil, fmt.Errorf("alias %q: %w", alias, err)
	}
	var all []*x509.Certificate
	for _, c := range st.certs {
		all = append(all, c.cert)
	}
	// Only certificates that chain up from the leaf belong to this entry; a
	// store with several keys holds other entries' leaves and chains too.
	id, err := newIdentity(key, leaf, orderChain(leaf, all, false), now)
	if err != nil {
		return nil, fmt.Errorf("alias %q: %w", alias, err)
	}
	id.Alias = alias
	return id, nil
}

// leafFor finds the certificate of a key entry: by localKeyId (how keytool
// and OpenSSL pair them), then by friendlyName, then by public key.
func (st *p12Store) leafFor(entry *p12Entry, key any) (*x509.Certificate, error) {
	for _, c := range st.certs {
		if len(entry.localKeyID) > 0 && bytes.Equal(c.localKeyID, entry.localKeyID) {
			return c.cert, nil
		}
	}
	for _, c := range st.certs {
		if entry.named && c.named && c.alias == entry.alias && !c.trusted {
			return c.cert, nil
		}
	}
	for _, c := range st.certs {
		if keyMatches(key, c.cert) {
			return c.cert, nil
		}
	}
	return nil, fmt.Errorf("no certificate in the store belongs to this key: %w", ErrNoCertificates)
}

// fillFromGoPKCS12 recovers bags hidden behind encryption this reader does
// not implement (OpenSSL -legacy encrypts certificates with RC2-40) by
// asking go-pkcs12, which reads only single-key files. The key bag is
// usually outside that encryption, so its alias survives.
func (st *p12Store) fillFromGoPKCS12(data, password []byte, lim limits) error {
	// go-pkcs12 will decrypt the visible key bags too, with no bound on the
	// iteration count, so bound it first. Bags hidden inside the encryption
	// it alone reads cannot be checked; OpenSSL puts none there.
	for _, k := range st.keys {
		if err := checkKeyIterations(k, lim); err != nil {
			return err
		}
	}
	key, leaf, cas, err := pkcs12.DecodeChain(data, string(password))
	if err != nil {
		if errors.Is(err, pkcs12.ErrIncorrectPassword) {
			return fmt.Errorf("cannot decrypt with the given password: %w", ErrWrongPassword)
		}
		return fmt.Errorf("the store uses %s, which is not supported (%v); re-export it with current OpenSSL defaults (no -legacy) or `keytool -importkeystore -deststoretype pkcs12`: %w",
			strings.Join(st.skipped, ", "), err, ErrUnsupportedFormat)
	}
	for _, c := range append([]*x509.Certificate{leaf}, cas...) {
		st.certs = append(st.certs, p12Entry{cert: c})
	}
	if len(st.keys) == 0 {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return fmt.Errorf("key from fallback reader: %v: %w", err, ErrUnsupportedFormat)
		}
		st.keys = append(st.keys, p12Entry{alias: "1", keyDER: der})
	}
	return nil
}

// chooseAlias picks the key entry: the one asked for (case-insensitively),
// or the only one. others are the non-key aliases, listed to explain why
// they cannot be used.
func chooseAlias(want string, keys, others []string) (string, error) {
	if len(keys) == 0 {
		if len(others) == 0 {
			return "", fmt.Errorf("store holds no private key entries and no other entries: %w", ErrNoPrivateKey)
		}
		return "", fmt.Errorf("store holds no private key entries, only trusted certificates (%s); use it as a truststore, or import a key with keytool -importkeystore: %w", quoteList(others), ErrNoPrivateKey)
	}
	if want == "" {
		if len(keys) == 1 {
			return keys[0], nil
		}
		return "", fmt.Errorf("store holds %d key entries (%s); choose one with an alias: %w", len(keys), quoteList(keys), ErrAliasRequired)
	}
	for _, k := range keys {
		if strings.EqualFold(k, want) {
			return k, nil
		}
	}
	for _, o := range others {
		if strings.EqualFold(o, want) {
			return "", fmt.Errorf("alias %q is a trusted certificate entry, not a private key entry (key entries: %s): %w", want, quoteList(keys), ErrNoPrivateKey)
		}
	}
	msg := "key entries: " + quoteList(keys)
	if len(others) > 0 {
		msg += "; trusted certificate entries: " + quoteList(others)
	}
	return "", fmt.Errorf("alias %q not found (%s): %w", want, msg, ErrAliasNotFound)
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}

// keyMatches reports whether key is the private half of cert's public key.
func keyMatches(key any, cert *x509.Certificate) bool {
	signer, ok := key.(crypto.Signer)
	if !ok {
		return false
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

// newIdentity checks key against leaf and leaf's validity at now.
func newIdentity(key any, leaf *x509.Certificate, chain []*x509.Certificate, now time.Time) (*Identity, error) {
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key of type %T cannot sign tls handshakes: %w", key, ErrUnsupportedFormat)
	}
	if !keyMatches(signer, leaf) {
		return nil, fmt.Errorf("certificate %q (serial %s) does not belong to the private key: %w", leaf.Subject.String(), leaf.SerialNumber, ErrKeyMismatch)
	}
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("certificate %q expired on %s (now %s): %w", leaf.Subject.String(), leaf.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), ErrExpired)
	}
	if now.Before(leaf.NotBefore) {
		return nil, fmt.Errorf("certificate %q is not valid before %s (now %s): %w", leaf.Subject.String(), leaf.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), ErrNotYetValid)
	}
	id := &Identity{Certificate: tls.Certificate{PrivateKey: signer, Leaf: leaf}}
	for _, c := range chain {
		id.Certificate.Certificate = append(id.Certificate.Certificate, c.Raw)
	}
	return id, nil
}

// orderChain returns leaf followed by the certificates of pool that chain up
// from it, each issued by the one before, de-duplicated by DER. With
// keepRest, certificates that do not link are appended in their original
// order rather than dropped, since a PEM or JKS chain belongs to this leaf
// even when it is incomplete or ordered oddly.
func orderChain(leaf *x509.Certificate, pool []*x509.Certificate, keepRest bool) []*x509.Certificate {
	chain := []*x509.Certificate{leaf}
	for cur := leaf; !isSelfIssued(cur); {
		i := slices.IndexFunc(pool, func(c *x509.Certificate) bool {
			return issuedBy(cur, c) && !hasCert(chain, c)
		})
		if i < 0 {
			break
		}
		cur = pool[i]
		chain = append(chain, cur)
	}
	if keepRest {
		for _, c := range pool {
			if !hasCert(chain, c) {
				chain = append(chain, c)
			}
		}
	}
	return chain
}

func isSelfIssued(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject)
}

// issuedBy compares names and, when both are present, key identifiers; no
// signature is checked because this only orders what the operator supplied.
func issuedBy(child, parent *x509.Certificate) bool {
	if !bytes.Equal(child.RawIssuer, parent.RawSubject) {
		return false
	}
	if len(child.AuthorityKeyId) > 0 && len(parent.SubjectKeyId) > 0 {
		return bytes.Equal(child.AuthorityKeyId, parent.SubjectKeyId)
	}
	return true
}
