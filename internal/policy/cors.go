package policy

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/problem"
)

// CORS configures cross-origin resource sharing for an API (the Fetch
// standard's CORS protocol, https://fetch.spec.whatwg.org/#http-cors-protocol).
type CORS struct {
	// AllowOrigins are the origins allowed to call, each exactly
	// "scheme://host[:port]" as browsers send it in Origin (compared after
	// lower-casing the configured value), or "*" for any origin. Empty
	// allows no origin.
	AllowOrigins []string
	// AllowMethods are the methods a preflight may ask for. Empty means
	// GET, HEAD and POST.
	AllowMethods []string
	// AllowHeaders are the request headers a preflight may ask for, beyond
	// the CORS-safelisted ones. Empty allows none.
	AllowHeaders []string
	// ExposeHeaders are the response headers scripts may read, beyond the
	// CORS-safelisted ones. Empty exposes none.
	ExposeHeaders []string
	// AllowCredentials lets browsers send cookies and client certificates
	// and lets scripts read the response. It cannot be combined with the
	// origin "*" (the Fetch standard forbids it), nor with "*" in the method
	// and header lists.
	AllowCredentials bool
	// MaxAge is how long a browser may cache a preflight answer, in whole
	// seconds. Zero omits the field (browsers then use 5 seconds); it must
	// not be negative.
	MaxAge time.Duration
}

// CORSPolicy answers preflights and marks responses for allowed origins. It
// is immutable after NewCORS and safe for concurrent use.
type CORSPolicy struct {
	anyOrigin   bool
	origins     map[string]struct{}
	credentials bool
	// Header values, joined once.
	methods, headers, expose, maxAge string
}

// NewCORS validates c and returns its policy. Errors name the offending
// entry.
func NewCORS(c CORS) (*CORSPolicy, error) {
	p := &CORSPolicy{origins: make(map[string]struct{}), credentials: c.AllowCredentials}
	for i, o := range c.AllowOrigins {
		if o == "*" {
			if c.AllowCredentials {
				return nil, fmt.Errorf("cors allow_origins[%d] \"*\": cannot be combined with allow_credentials (the Fetch standard forbids it); list the origins instead", i)
			}
			p.anyOrigin = true
			continue
		}
		n, err := normaliseOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("cors allow_origins[%d] %q: %w", i, o, err)
		}
		p.origins[n] = struct{}{}
	}
	methods := c.AllowMethods
	if len(methods) == 0 {
		methods = []string{http.MethodGet, http.MethodHead, http.MethodPost}
	}
	var err error
	if p.methods, err = corsList("allow_methods", methods, c.AllowCredentials); err != nil {
		return nil, err
	}
	if p.headers, err = corsList("allow_headers", c.AllowHeaders, c.AllowCredentials); err != nil {
		return nil, err
	}
	if p.expose, err = corsList("expose_headers", c.ExposeHeaders, c.AllowCredentials); err != nil {
		return nil, err
	}
	if c.MaxAge < 0 {
		return nil, fmt.Errorf("cors max_age %s: must not be negative", c.MaxAge)
	}
	if s := int64(c.MaxAge / time.Second); s > 0 {
		p.maxAge = strconv.FormatInt(s, 10)
	}
	return p, nil
}

// normaliseOrigin accepts a serialised origin: scheme and host, an optional
// port, nothing else.
func normaliseOrigin(o string) (string, error) {
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("not an origin: want scheme://host[:port], e.g. https://app.example.com")
	}
	if u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return "", fmt.Errorf("an origin has no user, path, query or fragment: want scheme://host[:port]")
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	// Browsers omit the scheme's default port when they serialise an
	// origin (RFC 6454 §6.1), so a configured default port would never
	// match.
	if scheme == "https" {
		host = strings.TrimSuffix(host, ":443")
	} else if scheme == "http" {
		host = strings.TrimSuffix(host, ":80")
	}
	return scheme + "://" + host, nil
}

// corsList checks that every entry is an HTTP token (RFC 9110 §5.6.2), or
// "*" without credentials, and joins the list for a header value.
func corsList(field string, list []string, credentials bool) (string, error) {
	for i, v := range list {
		if v == "*" && credentials {
			return "", fmt.Errorf("cors %s[%d] \"*\": with allow_credentials browsers take it literally; list the names instead", field, i)
		}
		if !isToken(v) {
			return "", fmt.Errorf("cors %s[%d] %q: not a valid method or header name", field, i, v)
		}
	}
	return strings.Join(list, ", "), nil
}

// isToken reports whether s is a non-empty RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

func (p *CORSPolicy) allowed(origin string) bool {
	if p.anyOrigin {
		return true
	}
	_, ok := p.origins[origin]
	return ok
}

// Handle applies the policy to r.
//
// A preflight (OPTIONS with Origin and Access-Control-Request-Method) is
// answered here and handled is true: for an allowed origin Handle writes 204
// with the allowed methods, headers and max age (the browser, not the
// gateway, then refuses a method or header not listed); for any other origin
// it writes nothing and returns a *problem.Error with code
// cors.origin_denied (403) for the caller to write, so the preflight never
// reaches the upstream.
//
// Any other request returns handled false and a nil error. With an allowed
// Origin, Handle sets Access-Control-Allow-Origin (and, as configured,
// Access-Control-Allow-Credentials and Access-Control-Expose-Headers) on
// w.Header(); with another Origin it sets no CORS field, so the browser
// withholds the response from the script (fails closed). Unless every
// origin gets the same answer ("*"), it adds Vary: Origin, even without an
// Origin, so caches keep the answers apart.
func (p *CORSPolicy) Handle(w http.ResponseWriter, r *http.Request) (handled bool, err error) {
	h := w.Header()
	origin := r.Header.Get("Origin")
	if r.Method == http.MethodOptions && origin != "" && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Add("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
		if !p.allowed(origin) {
			return true, &problem.Error{
				Code:   problem.CodeCORSOriginDenied,
				Detail: "This origin may not call this API from a browser.",
				Log:    []any{"origin", origin, "reason", "origin is not in cors allow_origins"},
			}
		}
		p.setOrigin(h, origin)
		h.Set("Access-Control-Allow-Methods", p.methods)
		if p.headers != "" {
			h.Set("Access-Control-Allow-Headers", p.headers)
		}
		if p.maxAge != "" {
			h.Set("Access-Control-Max-Age", p.maxAge)
		}
		w.WriteHeader(http.StatusNoContent)
		return true, nil
	}
	if !p.anyOrigin {
		h.Add("Vary", "Origin")
	}
	if origin == "" || !p.allowed(origin) {
		return false, nil
	}
	p.setOrigin(h, origin)
	if p.expose != "" {
		h.Set("Access-Control-Expose-Headers", p.expose)
	}
	return false, nil
}

func (p *CORSPolicy) setOrigin(h http.Header, origin string) {
	if p.anyOrigin {
		// NewCORS refuses "*" with credentials, so this answer never
		// lets a browser send credentials to any origin.
		h.Set("Access-Control-Allow-Origin", "*")
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if p.credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
}
