package keymaterial

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/portcullis/portcullis/internal/testpki"
)

func pkcs1PEM(t *testing.T, l *testpki.Leaf) []byte {
	t.Helper()
	k, ok := l.Key.(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("leaf key is %T, want RSA", l.Key)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

func sec1PEM(t *testing.T, l *testpki.Leaf) []byte {
	t.Helper()
	k, ok := l.Key.(*ecdsa.PrivateKey)
	if !ok {
		t.Fatalf("leaf key is %T, want ECDSA", l.Key)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

// ecParamsPEM is what `openssl ecparam -genkey` writes before the key.
var ecParamsPEM = []byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n")

// legacyEncryptedPEM has the RFC 1423 headers of `openssl genrsa -aes256`;
// the body is never decoded because such keys are refused up front.
const legacyEncryptedPEM = `-----BEGIN RSA PRIVATE KEY-----
Proc-Type: 4,ENCRYPTED
DEK-Info: AES-256-CBC,00112233445566778899AABBCCDDEEFF

AAAA
-----END RSA PRIVATE KEY-----
`
