package keymaterial

import (
	"bytes"
	"crypto/sha1"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"

	keystore "github.com/pavlo-v-chernykh/keystore-go/v4"
)

// jksStore is a loaded JKS keystore. Decoding is delegated to keystore-go;
// this file adds what it lacks: a structural pre-check (keystore-go allocates
// whatever length a damaged file claims), a separate integrity check so that
// a wrong password is told apart from damage, and case-insensitive aliases
// as keytool has them.
type jksStore struct {
	ks keystore.KeyStore
	// protected holds each key entry's still-encrypted key by alias, taken
	// from the pre-check, because keystore-go exposes keys only decrypted.
	protected map[string][]byte
}

const (
	jksTagPrivateKey  = 1
	jksTagTrustedCert = 2
	jksDigestLen      = sha1.Size
	// jksSaltLen is the salt length of Sun's proprietary key protector.
	jksSaltLen = 20
)

var oidJKSKeyProtector = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 42, 2, 17, 1, 1}

// jksPassword converts a password to the one-byte-per-char form keystore-go
// expects: it feeds each byte to Java's UTF-16 digest as one char, so a
// UTF-8 "é" would become two chars (DEPENDENCIES.md §Keystores). Characters
// above U+00FF cannot be expressed that way.
func jksPassword(password []byte) ([]byte, error) {
	runes := passwordRunes(password)
	out := make([]byte, len(runes))
	for i, r := range runes {
		if r > 0xff {
			return nil, fmt.Errorf("the password contains characters above U+00FF, which this jks reader cannot use; convert the store with `keytool -importkeystore -deststoretype pkcs12`: %w", ErrUnsupportedFormat)
		}
		out[i] = byte(r)
	}
	return out, nil
}

// loadJKS checks structure and integrity, then decodes. Errors wrap
// ErrCorrupt, ErrWrongPassword or ErrUnsupportedFormat.
func loadJKS(data, password []byte) (*jksStore, error) {
	pw, err := jksPassword(password)
	if err != nil {
		return nil, err
	}
	protected, err := checkJKSStructure(data)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrCorrupt)
	}
	body, digest := data[:len(data)-jksDigestLen], data[len(data)-jksDigestLen:]
	h := sha1.New()
	for _, b := range pw {
		h.Write([]byte{0, b})
	}
	h.Write([]byte("Mighty Aphrodite"))
	h.Write(body)
	if subtle.ConstantTimeCompare(h.Sum(nil), digest) != 1 {
		return nil, fmt.Errorf("integrity check failed (wrong password, or the file was modified): %w", ErrWrongPassword)
	}
	ks := keystore.New(keystore.WithCaseExactAliases(), keystore.WithOrderedAliases())
	if err := ks.Load(bytes.NewReader(data), pw); err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrCorrupt)
	}
	return &jksStore{ks: ks, protected: protected}, nil
}

// checkJKSStructure walks a JKS file (see scanJavaKeystore) and returns the
// protected keys by alias.
func checkJKSStructure(data []byte) (map[string][]byte, error) {
	scan, err := scanJavaKeystore(data, magicJKS)
	if err != nil {
		return nil, err
	}
	if scan.secretAlias != "" {
		return nil, fmt.Errorf("entry %q has the secret-key tag, which exists only in jceks", scan.secretAlias)
	}
	protected := map[string][]byte{}
	for _, e := range scan.entries {
		if e.tag == jksTagPrivateKey {
			protected[e.alias] = e.protected
		}
	}
	return protected, nil
}

// javaEntry is one entry of a JKS or JCEKS file as laid out on disk.
type javaEntry struct {
	tag       uint32
	alias     string
	protected []byte
	// certs holds the DER of the key entry's chain or of the trusted
	// certificate, each with its type ("X.509").
	certs []javaCert
}

type javaCert struct {
	typ string
	der []byte
}

type javaScan struct {
	entries []javaEntry
	// secretAlias names the first secret-key entry (JCEKS tag 3). Its value
	// is a serialized Java object with no length prefix, so the walk stops
	// there and the entries after it are unknown.
	secretAlias string
	// keyAliases lists the key entries seen, for the hint in the error.
	keyAliases []string
}

// scanJavaKeystore walks the layout shared by JKS and JCEKS (magic,
// version, count, entries, SHA-1 digest) and makes sure every length fits
// in data before a decoder allocates it. Aliases are read as bytes, which is
// exact for the ASCII that keytool writes.
func scanJavaKeystore(data, magic []byte) (*javaScan, error) {
	r := jksReader{b: data}
	if !bytes.Equal(r.next(4), magic) {
		return nil, errors.New("bad keystore magic")
	}
	version := r.u32()
	if version != 1 && version != 2 {
		return nil, fmt.Errorf("unknown keystore version %d", version)
	}
	scan := &javaScan{}
	count := r.u32()
	cert := func() javaCert {
		var c javaCert
		if version == 2 {
			c.typ = string(r.next(int(r.u16())))
		} else {
			c.typ = "X.509"
		}
		c.der = r.next(int(r.u32()))
		return c
	}
	for i := uint32(0); i < count && r.err == nil; i++ {
		e := javaEntry{tag: r.u32()}
		e.alias = string(r.next(int(r.u16())))
		r.next(8) // creation time
		switch e.tag {
		case jksTagPrivateKey:
			e.protected = r.next(int(r.u32()))
			n := r.u32()
			for j := uint32(0); j < n && r.err == nil; j++ {
				e.certs = append(e.certs, cert())
			}
			scan.keyAliases = append(scan.keyAliases, e.alias)
		case jksTagTrustedCert:
			e.certs = append(e.certs, cert())
		case jksTagSecretKey:
			if r.err == nil {
				scan.secretAlias = e.alias
				return scan, nil
			}
		default:
			if r.err == nil {
				return nil, fmt.Errorf("entry %d has unknown tag %d", i+1, e.tag)
			}
		}
		scan.entries = append(scan.entries, e)
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != jksDigestLen {
		return nil, fmt.Errorf("keystore ends with %d bytes where a %d-byte digest belongs", len(r.b), jksDigestLen)
	}
	return scan, nil
}

// parseJavaCerts parses the certificates of a raw entry.
func parseJavaCerts(certs []javaCert) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for i, c := range certs {
		if c.typ != "X.509" && c.typ != "X509" {
			return nil, fmt.Errorf("certificate %d has type %q, not x.509: %w", i+1, c.typ, ErrUnsupportedFormat)
		}
		x, err := x509.ParseCertificate(c.der)
		if err != nil {
			return nil, fmt.Errorf("certificate %d does not parse (%v): %w", i+1, err, ErrCorrupt)
		}
		out = append(out, x)
	}
	return out, nil
}

type jksReader struct {
	b   []byte
	err error
}

func (r *jksReader) next(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = errors.New("truncated keystore data")
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *jksReader) u16() uint16 {
	if b := r.next(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *jksReader) u32() uint32 {
	if b := r.next(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

// aliases returns every alias with its kind, in sorted order.
func (s *jksStore) aliases() (keys, trusted []string) {
	for _, a := range s.ks.Aliases() {
		switch {
		case s.ks.IsPrivateKeyEntry(a):
			keys = append(keys, a)
		case s.ks.IsTrustedCertificateEntry(a):
			trusted = append(trusted, a)
		}
	}
	return keys, trusted
}

// privateKey decrypts the key of alias with each password in turn and
// returns it with the entry's certificate chain.
func (s *jksStore) privateKey(alias string, passwords ...[]byte) (any, []*x509.Certificate, error) {
	chainRefs, err := s.ks.GetPrivateKeyEntryCertificateChain(alias)
	if err != nil {
		return nil, nil, fmt.Errorf("%v: %w", err, ErrCorrupt)
	}
	chain, err := jksCertificates(chainRefs)
	if err != nil {
		return nil, nil, err
	}
	if err := checkJKSProtectedKey(s.protected[alias]); err != nil {
		return nil, nil, err
	}
	for _, pw := range passwords {
		jpw, err := jksPassword(pw)
		if err != nil {
			return nil, nil, err
		}
		entry, err := s.ks.GetPrivateKeyEntry(alias, jpw)
		if err != nil {
			// keystore-go reports a wrong key password only as a digest
			// mismatch; the structure was checked above, so that is what
			// remains.
			continue
		}
		key, err := x509.ParsePKCS8PrivateKey(entry.PrivateKey)
		if err != nil {
			return nil, nil, fmt.Errorf("decrypted key does not parse (%v): %w", err, ErrCorrupt)
		}
		return key, chain, nil
	}
	return nil, nil, fmt.Errorf("cannot decrypt the key entry with the given key password (set a key password if it differs from the store password): %w", ErrWrongPassword)
}

// checkJKSProtectedKey guards keystore-go's key decryption, which panics on
// a protected key shorter than its salt and digest.
func checkJKSProtectedKey(raw []byte) error {
	var info struct {
		Algo struct {
			Algorithm  asn1.ObjectIdentifier
			Parameters asn1.RawValue `asn1:"optional"`
		}
		PrivateKey []byte
	}
	if err := unmarshalDER(raw, &info); err != nil {
		return fmt.Errorf("protected key does not parse (%v): %w", err, ErrCorrupt)
	}
	if !info.Algo.Algorithm.Equal(oidJKSKeyProtector) {
		return fmt.Errorf("key entry is protected with %s; only the jks key protector is supported: %w", info.Algo.Algorithm, ErrUnsupportedFormat)
	}
	if len(info.PrivateKey) < jksSaltLen+jksDigestLen {
		return fmt.Errorf("protected key is too short: %w", ErrCorrupt)
	}
	return nil
}

func jksCertificates(refs []keystore.Certificate) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for i, r := range refs {
		if r.Type != "X.509" && r.Type != "X509" {
			return nil, fmt.Errorf("certificate %d has type %q, not x.509: %w", i+1, r.Type, ErrUnsupportedFormat)
		}
		c, err := x509.ParseCertificate(r.Content)
		if err != nil {
			return nil, fmt.Errorf("certificate %d does not parse (%v): %w", i+1, err, ErrCorrupt)
		}
		out = append(out, c)
	}
	return out, nil
}
