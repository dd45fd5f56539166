package cli_test

import (
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/pki"
	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/testpki"
)

// storyB is one listener serving an API-key API (standing in for OAuth2
// until it exists) beside a client-certificate API, with a CRL on the
// partners' trust store.
type storyB struct {
	p        *pkiSet
	b        *backend
	g        *gateway
	partners *pki.CA
	pca      *testpki.CA // the same CA, for test-only certificates (expired, wrong usage)
	crlFile  string
	port     string
	certs    map[string]tls.Certificate
}

var apiKey = secret("pk_test_0123456789abcdef")

func newStoryB(t *testing.T) *storyB {
	t.Helper()
	s := &storyB{p: newPKI(t), certs: map[string]tls.Certificate{}}
	s.b = newBackend(t, s.p)
	dir := s.p.dir
	var err error
	s.partners, err = pki.InitCA(filepath.Join(dir, "partners"), pki.CAOptions{Name: "partnersCA", Days: 2})
	if err != nil {
		t.Fatal(err)
	}
	s.pca = &testpki.CA{Cert: s.partners.Cert, Key: s.partners.Key}
	issue := func(name string, o pki.IssueOptions) {
		is, err := s.partners.Issue(o)
		if err != nil {
			t.Fatal(err)
		}
		s.certs[name] = (&testpki.Leaf{Cert: is.Cert, Key: is.Key}).TLS()
	}
	issue("orders", pki.IssueOptions{Name: "orders-client", Client: true, Days: 1})
	issue("partner", pki.IssueOptions{Name: "partner-client", Client: true, Days: 1})
	issue("stranger", pki.IssueOptions{Name: "stranger", Client: true, Days: 1})
	issue("blocked", pki.IssueOptions{Name: "blocked-client", Client: true, Days: 1})
	issue("revoked", pki.IssueOptions{Name: "revoked-client", Client: true, Days: 1})
	s.certs["expired"] = s.pca.Issue(t, "orders-client", testpki.Client(), testpki.Expired()).TLS()
	s.certs["future"] = s.pca.Issue(t, "orders-client", testpki.Client(), testpki.NotYetValid()).TLS()
	s.certs["server-only"] = s.pca.Issue(t, "orders-client", testpki.Server()).TLS()
	s.certs["foreign"] = s.p.intruder.TLS()

	if err := s.partners.Revoke(s.certs["revoked"].Leaf.SerialNumber, 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	s.crlFile = filepath.Join(dir, "partners.crl")
	s.publishCRL(t)

	sum := sha256.Sum256(s.certs["orders"].Leaf.Raw)
	keyHash := sha256.Sum256([]byte(apiKey))
	cfg := fmt.Sprintf(`
listeners:
  - name: public
    address: "127.0.0.1:0"
    tls:
      certificates: [{ cert: %s, key: %s }]
      client_certificates: request
trust_stores:
  internal: { pem: %s }
  partners:
    pem: %s
    crl: { files: [ %s ], refresh: 100ms }
applications:
  - id: orders-app
    certificates: [{ fingerprint: "%s" }]
  - id: partner-app
    certificates: [{ issuer: "%s", cn: partner-client }]
  - id: blocked-app
    certificates: [{ issuer: "%[7]s", cn: blocked-client }]
  - id: key-app
    api_keys: [ "sha256:%[8]x" ]
apis:
  - name: open-api
    match: { host: open.example.test }
    auth: api_key
    upstream: &up
      targets: [ %[9]s ]
      tls: { client_certificate: { cert: %[10]s, key: %[11]s }, trust: internal, server_name: localhost }
  - name: cert-api
    match: { host: certs.example.test }
    auth: mtls
    mtls:
      trust: partners
      allow: { cn: [ orders-client, partner-client, stranger, revoked-client ] }
    upstream: *up
`, s.p.gwCert, s.p.gwKey, s.p.caFile, filepath.Join(dir, "partners", pki.CertFile), s.crlFile,
		hex.EncodeToString(sum[:]), s.partners.Cert.Subject.String(), keyHash, s.b.URL, s.p.clientCert, s.p.clientKey)
	s.g = startGateway(t, writeConfig(t, dir, cfg))
	_, s.port, _ = strings.Cut(s.g.addr, ":")
	return s
}

func (s *storyB) publishCRL(t *testing.T) {
	t.Helper()
	crl, err := s.partners.CRL(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tmp := s.crlFile + ".tmp"
	testpki.WriteFile(t, tmp, crl)
	if err := os.Rename(tmp, s.crlFile); err != nil {
		t.Fatal(err)
	}
}

// get sends a request with SNI sni and Host host, presenting cert if named.
func (s *storyB) get(t *testing.T, sni, host, cert string, hdr http.Header) *http.Response {
	t.Helper()
	cfg := &tls.Config{RootCAs: s.p.ca.Pool(), ServerName: sni}
	if cert != "" {
		c := s.certs[cert]
		cfg.Certificates = []tls.Certificate{c}
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequest("GET", "https://"+s.g.addr+"/x", nil)
	req.Host = host
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET with %s: %v", cert, err)
	}
	return resp
}

func TestStoryBClientCertificates(t *testing.T) {
	s := newStoryB(t)
	const certs = "certs.example.test"
	tests := []struct {
		name, cert string
		status     int
		code       string
	}{
		{"no certificate", "", 401, problem.CodeClientCertMissing},
		{"another CA", "foreign", 401, problem.CodeClientCertUntrusted},
		{"expired", "expired", 401, problem.CodeClientCertExpired},
		{"not yet valid", "future", 401, problem.CodeClientCertNotYetValid},
		{"revoked by CRL", "revoked", 401, problem.CodeClientCertRevoked},
		{"server-only usage", "server-only", 401, problem.CodeClientCertWrongUsage},
		{"subject not allowed", "blocked", 403, problem.CodeClientCertNotAllowed},
		{"no application", "stranger", 401, problem.CodeUnknownApplication},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := s.get(t, certs, certs, tc.cert, nil)
			d := readProblem(t, resp)
			if resp.StatusCode != tc.status || d.Code != tc.code {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, d.Code, tc.status, tc.code)
			}
		})
	}
	waitFor(t, func() bool { return strings.Contains(s.g.stderr.String(), problem.CodeClientCertRevoked) }, s.g.stderr)
	if log := s.g.stderr.String(); !strings.Contains(log, "revoked-client") || !strings.Contains(log, "partnersCA") {
		t.Errorf("the log line for a revoked certificate should name subject and issuer:\n%s", log)
	}

	t.Run("mapped certificates reach the backend as their application", func(t *testing.T) {
		for cert, app := range map[string]string{"orders": "orders-app", "partner": "partner-app"} {
			resp := s.get(t, certs, certs, cert, nil)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %s", cert, resp.Status)
			}
			want := fmt.Sprintf(`"application":"%s"`, app)
			waitFor(t, func() bool { return strings.Contains(s.g.stdout.String(), want) }, s.g.stdout)
		}
	})

	t.Run("the API-key API on the same port needs no certificate", func(t *testing.T) {
		resp := s.get(t, "open.example.test", "open.example.test", "", http.Header{"X-Api-Key": {apiKey}})
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %s", resp.Status)
		}
		resp = s.get(t, "open.example.test", "open.example.test", "", nil)
		if d := readProblem(t, resp); resp.StatusCode != 401 || d.Code != problem.CodeAPIKeyMissing {
			t.Errorf("no key: %d %q", resp.StatusCode, d.Code)
		}
		resp = s.get(t, "open.example.test", "open.example.test", "", http.Header{"X-Api-Key": {"wrong"}})
		if d := readProblem(t, resp); resp.StatusCode != 401 || d.Code != problem.CodeAPIKeyInvalid {
			t.Errorf("wrong key: %d %q", resp.StatusCode, d.Code)
		}
	})

	t.Run("SNI of one host, Host of the certificate API: 421", func(t *testing.T) {
		resp := s.get(t, "open.example.test", certs, "orders", nil)
		if d := readProblem(t, resp); resp.StatusCode != 421 || d.Code != problem.CodeMisdirected {
			t.Errorf("got %d %q, want 421", resp.StatusCode, d.Code)
		}
	})

	t.Run("forged certificate headers never reach the backend", func(t *testing.T) {
		forged := ":" + base64.StdEncoding.EncodeToString(s.certs["partner"].Leaf.Raw) + ":"
		hdr := http.Header{"Client-Cert": {forged}, "X-Forwarded-Client-Cert": {"Hash=forged"}, "Client-Cert-Chain": {forged}, "X-Api-Key": {apiKey}}
		resp := s.get(t, "open.example.test", "open.example.test", "", hdr)
		resp.Body.Close()
		resp = s.get(t, certs, certs, "orders", hdr)
		resp.Body.Close()
		s.b.mu.Lock()
		seen := s.b.hdrs[len(s.b.hdrs)-2:]
		s.b.mu.Unlock()
		if seen[0].Get("Client-Cert") != "" || seen[0].Get("X-Forwarded-Client-Cert") != "" || seen[0].Get("Client-Cert-Chain") != "" {
			t.Errorf("API-key API forwarded a forged header: %v", seen[0])
		}
		got := seen[1].Get("Client-Cert")
		raw, err := base64.StdEncoding.DecodeString(strings.Trim(got, ":"))
		if err != nil || !strings.HasPrefix(got, ":") {
			t.Fatalf("Client-Cert %q is not an RFC 8941 byte sequence: %v", got, err)
		}
		if c, err := x509.ParseCertificate(raw); err != nil || !c.Equal(s.certs["orders"].Leaf) {
			t.Errorf("backend saw a Client-Cert that is not the verified certificate (err %v)", err)
		}
		if seen[1].Get("X-Forwarded-Client-Cert") != "" {
			t.Error("the forged XFCC header survived")
		}
	})

	t.Run("a new CRL applies without a restart", func(t *testing.T) {
		resp := s.get(t, certs, certs, "partner", nil)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("before revocation: %s", resp.Status)
		}
		if err := s.partners.Revoke(s.certs["partner"].Leaf.SerialNumber, 4, time.Now()); err != nil {
			t.Fatal(err)
		}
		s.publishCRL(t)
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp := s.get(t, certs, certs, "partner", nil)
			if resp.StatusCode == 401 {
				if d := readProblem(t, resp); d.Code != problem.CodeClientCertRevoked {
					t.Fatalf("code %q", d.Code)
				}
				break
			}
			resp.Body.Close()
			if time.Now().After(deadline) {
				t.Fatal("the revocation was not picked up within 10s")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// TestClientCertificateRequestedOnlyWhereUsed asks openssl s_client whether
// the handshake requested a certificate: on the certificate API's name yes,
// on the API-key API's name no.
func TestClientCertificateRequestedOnlyWhereUsed(t *testing.T) {
	needTool(t, "openssl")
	s := newStoryB(t)
	for sni, want := range map[string]bool{"certs.example.test": true, "open.example.test": false} {
		out := run(t, s.p.dir, "sh", "-c", fmt.Sprintf("echo | openssl s_client -msg -connect 127.0.0.1:%s -servername %s -tls1_3 2>&1", s.port, sni))
		asked := strings.Contains(out, "CertificateRequest")
		if asked != want {
			t.Errorf("SNI %s: certificate requested = %v, want %v\n%s", sni, asked, want, out)
		}
	}
	// curl with a registered certificate gets through; without one, 401.
	needTool(t, "curl")
	orders := s.certs["orders"]
	certFile, keyFile := filepath.Join(s.p.dir, "orders.crt"), filepath.Join(s.p.dir, "orders.key")
	testpki.WriteFile(t, certFile, testpki.CertsPEM(orders.Leaf))
	testpki.WriteFile(t, keyFile, testpki.KeyPEM(orders.PrivateKey.(crypto.Signer)))
	base := []string{"-sS", "--cacert", s.p.caFile, "--resolve", "certs.example.test:" + s.port + ":127.0.0.1", "-o", "/dev/null", "-w", "%{http_code}"}
	url := "https://certs.example.test:" + s.port + "/x"
	if got := run(t, s.p.dir, "curl", append(base, "--cert", certFile, "--key", keyFile, url)...); got != "200" {
		t.Errorf("curl with the orders certificate: %s", got)
	}
	if got := run(t, s.p.dir, "curl", append(base, url)...); got != "401" {
		t.Errorf("curl without a certificate: %s", got)
	}
}
