package keymaterial

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"unicode/utf16"
	"unicode/utf8"
)

// limits bounds the work an untrusted file can demand. It is passed down
// rather than kept in a package variable so that fuzzing can lower it.
type limits struct {
	// maxIterations caps KDF iteration counts. Real stores use 2048 (OpenSSL)
	// to 10000 (keytool); a huge count in a damaged or hostile file would
	// otherwise stall loading for minutes.
	maxIterations int
	// maxNesting caps nested safeContents bags (RFC 7292 §4.2.6).
	maxNesting int
}

var defaultLimits = limits{maxIterations: 10_000_000, maxNesting: 4}

// errDecrypt is internal: a decryption produced bad padding or an
// unparsable plaintext. Callers turn it into ErrWrongPassword or ErrCorrupt
// depending on whether the password was already verified.
var errDecrypt = errors.New("decryption failed")

var (
	oidPBES2      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHMACSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA224 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 8}
	oidHMACSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACSHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACSHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	oidAES128CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidDESEDE3CBC = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}

	// RFC 7292 appendix C: PKCS#12 password-based encryption.
	oidPBEWithSHAAnd3KeyTripleDESCBC = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 3}

	oidSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA224 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 4}
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
)

// algorithmNames gives readable names for the encryption algorithms we meet
// but do not implement, so errors can say what the file uses.
var algorithmNames = map[string]string{
	"1.2.840.113549.1.12.1.1": "pbeWithSHAAnd128BitRC4",
	"1.2.840.113549.1.12.1.2": "pbeWithSHAAnd40BitRC4",
	"1.2.840.113549.1.12.1.4": "pbeWithSHAAnd2-KeyTripleDES-CBC",
	"1.2.840.113549.1.12.1.5": "pbeWithSHAAnd128BitRC2-CBC",
	"1.2.840.113549.1.12.1.6": "pbeWithSHAAnd40BitRC2-CBC",
	"1.2.840.113549.1.5.3":    "pbeWithMD5AndDES-CBC",
	"1.2.840.113549.1.5.10":   "pbeWithSHA1AndDES-CBC",
}

func algorithmName(oid asn1.ObjectIdentifier) string {
	if n, ok := algorithmNames[oid.String()]; ok {
		return n + " (" + oid.String() + ")"
	}
	return oid.String()
}

// unsupportedAlgorithmError reports an encryption algorithm this package does
// not implement; the PKCS#12 reader uses it to decide on a fallback.
type unsupportedAlgorithmError struct{ oid asn1.ObjectIdentifier }

func (e *unsupportedAlgorithmError) Error() string {
	return "encryption algorithm " + algorithmName(e.oid) + " is not supported"
}

func (e *unsupportedAlgorithmError) Unwrap() error { return ErrUnsupportedFormat }

type pbes2Params struct {
	KDF    pkix.AlgorithmIdentifier
	Scheme pkix.AlgorithmIdentifier
}

type pbkdf2Params struct {
	Salt       asn1.RawValue
	Iterations int
	KeyLength  int                      `asn1:"optional"`
	PRF        pkix.AlgorithmIdentifier `asn1:"optional"`
}

type pbeParams struct {
	Salt       []byte
	Iterations int
}

// decryptPBE decrypts ciphertext encrypted under alg, which is PBES2 (RFC
// 8018) or pbeWithSHAAnd3-KeyTripleDESCBC (RFC 7292 appendix C). PBES2 takes
// the password's bytes as they are (UTF-8, as OpenSSL and Java do); the
// PKCS#12 scheme takes them as a BMPString. Wrong passwords surface as
// errDecrypt.
func decryptPBE(alg pkix.AlgorithmIdentifier, ciphertext, password []byte, lim limits) ([]byte, error) {
	switch {
	case alg.Algorithm.Equal(oidPBES2):
		return decryptPBES2(alg.Parameters.FullBytes, ciphertext, password, lim)
	case alg.Algorithm.Equal(oidPBEWithSHAAnd3KeyTripleDESCBC):
		var p pbeParams
		if err := unmarshalDER(alg.Parameters.FullBytes, &p); err != nil {
			return nil, fmt.Errorf("pbe parameters: %w", err)
		}
		if err := checkIterations(p.Iterations, lim); err != nil {
			return nil, err
		}
		bmp := bmpPassword(password)
		key := pkcs12KDF(sha1.New, 1, bmp, p.Salt, p.Iterations, 24)
		iv := pkcs12KDF(sha1.New, 2, bmp, p.Salt, p.Iterations, 8)
		block, err := des.NewTripleDESCipher(key)
		if err != nil {
			return nil, err
		}
		return cbcDecrypt(block, iv, ciphertext)
	default:
		return nil, &unsupportedAlgorithmError{oid: alg.Algorithm}
	}
}

func decryptPBES2(params, ciphertext, password []byte, lim limits) ([]byte, error) {
	var p pbes2Params
	if err := unmarshalDER(params, &p); err != nil {
		return nil, fmt.Errorf("pbes2 parameters: %w", err)
	}
	if !p.KDF.Algorithm.Equal(oidPBKDF2) {
		return nil, &unsupportedAlgorithmError{oid: p.KDF.Algorithm}
	}
	var kp pbkdf2Params
	if err := unmarshalDER(p.KDF.Parameters.FullBytes, &kp); err != nil {
		return nil, fmt.Errorf("pbkdf2 parameters: %w", err)
	}
	// The salt is a CHOICE; only the "specified" OCTET STRING form is used
	// in practice (RFC 8018 §A.2).
	if kp.Salt.Class != asn1.ClassUniversal || kp.Salt.Tag != asn1.TagOctetString || kp.Salt.IsCompound {
		return nil, errors.New("pbkdf2: salt is not an octet string")
	}
	if err := checkIterations(kp.Iterations, lim); err != nil {
		return nil, err
	}
	prf, ok := sha1Default(kp.PRF.Algorithm)
	if !ok {
		return nil, &unsupportedAlgorithmError{oid: kp.PRF.Algorithm}
	}

	var (
		keyLen  int
		newBlk  func([]byte) (cipher.Block, error)
		blkSize int
	)
	switch s := p.Scheme.Algorithm; {
	case s.Equal(oidAES128CBC):
		keyLen, newBlk, blkSize = 16, aes.NewCipher, aes.BlockSize
	case s.Equal(oidAES192CBC):
		keyLen, newBlk, blkSize = 24, aes.NewCipher, aes.BlockSize
	case s.Equal(oidAES256CBC):
		keyLen, newBlk, blkSize = 32, aes.NewCipher, aes.BlockSize
	case s.Equal(oidDESEDE3CBC):
		keyLen, newBlk, blkSize = 24, des.NewTripleDESCipher, des.BlockSize
	default:
		return nil, &unsupportedAlgorithmError{oid: s}
	}
	if kp.KeyLength != 0 && kp.KeyLength != keyLen {
		return nil, fmt.Errorf("pbkdf2: key length %d does not fit the cipher (%d)", kp.KeyLength, keyLen)
	}
	var iv []byte
	if err := unmarshalDER(p.Scheme.Parameters.FullBytes, &iv); err != nil || len(iv) != blkSize {
		return nil, errors.New("pbes2: cipher iv missing or of the wrong size")
	}
	key, err := pbkdf2.Key(prf, string(password), kp.Salt.Bytes, kp.Iterations, keyLen)
	if err != nil {
		return nil, fmt.Errorf("pbkdf2: %w", err)
	}
	block, err := newBlk(key)
	if err != nil {
		return nil, err
	}
	return cbcDecrypt(block, iv, ciphertext)
}

var hmacHashes = map[string]func() hash.Hash{
	oidHMACSHA1.String():   sha1.New,
	oidHMACSHA224.String(): sha256.New224,
	oidHMACSHA256.String(): sha256.New,
	oidHMACSHA384.String(): sha512.New384,
	oidHMACSHA512.String(): sha512.New,
}

var digestHashes = map[string]func() hash.Hash{
	oidSHA1.String():   sha1.New,
	oidSHA224.String(): sha256.New224,
	oidSHA256.String(): sha256.New,
	oidSHA384.String(): sha512.New384,
	oidSHA512.String(): sha512.New,
}

func checkIterations(n int, lim limits) error {
	if n < 1 || n > lim.maxIterations {
		return fmt.Errorf("iteration count %d outside 1..%d", n, lim.maxIterations)
	}
	return nil
}

// cbcDecrypt decrypts and removes PKCS#7 padding. Bad padding is almost
// always a wrong password, so it is reported as errDecrypt.
func cbcDecrypt(block cipher.Block, iv, ciphertext []byte) ([]byte, error) {
	bs := block.BlockSize()
	if len(ciphertext) == 0 || len(ciphertext)%bs != 0 {
		return nil, fmt.Errorf("ciphertext length %d is not a multiple of %d: %w", len(ciphertext), bs, errDecrypt)
	}
	out := make([]byte, len(ciphertext))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, ciphertext)
	pad := int(out[len(out)-1])
	if pad == 0 || pad > bs {
		return nil, errDecrypt
	}
	for _, b := range out[len(out)-pad:] {
		if int(b) != pad {
			return nil, errDecrypt
		}
	}
	return out[:len(out)-pad], nil
}

// pkcs12KDF derives n bytes as RFC 7292 appendix B.2 specifies. id selects
// the purpose: 1 key, 2 IV, 3 MAC key. password is already a BMPString with
// its two-byte terminator.
func pkcs12KDF(newHash func() hash.Hash, id byte, password, salt []byte, iterations, n int) []byte {
	h := newHash()
	u, v := h.Size(), h.BlockSize()
	d := bytes.Repeat([]byte{id}, v)
	stretch := func(b []byte) []byte {
		if len(b) == 0 {
			return nil
		}
		out := make([]byte, v*((len(b)+v-1)/v))
		for i := range out {
			out[i] = b[i%len(b)]
		}
		return out
	}
	I := append(stretch(salt), stretch(password)...)
	out := make([]byte, 0, n+u)
	B := make([]byte, v)
	for len(out) < n {
		h.Reset()
		h.Write(d)
		h.Write(I)
		a := h.Sum(nil)
		for range iterations - 1 {
			h.Reset()
			h.Write(a)
			a = h.Sum(a[:0])
		}
		out = append(out, a...)
		if len(out) >= n {
			break
		}
		for i := range B {
			B[i] = a[i%u]
		}
		// I_j = (I_j + B + 1) mod 2^(8v), treating each as a big-endian integer.
		for j := 0; j < len(I); j += v {
			carry := 1
			for k := v - 1; k >= 0; k-- {
				s := int(I[j+k]) + int(B[k]) + carry
				I[j+k] = byte(s)
				carry = s >> 8
			}
		}
	}
	return out[:n]
}

// pkcs12MAC computes the PFX integrity MAC (RFC 7292 §5.1) with HMAC over
// the hash named by alg and a key from the PKCS#12 KDF.
func pkcs12MAC(newHash func() hash.Hash, bmp, salt []byte, iterations int, content []byte) []byte {
	key := pkcs12KDF(newHash, 3, bmp, salt, iterations, newHash().Size())
	m := hmac.New(newHash, key)
	m.Write(content)
	return m.Sum(nil)
}

// PKCS12MACSHA256 is the HMAC-SHA256 integrity MAC of a PKCS#12 file
// (RFC 7292 §5.1) over content, keyed from password by the PKCS#12 KDF; the
// pki package writes stores with it, this package verifies them.
func PKCS12MACSHA256(password, salt []byte, iterations int, content []byte) []byte {
	return pkcs12MAC(sha256.New, bmpPassword(password), salt, iterations, content)
}

// bmpPassword encodes a password as the zero-terminated BMPString (UTF-16
// big-endian) that the PKCS#12 KDF expects. A password that is not valid
// UTF-8 is taken as Latin-1, byte by byte.
func bmpPassword(password []byte) []byte {
	runes := passwordRunes(password)
	u := utf16.Encode(runes)
	out := make([]byte, 0, 2*len(u)+2)
	for _, c := range u {
		out = append(out, byte(c>>8), byte(c))
	}
	return append(out, 0, 0)
}

func passwordRunes(password []byte) []rune {
	if utf8.Valid(password) {
		return []rune(string(password))
	}
	r := make([]rune, len(password))
	for i, b := range password {
		r[i] = rune(b)
	}
	return r
}

// unmarshalDER parses exactly one DER value from b into v.
func unmarshalDER(b []byte, v any) error {
	rest, err := asn1.Unmarshal(b, v)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return errors.New("trailing data after asn.1 value")
	}
	return nil
}
