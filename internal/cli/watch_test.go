package cli_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/testpki"
)

// replaceFile writes data to a temporary file next to path and renames it
// over path, the way deployment tools replace certificates.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".new")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// rotateListener issues a new listener certificate from the test CA and
// installs it over the configured key and certificate files (key first).
func rotateListener(t *testing.T, p *pkiSet, n int) *testpki.Leaf {
	t.Helper()
	l := p.ca.Issue(t, fmt.Sprintf("gateway-listener-%d", n), testpki.Server(), testpki.DNS("localhost"), testpki.IP("127.0.0.1"))
	replaceFile(t, p.gwKey, l.KeyPEM())
	replaceFile(t, p.gwCert, l.CertPEM())
	return l
}

// rotateUpstream issues a new client certificate for the gateway's
// connections to the backend and installs it over the configured key and
// certificate files (key first).
func rotateUpstream(t *testing.T, p *pkiSet, n int) *testpki.Leaf {
	t.Helper()
	l := p.ca.Issue(t, fmt.Sprintf("gateway-upstream-%d", n), testpki.Client())
	replaceFile(t, p.clientKey, l.KeyPEM())
	replaceFile(t, p.clientCert, l.CertPEM())
	return l
}

// servedSerial makes a new TLS connection to the gateway and returns the
// serial number of the certificate it presents.
func servedSerial(t *testing.T, p *pkiSet, addr string) *big.Int {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: p.ca.Pool(), ServerName: "localhost"})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

// waitForSerial waits (bounded) until new handshakes see want.
func waitForSerial(t *testing.T, p *pkiSet, g *gateway, want *big.Int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for servedSerial(t, p, g.addr).Cmp(want) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("new handshakes do not see certificate %x within 10s; log:\n%s", want, g.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func get200(t *testing.T, c *http.Client, url string) *http.Response {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	return resp
}

// TestWatchRotatesListenerCertificate: replacing the listener's key and
// certificate files (atomic renames) reaches new handshakes without a
// restart or a signal, and a connection opened before keeps working.
func TestWatchRotatesListenerCertificate(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p)
	g := startGateway(t, writeConfig(t, p.dir, storyAConfig(p, b, "")))
	url := "https://" + g.addr + "/a/x"

	old := clientFor(p)
	resp := get200(t, old, url)
	oldSerial := resp.TLS.PeerCertificates[0].SerialNumber
	if oldSerial.Cmp(p.gwServer.Cert.SerialNumber) != 0 {
		t.Fatalf("served %x, want the configured %x", oldSerial, p.gwServer.Cert.SerialNumber)
	}

	next := rotateListener(t, p, 1)
	waitForSerial(t, p, g, next.Cert.SerialNumber)
	if !strings.Contains(g.stderr.String(), "watched files changed") {
		t.Errorf("the reload was not logged as a file change:\n%s", g.stderr)
	}

	// The connection opened before the rotation is still the same one
	// (it still shows the old certificate) and still serves requests.
	resp = get200(t, old, url)
	if got := resp.TLS.PeerCertificates[0].SerialNumber; got.Cmp(oldSerial) != 0 {
		t.Errorf("the old connection was replaced (serial %x, want %x)", got, oldSerial)
	}
	resp = get200(t, clientFor(p), url)
	if got := resp.TLS.PeerCertificates[0].SerialNumber; got.Cmp(next.Cert.SerialNumber) != 0 {
		t.Errorf("a new client sees %x, want %x", got, next.Cert.SerialNumber)
	}
}

// TestWatchRejectsBrokenKey: a key file replaced by garbage is rejected with
// a log line, and the running certificate keeps serving.
func TestWatchRejectsBrokenKey(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p)
	g := startGateway(t, writeConfig(t, p.dir, storyAConfig(p, b, "")))
	url := "https://" + g.addr + "/a/x"
	get200(t, clientFor(p), url)

	replaceFile(t, p.gwKey, []byte("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"))
	waitFor(t, func() bool { return strings.Contains(g.stderr.String(), "reload rejected") }, g.stderr)
	if !strings.Contains(g.stderr.String(), filepath.Base(p.gwKey)) {
		t.Errorf("the rejection does not name the key file:\n%s", g.stderr)
	}
	if got := servedSerial(t, p, g.addr); got.Cmp(p.gwServer.Cert.SerialNumber) != 0 {
		t.Errorf("after a rejected change the gateway serves %x, want the old %x", got, p.gwServer.Cert.SerialNumber)
	}
	get200(t, clientFor(p), url)

	// Fixing the file is picked up too.
	next := rotateListener(t, p, 2)
	waitForSerial(t, p, g, next.Cert.SerialNumber)
}

// TestWatchOffWithNoWatch: --no-watch (here through its environment
// variable) leaves reloads to SIGHUP.
func TestWatchOffWithNoWatch(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p)
	g := startGateway(t, writeConfig(t, p.dir, storyAConfig(p, b, "")), "PORTCULLIS_NO_WATCH=true")
	rotateListener(t, p, 1)
	time.Sleep(time.Second)
	if got := servedSerial(t, p, g.addr); got.Cmp(p.gwServer.Cert.SerialNumber) != 0 {
		t.Fatalf("with --no-watch the certificate changed to %x without a SIGHUP", got)
	}
	if strings.Contains(g.stderr.String(), "configuration reloaded") {
		t.Fatalf("reloaded with --no-watch:\n%s", g.stderr)
	}
}

// TestWatchZeroDropUnderLoad: eight clients with client certificates send
// requests continuously for 30 s, alternating a keep-alive connection and a
// new connection per request, while the listener certificate is rotated,
// the gateway's upstream client certificate is rotated (which replaces the
// API's upstream connection pool) and the configuration rewritten again and
// again. No request may fail; once the changes stop, new handshakes see the
// latest listener certificate and the backend's newest connections the
// latest upstream client certificate.
func TestWatchZeroDropUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about thirty seconds")
	}
	const (
		workers     = 8
		changeEvery = 300 * time.Millisecond
		minChanges  = 50
		maxChanges  = 1000
		maxRequests = 2000000 // per worker; the run is bounded by time first
	)
	loadFor := 30 * time.Second
	p := newPKI(t)
	b := newBackend(t, p)
	secondAPI := `
  - name: api-b
    match: { path_prefix: /b }
    upstream:
      targets: [ ` + b.URL + ` ]
      tls:
        client_certificate: { cert: ` + p.clientCert + `, key: ` + p.clientKey + ` }
        trust: internal
        server_name: localhost
`
	cfgFile := writeConfig(t, p.dir, storyAConfig(p, b, ""))
	g := startGateway(t, cfgFile)
	url := "https://" + g.addr + "/a/x"
	clientCert := p.gwClient.TLS()

	type handshake struct {
		at     time.Time
		serial *big.Int
	}
	var (
		sent, failed atomic.Int64
		stripped     atomic.Int64 // answers under strip_prefix: true
		mu           sync.Mutex
		failures     []string
		handshakes   []handshake
		wg           sync.WaitGroup
	)
	stop := make(chan struct{})
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keep := clientFor(p, clientCert)
			fresh := clientFor(p, clientCert)
			fresh.Transport.(*http.Transport).DisableKeepAlives = true
			defer keep.CloseIdleConnections()
			for i := 0; i < maxRequests; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c := keep
				if i%2 == 1 {
					c = fresh
				}
				sent.Add(1)
				// The handshake of a fresh connection starts here: a request
				// begun before the last certificate settled may rightly see
				// the one before.
				began := time.Now()
				resp, err := c.Get(url)
				if err == nil {
					body, rerr := io.ReadAll(resp.Body)
					resp.Body.Close()
					switch {
					case rerr != nil:
						err = rerr
					case resp.StatusCode != 200:
						err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
					case string(body) == "hello /x":
						stripped.Add(1)
					case string(body) != "hello /a/x":
						err = fmt.Errorf("unexpected body %q", body)
					}
				}
				if err != nil {
					failed.Add(1)
					mu.Lock()
					if len(failures) < 20 {
						failures = append(failures, fmt.Sprintf("worker %d request %d: %v", w, i, err))
					}
					mu.Unlock()
					continue
				}
				if c == fresh {
					mu.Lock()
					handshakes = append(handshakes, handshake{began, resp.TLS.PeerCertificates[0].SerialNumber})
					mu.Unlock()
				}
			}
		}()
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	// Each round rotates the listener certificate and rewrites the
	// configuration (toggling strip_prefix, and adding or removing a second
	// API); every other round also rotates the upstream client certificate:
	// two or three changes per round.
	start := time.Now()
	changes, rounds := 0, 0
	var latest, latestUpstream *testpki.Leaf
	for time.Since(start) < loadFor || changes < minChanges {
		if changes >= maxChanges || time.Since(start) > 3*loadFor {
			break
		}
		rounds++
		latest = rotateListener(t, p, rounds)
		if rounds%2 == 0 {
			latestUpstream = rotateUpstream(t, p, rounds)
			changes++
		}
		cfg := storyAConfig(p, b, "")
		if rounds%2 == 1 {
			cfg = strings.Replace(cfg, "strip_prefix: true", "strip_prefix: false", 1)
		}
		if rounds%3 == 0 {
			cfg += secondAPI
		}
		replaceFile(t, cfgFile, []byte(cfg))
		changes += 2
		time.Sleep(changeEvery)
	}
	rotateDone := time.Now()

	// The last certificates reach new handshakes on both hops; handshakes
	// made after that, while the load continues for another second, all
	// see them.
	waitForSerial(t, p, g, latest.Cert.SerialNumber)
	upstreamCN := latestUpstream.Cert.Subject.CommonName
	waitFor(t, func() bool { return b.lastPeer() == upstreamCN }, g.stderr)
	settled := time.Now()
	// Requests that began on the snapshot before have finished by now.
	time.Sleep(200 * time.Millisecond)
	b.mu.Lock()
	fromRequest := len(b.peers)
	b.mu.Unlock()
	time.Sleep(800 * time.Millisecond)
	close(stop)
	wg.Wait()
	b.mu.Lock()
	lateUpstream := append([]string(nil), b.peers[fromRequest:]...)
	b.mu.Unlock()
	upstreamHandshakes, open := b.conns()

	reloads := strings.Count(g.stderr.String(), "configuration reloaded")
	rejected := strings.Count(g.stderr.String(), "reload rejected")
	t.Logf("%d changes in %d rounds over %v; %d reloads, %d rejected (mid-rotation key/cert pairs); %d requests sent, %d failed; %d new-connection handshakes; %d upstream handshakes, %d upstream connections open at the end",
		changes, rounds, rotateDone.Sub(start).Round(time.Millisecond), reloads, rejected, sent.Load(), failed.Load(), len(handshakes), len(upstreamHandshakes), open)
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed:\n%s", failed.Load(), sent.Load(), strings.Join(failures, "\n"))
	}
	if n := stripped.Load(); n == 0 || n == sent.Load() {
		t.Errorf("%d of %d answers had the prefix stripped: the configuration changes did not take effect", n, sent.Load())
	}
	if changes < minChanges {
		t.Errorf("only %d changes", changes)
	}
	if reloads < rounds/2 {
		t.Errorf("only %d reloads for %d rounds of changes", reloads, rounds)
	}
	late, stale := 0, 0
	for _, h := range handshakes {
		if h.at.After(settled) {
			late++
			if h.serial.Cmp(latest.Cert.SerialNumber) != 0 {
				stale++
			}
		}
	}
	if late == 0 {
		t.Error("no new-connection handshakes after the last rotation settled")
	}
	if stale > 0 {
		t.Errorf("%d of %d handshakes after the last rotation settled saw an older certificate", stale, late)
	}
	if n := len(upstreamHandshakes); n == 0 || upstreamHandshakes[n-1] != upstreamCN {
		t.Errorf("the backend's newest connection does not present the latest upstream certificate %q: handshakes end with %q", upstreamCN, upstreamHandshakes[max(0, n-5):])
	}
	if len(lateUpstream) == 0 {
		t.Error("the backend served no requests after the last upstream rotation settled")
	}
	for i, cn := range lateUpstream {
		if cn != upstreamCN {
			t.Errorf("request %d of %d after the last upstream rotation settled came over a connection presenting %q, want %q", i+1, len(lateUpstream), cn, upstreamCN)
			break
		}
	}
}
