package cli

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/portcullis/portcullis/internal/auth"
	"github.com/portcullis/portcullis/internal/pki"
	"github.com/portcullis/portcullis/internal/server"
	"github.com/portcullis/portcullis/internal/snapshot"
)

type quickstartCmd struct {
	Dir     string `default:"portcullis-demo" type:"path" help:"Directory for the demo CA, certificates and config (reused if it exists)."`
	Listen  string `default:"127.0.0.1:8443" help:"Gateway address."`
	Backend string `default:"127.0.0.1:9443" help:"Demo backend address."`
	Try     bool   `help:"Instead of serving until Ctrl-C, send the two demo requests (through the gateway, and around it), print what happened, and exit (non-zero if the demo did not behave)."`
}

// demoFiles are the paths quickstart writes, relative to its directory.
type demoFiles struct {
	Dir, CACert, GatewayCert, GatewayKey, ClientCert, ClientKey, BackendCert, BackendKey, Config string
	Listen, Backend, ListenPort, BackendPort                                                     string
	// APIKey is the demo application's key; only its hash is in the config.
	APIKey, APIKeyHash string
}

func (c *quickstartCmd) Run(g *globals) error {
	sigs, stopSignals := catchSignals()
	defer stopSignals()
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return err
	}
	_, lport, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", c.Listen, err)
	}
	_, bport, err := net.SplitHostPort(c.Backend)
	if err != nil {
		return fmt.Errorf("--backend %q: %w", c.Backend, err)
	}
	files := demoFiles{
		Dir:         dir,
		CACert:      filepath.Join(dir, "ca", "ca.crt"),
		GatewayCert: filepath.Join(dir, "gateway.crt"),
		GatewayKey:  filepath.Join(dir, "gateway.key"),
		ClientCert:  filepath.Join(dir, "gateway-upstream.crt"),
		ClientKey:   filepath.Join(dir, "gateway-upstream.key"),
		BackendCert: filepath.Join(dir, "backend.crt"),
		BackendKey:  filepath.Join(dir, "backend.key"),
		Config:      filepath.Join(dir, "portcullis.yaml"),
		Listen:      c.Listen, Backend: c.Backend, ListenPort: lport, BackendPort: bport,
	}
	if err := makeDemoPKI(files, g.stderr); err != nil {
		return err
	}
	if files.APIKey, err = demoAPIKey(filepath.Join(dir, "demo-app.key")); err != nil {
		return err
	}
	files.APIKeyHash = auth.HashAPIKey(files.APIKey)
	if err := writeDemoConfig(files); err != nil {
		return err
	}

	backend, err := startDemoBackend(files)
	if err != nil {
		return err
	}
	defer backend.Close()

	_, snap := load(files.Config, g.stderr, snapshot.Options{}, nil)
	if snap == nil {
		return exitError{ExitFailure}
	}
	log := newLogger(g.stderr, "info")
	access := slog.New(slog.NewJSONHandler(io.Discard, nil))
	if !c.Try {
		access = slog.New(slog.NewJSONHandler(g.stdout, nil))
	}
	srv := server.New(log, access)
	if err := srv.Start(snap); err != nil {
		return fmt.Errorf("starting the gateway (is something else on %s? use --listen): %w", c.Listen, err)
	}
	if c.Try {
		defer srv.Shutdown(context.Background())
		return tryDemo(files, g.stdout)
	}
	printDemoHelp(files, g.stdout)
	return runUntilSignal(srv, log, sigs, nil, nil, nil, nil)
}

// demoAPIKey reads the demo application's key, making one on the first run.
func demoAPIKey(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	key := "pk_demo_" + base64.RawURLEncoding.EncodeToString(b)
	return key, os.WriteFile(path, []byte(key+"\n"), 0o600)
}

// makeDemoPKI creates the demo CA and the three certificates unless they
// exist already, so a second run reuses the first run's trust.
func makeDemoPKI(f demoFiles, log io.Writer) error {
	caDir := filepath.Dir(f.CACert)
	var ca *pki.CA
	var err error
	if _, statErr := os.Stat(f.CACert); statErr == nil {
		ca, err = pki.LoadCA(caDir, nil)
	} else {
		fmt.Fprintf(log, "quickstart: creating demo CA in %s\n", caDir)
		ca, err = pki.InitCA(caDir, pki.CAOptions{Name: "Portcullis demo CA", Days: 30})
	}
	if err != nil {
		return fmt.Errorf("demo CA: %w", err)
	}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	for _, leaf := range []struct {
		cert string
		opts pki.IssueOptions
	}{
		{f.GatewayCert, pki.IssueOptions{Name: "gateway", DNS: []string{"localhost"}, IPs: ips, Server: true, Days: 30}},
		{f.ClientCert, pki.IssueOptions{Name: "gateway-upstream", Client: true, Days: 30}},
		{f.BackendCert, pki.IssueOptions{Name: "demo-backend", DNS: []string{"localhost"}, IPs: ips, Server: true, Days: 30}},
	} {
		if _, err := os.Stat(leaf.cert); err == nil {
			continue
		}
		is, err := ca.Issue(leaf.opts)
		if err != nil {
			return fmt.Errorf("issuing %s: %w", leaf.opts.Name, err)
		}
		name := strings.TrimSuffix(filepath.Base(leaf.cert), ".crt")
		if _, _, err := pki.WritePEM(f.Dir, name, is, nil); err != nil {
			return err
		}
	}
	return nil
}

var demoConfig = template.Must(template.New("demo").Parse(`# Portcullis demo configuration, written by "portcullis quickstart".
# Paths are relative to this file. Run it yourself with:
#   portcullis serve -c {{.Config}}

listeners:
  - name: public
    # Clients talk ordinary one-way TLS to the gateway.
    address: "{{.Listen}}"
    tls:
      certificates:
        - cert: gateway.crt
          key: gateway.key

trust_stores:
  # The CA the gateway trusts for the backend's certificate. In production
  # this is often a JKS truststore: truststores: [{path: trust.jks, password_env: TS_PASS}]
  demo-ca:
    pem: ca/ca.crt

# The consumer side: an application with an API key (only its hash is
# stored; the key is in demo-app.key), a plan, and a subscription.
applications:
  - id: demo-app
    api_keys: [ "{{.APIKeyHash}}" ]
plans:
  - name: demo
    rate_limit: { rate: 5, period: 1s, burst: 10 }
subscriptions:
  - { application: demo-app, api: demo, plan: demo }

apis:
  - name: demo
    match:
      path_prefix: /demo
    # /demo/hello reaches the backend as /hello.
    strip_prefix: true
    # Callers present the application's key in X-API-Key; the plan limits them.
    auth: api_key
    plans: [demo]
    upstream:
      targets: [ "https://{{.Backend}}" ]
      tls:
        # The gateway's own identity: the backend refuses anyone without a
        # certificate from the demo CA, so nobody can go around the gateway.
        client_certificate:
          cert: gateway-upstream.crt
          key: gateway-upstream.key
        trust: demo-ca
        # SNI sent to the backend and checked against its certificate
        # (verify_hostname is on by default).
        server_name: localhost
`))

func writeDemoConfig(f demoFiles) error {
	out, err := os.OpenFile(f.Config, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if err := demoConfig.Execute(out, f); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// startDemoBackend serves the demo API over TLS, requiring a client
// certificate from the demo CA, and answers with the subject it saw.
func startDemoBackend(f demoFiles) (*http.Server, error) {
	cert, err := tls.LoadX509KeyPair(f.BackendCert, f.BackendKey)
	if err != nil {
		return nil, fmt.Errorf("demo backend certificate: %w", err)
	}
	caPEM, err := os.ReadFile(f.CACert)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	ln, err := net.Listen("tcp", f.Backend)
	if err != nil {
		return nil, fmt.Errorf("demo backend (is something else on %s? use --backend): %w", f.Backend, err)
	}
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          nil,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    pool,
			MinVersion:   tls.VersionTLS12,
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{
				"message":            "hello from the demo backend",
				"path":               r.URL.Path,
				"client_certificate": r.TLS.PeerCertificates[0].Subject.String(),
				"x_forwarded_for":    r.Header.Get("X-Forwarded-For"),
			})
		}),
	}
	srv.ErrorLog = newQuietLog()
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	return srv, nil
}

func printDemoHelp(f demoFiles, w io.Writer) {
	fmt.Fprintf(w, `
Portcullis demo is running.
  gateway:  https://localhost:%[1]s  (config: %[3]s)
  backend:  https://localhost:%[2]s  (requires a client certificate from the demo CA)

Through the gateway, as the demo application (works; the backend reports the gateway's certificate):
  curl --cacert %[4]s -H "X-API-Key: $(cat %[5]s)" https://localhost:%[1]s/demo/hello

Straight to the backend, going around the gateway (refused during the TLS handshake):
  curl --cacert %[4]s https://localhost:%[2]s/hello

Press Ctrl-C to stop.
`, f.ListenPort, f.BackendPort, f.Config, f.CACert, filepath.Join(f.Dir, "demo-app.key"))
}

// tryDemo sends the two requests of the demo and reports them.
func tryDemo(f demoFiles, w io.Writer) error {
	caPEM, err := os.ReadFile(f.CACert)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"},
	}}
	defer client.CloseIdleConnections()
	ok := true

	req, _ := http.NewRequest("GET", "https://"+f.Listen+"/demo/hello", nil)
	req.Header.Set("X-API-Key", f.APIKey)
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(w, "through the gateway: FAILED: %v\n", err)
		ok = false
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Fprintf(w, "through the gateway: %s\n  %s\n", resp.Status, strings.TrimSpace(string(body)))
		ok = ok && resp.StatusCode == http.StatusOK
	}

	resp, err = client.Get("https://" + f.Backend + "/hello")
	if err != nil {
		fmt.Fprintf(w, "around the gateway:  refused, as it should be: %v\n", err)
	} else {
		resp.Body.Close()
		fmt.Fprintf(w, "around the gateway:  %s — the backend let a client without the gateway's certificate in!\n", resp.Status)
		ok = false
	}
	if !ok {
		return errors.New("the demo did not behave as expected")
	}
	fmt.Fprintln(w, "demo OK: only the gateway can reach the backend")
	return nil
}
