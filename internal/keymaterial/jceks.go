package keymaterial

import (
	"bytes"
	"crypto/sha1"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"unicode/utf16"

	"github.com/square/certigo/jceks"
)

// jceksStore is a loaded JCEKS keystore. Decoding is delegated to certigo's
// jceks package; this file adds what it lacks: an integrity check before
// anything else so that a wrong password is told apart from damage, a
// structural walk that names a secret-key entry (certigo refuses the whole
// file with no alias when it meets one, DEPENDENCIES.md §Keystores), a bound
// on the key-protection iteration count, and case-insensitive aliases.
type jceksStore struct {
	ks *jceks.KeyStore
	// entries are the raw entries from the structure walk, which gives a
	// key entry's chain without decrypting the key (certigo does not).
	entries []javaEntry
}

const jksTagSecretKey = 3

// oidJCEKSKeyProtector is PBEWithMD5AndTripleDES, Sun's JCEKS key protector.
var oidJCEKSKeyProtector = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 42, 2, 19, 1}

// jceksPassword encodes a password as the big-endian UTF-16 that JCEKS
// digests. keytool refuses non-ASCII JCEKS passwords, but the encoding is
// well defined for the rest of the BMP too.
func jceksPassword(password []byte) ([]byte, error) {
	var out []byte
	for _, r := range passwordRunes(password) {
		if r > 0xffff {
			return nil, fmt.Errorf("the password contains characters outside the basic multilingual plane, which jceks cannot use: %w", ErrUnsupportedFormat)
		}
		for _, u := range utf16.Encode([]rune{r}) {
			out = append(out, byte(u>>8), byte(u))
		}
	}
	return out, nil
}

// loadJCEKS checks integrity and structure, then decodes. Errors wrap
// ErrCorrupt, ErrWrongPassword or ErrUnsupportedFormat; a secret-key entry
// is ErrUnsupportedFormat with its alias and the keytool command that
// removes it from the way.
func loadJCEKS(data, password []byte, name string, lim limits) (*jceksStore, error) {
	if len(data) < 12+jksDigestLen {
		return nil, fmt.Errorf("truncated jceks data: %w", ErrCorrupt)
	}
	// The structure comes first so that a damaged file is reported as
	// such rather than as a wrong password.
	scan, err := scanJavaKeystore(data, magicJCEKS)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrCorrupt)
	}
	pw, err := jceksPassword(password)
	if err != nil {
		return nil, err
	}
	if len(pw) == 0 {
		return nil, fmt.Errorf("jceks stores always have a password and none was given: %w", ErrWrongPassword)
	}
	body, digest := data[:len(data)-jksDigestLen], data[len(data)-jksDigestLen:]
	h := sha1.New()
	h.Write(pw)
	h.Write([]byte("Mighty Aphrodite"))
	h.Write(body)
	if subtle.ConstantTimeCompare(h.Sum(nil), digest) != 1 {
		return nil, fmt.Errorf("integrity check failed (wrong password, or the file was modified): %w", ErrWrongPassword)
	}
	if scan.secretAlias != "" {
		return nil, secretKeyEntryError(scan.secretAlias, scan.keyAliases, name)
	}
	ks := new(jceks.KeyStore)
	// The file was read whole and bounded already, so no entry can be
	// larger than the file; certigo's default allows 20 MiB per entry.
	n := uint(len(data))
	if err := ks.ParseWithOptions(bytes.NewReader(data), nil, jceks.WithMaxCertificateBytes(n), jceks.WithMaxPrivateKeyBytes(n)); err != nil {
		if errors.Is(err, jceks.ErrUnsupportedJCEKSData) {
			return nil, fmt.Errorf("%v: %w", err, ErrUnsupportedFormat)
		}
		return nil, fmt.Errorf("%v: %w", err, ErrCorrupt)
	}
	for _, e := range scan.entries {
		if e.tag != jksTagPrivateKey {
			continue
		}
		if err := checkJCEKSProtectedKey(e.protected, lim); err != nil {
			return nil, fmt.Errorf("alias %q: %w", e.alias, err)
		}
	}
	return &jceksStore{ks: ks, entries: scan.entries}, nil
}

// secretKeyEntryError explains a JCEKS secret-key entry: what it is, that a
// TLS gateway has no use for it, and how to get the TLS entries out.
func secretKeyEntryError(alias string, keyAliases []string, name string) error {
	src := "KEY_ALIAS"
	if len(keyAliases) > 0 {
		src = keyAliases[0]
	}
	return fmt.Errorf("entry %q is a secret-key entry (a symmetric key, as Hadoop credential stores and application secrets use), "+
		"which TLS has no use for and this reader cannot skip; copy the TLS entries into a PKCS#12 store with "+
		"`keytool -importkeystore -srckeystore %s -srcstoretype JCEKS -srcalias %s -destkeystore tls.p12 -deststoretype PKCS12` "+
		"(once per key or certificate alias), or delete the secret entry from a copy with `keytool -delete -alias %s -keystore COPY -storetype JCEKS`: %w",
		alias, name, src, alias, ErrUnsupportedFormat)
}

// checkJCEKSProtectedKey bounds the key protector's iteration count before
// certigo runs it (it sets no bound) and refuses protectors it cannot undo.
func checkJCEKSProtectedKey(raw []byte, lim limits) error {
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
	switch {
	case info.Algo.Algorithm.Equal(oidJCEKSKeyProtector):
		var p pbeParams
		if err := unmarshalDER(info.Algo.Parameters.FullBytes, &p); err != nil {
			return fmt.Errorf("key protection parameters do not parse (%v): %w", err, ErrCorrupt)
		}
		if err := checkIterations(p.Iterations, lim); err != nil {
			return fmt.Errorf("%v: %w", err, ErrCorrupt)
		}
		return nil
	case info.Algo.Algorithm.Equal(oidJKSKeyProtector):
		return fmt.Errorf("key entry is protected with the jks key protector inside a jceks store; re-import it with `keytool -importkeystore -deststoretype PKCS12`: %w", ErrUnsupportedFormat)
	default:
		return fmt.Errorf("key entry is protected with %s, which is not supported: %w", info.Algo.Algorithm, ErrUnsupportedFormat)
	}
}

// aliases returns the key and trusted-certificate aliases, sorted.
func (s *jceksStore) aliases() (keys, trusted []string) {
	return s.ks.ListPrivateKeys(), s.ks.ListCerts()
}

// privateKey decrypts the key of alias with each password in turn and
// returns it with the entry's certificate chain.
func (s *jceksStore) privateKey(alias string, passwords ...[]byte) (any, []*x509.Certificate, error) {
	for _, pw := range passwords {
		if len(pw) == 0 {
			continue
		}
		key, certs, err := s.ks.GetPrivateKeyAndCerts(alias, pw)
		switch {
		case err == nil && key == nil:
			return nil, nil, fmt.Errorf("no key entry %q: %w", alias, ErrAliasNotFound)
		case err == nil:
			return key, certs, nil
		case errors.Is(err, jceks.ErrDecryptionFailed):
			continue
		case errors.Is(err, jceks.ErrUnsupportedJCEKSData):
			return nil, nil, fmt.Errorf("%v: %w", err, ErrUnsupportedFormat)
		default:
			return nil, nil, fmt.Errorf("%v: %w", err, ErrCorrupt)
		}
	}
	return nil, nil, fmt.Errorf("cannot decrypt the key entry with the given key password (set a key password if it differs from the store password): %w", ErrWrongPassword)
}

// chain returns the certificates of a key entry, or the certificate of a
// trusted entry, without decrypting any key, so that a store can be listed
// when only the store password is known.
func (s *jceksStore) chain(alias string) ([]*x509.Certificate, error) {
	for _, e := range s.entries {
		if e.alias == alias {
			return parseJavaCerts(e.certs)
		}
	}
	return nil, fmt.Errorf("no entry %q: %w", alias, ErrAliasNotFound)
}
