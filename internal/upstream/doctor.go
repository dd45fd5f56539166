package upstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/tlsdiag"
)

// Probe stages: where a ProbeResult's failure happened.
const (
	StageDNS     = "dns"
	StageConnect = "connect"
	StageTLS     = "tls"
	StageRequest = "request"
)

// ProbeOptions choose what a diagnostic Probe presents and sends.
type ProbeOptions struct {
	// Certificate, when set, is presented instead of the API's own client
	// certificate (for example a throw-away certificate from an unknown CA).
	Certificate *tls.Certificate
	// NoCertificate presents no client certificate even when the API has
	// one and the upstream asks for one.
	NoCertificate bool
	// Method is the request's method. Empty means HEAD.
	Method string
}

// ProbeResult is what one diagnostic connection to a target saw, step by
// step. Fields of steps that were not reached are zero.
type ProbeResult struct {
	// Target is the target URL; TLS reports an https:// target.
	Target string
	TLS    bool
	// Context is the API's diagnosis context completed with this target's
	// peer and server name, the certificate presented and the CA names the
	// upstream asked for. It is what Diagnosis was computed with.
	Context tlsdiag.UpstreamContext

	// Host is the target's host; HostIsIP reports an address literal, for
	// which no lookup is made.
	Host     string
	HostIsIP bool
	// Addresses are the host's addresses, found in ResolveTime.
	Addresses   []string
	ResolveTime time.Duration

	// RemoteAddr is the address connected to, in ConnectTime.
	RemoteAddr  string
	ConnectTime time.Duration

	// HandshakeTime is the duration of the TLS handshake, completed or not.
	HandshakeTime time.Duration
	// State is the completed handshake's state, nil if it did not complete.
	State *tls.ConnectionState
	// ServerChain is the chain the upstream presented, as sent (also when
	// the gateway refused it).
	ServerChain []*x509.Certificate
	// ServerAccepted reports that every check the gateway makes on the
	// upstream's certificate passed, so a later failure is the upstream's
	// decision.
	ServerAccepted bool
	// ChainErr is the result of verifying ServerChain against the API's
	// trust set (the system roots when it names none), independent of
	// whether the gateway is configured to check it; NameErr is the result
	// of checking the leaf against Context.ServerName.
	ChainErr, NameErr error

	// CertRequested reports that the upstream sent a certificate request;
	// AcceptableCAs are the CA names it listed (empty: it named none).
	CertRequested bool
	AcceptableCAs []string
	// SentChain is the certificate chain presented (nil: none was).
	SentChain []*x509.Certificate
	// IssuerAccepted reports that a certificate of SentChain was issued by
	// one of AcceptableCAs.
	IssuerAccepted bool

	// Method and URL describe the request sent after the handshake;
	// Status and Proto its answer, received in RequestTime.
	Method      string
	URL         string
	Status      int
	Proto       string
	RequestTime time.Duration

	// Stage is where the probe failed ("" when it did not), Err the error
	// there, and Diagnosis its classification by tlsdiag.
	Stage     string
	Err       error
	Diagnosis tlsdiag.Diagnosis
}

// OK reports that the probe received an HTTP response.
func (r *ProbeResult) OK() bool { return r.Err == nil && r.Status != 0 }

// Targets returns the target URLs, in configuration order; Probe takes an
// index into them.
func (u *Upstream) Targets() []string {
	out := make([]string, len(u.targets))
	for i := range u.targets {
		out[i] = u.targets[i].name
	}
	return out
}

// DiagContext returns the per-API part of the diagnosis context: trust set,
// its subjects, the client certificate and the minimum TLS version.
func (u *Upstream) DiagContext() tlsdiag.UpstreamContext { return u.diag }

// Probe connects to target i once, exactly as the gateway's transport does
// (the same tls.Config, certificate callbacks, verification and ALPN
// offer), recording each step, then sends one request (HEAD by default) for
// the target's base path over that connection. It does not use or disturb
// the pooled connections. ctx bounds the whole probe.
func (u *Upstream) Probe(ctx context.Context, i int, o ProbeOptions) ProbeResult {
	tg := &u.targets[i]
	r := ProbeResult{Target: tg.name, TLS: tg.url.Scheme == "https", Host: tg.url.Hostname(), Method: o.Method}
	if r.Method == "" {
		r.Method = http.MethodHead
	}
	r.Context = u.diag
	r.Context.Peer, r.Context.ServerName = tg.peer, tg.serverName
	switch {
	case o.NoCertificate:
		r.Context.HaveClientCert, r.Context.ClientCertSubject, r.Context.ClientCertIssuer = false, "", ""
	case o.Certificate != nil:
		r.Context.HaveClientCert = true
		if leaf, err := leafOf(o.Certificate); err == nil {
			r.Context.ClientCertSubject, r.Context.ClientCertIssuer = leaf.Subject.String(), leaf.Issuer.String()
		}
	}

	// 1. DNS, shown for the operator; the dial below resolves again, as
	// the gateway's dialer does.
	if _, err := netip.ParseAddr(r.Host); err == nil {
		r.HostIsIP, r.Addresses = true, []string{r.Host}
	} else {
		start := time.Now()
		addrs, err := net.DefaultResolver.LookupHost(ctx, r.Host)
		r.ResolveTime = time.Since(start)
		if err != nil {
			return r.fail(StageDNS, err)
		}
		r.Addresses = addrs
	}

	// 2. TCP.
	// The gateway's own dialer, with its connect timeout.
	start := time.Now()
	raw, err := u.transport.DialContext(ctx, "tcp", tg.peer)
	r.ConnectTime = time.Since(start)
	if err != nil {
		return r.fail(StageConnect, err)
	}
	r.RemoteAddr = raw.RemoteAddr().String()
	conn := raw

	// 3. TLS, with the gateway's configuration and recording callbacks.
	var cfg *tls.Config
	if r.TLS {
		var rec *recording
		cfg, rec = u.recordingConfig(tg, o)
		tc := tls.Client(raw, cfg)
		hctx, cancel := context.WithTimeout(ctx, u.transport.TLSHandshakeTimeout)
		start = time.Now()
		err = tc.HandshakeContext(hctx)
		r.HandshakeTime = time.Since(start)
		cancel()
		rec.copyTo(&r)
		if err != nil {
			r.noteChain(err, cfg)
			raw.Close()
			return r.fail(StageTLS, err)
		}
		cs := tc.ConnectionState()
		r.State = &cs
		r.ServerAccepted = true
		r.noteChain(nil, cfg)
		conn = tc
	}

	// 4. The request, over the connection just made.
	r.requestOver(ctx, conn, tg, u.transport.ResponseHeaderTimeout)
	if r.Err != nil && r.TLS && (r.Diagnosis.Reason == "connection_closed" || r.Diagnosis.Reason == "upstream_error") {
		// The upstream may have refused our certificate after a TLS 1.3
		// handshake; net/http can lose that alert (see errH2NotEstablished).
		if perr := u.alertProbe(ctx, tg, o); perr != nil {
			if pd, ok := tlsdiag.Upstream(perr, r.Context); ok && pd.Reason != "connection_closed" {
				r.Err, r.Diagnosis = perr, pd
			}
		}
	}
	return r
}

func (r *ProbeResult) fail(stage string, err error) ProbeResult {
	r.Stage, r.Err = stage, err
	d, ok := tlsdiag.Upstream(err, r.Context)
	if !ok {
		d = tlsdiag.Diagnosis{
			Hop: tlsdiag.HopUpstream, Code: problem.CodeUpstreamProtocol, Reason: "upstream_error",
			Plain: "The exchange with the upstream " + r.Context.Peer + " failed: " + err.Error() + ".",
			Fix:   "Check the upstream's logs; the error above comes from the gateway's HTTP client.",
			Peer:  r.Context.Peer, ServerName: r.Context.ServerName,
		}
	}
	r.Diagnosis = d
	return *r
}

// requestOver sends r.Method for the target's base URL over conn, which is
// already past its handshake, with HTTP/2 when ALPN chose it.
func (r *ProbeResult) requestOver(ctx context.Context, conn net.Conn, tg *target, headerTimeout time.Duration) {
	// The transport dials in its own goroutine, which may outlive a
	// cancelled RoundTrip.
	var used atomic.Bool
	hand := func(context.Context, string, string) (net.Conn, error) {
		if !used.CompareAndSwap(false, true) {
			return nil, errors.New("doctor: the probe's connection was already used")
		}
		return conn, nil
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           hand,
		DialTLSContext:        hand,
		DisableKeepAlives:     true,
		DisableCompression:    true,
		ResponseHeaderTimeout: headerTimeout,
		Protocols:             &protos,
	}
	defer tr.CloseIdleConnections()
	u := *tg.url
	if u.Path == "" {
		u.Path = "/"
	}
	r.URL = u.String()
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, nil)
	if err != nil {
		conn.Close()
		r.fail(StageRequest, err)
		return
	}
	req.Header.Set("User-Agent", "portcullis-doctor")
	start := time.Now()
	resp, err := tr.RoundTrip(req)
	r.RequestTime = time.Since(start)
	if used.CompareAndSwap(false, true) {
		conn.Close()
	}
	if err != nil {
		r.fail(StageRequest, err)
		return
	}
	resp.Body.Close()
	r.Status, r.Proto = resp.StatusCode, resp.Proto
}

// alertProbe repeats the handshake with the same settings and waits briefly
// for an alert, like probe.
func (u *Upstream) alertProbe(ctx context.Context, tg *target, o ProbeOptions) error {
	cfg, _ := u.recordingConfig(tg, o)
	return u.handshakeVerdict(ctx, tg, cfg)
}

// recording holds what the handshake callbacks saw.
type recording struct {
	requested bool
	caDER     [][]byte
	caNames   []string
	sent      []*x509.Certificate
	peer      []*x509.Certificate
	accepted  bool
}

func (rec *recording) copyTo(r *ProbeResult) {
	r.CertRequested, r.AcceptableCAs, r.SentChain = rec.requested, rec.caNames, rec.sent
	r.Context.AcceptableCAs = rec.caNames
	if rec.peer != nil {
		r.ServerChain = rec.peer
	}
	r.ServerAccepted = rec.accepted
	for _, c := range rec.sent {
		for _, der := range rec.caDER {
			if bytes.Equal(c.RawIssuer, der) {
				r.IssuerAccepted = true
			}
		}
	}
}

// recordingConfig clones the target's handshake settings (those of the
// gateway's transport) and wraps the certificate callbacks to record the
// exchange, presenting o's certificate choice.
func (u *Upstream) recordingConfig(tg *target, o ProbeOptions) (*tls.Config, *recording) {
	rec := &recording{}
	cfg := tg.probeTLS.Clone()
	gatewayCert := cfg.GetClientCertificate
	cfg.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		rec.requested = true
		rec.caDER = cri.AcceptableCAs
		rec.caNames = caNames(cri.AcceptableCAs)
		var crt *tls.Certificate
		switch {
		case o.NoCertificate:
			crt = &tls.Certificate{}
		case o.Certificate != nil:
			crt = o.Certificate
		default:
			var err error
			if crt, err = gatewayCert(cri); err != nil {
				return nil, err
			}
		}
		for _, der := range crt.Certificate {
			if c, err := x509.ParseCertificate(der); err == nil {
				rec.sent = append(rec.sent, c)
			}
		}
		return crt, nil
	}
	verify := cfg.VerifyConnection
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		rec.peer = cs.PeerCertificates
		if verify != nil {
			if err := verify(cs); err != nil {
				return err
			}
		}
		rec.accepted = true
		return nil
	}
	return cfg, rec
}

// noteChain fills ServerChain from a verification error when the callback
// did not see it, then checks it against the trust set and the name.
func (r *ProbeResult) noteChain(err error, cfg *tls.Config) {
	if r.ServerChain == nil {
		if ve, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
			r.ServerChain = ve.UnverifiedCertificates
		}
	}
	if len(r.ServerChain) == 0 {
		return
	}
	leaf := r.ServerChain[0]
	opts := x509.VerifyOptions{Roots: cfg.RootCAs, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, c := range r.ServerChain[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, r.ChainErr = leaf.Verify(opts)
	r.NameErr = leaf.VerifyHostname(r.Context.ServerName)
}

func caNames(ders [][]byte) []string {
	names := make([]string, 0, len(ders))
	for _, der := range ders {
		var rdn pkix.RDNSequence
		if rest, err := asn1.Unmarshal(der, &rdn); err != nil || len(rest) > 0 {
			names = append(names, "(unparsable name)")
			continue
		}
		var n pkix.Name
		n.FillFromRDNSequence(&rdn)
		names = append(names, n.String())
	}
	return names
}

func leafOf(c *tls.Certificate) (*x509.Certificate, error) {
	if c.Leaf != nil {
		return c.Leaf, nil
	}
	if len(c.Certificate) == 0 {
		return nil, fmt.Errorf("%w: certificate has no data", ErrBadTLSOption)
	}
	return x509.ParseCertificate(c.Certificate[0])
}
