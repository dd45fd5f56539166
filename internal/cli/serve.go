package cli

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/policy"
	"github.com/portcullis/portcullis/internal/registry"
	"github.com/portcullis/portcullis/internal/server"
	"github.com/portcullis/portcullis/internal/snapshot"
	"github.com/portcullis/portcullis/internal/telemetry"
	"github.com/portcullis/portcullis/internal/upstream"
	"github.com/portcullis/portcullis/internal/watch"
)

type serveCmd struct {
	Config  string `short:"c" required:"" type:"path" env:"PORTCULLIS_CONFIG" help:"Configuration file (YAML)."`
	NoWatch bool   `name:"no-watch" env:"PORTCULLIS_NO_WATCH" help:"Do not watch the configuration file and the files it names for changes (reload with SIGHUP only)."`
}

type validateCmd struct {
	Config string `short:"c" required:"" type:"path" env:"PORTCULLIS_CONFIG" help:"Configuration file (YAML)."`
}

// load checks the configuration and compiles it, printing every problem to w.
// With a registry, the file's resources are applied into it first and the
// registry's own resources are served beside them. It returns nil if
// anything is wrong.
func load(path string, w io.Writer, o snapshot.Options, st registry.Store) (config.File, *snapshot.Snapshot) {
	d, f, probs := config.Check(path)
	if len(probs) == 0 && st != nil {
		merged, err := withStore(context.Background(), st, f)
		if err != nil {
			probs = config.Problems{{File: path, Path: "store", Message: err.Error()}}
		} else {
			f = config.WithDefaults(merged)
			for _, p := range config.Validate(f) {
				p.File, p.Message = path+" + registry", p.Message+" (from the registry)"
				probs = append(probs, p)
			}
		}
	}
	if len(probs) == 0 {
		o.BaseDir = filepath.Dir(path)
		snap, cprobs := snapshot.Compile(f, o)
		if len(cprobs) == 0 {
			return f, snap
		}
		probs = d.Locate(cprobs)
	}
	for _, p := range probs {
		fmt.Fprintln(w, p.String())
	}
	fmt.Fprintf(w, "%d problem(s) in %s\n", len(probs), path)
	return f, nil
}

func (c *validateCmd) Run(g *globals) error {
	f, snap := load(c.Config, g.stderr, snapshot.Options{Validate: true}, nil)
	if snap == nil {
		return exitError{ExitFailure}
	}
	defer snap.Close()
	if _, ok := collector(c.Config, f, g.stderr); !ok {
		return exitError{ExitFailure}
	}
	for _, w := range snap.Warnings {
		w.File = c.Config
		fmt.Fprintf(g.stderr, "warning: %s\n", w.String())
	}
	fmt.Fprintf(g.stdout, "%s: OK (%d listener(s), %d API(s), %d trust store(s))\n", c.Config, len(f.Listeners), len(f.APIs), len(f.TrustStores))
	return nil
}

// catchSignals starts catching the signals serve handles. Call it before the
// listeners open: a SIGTERM that arrives between "listening" and the serve
// loop must still shut down gracefully, not kill the process.
func catchSignals() (chan os.Signal, func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	return sigs, func() { signal.Stop(sigs) }
}

func (c *serveCmd) Run(g *globals) error {
	sigs, stopSignals := catchSignals()
	defer stopSignals()
	// The built-in authorization server's keys, when the configuration
	// names no key_dir, live here for the life of the process so reloads
	// keep them.
	keyDir, err := os.MkdirTemp("", "portcullis-keys-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(keyDir)
	// Rate-limit and quota counters outlive any one snapshot, so a reload
	// does not hand everyone a fresh budget.
	counter, quotas := policy.NewMemoryCounter(), policy.NewMemoryQuotas()
	// Upstream connections outlive a snapshot too: a reload that changes
	// nothing about an API's upstream keeps its pooled connections.
	pools := upstream.NewPools(upstream.PoolsOptions{})
	_, f0, probs := config.Check(c.Config)
	if len(probs) > 0 {
		for _, p := range probs {
			fmt.Fprintln(g.stderr, p.String())
		}
		fmt.Fprintf(g.stderr, "%d problem(s) in %s\n", len(probs), c.Config)
		return exitError{ExitFailure}
	}
	st, err := openStore(f0, c.Config)
	if err != nil {
		return err
	}
	var store registry.Store
	if st != nil {
		defer st.Close()
		store = st
	}
	f, snap := load(c.Config, g.stderr, snapshot.Options{AuthKeyDir: keyDir, Logger: newLogger(g.stderr, "info"), Counter: counter, Quotas: quotas, Pools: pools}, store)
	if snap == nil {
		return exitError{ExitFailure}
	}
	log := newLogger(g.stderr, string(f.Log.Level))
	srv := server.New(log, slog.New(slog.NewJSONHandler(g.stdout, nil)))
	logWarnings(log, c.Config, snap)
	metrics := telemetry.NewMetrics()
	metrics.RegisterGaugeFunc("portcullis_upstream_connections", "Open upstream connections, by API and pool state (active, or draining after its TLS identity changed).",
		[]string{"api", "state"}, func(emit func(float64, ...string)) {
			pools.Conns(func(api string, active, draining int64) {
				emit(float64(active), api, "active")
				emit(float64(draining), api, "draining")
			})
		})
	metrics.RegisterFunc("portcullis_upstream_connections_opened_total", "Upstream connections opened (TCP connect plus, for https targets, a TLS handshake), by API.",
		[]string{"api"}, func(emit func(float64, ...string)) {
			pools.Dials(func(api string, n uint64) { emit(float64(n), api) })
		})
	metrics.SetLogger(log)
	health := telemetry.NewHealth("snapshot", "listeners")
	if store != nil {
		// Ready only while the registry answers: the admin API and every
		// reload need it.
		probeCtx, stopProbe := context.WithCancel(context.Background())
		defer stopProbe()
		health.Probe(probeCtx, "store", 10*time.Second, 2*time.Second, log, func(ctx context.Context) error {
			_, err := store.Revision(ctx)
			return err
		})
	}
	var expiry *telemetry.ExpiryWatch
	// The collector's certificates are read at start (tracing needs a
	// restart to change) and reported with every snapshot's.
	var collectorCerts []snapshot.CertUse
	inUse := func(s *snapshot.Snapshot) []telemetry.CertInfo { return certInfos(s, collectorCerts) }
	observe := func(s *snapshot.Snapshot, cfg config.File) {
		var ids []string
		for _, a := range cfg.Applications {
			ids = append(ids, a.ID)
		}
		metrics.SetApplications(ids)
		certs := inUse(s)
		metrics.Certificates(certs)
		if expiry != nil {
			expiry.Check(certs, time.Now())
		}
		health.SetReady("snapshot", true)
	}
	srv.SetMetrics(metrics)
	col, ok := collector(c.Config, f, g.stderr)
	if !ok {
		return exitError{ExitFailure}
	}
	if col != nil {
		collectorCerts = col.Certificates
	}
	tracer, err := startTracing(f.Tracing, col, log)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tracer.Shutdown(ctx); err != nil {
			log.Warn("tracing: spans still buffered at exit were not exported", "error", err.Error())
		}
	}()
	srv.SetTracer(tracer)
	if err := srv.Start(snap); err != nil {
		return err
	}
	health.SetReady("listeners", true)
	observe(snap, f)
	// Certificates in use are checked against log.expiry_warning_days
	// (30/7/1 by default) at every load and hourly in between; the
	// thresholds are read at start.
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	thresholds := f.Log.ExpiryWarningDays
	if len(thresholds) == 0 {
		thresholds = telemetry.DefaultExpiryThresholds()
	}
	expiry = telemetry.StartExpiryWatch(watchCtx, time.Hour, thresholds, log, func() []telemetry.CertInfo {
		return inUse(srv.Snapshot())
	})
	changes := make(chan struct{}, 1)
	reloads := make(chan reloadRequest)
	fw := startFileWatch(c.NoWatch, c.Config, f, log, changes)
	defer fw.stop()
	if f.Admin != nil {
		adm, err := startAdmin(f, c.Config, store, log, func() {
			select {
			case changes <- struct{}{}:
			default: // a rebuild is already pending; it will see this change too
			}
		}, requestReload(reloads), metrics.Handler(), health.Handler())
		if err != nil {
			_ = srv.Shutdown(context.Background())
			return err
		}
		defer adm.shutdown(context.Background())
	}
	log.Info("portcullis started", "version", Version, "config", c.Config, "apis", len(snap.APIs))
	reloaded := func(ok bool, s *snapshot.Snapshot, cfg config.File) {
		metrics.Reload(ok)
		if ok {
			observe(s, cfg)
		}
	}
	return runUntilSignal(srv, log, sigs, changes, reloads, reloaded, func(out io.Writer) (*snapshot.Snapshot, config.File, error) {
		nf, next := load(c.Config, out, snapshot.Options{AuthKeyDir: keyDir, Logger: log, Counter: counter, Quotas: quotas, Pools: pools}, store)
		fw.update(nf, next != nil)
		if next == nil {
			return nil, nf, fmt.Errorf("configuration has problems (listed above)")
		}
		logWarnings(log, c.Config, next)
		if tracingChanged(f.Tracing, nf.Tracing) {
			log.Warn("tracing settings changed; they apply at the next restart", "file", c.Config)
		}
		return next, nf, nil
	})
}

// runUntilSignal serves until SIGTERM or SIGINT, reloading on SIGHUP (and
// on every registry or watched-file change reported on changes) with reload's
// snapshot. A failed reload keeps the running snapshot.
func runUntilSignal(srv *server.Server, log *slog.Logger, sigs <-chan os.Signal, changes <-chan struct{}, reqs <-chan reloadRequest, reloaded func(bool, *snapshot.Snapshot, config.File), reload func(out io.Writer) (*snapshot.Snapshot, config.File, error)) error {
	// doReload rebuilds and swaps the snapshot; the configuration's
	// problems go to the log and to out.
	doReload := func(why string, out io.Writer) (int, error) {
		if reload == nil {
			return 0, errors.New("this gateway does not reload")
		}
		var w io.Writer = &logWriter{log}
		if out != nil {
			w = io.MultiWriter(w, out)
		}
		next, nf, err := reload(w)
		if err == nil {
			err = srv.Reload(next)
			if err != nil {
				next.Close()
			}
		}
		if reloaded != nil {
			reloaded(err == nil, next, nf)
		}
		if err != nil {
			log.Error("reload rejected; the running configuration keeps serving", "trigger", why, "error", err.Error())
			return 0, err
		}
		log.Info("configuration reloaded", "trigger", why, "apis", len(next.APIs))
		return len(next.APIs), nil
	}
	for {
		select {
		case err := <-srv.Errors():
			return fmt.Errorf("listener failed: %w", err)
		case <-changes:
			doReload("registry or file change", nil)
		case req := <-reqs:
			var problems bytes.Buffer
			apis, err := doReload("admin API", &problems)
			if err != nil && problems.Len() > 0 {
				// The problems themselves, not "listed above".
				lines := strings.Split(strings.TrimSpace(problems.String()), "\n")
				err = errors.New(strings.Join(lines, "; "))
			}
			req.done <- reloadOutcome{apis: apis, err: err}
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				doReload("SIGHUP", nil)
				continue
			}
			log.Info("shutting down: no new connections; waiting for requests in flight", "signal", sig.String(), "grace", srv.Snapshot().ShutdownGrace.String())
			err := srv.Shutdown(context.Background())
			if err != nil {
				log.Warn("shutdown grace exceeded", "error", err.Error())
			} else {
				log.Info("stopped")
			}
			return nil
		}
	}
}

// collector reads the trust store, client certificate and header variables
// the tracing block names, printing every problem to w located in the
// configuration file at path. It reports false when something is wrong.
func collector(path string, f config.File, w io.Writer) (*snapshot.Collector, bool) {
	col, probs := snapshot.CompileCollector(f, snapshot.Options{BaseDir: filepath.Dir(path)})
	if len(probs) == 0 {
		return col, true
	}
	if d, _ := config.Load(path); d != nil {
		probs = d.Locate(probs)
	}
	for _, p := range probs {
		p.File = path
		fmt.Fprintln(w, p.String())
	}
	fmt.Fprintf(w, "%d problem(s) in %s\n", len(probs), path)
	return nil, false
}

// startTracing builds the tracer the configuration asks for, or nil (off)
// when it names no collector. Tracing is set up once per process: a reload
// does not change it. col is what CompileCollector read for t.
func startTracing(t config.Tracing, col *snapshot.Collector, log *slog.Logger) (*telemetry.Tracer, error) {
	if t.OTLPEndpoint == "" || col == nil {
		return nil, nil
	}
	// Export failures never fail a request; they are logged.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing: export to the collector failed", "endpoint", t.OTLPEndpoint, "error", err.Error())
	}))
	tr, err := telemetry.NewTracer(context.Background(), telemetry.TracingOptions{
		Endpoint: t.OTLPEndpoint, Insecure: t.Insecure, ServiceName: t.ServiceName, SampleRatio: *t.SampleRatio,
		Headers: col.Headers, TLSConfig: col.TLSConfig, Timeout: col.Timeout,
	})
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	// Header names only: headers_env values are credentials.
	names := make([]string, 0, len(col.Headers))
	for name := range col.Headers {
		names = append(names, name)
	}
	slices.Sort(names)
	log.Info("tracing on", "endpoint", t.OTLPEndpoint, "service_name", t.ServiceName, "sample_ratio", *t.SampleRatio,
		"trust", cmp.Or(t.Trust, "system roots"), "client_certificate", t.ClientCertificate != nil, "headers", names, "timeout", col.Timeout.String())
	return tr, nil
}

// tracingChanged reports whether two tracing blocks differ in any setting,
// comparing pointed-to values (sample_ratio, client_certificate) and
// treating an empty map like an absent one. Changed file contents (a renewed
// client certificate) are not seen: they too apply at the next start.
func tracingChanged(a, b config.Tracing) bool {
	norm := func(t config.Tracing) config.Tracing {
		r := config.DefaultTracingSampleRatio
		if t.SampleRatio != nil {
			r = *t.SampleRatio
		}
		t.SampleRatio = &r
		if t.Timeout == 0 {
			t.Timeout = config.DefaultTracingTimeout
		}
		if len(t.Headers) == 0 {
			t.Headers = nil
		}
		if len(t.HeadersEnv) == 0 {
			t.HeadersEnv = nil
		}
		return t
	}
	return !reflect.DeepEqual(norm(a), norm(b))
}

func logWarnings(log *slog.Logger, file string, snap *snapshot.Snapshot) {
	for _, w := range snap.Warnings {
		log.Warn("unsafe option in use", "file", file, "key", w.Path, "warning", w.Message)
	}
}

// logWriter turns problem lines printed during a reload into log lines.
type logWriter struct{ log *slog.Logger }

func (w *logWriter) Write(p []byte) (int, error) {
	w.log.Error("configuration problem", "problem", string(trimNL(p)))
	return len(p), nil
}

func trimNL(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}

// certInfos lists the snapshot's certificates for the expiry metrics and
// warnings.
func certInfos(s *snapshot.Snapshot, more []snapshot.CertUse) []telemetry.CertInfo {
	out := make([]telemetry.CertInfo, 0, len(s.Certificates)+len(more))
	for _, cu := range slices.Concat(s.Certificates, more) {
		if cu.Cert != nil {
			out = append(out, telemetry.CertInfoFromX509(cu.Where, cu.Cert))
		}
	}
	return out
}

// fileWatch forwards changes to the configuration file and to every file it
// names into a reload, like a SIGHUP.
type fileWatch struct {
	w      *watch.Watcher
	config string
	done   chan struct{}
}

// startFileWatch watches configPath and the files f names, sending on
// changes (without blocking) when one of them changes. It returns nil when
// off or when watching cannot start; a nil *fileWatch does nothing.
func startFileWatch(off bool, configPath string, f config.File, log *slog.Logger, changes chan<- struct{}) *fileWatch {
	if off {
		return nil
	}
	w, err := watch.New(watchedFiles(configPath, f), watch.Options{Logger: log})
	if err != nil {
		log.Warn("not watching files; reload with SIGHUP", "error", err.Error())
		return nil
	}
	fw := &fileWatch{w: w, config: configPath, done: make(chan struct{})}
	go func() {
		for {
			select {
			case <-fw.done:
				return
			case <-w.C():
				select {
				case changes <- struct{}{}:
				default: // a rebuild is already pending; it will see this change too
				}
			}
		}
	}()
	return fw
}

// update watches the files of the configuration just loaded. After a
// rejected load it keeps the files already watched and adds the new ones,
// so that fixing (or creating) any of them triggers another attempt.
func (fw *fileWatch) update(f config.File, ok bool) {
	if fw == nil {
		return
	}
	paths := watchedFiles(fw.config, f)
	if !ok {
		paths = append(paths, fw.w.Paths()...)
	}
	_ = fw.w.SetPaths(paths)
}

func (fw *fileWatch) stop() {
	if fw == nil {
		return
	}
	close(fw.done)
	_ = fw.w.Close()
}

func watchedFiles(configPath string, f config.File) []string {
	return append([]string{configPath}, config.Files(f, filepath.Dir(configPath))...)
}

// reloadRequest asks the serve loop for a reload now and carries its
// outcome back (the admin API's POST /admin/v1/reload).
type reloadRequest struct{ done chan reloadOutcome }

type reloadOutcome struct {
	apis int
	err  error
}

// requestReload returns the admin API's reload function: it hands a request
// to the serve loop, which reloads between its other events, and waits for
// the outcome or for the client to give up.
func requestReload(reqs chan<- reloadRequest) func(context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		req := reloadRequest{done: make(chan reloadOutcome, 1)}
		select {
		case reqs <- req:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		select {
		case o := <-req.done:
			return o.apis, o.err
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}
