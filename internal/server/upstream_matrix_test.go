package server

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/testpki"
	"github.com/portcullis/portcullis/internal/upstream"
)

// upstreamFailurePrefix is the start of the series the gateway counts a
// failed gateway→upstream connection in, up to the reason's value.
const upstreamFailurePrefix = `portcullis_tls_handshake_failures_total{hop="gateway→upstream",reason="`

// upstreamFailures scrapes the gateway's metrics in process and returns the
// gateway→upstream handshake failures by reason.
func (g *liveGateway) upstreamFailures(t *testing.T) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for line := range strings.SplitSeq(g.metricsText(), "\n") {
		rest, ok := strings.CutPrefix(line, upstreamFailurePrefix)
		if !ok {
			continue
		}
		reason, value, ok := strings.Cut(rest, `"} `)
		if !ok {
			t.Fatalf("unexpected metric line %q", line)
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		out[reason] = v
	}
	return out
}

// matrixBackend starts a loopback HTTPS backend presenting certs, with mod
// applied to its TLS configuration, and returns its URL.
func matrixBackend(t *testing.T, certs tls.Certificate, mod func(*tls.Config)) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from backend")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{certs}}
	if mod != nil {
		mod(srv.TLS)
	}
	// Refused handshakes are the point; they need not reach the test log.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

// writeCRL writes a PEM CRL signed by ca, listing serials, whose
// nextUpdate is next from now (negative: already stale), and returns its path.
func writeCRL(t *testing.T, ca *testpki.CA, path string, next time.Duration, serials ...*big.Int) string {
	t.Helper()
	now := time.Now()
	rl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now.Add(-2 * time.Hour), NextUpdate: now.Add(next)}
	for _, s := range serials {
		rl.RevokedCertificateEntries = append(rl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: s, RevocationTime: now.Add(-time.Hour)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, rl, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	testpki.WriteFile(t, path, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
	return path
}

// TestUpstreamFailureMatrix is the gateway→upstream failure matrix: one real
// loopback backend per way an upstream can be wrong, each behind its own API
// of one running gateway. For each it asserts what the client gets (status
// and problem code, nothing internal in the detail), the operator's log line
// for the same request id (hop, code, reason, a plain sentence naming the
// backend, a fix), and that portcullis_tls_handshake_failures_total counts
// exactly one failure under hop "gateway→upstream" and the log's reason, and
// none under any other reason.
func TestUpstreamFailureMatrix(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "apimanCA")
	foreign := testpki.NewCA(t, "foreignCA")
	issuing := ca.Intermediate(t, "apimanIssuingCA")
	serverCert := func(c *testpki.CA, opts ...testpki.Option) tls.Certificate {
		return c.Issue(t, "api", append([]testpki.Option{testpki.Server(), testpki.DNS("localhost")}, opts...)...).TLS()
	}
	// Like Story A's backends, every TLS backend requires a client
	// certificate from apimanCA unless the row says otherwise.
	requireGateway := func(c *tls.Config) { c.ClientAuth = tls.RequireAndVerifyClientCert; c.ClientCAs = ca.Pool() }
	tls12 := func(c *tls.Config) { requireGateway(c); c.MaxVersion = tls.VersionTLS12 }

	good := ca.Issue(t, "api", testpki.Server(), testpki.DNS("localhost"))
	revoked := ca.Issue(t, "api-revoked", testpki.Server(), testpki.DNS("localhost"))
	// The intermediate's leaf without the intermediate: a backend that does
	// not send its chain.
	leafOnly := issuing.Issue(t, "api", testpki.Server(), testpki.DNS("localhost")).TLS()
	leafOnly.Certificate = leafOnly.Certificate[:1]

	lc, lk := ca.Issue(t, "listener", testpki.Server(), testpki.DNS("localhost"), testpki.IP("127.0.0.1")).WriteFiles(t, dir, "listener")
	gc, gk := ca.Issue(t, "gateway", testpki.Client()).WriteFiles(t, dir, "gateway")
	fc, fk := foreign.Issue(t, "impostor", testpki.Client()).WriteFiles(t, dir, "impostor")
	caFile := ca.WriteCA(t, dir, "apimanCA")
	crl := writeCRL(t, ca, filepath.Join(dir, "apimanCA.crl"), time.Hour, revoked.Cert.SerialNumber)
	staleCRL := writeCRL(t, ca, filepath.Join(dir, "stale.crl"), -time.Hour)

	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "plain text")
	}))
	t.Cleanup(plain.Close)
	refused := httptest.NewServer(http.NotFoundHandler())
	refusedURL := refused.URL
	refused.Close()

	expand := strings.NewReplacer(
		"$GW", fmt.Sprintf("{ cert: %s, key: %s }", gc, gk),
		"$IMPOSTOR", fmt.Sprintf("{ cert: %s, key: %s }", fc, fk),
		"$GOOD_PIN", upstream.PinSHA256(good.Cert),
		"$OTHER_PIN", upstream.PinSHA256(revoked.Cert),
	).Replace

	cases := []struct {
		name    string
		api     string // the API's name and path prefix
		target  func() string
		tls     string // the API's upstream.tls; see expand
		status  int
		code    string // "" for the healthy control
		reason  string
		plain   []string // more that the log's plain sentence must say
		fix     []string // and its fix
		counted bool     // whether the reason is a handshake-failure label
	}{
		{
			name: "healthy control: mutual TLS, trusted, named, pinned, CRL-checked", api: "healthy",
			target: func() string { return matrixBackend(t, good.TLS(), requireGateway) },
			tls:    `{ trust: internal-crl, server_name: localhost, client_certificate: $GW, pins: [ "$GOOD_PIN" ] }`,
			status: http.StatusOK,
		},
		{
			name: "backend certificate from another CA", api: "unknown-authority",
			target: func() string { return matrixBackend(t, serverCert(foreign), requireGateway) },
			tls:    `{ trust: internal, server_name: localhost, client_certificate: $GW }`,
			status: 502, code: problem.CodeUpstreamTLSUnknownAuthority, reason: "unknown_authority", counted: true,
			plain: []string{`issued by "CN=foreignCA`, `trust set "internal"`, "CN=apimanCA"},
		},
		{
			name: "backend sends its leaf without the intermediate", api: "missing-intermediate",
			target: func() string { return matrixBackend(t, leafOnly, requireGateway) },
			tls:    `{ trust: internal, server_name: localhost, client_certificate: $GW }`,
			status: 502, code: problem.CodeUpstreamTLSUnknownAuthority, reason: "unknown_authority", counted: true,
			plain: []string{`issued by "CN=apimanIssuingCA`, "no intermediate certificate"}, fix: []string{"full chain", "fullchain.pem"},
		},
		{
			name: "backend certificate expired", api: "expired",
			target: func() string { return matrixBackend(t, serverCert(ca, testpki.Expired()), requireGateway) },
			tls:    `{ trust: internal, server_name: localhost, client_certificate: $GW }`,
			status: 502, code: problem.CodeUpstreamTLSCertExpired, reason: "cert_expired", counted: true,
			plain: []string{"expired at"}, fix: []string{"Renew"},
		},
		{
			name: "backend certificate not yet valid", api: "not-yet-valid",
			target: func() string { return matrixBackend(t, serverCert(ca, testpki.NotYetValid()), requireGateway) },
			tls:    `{ trust: internal, server_name: localhost, client_certificate: $GW }`,
			status: 502, code: problem.CodeUpstreamTLSCertNotYetValid, reason: "cert_not_yet_valid", counted: true,
			plain: []string{"not valid until"}, fix: []string{"clocks"},
		},
		{
			name: "backend certificate for another name", api: "hostname-mismatch",
			target: func() string {
				return matrixBackend(t, ca.Issue(t, "billing", testpki.Server(), testpki.DNS("billing.internal")).TLS(), requireGateway)
			},
			tls:    `{ trust: internal, server_name: localhost, client_certificate: $GW }`,
			status: 502, code: problem.CodeUpstreamTLSHostnameMismatch, reason: "hostname_mismatch", counted: true,
			plain: []string{"DNS:billing.internal", `"localhost"`}, fix: []string{"server_name"},
		},
		{
			name: "backend certificate without serverAuth", api: "cert-invalid",
			target: func() string {
				return matrixBackend(t, ca.Issue(t, "api", testpki.Client(), testpki.DNS("localhost")).TLS(), requireGateway)
			},
			tls:    `{ trust: internal, server_name: localhost, client_certificate: $GW }`,
			status: 502, code: problem.CodeUpstreamTLSCertInvalid, reason: "cert_invalid", counted: true,
			fix: []string{"serverAuth"},
		},
		{
			name: "backend requires a client certificate, the gateway has none", api: "client-cert-required",
			target: func() string { return matrixBackend(t, good.TLS(), requireGateway) },
			tls:    `{ trust: internal, server_name: localhost }`,
			status: 502, code: problem.CodeUpstreamTLSClientCertRequired, reason: "client_cert_required", counted: true,
			plain: []string{`API "client-cert-required"`}, fix: []string{"client_certificate"},
		},
		{
			name: "backend rejects the gateway's certificate from another CA", api: "client-cert-rejected",
			target: func() string { return matrixBackend(t, good.TLS(), requireGateway) },
			tls:    `{ trust: internal, server_name: localhost, client_certificate: $IMPOSTOR }`,
			status: 502, code: problem.CodeUpstreamTLSClientCertRejected, reason: "client_cert_rejected", counted: true,
			plain: []string{"CN=impostor", "CN=foreignCA"},
		},
		{
			name: "backend speaks TLS 1.2 at most, the gateway 1.3 at least", api: "protocol-version",
			target: func() string { return matrixBackend(t, good.TLS(), tls12) },
			tls:    `{ trust: internal, server_name: localhost, client_certificate: $GW, min_version: "1.3" }`,
			status: 502, code: problem.CodeUpstreamTLSProtocolVersion, reason: "protocol_version", counted: true,
			plain: []string{"TLS 1.3"}, fix: []string{"min_version"},
		},
		{
			name: "backend offers only a cipher suite the gateway does not", api: "cipher-mismatch",
			target: func() string {
				return matrixBackend(t, ca.Issue(t, "api", testpki.Server(), testpki.DNS("localhost"), testpki.RSA(2048)).TLS(), func(c *tls.Config) {
					tls12(c)
					c.CipherSuites = []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}
				})
			},
			tls:    `{ trust: internal, server_name: localhost, client_certificate: $GW }`,
			status: 502, code: problem.CodeUpstreamTLSHandshake, reason: "handshake_failed", counted: true,
			plain: []string{`"handshake failure"`}, fix: []string{"cipher suites"},
		},
		{
			name: "plain HTTP backend on an https target", api: "not-tls",
			target: func() string { return strings.Replace(plain.URL, "http://", "https://", 1) },
			tls:    `{ trust: internal, server_name: localhost, client_certificate: $GW }`,
			status: 502, code: problem.CodeUpstreamTLSNotTLS, reason: "not_tls", counted: true,
			plain: []string{"plain-text HTTP response"}, fix: []string{"http://"},
		},
		{
			name: "backend key matches no pin", api: "pin-mismatch",
			target: func() string { return matrixBackend(t, good.TLS(), requireGateway) },
			tls:    `{ trust: internal, server_name: localhost, client_certificate: $GW, pins: [ "$OTHER_PIN" ] }`,
			status: 502, code: problem.CodeUpstreamTLSPinMismatch, reason: "pin_mismatch", counted: true,
			plain: []string{upstream.PinSHA256(good.Cert)}, fix: []string{"pins"},
		},
		{
			name: "backend certificate listed on the trust store's CRL", api: "revoked",
			target: func() string { return matrixBackend(t, revoked.TLS(), requireGateway) },
			tls:    `{ trust: internal-crl, server_name: localhost, client_certificate: $GW }`,
			status: 502, code: problem.CodeUpstreamTLSCertRevoked, reason: "cert_revoked", counted: true,
			plain: []string{`trust set "internal-crl"`, "revoked"}, fix: []string{"new certificate"},
		},
		{
			name: "trust store's CRL is past its next update (fail_closed)", api: "revocation-unavailable",
			target: func() string { return matrixBackend(t, good.TLS(), requireGateway) },
			tls:    `{ trust: internal-stale-crl, server_name: localhost, client_certificate: $GW }`,
			status: 502, code: problem.CodeUpstreamTLSRevocationUnavailable, reason: "revocation_unavailable", counted: true,
			plain: []string{`trust set "internal-stale-crl"`}, fix: []string{"fail_open"},
		},
		{
			// Not a TLS failure: logged with its reason, but not counted
			// as a failed handshake.
			name: "nothing listens on the target port", api: "connect-refused",
			target: func() string { return strings.Replace(refusedURL, "http://", "https://", 1) },
			tls:    `{ trust: internal, server_name: localhost, client_certificate: $GW }`,
			status: 502, code: problem.CodeUpstreamConnectRefused, reason: "connect_refused",
		},
	}

	var apis strings.Builder
	peers := make([]string, len(cases))
	for i, tc := range cases {
		target := tc.target()
		u, err := url.Parse(target)
		if err != nil {
			t.Fatal(err)
		}
		peers[i] = u.Host
		fmt.Fprintf(&apis, `  - name: %[1]s
    match: { path_prefix: /%[1]s }
    upstream:
      targets: [ %[2]s ]
      connect_timeout: 2s
      tls_handshake_timeout: 5s
      response_timeout: 5s
      tls: %[3]s
`, tc.api, target, expand(tc.tls))
	}
	g := startGateway(t, fmt.Sprintf(`
log: { access_log: false }
listeners:
  - name: public
    address: "127.0.0.1:0"
    tls: { certificates: [{ cert: %s, key: %s }] }
trust_stores:
  internal: { pem: %[3]s }
  internal-crl: { pem: %[3]s, crl: { files: [ %[4]s ] } }
  internal-stale-crl: { pem: %[3]s, crl: { files: [ %[5]s ] } }
apis:
%[6]s`, lc, lk, caFile, crl, staleCRL, apis.String()))

	tp := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}}
	t.Cleanup(tp.CloseIdleConnections)
	client := &http.Client{Transport: tp, Timeout: 20 * time.Second}
	base := "https://" + g.addr("public")

	// Not parallel: each row compares the gateway's counters before and
	// after its one request.
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := g.upstreamFailures(t)
			resp, err := client.Get(base + "/" + tc.api + "/x")
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			id := resp.Header.Get("X-Request-Id")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			after := g.upstreamFailures(t)

			if tc.code == "" {
				if string(body) != "hello from backend" {
					t.Errorf("body %q", body)
				}
				for _, r := range g.log.records(t) {
					if r["request_id"] == id {
						t.Errorf("a successful request was logged as a failure: %v", r)
					}
				}
				for reason, n := range after {
					if n != before[reason] {
						t.Errorf("a successful request changed failures{reason=%q} from %v to %v", reason, before[reason], n)
					}
				}
				return
			}

			var doc struct {
				Status    int    `json:"status"`
				Code      string `json:"code"`
				Detail    string `json:"detail"`
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal(body, &doc); err != nil {
				t.Fatalf("not a problem document: %v: %s", err, body)
			}
			if doc.Code != tc.code || doc.Status != tc.status || doc.RequestID != id {
				t.Errorf("problem %+v, want code %s, status %d, request_id %s", doc, tc.code, tc.status, id)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			if strings.Contains(doc.Detail, "127.0.0.1") || strings.Contains(doc.Detail, "CN=") || strings.Contains(doc.Detail, tc.reason) {
				t.Errorf("the client's detail names internals: %q", doc.Detail)
			}

			r := g.log.wait(t, "for request "+id, func(r map[string]any) bool {
				return r["request_id"] == id && r["msg"] == "request rejected"
			})
			if r["hop"] != "gateway→upstream" || r["code"] != tc.code || r["api"] != tc.api || r["status"] != float64(tc.status) || r["level"] != "WARN" {
				t.Errorf("log record %v: want a WARN on hop gateway→upstream, code %s, api %s, status %d", r, tc.code, tc.api, tc.status)
			}
			if r["reason"] != tc.reason {
				t.Errorf("log reason %v, want %s", r["reason"], tc.reason)
			}
			plain, _ := r["plain"].(string)
			fix, _ := r["fix"].(string)
			t.Logf("plain: %s\nfix: %s", plain, fix)
			for _, want := range append([]string{peers[i]}, tc.plain...) {
				if !strings.Contains(plain, want) {
					t.Errorf("plain lacks %q: %s", want, plain)
				}
			}
			if fix == "" {
				t.Error("the log record has no fix")
			}
			for _, want := range tc.fix {
				if !strings.Contains(fix, want) {
					t.Errorf("fix lacks %q: %s", want, fix)
				}
			}

			want := 0.0
			if tc.counted {
				want = 1
			}
			if d := after[tc.reason] - before[tc.reason]; d != want {
				t.Errorf("%s%s\"} went up by %v, want %v; metrics:\n%s", upstreamFailurePrefix, tc.reason, d, want,
					grepLines(g.metricsText(), "handshake_failures"))
			}
			for reason, n := range after {
				if reason != tc.reason && n != before[reason] {
					t.Errorf("failures{reason=%q} also changed, from %v to %v", reason, before[reason], n)
				}
			}
		})
	}

	t.Run("every reason is documented with its code", func(t *testing.T) {
		doc, err := os.ReadFile("../../docs/troubleshooting-tls.md")
		if err != nil {
			t.Fatal(err)
		}
		_, section, _ := strings.Cut(string(doc), "## Gateway → upstream")
		section, _, _ = strings.Cut(section, "## Client → gateway")
		for _, tc := range cases {
			if tc.code != "" && (!strings.Contains(section, "`"+tc.reason+"`") || !strings.Contains(section, "`"+tc.code+"`")) {
				t.Errorf("docs/troubleshooting-tls.md, \"Gateway → upstream\", lacks reason `%s` or code `%s`", tc.reason, tc.code)
			}
		}
	})
}
