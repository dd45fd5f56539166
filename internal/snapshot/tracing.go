package snapshot

import (
	"crypto/tls"
	"sort"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/keymaterial"
)

// Collector is how the gateway connects to its OpenTelemetry collector, with
// the files and variables the tracing block names already read.
type Collector struct {
	// TLSConfig verifies the collector against the named trust store (nil
	// RootCAs: the system roots) and presents the client certificate, if
	// any. Nil for an http:// endpoint.
	TLSConfig *tls.Config
	// Headers are sent with every export: tracing.headers plus the values
	// of the tracing.headers_env variables. They may hold credentials:
	// never log the values.
	Headers map[string]string
	// Timeout bounds one export request.
	Timeout time.Duration
	// Certificates are the collector's trust anchors and the gateway's
	// client certificate for it, for the expiry metrics and warnings.
	Certificates []CertUse
}

// CompileCollector reads what f's tracing block needs to reach the
// collector: the trust store it names, the client certificate and the
// headers_env variables. f must have passed config.Validate. Tracing is set
// up once at start, so serve and validate call this beside Compile, not on
// every reload. Every file or variable that cannot be used is a problem at
// its key path (tracing.trust, tracing.client_certificate…,
// tracing.headers_env.NAME); problems never quote a header value. With
// tracing off it returns nil, nil.
func CompileCollector(f config.File, o Options) (*Collector, config.Problems) {
	t := f.Tracing
	if t.OTLPEndpoint == "" {
		return nil, nil
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &compiler{o: o, cfg: f, trust: map[string]*keymaterial.TrustSet{}, snap: &Snapshot{}}
	col := &Collector{Timeout: t.Timeout, Headers: make(map[string]string, len(t.Headers)+len(t.HeadersEnv))}
	if strings.HasPrefix(t.OTLPEndpoint, "https://") {
		col.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if t.Trust != "" {
			if ts, ok := f.TrustStores[t.Trust]; ok {
				c.trustStore(t.Trust, ts)
			}
			if set := c.trust[t.Trust]; set != nil {
				col.TLSConfig.RootCAs = set.Pool
			}
		}
		if t.ClientCertificate != nil {
			if id := c.identity("tracing.client_certificate", *t.ClientCertificate); id != nil {
				col.TLSConfig.Certificates = []tls.Certificate{id.Certificate}
				c.snap.Certificates = append(c.snap.Certificates, CertUse{Where: "tracing collector client certificate", Cert: id.Certificate.Leaf})
			}
		}
	}
	for name, v := range t.Headers {
		col.Headers[name] = v
	}
	names := make([]string, 0, len(t.HeadersEnv))
	for name := range t.HeadersEnv {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		path := "tracing.headers_env." + name
		v, err := keymaterial.ReadSecret(keymaterial.SecretRef{Env: t.HeadersEnv[name]})
		switch {
		case err != nil:
			c.add(path, "environment variable %s is not set: set it for the gateway's process (it holds the %s header for the collector)", t.HeadersEnv[name], name)
		case len(v) == 0:
			c.add(path, "environment variable %s is empty (it holds the %s header for the collector)", t.HeadersEnv[name], name)
		case strings.ContainsFunc(string(v), func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }):
			c.add(path, "environment variable %s holds a line break or another control character, which cannot be sent in the %s header", t.HeadersEnv[name], name)
		default:
			col.Headers[name] = string(v)
		}
	}
	if len(c.probs) > 0 {
		return nil, c.probs
	}
	col.Certificates = c.snap.Certificates
	return col, nil
}
