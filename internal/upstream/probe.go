package upstream

import (
	"context"
	"crypto/tls"
	"net"
	"time"
)

// errH2NotEstablished is the text of the error net/http's HTTP/2 client
// returns when a new connection closes before its first request was sent.
// It replaces the connection's read error, so a TLS alert the upstream sent
// right after the handshake is lost.
//
// With TLS 1.3 the client's handshake completes before the server verifies
// the client certificate, so a rejected or missing certificate reaches
// net/http as that alert, as this error, or as a broken pipe or reset when
// the request is written after the server closed; which one depends on
// timing. Forward probes on the last two to recover the alert.
const errH2NotEstablished = "http2: client conn could not be established"

// probeReadWait bounds how long a probe waits for an alert after its
// handshake. An HTTP/2 server that accepted the certificate sends its
// SETTINGS frame at once, so the wait is only reached by HTTP/1.1 servers.
const probeReadWait = time.Second

// probe repeats the TLS handshake with tg once, to recover an alert that
// net/http lost (see errH2NotEstablished). It runs only on that failure, at most one at a
// time per Upstream, and returns nil when it learns nothing (another probe
// is running, or the handshake and first read succeed).
func (u *Upstream) probe(ctx context.Context, tg *target) error {
	if !u.probing.CompareAndSwap(false, true) {
		return nil
	}
	defer u.probing.Store(false)
	return u.handshakeVerdict(ctx, tg, tg.probeTLS)
}

// handshakeVerdict dials tg, completes a TLS handshake with cfg and, on
// TLS 1.3, waits briefly for the server's verdict on our certificate (which
// arrives after the client's handshake completes). It returns the alert or
// error it saw, or nil when the server said nothing within probeReadWait.
func (u *Upstream) handshakeVerdict(ctx context.Context, tg *target, cfg *tls.Config) error {
	ctx, cancel := context.WithTimeout(ctx, u.probeTimeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", tg.peer)
	if err != nil {
		return err
	}
	defer raw.Close()
	c := tls.Client(raw, cfg)
	if err := c.HandshakeContext(ctx); err != nil {
		return err
	}
	if c.ConnectionState().Version < tls.VersionTLS13 {
		// Before TLS 1.3 the server's verdict on our certificate is part
		// of the handshake that just succeeded.
		return nil
	}
	deadline := time.Now().Add(probeReadWait)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = c.SetReadDeadline(deadline)
	if _, err := c.Read(make([]byte, 1)); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return nil
		}
		return err
	}
	return nil
}
