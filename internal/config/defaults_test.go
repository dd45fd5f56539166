package config

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDefaultsDocumented checks that the README's defaults table states the
// values defaults.go applies, so the two cannot drift apart: each row's
// value is parsed the way the configuration would parse it.
func TestDefaultsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]any{
		"shutdown_grace":                         DefaultShutdownGrace,
		"listeners[].tls.min_version":            fmt.Sprintf("%q", DefaultMinTLSVersion),
		"listeners[].limits.max_header_bytes":    DefaultMaxHeaderBytes,
		"listeners[].limits.max_body_bytes":      DefaultMaxBodyBytes,
		"listeners[].limits.read_header_timeout": DefaultReadHeaderTimeout,
		"listeners[].limits.idle_timeout":        DefaultIdleTimeout,
		"listeners[].tls.client_certificates":    string(DefaultClientCertMode),
		"trust_stores.*.crl.refresh":             DefaultCRLRefresh,
		"trust_stores.*.revocation_policy":       string(DefaultRevocationPolicy),
		"apis[].match.path_prefix":               DefaultPathPrefix,
		"apis[].api_key.header":                  DefaultAPIKeyHeader,
		"apis[].upstream.connect_timeout":        DefaultConnectTimeout,
		"apis[].upstream.tls_handshake_timeout":  DefaultTLSHandshakeTimeout,
		"apis[].upstream.response_timeout":       DefaultResponseTimeout,
		"apis[].upstream.idle_timeout":           DefaultUpstreamIdleTimeout,
		"apis[].upstream.max_idle_conns":         fmt.Sprint(DefaultMaxIdleConns),
		"apis[].upstream.tls.min_version":        fmt.Sprintf("%q", DefaultMinTLSVersion),
		"apis[].oauth2.algorithms":               "[" + strings.Join(DefaultTokenAlgorithms, ", ") + "]",
		"apis[].oauth2.leeway":                   DefaultTokenLeeway,
		"authorization_server.path_prefix":       DefaultOAuth2PathPrefix,
		"admin.address":                          DefaultAdminAddress,
		"authorization_server.token_ttl":         DefaultTokenTTL,
		"authorization_server.algorithm":         DefaultSigningAlgorithm,
		"authorization_server.rotate_every":      DefaultKeyRotation,
		"tracing.service_name":                   DefaultTracingServiceName,
		"tracing.sample_ratio":                   strconv.FormatFloat(DefaultTracingSampleRatio, 'f', 1, 64),
		"tracing.timeout":                        DefaultTracingTimeout,
	}
	for key, want := range rows {
		m := regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(key) + "` \\| `([^`]*)` \\|").FindSubmatch(readme)
		if m == nil {
			t.Errorf("README's defaults table has no row for %s", key)
			continue
		}
		doc := string(m[1])
		var got any = doc
		switch want.(type) {
		case time.Duration:
			got, err = time.ParseDuration(doc)
		case ByteSize:
			got, err = ParseByteSize(doc)
		}
		if err != nil || got != want {
			t.Errorf("README says %s defaults to %q; defaults.go says %v", key, doc, want)
		}
	}
}
