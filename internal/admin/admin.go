package admin

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/registry"
)

// Role says what a principal may do through the admin API.
type Role string

// The roles.
const (
	// RoleAdmin may do everything, in every tenant.
	RoleAdmin Role = "admin"
	// RoleTenantAdmin may read and change the resources of its own tenant
	// only: not tenants themselves, not another tenant, and not listings
	// across tenants.
	RoleTenantAdmin Role = "tenant-admin"
)

// Principal is an authenticated admin.
type Principal struct {
	// Name identifies the admin in logs and audit entries, e.g. "alice" or
	// "ci-deploy". For a ClientCertRule it defaults to the certificate's
	// subject DN.
	Name string `json:"name"`
	// Role is RoleAdmin or RoleTenantAdmin.
	Role Role `json:"role"`
	// Tenant is the tenant a tenant-admin administers; it is required for
	// RoleTenantAdmin and must be empty for RoleAdmin.
	Tenant string `json:"tenant,omitempty"`
}

// Verifier checks a client's certificate chain (leaf first) for an
// extended key usage at a time, returning the verified chain. *trust.Set
// is one. Implementations must be safe for concurrent use and must fail
// closed: an error means the chain is not trusted.
type Verifier interface {
	Verify(chain []*x509.Certificate, usage x509.ExtKeyUsage, now time.Time) ([]*x509.Certificate, error)
}

// ClientCertRule grants a Principal to client certificates that Verifier
// accepts for client authentication and that match CN, Fingerprint or
// both (every field that is set must match; at least one must be set, so a
// rule never admits every certificate of a CA).
type ClientCertRule struct {
	// Verifier checks the chain, e.g. a trust set holding the admin CA.
	// Required.
	Verifier Verifier
	// CN is the exact subject common name of the leaf certificate.
	CN string
	// Fingerprint is the hex SHA-256 of the leaf's DER; colons and case
	// are ignored.
	Fingerprint string
	// Principal is who the certificate's holder is.
	Principal Principal
}

// Token grants a Principal to a bearer token. Only the token's hash is
// configured, so the configuration never holds the secret.
type Token struct {
	// Hash is "sha256:" followed by the 64 hex digits of the SHA-256 of the
	// token.
	Hash string
	// Principal is who the token's holder is. Its Name is required.
	Principal Principal
}

// Options configure a Server.
type Options struct {
	// Store holds the resources. Required.
	Store registry.Store
	// ClientCerts are the admin client-certificate rules, tried in order.
	ClientCerts []ClientCertRule
	// Tokens are the admin bearer tokens.
	Tokens []Token
	// Now returns the current time for certificate verification. It
	// defaults to time.Now.
	Now func() time.Time
	// Logger receives one line per request (who, what, status), one per
	// change, and the causes of failures. Tokens are never logged. It
	// defaults to discarding everything.
	Logger *slog.Logger
	// OnChange is called after every successful PUT or DELETE, on the
	// request's goroutine before the response is written, so a client that
	// sees the response can rely on the gateway having been told. It must
	// be safe for concurrent use. It may be nil.
	OnChange func()
	// Check, when set, is asked before every PUT is stored, with who asks
	// and the decoded, valid object; an error refuses the write with 422
	// admin.invalid and the error's text as detail (so it must hold no
	// secrets). serve uses it to refuse what the gateway could not serve.
	Check func(ctx context.Context, p Principal, obj registry.Object) error
	// Reload, when set, serves POST /admin/v1/reload (admin role): it
	// reloads the configuration file and the registry as SIGHUP does and
	// returns the number of APIs served, or an error listing the problems
	// (no secrets) while the running configuration keeps serving.
	Reload func(ctx context.Context) (apis int, err error)
}

// Server is the admin API. It is safe for concurrent use.
type Server struct {
	store    registry.Store
	certs    []certRule
	tokens   []tokenRule
	now      func() time.Time
	log      *slog.Logger
	onChange func()
	check    func(context.Context, Principal, registry.Object) error
	reload   func(context.Context) (int, error)
	routes   []route
	openapi  []byte
	mux      *http.ServeMux
	handler  http.Handler
}

// certRule is a ClientCertRule with its fingerprint decoded.
type certRule struct {
	verifier    Verifier
	cn          string
	fingerprint []byte
	principal   Principal
}

// tokenRule is a Token with its hash decoded.
type tokenRule struct {
	sum       []byte
	principal Principal
}

// maxBodyBytes limits request bodies: the largest resource, a certificate
// bundle, is far smaller.
const maxBodyBytes = 1 << 20

// realm is the WWW-Authenticate realm (RFC 6750 §3).
const realm = `Bearer realm="portcullis-admin"`

var (
	tokenHashRe = regexp.MustCompile(`^sha256:[0-9a-fA-F]{64}$`)
	hex64Re     = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// New checks o and builds the Server. It fails, wrapping ErrInvalidOptions
// and naming the field, when the store is missing or a rule or token is
// malformed.
func New(o Options) (*Server, error) {
	if o.Store == nil {
		return nil, fmt.Errorf("%w: the store is required", ErrInvalidOptions)
	}
	s := &Server{store: o.Store, now: o.Now, log: o.Logger, onChange: o.OnChange, check: o.Check, reload: o.Reload}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.onChange == nil {
		s.onChange = func() {}
	}
	for i, c := range o.ClientCerts {
		r, err := newCertRule(c)
		if err != nil {
			return nil, fmt.Errorf("%w: client certificate rule %d: %w", ErrInvalidOptions, i, err)
		}
		s.certs = append(s.certs, r)
	}
	for i, t := range o.Tokens {
		if !tokenHashRe.MatchString(t.Hash) {
			return nil, fmt.Errorf("%w: token %d: hash must be \"sha256:\" and 64 hex digits", ErrInvalidOptions, i)
		}
		if t.Principal.Name == "" {
			return nil, fmt.Errorf("%w: token %d: the principal's name is required", ErrInvalidOptions, i)
		}
		if err := checkPrincipal(t.Principal); err != nil {
			return nil, fmt.Errorf("%w: token %d: %w", ErrInvalidOptions, i, err)
		}
		sum, _ := hex.DecodeString(strings.ToLower(t.Hash[len("sha256:"):])) // checked by tokenHashRe
		s.tokens = append(s.tokens, tokenRule{sum: sum, principal: t.Principal})
	}
	s.routes = s.routeTable()
	doc, err := json.MarshalIndent(openAPI(s.routes), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the OpenAPI document: %w", err)
	}
	s.openapi = append(doc, '\n')
	s.mux = s.buildMux()
	s.handler = http.HandlerFunc(s.serve)
	return s, nil
}

func newCertRule(c ClientCertRule) (certRule, error) {
	if c.Verifier == nil {
		return certRule{}, fmt.Errorf("the verifier is required")
	}
	r := certRule{verifier: c.Verifier, cn: c.CN, principal: c.Principal}
	if c.Fingerprint != "" {
		fp := strings.ToLower(strings.ReplaceAll(c.Fingerprint, ":", ""))
		if !hex64Re.MatchString(fp) {
			return certRule{}, fmt.Errorf("fingerprint must be the 64 hex digits of a SHA-256 fingerprint (colons allowed)")
		}
		r.fingerprint, _ = hex.DecodeString(fp)
	}
	if c.CN == "" && c.Fingerprint == "" {
		return certRule{}, fmt.Errorf("set cn, fingerprint or both: a rule without either would admit every certificate the verifier trusts")
	}
	return r, checkPrincipal(c.Principal)
}

// checkPrincipal checks the role and its tenant.
func checkPrincipal(p Principal) error {
	switch p.Role {
	case RoleAdmin:
		if p.Tenant != "" {
			return fmt.Errorf("principal %q: role %q administers every tenant; remove tenant %q or use role %q", p.Name, p.Role, p.Tenant, RoleTenantAdmin)
		}
	case RoleTenantAdmin:
		if p.Tenant == "" {
			return fmt.Errorf("principal %q: role %q needs a tenant", p.Name, p.Role)
		}
	default:
		return fmt.Errorf("principal %q: unknown role %q (valid: %s, %s)", p.Name, p.Role, RoleAdmin, RoleTenantAdmin)
	}
	return nil
}

// Handler returns the handler of every admin route, under /admin/v1/. Any
// other path is answered with 404 admin.not_found once the caller has
// authenticated.
func (s *Server) Handler() http.Handler { return s.handler }

// exchange is what the middleware learns about a request and shares with
// the route handlers through the context.
type exchange struct {
	id        string
	principal Principal
	via       string
	// cause is the error behind a failure, for the request's log line.
	cause error
}

type exchangeKey struct{}

func exchangeOf(r *http.Request) *exchange {
	return r.Context().Value(exchangeKey{}).(*exchange)
}

// newRequestID returns 16 hex digits.
func newRequestID() string {
	const digits = "0123456789abcdef"
	var b [16]byte
	v := rand.Uint64()
	for i := range b {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b[:])
}

// statusWriter remembers the status of the response for the log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// serve authenticates the request, limits its body, routes it and logs
// the outcome.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ex := &exchange{id: newRequestID()}
	sw := &statusWriter{ResponseWriter: w}
	sw.Header().Set("X-Request-Id", ex.id)
	ctx := context.WithValue(r.Context(), exchangeKey{}, ex)
	r = r.WithContext(ctx)

	if pe := s.authenticate(r, ex); pe != nil {
		s.fail(sw, r, pe)
	} else {
		r = r.WithContext(registry.WithActor(ctx, ex.principal.Name))
		r.Body = http.MaxBytesReader(sw, r.Body, maxBodyBytes)
		s.mux.ServeHTTP(sw, r)
	}

	attrs := []any{
		"request_id", ex.id, "method", r.Method, "path", r.URL.Path, "status", sw.status,
		"principal", ex.principal.Name, "role", ex.principal.Role, "via", ex.via,
		"duration", time.Since(start),
	}
	if ex.principal.Tenant != "" {
		attrs = append(attrs, "principal_tenant", ex.principal.Tenant)
	}
	level := slog.LevelInfo
	switch {
	case sw.status >= 500:
		level = slog.LevelError
	case sw.status >= 400:
		level = slog.LevelWarn
	}
	if ex.cause != nil {
		attrs = append(attrs, "error", ex.cause.Error())
	}
	s.log.Log(ctx, level, "admin request", attrs...)
}

// fail writes pe as a problem document and keeps its cause for the log.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, pe *problem.Error) {
	ex := exchangeOf(r)
	ex.cause = pe
	if pe.Cause != nil {
		ex.cause = pe.Cause
	}
	problem.Write(w, pe, ex.id)
}

// writeJSON sends v as JSON with status.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.fail(w, r, problem.Wrap(problem.CodeInternal, "The response could not be encoded.", err))
		return
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
