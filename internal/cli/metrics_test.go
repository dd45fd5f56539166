package cli_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/testpki"
)

// TestUpstreamTLSFailureCounted: a 502 from an untrusted upstream shows in
// the handshake-failure metric with its reason.
func TestUpstreamTLSFailureCounted(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p)
	adminAddr := freePorts(t, 1)[0]
	extra := fmt.Sprintf("admin:\n  address: \"%s\"\n  certificates: [{ cert: %s, key: %s }]\n", adminAddr, p.gwCert, p.gwKey)
	cfg := strings.Replace(storyAConfig(p, b, ""), "internal: { pem: "+p.caFile, "internal: { pem: "+p.otherCAFile, 1)
	g := startGateway(t, writeConfig(t, p.dir, cfg+extra))
	waitAdmin(t, g, adminAddr)
	c := clientFor(p)
	resp, err := c.Get("https://" + g.addr + "/a/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = c.Get("https://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `portcullis_tls_handshake_failures_total{hop="gateway→upstream",reason="unknown_authority"} 1`; !strings.Contains(string(body), want) {
		t.Errorf("metrics lack %s", want)
	}
}

// TestClientHandshakeFailureCounted: a client that does not trust the
// gateway's certificate shows up on the client→gateway hop.
func TestClientHandshakeFailureCounted(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p)
	adminAddr := freePorts(t, 1)[0]
	extra := fmt.Sprintf("admin:\n  address: \"%s\"\n  certificates: [{ cert: %s, key: %s }]\n", adminAddr, p.gwCert, p.gwKey)
	g := startGateway(t, writeConfig(t, p.dir, storyAConfig(p, b, "")+extra))
	waitAdmin(t, g, adminAddr)
	// A client trusting another CA rejects the gateway's certificate.
	bad := clientFor(p)
	bad.Transport.(*http.Transport).TLSClientConfig.RootCAs = p.other.Pool()
	if _, err := bad.Get("https://" + g.addr + "/a/x"); err == nil {
		t.Fatal("a client that does not trust the gateway got through")
	}
	want := `portcullis_tls_handshake_failures_total{hop="client→gateway",reason="server_cert_rejected"} 1`
	waitFor(t, func() bool {
		resp, err := clientFor(p).Get("https://" + adminAddr + "/metrics")
		if err != nil {
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(body), want)
	}, g.stderr)
}

// TestMetricsAndHealthOnAdminListener: the admin listener serves Prometheus
// metrics (requests by API and status class, reloads, certificate expiry)
// and health endpoints, even without a registry.
func TestMetricsAndHealthOnAdminListener(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p)
	adminAddr := freePorts(t, 1)[0]
	extra := fmt.Sprintf("admin:\n  address: \"%s\"\n  certificates: [{ cert: %s, key: %s }]\n", adminAddr, p.gwCert, p.gwKey)
	g := startGateway(t, writeConfig(t, p.dir, storyAConfig(p, b, "")+extra))
	waitAdmin(t, g, adminAddr)
	c := clientFor(p)
	get := func(url string) (int, string) {
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for range 3 {
		if st, _ := get("https://" + g.addr + "/a/x"); st != 200 {
			t.Fatalf("request: %d", st)
		}
	}
	get("https://" + g.addr + "/nowhere")
	g.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Contains(g.stderr.String(), "configuration reloaded") }, g.stderr)

	st, body := get("https://" + adminAddr + "/metrics")
	if st != 200 {
		t.Fatalf("/metrics: %d", st)
	}
	for _, want := range []string{
		`portcullis_requests_total{api="api-a",application="-",code="-",status_class="2xx"} 3`,
		`portcullis_requests_total{api="-",application="-",code="route.not_found",status_class="4xx"} 1`,
		`portcullis_reloads_total{result="ok"} 1`,
		`portcullis_certificate_expiry_seconds{`,
		`portcullis_upstream_duration_seconds_count{api="api-a"} 3`,
		// One client connection (keep-alive), one upstream connection, kept
		// across the reload.
		`portcullis_tls_handshakes_total{hop="client→gateway",resumed="false",version="TLS 1.3"} 1`,
		`portcullis_upstream_connections{api="api-a",state="active"} 1`,
		`portcullis_upstream_connections{api="api-a",state="draining"} 0`,
		`portcullis_upstream_connections_opened_total{api="api-a"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if st, body := get("https://" + adminAddr + "/healthz"); st != 200 || !strings.Contains(body, "ok") {
		t.Errorf("/healthz: %d %s", st, body)
	}
	if st, _ := get("https://" + adminAddr + "/readyz"); st != 200 {
		t.Errorf("/readyz: %d", st)
	}
}

// TestAccessLogSampling: with access_log_sample 0, successful requests are
// not logged while failures still are.
func TestAccessLogSampling(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p)
	g := startGateway(t, writeConfig(t, p.dir, "log: { access_log_sample: 0 }\n"+storyAConfig(p, b, "")))
	c := clientFor(p)
	for _, path := range []string{"/a/ok", "/a/ok", "/missing"} {
		resp, err := c.Get("https://" + g.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	g.stop(t)
	out := g.stdout.String()
	if strings.Count(out, `"msg":"request"`) != 1 || !strings.Contains(out, `"path":"/missing"`) {
		t.Errorf("want only the failed request logged, got:\n%s", out)
	}
}

// TestExpiryWarningThresholds: a listener certificate 5 days from expiry is
// warned about at start with the configured thresholds, and not with
// thresholds it has not reached.
func TestExpiryWarningThresholds(t *testing.T) {
	for _, tc := range []struct {
		days string
		warn bool
	}{{"[10]", true}, {"[3, 1]", false}} {
		p := newPKI(t)
		b := newBackend(t, p)
		soon := p.ca.Issue(t, "expiring-listener", testpki.Server(), testpki.DNS("localhost"), testpki.Validity(time.Now().Add(-time.Hour), time.Now().Add(5*24*time.Hour)))
		p.gwCert, p.gwKey = soon.WriteFiles(t, p.dir, "soon")
		g := startGateway(t, writeConfig(t, p.dir, "log: { expiry_warning_days: "+tc.days+" }\n"+storyAConfig(p, b, "")))
		g.stop(t)
		got := false
		for _, line := range strings.Split(g.stderr.String(), "\n") {
			got = got || (strings.Contains(line, "certificate expires within") && strings.Contains(line, "CN=expiring-listener"))
		}
		if got != tc.warn {
			t.Errorf("thresholds %s: warned = %v, want %v\n%s", tc.days, got, tc.warn, g.stderr)
		}
	}
}
