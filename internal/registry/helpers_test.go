package registry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openTest opens a fresh store in a temporary directory and closes it when
// the test ends.
func openTest(t testing.TB, opts ...Option) *SQLiteStore {
	t.Helper()
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "registry.db"), opts...)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// put stores obj as API-managed or fails the test.
func put(t testing.TB, s Store, obj Object) Resource {
	t.Helper()
	r, err := s.Put(context.Background(), obj, AnyVersion, ManagedByAPI)
	if err != nil {
		t.Fatalf("Put %s: %v", obj.Key(), err)
	}
	return r
}

// keyHash returns the at-rest form of an API key or client secret.
func keyHash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// selfSignedPEM makes a throwaway certificate named cn.
func selfSignedPEM(t testing.TB, cn string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IsCA:         true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// The fixture: tenant "acme" with one of each kind.
var (
	acme   = Tenant{Name: "acme", DisplayName: "Acme Corp"}
	orders = API{Tenant: "acme", Name: "orders", Spec: []byte(`{"path":"/orders"}`)}
	shop   = Application{
		Tenant:       "acme",
		Name:         "shop",
		Certificates: []CertificateRef{{Issuer: "CN=Partners CA", CN: "shop"}},
		APIKeyHashes: []string{keyHash("shop-key")},
		OAuth2: &OAuth2Client{
			ClientID: "shop-client", AuthMethods: []string{"client_secret_basic", "tls_client_auth"},
			SecretHashes: []string{keyHash("s3cret")}, Scopes: []string{"orders:read"},
		},
	}
	gold = Plan{
		Tenant: "acme", Name: "gold",
		RateLimit: &RateLimit{Rate: 10, Period: "1s", Burst: 20},
		Quota:     &Quota{Limit: 10000, Window: QuotaDay},
		Scopes:    []string{"orders:read"},
	}
	shopOrders = Subscription{Tenant: "acme", Name: "shop-orders", Application: "shop", API: "orders", Plan: "gold", State: StateActive}
)

// seed stores the tenant, API, application and plan of the fixture.
func seed(t testing.TB, s Store) {
	t.Helper()
	for _, o := range []Object{acme, orders, shop, gold} {
		put(t, s, o)
	}
}

// fieldsOf returns the fields a *ValidationError names, or nil.
func fieldsOf(err error) []string {
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	var out []string
	for _, f := range ve.Fields {
		out = append(out, f.Field)
	}
	return out
}

// mustContain fails unless err's message contains every part.
func mustContain(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}
