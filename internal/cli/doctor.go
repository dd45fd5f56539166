package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portcullis/portcullis/internal/auth"
	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/snapshot"
	"github.com/portcullis/portcullis/internal/upstream"
)

type doctorCmd struct {
	Upstream doctorUpstreamCmd `cmd:"" help:"Connect to an API's upstream exactly as the gateway does and explain every step; exit 1 unless it works."`
	Bypass   doctorBypassCmd   `cmd:"" help:"Try every mutual-TLS upstream without the gateway's certificate; exit 1 if one lets a stranger in."`
	Client   doctorClientCmd   `cmd:"" help:"Would this client certificate be accepted by an API, as which application, and if not, why."`
	Certs    doctorCertsCmd    `cmd:"" help:"List every certificate the configuration uses, soonest expiry first; exit 1 if one has expired."`
}

// loadForDoctor compiles the configuration as validate does: nothing is
// started and nothing is written.
func loadForDoctor(g *globals, path string) (config.File, *snapshot.Snapshot, error) {
	f, snap := load(path, g.stderr, snapshot.Options{Validate: true}, nil)
	if snap == nil {
		return f, nil, exitError{ExitFailure}
	}
	return f, snap, nil
}

// doctorAPI finds the named API in both the file and the snapshot, or tells
// the user which APIs exist.
func doctorAPI(g *globals, f config.File, snap *snapshot.Snapshot, name string) (config.API, *snapshot.API, error) {
	a := snap.API(name)
	for _, ca := range f.APIs {
		if ca.Name == name && a != nil {
			return ca, a, nil
		}
	}
	names := make([]string, 0, len(snap.APIs))
	for _, x := range snap.APIs {
		names = append(names, x.Name)
	}
	fmt.Fprintf(g.stderr, "portcullis: no API named %q in the configuration (APIs: %s)\n", name, strings.Join(names, ", "))
	return config.API{}, nil, exitError{ExitFailure}
}

// ---- doctor upstream ----

type doctorUpstreamCmd struct {
	API     string        `name:"api" required:"" help:"The API whose upstream to check."`
	Config  string        `short:"c" required:"" type:"path" env:"PORTCULLIS_CONFIG" help:"Configuration file (YAML)."`
	Timeout time.Duration `default:"15s" help:"Give up on a target after this long."`
}

func (c *doctorUpstreamCmd) Run(g *globals) error {
	f, snap, err := loadForDoctor(g, c.Config)
	if err != nil {
		return err
	}
	defer snap.Close()
	ca, a, err := doctorAPI(g, f, snap, c.API)
	if err != nil {
		return err
	}
	targets := a.Upstream.Targets()
	failed := false
	for i, t := range targets {
		if i > 0 {
			fmt.Fprintln(g.stdout)
		}
		fmt.Fprintf(g.stdout, "API %s, target %d of %d: %s\n", a.Name, i+1, len(targets), t)
		ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
		r := a.Upstream.Probe(ctx, i, upstream.ProbeOptions{Method: http.MethodHead})
		cancel()
		printProbe(g.stdout, r, ca.Upstream.TLS)
		if !r.OK() {
			failed = true
		}
	}
	if failed {
		return exitError{ExitFailure}
	}
	return nil
}

// printProbe writes a probe's numbered steps and its verdict.
func printProbe(w io.Writer, r upstream.ProbeResult, o config.UpstreamTLS) {
	step := func(n int, name, format string, args ...any) {
		fmt.Fprintf(w, "%2d. %-9s %s\n", n, name, fmt.Sprintf(format, args...))
	}
	more := func(format string, args ...any) {
		fmt.Fprintf(w, "    %-9s %s\n", "", fmt.Sprintf(format, args...))
	}
	notReached := "not reached"
	at := func(stage string) bool { return r.Stage == stage }

	// 1. DNS
	switch {
	case r.HostIsIP:
		step(1, "DNS", "%s is an IP address: no lookup", r.Host)
	case at(upstream.StageDNS):
		step(1, "DNS", "FAILED to resolve %s after %s: %v", r.Host, ms(r.ResolveTime), r.Err)
	default:
		step(1, "DNS", "%s → %s (%s)", r.Host, strings.Join(r.Addresses, ", "), ms(r.ResolveTime))
	}

	// 2. TCP
	switch {
	case at(upstream.StageDNS):
		step(2, "TCP", "%s", notReached)
	case at(upstream.StageConnect):
		step(2, "TCP", "FAILED to connect to %s after %s: %v", r.Context.Peer, ms(r.ConnectTime), r.Err)
	default:
		step(2, "TCP", "connected to %s in %s", r.RemoteAddr, ms(r.ConnectTime))
	}
	reachedTLS := !at(upstream.StageDNS) && !at(upstream.StageConnect)

	// 3. TLS
	switch {
	case !r.TLS:
		step(3, "TLS", "none: plain http:// target, so the connection is neither encrypted nor authenticated")
	case !reachedTLS:
		step(3, "TLS", "%s", notReached)
	case r.State == nil:
		step(3, "TLS", "handshake FAILED after %s (server name %q): %v", ms(r.HandshakeTime), r.Context.ServerName, r.Err)
	default:
		alpn := r.State.NegotiatedProtocol
		if alpn == "" {
			alpn = "none (HTTP/1.1)"
		}
		step(3, "TLS", "%s, %s, ALPN %s (handshake %s, server name %q)",
			tls.VersionName(r.State.Version), tls.CipherSuiteName(r.State.CipherSuite), alpn, ms(r.HandshakeTime), r.Context.ServerName)
	}

	// 4. The server's chain and the gateway's checks of it.
	switch {
	case !r.TLS:
		step(4, "Server", "no certificate: plain http://")
	case len(r.ServerChain) == 0:
		step(4, "Server", "no certificate seen (%s)", notReached)
	default:
		step(4, "Server", "certificate chain as sent:")
		for i, cert := range r.ServerChain {
			more("  [%d] %s", i, cert.Subject)
			more("      issuer %s, valid %s to %s", cert.Issuer, day(cert.NotBefore), day(cert.NotAfter))
		}
		trust := trustName(o.Trust)
		if r.ChainErr == nil {
			more("trust: the chain verifies against %s%s", trust, subjects(r.Context.TrustSubjects))
		} else {
			more("trust: the chain does NOT verify against %s%s: %v", trust, subjects(r.Context.TrustSubjects), r.ChainErr)
		}
		if o.InsecureSkipVerify {
			more("       (not enforced: upstream.tls.insecure_skip_verify is on, so the gateway accepts any certificate)")
		}
		leaf := r.ServerChain[0]
		if r.NameErr == nil {
			more("name:  %q matches the certificate (%s)", r.Context.ServerName, certNames(leaf))
		} else {
			more("name:  %q does NOT match the certificate, which is valid for %s", r.Context.ServerName, certNames(leaf))
		}
		if o.InsecureSkipVerify || (o.VerifyHostname != nil && !*o.VerifyHostname) {
			more("       (not enforced: hostname verification is off for this API)")
		}
		if len(o.Pins) > 0 {
			pin := upstream.PinSHA256(leaf)
			if slices.Contains(o.Pins, pin) {
				more("pin:   %s is one of the %d configured pins", pin, len(o.Pins))
			} else {
				more("pin:   %s matches none of the %d configured pins", pin, len(o.Pins))
			}
		}
	}

	// 5. The server's certificate request.
	switch {
	case !r.TLS:
		step(5, "Client", "no client certificate on plain http://")
	case r.CertRequested:
		if len(r.AcceptableCAs) == 0 {
			step(5, "Client", "the server asked for a client certificate without naming any CA")
		} else {
			step(5, "Client", "the server asked for a client certificate issued by one of:")
			for _, n := range r.AcceptableCAs {
				more("  - %s", n)
			}
		}
		switch {
		case len(r.SentChain) == 0:
			more("ours: the API has no upstream.tls.client_certificate, so the gateway sent none")
		case len(r.AcceptableCAs) == 0:
			more("ours: %s, issued by %s, was sent", r.SentChain[0].Subject, r.SentChain[0].Issuer)
		case r.IssuerAccepted:
			more("ours: %s, issued by %s: its issuer is among them", r.SentChain[0].Subject, r.SentChain[0].Issuer)
		default:
			more("ours: %s, issued by %s: its issuer is NOT among them", r.SentChain[0].Subject, r.SentChain[0].Issuer)
		}
	case r.State != nil:
		step(5, "Client", "the server did not ask for a client certificate: it accepts connections without one (see `portcullis doctor bypass`)")
		if r.Context.HaveClientCert {
			more("ours (%s) was therefore not sent", r.Context.ClientCertSubject)
		}
	default:
		step(5, "Client", "%s (the handshake stopped before the server's certificate request was processed)", notReached)
	}

	// 6. The request.
	req := r.Method + " " + pathOf(r.URL)
	switch {
	case r.Status != 0:
		step(6, req, "%d %s (%s, %s)", r.Status, http.StatusText(r.Status), r.Proto, ms(r.RequestTime))
	case at(upstream.StageRequest):
		step(6, req, "FAILED after %s: %v", ms(r.RequestTime), r.Err)
	default:
		step(6, req, "%s", notReached)
	}

	if r.OK() {
		fmt.Fprintln(w, "VERDICT: OK")
		if r.Status >= 500 {
			fmt.Fprintf(w, "NOTE: the connection works; the upstream itself answered %d.\n", r.Status)
		}
		return
	}
	fmt.Fprintf(w, "VERDICT: FAILED — %s (%s)\n", r.Diagnosis.Plain, r.Diagnosis.Code)
	fmt.Fprintf(w, "FIX: %s\n", r.Diagnosis.Fix)
}

func pathOf(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.IndexByte(u[i+3:], '/'); j >= 0 {
			return u[i+3+j:]
		}
	}
	return "/"
}

func ms(d time.Duration) string {
	if d < time.Millisecond {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(100 * time.Microsecond).String()
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

func trustName(name string) string {
	if name == "" {
		return "the system trust store"
	}
	return fmt.Sprintf("trust store %q", name)
}

func subjects(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return " (" + strings.Join(s, "; ") + ")"
}

func certNames(c *x509.Certificate) string {
	var names []string
	for _, n := range c.DNSNames {
		names = append(names, "DNS:"+n)
	}
	for _, ip := range c.IPAddresses {
		names = append(names, "IP:"+ip.String())
	}
	for _, u := range c.URIs {
		names = append(names, "URI:"+u.String())
	}
	if len(names) == 0 {
		return "no names (no subject alternative names)"
	}
	return strings.Join(names, ", ")
}

// ---- doctor bypass ----

type doctorBypassCmd struct {
	Config  string        `short:"c" required:"" type:"path" env:"PORTCULLIS_CONFIG" help:"Configuration file (YAML)."`
	Timeout time.Duration `default:"10s" help:"Give up on one attempt after this long."`
}

// bypassRow is one target's finding.
type bypassRow struct{ api, target, result string }

func (c *doctorBypassCmd) Run(g *globals) error {
	_, snap, err := loadForDoctor(g, c.Config)
	if err != nil {
		return err
	}
	defer snap.Close()
	stranger, err := throwAwayCertificate()
	if err != nil {
		return fmt.Errorf("creating a throw-away certificate: %w", err)
	}
	var rows []bypassRow
	var details [][]string
	var skipped []string
	bad := false
	for _, a := range snap.APIs {
		targets := a.Upstream.Targets()
		anyTLS := slices.ContainsFunc(targets, func(t string) bool { return strings.HasPrefix(t, "https://") })
		if !anyTLS || !a.Upstream.DiagContext().HaveClientCert {
			why := "no upstream.tls.client_certificate"
			if !anyTLS {
				why = "no https:// target"
			}
			skipped = append(skipped, a.Name+" ("+why+")")
			continue
		}
		for i, t := range targets {
			attempts := []struct {
				what   string
				let    string
				option upstream.ProbeOptions
			}{
				{"without a client certificate", "accepted a connection without a client certificate", upstream.ProbeOptions{NoCertificate: true, Method: http.MethodGet}},
				{"with a certificate from an unknown CA", "accepted a certificate from an unknown CA", upstream.ProbeOptions{Certificate: stranger, Method: http.MethodGet}},
			}
			var letIn, unknown, lines []string
			for _, at := range attempts {
				ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
				r := a.Upstream.Probe(ctx, i, at.option)
				cancel()
				switch {
				case r.Status != 0:
					letIn = append(letIn, at.let)
					lines = append(lines, fmt.Sprintf("%s: let in (HTTP %d %s)", at.what, r.Status, http.StatusText(r.Status)))
				case !r.TLS:
					unknown = append(unknown, "plain http:// target did not answer: "+r.Diagnosis.Plain)
					lines = append(lines, fmt.Sprintf("%s: no answer (%v)", at.what, r.Err))
				case !r.ServerAccepted:
					// The gateway refused the server (or never reached
					// it): nothing was learnt about its client check.
					unknown = append(unknown, r.Diagnosis.Plain)
					lines = append(lines, fmt.Sprintf("%s: could not check: %s", at.what, r.Diagnosis.Plain))
				default:
					lines = append(lines, fmt.Sprintf("%s: refused (%s)", at.what, refusal(r.Err)))
				}
			}
			var result string
			switch {
			case len(letIn) > 0:
				result = "BYPASSABLE (" + strings.Join(letIn, "; ") + ")"
				if !strings.HasPrefix(t, "https://") {
					result = "BYPASSABLE (plain http:// target: answered without any certificate)"
				}
				bad = true
			case len(unknown) > 0:
				result = "UNKNOWN (could not check: " + strings.TrimSuffix(unknown[0], ".") + ")"
				bad = true
			default:
				result = "PROTECTED"
			}
			rows = append(rows, bypassRow{a.Name, t, result})
			details = append(details, lines)
		}
	}
	if len(rows) == 0 {
		fmt.Fprintln(g.stdout, "No API uses mutual TLS towards its upstream: nothing to check.")
	}
	wa, wt := 0, 0
	for _, r := range rows {
		wa, wt = max(wa, len(r.api)), max(wt, len(r.target))
	}
	for i, r := range rows {
		fmt.Fprintf(g.stdout, "%-*s  %-*s  %s\n", wa, r.api, wt, r.target, r.result)
		for _, l := range details[i] {
			fmt.Fprintf(g.stdout, "    %s\n", l)
		}
	}
	if len(skipped) > 0 {
		fmt.Fprintf(g.stdout, "not checked: %s\n", strings.Join(skipped, ", "))
	}
	if bad {
		return exitError{ExitFailure}
	}
	return nil
}

// refusal shortens the error a refused attempt ended with, such as "remote
// error: tls: certificate required".
func refusal(err error) string {
	if err == nil {
		return "no answer"
	}
	s := err.Error()
	if i := strings.Index(s, "remote error: "); i >= 0 {
		return s[i:]
	}
	if errors.Is(err, io.EOF) || strings.Contains(s, "EOF") {
		return "connection closed without an answer"
	}
	return s
}

// throwAwayCertificate makes a client certificate (with clientAuth usage)
// from a CA created for this run only, which no upstream can trust.
func throwAwayCertificate() (*tls.Certificate, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial := func() *big.Int {
		n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
		return n
	}
	tag := make([]byte, 4)
	_, _ = rand.Read(tag)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "portcullis doctor throw-away CA " + hex.EncodeToString(tag)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "portcullis-doctor-stranger"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key, Leaf: leaf}, nil
}

// ---- doctor client ----

type doctorClientCmd struct {
	API    string `name:"api" required:"" help:"The API to check the certificate against."`
	Cert   string `required:"" type:"path" help:"The client's certificate: PEM (leaf first, then the intermediates the client sends) or DER."`
	Config string `short:"c" required:"" type:"path" env:"PORTCULLIS_CONFIG" help:"Configuration file (YAML)."`
}

func (c *doctorClientCmd) Run(g *globals) error {
	chain, err := readCertChain(c.Cert)
	if err != nil {
		fmt.Fprintf(g.stderr, "portcullis: %v\n", err)
		return exitError{ExitFailure}
	}
	f, snap, err := loadForDoctor(g, c.Config)
	if err != nil {
		return err
	}
	defer snap.Close()
	_, a, err := doctorAPI(g, f, snap, c.API)
	if err != nil {
		return err
	}
	w := g.stdout
	leaf := chain[0]
	fmt.Fprintf(w, "certificate: %s\n", leaf.Subject)
	fmt.Fprintf(w, "  issuer:      %s\n", leaf.Issuer)
	fmt.Fprintf(w, "  valid:       %s to %s\n", day(leaf.NotBefore), day(leaf.NotAfter))
	fmt.Fprintf(w, "  SHA-256:     %s\n", auth.Fingerprint(leaf))
	if len(chain) > 1 {
		fmt.Fprintf(w, "  chain sent:  %d more certificate(s): %s\n", len(chain)-1, chainSubjects(chain[1:]))
	}
	au := a.Authenticator()
	if au == nil {
		fmt.Fprintf(w, "API %s has no authentication: every client is let in, with or without a certificate.\n", a.Name)
		fmt.Fprintln(w, "VERDICT: ACCEPTED — the API is open (no auth configured)")
		return nil
	}
	if !strings.Contains(au.Name(), "mtls") {
		fmt.Fprintf(w, "API %s authenticates with %s, not with client certificates: a certificate alone is not a credential there.\n", a.Name, au.Name())
		fmt.Fprintln(w, "VERDICT: REFUSED — the API does not use mtls")
		return exitError{ExitFailure}
	}
	fmt.Fprintf(w, "API %s authenticates with %s\n", a.Name, au.Name())
	if au.Name() != "mtls" {
		fmt.Fprintln(w, "NOTE: the API combines mtls with other methods; this request carries only the certificate.")
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "https://doctor.invalid/", nil)
	if err != nil {
		return err
	}
	req.TLS = &tls.ConnectionState{HandshakeComplete: true, Version: tls.VersionTLS13, PeerCertificates: chain}
	p, err := au.Authenticate(req)
	if err == nil {
		app := fmt.Sprintf("application %q", p.Application)
		if p.Application == "" && len(p.Chain) > 0 {
			app = "no application (the API accepts unregistered certificates: mtls.allow_anonymous)"
		}
		if len(p.Chain) > 0 {
			fmt.Fprintf(w, "verified by trust store %q: %s\n", p.TrustSet, chainSubjects(p.Chain))
		}
		fmt.Fprintf(w, "VERDICT: ACCEPTED — %s\n", app)
		return nil
	}
	var pe *problem.Error
	if !errors.As(err, &pe) {
		return err
	}
	attrs := map[string]string{}
	for i := 0; i+1 < len(pe.Log); i += 2 {
		if k, ok := pe.Log[i].(string); ok {
			attrs[k] = fmt.Sprint(pe.Log[i+1])
		}
	}
	status := pe.Status
	if status == 0 {
		status = problem.Catalogue[pe.Code].Status
	}
	fmt.Fprintf(w, "VERDICT: REFUSED — %s (HTTP %d): %s\n", pe.Code, status, pe.Detail)
	if attrs["trust_set"] == attrs["trust_sets"] {
		delete(attrs, "trust_set")
	}
	for _, k := range []string{"trust_sets", "trust_set", "trust_detail", "failed_rule"} {
		if v := attrs[k]; v != "" {
			fmt.Fprintf(w, "  %-13s %s\n", strings.ReplaceAll(k, "_", " ")+":", v)
		}
	}
	if v := attrs["explanation"]; v != "" {
		fmt.Fprintf(w, "WHY: %s\n", v)
	}
	return exitError{ExitFailure}
}

func chainSubjects(chain []*x509.Certificate) string {
	s := make([]string, len(chain))
	for i, c := range chain {
		s[i] = c.Subject.String()
	}
	return strings.Join(s, " → ")
}

// readCertChain reads every certificate of a PEM file (other blocks, such as
// a key, are ignored) or one DER certificate.
func readCertChain(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var chain []*x509.Certificate
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", path, len(chain)+1, err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, fmt.Errorf("%s: no PEM certificate and not a DER certificate", path)
		}
		chain = append(chain, c)
	}
	return chain, nil
}

// ---- doctor certs ----

type doctorCertsCmd struct {
	Config   string `short:"c" required:"" type:"path" env:"PORTCULLIS_CONFIG" help:"Configuration file (YAML)."`
	WarnDays []int  `name:"warn-days" default:"30,7,1" help:"Flag certificates expiring within each of these numbers of days."`
}

func (c *doctorCertsCmd) Run(g *globals) error {
	f, snap, err := loadForDoctor(g, c.Config)
	if err != nil {
		return err
	}
	defer snap.Close()
	col, ok := collector(c.Config, f, g.stderr)
	if !ok {
		return exitError{ExitFailure}
	}
	for _, d := range c.WarnDays {
		if d <= 0 {
			fmt.Fprintf(g.stderr, "portcullis: --warn-days takes positive numbers of days, not %d\n", d)
			return exitError{ExitUsage}
		}
	}
	thresholds := slices.Clone(c.WarnDays)
	slices.Sort(thresholds)
	certs := slices.Clone(snap.Certificates)
	if col != nil {
		certs = append(certs, col.Certificates...)
	}
	slices.SortStableFunc(certs, func(a, b snapshot.CertUse) int {
		if n := a.Cert.NotAfter.Compare(b.Cert.NotAfter); n != 0 {
			return n
		}
		return strings.Compare(a.Where, b.Where)
	})
	now := time.Now()
	expired, expiring := 0, 0
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NOT AFTER\tDAYS LEFT\tSTATUS\tWHERE\tSUBJECT\tISSUER")
	for _, u := range certs {
		left := u.Cert.NotAfter.Sub(now)
		days := int(left.Hours() / 24) // whole days, towards zero
		status := "OK"
		switch {
		case left <= 0:
			status, expired = "EXPIRED", expired+1
		case now.Before(u.Cert.NotBefore):
			status = "NOT YET VALID (from " + day(u.Cert.NotBefore) + ")"
		default:
			for _, t := range thresholds {
				if left <= time.Duration(t)*24*time.Hour {
					status, expiring = fmt.Sprintf("EXPIRES WITHIN %d %s", t, plural(t, "DAY", "DAYS")), expiring+1
					break
				}
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", day(u.Cert.NotAfter), days, status, u.Where, u.Cert.Subject, u.Cert.Issuer)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	longest := slices.Max(append(thresholds, 0))
	fmt.Fprintf(g.stdout, "%d certificate use(s): %d expired, %d expiring within %d %s\n", len(certs), expired, expiring, longest, plural(longest, "day", "days"))
	if expired > 0 {
		return exitError{ExitFailure}
	}
	return nil
}
