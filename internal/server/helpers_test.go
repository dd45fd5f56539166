package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/snapshot"
	"github.com/portcullis/portcullis/internal/telemetry"
)

// logBuffer collects JSON log lines written concurrently by the gateway.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// records decodes every line written so far.
func (l *logBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader([]byte(l.String())))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, sc.Bytes())
		}
		out = append(out, m)
	}
	return out
}

// wait returns the first record match accepts, polling for up to five
// seconds: the gateway logs after the client has seen the outcome.
func (l *logBuffer) wait(t *testing.T, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, r := range l.records(t) {
			if match(r) {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log record %s within 5s; log:\n%s", what, l.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// liveGateway is a gateway serving a configuration on real loopback
// sockets, with its operational log, access log and metrics captured.
type liveGateway struct {
	srv     *Server
	log     *logBuffer
	access  *logBuffer
	metrics *telemetry.Metrics
}

func startGateway(t *testing.T, yaml string) *liveGateway {
	t.Helper()
	d, probs := config.Parse("gateway.yaml", []byte(yaml))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	f := config.WithDefaults(d.File)
	if ps := config.Validate(f); len(ps) > 0 {
		t.Fatal(ps)
	}
	snap, probs := snapshot.Compile(f, snapshot.Options{})
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	g := &liveGateway{log: &logBuffer{}, access: &logBuffer{}, metrics: telemetry.NewMetrics()}
	g.srv = New(slog.New(slog.NewJSONHandler(g.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		slog.New(slog.NewJSONHandler(g.access, nil)))
	g.srv.SetMetrics(g.metrics)
	if err := g.srv.Start(snap); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.srv.Shutdown(ctx)
	})
	return g
}

func (g *liveGateway) addr(listener string) string { return g.srv.Addr(listener).String() }

func (g *liveGateway) metricsText() string {
	rec := httptest.NewRecorder()
	g.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}
