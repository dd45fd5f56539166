package cli_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/testpki"
)

// openBackend is a TLS server with the backend's certificate that asks for
// no client certificate: what doctor bypass exists to find.
func openBackend(t *testing.T, p *pkiSet) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "open to all")
	}))
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.TLS = &tls.Config{Certificates: []tls.Certificate{p.backend.TLS()}}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// wantLines fails unless every pattern matches some line of out.
func wantLines(t *testing.T, out string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if !regexp.MustCompile(`(?m)` + p).MatchString(out) {
			t.Errorf("output lacks a line matching %s:\n%s", p, out)
		}
	}
}

func TestDoctorBypassProtectedBackend(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p)
	cfg := writeConfig(t, p.dir, storyAConfig(p, b, ""))
	r := portcullis(t, "doctor", "bypass", "-c", cfg)
	if r.code != 0 {
		t.Fatalf("a backend requiring the CA's client certificates was not PROTECTED: %s", r)
	}
	wantLines(t, r.stdout,
		`^api-a  `+regexp.QuoteMeta(b.URL)+`  PROTECTED$`,
		`without a client certificate: refused`,
		`with a certificate from an unknown CA: refused`)
	if got := b.lastPeer(); got != "" {
		t.Errorf("the backend served a request to %q", got)
	}
}

func TestDoctorBypassOpenBackend(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p)
	open := openBackend(t, p)
	cfg := writeConfig(t, p.dir, storyAConfig(p, b, fmt.Sprintf(`
  - name: api-open
    match: { path_prefix: /open }
    upstream:
      targets: [ %s ]
      tls:
        client_certificate: { cert: %s, key: %s }
        trust: internal
        server_name: localhost
  - name: api-plain-tls
    match: { path_prefix: /plain }
    upstream:
      targets: [ %[1]s ]
      tls: { trust: internal, server_name: localhost }
`, open.URL, p.clientCert, p.clientKey)))
	r := portcullis(t, "doctor", "bypass", "-c", cfg)
	if r.code == 0 {
		t.Fatalf("an upstream without client authentication passed doctor bypass: %s", r)
	}
	wantLines(t, r.stdout,
		`^api-a +`+regexp.QuoteMeta(b.URL)+` +PROTECTED$`,
		`^api-open +`+regexp.QuoteMeta(open.URL)+` +BYPASSABLE \(accepted a connection without a client certificate; accepted a certificate from an unknown CA\)$`,
		`without a client certificate: let in \(HTTP 200 OK\)`,
		`^not checked: api-plain-tls \(no upstream.tls.client_certificate\)$`)
}

func TestDoctorUpstream(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p)

	t.Run("ok", func(t *testing.T) {
		cfg := writeConfig(t, t.TempDir(), storyAConfig(p, b, ""))
		r := portcullis(t, "doctor", "upstream", "--api", "api-a", "-c", cfg)
		if r.code != 0 {
			t.Fatalf("doctor upstream failed against the good backend: %s", r)
		}
		wantLines(t, r.stdout,
			`^ 1\. DNS +127\.0\.0\.1 is an IP address`,
			`^ 2\. TCP +connected to 127\.0\.0\.1:\d+ in `,
			`^ 3\. TLS +TLS 1\.3, TLS_\w+, ALPN `,
			`^ 4\. Server +certificate chain as sent:`,
			`\[0\] CN=backend,O=Portcullis tests$`,
			`issuer CN=apimanCA,O=Portcullis tests, valid `,
			`trust: the chain verifies against trust store "internal" \(CN=apimanCA,O=Portcullis tests\)`,
			`name: +"localhost" matches the certificate \(DNS:localhost, IP:127\.0\.0\.1\)`,
			`^ 5\. Client +the server asked for a client certificate issued by one of:`,
			`^ +- CN=apimanCA,O=Portcullis tests$`,
			`ours: CN=gateway,O=Portcullis tests, issued by CN=apimanCA,O=Portcullis tests: its issuer is among them`,
			`^ 6\. HEAD / +200 OK \(HTTP/1\.1, `,
			`^VERDICT: OK$`)
		if got := b.lastPeer(); got != "gateway" {
			t.Errorf("the backend saw %q, want the gateway's certificate", got)
		}
	})

	t.Run("unknown authority", func(t *testing.T) {
		cfg := strings.Replace(storyAConfig(p, b, ""), "internal: { pem: "+p.caFile, "internal: { pem: "+p.otherCAFile, 1)
		r := portcullis(t, "doctor", "upstream", "--api", "api-a", "-c", writeConfig(t, t.TempDir(), cfg))
		if r.code != 1 {
			t.Fatalf("exit %d, want 1: %s", r.code, r)
		}
		wantLines(t, r.stdout,
			`^ 3\. TLS +handshake FAILED`,
			`\[0\] CN=backend,O=Portcullis tests$`,
			`trust: the chain does NOT verify against trust store "internal" \(CN=otherCA,O=Portcullis tests\)`,
			`^ 6\. HEAD / +not reached$`,
			`^VERDICT: FAILED — The upstream 127\.0\.0\.1:\d+ presented a certificate for "CN=backend,O=Portcullis tests" issued by "CN=apimanCA,O=Portcullis tests", which trust set "internal" does not trust .*\(upstream\.tls\.unknown_authority\)$`,
			`^FIX: Add the CA that issued the upstream's certificate \("CN=apimanCA,O=Portcullis tests"\) to trust set "internal"`)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) < 2 || !strings.HasPrefix(lines[len(lines)-2], "VERDICT: ") || !strings.HasPrefix(lines[len(lines)-1], "FIX: ") {
			t.Errorf("output does not end with the VERDICT and FIX lines:\n%s", r.stdout)
		}
	})

	t.Run("client certificate rejected", func(t *testing.T) {
		// The gateway's identity comes from a CA the backend does not
		// accept: the doctor names the CAs the backend asked for.
		stranger := p.other.Issue(t, "gateway-elsewhere", testpki.Client())
		cert, key := stranger.WriteFiles(t, t.TempDir(), "stranger")
		cfg := strings.Replace(storyAConfig(p, b, ""), "client_certificate: { cert: "+p.clientCert+", key: "+p.clientKey,
			"client_certificate: { cert: "+cert+", key: "+key, 1)
		r := portcullis(t, "doctor", "upstream", "--api", "api-a", "-c", writeConfig(t, t.TempDir(), cfg))
		if r.code != 1 {
			t.Fatalf("exit %d, want 1: %s", r.code, r)
		}
		wantLines(t, r.stdout,
			`^ +- CN=apimanCA,O=Portcullis tests$`,
			`ours: CN=gateway-elsewhere,O=Portcullis tests, issued by CN=otherCA,O=Portcullis tests: its issuer is NOT among them`,
			`^VERDICT: FAILED — .*rejected the gateway's client certificate.*\(upstream\.tls\.client_cert_rejected\)$`,
			`^FIX: Add the gateway's issuer "CN=otherCA,O=Portcullis tests" to the upstream's trust store`)
	})

	t.Run("unknown api", func(t *testing.T) {
		cfg := writeConfig(t, t.TempDir(), storyAConfig(p, b, ""))
		r := portcullis(t, "doctor", "upstream", "--api", "nope", "-c", cfg)
		if r.code != 1 || !strings.Contains(r.stderr, `no API named "nope"`) || !strings.Contains(r.stderr, "api-a") {
			t.Fatalf("%s", r)
		}
	})
}

func TestDoctorClient(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p)
	dir := t.TempDir()
	cfg := storyAConfig(p, b, fmt.Sprintf(`
  - name: api-m
    match: { path_prefix: /m }
    auth: mtls
    mtls: { trust: internal }
    upstream:
      targets: [ %s ]
      tls: { client_certificate: { cert: %s, key: %s }, trust: internal, server_name: localhost }
applications:
  - id: orders-app
    certificates: [{ issuer: "%s", cn: alice }]
`, b.URL, p.clientCert, p.clientKey, p.ca.Cert.Subject))
	cfg = strings.Replace(cfg, "key: "+p.gwKey+" }]\n", "key: "+p.gwKey+" }]\n      client_certificates: request\n", 1)
	cfgFile := writeConfig(t, dir, cfg)
	alice, _ := p.ca.Issue(t, "alice", testpki.Client()).WriteFiles(t, dir, "alice")
	bob, _ := p.ca.Issue(t, "bob", testpki.Client()).WriteFiles(t, dir, "bob")
	intruder, _ := p.intruder.WriteFiles(t, dir, "intruder")

	r := portcullis(t, "doctor", "client", "--api", "api-m", "--cert", alice, "-c", cfgFile)
	if r.code != 0 {
		t.Fatalf("alice refused: %s", r)
	}
	wantLines(t, r.stdout, `^certificate: CN=alice,O=Portcullis tests$`, `^API api-m authenticates with mtls$`,
		`^verified by trust store "internal": CN=alice,O=Portcullis tests → CN=apimanCA,O=Portcullis tests$`, `^VERDICT: ACCEPTED — application "orders-app"$`)

	r = portcullis(t, "doctor", "client", "--api", "api-m", "--cert", intruder, "-c", cfgFile)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1: %s", r.code, r)
	}
	wantLines(t, r.stdout,
		`^VERDICT: REFUSED — mtls\.client_cert_untrusted \(HTTP 401\): `,
		`^WHY: No chain leads from the certificate to an anchor of the trust sets \(internal\)\. Fix: `)

	r = portcullis(t, "doctor", "client", "--api", "api-m", "--cert", bob, "-c", cfgFile)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1: %s", r.code, r)
	}
	wantLines(t, r.stdout, `^VERDICT: REFUSED — mtls\.unknown_application \(HTTP 401\): `, `^WHY: The certificate verified but no application`)

	r = portcullis(t, "doctor", "client", "--api", "api-a", "--cert", alice, "-c", cfgFile)
	if r.code != 0 || !strings.Contains(r.stdout, "API api-a has no authentication") {
		t.Fatalf("open API: %s", r)
	}
}

func TestDoctorCerts(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ca := testpki.NewCA(t, "certsCA", longLived())
	caFile := ca.WriteCA(t, dir, "ca")
	soonCert, soonKey := ca.Issue(t, "listener", testpki.Server(), testpki.DNS("localhost"),
		testpki.Validity(now.Add(-time.Hour), now.Add(5*24*time.Hour))).WriteFiles(t, dir, "soon")
	gwCert, gwKey := ca.Issue(t, "gateway", testpki.Client(), testpki.Validity(now.Add(-time.Hour), now.Add(200*24*time.Hour))).WriteFiles(t, dir, "gw")
	cfg := fmt.Sprintf(`
listeners:
  - name: public
    address: "127.0.0.1:0"
    tls:
      certificates: [{ cert: %s, key: %s }]
trust_stores:
  internal: { pem: %s }
apis:
  - name: api-a
    match: { path_prefix: /a }
    upstream:
      targets: [ "https://127.0.0.1:1" ]
      tls: { client_certificate: { cert: %s, key: %s }, trust: internal }
`, soonCert, soonKey, caFile, gwCert, gwKey)
	const name = `,O=Portcullis tests`

	r := portcullis(t, "doctor", "certs", "-c", writeConfig(t, dir, cfg))
	if r.code != 0 {
		t.Fatalf("nothing has expired, yet: %s", r)
	}
	wantLines(t, r.stdout,
		`^NOT AFTER +DAYS LEFT +STATUS +WHERE +SUBJECT +ISSUER$`,
		`^\S+ \S+ UTC +4 +EXPIRES WITHIN 7 DAYS +listener public +CN=listener`+name+` +CN=certsCA`+name+`$`,
		`^\S+ \S+ UTC +199 +OK +API api-a upstream client certificate +CN=gateway`+name+` +CN=certsCA`+name+`$`,
		`^\S+ \S+ UTC +39\d +OK +trust store internal +CN=certsCA`+name+` +CN=certsCA`+name+`$`,
		`^3 certificate use\(s\): 0 expired, 1 expiring within 30 days$`)
	if lines := strings.Split(r.stdout, "\n"); len(lines) < 2 || !strings.Contains(lines[1], "listener public") {
		t.Errorf("not sorted by expiry:\n%s", r.stdout)
	}

	r = portcullis(t, "doctor", "certs", "--warn-days", "3,1", "-c", writeConfig(t, dir, cfg))
	if r.code != 0 || strings.Contains(r.stdout, "EXPIRES WITHIN") {
		t.Fatalf("5 days left is not within --warn-days 3,1: %s", r)
	}

	old := testpki.NewCA(t, "oldCA", testpki.Expired())
	oldFile := old.WriteCA(t, dir, "old-ca")
	cfg = strings.Replace(cfg, "trust_stores:\n", "trust_stores:\n  old: { pem: "+oldFile+" }\n", 1)
	r = portcullis(t, "doctor", "certs", "-c", writeConfig(t, dir, cfg))
	if r.code != 1 {
		t.Fatalf("exit %d with an expired certificate, want 1: %s", r.code, r)
	}
	wantLines(t, r.stdout, `^\S+ \S+ UTC +-\d+ +EXPIRED +trust store old +CN=oldCA`+name+` +CN=oldCA`+name+`$`,
		`^4 certificate use\(s\): 1 expired, 1 expiring within 30 days$`)
	if lines := strings.Split(r.stdout, "\n"); len(lines) < 2 || !strings.Contains(lines[1], "EXPIRED") {
		t.Errorf("the expired certificate is not listed first:\n%s", r.stdout)
	}
}
