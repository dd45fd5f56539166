package telemetry

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"log/slog"
	"math"
	"math/big"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

const day = 24 * time.Hour

func TestCertificateExpiryGauge(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		certs    []CertInfo
		scrapeAt time.Time
		want     map[string]float64 // where → seconds
	}{
		{
			name:     "ten days left",
			certs:    []CertInfo{{Where: "listener main", Subject: "CN=gw", Serial: "1a", NotAfter: now.Add(10 * day)}},
			scrapeAt: now,
			want:     map[string]float64{"listener main": 864000},
		},
		{
			name:     "computed at scrape time",
			certs:    []CertInfo{{Where: "listener main", Subject: "CN=gw", Serial: "1a", NotAfter: now.Add(10 * day)}},
			scrapeAt: now.Add(day),
			want:     map[string]float64{"listener main": 777600},
		},
		{
			name: "expired is negative",
			certs: []CertInfo{
				{Where: "trust anchor", Subject: "CN=Old Root", Serial: "2", NotAfter: now.Add(-day)},
				{Where: "upstream orders", Subject: "CN=client", Serial: "3", NotAfter: now.Add(90 * time.Second)},
			},
			scrapeAt: now,
			want:     map[string]float64{"trust anchor": -86400, "upstream orders": 90},
		},
		{
			name: "duplicates reported once",
			certs: []CertInfo{
				{Where: "listener main", Subject: "CN=gw", Serial: "1a", NotAfter: now.Add(day)},
				{Where: "listener main", Subject: "CN=gw", Serial: "1a", NotAfter: now.Add(day)},
			},
			scrapeAt: now,
			want:     map[string]float64{"listener main": 86400},
		},
		{
			name:     "none",
			scrapeAt: now,
			want:     map[string]float64{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMetrics()
			m.Certificates([]CertInfo{{Where: "replaced", Subject: "CN=x", Serial: "9", NotAfter: now}})
			m.Certificates(tt.certs)
			m.now = func() time.Time { return tt.scrapeAt }
			fams := scrape(t, m)
			if got := seriesCount(fams, "portcullis_certificate_expiry_seconds"); got != len(tt.want) {
				t.Errorf("series = %d, want %d", got, len(tt.want))
			}
			for _, c := range tt.certs {
				labels := map[string]string{"where": c.Where, "subject": c.Subject, "serial": c.Serial}
				s := series(fams, "portcullis_certificate_expiry_seconds", labels)
				if s == nil {
					t.Fatalf("no series for %v", labels)
				}
				if got, want := s.GetGauge().GetValue(), tt.want[c.Where]; got != want {
					t.Errorf("%s expiry = %v, want %v", c.Where, got, want)
				}
				na := series(fams, "portcullis_certificate_not_after_timestamp_seconds", labels)
				if got := na.GetGauge().GetValue(); got != float64(c.NotAfter.Unix()) {
					t.Errorf("%s not_after = %v, want %v", c.Where, got, c.NotAfter.Unix())
				}
			}
		})
	}
}

func TestCertificateExpiryRealClock(t *testing.T) {
	m := NewMetrics()
	m.Certificates([]CertInfo{{Where: "listener main", Subject: "CN=gw", Serial: "1", NotAfter: time.Now().Add(10 * day)}})
	s := series(scrape(t, m), "portcullis_certificate_expiry_seconds", map[string]string{"where": "listener main", "subject": "CN=gw", "serial": "1"})
	if got := s.GetGauge().GetValue(); math.Abs(got-864000) > 5 {
		t.Errorf("expiry = %v, want ≈ 864000", got)
	}
}

func TestCertInfoFromX509(t *testing.T) {
	na := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	c := &x509.Certificate{
		Subject:      pkix.Name{CommonName: "gw.example", Organization: []string{"Portcullis"}},
		SerialNumber: big.NewInt(0xbeef),
		NotAfter:     na,
	}
	got := CertInfoFromX509("listener main", c)
	want := CertInfo{Where: "listener main", Subject: "CN=gw.example,O=Portcullis", Serial: "beef", NotAfter: na}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

type logLine struct {
	Level     string  `json:"level"`
	Msg       string  `json:"msg"`
	Where     string  `json:"where"`
	Threshold int     `json:"threshold_days"`
	DaysLeft  float64 `json:"days_left"`
}

func parseLog(t *testing.T, s string) []logLine {
	t.Helper()
	var out []logLine
	for line := range strings.Lines(s) {
		var l logLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, l)
	}
	return out
}

func TestExpiryWarnings(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		left       time.Duration
		thresholds []int
		wantLevel  string // "" for no line
		wantTh     int
	}{
		{"31 days", 31 * day, nil, "", 0},
		{"30 days and a second", 30*day + time.Second, nil, "", 0},
		{"exactly 30 days", 30 * day, nil, "WARN", 30},
		{"29 days", 29 * day, nil, "WARN", 30},
		{"8 days", 8 * day, nil, "WARN", 30},
		{"6 days", 6 * day, nil, "WARN", 7},
		{"12 hours", 12 * time.Hour, nil, "WARN", 1},
		{"expired", -time.Hour, nil, "ERROR", 0},
		{"expires now", 0, nil, "ERROR", 0},
		{"custom thresholds", 10 * day, []int{14, 3}, "WARN", 14},
		{"custom thresholds none", 20 * day, []int{14, 3}, "", 0},
		{"unsorted with duplicates", 2 * day, []int{3, 60, 3, 14}, "WARN", 3},
		{"non-positive thresholds mean defaults", 29 * day, []int{0, -5}, "WARN", 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf strings.Builder
			log := slog.New(slog.NewJSONHandler(&buf, nil))
			certs := []CertInfo{{Where: "listener main", Subject: "CN=gw", Serial: "1", NotAfter: now.Add(tt.left)}}
			n := ExpiryWarnings(log, certs, now, tt.thresholds)
			lines := parseLog(t, buf.String())
			if tt.wantLevel == "" {
				if n != 0 || len(lines) != 0 {
					t.Fatalf("warned %d, lines %v; want none", n, lines)
				}
				return
			}
			if n != 1 || len(lines) != 1 {
				t.Fatalf("warned %d, lines %v; want 1", n, lines)
			}
			l := lines[0]
			if l.Level != tt.wantLevel || l.Threshold != tt.wantTh || l.Where != "listener main" {
				t.Errorf("got %+v, want level %s threshold %d", l, tt.wantLevel, tt.wantTh)
			}
		})
	}
}

func TestExpiryWarningsStateless(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	var buf strings.Builder
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	certs := []CertInfo{
		{Where: "a", Serial: "1", NotAfter: now.Add(5 * day)},
		{Where: "b", Serial: "2", NotAfter: now.Add(50 * day)},
		{Where: "c", Serial: "3", NotAfter: now.Add(20 * day)},
	}
	for range 2 {
		if n := ExpiryWarnings(log, certs, now, nil); n != 2 {
			t.Errorf("warned %d, want 2", n)
		}
	}
}

func TestExpiryWatchOncePerCrossing(t *testing.T) {
	start := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	cert := CertInfo{Where: "listener main", Subject: "CN=gw", Serial: "1", NotAfter: start.Add(40 * day)}
	renewed := CertInfo{Where: "listener main", Subject: "CN=gw", Serial: "2", NotAfter: start.Add(400 * day)}
	steps := []struct {
		name      string
		certs     []CertInfo
		at        time.Duration // since start
		wantLevel string        // "" for no line
		wantTh    int
	}{
		{"40 days left", []CertInfo{cert}, 0, "", 0},
		{"29 days left crosses 30", []CertInfo{cert}, 11 * day, "WARN", 30},
		{"28 days left, same threshold", []CertInfo{cert}, 12 * day, "", 0},
		{"listed twice", []CertInfo{cert, cert}, 12 * day, "", 0},
		{"6 days left crosses 7", []CertInfo{cert}, 34 * day, "WARN", 7},
		{"5 days left", []CertInfo{cert}, 35 * day, "", 0},
		{"12 hours left crosses 1", []CertInfo{cert}, 39*day + 12*time.Hour, "WARN", 1},
		{"expired", []CertInfo{cert}, 40*day + time.Minute, "ERROR", 0},
		{"still expired", []CertInfo{cert}, 41 * day, "", 0},
		{"renewed", []CertInfo{renewed}, 41 * day, "", 0},
		{"old certificate back", []CertInfo{cert}, 41 * day, "ERROR", 0},
	}
	var buf strings.Builder
	w := NewExpiryWatch(slog.New(slog.NewJSONHandler(&buf, nil)), nil)
	for _, st := range steps {
		buf.Reset()
		n := w.Check(st.certs, start.Add(st.at))
		lines := parseLog(t, buf.String())
		if st.wantLevel == "" {
			if n != 0 || len(lines) != 0 {
				t.Errorf("%s: warned %d, lines %v; want none", st.name, n, lines)
			}
			continue
		}
		if n != 1 || len(lines) != 1 {
			t.Errorf("%s: warned %d, lines %v; want 1", st.name, n, lines)
			continue
		}
		if l := lines[0]; l.Level != st.wantLevel || l.Threshold != st.wantTh {
			t.Errorf("%s: got %+v, want level %s threshold %d", st.name, l, st.wantLevel, st.wantTh)
		}
	}
}

func TestStartExpiryWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		log := slog.New(slog.NewJSONHandler(&buf, nil))
		// 30 days and 90 minutes left: no warning now, one after two hourly
		// ticks.
		certs := []CertInfo{{Where: "listener main", Subject: "CN=gw", Serial: "1", NotAfter: time.Now().Add(30*day + 90*time.Minute)}}
		ctx, cancel := context.WithCancel(t.Context())
		w := StartExpiryWatch(ctx, time.Hour, nil, log, func() []CertInfo { return certs })
		if got := buf.String(); got != "" {
			t.Fatalf("logged at start: %s", got)
		}
		time.Sleep(time.Hour + time.Second)
		synctest.Wait()
		if got := buf.String(); got != "" {
			t.Fatalf("logged after one tick: %s", got)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if lines := parseLog(t, buf.String()); len(lines) != 1 || lines[0].Threshold != 30 {
			t.Fatalf("after two ticks: %v, want one 30-day warning", lines)
		}
		// A check after a load shares the state with the ticker.
		if n := w.Check(certs, time.Now()); n != 0 {
			t.Errorf("Check after tick warned %d, want 0", n)
		}
		time.Sleep(5 * time.Hour)
		synctest.Wait()
		if lines := parseLog(t, buf.String()); len(lines) != 1 {
			t.Errorf("later ticks logged again: %v", lines)
		}
		cancel()
		// synctest.Test fails if the watch goroutine is still running.
	})
}
