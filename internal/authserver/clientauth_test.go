package authserver

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis/portcullis/internal/auth"
	"github.com/portcullis/portcullis/internal/testpki"
)

// fixture is a server with one client per authentication method and the
// credentials to use them.
type fixture struct {
	*env
	secret       string
	jwtKey       *ecdsaKey
	otherKey     *ecdsaKey
	ca, otherCA  *testpki.CA
	tlsLeaf      *testpki.Leaf // CN=tls-client, issued by ca
	wrongDNLeaf  *testpki.Leaf // CN=someone-else, issued by ca
	untrusted    *testpki.Leaf // CN=tls-client, issued by otherCA
	serverOnly   *testpki.Leaf // CN=tls-client, serverAuth only
	sanLeaf      *testpki.Leaf // DNS client.example.com and a SPIFFE URI
	selfCert     *testpki.Leaf
	otherSelf    *testpki.Leaf
	expiredSelf  *testpki.Leaf // registered, but its validity ended
	secretHolder *testpki.Leaf // a certificate presented by secret-client
}

type ecdsaKey struct {
	signer crypto.Signer
	public crypto.PublicKey
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{}
	secret, hash, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	f.secret = secret
	k := newECKey(t)
	f.jwtKey = &ecdsaKey{k, k.Public()}
	ok := newECKey(t)
	f.otherKey = &ecdsaKey{ok, ok.Public()}
	f.ca = testpki.NewCA(t, "Client CA")
	f.otherCA = testpki.NewCA(t, "Client CA")
	f.tlsLeaf = f.ca.Issue(t, "tls-client", testpki.Client())
	f.wrongDNLeaf = f.ca.Issue(t, "someone-else", testpki.Client())
	f.untrusted = f.otherCA.Issue(t, "tls-client", testpki.Client())
	f.serverOnly = f.ca.Issue(t, "tls-client", testpki.Server())
	f.sanLeaf = f.ca.Issue(t, "san-client", testpki.Client(), testpki.DNS("Client.Example.com"), testpki.URI("spiffe://example.org/ns/prod/sa/app"))
	f.selfCert = selfSigned(t, "self-client")
	f.otherSelf = selfSigned(t, "self-client")
	f.expiredSelf = selfSignedValid(t, "self-client", time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	f.secretHolder = f.ca.Issue(t, "secret-client", testpki.Client())
	f.env = newEnv(t, Options{
		Trust: []auth.Verifier{newTrustSet(t, f.ca)},
		Clients: []Client{
			{ID: "secret-client", Methods: []ClientAuthMethod{MethodSecretBasic, MethodSecretPost}, SecretHashes: []string{HashSecret("old-secret"), hash}, Scopes: []string{"read", "write"}, BindTokens: true},
			{ID: "basic-only", Methods: []ClientAuthMethod{MethodSecretBasic}, SecretHashes: []string{hash}},
			{ID: "jwt-client", Methods: []ClientAuthMethod{MethodPrivateKeyJWT}, JWKS: []crypto.PublicKey{f.jwtKey.public}, KeyIDs: []string{"k1"}},
			{ID: "tls-client", Application: "orders-app", Methods: []ClientAuthMethod{MethodTLSClientAuth}, TLSSubjectDN: "CN = tls-client, o=Portcullis tests", BindTokens: true},
			{ID: "san-client", Methods: []ClientAuthMethod{MethodTLSClientAuth}, TLSSANDNS: "client.example.com.", TLSSANURI: "spiffe://example.org/ns/prod/sa/app"},
			{ID: "self-client", Methods: []ClientAuthMethod{MethodSelfSignedTLSClientAuth}, SelfSignedCerts: []*x509.Certificate{f.selfCert.Cert, f.expiredSelf.Cert}, BindTokens: true},
		},
	})
	return f
}

// assertion signs a private_key_jwt assertion for jwt-client, with
// claims adjusted by mod.
func (f *fixture) assertion(t *testing.T, key crypto.Signer, mod func(jwt.MapClaims)) string {
	now := f.clock.Now()
	c := jwt.MapClaims{
		"iss": "jwt-client",
		"sub": "jwt-client",
		"aud": testIssuer,
		"exp": now.Add(time.Minute).Unix(),
		"iat": now.Unix(),
		"jti": strings.ReplaceAll(t.Name(), "/", "-") + "-" + now.Format(time.RFC3339Nano),
	}
	if mod != nil {
		mod(c)
	}
	return signAssertion(t, key, jwt.SigningMethodES256, "k1", c)
}

func TestClientAuthentication(t *testing.T) {
	f := newFixture(t)
	grant := func(v url.Values) url.Values {
		v.Set("grant_type", "client_credentials")
		return v
	}
	rawAuth := func(v string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", v) }
	}
	tests := []struct {
		name   string
		cert   *testpki.Leaf
		form   func(t *testing.T) url.Values
		mod    func(*http.Request)
		status int
		code   string
		method ClientAuthMethod
		sub    string
	}{
		{name: "client_secret_basic with the current secret", form: func(*testing.T) url.Values { return url.Values{} }, mod: basic("secret-client", f.secret), status: 200, sub: "secret-client"},
		{name: "client_secret_basic with a rolled-over secret", form: func(*testing.T) url.Values { return url.Values{} }, mod: basic("secret-client", "old-secret"), status: 200, sub: "secret-client"},
		{name: "client_secret_basic with a wrong secret", form: func(*testing.T) url.Values { return url.Values{} }, mod: basic("secret-client", "wrong-"+f.secret), status: 401, code: errInvalidClient},
		{name: "client_secret_basic with an empty secret", form: func(*testing.T) url.Values { return url.Values{} }, mod: basic("secret-client", ""), status: 401, code: errInvalidClient},
		{name: "client_secret_basic for an unknown client", form: func(*testing.T) url.Values { return url.Values{} }, mod: basic("nobody", f.secret), status: 401, code: errInvalidClient},
		{name: "Basic credentials that are not base64", form: func(*testing.T) url.Values { return url.Values{} }, mod: rawAuth("Basic %%%not-base64%%%"), status: 401, code: errInvalidClient},
		{name: "Basic credentials without a colon", form: func(*testing.T) url.Values { return url.Values{} }, mod: rawAuth("Basic c2VjcmV0LWNsaWVudA=="), status: 401, code: errInvalidClient},
		{name: "Basic credentials with a bad percent-encoding", form: func(*testing.T) url.Values { return url.Values{} }, mod: rawAuth("Basic c2VjcmV0LWNsaWVudDolemc="), status: 401, code: errInvalidClient},
		{name: "a Bearer Authorization header is no client authentication", form: func(*testing.T) url.Values { return url.Values{} }, mod: rawAuth("Bearer abc"), status: 401, code: errInvalidClient},
		{name: "Basic and a client_id for another client", form: func(*testing.T) url.Values { return url.Values{"client_id": {"basic-only"}} }, mod: basic("secret-client", f.secret), status: 400, code: errInvalidRequest},
		{name: "client_secret_post", form: func(*testing.T) url.Values {
			return url.Values{"client_id": {"secret-client"}, "client_secret": {f.secret}}
		}, status: 200, sub: "secret-client"},
		{name: "client_secret_post with a wrong secret", form: func(*testing.T) url.Values {
			return url.Values{"client_id": {"secret-client"}, "client_secret": {"nope"}}
		}, status: 401, code: errInvalidClient},
		{name: "client_secret_post without client_id", form: func(*testing.T) url.Values { return url.Values{"client_secret": {f.secret}} }, status: 401, code: errInvalidClient},
		{name: "client_secret_post for a client registered only for Basic", form: func(*testing.T) url.Values {
			return url.Values{"client_id": {"basic-only"}, "client_secret": {f.secret}}
		}, status: 401, code: errInvalidClient},
		{name: "Basic and client_secret_post together", form: func(*testing.T) url.Values {
			return url.Values{"client_id": {"secret-client"}, "client_secret": {f.secret}}
		}, mod: basic("secret-client", f.secret), status: 400, code: errInvalidRequest},
		{name: "private_key_jwt", form: func(t *testing.T) url.Values { return assertionForm(f.assertion(t, f.jwtKey.signer, nil)) }, status: 200, sub: "jwt-client"},
		{name: "private_key_jwt with aud = the token endpoint and a matching client_id", form: func(t *testing.T) url.Values {
			v := assertionForm(f.assertion(t, f.jwtKey.signer, func(c jwt.MapClaims) { c["aud"] = []string{"https://other.example", testIssuer + "/oauth2/token"} }))
			v.Set("client_id", "jwt-client")
			return v
		}, status: 200, sub: "jwt-client"},
		{name: "private_key_jwt signed by an unregistered key", form: func(t *testing.T) url.Values { return assertionForm(f.assertion(t, f.otherKey.signer, nil)) }, status: 401, code: errInvalidClient},
		{name: "private_key_jwt naming an unregistered kid", form: func(t *testing.T) url.Values {
			c := jwt.MapClaims{"iss": "jwt-client", "sub": "jwt-client", "aud": testIssuer, "exp": f.clock.Now().Add(time.Minute).Unix(), "jti": "kid-test"}
			return assertionForm(signAssertion(t, f.jwtKey.signer, jwt.SigningMethodES256, "k2", c))
		}, status: 401, code: errInvalidClient},
		{name: "private_key_jwt that expired", form: func(t *testing.T) url.Values {
			return assertionForm(f.assertion(t, f.jwtKey.signer, func(c jwt.MapClaims) {
				c["exp"] = f.clock.Now().Add(-2 * time.Minute).Unix()
				c["iat"] = f.clock.Now().Add(-3 * time.Minute).Unix()
			}))
		}, status: 401, code: errInvalidClient},
		{name: "private_key_jwt without exp", form: func(t *testing.T) url.Values {
			return assertionForm(f.assertion(t, f.jwtKey.signer, func(c jwt.MapClaims) { delete(c, "exp") }))
		}, status: 401, code: errInvalidClient},
		{name: "private_key_jwt expiring too far ahead", form: func(t *testing.T) url.Values {
			return assertionForm(f.assertion(t, f.jwtKey.signer, func(c jwt.MapClaims) { c["exp"] = f.clock.Now().Add(10 * time.Minute).Unix() }))
		}, status: 401, code: errInvalidClient},
		{name: "private_key_jwt for another audience", form: func(t *testing.T) url.Values {
			return assertionForm(f.assertion(t, f.jwtKey.signer, func(c jwt.MapClaims) { c["aud"] = "https://other-as.example.com" }))
		}, status: 401, code: errInvalidClient},
		{name: "private_key_jwt without jti", form: func(t *testing.T) url.Values {
			return assertionForm(f.assertion(t, f.jwtKey.signer, func(c jwt.MapClaims) { delete(c, "jti") }))
		}, status: 401, code: errInvalidClient},
		{name: "private_key_jwt whose iss is not its sub", form: func(t *testing.T) url.Values {
			return assertionForm(f.assertion(t, f.jwtKey.signer, func(c jwt.MapClaims) { c["iss"] = "secret-client" }))
		}, status: 401, code: errInvalidClient},
		{name: "private_key_jwt with a client_id for another client", form: func(t *testing.T) url.Values {
			v := assertionForm(f.assertion(t, f.jwtKey.signer, nil))
			v.Set("client_id", "secret-client")
			return v
		}, status: 401, code: errInvalidClient},
		{name: "private_key_jwt with alg none", form: func(t *testing.T) url.Values {
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"iss": "jwt-client", "sub": "jwt-client", "aud": testIssuer, "exp": f.clock.Now().Add(time.Minute).Unix(), "jti": "none"})
			s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			return assertionForm(s)
		}, status: 401, code: errInvalidClient},
		{name: "private_key_jwt with a wrong assertion type", form: func(t *testing.T) url.Values {
			v := assertionForm(f.assertion(t, f.jwtKey.signer, nil))
			v.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
			return v
		}, status: 401, code: errInvalidClient},
		{name: "private_key_jwt for a client registered for secrets", form: func(t *testing.T) url.Values {
			return assertionForm(f.assertion(t, f.jwtKey.signer, func(c jwt.MapClaims) { c["iss"], c["sub"] = "secret-client", "secret-client" }))
		}, status: 401, code: errInvalidClient},
		{name: "tls_client_auth with the registered subject DN", cert: f.tlsLeaf, form: func(*testing.T) url.Values { return url.Values{"client_id": {"tls-client"}} }, status: 200, sub: "tls-client"},
		{name: "tls_client_auth with another subject DN", cert: f.wrongDNLeaf, form: func(*testing.T) url.Values { return url.Values{"client_id": {"tls-client"}} }, status: 401, code: errInvalidClient},
		{name: "tls_client_auth with a certificate from an untrusted CA", cert: f.untrusted, form: func(*testing.T) url.Values { return url.Values{"client_id": {"tls-client"}} }, status: 401, code: errInvalidClient},
		{name: "tls_client_auth with a certificate without clientAuth usage", cert: f.serverOnly, form: func(*testing.T) url.Values { return url.Values{"client_id": {"tls-client"}} }, status: 401, code: errInvalidClient},
		{name: "tls_client_auth without a certificate", form: func(*testing.T) url.Values { return url.Values{"client_id": {"tls-client"}} }, status: 401, code: errInvalidClient},
		{name: "tls_client_auth with the registered DNS and URI SANs", cert: f.sanLeaf, form: func(*testing.T) url.Values { return url.Values{"client_id": {"san-client"}} }, status: 200, sub: "san-client"},
		{name: "tls_client_auth with a certificate lacking the SANs", cert: f.tlsLeaf, form: func(*testing.T) url.Values { return url.Values{"client_id": {"san-client"}} }, status: 401, code: errInvalidClient},
		{name: "self_signed_tls_client_auth with the registered certificate", cert: f.selfCert, form: func(*testing.T) url.Values { return url.Values{"client_id": {"self-client"}} }, status: 200, sub: "self-client"},
		{name: "self_signed_tls_client_auth with another self-signed certificate", cert: f.otherSelf, form: func(*testing.T) url.Values { return url.Values{"client_id": {"self-client"}} }, status: 401, code: errInvalidClient},
		{name: "self_signed_tls_client_auth with a registered but expired certificate", cert: f.expiredSelf, form: func(*testing.T) url.Values { return url.Values{"client_id": {"self-client"}} }, status: 401, code: errInvalidClient},
		{name: "self_signed_tls_client_auth with a CA-issued certificate", cert: f.tlsLeaf, form: func(*testing.T) url.Values { return url.Values{"client_id": {"self-client"}} }, status: 401, code: errInvalidClient},
		{name: "a certificate does not authenticate a secret client", cert: f.secretHolder, form: func(*testing.T) url.Values { return url.Values{"client_id": {"secret-client"}} }, status: 401, code: errInvalidClient},
		{name: "no credentials at all", form: func(*testing.T) url.Values { return url.Values{} }, status: 401, code: errInvalidClient},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c *http.Client
			if tc.cert != nil {
				c = f.client(tlsCert(tc.cert))
			} else {
				c = f.client(nil)
			}
			r := f.post(c, "/oauth2/token", grant(tc.form(t)), tc.mod)
			if r.status != tc.status {
				t.Fatalf("status = %d, want %d (%s)", r.status, tc.status, r.raw)
			}
			if got := r.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			if tc.status != 200 {
				if got := r.str("error"); got != tc.code {
					t.Errorf("error = %q, want %q (%s)", got, tc.code, r.raw)
				}
				if tc.code == errInvalidClient && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic ") {
					t.Errorf("WWW-Authenticate = %q, want a Basic challenge", r.header.Get("WWW-Authenticate"))
				}
				return
			}
			_, claims, err := f.parseToken(r.str("access_token"), testIssuer)
			if err != nil {
				t.Fatalf("issued token does not validate: %v", err)
			}
			if claims["sub"] != tc.sub || claims["client_id"] != tc.sub {
				t.Errorf("sub, client_id = %v, %v, want %s", claims["sub"], claims["client_id"], tc.sub)
			}
		})
	}
	logs := f.logs.String()
	for _, secret := range []string{f.secret, "wrong-" + f.secret, "old-secret"} {
		if strings.Contains(logs, secret) {
			t.Errorf("a client secret reached the log:\n%s", logs)
		}
	}
	if !strings.Contains(logs, "wrong client secret") || !strings.Contains(logs, "the certificate did not verify") {
		t.Errorf("the log does not say why requests were refused:\n%s", logs)
	}
}

func TestPrivateKeyJWTReplayRefused(t *testing.T) {
	f := newFixture(t)
	form := assertionForm(f.assertion(t, f.jwtKey.signer, func(c jwt.MapClaims) { c["jti"] = "once" }))
	form.Set("grant_type", "client_credentials")
	if r := f.post(nil, "/oauth2/token", form, nil); r.status != 200 {
		t.Fatalf("first use: %d %s", r.status, r.raw)
	}
	r := f.post(nil, "/oauth2/token", form, nil)
	if r.status != 401 || r.str("error") != errInvalidClient {
		t.Fatalf("replay: %d %s, want 401 invalid_client", r.status, r.raw)
	}
	if !strings.Contains(f.logs.String(), "replayed") {
		t.Errorf("the log does not name the replay:\n%s", f.logs.String())
	}
	// The same jti is per client: it does not block a fresh assertion with
	// another jti, and a refused (forged) assertion does not burn a jti.
	forged := assertionForm(f.assertion(t, f.otherKey.signer, func(c jwt.MapClaims) { c["jti"] = "fresh" }))
	forged.Set("grant_type", "client_credentials")
	if r := f.post(nil, "/oauth2/token", forged, nil); r.status != 401 {
		t.Fatalf("forged assertion: %d %s", r.status, r.raw)
	}
	good := assertionForm(f.assertion(t, f.jwtKey.signer, func(c jwt.MapClaims) { c["jti"] = "fresh" }))
	good.Set("grant_type", "client_credentials")
	if r := f.post(nil, "/oauth2/token", good, nil); r.status != 200 {
		t.Fatalf("fresh jti after a forged one: %d %s", r.status, r.raw)
	}
}

func TestReplayCacheForgetsExpiredEntries(t *testing.T) {
	var c replayCache
	now := time.Unix(1_000_000, 0)
	for i := range 200 {
		if !c.add(string(rune('a'+i%26))+strings.Repeat("x", i), now.Add(time.Minute), now) {
			t.Fatalf("entry %d refused", i)
		}
	}
	if c.add("a", now.Add(time.Minute), now) {
		t.Fatal("a live entry was accepted twice")
	}
	later := now.Add(2 * time.Minute)
	if !c.add("a", later.Add(time.Minute), later) {
		t.Fatal("an expired entry still blocks its key")
	}
	for i := range 200 {
		c.add(strings.Repeat("y", i+1), later.Add(time.Minute), later)
	}
	if len(c.seen) > 210 {
		t.Errorf("cache holds %d entries; expired ones were not swept", len(c.seen))
	}
}

func TestSecretsNeverInResponses(t *testing.T) {
	f := newFixture(t)
	for _, mod := range []func(*http.Request){basic("secret-client", "wrong-"+f.secret), basic("nobody", f.secret)} {
		r := f.post(nil, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, mod)
		if strings.Contains(r.raw, f.secret) {
			t.Errorf("response carries the secret: %s", r.raw)
		}
	}
}

// TestCertificateMethodNeedsHandshakeCert checks that a client certificate
// forwarded in a header is not taken for one from the handshake.
func TestCertificateMethodNeedsHandshakeCert(t *testing.T) {
	f := newFixture(t)
	r := f.post(nil, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"tls-client"}}, func(r *http.Request) {
		r.Header.Set("Client-Cert", ":"+base64.StdEncoding.EncodeToString(f.tlsLeaf.Cert.Raw)+":")
	})
	if r.status != 401 {
		t.Fatalf("status = %d, want 401", r.status)
	}
}
