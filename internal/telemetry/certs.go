package telemetry

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultExpiryThresholds returns the days before expiry at which a
// certificate is warned about when no thresholds are configured: 30, 7
// and 1.
func DefaultExpiryThresholds() []int { return []int{30, 7, 1} }

// CertInfo describes one certificate in use.
type CertInfo struct {
	// Where says what uses the certificate, such as "listener main" or
	// "api orders upstream identity".
	Where string
	// Subject is the certificate's subject distinguished name.
	Subject string
	// Serial is the serial number in lower-case hexadecimal.
	Serial string
	// NotAfter is the end of the validity period.
	NotAfter time.Time
}

// CertInfoFromX509 describes cert as used at where.
func CertInfoFromX509(where string, cert *x509.Certificate) CertInfo {
	serial := ""
	if cert.SerialNumber != nil {
		serial = cert.SerialNumber.Text(16)
	}
	return CertInfo{Where: where, Subject: cert.Subject.String(), Serial: serial, NotAfter: cert.NotAfter}
}

// key identifies a certificate at one place of use.
func (c CertInfo) key() string {
	return c.Where + "\x00" + c.Subject + "\x00" + c.Serial
}

// Certificates replaces the set of certificates reported by
// portcullis_certificate_expiry_seconds (NotAfter minus the scrape time,
// negative once expired) and portcullis_certificate_not_after_timestamp_seconds.
// A certificate listed twice with the same Where, Subject and Serial is
// reported once.
func (m *Metrics) Certificates(certs []CertInfo) {
	m.certs.set(certs)
}

// certCollector reports the expiry of the certificates in use, computed
// when scraped.
type certCollector struct {
	expiry   *prometheus.Desc
	notAfter *prometheus.Desc
	now      func() time.Time
	certs    atomic.Pointer[[]CertInfo]
}

func newCertCollector(now func() time.Time) *certCollector {
	labels := []string{"where", "subject", "serial"}
	c := &certCollector{
		expiry: prometheus.NewDesc("portcullis_certificate_expiry_seconds",
			"Seconds until the certificate expires (negative once expired), computed at scrape time.", labels, nil),
		notAfter: prometheus.NewDesc("portcullis_certificate_not_after_timestamp_seconds",
			"Unix time at which the certificate expires.", labels, nil),
		now: now,
	}
	c.certs.Store(&[]CertInfo{})
	return c
}

func (c *certCollector) set(certs []CertInfo) {
	seen := make(map[string]bool, len(certs))
	list := make([]CertInfo, 0, len(certs))
	for _, ci := range certs {
		ci.Where, ci.Subject, ci.Serial = validLabel(ci.Where), validLabel(ci.Subject), validLabel(ci.Serial)
		if k := ci.key(); !seen[k] {
			seen[k] = true
			list = append(list, ci)
		}
	}
	c.certs.Store(&list)
}

func (c *certCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.expiry
	ch <- c.notAfter
}

func (c *certCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	for _, ci := range *c.certs.Load() {
		ch <- prometheus.MustNewConstMetric(c.expiry, prometheus.GaugeValue,
			ci.NotAfter.Sub(now).Seconds(), ci.Where, ci.Subject, ci.Serial)
		ch <- prometheus.MustNewConstMetric(c.notAfter, prometheus.GaugeValue,
			float64(ci.NotAfter.UnixNano())/1e9, ci.Where, ci.Subject, ci.Serial)
	}
}

// expiryLevel returns the smallest threshold, in days, that the remaining
// validity falls within, 0 if the certificate has expired, or ok false if
// no threshold applies. thresholds must be sorted ascending.
func expiryLevel(remaining time.Duration, thresholds []int) (level int, ok bool) {
	if remaining <= 0 {
		return 0, true
	}
	for _, t := range thresholds {
		if remaining <= time.Duration(t)*24*time.Hour {
			return t, true
		}
	}
	return 0, false
}

// normThresholds returns the positive thresholds sorted ascending without
// duplicates, or DefaultExpiryThresholds if there are none.
func normThresholds(thresholds []int) []int {
	out := make([]int, 0, len(thresholds))
	for _, t := range thresholds {
		if t > 0 {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		out = DefaultExpiryThresholds()
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func logExpiry(log *slog.Logger, ci CertInfo, now time.Time, level int) {
	remaining := ci.NotAfter.Sub(now)
	attrs := []slog.Attr{
		slog.String("where", ci.Where),
		slog.String("subject", ci.Subject),
		slog.String("serial", ci.Serial),
		slog.String("not_after", ci.NotAfter.UTC().Format(time.RFC3339)),
	}
	if remaining <= 0 {
		attrs = append(attrs, slog.Float64("expired_days_ago", roundDays(-remaining)))
		log.LogAttrs(context.Background(), slog.LevelError, "certificate has expired", attrs...)
		return
	}
	attrs = append(attrs, slog.Float64("days_left", roundDays(remaining)), slog.Int("threshold_days", level))
	log.LogAttrs(context.Background(), slog.LevelWarn,
		fmt.Sprintf("certificate expires within %d days", level), attrs...)
}

func roundDays(d time.Duration) float64 {
	return math.Round(d.Hours()/24*10) / 10
}

// ExpiryWarnings logs every certificate in certs that expires within one of
// thresholds (days; DefaultExpiryThresholds() if none is positive), naming the
// smallest threshold that applies: a warning, or an error once expired. It
// keeps no state, so each call logs again; use an ExpiryWatch to log each
// threshold crossing once. It returns the number of lines logged.
func ExpiryWarnings(log *slog.Logger, certs []CertInfo, now time.Time, thresholds []int) (warned int) {
	ths := normThresholds(thresholds)
	for _, ci := range certs {
		if level, ok := expiryLevel(ci.NotAfter.Sub(now), ths); ok {
			logExpiry(log, ci, now, level)
			warned++
		}
	}
	return warned
}

// ExpiryWatch logs certificate expiry like ExpiryWarnings, but once per
// certificate (Where, Subject and Serial) per threshold crossing: a
// certificate is logged when first seen within a threshold and again each
// time it falls within a smaller one, and when it expires. It is safe for
// concurrent use.
type ExpiryWatch struct {
	log        *slog.Logger
	thresholds []int

	mu   sync.Mutex
	last map[string]int // key → level last logged
}

// NewExpiryWatch returns a watch logging to log at thresholds (days;
// DefaultExpiryThresholds if none is positive).
func NewExpiryWatch(log *slog.Logger, thresholds []int) *ExpiryWatch {
	return &ExpiryWatch{log: log, thresholds: normThresholds(thresholds), last: map[string]int{}}
}

// Check logs the certificates in certs that crossed a threshold since the
// previous Check and returns how many it logged. Certificates missing from
// certs are forgotten, so a certificate that comes back is logged again.
// Call it after every load and periodically.
func (w *ExpiryWatch) Check(certs []CertInfo, now time.Time) (warned int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	next := make(map[string]int, len(w.last))
	for _, ci := range certs {
		level, ok := expiryLevel(ci.NotAfter.Sub(now), w.thresholds)
		if !ok {
			continue
		}
		k := ci.key()
		if prev, seen := next[k]; seen {
			// Listed twice in this call: already handled.
			next[k] = min(prev, level)
			continue
		}
		if prev, seen := w.last[k]; !seen || level < prev {
			logExpiry(w.log, ci, now, level)
			warned++
		} else {
			level = prev
		}
		next[k] = level
	}
	w.last = next
	return warned
}

// StartExpiryWatch checks certs() once before returning, then every
// interval (an hour if interval is not positive) until ctx is done. The
// returned watch may also be checked directly, for example right after a
// reload; the ticker and such calls share the once-per-crossing state.
func StartExpiryWatch(ctx context.Context, interval time.Duration, thresholds []int, log *slog.Logger, certs func() []CertInfo) *ExpiryWatch {
	if interval <= 0 {
		interval = time.Hour
	}
	w := NewExpiryWatch(log, thresholds)
	w.Check(certs(), time.Now())
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				w.Check(certs(), now)
			}
		}
	}()
	return w
}
