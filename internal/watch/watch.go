package watch

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Defaults for Options.
const (
	DefaultDebounce = 250 * time.Millisecond
	DefaultPoll     = 30 * time.Second
)

// maxWaitFactor bounds how long a stream of events can postpone a check:
// at most this many Debounce periods after the first event of a burst.
const maxWaitFactor = 10

// hashMissing is the hash of a file that does not exist.
const hashMissing = "missing"

// Options tune a Watcher. The zero value is usable.
type Options struct {
	// Debounce is how long the files must be quiet after an event before
	// they are re-hashed. Default 250ms.
	Debounce time.Duration
	// Poll is the interval of the fallback re-read, which catches changes
	// no event reported (network file systems, files reached through
	// symlinks into other directories). Default 30s; negative disables it.
	Poll time.Duration
	// Logger receives change and watch-failure events. Default: discarded.
	Logger *slog.Logger

	// noNotify turns file-system notifications off so tests can exercise
	// the poll fallback alone.
	noNotify bool
}

// Watcher reports changes to the content of a set of files. See the
// package documentation.
type Watcher struct {
	o   Options
	log *slog.Logger
	c   chan struct{}
	fsw *fsnotify.Watcher // nil when notifications are unavailable

	mu     sync.Mutex
	hashes map[string]string // watched path → last seen content hash
	dirs   map[string]bool   // directory of a watched path → watch active

	done      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
}

// New starts watching paths (made absolute). The current content of every
// path is the baseline: only later changes are signalled. Missing files are
// allowed and count as changed when they appear. If file-system
// notifications cannot be set up, New logs a warning and relies on the
// periodic re-read.
func New(paths []string, o Options) (*Watcher, error) {
	if o.Debounce <= 0 {
		o.Debounce = DefaultDebounce
	}
	if o.Poll == 0 {
		o.Poll = DefaultPoll
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	abs, err := absPaths(paths)
	if err != nil {
		return nil, err
	}
	w := &Watcher{
		o:       o,
		log:     o.Logger,
		c:       make(chan struct{}, 1),
		hashes:  map[string]string{},
		dirs:    map[string]bool{},
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	if !o.noNotify {
		fsw, err := fsnotify.NewWatcher()
		if err != nil {
			w.log.Warn("file notifications unavailable; changes are found by the periodic re-read only", "poll", o.Poll.String(), "error", err.Error())
		} else {
			w.fsw = fsw
		}
	}
	w.mu.Lock()
	w.setLocked(abs)
	w.mu.Unlock()
	go w.run()
	return w, nil
}

// C receives a value after the content of a watched file changed. It is
// buffered (1): changes that happen before the receiver catches up collapse
// into one signal, and the Watcher never blocks on it. C is not closed by
// Close.
func (w *Watcher) C() <-chan struct{} { return w.c }

// SetPaths replaces the watched set. Paths already watched keep their last
// seen hash (so a change still pending is reported); new paths take their
// current content as the baseline. Directories no longer needed stop being
// watched.
func (w *Watcher) SetPaths(paths []string) error {
	abs, err := absPaths(paths)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.setLocked(abs)
	return nil
}

// Paths returns the watched paths, sorted.
func (w *Watcher) Paths() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.hashes))
	for p := range w.hashes {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Close stops watching. It is safe to call more than once.
func (w *Watcher) Close() error {
	var err error
	w.closeOnce.Do(func() {
		close(w.done)
		<-w.stopped
		if w.fsw != nil {
			err = w.fsw.Close()
		}
	})
	return err
}

func absPaths(paths []string) ([]string, error) {
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		if p == "" {
			continue
		}
		a, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", p, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// setLocked installs paths as the watched set; w.mu is held.
func (w *Watcher) setLocked(paths []string) {
	hashes := make(map[string]string, len(paths))
	needed := map[string]bool{}
	for _, p := range paths {
		if h, ok := w.hashes[p]; ok {
			hashes[p] = h
		} else {
			hashes[p] = hashFile(p)
		}
		needed[filepath.Dir(p)] = true
	}
	w.hashes = hashes
	for d, active := range w.dirs {
		if needed[d] {
			continue
		}
		if active && w.fsw != nil {
			_ = w.fsw.Remove(d)
		}
		delete(w.dirs, d)
	}
	for d := range needed {
		if _, ok := w.dirs[d]; !ok {
			w.dirs[d] = w.addDir(d)
		}
	}
}

// addDir starts notifications for directory d and reports whether that
// worked. A directory that cannot be watched (yet) is retried at every poll.
func (w *Watcher) addDir(d string) bool {
	if w.fsw == nil {
		return false
	}
	if err := w.fsw.Add(d); err != nil {
		w.log.Warn("cannot watch directory; its files are re-read periodically", "dir", d, "poll", w.o.Poll.String(), "error", err.Error())
		return false
	}
	return true
}

// rewatch retries directories whose watch failed or was lost (a directory
// removed and created again).
func (w *Watcher) rewatch() {
	if w.fsw == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for d, active := range w.dirs {
		if active {
			continue
		}
		_ = w.fsw.Remove(d) // a renamed directory may still be registered
		if err := w.fsw.Add(d); err == nil {
			w.dirs[d] = true
			w.log.Info("watching directory again", "dir", d)
		}
	}
}

// relevant reports whether ev may have changed a watched file: an event on
// a watched name, a Kubernetes "..data" symlink swap next to one, or the
// loss of a watched directory.
func (w *Watcher) relevant(ev fsnotify.Event) bool {
	name := filepath.Clean(ev.Name)
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.hashes[name]; ok {
		return true
	}
	if _, ok := w.dirs[filepath.Dir(name)]; ok && filepath.Base(name) == "..data" {
		return true
	}
	if active, ok := w.dirs[name]; ok && active && ev.Has(fsnotify.Remove|fsnotify.Rename) {
		w.dirs[name] = false // the kernel dropped the watch; rewatch retries
		return true
	}
	return false
}

func (w *Watcher) run() {
	defer close(w.stopped)
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w.fsw != nil {
		events, errs = w.fsw.Events, w.fsw.Errors
	}
	var poll <-chan time.Time
	if w.o.Poll > 0 {
		t := time.NewTicker(w.o.Poll)
		defer t.Stop()
		poll = t.C
	}
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	pending := false
	var first time.Time
	arm := func() {
		now := time.Now()
		if !pending {
			pending, first = true, now
		}
		d := min(w.o.Debounce, first.Add(maxWaitFactor*w.o.Debounce).Sub(now))
		debounce.Reset(max(d, 0))
	}
	for {
		select {
		case <-w.done:
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if w.relevant(ev) {
				w.log.Debug("watched file event", "file", ev.Name, "op", ev.Op.String())
				arm()
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				arm() // events were lost: look at everything
				continue
			}
			w.log.Warn("file watch error; the periodic re-read still runs", "error", err.Error())
		case <-debounce.C:
			pending = false
			w.check("file event or re-read, settled")
		case <-poll:
			w.rewatch()
			// A change found by polling settles for one debounce before it
			// is signalled, like an event: a file caught half-written
			// would otherwise signal twice (half, then whole).
			if w.differs() {
				w.log.Debug("periodic re-read found a change")
				arm()
			} else {
				w.log.Debug("watched files unchanged", "trigger", "periodic re-read")
			}
		}
	}
}

// differs reports whether any watched file's content differs from the last
// seen, without recording it.
func (w *Watcher) differs() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for p, old := range w.hashes {
		if hashFile(p) != old {
			return true
		}
	}
	return false
}

// check re-hashes every watched file and signals C if any differs from the
// last seen content.
func (w *Watcher) check(trigger string) {
	w.mu.Lock()
	var changed []string
	for p, old := range w.hashes {
		if h := hashFile(p); h != old {
			w.hashes[p] = h
			changed = append(changed, p)
		}
	}
	w.mu.Unlock()
	if len(changed) == 0 {
		w.log.Debug("watched files unchanged", "trigger", trigger)
		return
	}
	slices.Sort(changed)
	w.log.Info("watched files changed", "files", changed, "trigger", trigger)
	select {
	case w.c <- struct{}{}:
	default: // a signal is already pending; it covers this change
	}
}

// hashFile returns the hex SHA-256 of the file's content (following
// symlinks), "missing" if it does not exist, or a description of the error
// (so that a file becoming readable again counts as a change).
func hashFile(p string) string {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return hashMissing
	}
	if err != nil {
		return "error: " + err.Error()
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "error: " + err.Error()
	}
	return hex.EncodeToString(h.Sum(nil))
}
