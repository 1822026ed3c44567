package taskfile

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/swarmdns/swarmdns/internal/catalog"
)

// Defaults for Options.
const (
	DefaultDebounce    = 100 * time.Millisecond
	DefaultRescan      = 30 * time.Second
	DefaultMaxFileSize = 16 << 20
)

// maxDelayFactor bounds how long a stream of changes can hold back a
// load: a file written to without pause is still read every
// maxDelayFactor debounce periods.
const maxDelayFactor = 10

// ErrStopped is returned by Start on a Watcher that was stopped.
var ErrStopped = errors.New("task file watcher stopped")

// Options tune a Watcher. The zero value is ready to use.
type Options struct {
	// Debounce is how quiet the directory must stay after a change
	// before the watcher reads the changed files, so that an editor's
	// save in several steps is read once, whole. Zero means
	// DefaultDebounce.
	Debounce time.Duration
	// Rescan is how often the watcher reads the whole directory again,
	// in case a change made no event (some network and FUSE file
	// systems send none). Zero means DefaultRescan; a negative value
	// turns rescans off.
	Rescan time.Duration
	// MaxFileSize is the size in bytes past which a file is rejected
	// unread. Zero means DefaultMaxFileSize.
	MaxFileSize int64
	// Logger receives the watcher's logs, with component=taskfile added.
	// Nil means slog.Default().
	Logger *slog.Logger
}

// FileStatus is what a Watcher knows about one task file.
type FileStatus struct {
	// Path is the file's absolute path; its catalog source is "file:"
	// followed by Path.
	Path string
	// Serving says the catalog holds a state from the file: that of its
	// current content when Err is nil, else that of an earlier content.
	Serving bool
	// Err is why the file's current content is rejected, or nil when
	// the catalog holds it. A problem in the content is a *ParseError or
	// several joined (see ParseErrors).
	Err error
	// Services and Tasks count what the catalog holds from the file.
	Services int
	Tasks    int
	// LoadedAt is when what the catalog holds from the file was put
	// there, or the zero time if nothing is.
	LoadedAt time.Time
	// CheckedAt is when the file was last read.
	CheckedAt time.Time
}

// Watcher keeps the catalog in step with the task files of one
// directory. Each file is a part of its own, put under the node the
// catalog belongs to with the source "file:" followed by the file's
// absolute path. Only the directory's own files are read, not those of
// its subdirectories.
//
// All methods are safe for concurrent use, and Start, Stop and Withdraw
// may be called more than once. Start blocks for the first load; Status
// blocks while a load is in progress, and never longer.
type Watcher struct {
	dir  string
	cat  *catalog.Catalog
	opts Options
	log  *slog.Logger

	stopCh   chan struct{}
	done     chan struct{}
	stopOnce sync.Once

	// mu guards the fields below, and serialises loads
	mu      sync.Mutex
	started bool
	stopped bool
	fw      *fsnotify.Watcher
	// watching is false once the directory was seen removed or renamed,
	// until a rescan watches it again
	watching bool
	dirGone  bool
	files    map[string]*fileState
}

// fileState is what the watcher holds about one file.
type fileState struct {
	// read says hash is that of the content parsed into parsed or perr
	read   bool
	hash   [sha256.Size]byte
	parsed *File
	perr   error
	gone   bool

	served     *catalog.State
	servedHash [sha256.Size]byte
	loadedAt   time.Time
	checkedAt  time.Time

	// err is the current content's rejection, and reported what was
	// last logged about it, so that a rescan does not log it again
	err          error
	reported     string
	reportedHash [sha256.Size]byte
}

// New returns a watcher of the task files in dir that puts them into cat.
// It checks that dir is a directory and does nothing else: Start loads
// the files and starts watching.
func New(dir string, cat *catalog.Catalog, opts Options) (*Watcher, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("tasks: directory %q: %w", dir, err)
	}
	if err := checkDir(abs); err != nil {
		return nil, err
	}
	if err := registerMetrics(); err != nil {
		return nil, err
	}

	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	if opts.Rescan == 0 {
		opts.Rescan = DefaultRescan
	}
	if opts.MaxFileSize <= 0 {
		opts.MaxFileSize = DefaultMaxFileSize
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Watcher{
		dir:    abs,
		cat:    cat,
		opts:   opts,
		log:    log.With("component", "taskfile"),
		stopCh: make(chan struct{}),
		done:   make(chan struct{}),
		files:  make(map[string]*fileState),
	}, nil
}

func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("tasks: directory %q: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("tasks: directory %q: not a directory", dir)
	}
	return nil
}

// Dir returns the absolute path of the directory the watcher watches.
func (w *Watcher) Dir() string { return w.dir }

// Start loads every task file of the directory, puts the valid ones into
// the catalog and starts watching. It blocks until the first load is
// done, so that the catalog answers for the files when it returns; files
// that are rejected are logged and shown by Status, and do not make
// Start fail.
//
// Start takes over what an earlier watcher of the same directory put
// into the catalog: parts of files that are gone are removed, and the
// part of a file that is now rejected stays. A second call does nothing
// and returns nil; a call after Stop returns ErrStopped.
func (w *Watcher) Start() error {
	w.mu.Lock()
	defer w.mu.Unlock()

	switch {
	case w.stopped:
		return ErrStopped
	case w.started:
		return nil
	}
	if err := checkDir(w.dir); err != nil {
		return err
	}

	// watch before the first read, so that no change falls between them
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("tasks: directory %q: watching: %w", w.dir, err)
	}
	if err := fw.Add(w.dir); err != nil {
		fw.Close()
		return fmt.Errorf("tasks: directory %q: watching: %w", w.dir, err)
	}
	w.fw, w.watching = fw, true

	w.adoptLocked()
	w.syncLocked(nil, true)
	w.started = true
	go w.loop()
	return nil
}

// Stop stops watching and waits until the watcher's goroutine has
// returned. It leaves in the catalog what the watcher put there, so that
// a watcher started next on the same directory serves on without a gap.
// Stop may be called more than once, and before Start.
func (w *Watcher) Stop() {
	w.mu.Lock()
	w.stopped = true
	started := w.started
	w.mu.Unlock()

	w.stopOnce.Do(func() { close(w.stopCh) })
	if started {
		<-w.done
	}
}

// Withdraw stops the watcher as Stop does, then removes from the catalog
// every part it put there or took over: for a directory that is no
// longer served. It may be called more than once, and after Stop.
func (w *Watcher) Withdraw() {
	w.Stop()

	w.mu.Lock()
	defer w.mu.Unlock()
	removed := 0
	for _, path := range slices.Sorted(maps.Keys(w.files)) {
		if f := w.files[path]; f.served != nil {
			w.cat.Remove(w.cat.Self(), "file:"+path)
			f.served = nil
			removed++
		}
	}
	if removed > 0 {
		w.log.Info("task directory withdrawn", "dir", w.dir)
	}
}

// Status returns what the watcher knows about each task file it has
// seen, sorted by path.
func (w *Watcher) Status() []FileStatus {
	w.mu.Lock()
	defer w.mu.Unlock()

	out := make([]FileStatus, 0, len(w.files))
	for _, path := range slices.Sorted(maps.Keys(w.files)) {
		f := w.files[path]
		st := FileStatus{
			Path:      path,
			Serving:   f.served != nil,
			Err:       f.err,
			LoadedAt:  f.loadedAt,
			CheckedAt: f.checkedAt,
		}
		if f.served != nil {
			st.Services = len(f.served.Services)
			st.Tasks = len(f.served.Tasks)
		}
		out = append(out, st)
	}
	return out
}

// loop turns events into loads until Stop. It owns fw.
func (w *Watcher) loop() {
	defer close(w.done)
	defer w.shutdown()

	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	var rescan <-chan time.Time
	if w.opts.Rescan > 0 {
		t := time.NewTicker(w.opts.Rescan)
		defer t.Stop()
		rescan = t.C
	}

	b := batch{paths: make(map[string]bool)}
	for {
		select {
		case <-w.stopCh:
			return
		case ev, ok := <-w.fw.Events:
			if !ok {
				return
			}
			if w.event(ev, &b) {
				debounce.Reset(b.delay(time.Now(), w.opts.Debounce))
			}
		case err, ok := <-w.fw.Errors:
			if !ok {
				return
			}
			w.log.Warn("watch error", "err", err)
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				b.full = true
				debounce.Reset(b.delay(time.Now(), w.opts.Debounce))
			}
		case <-debounce.C:
			w.mu.Lock()
			w.syncLocked(slices.Sorted(maps.Keys(b.paths)), b.full)
			w.mu.Unlock()
			b = batch{paths: make(map[string]bool)}
		case <-rescan:
			w.mu.Lock()
			w.syncLocked(nil, true)
			w.mu.Unlock()
		}
	}
}

// shutdown releases what the loop holds when it returns.
func (w *Watcher) shutdown() {
	w.mu.Lock()
	defer w.mu.Unlock()

	if err := w.fw.Close(); err != nil {
		w.log.Warn("closing watch", "err", err)
	}
	// the catalog keeps the files' parts, but this watcher no longer
	// answers for them: the next one counts them again
	for _, f := range w.files {
		if f.served != nil {
			filesGauge.Dec()
		}
		if f.err != nil {
			rejectedGauge.Dec()
		}
	}
}

// batch gathers the changes that one debounce period collects.
type batch struct {
	paths map[string]bool
	full  bool
	first time.Time
}

// delay returns how long to wait before loading the batch: the debounce
// period, cut short so that the batch's first change waits no longer
// than maxDelayFactor periods.
func (b *batch) delay(now time.Time, debounce time.Duration) time.Duration {
	if b.first.IsZero() {
		b.first = now
	}
	left := b.first.Add(maxDelayFactor * debounce).Sub(now)
	return max(0, min(debounce, left))
}

// event adds what ev changed to b, and reports whether it changed
// anything worth a load.
func (w *Watcher) event(ev fsnotify.Event, b *batch) bool {
	if filepath.Clean(ev.Name) == w.dir {
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			w.mu.Lock()
			w.watching = false
			w.mu.Unlock()
			w.log.Warn("task directory moved or removed; serving on until it is back",
				"dir", w.dir)
		}
		return false
	}
	if ev.Op == fsnotify.Chmod {
		return false
	}

	name := filepath.Base(ev.Name)
	if strings.HasPrefix(name, "..") {
		// Kubernetes updates a mounted ConfigMap by swapping a hidden
		// ..data link; the files seen through it change without events
		b.full = true
		return true
	}
	if !isTaskFile(name) {
		return false
	}
	b.paths[filepath.Join(w.dir, name)] = true
	return true
}

// adoptLocked takes over the parts that an earlier watcher of the same
// directory left in the catalog.
func (w *Watcher) adoptLocked() {
	for source, s := range w.cat.NodeParts(w.cat.Self()) {
		path, ok := strings.CutPrefix(source, "file:")
		if !ok || filepath.Dir(path) != w.dir {
			continue
		}
		w.files[path] = &fileState{served: s}
		filesGauge.Inc()
	}
}

// syncLocked reads the files at paths, or every file of the directory
// and every file known when full is set, and brings the catalog in step
// with them.
func (w *Watcher) syncLocked(paths []string, full bool) {
	start := time.Now()
	if full {
		listed, ok := w.listLocked()
		if !ok {
			return
		}
		paths = slices.Concat(paths, listed, slices.Collect(maps.Keys(w.files)))
		slices.Sort(paths)
		paths = slices.Compact(paths)
	}
	for _, path := range paths {
		w.readLocked(path, start)
	}

	changed := w.removeGoneLocked()
	parsed := make(map[string]*File)
	served := make(map[string]*catalog.State)
	for path, f := range w.files {
		if f.parsed != nil {
			parsed[path] = f.parsed
		}
		if f.served != nil {
			served[path] = f.served
		}
	}
	refErrs := settle(parsed, served)
	for _, path := range slices.Sorted(maps.Keys(w.files)) {
		err := w.files[path].perr
		if err == nil {
			err = refErrs[path]
		}
		changed = w.applyLocked(path, err, start) || changed
	}
	if changed {
		lastReload.SetToCurrentTime()
	}
	w.log.Debug("task directory read", "dir", w.dir, "duration_s",
		time.Since(start).Seconds())
}

// listLocked lists the directory for a full sync, and watches it again
// if it was moved away or removed and is back. It reports false when the
// directory cannot be read: then the catalog keeps what it has.
func (w *Watcher) listLocked() ([]string, bool) {
	listed, err := listTaskFiles(w.dir)
	if err != nil {
		if !w.dirGone {
			w.log.Warn("task directory unreadable; serving on", "dir", w.dir, "err", err)
		}
		w.dirGone = true
		return nil, false
	}
	if w.dirGone || !w.watching {
		// the old watch may follow the directory to where it was moved
		_ = w.fw.Remove(w.dir)
		if err := w.fw.Add(w.dir); err != nil {
			w.log.Warn("watching task directory", "dir", w.dir, "err", err)
		} else {
			w.watching = true
		}
		if w.dirGone {
			w.log.Info("task directory back", "dir", w.dir)
		}
		w.dirGone = false
	}
	return listed, true
}

// readLocked reads the file at path and parses it if its content
// changed since it was last read.
func (w *Watcher) readLocked(path string, now time.Time) {
	f := w.files[path]
	if f == nil {
		f = &fileState{}
		w.files[path] = f
	}
	f.checkedAt = now

	data, err := w.readFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		f.gone = true
		return
	case err != nil:
		f.read, f.parsed, f.perr = false, nil, err
		return
	}
	f.gone = false
	sum := sha256.Sum256(data)
	if f.read && sum == f.hash {
		return
	}
	f.read, f.hash = true, sum
	f.parsed, f.perr = ParseFile(path, data)
}

// readFile reads a task file, treating a path that is no longer a
// regular file as gone.
func (w *Watcher) readFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fs.ErrNotExist
	}
	if fi.Size() > w.opts.MaxFileSize {
		return nil, fmt.Errorf("task file %q is %d bytes, more than the limit of %d",
			path, fi.Size(), w.opts.MaxFileSize)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading task file: %w", err)
	}
	if int64(len(data)) > w.opts.MaxFileSize {
		return nil, fmt.Errorf("task file %q is more than the limit of %d bytes", path,
			w.opts.MaxFileSize)
	}
	return data, nil
}

// removeGoneLocked drops the files that are gone, and their parts. It
// reports whether the catalog changed.
//
// TODO: an editor that pauses longer than the debounce period between
// moving a file away and writing its new version makes the file's tasks
// disappear until the new version is read.
func (w *Watcher) removeGoneLocked() bool {
	changed := false
	for path, f := range w.files {
		if !f.gone {
			continue
		}
		if f.served != nil {
			w.cat.Remove(w.cat.Self(), "file:"+path)
			filesGauge.Dec()
			w.log.Info("task file removed", "file", path)
			changed = true
		}
		if f.err != nil {
			rejectedGauge.Dec()
		}
		delete(w.files, path)
	}
	return changed
}

// applyLocked acts on the outcome of a file's check: err is nil when its
// current content is to be served. It reports whether the catalog
// changed.
func (w *Watcher) applyLocked(path string, err error, now time.Time) bool {
	f := w.files[path]
	if err != nil {
		if f.err == nil {
			rejectedGauge.Inc()
		}
		f.err = err
		if msg := err.Error(); msg != f.reported || f.hash != f.reportedHash {
			f.reported, f.reportedHash = msg, f.hash
			loadsTotal.WithLabelValues(resultRejected).Inc()
			w.log.Warn("task file rejected", "file", path, "err", err)
		}
		return false
	}

	if f.parsed == nil {
		return false
	}
	wasRejected := f.err != nil
	if wasRejected {
		rejectedGauge.Dec()
	}
	f.err, f.reported = nil, ""
	if f.served != nil && f.servedHash == f.hash {
		if wasRejected {
			// valid again as it was when last served: nothing to put
			loadsTotal.WithLabelValues(resultOK).Inc()
			w.log.Info("task file loaded", "file", path)
		}
		return false
	}

	if f.served == nil {
		filesGauge.Inc()
	}
	w.cat.Put(w.cat.Self(), "file:"+path, f.parsed.State)
	f.served, f.servedHash, f.loadedAt = f.parsed.State, f.hash, now
	loadsTotal.WithLabelValues(resultOK).Inc()
	w.log.Info("task file loaded", "file", path)
	return true
}
