package server

import (
	"bytes"
	"strings"
)

// handshakeLog receives net/http's own error log for a TLS listener. Lines
// about failed TLS handshakes become a structured debug log line and a
// metric with a stable reason (bounded: unknown messages count as "other");
// anything else is logged as it is.
type handshakeLog struct {
	s        *Server
	listener string
}

// clientHopReasons maps crypto/tls's messages for the client→gateway hop
// to metric labels. Order matters: the first match wins.
var clientHopReasons = []struct{ substr, reason string }{
	{"client didn't provide a certificate", "client_cert_required"},
	{"unknown certificate authority", "unknown_authority"},
	{"certificate required", "client_cert_required"},
	{"bad certificate", "bad_certificate"},
	{"certificate expired", "cert_expired"},
	{"unsupported versions", "protocol_version"},
	{"protocol version", "protocol_version"},
	{"no cipher suite supported", "cipher_mismatch"},
	{"handshake failure", "handshake_failure"},
	{"no application protocol", "alpn_mismatch"},
	{"does not look like a TLS handshake", "not_tls"},
	{"unrecognized name", "unrecognized_name"},
	{"EOF", "closed_by_client"},
	{"connection reset by peer", "closed_by_client"},
	{"i/o timeout", "timeout"},
}

func (h *handshakeLog) Write(p []byte) (int, error) {
	msg := string(bytes.TrimRight(p, "\n"))
	rest, ok := strings.CutPrefix(msg, "http: TLS handshake error from ")
	if !ok {
		h.s.log.Debug("http server", "listener", h.listener, "message", msg)
		return len(p), nil
	}
	peer, detail, _ := strings.Cut(rest, ": ")
	reason := "other"
	for _, r := range clientHopReasons {
		if strings.Contains(detail, r.substr) {
			reason = r.reason
			break
		}
	}
	if m := h.s.metrics; m != nil {
		m.TLSHandshakeFailure("client→gateway", reason)
	}
	h.s.log.Debug("tls handshake failed", "hop", "client→gateway", "listener", h.listener, "peer", peer, "reason", reason, "detail", detail)
	return len(p), nil
}
