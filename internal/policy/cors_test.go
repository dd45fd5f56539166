package policy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/problem"
)

func TestCORSHandle(t *testing.T) {
	strict := CORS{
		AllowOrigins:     []string{"https://app.example.com", "HTTP://Localhost:3000", "https://admin.example.com:443"},
		AllowMethods:     []string{"GET", "PUT"},
		AllowHeaders:     []string{"Authorization", "Content-Type"},
		ExposeHeaders:    []string{"RateLimit", "X-Request-Id"},
		AllowCredentials: true,
		MaxAge:           10 * time.Minute,
	}
	open := CORS{AllowOrigins: []string{"*"}}
	type hdrs map[string]string
	tests := []struct {
		name    string
		cfg     CORS
		method  string
		req     hdrs
		handled bool
		status  int    // written by Handle; 0 when nothing was written
		code    string // problem code returned
		want    hdrs   // "" means the field must be absent
	}{
		{
			name: "preflight from an allowed origin", cfg: strict, method: http.MethodOptions,
			req:     hdrs{"Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "authorization"},
			handled: true, status: http.StatusNoContent,
			want: hdrs{
				"Access-Control-Allow-Origin":      "https://app.example.com",
				"Access-Control-Allow-Credentials": "true",
				"Access-Control-Allow-Methods":     "GET, PUT",
				"Access-Control-Allow-Headers":     "Authorization, Content-Type",
				"Access-Control-Max-Age":           "600",
				"Vary":                             "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
			},
		},
		{
			name: "preflight from a configured origin with upper case and a default port", cfg: strict, method: http.MethodOptions,
			req:     hdrs{"Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET"},
			handled: true, status: http.StatusNoContent,
			want: hdrs{"Access-Control-Allow-Origin": "http://localhost:3000"},
		},
		{
			name: "a default port in the configuration matches the browser's origin", cfg: strict, method: http.MethodOptions,
			req:     hdrs{"Origin": "https://admin.example.com", "Access-Control-Request-Method": "GET"},
			handled: true, status: http.StatusNoContent,
			want: hdrs{"Access-Control-Allow-Origin": "https://admin.example.com"},
		},
		{
			name: "preflight from another origin is refused", cfg: strict, method: http.MethodOptions,
			req:     hdrs{"Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"},
			handled: true, code: problem.CodeCORSOriginDenied,
			want: hdrs{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": "", "Access-Control-Allow-Credentials": ""},
		},
		{
			name: "a look-alike origin is refused", cfg: strict, method: http.MethodOptions,
			req:     hdrs{"Origin": "https://app.example.com.evil.example", "Access-Control-Request-Method": "GET"},
			handled: true, code: problem.CodeCORSOriginDenied,
		},
		{
			name: "the null origin is refused", cfg: strict, method: http.MethodOptions,
			req:     hdrs{"Origin": "null", "Access-Control-Request-Method": "GET"},
			handled: true, code: problem.CodeCORSOriginDenied,
		},
		{
			name: "preflight with a wildcard policy", cfg: open, method: http.MethodOptions,
			req:     hdrs{"Origin": "https://anyone.example", "Access-Control-Request-Method": "POST"},
			handled: true, status: http.StatusNoContent,
			want: hdrs{"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, HEAD, POST", "Access-Control-Allow-Credentials": "", "Access-Control-Max-Age": ""},
		},
		{
			name: "OPTIONS without Access-Control-Request-Method is an ordinary request", cfg: strict, method: http.MethodOptions,
			req:  hdrs{"Origin": "https://app.example.com"},
			want: hdrs{"Access-Control-Allow-Origin": "https://app.example.com", "Access-Control-Allow-Methods": ""},
		},
		{
			name: "simple request from an allowed origin", cfg: strict, method: http.MethodGet,
			req: hdrs{"Origin": "https://app.example.com"},
			want: hdrs{
				"Access-Control-Allow-Origin":      "https://app.example.com",
				"Access-Control-Allow-Credentials": "true",
				"Access-Control-Expose-Headers":    "RateLimit, X-Request-Id",
				"Vary":                             "Origin",
				"Access-Control-Allow-Methods":     "",
			},
		},
		{
			name: "simple request from another origin gets no CORS fields", cfg: strict, method: http.MethodPost,
			req:  hdrs{"Origin": "https://evil.example"},
			want: hdrs{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Credentials": "", "Access-Control-Expose-Headers": "", "Vary": "Origin"},
		},
		{
			name: "request without Origin still varies on it", cfg: strict, method: http.MethodGet,
			want: hdrs{"Access-Control-Allow-Origin": "", "Vary": "Origin"},
		},
		{
			name: "wildcard simple request needs no Vary", cfg: open, method: http.MethodGet,
			req:  hdrs{"Origin": "https://anyone.example"},
			want: hdrs{"Access-Control-Allow-Origin": "*", "Vary": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewCORS(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(tt.method, "https://api.example.com/a/orders", nil)
			for k, v := range tt.req {
				r.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			handled, err := p.Handle(rec, r)
			if handled != tt.handled {
				t.Errorf("handled = %v, want %v", handled, tt.handled)
			}
			if tt.code != "" {
				if pe := asProblem(t, err); pe.Code != tt.code || pe.HTTPStatus() != http.StatusForbidden || logValue(pe, "origin") != tt.req["Origin"] {
					t.Errorf("error %v (log %v), want %s 403 naming the origin", err, pe.Log, tt.code)
				}
			} else if err != nil {
				t.Errorf("Handle() error = %v", err)
			}
			// A recorder reports 200 until something is written.
			if want := max(tt.status, http.StatusOK); rec.Code != want || rec.Body.Len() > 0 {
				t.Errorf("Handle wrote status %d and %d bytes, want %d and none", rec.Code, rec.Body.Len(), want)
			}
			for k, v := range tt.want {
				if got := strings.Join(rec.Header().Values(k), ", "); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestNewCORSErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  CORS
		want string
	}{
		{"wildcard with credentials", CORS{AllowOrigins: []string{"*"}, AllowCredentials: true}, "allow_credentials"},
		{"origin with a path", CORS{AllowOrigins: []string{"https://app.example.com/ui"}}, `allow_origins[0] "https://app.example.com/ui"`},
		{"origin with a trailing slash", CORS{AllowOrigins: []string{"https://app.example.com/"}}, "allow_origins[0]"},
		{"origin without a scheme", CORS{AllowOrigins: []string{"app.example.com"}}, "scheme://host"},
		{"null origin", CORS{AllowOrigins: []string{"null"}}, `"null"`},
		{"bad method", CORS{AllowOrigins: []string{"*"}, AllowMethods: []string{"GET PUT"}}, `allow_methods[0] "GET PUT"`},
		{"header wildcard with credentials", CORS{AllowOrigins: []string{"https://a.example"}, AllowHeaders: []string{"*"}, AllowCredentials: true}, "allow_headers[0]"},
		{"bad expose header", CORS{ExposeHeaders: []string{"X-A\r\nX-B"}}, "expose_headers[0]"},
		{"negative max age", CORS{MaxAge: -time.Second}, "max_age"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewCORS(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewCORS() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
