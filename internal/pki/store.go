package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pavlo-v-chernykh/keystore-go/v4"

	"github.com/portcullis/portcullis/internal/keymaterial"
)

// StoreEntry is one entry of a keystore written by WritePKCS12Entries or
// WriteJKSEntries: a private key with its chain, or a trusted certificate.
type StoreEntry struct {
	// Alias names the entry. Aliases must be unique ignoring case, because
	// keytool matches them that way (and JKS stores them lowercased).
	Alias string
	// Key is the private key of a key entry; nil makes a trusted-certificate
	// entry.
	Key crypto.Signer
	// Chain is the key entry's certificate followed by its chain, nearest
	// issuer first, or for a trusted entry the one trusted certificate.
	Chain []*x509.Certificate
}

// storeIterations is the PBKDF2 and MAC iteration count of PKCS#12 stores
// written by WritePKCS12Entries: keytool's own default (Java 17), so that
// loading a converted store costs what loading a keytool store costs.
const storeIterations = 10_000

var (
	oidP12EncryptedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	oidP12CertBag       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 3}
	oidP12X509Cert      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 22, 1}
	oidP12LocalKeyID    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 21}
	// oidJavaTrustedKeyUsage marks a certificate bag as a trustedCertEntry
	// for Java; its value lists the purposes, here any (2.5.29.37.0).
	oidJavaTrustedKeyUsage = asn1.ObjectIdentifier{2, 16, 840, 1, 113894, 746875, 1, 1}
	oidAnyExtendedKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37, 0}
)

type p12CertBag struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue `asn1:"tag:0,explicit"`
}

type p12EncryptedData struct {
	Version              int
	EncryptedContentInfo p12EncryptedContentInfo
}

type p12EncryptedContentInfo struct {
	ContentType      asn1.ObjectIdentifier
	Algorithm        pkix.AlgorithmIdentifier
	EncryptedContent asn1.RawValue
}

// checkEntries validates entries before anything is written.
func checkEntries(entries []StoreEntry) error {
	if len(entries) == 0 {
		return fmt.Errorf("%w: no entries to write", ErrInvalidOption)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		if err := checkAlias(e.Alias); err != nil {
			return err
		}
		if seen[strings.ToLower(e.Alias)] {
			return fmt.Errorf("%w: alias %q appears twice (aliases are compared ignoring case)", ErrInvalidOption, e.Alias)
		}
		seen[strings.ToLower(e.Alias)] = true
		switch {
		case len(e.Chain) == 0:
			return fmt.Errorf("%w: entry %q has no certificate", ErrInvalidOption, e.Alias)
		case e.Key == nil && len(e.Chain) != 1:
			return fmt.Errorf("%w: trusted entry %q holds %d certificates, want 1", ErrInvalidOption, e.Alias, len(e.Chain))
		case e.Key != nil && !publicKeysEqual(e.Chain[0].PublicKey, e.Key.Public()):
			return fmt.Errorf("entry %q: %w", e.Alias, ErrKeyMismatch)
		}
	}
	return nil
}

func hasKeys(entries []StoreEntry) bool {
	for _, e := range entries {
		if e.Key != nil {
			return true
		}
	}
	return false
}

// storePerm is 0600 for stores holding private keys and 0644 for trust
// stores, as the single-entry writers do.
func storePerm(entries []StoreEntry) os.FileMode {
	if hasKeys(entries) {
		return 0o600
	}
	return 0o644
}

// WriteJKSEntries writes entries to a new JKS file at path: key entries as
// PrivateKeyEntry (key protected with the store password, as keytool does
// by default) and the others as trustedCertEntry. JKS lowercases aliases.
// The file has mode 0600 if it holds a key, 0644 otherwise. The password
// rules are those of WriteJKS. An existing file is not replaced (ErrExists).
func WriteJKSEntries(path string, entries []StoreEntry, password []byte) error {
	if err := checkEntries(entries); err != nil {
		return fmt.Errorf("writing %q: %w", path, err)
	}
	pw, err := javaPassword(password)
	if err != nil {
		return fmt.Errorf("writing %q: %w", path, err)
	}
	defer clear(pw)
	ks := keystore.New()
	now := time.Now()
	for _, e := range entries {
		if e.Key == nil {
			err = ks.SetTrustedCertificateEntry(e.Alias, keystore.TrustedCertificateEntry{
				CreationTime: now,
				Certificate:  keystore.Certificate{Type: "X509", Content: e.Chain[0].Raw},
			})
		} else {
			var keyDER []byte
			if keyDER, err = x509.MarshalPKCS8PrivateKey(e.Key); err != nil {
				return fmt.Errorf("writing %q: marshalling the key of %q: %w", path, e.Alias, err)
			}
			chain := make([]keystore.Certificate, len(e.Chain))
			for i, c := range e.Chain {
				chain[i] = keystore.Certificate{Type: "X509", Content: c.Raw}
			}
			err = ks.SetPrivateKeyEntry(e.Alias, keystore.PrivateKeyEntry{CreationTime: now, PrivateKey: keyDER, CertificateChain: chain}, pw)
			clear(keyDER)
		}
		if err != nil {
			return fmt.Errorf("writing %q: adding entry %q: %w", path, e.Alias, err)
		}
	}
	return storeJKS(path, ks, pw, storePerm(entries))
}

// WritePKCS12Entries writes entries to a new PKCS#12 file at path, laid out
// as keytool lays out its own stores so that keytool lists each entry under
// its alias: every key in a shrouded key bag (PBES2, PBKDF2-HMAC-SHA256,
// AES-256-CBC) with friendlyName and localKeyId; the certificates in one
// encrypted safe, each leaf carrying its key's localKeyId and alias, each
// chain certificate once, and each trusted certificate with its alias and
// Java's trusted-key-usage attribute (trustedCertEntry); an HMAC-SHA256 MAC.
// go-pkcs12 writes one key per file only, hence this encoder. The file has
// mode 0600 if it holds a key, 0644 otherwise. The password rules are those
// of WritePKCS12. An existing file is not replaced (ErrExists).
func WritePKCS12Entries(path string, entries []StoreEntry, password []byte) error {
	if err := checkEntries(entries); err != nil {
		return fmt.Errorf("writing %q: %w", path, err)
	}
	if err := checkPKCS12Password(password); err != nil {
		return fmt.Errorf("writing %q: %w", path, err)
	}
	der, err := encodePKCS12Entries(entries, password)
	if err != nil {
		return fmt.Errorf("encoding PKCS#12 for %q: %w", path, err)
	}
	return writeNewFile(path, der, storePerm(entries))
}

func encodePKCS12Entries(entries []StoreEntry, password []byte) ([]byte, error) {
	var keyBags, certBags []p12SafeBag
	written := map[string]bool{}
	for _, e := range entries {
		name, err := friendlyNameAttribute(e.Alias)
		if err != nil {
			return nil, err
		}
		if e.Key == nil {
			trust, err := setAttribute(oidJavaTrustedKeyUsage, oidAnyExtendedKeyUsage)
			if err != nil {
				return nil, err
			}
			bag, err := certSafeBag(e.Chain[0], name, trust)
			if err != nil {
				return nil, err
			}
			certBags = append(certBags, bag)
			continue
		}
		fp := sha1.Sum(e.Chain[0].Raw)
		localKeyID, err := setAttribute(oidP12LocalKeyID, fp[:])
		if err != nil {
			return nil, err
		}
		pkcs8, err := x509.MarshalPKCS8PrivateKey(e.Key)
		if err != nil {
			return nil, fmt.Errorf("marshalling the key of %q: %w", e.Alias, err)
		}
		shrouded, err := encryptPKCS8(pkcs8, password, storeIterations)
		clear(pkcs8)
		if err != nil {
			return nil, fmt.Errorf("encrypting the key of %q: %w", e.Alias, err)
		}
		keyBags = append(keyBags, p12SafeBag{
			ID:         oidP12ShroudedKey,
			Value:      explicitValue(shrouded),
			Attributes: []p12Attribute{name, localKeyID},
		})
		leafBag, err := certSafeBag(e.Chain[0], name, localKeyID)
		if err != nil {
			return nil, err
		}
		certBags = append(certBags, leafBag)
		written[string(e.Chain[0].Raw)] = true
		for _, c := range e.Chain[1:] {
			if written[string(c.Raw)] {
				continue
			}
			written[string(c.Raw)] = true
			bag, err := certSafeBag(c)
			if err != nil {
				return nil, err
			}
			certBags = append(certBags, bag)
		}
	}

	certSafe, err := asn1.Marshal(certBags)
	if err != nil {
		return nil, fmt.Errorf("encoding certificate bags: %w", err)
	}
	certCI, err := encryptedContentInfo(certSafe, password)
	if err != nil {
		return nil, err
	}
	contents := []p12ContentInfo{certCI}
	if len(keyBags) > 0 {
		keySafe, err := asn1.Marshal(keyBags)
		if err != nil {
			return nil, fmt.Errorf("encoding key bags: %w", err)
		}
		content, err := explicitOctets(keySafe)
		if err != nil {
			return nil, err
		}
		contents = append(contents, p12ContentInfo{ContentType: oidP12Data, Content: content})
	}
	authSafe, err := asn1.Marshal(contents)
	if err != nil {
		return nil, fmt.Errorf("encoding authenticated safe: %w", err)
	}
	salt := make([]byte, 20)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("generating MAC salt: %w", err)
	}
	digest := keymaterial.PKCS12MACSHA256(password, salt, storeIterations, authSafe)
	content, err := explicitOctets(authSafe)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(p12PFX{
		Version:  3,
		AuthSafe: p12ContentInfo{ContentType: oidP12Data, Content: content},
		MacData: p12MacData{
			Mac:        p12DigestInfo{Algorithm: pkix.AlgorithmIdentifier{Algorithm: oidSHA256, Parameters: asn1.NullRawValue}, Digest: digest},
			MacSalt:    salt,
			Iterations: storeIterations,
		},
	})
}

// setAttribute makes a PKCS#12 bag attribute holding one value.
func setAttribute(id asn1.ObjectIdentifier, value any) (p12Attribute, error) {
	v, err := asn1.Marshal(value)
	if err != nil {
		return p12Attribute{}, fmt.Errorf("encoding attribute %s: %w", id, err)
	}
	return p12Attribute{ID: id, Value: asn1.RawValue{Tag: asn1.TagSet, IsCompound: true, Bytes: v}}, nil
}

func certSafeBag(c *x509.Certificate, attrs ...p12Attribute) (p12SafeBag, error) {
	inner, err := asn1.Marshal(c.Raw)
	if err != nil {
		return p12SafeBag{}, err
	}
	bag, err := asn1.Marshal(p12CertBag{ID: oidP12X509Cert, Value: explicitValue(inner)})
	if err != nil {
		return p12SafeBag{}, fmt.Errorf("encoding certificate bag: %w", err)
	}
	// A nil slice, not an empty one, so that the optional SET is omitted.
	var a []p12Attribute
	if len(attrs) > 0 {
		a = attrs
	}
	return p12SafeBag{ID: oidP12CertBag, Value: explicitValue(bag), Attributes: a}, nil
}

// explicitValue wraps der as [0] EXPLICIT. encoding/asn1 writes a RawValue
// as it is, ignoring the field's tag parameters, so the wrapper is built
// here (and reading gives it back the same way).
func explicitValue(der []byte) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: der}
}

// encryptedContentInfo wraps safe contents in a PKCS#7 encryptedData
// (RFC 5652 §8) with the same PBES2 scheme as the keys.
func encryptedContentInfo(plain, password []byte) (p12ContentInfo, error) {
	enc, err := encryptPKCS8(plain, password, storeIterations)
	if err != nil {
		return p12ContentInfo{}, fmt.Errorf("encrypting certificates: %w", err)
	}
	var info encryptedPrivateKeyInfo
	if _, err := asn1.Unmarshal(enc, &info); err != nil {
		return p12ContentInfo{}, fmt.Errorf("re-reading encrypted certificates: %w", err)
	}
	ed, err := asn1.Marshal(p12EncryptedData{
		Version: 0,
		EncryptedContentInfo: p12EncryptedContentInfo{
			ContentType:      oidP12Data,
			Algorithm:        info.Algorithm,
			EncryptedContent: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, Bytes: info.EncryptedData},
		},
	})
	if err != nil {
		return p12ContentInfo{}, fmt.Errorf("encoding encrypted data: %w", err)
	}
	return p12ContentInfo{
		ContentType: oidP12EncryptedData,
		Content:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: ed},
	}, nil
}
