package server

import "github.com/portcullis/portcullis/internal/telemetry"

// SetTracer makes the server start a span for every request and pass its
// trace context to the upstream. A nil t (the default) turns tracing off;
// the client's traceparent is then forwarded unchanged. Call it before
// Start: the tracer is fixed for the life of the server, so changing the
// tracing configuration needs a restart.
func (s *Server) SetTracer(t *telemetry.Tracer) { s.tracer = t }
