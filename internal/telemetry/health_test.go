package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestHealth(t *testing.T) {
	tests := []struct {
		name        string
		required    []string
		set         func(h *Health)
		wantStatus  int
		wantFailing []string
	}{
		{
			name:       "no conditions",
			set:        func(*Health) {},
			wantStatus: http.StatusOK,
		},
		{
			name:        "required conditions start pending",
			required:    []string{"snapshot", "listeners", "store"},
			set:         func(*Health) {},
			wantStatus:  http.StatusServiceUnavailable,
			wantFailing: []string{"listeners: pending", "snapshot: pending", "store: pending"},
		},
		{
			name:     "all ok",
			required: []string{"snapshot", "listeners", "store"},
			set: func(h *Health) {
				h.SetReady("snapshot", true)
				h.SetReady("listeners", true)
				h.Set("store", nil)
			},
			wantStatus: http.StatusOK,
		},
		{
			name:     "one failing with a reason",
			required: []string{"snapshot", "listeners", "store"},
			set: func(h *Health) {
				h.SetReady("snapshot", true)
				h.SetReady("listeners", true)
				h.Set("store", errors.New("dial tcp 127.0.0.1:5432: connection refused"))
			},
			wantStatus:  http.StatusServiceUnavailable,
			wantFailing: []string{"store: dial tcp 127.0.0.1:5432: connection refused"},
		},
		{
			name: "set false",
			set: func(h *Health) {
				h.SetReady("snapshot", true)
				h.SetReady("listeners", false)
			},
			wantStatus:  http.StatusServiceUnavailable,
			wantFailing: []string{"listeners: not ready"},
		},
		{
			name:     "recovers",
			required: []string{"store"},
			set: func(h *Health) {
				h.Set("store", errors.New("timeout"))
				h.SetReady("store", true)
			},
			wantStatus: http.StatusOK,
		},
		{
			name: "fails again",
			set: func(h *Health) {
				h.SetReady("snapshot", true)
				h.SetReady("snapshot", false)
			},
			wantStatus:  http.StatusServiceUnavailable,
			wantFailing: []string{"snapshot: not ready"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHealth(tt.required...)
			tt.set(h)

			live := get(t, h.Handler(), "GET", "/healthz")
			if live.Code != http.StatusOK || decode(t, live).Status != "ok" {
				t.Errorf("/healthz = %d %s, want 200 ok", live.Code, live.Body)
			}

			rec := get(t, h.Handler(), "GET", "/readyz")
			if rec.Code != tt.wantStatus {
				t.Errorf("/readyz status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			body := decode(t, rec)
			wantBody := "ok"
			if tt.wantStatus != http.StatusOK {
				wantBody = "not ready"
			}
			if body.Status != wantBody {
				t.Errorf("status = %q, want %q", body.Status, wantBody)
			}
			if !slices.Equal(body.Failing, tt.wantFailing) {
				t.Errorf("failing = %q, want %q", body.Failing, tt.wantFailing)
			}
		})
	}
}

func TestHealthRouting(t *testing.T) {
	h := NewHealth("store")
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/healthz", http.StatusOK},
		{"HEAD", "/healthz", http.StatusOK},
		{"GET", "/admin/healthz", http.StatusOK},
		{"HEAD", "/readyz", http.StatusServiceUnavailable},
		{"POST", "/readyz", http.StatusMethodNotAllowed},
		{"GET", "/metrics", http.StatusNotFound},
	}
	for _, tt := range tests {
		rec := get(t, h.Handler(), tt.method, tt.path)
		if rec.Code != tt.want {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, rec.Code, tt.want)
		}
		if tt.method == "HEAD" && rec.Body.Len() != 0 {
			t.Errorf("%s %s has a body", tt.method, tt.path)
		}
	}
}

func get(t *testing.T, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

func decode(t *testing.T, rec *httptest.ResponseRecorder) healthBody {
	t.Helper()
	var b healthBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	return b
}

// TestHealthProbe: a probed condition follows its probe — failing makes
// /readyz 503 with the reason, recovering makes it 200 again — and each
// change of state is logged once.
func TestHealthProbe(t *testing.T) {
	h := NewHealth("store")
	var failing atomic.Bool
	failing.Store(true)
	var logs bytes.Buffer
	sw := &syncWriter{w: &logs}
	log := slog.New(slog.NewTextHandler(sw, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.Probe(ctx, "store", 5*time.Millisecond, time.Second, log, func(context.Context) error {
		if failing.Load() {
			return errors.New("database is locked")
		}
		return nil
	})
	ready := func() (int, []string) {
		rec := httptest.NewRecorder()
		h.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		var body healthBody
		_ = json.NewDecoder(rec.Body).Decode(&body)
		return rec.Code, body.Failing
	}
	if code, f := ready(); code != 503 || !slices.Equal(f, []string{"store: database is locked"}) {
		t.Fatalf("failing probe: %d %v", code, f)
	}
	failing.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if code, _ := ready(); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the recovered probe never made /readyz 200")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	sw.mu.Lock()
	out := logs.String()
	sw.mu.Unlock()
	if strings.Count(out, "condition failing") != 1 || strings.Count(out, "condition recovered") != 1 || !strings.Contains(out, "database is locked") {
		t.Errorf("logs:\n%s", out)
	}
}

// syncWriter serialises writes from the probe's goroutine and the test.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
