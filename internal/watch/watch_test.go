package watch

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const testDebounce = 60 * time.Millisecond

// quiet is how long a test waits to be sure no (further) signal comes: well
// past the debounce.
const quiet = 5 * testDebounce

func newWatcher(t *testing.T, paths []string, o Options) *Watcher {
	t.Helper()
	if o.Debounce == 0 {
		o.Debounce = testDebounce
	}
	if o.Poll == 0 {
		o.Poll = -1 // only notifications, unless the test asks
	}
	o.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w, err := New(paths, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}

func write(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// replace writes content to a temporary file and renames it over p.
func replace(t *testing.T, p, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".tmp")
	write(t, tmp, content)
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

func expectSignal(t *testing.T, w *Watcher, within time.Duration) {
	t.Helper()
	select {
	case <-w.C():
	case <-time.After(within):
		t.Fatalf("no signal within %v", within)
	}
}

func expectNoSignal(t *testing.T, w *Watcher, during time.Duration) {
	t.Helper()
	select {
	case <-w.C():
		t.Fatalf("unexpected signal")
	case <-time.After(during):
	}
}

// expectOneSignal waits for a signal and then makes sure no second one
// follows.
func expectOneSignal(t *testing.T, w *Watcher) {
	t.Helper()
	expectSignal(t, w, 5*time.Second)
	expectNoSignal(t, w, quiet)
}

func TestWriteInPlace(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "tls.crt")
	write(t, p, "one")
	w := newWatcher(t, []string{p}, Options{})
	write(t, p, "two")
	expectOneSignal(t, w)
}

func TestAtomicRenameGivesExactlyOneSignalAfterDebounce(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "tls.crt")
	write(t, p, "one")
	w := newWatcher(t, []string{p}, Options{})
	start := time.Now()
	replace(t, p, "two")
	expectSignal(t, w, 5*time.Second)
	if d := time.Since(start); d < testDebounce {
		t.Errorf("signalled after %v, before the %v debounce", d, testDebounce)
	}
	expectNoSignal(t, w, quiet)
}

func TestKubernetesSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	mustDo := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// The layout the kubelet writes for a mounted secret:
	//   ..2024_01_01_00_00_00.1/tls.crt
	//   ..data -> ..2024_01_01_00_00_00.1
	//   tls.crt -> ..data/tls.crt
	gen := func(name, content string) {
		mustDo(os.Mkdir(filepath.Join(dir, name), 0o700))
		write(t, filepath.Join(dir, name, "tls.crt"), content)
	}
	gen("..2024_01_01_00_00_00.1", "one")
	mustDo(os.Symlink("..2024_01_01_00_00_00.1", filepath.Join(dir, "..data")))
	mustDo(os.Symlink("..data/tls.crt", filepath.Join(dir, "tls.crt")))
	p := filepath.Join(dir, "tls.crt")
	w := newWatcher(t, []string{p}, Options{})

	// An update: new timestamped directory, "..data_tmp" pointing at it,
	// renamed over "..data", old directory removed. tls.crt itself is
	// untouched.
	gen("..2024_01_02_00_00_00.2", "two")
	mustDo(os.Symlink("..2024_01_02_00_00_00.2", filepath.Join(dir, "..data_tmp")))
	mustDo(os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	mustDo(os.RemoveAll(filepath.Join(dir, "..2024_01_01_00_00_00.1")))
	expectOneSignal(t, w)
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Fatalf("content through the symlinks = %q", b)
	}
}

func TestBurstGivesOneSignal(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.yaml")
	write(t, p, "v0")
	w := newWatcher(t, []string{p}, Options{Debounce: 200 * time.Millisecond})
	for i := 1; i <= 20; i++ {
		if i%2 == 0 {
			replace(t, p, fmt.Sprintf("v%d", i))
		} else {
			write(t, p, fmt.Sprintf("v%d", i))
		}
		time.Sleep(2 * time.Millisecond)
	}
	expectSignal(t, w, 5*time.Second)
	expectNoSignal(t, w, time.Second)
}

func TestTouchWithoutChangeGivesNoSignal(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "tls.key")
	write(t, p, "same")
	w := newWatcher(t, []string{p}, Options{})
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	write(t, p, "same")
	replace(t, p, "same")
	expectNoSignal(t, w, quiet)
}

func TestUnrelatedFileInSameDirGivesNoSignal(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "tls.crt")
	write(t, p, "one")
	w := newWatcher(t, []string{p}, Options{})
	other := filepath.Join(dir, "other.txt")
	write(t, other, "x")
	replace(t, other, "y")
	if err := os.Remove(other); err != nil {
		t.Fatal(err)
	}
	expectNoSignal(t, w, quiet)
}

func TestMissingFileAppearsAndDisappears(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ca.pem")
	w := newWatcher(t, []string{p}, Options{})
	replace(t, p, "ca")
	expectOneSignal(t, w)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	expectOneSignal(t, w)
}

func TestPollFallbackWithoutNotifications(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "crl.pem")
	write(t, p, "one")
	w := newWatcher(t, []string{p}, Options{Poll: 50 * time.Millisecond, noNotify: true})
	if w.fsw != nil {
		t.Fatal("notifications should be off")
	}
	expectNoSignal(t, w, 200*time.Millisecond) // polls see no change
	write(t, p, "two")
	expectSignal(t, w, 5*time.Second)
	expectNoSignal(t, w, 200*time.Millisecond)
}

func TestSetPaths(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	a := filepath.Join(dirA, "a.pem")
	b := filepath.Join(dirB, "b.pem")
	write(t, a, "a1")
	write(t, b, "b1")
	w := newWatcher(t, []string{a}, Options{})
	if err := w.SetPaths([]string{b}); err != nil {
		t.Fatal(err)
	}
	if got := w.Paths(); len(got) != 1 || got[0] != b {
		t.Fatalf("Paths = %q", got)
	}
	// The baseline of a new path is its content at SetPaths.
	expectNoSignal(t, w, quiet)
	replace(t, a, "a2")
	expectNoSignal(t, w, quiet)
	replace(t, b, "b2")
	expectOneSignal(t, w)

	// Back to a: its baseline is now a2.
	if err := w.SetPaths([]string{a, b}); err != nil {
		t.Fatal(err)
	}
	expectNoSignal(t, w, quiet)
	write(t, a, "a3")
	expectOneSignal(t, w)
}

func TestUnwatchableDirectoryIsRetriedAtPoll(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "later")
	p := filepath.Join(dir, "tls.crt")
	w := newWatcher(t, []string{p}, Options{Poll: 100 * time.Millisecond})
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, p, "one")
	expectSignal(t, w, 5*time.Second) // found by the poll, which also watches dir now
	deadline := time.Now().Add(5 * time.Second)
	for {
		w.mu.Lock()
		active := w.dirs[dir]
		w.mu.Unlock()
		if active {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("directory never watched")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCloseIsIdempotentAndStopsSignals(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x")
	write(t, p, "one")
	w := newWatcher(t, []string{p}, Options{})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	write(t, p, "two")
	expectNoSignal(t, w, quiet)
}
