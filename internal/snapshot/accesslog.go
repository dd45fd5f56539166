package snapshot

import (
	"net/textproto"
	"slices"
	"strings"

	"github.com/portcullis/portcullis/internal/config"
)

// AccessLogFormat is what the access log adds to each line and what it
// hides, compiled once per snapshot so the request path only reads it. The
// zero value logs no headers and redacts nothing.
type AccessLogFormat struct {
	// Headers are the request headers each line includes, in configuration
	// order, without duplicates.
	Headers []LoggedHeader
	// RedactClientAddress keeps only the client's network (IPv4 /24,
	// IPv6 /48).
	RedactClientAddress bool
	// RedactClientCertSubject hides the client certificate's subject (its
	// fingerprint stays).
	RedactClientCertSubject bool
	// RedactPath logs only the matched API's path prefix.
	RedactPath bool
	// RedactHost hides the Host header.
	RedactHost bool
}

// LoggedHeader is one request header the access log includes.
type LoggedHeader struct {
	// Name is the canonical form, the key into http.Header.
	Name string
	// Key is the name written in the log: lower case.
	Key string
	// Redact writes "[REDACTED]" instead of the value: the header carries
	// credentials.
	Redact bool
}

// credentialHeaders always carry secrets; their values are never logged.
var credentialHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", config.DefaultAPIKeyHeader}

// accessLogFormat compiles log.access_log_headers, log.redact_headers and
// log.redact. A header is redacted when it is a credential header, the
// header any API's api_key policy reads, or listed in redact_headers,
// whatever the case it is written in.
func accessLogFormat(f config.File) AccessLogFormat {
	var out AccessLogFormat
	for _, field := range f.Log.Redact {
		switch field {
		case config.RedactClientAddress:
			out.RedactClientAddress = true
		case config.RedactClientCertSubject:
			out.RedactClientCertSubject = true
		case config.RedactPath:
			out.RedactPath = true
		case config.RedactHost:
			out.RedactHost = true
		}
	}
	if len(f.Log.AccessLogHeaders) == 0 {
		return out
	}
	secret := map[string]bool{}
	for _, h := range credentialHeaders {
		secret[textproto.CanonicalMIMEHeaderKey(h)] = true
	}
	for _, h := range f.Log.RedactHeaders {
		secret[textproto.CanonicalMIMEHeaderKey(h)] = true
	}
	for _, a := range f.APIs {
		if a.APIKey != nil && a.APIKey.Header != "" {
			secret[textproto.CanonicalMIMEHeaderKey(a.APIKey.Header)] = true
		}
	}
	for _, h := range f.Log.AccessLogHeaders {
		name := textproto.CanonicalMIMEHeaderKey(h)
		if slices.ContainsFunc(out.Headers, func(l LoggedHeader) bool { return l.Name == name }) {
			continue
		}
		out.Headers = append(out.Headers, LoggedHeader{Name: name, Key: strings.ToLower(name), Redact: secret[name]})
	}
	return out
}

// PathPrefix is the path prefix the API is matched by ("/" for all paths),
// without a trailing slash.
func (a *API) PathPrefix() string { return a.prefix }
