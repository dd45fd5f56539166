package authserver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/auth"
)

// ClientAuthMethod is how a client proves its identity at the token,
// introspection and revocation endpoints (the IANA "token endpoint
// authentication method" names).
type ClientAuthMethod string

// The supported client authentication methods.
const (
	// MethodSecretBasic sends the client secret with HTTP Basic
	// authentication (RFC 6749 §2.3.1).
	MethodSecretBasic ClientAuthMethod = "client_secret_basic"
	// MethodSecretPost sends the client secret in the form body (RFC 6749
	// §2.3.1).
	MethodSecretPost ClientAuthMethod = "client_secret_post"
	// MethodPrivateKeyJWT sends a JWT assertion signed with the client's
	// private key (RFC 7523 §2.2).
	MethodPrivateKeyJWT ClientAuthMethod = "private_key_jwt"
	// MethodTLSClientAuth presents a client certificate issued by a CA in
	// Options.Trust whose subject or SAN is registered (RFC 8705 §2.1).
	MethodTLSClientAuth ClientAuthMethod = "tls_client_auth"
	// MethodSelfSignedTLSClientAuth presents a registered certificate,
	// compared byte for byte, with no CA involved (RFC 8705 §2.2).
	MethodSelfSignedTLSClientAuth ClientAuthMethod = "self_signed_tls_client_auth"
)

// allMethods lists the methods in the order metadata advertises them.
func allMethods() []ClientAuthMethod {
	return []ClientAuthMethod{
		MethodSecretBasic, MethodSecretPost, MethodPrivateKeyJWT, MethodTLSClientAuth, MethodSelfSignedTLSClientAuth,
	}
}

func methodNames() string {
	all := allMethods()
	names := make([]string, len(all))
	for i, m := range all {
		names[i] = string(m)
	}
	return strings.Join(names, ", ")
}

// Client is a registered OAuth2 client. The zero value of each credential
// field registers no credential of that kind.
type Client struct {
	// ID is the client_id, the token's sub and client_id claims. Required
	// and unique.
	ID string
	// Application is the application the client belongs to. It defaults to
	// ID.
	Application string
	// Methods are the authentication methods the client may use. At least
	// one is required, and each needs its credential below.
	Methods []ClientAuthMethod
	// SecretHashes are "sha256:<64 hex digits>" hashes of the client's
	// secrets (HashSecret computes one), for client_secret_basic and
	// client_secret_post. Several allow a secret to be rolled over.
	//
	// A fast hash is enough because client secrets are generated
	// (NewSecret gives 256 random bits), not chosen by people: guessing a
	// preimage of a 256-bit random value is infeasible however fast the
	// hash, so a slow KDF (bcrypt, Argon2) would add nothing against a
	// stolen hash list while making every token request cost milliseconds
	// of CPU that an unauthenticated caller could demand at will. Hashes
	// are compared in constant time.
	SecretHashes []string
	// JWKS are the public keys that verify the client's private_key_jwt
	// assertions: *ecdsa.PublicKey (P-256, P-384, P-521), *rsa.PublicKey
	// (at least 2048 bits, RS* and PS*) or ed25519.PublicKey.
	JWKS []crypto.PublicKey
	// KeyIDs, when set, has one entry per JWKS key: its kid. An assertion
	// whose header names a kid is then verified only with that key. Empty
	// entries, or an assertion without kid, try every key.
	KeyIDs []string
	// TLSSubjectDN, TLSSANDNS and TLSSANURI are the tls_client_auth
	// registration (RFC 8705 §2.1.2). At least one is required; every one
	// that is set must match the verified client certificate. The subject
	// DN is compared in RFC 4514 form, most specific RDN first, as
	// pkix.Name.String and `openssl x509 -nameopt RFC2253` print it
	// (attribute types and spaces around separators are normalised, values
	// compare exactly). The DNS name matches a dNSName SAN
	// case-insensitively; the URI matches a uniformResourceIdentifier SAN
	// exactly.
	TLSSubjectDN string
	TLSSANDNS    string
	TLSSANURI    string
	// SelfSignedCerts are the certificates accepted for
	// self_signed_tls_client_auth, compared by DER. A certificate outside
	// its validity period is refused.
	SelfSignedCerts []*x509.Certificate
	// Scopes are the scopes the client may be granted.
	Scopes []string
	// BindTokens binds every token to the client certificate (RFC 8705 §3,
	// cnf.x5t#S256) when the client authenticated with one
	// (tls_client_auth or self_signed_tls_client_auth). The registration,
	// not a request parameter, decides: RFC 8705 leaves the trigger to the
	// server's policy, and a client must not be able to opt out of binding.
	// Tokens obtained with another method are never bound.
	BindTokens bool
}

// Options configure a Server.
type Options struct {
	// Issuer is the iss of every token and the base of every endpoint URL:
	// an https URL without query, fragment or trailing slash, e.g.
	// "https://gw.example.com" or "https://gw.example.com/tenant-a".
	// Required.
	Issuer string
	// PathPrefix is where the endpoints live below the issuer's path:
	// {prefix}/token, {prefix}/jwks, {prefix}/introspect and
	// {prefix}/revoke. It defaults to "/oauth2". The metadata is served at
	// /.well-known/oauth-authorization-server followed by the issuer's path
	// (RFC 8414 §3).
	PathPrefix string
	// Clients are the registered clients.
	Clients []Client
	// Trust verifies tls_client_auth certificates (with the clientAuth
	// extended key usage), tried in order. Listeners only request client
	// certificates, so this is where they are verified. Required when any
	// client allows tls_client_auth.
	Trust []auth.Verifier
	// Audiences are the audiences a client may request with the RFC 8707
	// "resource" parameter (or the common "audience" parameter). A token
	// requested without one gets the Issuer as its audience, which is what
	// an API accepting the built-in server's tokens expects unless it names
	// its own audience. Requesting any other value fails with
	// invalid_target.
	Audiences []string
	// TokenTTL is the lifetime of access tokens, at least a second. It
	// defaults to 15 minutes.
	TokenTTL time.Duration
	// Algorithm signs tokens: "ES256" (the default, P-256), "RS256"
	// (2048-bit RSA) or "EdDSA" (Ed25519).
	Algorithm string
	// RotateEvery is how long a signing key signs before Start's schedule
	// replaces it, at least a second. It defaults to 24 hours. The retired key stays in the
	// JWKS and in Keyfunc for TokenTTL plus a minute of clock leeway; its
	// successor has been published since the previous rotation (or start).
	RotateEvery time.Duration
	// KeyDir, if set, keeps signing keys as 0600 PKCS#8 PEM files so a
	// restart keeps signing with (and accepting tokens of) the same keys.
	// The next key's file is named "next-<generated>-<kid>.pem"; versions
	// without a next key skip it with a warning.
	// It is created with mode 0700 if missing. Empty keeps keys in memory
	// only: a restart then invalidates every issued token.
	KeyDir string
	// SubscriptionScopes, if set, further limits the scopes granted to an
	// application: granted = requested ∩ Client.Scopes ∩
	// SubscriptionScopes(application). It must be safe for concurrent use.
	SubscriptionScopes func(application string) []string
	// Now returns the current time. It defaults to time.Now.
	Now func() time.Time
	// Logger receives refused requests, issued tokens and rotations. It
	// defaults to discarding. Secrets and assertions are never logged.
	Logger *slog.Logger
}

// Defaults and limits.
const (
	// DefaultPathPrefix is where the endpoints live by default.
	DefaultPathPrefix = "/oauth2"
	// DefaultTokenTTL is the default lifetime of access tokens.
	DefaultTokenTTL = 15 * time.Minute
	// DefaultRotateEvery is the default signing key lifetime.
	DefaultRotateEvery = 24 * time.Hour
	// DefaultAlgorithm is the default token signing algorithm.
	DefaultAlgorithm = "ES256"
	// MaxAssertionLifetime is how far in the future a private_key_jwt
	// assertion may expire. Short-lived assertions bound the replay cache.
	MaxAssertionLifetime = 5 * time.Minute
	// clockLeeway tolerates clock skew between clients and the gateway on
	// assertion times, and between the gateway and validators on token
	// times (retired keys stay published this much longer).
	clockLeeway = time.Minute
)

const secretPrefix = "sha256:"

// HashSecret returns the at-rest form of a client secret:
// "sha256:" and the lower-case hex SHA-256 of its bytes.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return secretPrefix + hex.EncodeToString(sum[:])
}

// NewSecret returns a new client secret of 256 random bits, base64url
// encoded, and its hash for Client.SecretHashes.
func NewSecret() (secret, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("generating client secret: %w", err)
	}
	secret = base64.RawURLEncoding.EncodeToString(b)
	return secret, HashSecret(secret), nil
}

// verifier is a client's private_key_jwt key.
type verifier struct {
	kid string
	key crypto.PublicKey
}

// client is a Client compiled for lookups.
type client struct {
	Client
	methods    map[ClientAuthMethod]bool
	secrets    [][sha256.Size]byte
	keys       []verifier
	algs       []string
	subjectDN  string
	dns        string
	selfSigned [][]byte
}

func (c *client) allows(m ClientAuthMethod) bool { return c.methods[m] }

// registry is the immutable set of clients, swapped whole by UpdateClients.
type registry struct {
	byID map[string]*client
	// methods are the methods at least one client allows, in allMethods
	// order, for the metadata document.
	methods []string
	// metadata is the encoded RFC 8414 document, which lists methods.
	metadata []byte
}

func compileClients(list []Client, trustSets int) (*registry, error) {
	reg := &registry{byID: make(map[string]*client, len(list))}
	used := map[ClientAuthMethod]bool{}
	for i, c := range list {
		cc, err := compileClient(c, trustSets)
		if err != nil {
			if c.ID == "" {
				return nil, fmt.Errorf("clients[%d]: %w", i, err)
			}
			return nil, fmt.Errorf("client %q: %w", c.ID, err)
		}
		if reg.byID[c.ID] != nil {
			return nil, fmt.Errorf("%w: client_id %q is registered twice", ErrBadClient, c.ID)
		}
		reg.byID[c.ID] = cc
		for m := range cc.methods {
			used[m] = true
		}
	}
	for _, m := range allMethods() {
		if used[m] {
			reg.methods = append(reg.methods, string(m))
		}
	}
	return reg, nil
}

func compileClient(c Client, trustSets int) (*client, error) {
	if c.ID == "" {
		return nil, fmt.Errorf("%w: empty client id", ErrBadClient)
	}
	if len(c.Methods) == 0 {
		return nil, fmt.Errorf("%w: no authentication methods (valid: %s)", ErrBadClient, methodNames())
	}
	cc := &client{Client: c, methods: map[ClientAuthMethod]bool{}}
	if cc.Application == "" {
		cc.Application = c.ID
	}
	cc.Scopes = nil
	for _, s := range c.Scopes {
		if !validScopeToken(s) {
			return nil, fmt.Errorf("%w: scope %q is not an RFC 6749 scope token (printable ASCII without space, '\"' or '\\')", ErrBadClient, s)
		}
		if !slices.Contains(cc.Scopes, s) {
			cc.Scopes = append(cc.Scopes, s)
		}
	}
	for _, m := range c.Methods {
		if !slices.Contains(allMethods(), m) {
			return nil, fmt.Errorf("%w: unknown authentication method %q (valid: %s)", ErrBadClient, m, methodNames())
		}
		cc.methods[m] = true
	}
	for j, h := range c.SecretHashes {
		hexSum, ok := strings.CutPrefix(h, secretPrefix)
		sum, err := hex.DecodeString(hexSum)
		if !ok || err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("%w: secret_hashes[%d] is not \"sha256:<64 hex digits>\" (HashSecret computes it)", ErrBadClient, j)
		}
		cc.secrets = append(cc.secrets, [sha256.Size]byte(sum))
	}
	if (cc.allows(MethodSecretBasic) || cc.allows(MethodSecretPost)) && len(cc.secrets) == 0 {
		return nil, fmt.Errorf("%w: client_secret_basic and client_secret_post need at least one secret hash", ErrBadClient)
	}
	if err := cc.compileKeys(); err != nil {
		return nil, err
	}
	if cc.allows(MethodPrivateKeyJWT) && len(cc.keys) == 0 {
		return nil, fmt.Errorf("%w: private_key_jwt needs at least one public key", ErrBadClient)
	}
	if c.TLSSubjectDN != "" {
		dn, err := normalizeDN(c.TLSSubjectDN)
		if err != nil {
			return nil, fmt.Errorf("%w: tls subject DN: %w", ErrBadClient, err)
		}
		cc.subjectDN = dn
	}
	cc.dns = normalizeDNS(c.TLSSANDNS)
	if c.TLSSANURI != "" {
		if _, err := url.Parse(c.TLSSANURI); err != nil {
			return nil, fmt.Errorf("%w: tls SAN URI %q: %w", ErrBadClient, c.TLSSANURI, err)
		}
	}
	if cc.allows(MethodTLSClientAuth) {
		if cc.subjectDN == "" && cc.dns == "" && c.TLSSANURI == "" {
			return nil, fmt.Errorf("%w: tls_client_auth needs the certificate's subject DN, DNS SAN or URI SAN", ErrBadClient)
		}
		if trustSets == 0 {
			return nil, fmt.Errorf("%w: tls_client_auth needs Options.Trust, the CAs client certificates chain to", ErrBadClient)
		}
	}
	for j, cert := range c.SelfSignedCerts {
		if cert == nil || len(cert.Raw) == 0 {
			return nil, fmt.Errorf("%w: self-signed certificate %d is empty", ErrBadClient, j)
		}
		cc.selfSigned = append(cc.selfSigned, cert.Raw)
	}
	if cc.allows(MethodSelfSignedTLSClientAuth) && len(cc.selfSigned) == 0 {
		return nil, fmt.Errorf("%w: self_signed_tls_client_auth needs at least one registered certificate", ErrBadClient)
	}
	return cc, nil
}

// compileKeys checks the private_key_jwt keys and derives the algorithms
// they may sign with, so an assertion can never pick an algorithm its key
// was not meant for.
func (c *client) compileKeys() error {
	if len(c.KeyIDs) != 0 && len(c.KeyIDs) != len(c.JWKS) {
		return fmt.Errorf("%w: %d key ids for %d keys (give one per key, or none)", ErrBadClient, len(c.KeyIDs), len(c.JWKS))
	}
	for i, k := range c.JWKS {
		var algs []string
		switch k := k.(type) {
		case *ecdsa.PublicKey:
			switch k.Curve {
			case elliptic.P256():
				algs = []string{"ES256"}
			case elliptic.P384():
				algs = []string{"ES384"}
			case elliptic.P521():
				algs = []string{"ES512"}
			default:
				return fmt.Errorf("%w: key %d: unsupported curve (valid: P-256, P-384, P-521)", ErrBadClient, i)
			}
		case *rsa.PublicKey:
			if k.N.BitLen() < 2048 {
				return fmt.Errorf("%w: key %d: RSA key of %d bits (at least 2048 are required)", ErrBadClient, i, k.N.BitLen())
			}
			algs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
		case ed25519.PublicKey:
			algs = []string{"EdDSA"}
		default:
			return fmt.Errorf("%w: key %d: unsupported key type %T (valid: ECDSA, RSA, Ed25519 public keys)", ErrBadClient, i, k)
		}
		v := verifier{key: k}
		if len(c.KeyIDs) > 0 {
			v.kid = c.KeyIDs[i]
		}
		c.keys = append(c.keys, v)
		for _, a := range algs {
			if !slices.Contains(c.algs, a) {
				c.algs = append(c.algs, a)
			}
		}
	}
	return nil
}

// validScopeToken reports whether s is an RFC 6749 §3.3 scope-token:
// 1*( %x21 / %x23-5B / %x5D-7E ).
func validScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// normalizeDNS lower-cases a DNS name and drops a trailing dot.
func normalizeDNS(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}
