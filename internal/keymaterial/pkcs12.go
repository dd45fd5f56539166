package keymaterial

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"unicode/utf16"
)

// This file is a small PKCS#12 (RFC 7292) reader. go-pkcs12 refuses stores
// with several key bags and hides friendlyName, but keytool stores routinely
// hold several aliased keys (DEPENDENCIES.md §Keystores), so the bag walk is
// done here with encoding/asn1. Only password integrity mode is supported,
// which is what keytool and OpenSSL write. The MAC may be the classic HMAC
// with the RFC 7292 KDF or PBMAC1.

var (
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidPBMAC1        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 14}
	oidEncryptedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}

	oidKeyBag             = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 1}
	oidShroudedKeyBag     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidCertBag            = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 3}
	oidSafeContentsBag    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 6}
	oidX509Certificate    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 22, 1}
	oidFriendlyName       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 20}
	oidLocalKeyID         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 21}
	oidJavaTrustedKeyUsge = asn1.ObjectIdentifier{2, 16, 840, 1, 113894, 746875, 1, 1}
)

type pfxPDU struct {
	Version  int
	AuthSafe contentInfo
	MacData  macData `asn1:"optional"`
}

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
}

type macData struct {
	Mac        digestInfo
	MacSalt    []byte
	Iterations int `asn1:"optional,default:1"`
}

type digestInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	Digest    []byte
}

type encryptedData struct {
	Version              int
	EncryptedContentInfo encryptedContentInfo
}

type encryptedContentInfo struct {
	ContentType      asn1.ObjectIdentifier
	Algorithm        pkix.AlgorithmIdentifier
	EncryptedContent asn1.RawValue `asn1:"tag:0,optional"`
}

type safeBag struct {
	ID         asn1.ObjectIdentifier
	Value      asn1.RawValue     `asn1:"tag:0,explicit"`
	Attributes []pkcs12Attribute `asn1:"set,optional"`
}

type pkcs12Attribute struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue `asn1:"set"`
}

type certBag struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue `asn1:"tag:0,explicit"`
}

// p12Entry is a key bag or a certificate bag with the attributes that tie
// keys to certificates.
type p12Entry struct {
	// alias is the friendlyName, or for unnamed keys a position number so
	// that they can still be listed and selected.
	alias      string
	named      bool
	localKeyID []byte
	// trusted marks keytool's trusted-certificate entries.
	trusted bool
	// keyDER is a PKCS#8 PrivateKeyInfo (keyBag) or EncryptedPrivateKeyInfo
	// (shrouded); decryption waits until the key is chosen, because each
	// decryption costs a full PBKDF2 run.
	keyDER   []byte
	shrouded bool
	cert     *x509.Certificate
}

type p12Store struct {
	keys  []p12Entry
	certs []p12Entry
	// skipped names the encryption algorithms of encryptedData contents that
	// could not be decrypted here; their bags are missing from keys/certs.
	skipped []string
}

// parsePKCS12 verifies the MAC of a PFX and collects its bags. Errors wrap
// ErrCorrupt, ErrWrongPassword or ErrUnsupportedFormat.
func parsePKCS12(data, password []byte, lim limits) (*p12Store, error) {
	var pfx pfxPDU
	if err := unmarshalDER(data, &pfx); err != nil {
		return nil, fmt.Errorf("pfx does not parse as der (%v): %w", err, ErrCorrupt)
	}
	if pfx.Version != 3 {
		return nil, fmt.Errorf("pfx version %d, want 3: %w", pfx.Version, ErrCorrupt)
	}
	if !pfx.AuthSafe.ContentType.Equal(oidData) {
		return nil, fmt.Errorf("authSafe content type %s: only password integrity (data) is supported, not public-key integrity: %w", pfx.AuthSafe.ContentType, ErrUnsupportedFormat)
	}
	authSafe, err := explicitOctets(pfx.AuthSafe.Content)
	if err != nil {
		return nil, fmt.Errorf("authSafe: %v: %w", err, ErrCorrupt)
	}
	if len(pfx.MacData.Mac.Algorithm.Algorithm) > 0 {
		if err := verifyMAC(&pfx.MacData, authSafe, password, lim); err != nil {
			return nil, err
		}
	}

	var infos []contentInfo
	if err := unmarshalDER(authSafe, &infos); err != nil {
		return nil, fmt.Errorf("authenticated safe does not parse (%v): %w", err, ErrCorrupt)
	}
	st := &p12Store{}
	for i, ci := range infos {
		var contents []byte
		switch {
		case ci.ContentType.Equal(oidData):
			if contents, err = explicitOctets(ci.Content); err != nil {
				return nil, fmt.Errorf("safe contents %d: %v: %w", i+1, err, ErrCorrupt)
			}
		case ci.ContentType.Equal(oidEncryptedData):
			contents, err = decryptSafeContents(ci, password, lim)
			var unsup *unsupportedAlgorithmError
			switch {
			case errors.As(err, &unsup):
				if err := checkForeignPBE(ci, lim); err != nil {
					return nil, fmt.Errorf("safe contents %d: %w", i+1, err)
				}
				st.skipped = append(st.skipped, algorithmName(unsup.oid))
				continue
			case errors.Is(err, errDecrypt):
				return nil, fmt.Errorf("safe contents %d: cannot decrypt with the given password: %w", i+1, ErrWrongPassword)
			case err != nil:
				return nil, fmt.Errorf("safe contents %d: %w", i+1, err)
			}
		default:
			return nil, fmt.Errorf("safe contents %d has content type %s, which is not supported: %w", i+1, ci.ContentType, ErrUnsupportedFormat)
		}
		if err := st.addBags(contents, ci.ContentType.Equal(oidEncryptedData), lim.maxNesting); err != nil {
			return nil, fmt.Errorf("safe contents %d: %w", i+1, err)
		}
	}
	n := 0
	for i := range st.keys {
		if !st.keys[i].named {
			n++
			st.keys[i].alias = strconv.Itoa(n)
		}
	}
	return st, nil
}

// verifyMAC checks the PFX MAC. An empty password is tried both as the bare
// BMPString terminator and as no bytes at all, because implementations
// disagree on how to encode it (OpenSSL accepts both).
func verifyMAC(md *macData, content, password []byte, lim limits) error {
	if md.Mac.Algorithm.Algorithm.Equal(oidPBMAC1) {
		return verifyPBMAC1(md, content, password, lim)
	}
	newHash, ok := digestHashes[md.Mac.Algorithm.Algorithm.String()]
	if !ok {
		return fmt.Errorf("mac digest algorithm %s is not supported (use sha1 or sha256): %w", md.Mac.Algorithm.Algorithm, ErrUnsupportedFormat)
	}
	if err := checkIterations(md.Iterations, lim); err != nil {
		return fmt.Errorf("mac: %v: %w", err, ErrCorrupt)
	}
	candidates := [][]byte{bmpPassword(password)}
	if len(password) == 0 {
		candidates = append(candidates, nil)
	}
	for _, pw := range candidates {
		if hmac.Equal(pkcs12MAC(newHash, pw, md.MacSalt, md.Iterations, content), md.Mac.Digest) {
			return nil
		}
	}
	return fmt.Errorf("integrity check failed (wrong password, or the file was modified): %w", ErrWrongPassword)
}

type pbmac1Params struct {
	KDF pkix.AlgorithmIdentifier
	MAC pkix.AlgorithmIdentifier
}

// verifyPBMAC1 checks a MAC made with PBMAC1 (RFC 9579), which Java 26 and
// OpenSSL 3.4 can write: HMAC keyed by PBKDF2 over the UTF-8 password, with
// all parameters in the algorithm identifier (macSalt and iterations are
// ignored).
func verifyPBMAC1(md *macData, content, password []byte, lim limits) error {
	var p pbmac1Params
	if err := unmarshalDER(md.Mac.Algorithm.Parameters.FullBytes, &p); err != nil {
		return fmt.Errorf("pbmac1 parameters (%v): %w", err, ErrCorrupt)
	}
	var kp pbkdf2Params
	if !p.KDF.Algorithm.Equal(oidPBKDF2) || unmarshalDER(p.KDF.Parameters.FullBytes, &kp) != nil ||
		kp.Salt.Tag != asn1.TagOctetString || kp.Salt.IsCompound {
		return fmt.Errorf("pbmac1: key derivation is not pbkdf2 with a salt: %w", ErrUnsupportedFormat)
	}
	prf, okPRF := sha1Default(kp.PRF.Algorithm)
	newHash, okMAC := hmacHashes[p.MAC.Algorithm.String()]
	if !okPRF || !okMAC {
		return fmt.Errorf("pbmac1: prf %s or mac %s is not supported: %w", kp.PRF.Algorithm, p.MAC.Algorithm, ErrUnsupportedFormat)
	}
	if err := checkIterations(kp.Iterations, lim); err != nil {
		return fmt.Errorf("pbmac1: %v: %w", err, ErrCorrupt)
	}
	// RFC 9579 §7 requires an explicit key length and recommends refusing
	// short ones: a tiny key makes the MAC forgeable.
	if kp.KeyLength < 20 || kp.KeyLength > 64 {
		return fmt.Errorf("pbmac1: key length %d outside 20..64: %w", kp.KeyLength, ErrCorrupt)
	}
	key, err := pbkdf2.Key(prf, string(password), kp.Salt.Bytes, kp.Iterations, kp.KeyLength)
	if err != nil {
		return fmt.Errorf("pbmac1: %v: %w", err, ErrCorrupt)
	}
	m := hmac.New(newHash, key)
	m.Write(content)
	if !hmac.Equal(m.Sum(nil), md.Mac.Digest) {
		return fmt.Errorf("integrity check failed (wrong password, or the file was modified): %w", ErrWrongPassword)
	}
	return nil
}

// sha1Default resolves a PBKDF2 PRF, which defaults to HMAC-SHA1 when absent.
func sha1Default(oid asn1.ObjectIdentifier) (func() hash.Hash, bool) {
	if len(oid) == 0 {
		return sha1.New, true
	}
	h, ok := hmacHashes[oid.String()]
	return h, ok
}

// checkForeignPBE bounds the iteration count of an encryptedData this
// reader cannot decrypt, before go-pkcs12 (which sets no bound) is asked to.
// All PKCS#12 PBE schemes (RFC 7292 appendix C) share the parameter layout.
func checkForeignPBE(ci contentInfo, lim limits) error {
	var ed encryptedData
	var p pbeParams
	if unmarshalDER(ci.Content.Bytes, &ed) != nil || unmarshalDER(ed.EncryptedContentInfo.Algorithm.Parameters.FullBytes, &p) != nil {
		return fmt.Errorf("encryption parameters of %s do not parse: %w", algorithmName(ed.EncryptedContentInfo.Algorithm.Algorithm), ErrUnsupportedFormat)
	}
	if err := checkIterations(p.Iterations, lim); err != nil {
		return fmt.Errorf("%v: %w", err, ErrCorrupt)
	}
	return nil
}

// decryptSafeContents decrypts an encryptedData ContentInfo (RFC 5652 §8).
func decryptSafeContents(ci contentInfo, password []byte, lim limits) ([]byte, error) {
	if ci.Content.Class != asn1.ClassContextSpecific || ci.Content.Tag != 0 {
		return nil, fmt.Errorf("encrypted data content missing: %w", ErrCorrupt)
	}
	var ed encryptedData
	if err := unmarshalDER(ci.Content.Bytes, &ed); err != nil {
		return nil, fmt.Errorf("encrypted data does not parse (%v): %w", err, ErrCorrupt)
	}
	ec := ed.EncryptedContentInfo.EncryptedContent
	if ec.Class != asn1.ClassContextSpecific || ec.Tag != 0 {
		return nil, fmt.Errorf("encrypted data has no content: %w", ErrCorrupt)
	}
	ciphertext := ec.Bytes
	if ec.IsCompound {
		// A constructed [0] holds the ciphertext in OCTET STRING segments.
		ciphertext = nil
		for rest := ec.Bytes; len(rest) > 0; {
			var seg []byte
			var err error
			if rest, err = asn1.Unmarshal(rest, &seg); err != nil {
				return nil, fmt.Errorf("encrypted content segments (%v): %w", err, ErrCorrupt)
			}
			ciphertext = append(ciphertext, seg...)
		}
	}
	plain, err := decryptPBE(ed.EncryptedContentInfo.Algorithm, ciphertext, password, lim)
	var unsup *unsupportedAlgorithmError
	if err != nil && !errors.As(err, &unsup) && !errors.Is(err, errDecrypt) {
		return nil, fmt.Errorf("%v: %w", err, ErrCorrupt)
	}
	return plain, err
}

// addBags parses SafeContents and records its bags. A decrypted SafeContents
// that does not parse means the padding check passed by chance under a wrong
// password, so it is reported as such when encrypted is set.
func (st *p12Store) addBags(contents []byte, encrypted bool, depth int) error {
	var bags []safeBag
	if err := unmarshalDER(contents, &bags); err != nil {
		if encrypted {
			return fmt.Errorf("decrypted contents do not parse (wrong password?): %w", ErrWrongPassword)
		}
		return fmt.Errorf("safe bags do not parse (%v): %w", err, ErrCorrupt)
	}
	for i, bag := range bags {
		e := p12Entry{}
		for _, a := range bag.Attributes {
			switch {
			case a.ID.Equal(oidFriendlyName):
				name, err := decodeBMPAttribute(a.Value.Bytes)
				if err != nil {
					return fmt.Errorf("bag %d friendlyName: %v: %w", i+1, err, ErrCorrupt)
				}
				e.alias, e.named = name, true
			case a.ID.Equal(oidLocalKeyID):
				var id []byte
				if _, err := asn1.Unmarshal(a.Value.Bytes, &id); err != nil {
					return fmt.Errorf("bag %d localKeyId: %v: %w", i+1, err, ErrCorrupt)
				}
				e.localKeyID = id
			case a.ID.Equal(oidJavaTrustedKeyUsge):
				e.trusted = true
			}
		}
		inner := bag.Value.Bytes
		switch {
		case bag.ID.Equal(oidKeyBag), bag.ID.Equal(oidShroudedKeyBag):
			e.keyDER = inner
			e.shrouded = bag.ID.Equal(oidShroudedKeyBag)
			st.keys = append(st.keys, e)
		case bag.ID.Equal(oidCertBag):
			var cb certBag
			if err := unmarshalDER(inner, &cb); err != nil {
				return fmt.Errorf("bag %d: cert bag does not parse (%v): %w", i+1, err, ErrCorrupt)
			}
			if !cb.ID.Equal(oidX509Certificate) {
				// SDSI certificates are not used with TLS.
				continue
			}
			var der []byte
			if err := unmarshalDER(cb.Value.Bytes, &der); err != nil {
				return fmt.Errorf("bag %d: cert bag value (%v): %w", i+1, err, ErrCorrupt)
			}
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return fmt.Errorf("bag %d: certificate does not parse (%v): %w", i+1, err, ErrCorrupt)
			}
			e.cert = c
			st.certs = append(st.certs, e)
		case bag.ID.Equal(oidSafeContentsBag):
			if depth <= 0 {
				return fmt.Errorf("safe contents nested too deeply: %w", ErrCorrupt)
			}
			if err := st.addBags(inner, encrypted, depth-1); err != nil {
				return err
			}
		}
		// CRL and secret bags carry nothing a TLS identity or trust set uses.
	}
	return nil
}

// decryptKey returns the private key of a key entry, trying each password in
// turn.
func (e *p12Entry) decryptKey(lim limits, passwords ...[]byte) (any, error) {
	if !e.shrouded {
		k, err := x509.ParsePKCS8PrivateKey(e.keyDER)
		if err != nil {
			return nil, fmt.Errorf("key bag does not parse (%v): %w", err, ErrCorrupt)
		}
		return k, nil
	}
	var err error
	for _, pw := range passwords {
		var k any
		if k, err = decryptPKCS8(e.keyDER, pw, lim); err == nil {
			return k, nil
		}
		if !errors.Is(err, errDecrypt) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("cannot decrypt the key with the given password: %w", ErrWrongPassword)
}

// checkKeyIterations bounds the KDF iteration count of a shrouded key.
func checkKeyIterations(e p12Entry, lim limits) error {
	if !e.shrouded {
		return nil
	}
	var info encryptedPrivateKeyInfo
	if err := unmarshalDER(e.keyDER, &info); err != nil {
		return fmt.Errorf("key entry %q does not parse (%v): %w", e.alias, err, ErrCorrupt)
	}
	n := 0
	if info.Algorithm.Algorithm.Equal(oidPBES2) {
		var p pbes2Params
		var kp pbkdf2Params
		if unmarshalDER(info.Algorithm.Parameters.FullBytes, &p) == nil && unmarshalDER(p.KDF.Parameters.FullBytes, &kp) == nil {
			n = kp.Iterations
		}
	} else {
		var p pbeParams
		if unmarshalDER(info.Algorithm.Parameters.FullBytes, &p) == nil {
			n = p.Iterations
		}
	}
	if err := checkIterations(n, lim); err != nil {
		return fmt.Errorf("key entry %q: %v: %w", e.alias, err, ErrCorrupt)
	}
	return nil
}

// explicitOctets extracts the OCTET STRING inside a [0] EXPLICIT content,
// joining the segments of a constructed (BER) OCTET STRING.
func explicitOctets(v asn1.RawValue) ([]byte, error) {
	if v.Class != asn1.ClassContextSpecific || v.Tag != 0 || !v.IsCompound {
		return nil, errors.New("content missing")
	}
	var inner asn1.RawValue
	if err := unmarshalDER(v.Bytes, &inner); err != nil {
		return nil, err
	}
	if inner.Class != asn1.ClassUniversal || inner.Tag != asn1.TagOctetString {
		return nil, errors.New("content is not an octet string")
	}
	if !inner.IsCompound {
		return inner.Bytes, nil
	}
	var out []byte
	for rest := inner.Bytes; len(rest) > 0; {
		var seg []byte
		var err error
		if rest, err = asn1.Unmarshal(rest, &seg); err != nil {
			return nil, err
		}
		out = append(out, seg...)
	}
	return out, nil
}

// decodeBMPAttribute decodes the first value of an attribute SET as a
// BMPString (UTF-16 big-endian), the type RFC 7292 gives friendlyName.
func decodeBMPAttribute(set []byte) (string, error) {
	var v asn1.RawValue
	if _, err := asn1.Unmarshal(set, &v); err != nil {
		return "", err
	}
	switch {
	case v.Class == asn1.ClassUniversal && v.Tag == asn1.TagBMPString:
	case v.Class == asn1.ClassUniversal && v.Tag == asn1.TagUTF8String:
		// Some writers ignore the spec and use UTF8String; accept it.
		return string(v.Bytes), nil
	default:
		return "", fmt.Errorf("unexpected string tag %d", v.Tag)
	}
	if len(v.Bytes)%2 != 0 {
		return "", errors.New("odd-length bmpstring")
	}
	u := make([]uint16, len(v.Bytes)/2)
	for i := range u {
		u[i] = uint16(v.Bytes[2*i])<<8 | uint16(v.Bytes[2*i+1])
	}
	return string(utf16.Decode(u)), nil
}

// hasCert reports whether certs already holds c (compared by DER).
func hasCert(certs []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range certs {
		if bytes.Equal(x.Raw, c.Raw) {
			return true
		}
	}
	return false
}
