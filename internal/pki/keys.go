package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"strings"
)

// KeyType names the kind of key pair to generate.
type KeyType string

const (
	// KeyEC is ECDSA on P-256, the default. A TLS server signs once per full
	// handshake, and ECDSA P-256 signing in Go is far cheaper than RSA-2048
	// (Go's RSA-2048 signing is about 4.5 times slower than OpenSSL's), so
	// handshakes through the gateway stay cheap.
	KeyEC KeyType = "ec"
	// KeyRSA is RSA with 2048 bits unless RSABits asks for 3072 or 4096.
	KeyRSA KeyType = "rsa"
)

// DefaultRSABits is the RSA modulus size used when RSABits is zero.
const DefaultRSABits = 2048

// ParseKeyType parses "ec" or "rsa" (case-insensitive). The empty string
// means KeyEC. Any other value is an error that lists the valid ones.
func ParseKeyType(s string) (KeyType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", string(KeyEC):
		return KeyEC, nil
	case string(KeyRSA):
		return KeyRSA, nil
	}
	return "", fmt.Errorf("%w: key type %q; valid types are ec, rsa", ErrInvalidOption, s)
}

// generateKey makes a fresh key pair of the given type. An empty type means
// KeyEC; RSA bits of zero mean DefaultRSABits.
func generateKey(kt KeyType, rsaBits int) (crypto.Signer, error) {
	kt, err := ParseKeyType(string(kt))
	if err != nil {
		return nil, err
	}
	switch kt {
	case KeyRSA:
		if rsaBits == 0 {
			rsaBits = DefaultRSABits
		}
		switch rsaBits {
		case 2048, 3072, 4096:
		default:
			return nil, fmt.Errorf("%w: RSA key size %d; valid sizes are 2048, 3072, 4096", ErrInvalidOption, rsaBits)
		}
		k, err := rsa.GenerateKey(rand.Reader, rsaBits)
		if err != nil {
			return nil, fmt.Errorf("generating RSA-%d key: %w", rsaBits, err)
		}
		return k, nil
	default:
		if rsaBits != 0 {
			return nil, fmt.Errorf("%w: RSA key size %d given for key type ec; it applies only to rsa", ErrInvalidOption, rsaBits)
		}
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generating ECDSA P-256 key: %w", err)
		}
		return k, nil
	}
}

// checkPublicKey refuses keys too weak or too exotic to certify: RSA below
// 2048 bits, and ECDSA curves other than P-256, P-384 and P-521. Ed25519 is
// accepted.
func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("%w: RSA key of %d bits; at least 2048 bits are required", ErrUnsupportedKey, k.N.BitLen())
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return fmt.Errorf("%w: ECDSA curve %s; valid curves are P-256, P-384, P-521", ErrUnsupportedKey, k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return fmt.Errorf("%w: public key of type %T", ErrUnsupportedKey, pub)
	}
	return nil
}

// keyUsageFor returns the leaf key usage for a public key: digital signature
// always, and key encipherment for RSA, which TLS 1.2 RSA key exchange needs.
func keyUsageFor(pub crypto.PublicKey) x509.KeyUsage {
	ku := x509.KeyUsageDigitalSignature
	if _, ok := pub.(*rsa.PublicKey); ok {
		ku |= x509.KeyUsageKeyEncipherment
	}
	return ku
}

// subjectKeyID computes a subject key identifier by RFC 7093 section 2
// method 1: the leftmost 160 bits of the SHA-256 hash of the
// subjectPublicKey bit string.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshalling public key: %w", err)
	}
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("parsing public key: %w", err)
	}
	sum := sha256.Sum256(spki.PublicKey.Bytes)
	return sum[:20], nil
}

// MarshalPrivateKeyPEM encodes key as PKCS#8 PEM. With a nil or empty
// password the block is "PRIVATE KEY"; otherwise it is an "ENCRYPTED PRIVATE
// KEY" protected with PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC), which OpenSSL
// (`openssl pkey -passin`) and Java read.
func MarshalPrivateKeyPEM(key crypto.Signer, password []byte) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshalling private key: %w", err)
	}
	if len(password) == 0 {
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	}
	enc, err := encryptPKCS8(der, password, pbkdf2Iterations)
	clear(der)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: enc}), nil
}

// ParsePrivateKeyPEM reads the first private key in PEM data: PKCS#8
// ("PRIVATE KEY"), encrypted PKCS#8 ("ENCRYPTED PRIVATE KEY", PBES2 with
// PBKDF2 and AES-CBC), SEC 1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE
// KEY"). An encrypted key without a password fails with ErrPasswordRequired,
// and a wrong password with ErrWrongPassword. A password given for an
// unencrypted key is ignored. Legacy OpenSSL PEM encryption (Proc-Type
// headers) is refused with ErrUnsupportedKeyEncryption.
func ParsePrivateKeyPEM(data, password []byte) (crypto.Signer, error) {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("looking for a private key: %w", ErrNoPEM)
		}
		if _, legacy := block.Headers["Proc-Type"]; legacy {
			return nil, fmt.Errorf("%w: legacy PEM encryption in %q block; convert it with `openssl pkcs8 -topk8`", ErrUnsupportedKeyEncryption, block.Type)
		}
		switch block.Type {
		case "PRIVATE KEY":
			return parsePKCS8Signer(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			if len(password) == 0 {
				return nil, fmt.Errorf("decrypting private key: %w", ErrPasswordRequired)
			}
			der, err := decryptPKCS8(block.Bytes, password)
			if err != nil {
				return nil, err
			}
			k, err := parsePKCS8Signer(der)
			clear(der)
			if err != nil {
				// Padding happened to check out by chance, but the
				// plaintext is garbage: the password was wrong.
				return nil, fmt.Errorf("decrypting private key: %w", ErrWrongPassword)
			}
			return k, nil
		case "EC PRIVATE KEY":
			k, err := x509.ParseECPrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parsing EC private key: %w", err)
			}
			return k, nil
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parsing RSA private key: %w", err)
			}
			return k, nil
		}
	}
}

func parsePKCS8Signer(der []byte) (crypto.Signer, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parsing PKCS#8 private key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: private key of type %T cannot sign", ErrUnsupportedKey, k)
	}
	return s, nil
}

// publicKeysEqual reports whether a and b are the same public key.
func publicKeysEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}
