package telemetry

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Health tracks the conditions the gateway needs to be ready, such as
// "snapshot" (a snapshot is loaded), "listeners" (all listeners are bound)
// and "store" (the registry store answers), and serves /healthz and
// /readyz. It is safe for concurrent use.
type Health struct {
	mu         sync.Mutex
	conditions map[string]string // name → "" when ok, else why not
}

// NewHealth returns a Health in which each of required starts as not ready
// ("pending") until SetReady or Set reports it ok. With no required
// conditions the gateway is ready until a condition is reported failing.
func NewHealth(required ...string) *Health {
	h := &Health{conditions: make(map[string]string, len(required))}
	for _, name := range required {
		h.conditions[name] = "pending"
	}
	return h
}

// notReady is the reason shown for a condition reported without one.
const notReady = "not ready"

// SetReady records whether the condition name holds.
func (h *Health) SetReady(name string, ok bool) {
	why := ""
	if !ok {
		why = notReady
	}
	h.set(name, why)
}

// Set records the condition name as ok when err is nil, else as failing
// because of err, whose message /readyz shows.
func (h *Health) Set(name string, err error) {
	why := ""
	if err != nil {
		if why = err.Error(); why == "" {
			why = notReady
		}
	}
	h.set(name, why)
}

func (h *Health) set(name, why string) {
	h.mu.Lock()
	h.conditions[name] = why
	h.mu.Unlock()
}

// Failing returns the failing conditions as "name: reason", sorted by name.
func (h *Health) Failing() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for name, why := range h.conditions {
		if why != "" {
			out = append(out, name+": "+why)
		}
	}
	slices.Sort(out)
	return out
}

// healthBody is the JSON document served by /healthz and /readyz.
type healthBody struct {
	Status  string   `json:"status"`
	Failing []string `json:"failing,omitempty"`
}

// Handler serves GET and HEAD on any path ending in /healthz, always 200
// {"status":"ok"} while the process runs, and on any path ending in
// /readyz, 200 {"status":"ok"} when every condition holds, else 503
// {"status":"not ready","failing":["name: reason",...]}. Other paths get
// 404 and other methods 405.
func (h *Health) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var readiness bool
		switch {
		case strings.HasSuffix(r.URL.Path, "/healthz"):
		case strings.HasSuffix(r.URL.Path, "/readyz"):
			readiness = true
		default:
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, status := healthBody{Status: "ok"}, http.StatusOK
		if readiness {
			if failing := h.Failing(); len(failing) > 0 {
				body, status = healthBody{Status: "not ready", Failing: failing}, http.StatusServiceUnavailable
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		if r.Method == http.MethodHead {
			return
		}
		_ = json.NewEncoder(w).Encode(body)
	})
}

// Probe checks the condition name with probe now and then every interval
// until ctx ends, each try bounded by timeout, and records the outcome
// (for example "store": the registry answers a query). A change of state
// is logged: a failure at warn level with its reason, a recovery at info.
func (h *Health) Probe(ctx context.Context, name string, interval, timeout time.Duration, log *slog.Logger, probe func(context.Context) error) {
	check := func(failing bool) bool {
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err := probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return failing
		}
		switch {
		case err != nil && !failing:
			log.Warn("readiness: condition failing", "condition", name, "error", err.Error())
		case err == nil && failing:
			log.Info("readiness: condition recovered", "condition", name)
		}
		h.Set(name, err)
		return err != nil
	}
	failing := check(false)
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				failing = check(failing)
			}
		}
	}()
}
