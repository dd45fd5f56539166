package pki

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pavlo-v-chernykh/keystore-go/v4"

	"github.com/portcullis/portcullis/internal/keymaterial"
	"software.sslmate.com/src/go-pkcs12"
)

// WritePEM writes an issued certificate into dir (created with mode 0700 if
// missing) as three files: NAME.crt (the leaf followed by its intermediates,
// without the root, which is what a TLS server should send),
// NAME-chain.pem (the leaf and the full chain including the root) and
// NAME.key (mode 0600, PKCS#8, encrypted as MarshalPrivateKeyPEM does when
// keyPassword is not empty). It refuses with ErrExists if any of the files
// exists and removes what it wrote if it fails part-way.
func WritePEM(dir, name string, is *Issued, keyPassword []byte) (certPath, keyPath string, err error) {
	if err := checkFileName(name); err != nil {
		return "", "", err
	}
	if err := checkIssued(is); err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("creating directory %q: %w", dir, err)
	}
	certPath = filepath.Join(dir, name+".crt")
	keyPath = filepath.Join(dir, name+".key")
	chainPath := filepath.Join(dir, name+"-chain.pem")
	if err := refuseExisting(certPath, keyPath, chainPath); err != nil {
		return "", "", err
	}
	keyPEM, err := MarshalPrivateKeyPEM(is.Key, keyPassword)
	if err != nil {
		return "", "", fmt.Errorf("writing %q: %w", keyPath, err)
	}
	leafAndChain := append([]*x509.Certificate{is.Cert}, is.Chain...)
	files := []struct {
		path string
		data []byte
		perm os.FileMode
	}{
		{keyPath, keyPEM, 0o600},
		{certPath, encodeCertsPEM(withoutRoot(leafAndChain)...), 0o644},
		{chainPath, encodeCertsPEM(leafAndChain...), 0o644},
	}
	var written []string
	for _, f := range files {
		if err := writeNewFile(f.path, f.data, f.perm); err != nil {
			for _, p := range written {
				os.Remove(p)
			}
			return "", "", err
		}
		written = append(written, f.path)
	}
	return certPath, keyPath, nil
}

// WritePKCS12 writes the issued key, certificate and chain (up to and
// including the root) to a new PKCS#12 file at path with mode 0600, using
// go-pkcs12's Modern2023 encoder (PBES2 with PBKDF2-HMAC-SHA256 and
// AES-256-CBC, HMAC-SHA256 MAC), which keytool and OpenSSL 1.1.1+ read.
// go-pkcs12 cannot label the key entry, so the file is rewritten to add a
// friendlyName of alias to the key bag, and the MAC is recomputed; keytool
// then lists the entry under alias instead of "1". The password must be
// non-empty printable ASCII, because keytool refuses other PKCS#12
// passwords. An existing file is not replaced (ErrExists).
func WritePKCS12(path, alias string, is *Issued, password []byte) error {
	if err := checkIssued(is); err != nil {
		return err
	}
	if err := checkAlias(alias); err != nil {
		return err
	}
	if err := checkPKCS12Password(password); err != nil {
		return fmt.Errorf("writing %q: %w", path, err)
	}
	der, err := pkcs12.Modern2023.Encode(is.Key, is.Cert, is.Chain, string(password))
	if err != nil {
		return fmt.Errorf("encoding PKCS#12 for %q: %w", path, err)
	}
	der, err = setKeyFriendlyName(der, alias, password)
	if err != nil {
		return fmt.Errorf("encoding PKCS#12 for %q: %w", path, err)
	}
	return writeNewFile(path, der, 0o600)
}

// WriteTrustPKCS12 writes certs as trusted-certificate entries to a new
// PKCS#12 trust store at path (mode 0644), with the Java trust attribute so
// keytool shows them as trustedCertEntry. Aliases are derived as described
// for WriteTrustJKS. The password rules are those of WritePKCS12.
func WriteTrustPKCS12(path string, certs []*x509.Certificate, password []byte) error {
	if len(certs) == 0 {
		return fmt.Errorf("writing trust store %q: %w: no certificates", path, ErrInvalidOption)
	}
	if err := checkPKCS12Password(password); err != nil {
		return fmt.Errorf("writing %q: %w", path, err)
	}
	aliases := TrustAliases(certs)
	entries := make([]pkcs12.TrustStoreEntry, len(certs))
	for i, c := range certs {
		entries[i] = pkcs12.TrustStoreEntry{Cert: c, FriendlyName: aliases[i]}
	}
	der, err := pkcs12.Modern2023.EncodeTrustStoreEntries(entries, string(password))
	if err != nil {
		return fmt.Errorf("encoding PKCS#12 trust store for %q: %w", path, err)
	}
	return writeNewFile(path, der, 0o644)
}

// WriteJKS writes the issued key and its chain (leaf first, up to and
// including the root) as one PrivateKeyEntry named alias in a new JKS file
// at path with mode 0600. The key is protected with the store password, as
// keytool does by default. JKS lowercases aliases. The password must be
// non-empty and representable in Latin-1 (JKS treats each password byte as
// one Java char). An existing file is not replaced (ErrExists).
func WriteJKS(path, alias string, is *Issued, password []byte) error {
	if err := checkIssued(is); err != nil {
		return err
	}
	if err := checkAlias(alias); err != nil {
		return err
	}
	pw, err := javaPassword(password)
	if err != nil {
		return fmt.Errorf("writing %q: %w", path, err)
	}
	defer clear(pw)
	keyDER, err := x509.MarshalPKCS8PrivateKey(is.Key)
	if err != nil {
		return fmt.Errorf("writing %q: marshalling private key: %w", path, err)
	}
	defer clear(keyDER)
	chain := make([]keystore.Certificate, 0, 1+len(is.Chain))
	for _, c := range append([]*x509.Certificate{is.Cert}, is.Chain...) {
		chain = append(chain, keystore.Certificate{Type: "X509", Content: c.Raw})
	}
	ks := keystore.New()
	if err := ks.SetPrivateKeyEntry(alias, keystore.PrivateKeyEntry{
		CreationTime:     time.Now(),
		PrivateKey:       keyDER,
		CertificateChain: chain,
	}, pw); err != nil {
		return fmt.Errorf("writing %q: adding entry %q: %w", path, alias, err)
	}
	return storeJKS(path, ks, pw, 0o600)
}

// WriteTrustJKS writes certs as trustedCertEntry entries to a new JKS trust
// store at path (mode 0644). Each alias is the certificate's subject common
// name, lowercased, with characters other than letters, digits, '.', '_'
// and '-' replaced by '-', and "-2", "-3", ... appended to repeats (see
// TrustAliases). The password rules are those of WriteJKS.
func WriteTrustJKS(path string, certs []*x509.Certificate, password []byte) error {
	if len(certs) == 0 {
		return fmt.Errorf("writing trust store %q: %w: no certificates", path, ErrInvalidOption)
	}
	pw, err := javaPassword(password)
	if err != nil {
		return fmt.Errorf("writing %q: %w", path, err)
	}
	defer clear(pw)
	ks := keystore.New()
	for i, alias := range TrustAliases(certs) {
		if err := ks.SetTrustedCertificateEntry(alias, keystore.TrustedCertificateEntry{
			CreationTime: time.Now(),
			Certificate:  keystore.Certificate{Type: "X509", Content: certs[i].Raw},
		}); err != nil {
			return fmt.Errorf("writing %q: adding entry %q: %w", path, alias, err)
		}
	}
	return storeJKS(path, ks, pw, 0o644)
}

func storeJKS(path string, ks keystore.KeyStore, pw []byte, perm os.FileMode) error {
	var buf bytes.Buffer
	if err := ks.Store(&buf, pw); err != nil {
		return fmt.Errorf("encoding JKS for %q: %w", path, err)
	}
	return writeNewFile(path, buf.Bytes(), perm)
}

// TrustAliases returns the alias WriteTrustJKS and WriteTrustPKCS12 give
// each certificate: the subject common name (or "cert" if it has none),
// lowercased, with characters other than letters, digits, '.', '_' and '-'
// replaced by '-', and "-2", "-3", ... appended to repeats. It is
// keymaterial.DeriveAliases, so that the names of written entries match the
// names inspect gives unnamed ones.
func TrustAliases(certs []*x509.Certificate) []string {
	return keymaterial.DeriveAliases(certs)
}

// withoutRoot drops a trailing self-signed certificate.
func withoutRoot(chain []*x509.Certificate) []*x509.Certificate {
	if len(chain) < 2 {
		return chain
	}
	last := chain[len(chain)-1]
	if bytes.Equal(last.RawIssuer, last.RawSubject) && last.CheckSignatureFrom(last) == nil {
		return chain[:len(chain)-1]
	}
	return chain
}

func checkIssued(is *Issued) error {
	if is == nil || is.Cert == nil || is.Key == nil {
		return fmt.Errorf("%w: nothing to write: certificate or key missing", ErrInvalidOption)
	}
	if !publicKeysEqual(is.Cert.PublicKey, is.Key.Public()) {
		return fmt.Errorf("writing %q: %w", is.Cert.Subject.CommonName, ErrKeyMismatch)
	}
	return nil
}

func checkFileName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return fmt.Errorf("%w: file name %q; use a plain name without path separators", ErrInvalidOption, name)
	}
	return nil
}

func checkAlias(alias string) error {
	if strings.TrimSpace(alias) == "" {
		return fmt.Errorf("%w: empty key store alias", ErrInvalidOption)
	}
	return nil
}

// checkPKCS12Password accepts non-empty printable ASCII: keytool refuses
// non-ASCII PKCS#12 passwords ("Password is not ASCII").
func checkPKCS12Password(password []byte) error {
	if len(password) == 0 {
		return fmt.Errorf("PKCS#12 store: %w", ErrPasswordRequired)
	}
	for _, b := range password {
		if b < 0x20 || b > 0x7e {
			return fmt.Errorf("%w: PKCS#12 passwords must be printable ASCII, because keytool refuses others", ErrPasswordEncoding)
		}
	}
	return nil
}

// javaPassword converts a UTF-8 password to the bytes keystore-go expects:
// one byte per Java char, so only code points up to U+00FF fit. Bytes that
// are not valid UTF-8 are taken as Latin-1 already.
func javaPassword(password []byte) ([]byte, error) {
	if len(password) == 0 {
		return nil, fmt.Errorf("JKS store: %w", ErrPasswordRequired)
	}
	if !utf8.Valid(password) {
		return bytes.Clone(password), nil
	}
	out := make([]byte, 0, len(password))
	for _, r := range string(password) {
		if r > 0xff {
			clear(out)
			return nil, fmt.Errorf("%w: JKS passwords are limited to Latin-1 characters", ErrPasswordEncoding)
		}
		out = append(out, byte(r))
	}
	return out, nil
}
