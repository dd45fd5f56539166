package upstream_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/upstream"
)

// forward sends one GET through u and returns the response status (0 when
// Forward failed) and the error.
func forward(t *testing.T, u *upstream.Upstream) (int, *problem.Error, *upstream.Result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, "https://gateway.example/orders", nil)
	w := newStrictWriter()
	var res upstream.Result
	err := u.Forward(w, r, &res)
	if err == nil {
		if !w.wrote {
			t.Fatal("Forward returned nil but wrote no response")
		}
		return w.Code, nil, &res
	}
	if w.wrote {
		t.Fatalf("Forward wrote a response and returned %v", err)
	}
	var pe *problem.Error
	if !errors.As(err, &pe) {
		t.Fatalf("Forward returned %T %v, want *problem.Error", err, err)
	}
	return 0, pe, &res
}

// TestTLSSettings proves that every upstream TLS setting is enforced: each
// row changes one setting (or the backend) from the working Story A setup
// and shows the outcome change, or stay the same where the setting allows it.
func TestTLSSettings(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	good := newBackend(t, p, nil)
	tls12 := newBackend(t, p, nil, maxTLS12())
	impostor := newBackend(t, p, nil, cert(p.foreignBackend))
	expired := newBackend(t, p, nil, cert(p.expiredBackend))
	plain := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(plain.Close)
	plainURL := mustURL(t, strings.Replace(plain.URL, "http://", "https://", 1))
	slow := newBackend(t, p, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(testTimeout):
		}
	})
	refused := closedPort(t)

	foreignPool := p.foreign.Pool()
	foreignCert := p.foreignGateway.TLS()
	goodPin := upstream.PinSHA256(p.backend.Cert)
	otherPin := upstream.PinSHA256(p.foreignBackend.Cert)

	cases := []struct {
		name     string
		target   *url.URL
		mod      func(*upstream.Options)
		wantCode string // "" = 200
		wantSNI  string // checked when set; "-" means no SNI
	}{
		{name: "story A defaults: gateway certificate, trusted CA, IP target verified by IP SAN", target: good.url, wantSNI: "-"},
		{name: "RootCAs without the backend's CA refuses it", target: good.url,
			mod: func(o *upstream.Options) { o.TLS.RootCAs, o.TLS.TrustName = foreignPool, "partners" }, wantCode: problem.CodeUpstreamTLSUnknownAuthority},
		{name: "RootCAs with the impostor's CA is what lets it in", target: impostor.url,
			mod: func(o *upstream.Options) { o.TLS.RootCAs = foreignPool }},
		{name: "ServerName matching the certificate is sent as SNI and accepted", target: good.url,
			mod: func(o *upstream.Options) { o.TLS.ServerName = "api-a.internal" }, wantSNI: "api-a.internal"},
		{name: "ServerName not in the certificate is refused", target: good.url,
			mod: func(o *upstream.Options) { o.TLS.ServerName = "api-b.internal" }, wantCode: problem.CodeUpstreamTLSHostnameMismatch},
		{name: "VerifyHostname false accepts a wrong name but still sends it", target: good.url,
			mod: func(o *upstream.Options) { o.TLS.ServerName = "api-b.internal"; o.TLS.VerifyHostname = false }, wantSNI: "api-b.internal"},
		{name: "VerifyHostname false still verifies the chain", target: impostor.url,
			mod: func(o *upstream.Options) { o.TLS.ServerName = "api-b.internal"; o.TLS.VerifyHostname = false }, wantCode: problem.CodeUpstreamTLSUnknownAuthority},
		{name: "VerifyHostname false still rejects an expired certificate", target: expired.url,
			mod: func(o *upstream.Options) { o.TLS.VerifyHostname = false }, wantCode: problem.CodeUpstreamTLSCertExpired},
		{name: "InsecureSkipVerify accepts an unknown CA", target: impostor.url,
			mod: func(o *upstream.Options) { o.TLS.InsecureSkipVerify = true }},
		{name: "MinVersion 1.3 against a TLS 1.2 backend has no version in common", target: tls12.url,
			mod: func(o *upstream.Options) { o.TLS.MinVersion = tls.VersionTLS13 }, wantCode: problem.CodeUpstreamTLSProtocolVersion},
		{name: "MinVersion 1.2 against a TLS 1.2 backend works", target: tls12.url,
			mod: func(o *upstream.Options) { o.TLS.MinVersion = tls.VersionTLS12 }},
		{name: "Pins matching the backend's key pass", target: good.url,
			mod: func(o *upstream.Options) { o.TLS.Pins = []string{otherPin, goodPin} }},
		{name: "Pins not matching the backend's key refuse it", target: good.url,
			mod: func(o *upstream.Options) { o.TLS.Pins = []string{otherPin} }, wantCode: problem.CodeUpstreamTLSPinMismatch},
		{name: "Pins are enforced even with InsecureSkipVerify", target: impostor.url,
			mod: func(o *upstream.Options) { o.TLS.InsecureSkipVerify = true; o.TLS.Pins = []string{goodPin} }, wantCode: problem.CodeUpstreamTLSPinMismatch},
		{name: "Certificate nil against a backend that requires one (TLS 1.3)", target: good.url,
			mod: func(o *upstream.Options) { o.TLS.Certificate = nil }, wantCode: problem.CodeUpstreamTLSClientCertRequired},
		{name: "Certificate nil against a backend that requires one (TLS 1.2)", target: tls12.url,
			mod: func(o *upstream.Options) { o.TLS.Certificate = nil }, wantCode: problem.CodeUpstreamTLSClientCertRequired},
		{name: "Certificate from another CA is rejected (TLS 1.3)", target: good.url,
			mod: func(o *upstream.Options) { o.TLS.Certificate = &foreignCert }, wantCode: problem.CodeUpstreamTLSClientCertRejected},
		{name: "Certificate from another CA is rejected (TLS 1.2)", target: tls12.url,
			mod: func(o *upstream.Options) { o.TLS.Certificate = &foreignCert }, wantCode: problem.CodeUpstreamTLSClientCertRejected},
		{name: "expired backend certificate", target: expired.url, wantCode: problem.CodeUpstreamTLSCertExpired},
		{name: "plain HTTP backend on an https target", target: plainURL, wantCode: problem.CodeUpstreamTLSNotTLS},
		{name: "closed port", target: refused, wantCode: problem.CodeUpstreamConnectRefused},
		{name: "ResponseHeaderTimeout bounds a slow backend", target: slow.url,
			mod: func(o *upstream.Options) { o.ResponseHeaderTimeout = 100 * time.Millisecond }, wantCode: problem.CodeUpstreamTimeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Not parallel: rows share backends whose SNI log is checked.
			o := gatewayOptions(p, tc.target)
			if tc.mod != nil {
				tc.mod(&o)
			}
			u := newUpstream(t, o)
			var before int
			if b := backendFor(tc.target, good); b != nil {
				sni, _, _, _ := b.seen()
				before = len(sni)
			}
			status, pe, res := forward(t, u)
			if res.Target != tc.target.String() {
				t.Errorf("Result.Target = %q, want %q", res.Target, tc.target)
			}
			if tc.wantCode == "" {
				if pe != nil {
					t.Fatalf("want 200, got %v (log %v)", pe, pe.Log)
				}
				if status != http.StatusOK || res.Status != http.StatusOK || res.BytesOut != int64(len("hello from api-a")) {
					t.Fatalf("status %d, result %+v", status, res)
				}
			} else {
				checkProblem(t, pe, tc.wantCode)
			}
			if tc.wantSNI != "" {
				sni, _, _, _ := good.seen()
				want := tc.wantSNI
				if want == "-" {
					want = ""
				}
				if len(sni) <= before || sni[len(sni)-1] != want {
					t.Fatalf("backend saw SNI %q, want %q", sni[before:], want)
				}
			}
		})
	}
}

// checkProblem asserts the problem's code and status, and that what the
// client would see names no address and the log carries a diagnosis.
func checkProblem(t *testing.T, pe *problem.Error, code string) {
	t.Helper()
	if pe == nil {
		t.Fatalf("want %s, got success", code)
	}
	if pe.Code != code {
		t.Fatalf("code %q, want %q (cause %v; log %v)", pe.Code, code, pe.Cause, pe.Log)
	}
	if want := problem.Catalogue[code].Status; pe.HTTPStatus() != want || (want != 502 && want != 504) {
		t.Errorf("status %d, want %d (502 or 504)", pe.HTTPStatus(), want)
	}
	if pe.Cause == nil || pe.Detail == "" || strings.Contains(pe.Detail, "127.0.0.1") || strings.Contains(pe.Detail, "CN=") {
		t.Errorf("unsafe or empty detail %q (cause %v)", pe.Detail, pe.Cause)
	}
	i := slices.Index(pe.Log, any("reason"))
	if i < 0 || i+1 >= len(pe.Log) || pe.Log[i+1] == "" {
		t.Errorf("log attributes without a reason: %v", pe.Log)
	}
	if testing.Verbose() {
		t.Logf("%s: %v", code, pe.Log)
	}
}

func backendFor(u *url.URL, b *backend) *backend {
	if u.Host == b.url.Host {
		return b
	}
	return nil
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// closedPort returns an https URL on a loopback port nothing listens on.
func closedPort(t testing.TB) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return mustURL(t, "https://"+addr)
}

func TestNewRejectsBadOptions(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	ok := mustURL(t, "https://127.0.0.1:8443")
	cases := []struct {
		name string
		mod  func(*upstream.Options)
		want error
	}{
		{"no targets", func(o *upstream.Options) { o.Targets = nil }, upstream.ErrNoTargets},
		{"unsupported scheme", func(o *upstream.Options) { o.Targets = []*url.URL{mustURL(t, "ftp://127.0.0.1")} }, upstream.ErrBadTarget},
		{"relative target", func(o *upstream.Options) { o.Targets = []*url.URL{mustURL(t, "/api")} }, upstream.ErrBadTarget},
		{"target with a query", func(o *upstream.Options) { o.Targets = []*url.URL{mustURL(t, "https://127.0.0.1/?a=b")} }, upstream.ErrBadTarget},
		{"target with user info", func(o *upstream.Options) { o.Targets = []*url.URL{mustURL(t, "https://u:p@127.0.0.1/")} }, upstream.ErrBadTarget},
		{"TLS 1.1 minimum", func(o *upstream.Options) { o.TLS.MinVersion = tls.VersionTLS11 }, upstream.ErrBadTLSOption},
		{"pin that is not base64", func(o *upstream.Options) { o.TLS.Pins = []string{"not a pin"} }, upstream.ErrBadTLSOption},
		{"pin of the wrong length", func(o *upstream.Options) { o.TLS.Pins = []string{"AAAA"} }, upstream.ErrBadTLSOption},
		{"empty client certificate", func(o *upstream.Options) { o.TLS.Certificate = &tls.Certificate{} }, upstream.ErrBadTLSOption},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := gatewayOptions(p, ok)
			tc.mod(&o)
			u, err := upstream.New(o)
			if !errors.Is(err, tc.want) {
				t.Fatalf("New: %v, want %v", err, tc.want)
			}
			if u != nil {
				t.Fatal("New returned an Upstream with an error")
			}
			if !strings.Contains(err.Error(), `"api-a"`) {
				t.Errorf("error %q does not name the API", err)
			}
		})
	}
}

// TestNewWarnsAboutUnsafeOptions checks that unsafe settings are loud at
// every load (STYLE §9.8 rule 10).
func TestNewWarnsAboutUnsafeOptions(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	cases := []struct {
		name string
		mod  func(*upstream.Options)
		want string
	}{
		{"insecure_skip_verify", func(o *upstream.Options) { o.TLS.InsecureSkipVerify = true }, "insecure_skip_verify"},
		{"verify_hostname false", func(o *upstream.Options) { o.TLS.VerifyHostname = false }, "verify_hostname: false"},
		{"TLS settings on plain targets", func(o *upstream.Options) { o.Targets = []*url.URL{mustURL(t, "http://127.0.0.1:1")} }, "none of them apply"},
		{"safe settings", func(*upstream.Options) {}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf strings.Builder
			o := gatewayOptions(p, mustURL(t, "https://127.0.0.1:1"))
			o.Logger = slogTo(&buf)
			tc.mod(&o)
			newUpstream(t, o)
			got := buf.String()
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Fatalf("log %q, want a warning containing %q", got, tc.want)
			}
		})
	}
}

// TestHTTP2ClientCertAlerts covers TLS 1.3 client authentication failures
// against an HTTP/2 backend. The backend's alert arrives after the
// gateway's handshake completed; depending on timing net/http either
// reports it or replaces it with "client conn could not be established",
// and Forward must diagnose both the same way. Each case repeats to meet
// both timings.
func TestHTTP2ClientCertAlerts(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	b := newBackend(t, p, nil, http2())
	foreignCert := p.foreignGateway.TLS()
	cases := []struct {
		name string
		mod  func(*upstream.Options)
		want string
	}{
		{"certificate from another CA", func(o *upstream.Options) { o.TLS.Certificate = &foreignCert }, problem.CodeUpstreamTLSClientCertRejected},
		{"no certificate", func(o *upstream.Options) { o.TLS.Certificate = nil }, problem.CodeUpstreamTLSClientCertRequired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for range 5 {
				o := gatewayOptions(p, b.url)
				tc.mod(&o)
				_, pe, _ := forward(t, newUpstream(t, o))
				checkProblem(t, pe, tc.want)
			}
		})
	}
}
