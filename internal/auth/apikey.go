package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/portcullis/portcullis/internal/problem"
)

// DefaultAPIKeyHeader is the header an API key is read from when
// APIKeyOptions.Header is empty.
const DefaultAPIKeyHeader = "X-API-Key"

// hashPrefix marks the only hash algorithm APIKey.Hash may use.
const hashPrefix = "sha256:"

// APIKey is one application's key, stored only as a hash.
type APIKey struct {
	// Application is the id requests with this key are attributed to.
	Application string
	// Hash is "sha256:" followed by the lower-case hex SHA-256 of the key,
	// as HashAPIKey returns it. Upper-case hex is accepted.
	Hash string
}

// APIKeyOptions configure an APIKeyAuth.
type APIKeyOptions struct {
	// Header is the request header carrying the key. It defaults to
	// DefaultAPIKeyHeader.
	Header string
	// Query, when set, is a query parameter that may carry the key instead.
	// Empty means keys in the URL are not accepted (URLs end up in logs and
	// browser histories).
	Query string
	// Keys are the accepted keys. A hash may belong to one application
	// only.
	Keys []APIKey
}

// APIKeyAuth authenticates a request by an API key in a header or a query
// parameter. It is immutable and safe for concurrent use.
//
// Keys are looked up by their SHA-256 in a map. A map lookup's timing may
// depend on the hash being looked up, but that reveals nothing useful: the
// attacker controls the key, not its hash, and learning how a hash compares
// with stored hashes gives no route to a preimage of a high-entropy secret.
// The hash found is still compared with subtle.ConstantTimeCompare, so no
// byte-wise comparison of secrets ever happens.
type APIKeyAuth struct {
	header string
	query  string
	byHash map[[sha256.Size]byte]apiKeyEntry
}

type apiKeyEntry struct {
	app  string
	hash [sha256.Size]byte
}

var (
	_ Authenticator      = (*APIKeyAuth)(nil)
	_ CredentialStripper = (*APIKeyAuth)(nil)
)

// HashAPIKey returns the at-rest form of key: "sha256:" and the lower-case
// hex SHA-256 of its bytes.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hashPrefix + hex.EncodeToString(sum[:])
}

// NewAPIKey builds the authenticator. It fails when a hash is not
// "sha256:<64 hex digits>", an entry names no application, or one hash is
// given to two applications.
func NewAPIKey(o APIKeyOptions) (*APIKeyAuth, error) {
	a := &APIKeyAuth{
		header: http.CanonicalHeaderKey(o.Header),
		query:  o.Query,
		byHash: make(map[[sha256.Size]byte]apiKeyEntry, len(o.Keys)),
	}
	if a.header == "" {
		a.header = DefaultAPIKeyHeader
	}
	for i, k := range o.Keys {
		if k.Application == "" {
			return nil, fmt.Errorf("api_key: %w: key %d names no application", ErrBadAPIKey, i)
		}
		rest, ok := strings.CutPrefix(k.Hash, hashPrefix)
		if !ok {
			return nil, fmt.Errorf("api_key: %w: application %q: hash must start with %q (see `portcullis hash-api-key`); keys are never stored in plain text", ErrBadAPIKey, k.Application, hashPrefix)
		}
		raw, err := hex.DecodeString(rest)
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("api_key: %w: application %q: hash must be %q followed by 64 hex digits", ErrBadAPIKey, k.Application, hashPrefix)
		}
		var h [sha256.Size]byte
		copy(h[:], raw)
		if prev, ok := a.byHash[h]; ok && prev.app != k.Application {
			return nil, fmt.Errorf("api_key: %w: the same key hash is registered to %q and %q", ErrBadAPIKey, prev.app, k.Application)
		}
		a.byHash[h] = apiKeyEntry{app: k.Application, hash: h}
	}
	return a, nil
}

// Name returns "api_key".
func (a *APIKeyAuth) Name() string { return "api_key" }

// credential describes the credential for a combined "none presented"
// detail.
func (a *APIKeyAuth) credential() string {
	if a.query != "" {
		return "an API key (" + a.header + " header or " + a.query + " query parameter)"
	}
	return "an API key (" + a.header + " header)"
}

// Authenticate reads the key from the header or, if configured, the query
// parameter, removes it from r (StripCredentials) and looks up its hash. It
// fails closed with api_key.missing when no non-empty key is present and
// api_key.invalid when the key is unknown or more than one key is sent
// (which one to believe would be a guess). No WWW-Authenticate header is
// set: there is no registered HTTP authentication scheme for API keys.
func (a *APIKeyAuth) Authenticate(r *http.Request) (*Principal, error) {
	var presented []string
	for _, v := range r.Header.Values(a.header) {
		if v = strings.TrimSpace(v); v != "" {
			presented = append(presented, v)
		}
	}
	if a.query != "" && r.URL != nil {
		for _, v := range queryValues(r.URL.RawQuery, a.query) {
			if v != "" {
				presented = append(presented, v)
			}
		}
	}
	a.StripCredentials(r)

	n := len(presented)
	if n == 0 {
		return nil, &problem.Error{
			Code:   problem.CodeAPIKeyMissing,
			Detail: "This API requires an API key, and the request carried none.",
			Log: []any{"auth", "api_key", "reason", "missing",
				"explanation", "No key in the " + a.header + " header" + a.queryWords() + ". Fix: send the application's key in the " + a.header + " header."},
		}
	}
	if n > 1 {
		return nil, &problem.Error{
			Code:   problem.CodeAPIKeyInvalid,
			Detail: "The request carried more than one API key.",
			Log: []any{"auth", "api_key", "reason", "several_keys", "count", n,
				"explanation", "The request carried several API keys (repeated header or query parameter, or both). Fix: send exactly one key."},
		}
	}
	sum := sha256.Sum256([]byte(presented[0]))
	e, ok := a.byHash[sum]
	if !ok || subtle.ConstantTimeCompare(e.hash[:], sum[:]) != 1 {
		return nil, &problem.Error{
			Code:   problem.CodeAPIKeyInvalid,
			Detail: "The API key is not valid.",
			Log: []any{"auth", "api_key", "reason", "unknown_key", "key_hash_prefix", hex.EncodeToString(sum[:4]),
				"explanation", "The key's SHA-256 matches no application's api_keys entry. Fix: check the key, or register HashAPIKey(key) under applications[].api_keys."},
		}
	}
	return &Principal{Application: e.app, Methods: []string{"api_key"}}, nil
}

func (a *APIKeyAuth) queryWords() string {
	if a.query == "" {
		return ""
	}
	return " or the " + a.query + " query parameter"
}

// StripCredentials removes the key header, every case variant included, and
// every occurrence of the query parameter from r.URL.RawQuery and
// r.RequestURI, so neither the upstream nor the access log sees the key.
func (a *APIKeyAuth) StripCredentials(r *http.Request) {
	for k := range r.Header {
		if strings.EqualFold(k, a.header) {
			delete(r.Header, k)
		}
	}
	if a.query == "" || r.URL == nil || r.URL.RawQuery == "" {
		return
	}
	stripped, changed := removeQueryParam(r.URL.RawQuery, a.query)
	if !changed {
		return
	}
	r.URL.RawQuery = stripped
	r.URL.ForceQuery = false
	if i := strings.IndexByte(r.RequestURI, '?'); i >= 0 {
		r.RequestURI = r.RequestURI[:i]
		if stripped != "" {
			r.RequestURI += "?" + stripped
		}
	}
	r.Form, r.PostForm = nil, nil
}

// queryValues returns the decoded values of every name parameter in a raw
// query, splitting on '&' as net/url does since Go 1.17. Pairs that do not
// decode are compared and returned as written.
func queryValues(raw, name string) []string {
	var out []string
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(pair, "=")
		if unescapeQuery(k) == name {
			out = append(out, unescapeQuery(v))
		}
	}
	return out
}

// removeQueryParam drops every name parameter from a raw query, keeping the
// other pairs byte for byte.
func removeQueryParam(raw, name string) (string, bool) {
	var b strings.Builder
	changed := false
	for rest := raw; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		k, _, _ := strings.Cut(pair, "=")
		if unescapeQuery(k) == name {
			changed = true
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(pair)
	}
	return b.String(), changed
}

func unescapeQuery(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	u, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return u
}
