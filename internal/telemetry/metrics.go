package telemetry

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
)

// Label values used when the caller has nothing better to report.
const (
	// labelNone stands for an empty value (no API matched, no application,
	// no problem code).
	labelNone = "-"
	// labelOther stands for an application outside the configured set and
	// for a status code outside 100–599.
	labelOther = "other"
)

// durationBuckets cover 0.5 ms to 10 s, roughly 1–2.5–5 per decade.
var durationBuckets = []float64{
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// statusClasses maps status/100 to its label value.
var statusClasses = [...]string{1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}

// Metrics owns the gateway's Prometheus metrics and the private registry
// they are exposed from. Every method is safe to call concurrently. Request
// is meant for the hot path: after the first request with a given label set
// it takes no lock and allocates nothing.
type Metrics struct {
	reg *prometheus.Registry
	log atomic.Pointer[slog.Logger]
	now func() time.Time

	requests         *prometheus.CounterVec
	requestDuration  *prometheus.HistogramVec
	upstreamDuration *prometheus.HistogramVec
	handshakeFails   *prometheus.CounterVec
	handshakes       *prometheus.CounterVec
	reloads          *prometheus.CounterVec
	lastReloadOK     prometheus.Gauge
	lastReloadTime   prometheus.Gauge
	rateLimit        *prometheus.CounterVec
	certs            *certCollector

	// apps is the set of application ids allowed as label values.
	apps atomic.Pointer[map[string]struct{}]

	// series caches the children of a request label set. The map is never
	// modified once published: a miss copies it under seriesMu.
	series   atomic.Pointer[map[requestKey]*requestSeries]
	seriesMu sync.Mutex

	funcsMu sync.Mutex
	funcs   map[string]*funcCollector
}

// requestKey is the label set of one request, after normalisation.
type requestKey struct {
	api, class, app, code string
}

// requestSeries holds the metric children a request with a given
// requestKey updates.
type requestSeries struct {
	count    prometheus.Counter
	total    prometheus.Observer
	upstream prometheus.Observer
}

// NewMetrics creates the metrics on a new private registry, together with
// the Go runtime and process collectors. No application id is a label
// value until SetApplications is called.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		now: time.Now,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_requests_total",
			Help: "Requests served, by API, status class, application and problem code.",
		}, []string{"api", "status_class", "application", "code"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portcullis_request_duration_seconds",
			Help:    "Time from receiving a request to finishing its response, by API and status class.",
			Buckets: durationBuckets,
		}, []string{"api", "status_class"}),
		upstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portcullis_upstream_duration_seconds",
			Help:    "Time spent waiting on the upstream, by API; requests that never reached an upstream are not observed.",
			Buckets: durationBuckets,
		}, []string{"api"}),
		handshakeFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_tls_handshake_failures_total",
			Help: "Failed TLS handshakes, by hop (client→gateway or gateway→upstream) and reason.",
		}, []string{"hop", "reason"}),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_tls_handshakes_total",
			Help: "Completed TLS handshakes, by hop, TLS version and whether the session was resumed.",
		}, []string{"hop", "version", "resumed"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_reloads_total",
			Help: "Configuration reloads, by result (ok or failed).",
		}, []string{"result"}),
		lastReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portcullis_config_last_reload_successful",
			Help: "Whether the last configuration reload succeeded (1) or failed (0).",
		}),
		lastReloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portcullis_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful configuration reload.",
		}),
		rateLimit: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_ratelimit_decisions_total",
			Help: "Rate-limit and quota decisions, by API and result (allowed, limited or quota).",
		}, []string{"api", "result"}),
		funcs: make(map[string]*funcCollector),
	}
	m.certs = newCertCollector(func() time.Time { return m.now() })
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("failed")
	empty := map[string]struct{}{}
	m.apps.Store(&empty)
	series := map[requestKey]*requestSeries{}
	m.series.Store(&series)
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.requestDuration, m.upstreamDuration,
		m.handshakeFails, m.handshakes, m.reloads, m.lastReloadOK, m.lastReloadTime,
		m.rateLimit, m.certs,
	)
	return m
}

// SetLogger sets where scrape errors are logged. Until it is called they go
// to slog.Default().
func (m *Metrics) SetLogger(log *slog.Logger) {
	m.log.Store(log)
}

func (m *Metrics) logger() *slog.Logger {
	if l := m.log.Load(); l != nil {
		return l
	}
	return slog.Default()
}

// SetApplications replaces the set of application ids that may appear as
// the application label. Any other non-empty id is counted as "other", so
// the number of series stays bounded by the configuration, not by traffic.
// Series of ids removed from the set are kept until the process restarts.
func (m *Metrics) SetApplications(ids []string) {
	set := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		if id != "" {
			set[id] = struct{}{}
		}
	}
	m.apps.Store(&set)
}

// Request records one served request. api is the API's name ("" when no API
// matched); raw paths are never labels. status becomes its class ("2xx");
// application is kept only if it is in the SetApplications set; code is the
// problem code of a failure ("" on success). total is observed in
// portcullis_request_duration_seconds; upstream, when positive, in
// portcullis_upstream_duration_seconds.
func (m *Metrics) Request(api string, status int, application, code string, total, upstream time.Duration) {
	k := requestKey{
		api:   orNone(api),
		class: statusClass(status),
		app:   m.appLabel(application),
		code:  orNone(code),
	}
	s, ok := (*m.series.Load())[k]
	if !ok {
		s = m.addSeries(k)
	}
	s.count.Inc()
	s.total.Observe(total.Seconds())
	if upstream > 0 {
		s.upstream.Observe(upstream.Seconds())
	}
}

// addSeries creates and caches the children for k, unless another
// goroutine did so first.
func (m *Metrics) addSeries(k requestKey) *requestSeries {
	m.seriesMu.Lock()
	defer m.seriesMu.Unlock()
	old := *m.series.Load()
	if s, ok := old[k]; ok {
		return s
	}
	// Label values must be valid UTF-8; repair them once here rather than
	// letting client_golang panic.
	api, app, code := validLabel(k.api), validLabel(k.app), validLabel(k.code)
	s := &requestSeries{
		count:    m.requests.WithLabelValues(api, k.class, app, code),
		total:    m.requestDuration.WithLabelValues(api, k.class),
		upstream: m.upstreamDuration.WithLabelValues(api),
	}
	next := make(map[requestKey]*requestSeries, len(old)+1)
	for key, v := range old {
		next[key] = v
	}
	next[k] = s
	m.series.Store(&next)
	return s
}

func (m *Metrics) appLabel(id string) string {
	if id == "" {
		return labelNone
	}
	if _, ok := (*m.apps.Load())[id]; ok {
		return id
	}
	return labelOther
}

func statusClass(status int) string {
	if c := status / 100; c >= 1 && c <= 5 {
		return statusClasses[c]
	}
	return labelOther
}

func orNone(s string) string {
	if s == "" {
		return labelNone
	}
	return s
}

func validLabel(s string) string {
	return strings.ToValidUTF8(s, "\uFFFD")
}

// TLSHandshakeFailure counts one failed handshake. hop is "client→gateway"
// or "gateway→upstream" (tlsdiag's hops); reason is a stable diagnosis
// code, never free text.
func (m *Metrics) TLSHandshakeFailure(hop, reason string) {
	m.handshakeFails.WithLabelValues(validLabel(orNone(hop)), validLabel(orNone(reason))).Inc()
}

// TLSHandshake counts one completed handshake on hop, with its TLS version
// name ("TLS 1.3") and whether the session was resumed.
func (m *Metrics) TLSHandshake(hop, version string, resumed bool) {
	r := "false"
	if resumed {
		r = "true"
	}
	m.handshakes.WithLabelValues(validLabel(orNone(hop)), validLabel(orNone(version)), r).Inc()
}

// Reload counts one configuration reload; a successful one also sets
// portcullis_config_last_reload_success_timestamp_seconds to now.
func (m *Metrics) Reload(ok bool) {
	if !ok {
		m.reloads.WithLabelValues("failed").Inc()
		m.lastReloadOK.Set(0)
		return
	}
	m.reloads.WithLabelValues("ok").Inc()
	m.lastReloadOK.Set(1)
	m.lastReloadTime.Set(float64(m.now().UnixNano()) / 1e9)
}

// RateLimitDecision counts one rate-limit decision for api. result is
// "allowed", "limited" (rate exceeded) or "quota" (quota exhausted).
func (m *Metrics) RateLimitDecision(api, result string) {
	m.rateLimit.WithLabelValues(validLabel(orNone(api)), validLabel(orNone(result))).Inc()
}

// RegisterFunc exposes a counter family whose values are read at scrape
// time: collect is called once per scrape and calls emit once per series,
// with one label value per name in labels. emit must not be used after
// collect returns. Registering a name again replaces its collect function,
// so a caller can point it at the state of a new snapshot; the help and
// labels must then be the same. Like prometheus.MustRegister, RegisterFunc
// panics on programming errors: a metric or label name outside the classic
// character set ([a-zA-Z_:][a-zA-Z0-9_:]*), or a name that clashes with
// another metric.
func (m *Metrics) RegisterFunc(name, help string, labels []string, collect func(emit func(value float64, labelValues ...string))) {
	m.registerFunc(name, help, labels, prometheus.CounterValue, collect)
}

// RegisterGaugeFunc is RegisterFunc for a gauge family: values that go up
// and down, such as open connections.
func (m *Metrics) RegisterGaugeFunc(name, help string, labels []string, collect func(emit func(value float64, labelValues ...string))) {
	m.registerFunc(name, help, labels, prometheus.GaugeValue, collect)
}

func (m *Metrics) registerFunc(name, help string, labels []string, kind prometheus.ValueType, collect func(emit func(value float64, labelValues ...string))) {
	// Keep to the classic character set so every scraper can read the
	// names, whatever client_golang's default validation allows.
	if !model.LegacyValidation.IsValidMetricName(name) {
		panic(fmt.Sprintf("telemetry: invalid metric name %q", name))
	}
	for _, l := range labels {
		if !model.LegacyValidation.IsValidLabelName(l) {
			panic(fmt.Sprintf("telemetry: metric %q: invalid label name %q", name, l))
		}
	}
	m.funcsMu.Lock()
	defer m.funcsMu.Unlock()
	if fc, ok := m.funcs[name]; ok {
		if fc.help != help || !slices.Equal(fc.labels, labels) || fc.kind != kind {
			panic(fmt.Sprintf("telemetry: metric %q registered again with different help or labels", name))
		}
		fc.collect.Store(&collect)
		return
	}
	fc := &funcCollector{
		desc:   prometheus.NewDesc(name, help, labels, nil),
		kind:   kind,
		help:   help,
		labels: slices.Clone(labels),
	}
	fc.collect.Store(&collect)
	m.reg.MustRegister(fc)
	m.funcs[name] = fc
}

// funcCollector reports the counters produced by a RegisterFunc callback.
type funcCollector struct {
	desc    *prometheus.Desc
	kind    prometheus.ValueType
	help    string
	labels  []string
	collect atomic.Pointer[func(emit func(float64, ...string))]
}

func (f *funcCollector) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }

func (f *funcCollector) Collect(ch chan<- prometheus.Metric) {
	collect := *f.collect.Load()
	collect(func(v float64, lvs ...string) {
		mt, err := prometheus.NewConstMetric(f.desc, f.kind, v, lvs...)
		if err != nil {
			mt = prometheus.NewInvalidMetric(f.desc, err)
		}
		ch <- mt
	})
}

// Handler serves the registry in the Prometheus exposition formats. A
// failing collector does not fail the scrape: the error is logged and the
// other metrics are still served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      promLogger{m},
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.reg,
	})
}

// promLogger adapts the Metrics logger to promhttp.Logger.
type promLogger struct{ m *Metrics }

func (p promLogger) Println(v ...any) {
	p.m.logger().Error("metrics scrape failed", "error", strings.TrimSpace(fmt.Sprintln(v...)))
}
