package registry

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestValidateNamesTheField(t *testing.T) {
	t.Parallel()
	fp := keyHash("c")[len("sha256:"):]
	tests := []struct {
		name       string
		obj        Object
		wantFields []string
	}{
		{"tenant without a name", Tenant{}, []string{"name"}},
		{"tenant name with a slash", Tenant{Name: "a/b"}, []string{"name"}},
		{"tenant name too long", Tenant{Name: strings.Repeat("a", 129)}, []string{"name"}},
		{"display name too long", Tenant{Name: "a", DisplayName: strings.Repeat("x", 201)}, []string{"display_name"}},
		{"api without tenant", API{Name: "a"}, []string{"tenant"}},
		{"api spec not JSON", API{Tenant: "t", Name: "a", Spec: []byte(`{`)}, []string{"spec"}},
		{"api spec not an object", API{Tenant: "t", Name: "a", Spec: []byte(`[1]`)}, []string{"spec"}},
		{"certificate ref with fingerprint and rule", Application{Tenant: "t", Name: "a", Certificates: []CertificateRef{{Fingerprint: fp, CN: "x"}}},
			[]string{"certificates[0]"}},
		{"short fingerprint", Application{Tenant: "t", Name: "a", Certificates: []CertificateRef{{Fingerprint: "abcd"}}},
			[]string{"certificates[0].fingerprint"}},
		{"rule without issuer", Application{Tenant: "t", Name: "a", Certificates: []CertificateRef{{CN: "x"}}},
			[]string{"certificates[0].issuer"}},
		{"rule with only an issuer", Application{Tenant: "t", Name: "a", Certificates: []CertificateRef{{Issuer: "CN=CA"}}},
			[]string{"certificates[0]"}},
		{"duplicate fingerprint", Application{Tenant: "t", Name: "a", Certificates: []CertificateRef{{Fingerprint: fp}, {Fingerprint: colons(fp)}}},
			[]string{"certificates[1].fingerprint"}},
		{"plain-text API key", Application{Tenant: "t", Name: "a", APIKeyHashes: []string{"my-secret-key"}}, []string{"api_key_hashes[0]"}},
		{"duplicate API key hash", Application{Tenant: "t", Name: "a", APIKeyHashes: []string{keyHash("k"), "sha256:" + strings.ToUpper(keyHash("k")[len("sha256:"):])}},
			[]string{"api_key_hashes[1]"}},
		{"oauth2 without client id or methods", Application{Tenant: "t", Name: "a", OAuth2: &OAuth2Client{}},
			[]string{"oauth2.client_id", "oauth2.auth_methods"}},
		{"oauth2 unknown method", Application{Tenant: "t", Name: "a", OAuth2: &OAuth2Client{ClientID: "c", AuthMethods: []string{"password"}}},
			[]string{"oauth2.auth_methods[0]"}},
		{"oauth2 secret method without secret", Application{Tenant: "t", Name: "a", OAuth2: &OAuth2Client{ClientID: "c", AuthMethods: []string{"client_secret_basic"}}},
			[]string{"oauth2.secret_hashes"}},
		{"oauth2 secret without secret method", Application{Tenant: "t", Name: "a", OAuth2: &OAuth2Client{ClientID: "c", AuthMethods: []string{"private_key_jwt"}, SecretHashes: []string{keyHash("s")}, JWKS: []byte(`{"keys":[{}]}`)}},
			[]string{"oauth2.secret_hashes"}},
		{"private_key_jwt without keys", Application{Tenant: "t", Name: "a", OAuth2: &OAuth2Client{ClientID: "c", AuthMethods: []string{"private_key_jwt"}}},
			[]string{"oauth2.jwks"}},
		{"tls_client_auth without a rule", Application{Tenant: "t", Name: "a", Certificates: []CertificateRef{{Fingerprint: fp}}, OAuth2: &OAuth2Client{ClientID: "c", AuthMethods: []string{"tls_client_auth"}}},
			[]string{"oauth2.auth_methods"}},
		{"self-signed without a fingerprint", Application{Tenant: "t", Name: "a", OAuth2: &OAuth2Client{ClientID: "c", AuthMethods: []string{"self_signed_tls_client_auth"}}},
			[]string{"oauth2.auth_methods"}},
		{"client id with a space", Application{Tenant: "t", Name: "a", OAuth2: &OAuth2Client{ClientID: "my client", AuthMethods: []string{"client_secret_post"}, SecretHashes: []string{keyHash("s")}}},
			[]string{"oauth2.client_id"}},
		{"bad scope", Application{Tenant: "t", Name: "a", OAuth2: &OAuth2Client{ClientID: "c", AuthMethods: []string{"client_secret_post"}, SecretHashes: []string{keyHash("s")}, Scopes: []string{"a b"}}},
			[]string{"oauth2.scopes[0]"}},
		{"rate limit all wrong", Plan{Tenant: "t", Name: "p", RateLimit: &RateLimit{Rate: 0, Period: "-1s", Burst: -1}},
			[]string{"rate_limit.rate", "rate_limit.period", "rate_limit.burst"}},
		{"quota all wrong", Plan{Tenant: "t", Name: "p", Quota: &Quota{Limit: -1, Window: "week"}}, []string{"quota.limit", "quota.window"}},
		{"duplicate plan scope", Plan{Tenant: "t", Name: "p", Scopes: []string{"r", "r"}}, []string{"scopes[1]"}},
		{"subscription without anything", Subscription{}, []string{"tenant", "name", "application", "api", "plan", "state"}},
		{"certificate with a private key", Certificate{Tenant: "t", Name: "c", PEM: "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"},
			[]string{"pem"}},
		{"certificate not PEM", Certificate{Tenant: "t", Name: "c", PEM: "hello"}, []string{"pem"}},
		{"certificate that does not parse", Certificate{Tenant: "t", Name: "c", PEM: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
			[]string{"pem"}},
		{"empty trust set", TrustSet{Tenant: "t", Name: "ts"}, []string{"certificates"}},
		{"trust set naming a certificate twice", TrustSet{Tenant: "t", Name: "ts", CertificateNames: []string{"a", "a"}}, []string{"certificates[1]"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.obj.Validate()
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want ErrInvalid", err)
			}
			if got := fieldsOf(err); !reflect.DeepEqual(got, tc.wantFields) {
				t.Errorf("fields = %q, want %q (%v)", got, tc.wantFields, err)
			}
			mustContain(t, err, tc.obj.Key().String())
		})
	}
}

func TestValidObjectsValidate(t *testing.T) {
	t.Parallel()
	fp := keyHash("c")[len("sha256:"):]
	for _, obj := range []Object{
		acme, orders, shop, gold, shopOrders,
		API{Tenant: "t", Name: "no-spec"},
		Application{Tenant: "t", Name: "bare"},
		Application{Tenant: "t", Name: "self-signed", Certificates: []CertificateRef{{Fingerprint: colons(fp)}},
			OAuth2: &OAuth2Client{ClientID: "urn:client:1", AuthMethods: []string{"self_signed_tls_client_auth", "private_key_jwt"}, JWKS: []byte(`{"keys":[{"kty":"EC"}]}`)}},
		Plan{Tenant: "t", Name: "unlimited"},
		Certificate{Tenant: "t", Name: "ca", PEM: selfSignedPEM(t, "CA")},
		TrustSet{Tenant: "t", Name: "ts", CertificateNames: []string{"ca"}},
	} {
		if err := obj.Validate(); err != nil {
			t.Errorf("%s: %v", obj.Key(), err)
		}
	}
}
