package keymaterial

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// pemCertificates returns every CERTIFICATE (and OpenSSL "TRUSTED
// CERTIFICATE") block of data in order. name is used in errors.
func pemCertificates(data []byte, name string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for i := 1; ; i++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		der := block.Bytes
		switch block.Type {
		case "CERTIFICATE":
		case "TRUSTED CERTIFICATE":
			// OpenSSL appends its trust settings after the certificate, so
			// only the first DER value is the certificate.
			var raw asn1.RawValue
			if _, err := asn1.Unmarshal(der, &raw); err != nil {
				return nil, fmt.Errorf("%s: pem block %d (%s): %w", name, i, block.Type, ErrCorrupt)
			}
			der = raw.FullBytes
		default:
			continue
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%s: pem block %d (%s) does not parse as an x.509 certificate (%v): %w", name, i, block.Type, err, ErrCorrupt)
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// pemPrivateKey returns the first private key in data: PKCS#1, SEC1,
// PKCS#8, or PKCS#8 encrypted with PBES2 under password. Blocks of other
// types (certificates, EC PARAMETERS) are skipped.
func pemPrivateKey(data []byte, name string, password []byte, lim limits) (any, error) {
	var seen []string
	for i := 1; ; i++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if !isPEMKeyBlock(block.Type) {
			seen = append(seen, block.Type)
			continue
		}
		return decodePEMKey(block, i, name, password, lim)
	}
	found := "no pem blocks"
	if len(seen) > 0 {
		found = "only " + strings.Join(seen, ", ")
	}
	return nil, fmt.Errorf("%s: no PRIVATE KEY block (found %s): %w", name, found, ErrNoPrivateKey)
}

// pemKeyResult is one private-key block of a PEM file: its key, or why it
// could not be read.
type pemKeyResult struct {
	key any
	err error
}

// pemPrivateKeys returns every private-key block of data in order; a block
// that cannot be decrypted or parsed is returned with its error rather than
// ending the walk, so that a listing can still show it.
func pemPrivateKeys(data []byte, name string, password []byte, lim limits) []pemKeyResult {
	var out []pemKeyResult
	for i := 1; ; i++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return out
		}
		if isPEMKeyBlock(block.Type) {
			k, err := decodePEMKey(block, i, name, password, lim)
			out = append(out, pemKeyResult{key: k, err: err})
		}
	}
}

func isPEMKeyBlock(typ string) bool {
	switch typ {
	case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
		return true
	}
	return false
}

// decodePEMKey decodes private-key block number i of the file name.
func decodePEMKey(block *pem.Block, i int, name string, password []byte, lim limits) (any, error) {
	if block.Type == "ENCRYPTED PRIVATE KEY" {
		if len(password) == 0 {
			return nil, fmt.Errorf("%s: private key is encrypted and no password is set: %w", name, ErrWrongPassword)
		}
		key, err := decryptPKCS8(block.Bytes, password, lim)
		switch {
		case errors.Is(err, errDecrypt):
			return nil, fmt.Errorf("%s: cannot decrypt the private key with the given password: %w", name, ErrWrongPassword)
		case err != nil:
			return nil, fmt.Errorf("%s: encrypted private key: %w", name, err)
		}
		return key, nil
	}
	if _, ok := block.Headers["DEK-Info"]; ok {
		// RFC 1423 PEM encryption is insecure (MD5 key derivation) and
		// deprecated in crypto/x509, so it is refused with a conversion hint
		// instead of being decrypted.
		return nil, fmt.Errorf("%s: pem block %d (%s) uses legacy openssl pem encryption; convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`: %w", name, i, block.Type, ErrUnsupportedFormat)
	}
	key, err := parsePrivateKeyDER(block.Type, block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: pem block %d (%s) does not parse (%v): %w", name, i, block.Type, err, ErrCorrupt)
	}
	return key, nil
}

func parsePrivateKeyDER(typ string, der []byte) (any, error) {
	switch typ {
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(der)
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(der)
	default:
		return x509.ParsePKCS8PrivateKey(der)
	}
}

type encryptedPrivateKeyInfo struct {
	Algorithm     pkix.AlgorithmIdentifier
	EncryptedData []byte
}

// decryptPKCS8 decrypts an EncryptedPrivateKeyInfo (RFC 5958 §3). A
// plaintext that does not parse as a PKCS#8 key is treated like bad padding:
// with CBC a wrong password yields valid-looking padding about once in 256
// tries.
func decryptPKCS8(der, password []byte, lim limits) (any, error) {
	var info encryptedPrivateKeyInfo
	if err := unmarshalDER(der, &info); err != nil {
		return nil, fmt.Errorf("encrypted private key info does not parse (%v): %w", err, ErrCorrupt)
	}
	plain, err := decryptPBE(info.Algorithm, info.EncryptedData, password, lim)
	if err != nil {
		var unsup *unsupportedAlgorithmError
		if errors.As(err, &unsup) || errors.Is(err, errDecrypt) {
			return nil, err
		}
		return nil, fmt.Errorf("%v: %w", err, ErrCorrupt)
	}
	key, err := x509.ParsePKCS8PrivateKey(plain)
	if err != nil {
		return nil, errDecrypt
	}
	return key, nil
}
