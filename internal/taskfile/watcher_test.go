package taskfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/swarmdns/swarmdns/internal/catalog"
)

// discard is a logger for tests that do not read the logs.
var discard = slog.New(slog.DiscardHandler)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait for the watcher: generous, since a
// loaded machine may be slow, and never reached when things work.
const waitTimeout = 10 * time.Second

// logBuffer collects a watcher's logs for a test to read.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testWatcher is a started watcher on a temporary directory.
type testWatcher struct {
	t    *testing.T
	dir  string
	cat  *catalog.Catalog
	w    *Watcher
	logs *logBuffer
}

// startWatcher starts a watcher on dir with a short debounce and no
// rescans unless opts says otherwise.
func startWatcher(t *testing.T, dir string, opts Options) *testWatcher {
	t.Helper()
	tw := &testWatcher{t: t, dir: dir, cat: catalog.New("n1"), logs: &logBuffer{}}
	if opts.Debounce == 0 {
		opts.Debounce = 10 * time.Millisecond
	}
	if opts.Rescan == 0 {
		opts.Rescan = -1
	}
	opts.Logger = slog.New(slog.NewTextHandler(tw.logs, &slog.HandlerOptions{
		Level: slog.LevelDebug,
	}))
	w, err := New(dir, tw.cat, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	tw.w = w
	return tw
}

// path returns the absolute path of name in the watched directory.
func (tw *testWatcher) path(name string) string {
	return filepath.Join(tw.w.Dir(), name)
}

// part returns what the catalog holds from the file called name.
func (tw *testWatcher) part(name string) *catalog.State {
	return tw.cat.NodeParts(tw.cat.Self())["file:"+tw.path(name)]
}

// addrs returns the addresses the catalog holds for service, one per
// task, as "slot=ip" strings in slot order.
func (tw *testWatcher) addrs(service string) string {
	e := tw.cat.Snapshot().Service(service)
	if e == nil {
		return ""
	}
	var out []string
	for _, task := range e.Tasks {
		for _, a := range task.Addrs {
			out = append(out, fmt.Sprintf("%d=%s", task.Slot, a.IP))
		}
	}
	return strings.Join(out, " ")
}

// status returns the watcher's status of the file called name.
func (tw *testWatcher) status(name string) (FileStatus, bool) {
	for _, st := range tw.w.Status() {
		if st.Path == tw.path(name) {
			return st, true
		}
	}
	return FileStatus{}, false
}

// waitFor polls cond until it holds, failing the test at the deadline.
func (tw *testWatcher) waitFor(what string, cond func() bool) {
	tw.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			tw.t.Fatalf("gave up waiting for %s; logs:\n%s", what, tw.logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitAddrs waits until the catalog holds want for service.
func (tw *testWatcher) waitAddrs(service, want string) {
	tw.t.Helper()
	var got string
	tw.waitFor(fmt.Sprintf("%s to be %q (last %q)", service, want, got), func() bool {
		got = tw.addrs(service)
		return got == want
	})
}

// writeFile writes a file in dir, making it as an editor that saves in
// place does.
func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// networksYAML defines frontend and backend.
const networksYAML = `networks:
  - {name: frontend, subnet: 10.0.1.0/24}
  - {name: backend, subnet: 10.0.2.0/24}
`

// serviceYAML returns a file with one service on network, a task per ip,
// and the networks of networksYAML when define is set.
func serviceYAML(define bool, name, network string, ips ...string) string {
	var b strings.Builder
	if define {
		b.WriteString(networksYAML)
	}
	fmt.Fprintf(&b, "services:\n  - name: %s\n    tasks:\n", name)
	for i, ip := range ips {
		fmt.Fprintf(&b, "      - {slot: %d, addresses: {%s: %s}}\n", i+1, network, ip)
	}
	return b.String()
}

// metricValue returns the value of a counter or gauge.
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	if c := out.GetCounter(); c != nil {
		return c.GetValue()
	}
	return out.GetGauge().GetValue()
}

func TestWatcherInitialLoad(t *testing.T) {
	dir := t.TempDir()
	// the file that uses the networks sorts before the file defining them
	writeFile(t, dir, "a-web.yaml", serviceYAML(false, "web", "frontend", "10.0.1.11"))
	writeFile(t, dir, "b-db.json", `{"services": [{"name": "db",
		"tasks": [{"slot": 1, "addresses": {"backend": "10.0.2.31"}}]}]}`)
	writeFile(t, dir, "z-networks.yml", networksYAML)

	tw := startWatcher(t, dir, Options{})
	// Start returns once the first load is done: no waiting here
	tests := []struct {
		service string
		want    string
	}{
		{service: "web", want: "1=10.0.1.11"},
		{service: "db", want: "1=10.0.2.31"},
	}
	for _, tc := range tests {
		t.Run(tc.service, func(t *testing.T) {
			if got := tw.addrs(tc.service); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	if got := len(tw.w.Status()); got != 3 {
		t.Errorf("got %d files in status, want 3", got)
	}
}

func TestWatcherCreateWriteDelete(t *testing.T) {
	dir := t.TempDir()
	tw := startWatcher(t, dir, Options{})

	writeFile(t, dir, "web.yaml", serviceYAML(true, "web", "frontend", "10.0.1.11"))
	tw.waitAddrs("web", "1=10.0.1.11")

	writeFile(t, dir, "web.yaml", serviceYAML(true, "web", "frontend", "10.0.1.11",
		"10.0.1.12"))
	tw.waitAddrs("web", "1=10.0.1.11 2=10.0.1.12")

	if err := os.Remove(filepath.Join(dir, "web.yaml")); err != nil {
		t.Fatal(err)
	}
	tw.waitAddrs("web", "")
	tw.waitFor("the file to leave the status", func() bool {
		_, ok := tw.status("web.yaml")
		return !ok
	})
}

func TestWatcherRenameSave(t *testing.T) {
	tests := []struct {
		name string
		save func(t *testing.T, dir, content string)
	}{
		{
			// write a temporary file beside the original, rename it over
			name: "rename over",
			save: func(t *testing.T, dir, content string) {
				writeFile(t, dir, ".web.yaml.tmp", content)
				err := os.Rename(filepath.Join(dir, ".web.yaml.tmp"),
					filepath.Join(dir, "web.yaml"))
				if err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			// move the original away as a backup, write a new file
			name: "backup and create",
			save: func(t *testing.T, dir, content string) {
				err := os.Rename(filepath.Join(dir, "web.yaml"), filepath.Join(dir, "web.yaml~"))
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, dir, "web.yaml", content)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "web.yaml", serviceYAML(true, "web", "frontend", "10.0.1.11"))
			tw := startWatcher(t, dir, Options{})
			tw.waitAddrs("web", "1=10.0.1.11")

			for i := 2; i <= 4; i++ {
				ip := fmt.Sprintf("10.0.1.%d", 10+i)
				tc.save(t, dir, serviceYAML(true, "web", "frontend", ip))
				tw.waitAddrs("web", "1="+ip)
			}
			if got := len(tw.w.Status()); got != 1 {
				t.Errorf("got %d files in status, want 1: %+v", got, tw.w.Status())
			}
		})
	}
}

func TestWatcherRejectsBrokenFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "networks.yaml", networksYAML)
	writeFile(t, dir, "web.yaml", serviceYAML(false, "web", "frontend", "10.0.1.11"))
	writeFile(t, dir, "db.yaml", serviceYAML(false, "db", "backend", "10.0.2.31"))
	tw := startWatcher(t, dir, Options{})
	rejected := metricValue(t, loadsTotal.WithLabelValues(resultRejected))

	before := tw.part("web.yaml")
	writeFile(t, dir, "web.yaml", "services:\n  - name: web\n    tasks:\n"+
		"      - {slot: 1, addresses: {frontend: 10.0.9.11}}\n")
	tw.waitFor("web.yaml to be rejected", func() bool {
		st, _ := tw.status("web.yaml")
		return st.Err != nil
	})

	st, _ := tw.status("web.yaml")
	wantErr := tw.path("web.yaml") + ":4:41: address 10.0.9.11 is outside network"
	tests := []struct {
		name string
		got  any
		want any
	}{
		{name: "error", got: strings.HasPrefix(st.Err.Error(), wantErr), want: true},
		{name: "serving", got: st.Serving, want: true},
		{name: "tasks", got: st.Tasks, want: 1},
		{name: "part kept", got: tw.part("web.yaml") == before, want: true},
		{name: "answers kept", got: tw.addrs("web"), want: "1=10.0.1.11"},
		{name: "logged", got: strings.Contains(tw.logs.String(), "task file rejected"),
			want: true},
		{name: "counted", got: metricValue(t,
			loadsTotal.WithLabelValues(resultRejected)) - rejected, want: 1.0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}

	// other files load while web.yaml is broken
	writeFile(t, dir, "db.yaml", serviceYAML(false, "db", "backend", "10.0.2.32"))
	tw.waitAddrs("db", "1=10.0.2.32")
	if got := tw.addrs("web"); got != "1=10.0.1.11" {
		t.Errorf("got web %q, want %q", got, "1=10.0.1.11")
	}

	// fixed, it loads again
	writeFile(t, dir, "web.yaml", serviceYAML(false, "web", "frontend", "10.0.1.12"))
	tw.waitAddrs("web", "1=10.0.1.12")
	if st, _ := tw.status("web.yaml"); st.Err != nil {
		t.Errorf("got error %v, want none", st.Err)
	}
}

func TestWatcherRejectsSyntaxError(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "web.yaml", serviceYAML(true, "web", "frontend", "10.0.1.11"))
	tw := startWatcher(t, dir, Options{})

	writeFile(t, dir, "web.yaml", "services: [\n")
	tw.waitFor("web.yaml to be rejected", func() bool {
		st, _ := tw.status("web.yaml")
		return st.Err != nil
	})
	st, _ := tw.status("web.yaml")
	if pe := ParseErrors(st.Err); len(pe) != 1 || pe[0].Line != 2 {
		t.Errorf("got %v, want one problem on line 2", st.Err)
	}
	if got := tw.addrs("web"); got != "1=10.0.1.11" {
		t.Errorf("got %q, want %q", got, "1=10.0.1.11")
	}
}

func TestWatcherNetworksAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "web.yaml", serviceYAML(false, "web", "backend", "10.0.2.11"))
	tw := startWatcher(t, dir, Options{})

	st, _ := tw.status("web.yaml")
	if !errors.Is(st.Err, ErrUnknownNetwork) || st.Serving {
		t.Fatalf("got status %+v, want an unknown network and nothing served", st)
	}

	// defining the network elsewhere loads the file that uses it
	writeFile(t, dir, "networks.yaml", networksYAML)
	tw.waitAddrs("web", "1=10.0.2.11")

	// the definition gone, the user is rejected and keeps its state
	if err := os.Remove(filepath.Join(dir, "networks.yaml")); err != nil {
		t.Fatal(err)
	}
	tw.waitFor("web.yaml to be rejected", func() bool {
		st, _ := tw.status("web.yaml")
		return errors.Is(st.Err, ErrUnknownNetwork)
	})
	if got := tw.addrs("web"); got != "1=10.0.2.11" {
		t.Errorf("got %q, want %q", got, "1=10.0.2.11")
	}

	// an address outside the subnet another file gives is rejected
	writeFile(t, dir, "networks.yaml", networksYAML)
	tw.waitFor("web.yaml to be accepted", func() bool {
		st, _ := tw.status("web.yaml")
		return st.Err == nil
	})
	writeFile(t, dir, "web.yaml", serviceYAML(false, "web", "backend", "10.0.1.11"))
	tw.waitFor("web.yaml to be rejected", func() bool {
		st, _ := tw.status("web.yaml")
		return st.Err != nil && strings.Contains(st.Err.Error(), "outside network")
	})
	if got := tw.addrs("web"); got != "1=10.0.2.11" {
		t.Errorf("got %q, want %q", got, "1=10.0.2.11")
	}
}

func TestWatcherIgnoresOtherFiles(t *testing.T) {
	dir := t.TempDir()
	tw := startWatcher(t, dir, Options{})

	ignored := []string{".web.yaml", "web.yaml~", "#web.yaml#", ".#web.yaml", "web.yaml.swp",
		"web.yaml.tmp", "notes.txt", "4913"}
	for _, name := range ignored {
		writeFile(t, dir, name, serviceYAML(true, "ghost", "frontend", "10.0.1.66"))
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "sub.yaml"), "deep.yaml",
		serviceYAML(true, "ghost", "frontend", "10.0.1.66"))

	// events come in order: once the sentinel is loaded, the files above
	// have been seen
	writeFile(t, dir, "web.YAML", serviceYAML(true, "web", "frontend", "10.0.1.11"))
	tw.waitAddrs("web", "1=10.0.1.11")

	if got := tw.addrs("ghost"); got != "" {
		t.Errorf("got ghost %q, want nothing", got)
	}
	if got := len(tw.w.Status()); got != 1 {
		t.Errorf("got %d files in status, want 1: %+v", got, tw.w.Status())
	}
}

func TestWatcherRescan(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "tasks.d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "web.yaml", serviceYAML(true, "web", "frontend", "10.0.1.11"))
	tw := startWatcher(t, dir, Options{Rescan: 20 * time.Millisecond})
	tw.waitAddrs("web", "1=10.0.1.11")

	// the directory moved away: its watch is lost, answers stay
	if err := os.Rename(dir, filepath.Join(parent, "old")); err != nil {
		t.Fatal(err)
	}
	tw.waitFor("the directory to be missed", func() bool {
		return strings.Contains(tw.logs.String(), "task directory unreadable")
	})
	if got := tw.addrs("web"); got != "1=10.0.1.11" {
		t.Errorf("got %q, want %q", got, "1=10.0.1.11")
	}

	// a new directory in its place is found by a rescan and watched
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "web.yaml", serviceYAML(true, "web", "frontend", "10.0.1.12"))
	tw.waitAddrs("web", "1=10.0.1.12")
	writeFile(t, dir, "db.yaml", serviceYAML(false, "db", "backend", "10.0.2.31"))
	tw.waitAddrs("db", "1=10.0.2.31")
}

func TestWatcherTakesOver(t *testing.T) {
	dir := t.TempDir()
	cat := catalog.New("n1")
	writeFile(t, dir, "web.yaml", serviceYAML(true, "web", "frontend", "10.0.1.11"))
	writeFile(t, dir, "db.yaml", serviceYAML(true, "db", "backend", "10.0.2.31"))
	writeFile(t, dir, "api.yaml", serviceYAML(true, "api", "frontend", "10.0.1.21"))
	first, err := New(dir, cat, Options{Rescan: -1, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	first.Stop()

	// while no watcher runs: one file goes, one breaks, one changes
	if err := os.Remove(filepath.Join(dir, "db.yaml")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "web.yaml", "services: [\n")
	writeFile(t, dir, "api.yaml", serviceYAML(true, "api", "frontend", "10.0.1.22"))

	second, err := New(dir, cat, Options{Rescan: -1, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	defer second.Stop()

	snap := cat.Snapshot()
	tests := []struct {
		service string
		want    int
	}{
		{service: "web", want: 1},
		{service: "db", want: 0},
		{service: "api", want: 1},
	}
	for _, tc := range tests {
		t.Run(tc.service, func(t *testing.T) {
			got := 0
			if e := snap.Service(tc.service); e != nil {
				got = len(e.Tasks)
			}
			if got != tc.want {
				t.Errorf("got %d tasks, want %d", got, tc.want)
			}
		})
	}
	if got := snap.Service("api").Tasks[0].Addrs[0].IP.String(); got != "10.0.1.22" {
		t.Errorf("got api at %s, want 10.0.1.22", got)
	}
}

func TestWatcherWithdraw(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "web.yaml", serviceYAML(true, "web", "frontend", "10.0.1.11"))
	writeFile(t, dir, "db.yaml", serviceYAML(true, "db", "backend", "10.0.2.31"))
	tw := startWatcher(t, dir, Options{})

	// a rejected file's older part goes too
	writeFile(t, dir, "db.yaml", "services: [\n")
	tw.waitFor("db.yaml to be rejected", func() bool {
		st, _ := tw.status("db.yaml")
		return st.Err != nil
	})
	tw.w.Withdraw()
	tw.w.Withdraw()
	if got := tw.cat.Snapshot().TaskCount(); got != 0 {
		t.Errorf("got %d tasks after Withdraw, want 0", got)
	}
	if err := tw.w.Start(); !errors.Is(err, ErrStopped) {
		t.Errorf("got Start after Withdraw %v, want %v", err, ErrStopped)
	}
}

func TestWatcherStartStop(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	dir := t.TempDir()
	w, err := New(dir, catalog.New("n1"), Options{Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Errorf("got second Start %v, want nil", err)
	}

	// Stop from several goroutines at once, and again
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(w.Stop)
	}
	wg.Wait()
	w.Stop()
	if err := w.Start(); !errors.Is(err, ErrStopped) {
		t.Errorf("got Start after Stop %v, want %v", err, ErrStopped)
	}

	// Stop without Start
	unstarted, err := New(dir, catalog.New("n1"), Options{Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	unstarted.Stop()
}

func TestWatcherConcurrentStatus(t *testing.T) {
	dir := t.TempDir()
	tw := startWatcher(t, dir, Options{Rescan: 5 * time.Millisecond})

	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
				_ = tw.w.Status()
				_ = tw.w.Start()
			}
		}
	})
	for i := 1; i <= 5; i++ {
		ip := fmt.Sprintf("10.0.1.%d", 10+i)
		writeFile(t, dir, "web.yaml", serviceYAML(true, "web", "frontend", ip))
		tw.waitAddrs("web", "1="+ip)
	}
	close(done)
	wg.Wait()
}

func TestWatcherMetrics(t *testing.T) {
	dir := t.TempDir()
	files := metricValue(t, filesGauge)
	ok := metricValue(t, loadsTotal.WithLabelValues(resultOK))
	writeFile(t, dir, "networks.yaml", networksYAML)
	writeFile(t, dir, "web.yaml", serviceYAML(false, "web", "frontend", "10.0.1.11"))
	writeFile(t, dir, "bad.yaml", "services: [\n")
	tw := startWatcher(t, dir, Options{})

	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{name: "files", got: metricValue(t, filesGauge) - files, want: 2},
		{name: "ok loads", got: metricValue(t, loadsTotal.WithLabelValues(resultOK)) - ok,
			want: 2},
		{name: "rejected files", got: metricValue(t, rejectedGauge), want: 1},
		{name: "last reload", got: min(1, metricValue(t, lastReload)), want: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}

	// a stopped watcher no longer counts its files
	tw.w.Stop()
	if got := metricValue(t, filesGauge) - files; got != 0 {
		t.Errorf("got files %v after Stop, want 0", got)
	}
	if got := metricValue(t, rejectedGauge); got != 0 {
		t.Errorf("got rejected files %v after Stop, want 0", got)
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "file.yaml", "")
	tests := []struct {
		name   string
		dir    string
		want   string
		target error
	}{
		{
			name:   "missing",
			dir:    filepath.Join(dir, "nope"),
			want:   fmt.Sprintf("tasks: directory %q: ", filepath.Join(dir, "nope")),
			target: fs.ErrNotExist,
		},
		{
			name: "not a directory",
			dir:  filepath.Join(dir, "file.yaml"),
			want: fmt.Sprintf("tasks: directory %q: not a directory",
				filepath.Join(dir, "file.yaml")),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.dir, catalog.New("n1"), Options{})
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q...", err, tc.want)
			}
			if tc.target != nil && !errors.Is(err, tc.target) {
				t.Errorf("got %v, want it to wrap %v", err, tc.target)
			}
		})
	}
}

func TestIsTaskFile(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{name: "web.yaml", want: true},
		{name: "web.yml", want: true},
		{name: "web.json", want: true},
		{name: "WEB.YAML", want: true},
		{name: "web.yaml~", want: false},
		{name: ".web.yaml", want: false},
		{name: ".#web.yaml", want: false},
		{name: "#web.yaml#", want: false},
		{name: "web.yaml.swp", want: false},
		{name: "web.yaml.bak", want: false},
		{name: "web.txt", want: false},
		{name: "yaml", want: false},
		{name: "..data", want: false},
		{name: "", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := isTaskFile(tc.name); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBatchDelay(t *testing.T) {
	const debounce = 100 * time.Millisecond
	start := time.Unix(1000, 0)
	tests := []struct {
		name  string
		since time.Duration
		want  time.Duration
	}{
		{name: "first change", since: 0, want: debounce},
		{name: "changes keep coming", since: 500 * time.Millisecond, want: debounce},
		{name: "near the cap", since: 950 * time.Millisecond, want: 50 * time.Millisecond},
		{name: "past the cap", since: 2 * time.Second, want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := batch{first: start}
			if got := b.delay(start.Add(tc.since), debounce); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLoadDirExamples(t *testing.T) {
	states, err := LoadDir(filepath.Join("..", "..", "examples", "tasks.d"))
	if err != nil {
		t.Fatal(err)
	}
	cat := catalog.New("n1")
	for path, s := range states {
		cat.Put(cat.Self(), "file:"+path, s)
	}
	snap := cat.Snapshot()

	tests := []struct {
		service   string
		tasks     int
		unhealthy int
		ports     string
	}{
		{service: "web", tasks: 3, unhealthy: 1, ports: "http:80/tcp"},
		{service: "api", tasks: 2, ports: "http:8080/tcp grpc:9090/tcp"},
		{service: "db", tasks: 1, ports: "postgres:5432/tcp"},
		{service: "dns", tasks: 2, ports: "dns:53/udp"},
	}
	for _, tc := range tests {
		t.Run(tc.service, func(t *testing.T) {
			e := snap.Service(tc.service)
			if e == nil {
				t.Fatalf("got no service %s", tc.service)
			}
			unhealthy := 0
			for _, task := range e.Tasks {
				if task.Health == catalog.Unhealthy {
					unhealthy++
				}
			}
			var ports []string
			for _, p := range e.Ports {
				ports = append(ports, fmt.Sprintf("%s:%d/%s", p.Name, p.Port, p.Protocol))
			}
			got := fmt.Sprint(len(e.Tasks), unhealthy, strings.Join(ports, " "))
			want := fmt.Sprint(tc.tasks, tc.unhealthy, tc.ports)
			if got != want {
				t.Errorf("got %s, want %s", got, want)
			}
		})
	}
	if got := len(snap.Networks); got != 2 {
		t.Errorf("got %d networks, want 2", got)
	}
}
