package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis/portcullis/internal/auth"
	"github.com/portcullis/portcullis/internal/problem"
)

// metadataPath is the RFC 8414 §3 well-known path, followed by the
// issuer's path.
const metadataPath = "/.well-known/oauth-authorization-server"

// maxFormSize bounds a request body; the largest legitimate one carries a
// client assertion or a token, a few KiB.
const maxFormSize = 64 << 10

// rotateRetry is how long the rotation schedule waits after a failed
// rotation (e.g. KeyDir not writable) before trying again.
const rotateRetry = time.Minute

// endpoints are the server's endpoints, as request paths or as URLs.
type endpoints struct {
	token, jwks, introspect, revoke, metadata string
}

// Server is the built-in authorization server. It is safe for concurrent
// use; clients can be replaced with UpdateClients and keys rotated while it
// serves.
type Server struct {
	issuer             string
	paths, urls        endpoints
	trust              []auth.Verifier
	audiences          []string
	ttl                time.Duration
	rotateEvery        time.Duration
	alg                string
	keyDir             string
	subscriptionScopes func(string) []string
	now                func() time.Time
	log                *slog.Logger
	parser             *jwt.Parser

	clients  atomic.Pointer[registry]
	keys     atomic.Pointer[keyRing]
	rotateMu sync.Mutex
	replays  replayCache
	revoked  revocationList

	runMu  sync.Mutex
	stop   context.CancelFunc
	done   chan struct{}
	closed bool
}

// New validates o, loads the signing keys from o.KeyDir (or makes one) and
// returns a server that is ready to serve. The key rotation schedule runs
// only after Start. A key loaded from KeyDir that is older than RotateEvery,
// or of another algorithm than o.Algorithm, is retired at once (its tokens
// stay valid) and a new one made.
func New(o Options) (*Server, error) {
	u, err := url.Parse(o.Issuer)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
		strings.HasSuffix(o.Issuer, "/") || u.Opaque != "" {
		return nil, fmt.Errorf("%w: issuer %q must be an https URL without user, query, fragment or trailing slash, e.g. https://gw.example.com (RFC 8414 §2)", ErrBadOptions, o.Issuer)
	}
	prefix := o.PathPrefix
	if prefix == "" {
		prefix = DefaultPathPrefix
	}
	prefix = strings.TrimSuffix(prefix, "/")
	if !strings.HasPrefix(prefix, "/") || strings.ContainsAny(prefix, "?#") {
		return nil, fmt.Errorf("%w: path prefix %q must start with \"/\" and hold no query or fragment", ErrBadOptions, o.PathPrefix)
	}
	s := &Server{
		issuer:             o.Issuer,
		trust:              slices.Clone(o.Trust),
		ttl:                o.TokenTTL,
		rotateEvery:        o.RotateEvery,
		alg:                o.Algorithm,
		keyDir:             o.KeyDir,
		subscriptionScopes: o.SubscriptionScopes,
		now:                o.Now,
		log:                o.Logger,
	}
	if s.ttl == 0 {
		s.ttl = DefaultTokenTTL
	}
	if s.ttl < time.Second {
		return nil, fmt.Errorf("%w: token TTL %s is less than a second", ErrBadOptions, o.TokenTTL)
	}
	if s.rotateEvery == 0 {
		s.rotateEvery = DefaultRotateEvery
	}
	if s.rotateEvery < time.Second {
		return nil, fmt.Errorf("%w: key rotation interval %s is less than a second", ErrBadOptions, o.RotateEvery)
	}
	if s.alg == "" {
		s.alg = DefaultAlgorithm
	}
	if !slices.Contains(signingAlgorithms(), s.alg) {
		return nil, fmt.Errorf("%w: unsupported signing algorithm %q (valid: %s)", ErrBadOptions, s.alg, strings.Join(signingAlgorithms(), ", "))
	}
	for _, a := range o.Audiences {
		if a == "" {
			return nil, fmt.Errorf("%w: empty audience", ErrBadOptions)
		}
		if !slices.Contains(s.audiences, a) {
			s.audiences = append(s.audiences, a)
		}
	}
	for i, v := range s.trust {
		if v == nil {
			return nil, fmt.Errorf("%w: trust set %d is nil", ErrBadOptions, i)
		}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.parser = jwt.NewParser(
		jwt.WithValidMethods(signingAlgorithms()),
		jwt.WithIssuer(s.issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.now),
	)
	base := u.Path + prefix
	s.paths = endpoints{
		token:      base + "/token",
		jwks:       base + "/jwks",
		introspect: base + "/introspect",
		revoke:     base + "/revoke",
		metadata:   metadataPath + u.Path,
	}
	s.urls = endpoints{
		token:      s.issuer + prefix + "/token",
		jwks:       s.issuer + prefix + "/jwks",
		introspect: s.issuer + prefix + "/introspect",
		revoke:     s.issuer + prefix + "/revoke",
		metadata:   u.Scheme + "://" + u.Host + metadataPath + u.EscapedPath(),
	}
	if err := s.UpdateClients(o.Clients); err != nil {
		return nil, err
	}

	var ring *keyRing
	if s.keyDir != "" {
		if err := os.MkdirAll(s.keyDir, 0o700); err != nil {
			return nil, fmt.Errorf("creating key directory: %w", err)
		}
		if ring, err = s.loadKeys(s.keyDir, s.now()); err != nil {
			return nil, err
		}
	}
	if ring != nil && ring.current.alg == s.alg && s.now().Before(ring.current.created.Add(s.rotateEvery)) {
		// Keys written by a version without a next key get one now.
		if ring, err = s.ensureNextLocked(ring); err != nil {
			return nil, err
		}
		s.keys.Store(ring)
		return s, nil
	}
	if err := s.rotateLocked(ring); err != nil {
		return nil, err
	}
	return s, nil
}

// UpdateClients replaces the registered clients; requests in flight finish
// with the clients they started with. On error the old clients stay.
func (s *Server) UpdateClients(clients []Client) error {
	reg, err := compileClients(clients, len(s.trust))
	if err != nil {
		return err
	}
	if reg.metadata, err = s.metadata(reg.methods); err != nil {
		return err
	}
	s.clients.Store(reg)
	return nil
}

// Issuer returns the iss of the server's tokens.
func (s *Server) Issuer() string { return s.issuer }

// Application returns the application a client_id belongs to, so a token's
// client_id resolves to the same application as a certificate would.
func (s *Server) Application(clientID string) (string, bool) {
	c := s.clients.Load().byID[clientID]
	if c == nil {
		return "", false
	}
	return c.Application, true
}

// metadataDoc is the RFC 8414 §2 authorization server metadata, with the
// RFC 8705 §3.3 bound-token flag.
type metadataDoc struct {
	Issuer                                             string   `json:"issuer"`
	TokenEndpoint                                      string   `json:"token_endpoint"`
	JWKSURI                                            string   `json:"jwks_uri"`
	IntrospectionEndpoint                              string   `json:"introspection_endpoint"`
	RevocationEndpoint                                 string   `json:"revocation_endpoint"`
	GrantTypesSupported                                []string `json:"grant_types_supported"`
	ResponseTypesSupported                             []string `json:"response_types_supported"`
	TokenEndpointAuthMethodsSupported                  []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupported         []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	IntrospectionEndpointAuthMethodsSupported          []string `json:"introspection_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthSigningAlgValuesSupported []string `json:"introspection_endpoint_auth_signing_alg_values_supported,omitempty"`
	RevocationEndpointAuthMethodsSupported             []string `json:"revocation_endpoint_auth_methods_supported"`
	RevocationEndpointAuthSigningAlgValuesSupported    []string `json:"revocation_endpoint_auth_signing_alg_values_supported,omitempty"`
	TLSClientCertificateBoundAccessTokens              bool     `json:"tls_client_certificate_bound_access_tokens"`
}

// metadata encodes the metadata document. The authentication methods are
// those at least one client is registered for; no authorization endpoint
// exists, so response_types_supported (required by RFC 8414) is empty.
func (s *Server) metadata(methods []string) ([]byte, error) {
	if methods == nil {
		methods = []string{}
	}
	var algs []string
	if slices.Contains(methods, string(MethodPrivateKeyJWT)) {
		algs = []string{"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}
	}
	b, err := json.Marshal(metadataDoc{
		Issuer:                            s.issuer,
		TokenEndpoint:                     s.urls.token,
		JWKSURI:                           s.urls.jwks,
		IntrospectionEndpoint:             s.urls.introspect,
		RevocationEndpoint:                s.urls.revoke,
		GrantTypesSupported:               []string{"client_credentials"},
		ResponseTypesSupported:            []string{},
		TokenEndpointAuthMethodsSupported: methods,
		TokenEndpointAuthSigningAlgValuesSupported:         algs,
		IntrospectionEndpointAuthMethodsSupported:          methods,
		IntrospectionEndpointAuthSigningAlgValuesSupported: algs,
		RevocationEndpointAuthMethodsSupported:             methods,
		RevocationEndpointAuthSigningAlgValuesSupported:    algs,
		TLSClientCertificateBoundAccessTokens:              true,
	})
	if err != nil {
		return nil, fmt.Errorf("encoding metadata: %w", err)
	}
	return b, nil
}

// Handler serves the endpoints at their full paths (issuer path, then
// PathPrefix): POST token, introspect and revoke; GET (or HEAD) jwks and
// the metadata. Any other path is 404 and any other method 405. Errors are
// RFC 6749 §5.2 JSON documents, and every response carries Cache-Control:
// no-store except the JWKS and metadata, which are public.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	var post func(http.ResponseWriter, *http.Request)
	switch r.URL.Path {
	case s.paths.token:
		post = s.handleToken
	case s.paths.introspect:
		post = s.handleIntrospect
	case s.paths.revoke:
		post = s.handleRevoke
	case s.paths.jwks:
		if s.getOnly(w, r) {
			s.serveJWKS(w)
		}
		return
	case s.paths.metadata:
		if s.getOnly(w, r) {
			s.writePublic(w, s.clients.Load().metadata, "public, max-age=300")
		}
		return
	default:
		problem.Write(w, problem.New(problem.CodeRouteNotFound, "No authorization server endpoint lives at this path."), r.Header.Get("X-Request-Id"))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.fail(w, r, "method", newError(http.StatusMethodNotAllowed, errInvalidRequest, "this endpoint accepts only POST", "method "+logValue(r.Method)))
		return
	}
	post(w, r)
}

// getOnly answers 405 to anything but GET and HEAD.
func (s *Server) getOnly(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	s.fail(w, r, "method", newError(http.StatusMethodNotAllowed, errInvalidRequest, "this endpoint accepts only GET", "method "+logValue(r.Method)))
	return false
}

// serveJWKS writes the published public keys. Validators may cache it
// briefly; they refetch on an unknown kid anyway.
func (s *Server) serveJWKS(w http.ResponseWriter) {
	b, err := s.keys.Load().jwks(s.now())
	if err != nil {
		s.log.Error("authorization server: encoding the JWKS failed", "error", err)
		s.writeJSON(w, http.StatusInternalServerError, errorResponse{Error: errServerError})
		return
	}
	s.writePublic(w, b, "public, max-age=60")
}

func (s *Server) writePublic(w http.ResponseWriter, body []byte, cacheControl string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", cacheControl)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// readForm reads an application/x-www-form-urlencoded body (RFC 6749 §3.2)
// of at most maxFormSize bytes. Parameters in the URL are never read, and
// credentials found there fail the request so they are not mistaken for
// accepted. A parameter of the protocol sent twice is invalid_request
// (RFC 6749 §3.2), except the repeatable resource and audience.
func (s *Server) readForm(w http.ResponseWriter, r *http.Request) (url.Values, *oauthError) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, newError(http.StatusBadRequest, errInvalidRequest,
			"the request body must be application/x-www-form-urlencoded", "content type "+logValue(r.Header.Get("Content-Type")))
	}
	q := r.URL.Query()
	if q.Has("client_secret") || q.Has("client_assertion") || q.Has("token") {
		return nil, newError(http.StatusBadRequest, errInvalidRequest,
			"credentials and tokens must be sent in the request body, not in the URL", "credential in the query string")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormSize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, newError(http.StatusRequestEntityTooLarge, errInvalidRequest, "the request body is too large", "body over the limit")
		}
		return nil, newError(http.StatusBadRequest, errInvalidRequest, "the request body could not be read", err.Error())
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, newError(http.StatusBadRequest, errInvalidRequest, "the request body is not a valid form", "malformed form")
	}
	for _, name := range []string{"grant_type", "scope", "client_id", "client_secret", "client_assertion", "client_assertion_type", "token", "token_type_hint"} {
		if len(form[name]) > 1 {
			return nil, newError(http.StatusBadRequest, errInvalidRequest, "parameter "+name+" is repeated", "repeated parameter "+name)
		}
	}
	return form, nil
}

// errorResponse is the RFC 6749 §5.2 error document.
type errorResponse struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// fail writes oe and logs it. invalid_client is 401 with a Basic challenge:
// RFC 6749 §5.2 requires one when the client tried Basic, and RFC 9110
// §15.5.2 requires a challenge on every 401; Basic is the only HTTP
// authentication scheme the endpoints accept.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, endpoint string, oe *oauthError) {
	if oe.code == errInvalidClient {
		w.Header().Set("WWW-Authenticate", `Basic realm="oauth2", charset="UTF-8"`)
	}
	s.writeJSON(w, oe.status, errorResponse{Error: oe.code, Description: oe.description})
	level := slog.LevelInfo
	if oe.status >= http.StatusInternalServerError {
		level = slog.LevelError
	}
	attrs := append([]any{"endpoint", endpoint, "error", oe.code, "reason", oe.reason, "remote_addr", r.RemoteAddr}, oe.attrs...)
	s.log.Log(r.Context(), level, "authorization server: request refused", attrs...)
}

// writeJSON writes v with the no-store headers RFC 6749 §5.1 requires on
// token responses, used for every dynamic answer.
func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error("authorization server: encoding a response failed", "error", err)
		b, status = []byte(`{"error":"server_error"}`), http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// Start runs the rotation schedule: the signing key is replaced
// RotateEvery after it started signing (on the clock Options.Now gives).
// A failed rotation is logged and retried a minute later while the old key
// keeps signing. Start is a no-op when already started or closed.
func (s *Server) Start() {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.stop != nil || s.closed {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.done = make(chan struct{})
	go s.rotateLoop(ctx, s.done)
}

// Close stops the rotation schedule and waits for it to finish. Serving
// continues to work; only scheduled rotation ends. It is idempotent.
func (s *Server) Close() {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	s.closed = true
	if s.stop != nil {
		s.stop()
		<-s.done
		s.stop = nil
	}
}

func (s *Server) rotateLoop(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	for {
		wait := s.keys.Load().current.created.Add(s.rotateEvery).Sub(s.now())
		if wait <= 0 {
			if err := s.rotateIfDue(); err != nil {
				s.log.Error("authorization server: scheduled key rotation failed; the current key keeps signing", "error", err, "retry_in", rotateRetry)
				wait = rotateRetry
			} else {
				continue
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// rotateIfDue rotates unless a concurrent Rotate already replaced the key.
func (s *Server) rotateIfDue() error {
	s.rotateMu.Lock()
	defer s.rotateMu.Unlock()
	ring := s.keys.Load()
	if s.now().Before(ring.current.created.Add(s.rotateEvery)) {
		return nil
	}
	return s.rotateLocked(ring)
}
