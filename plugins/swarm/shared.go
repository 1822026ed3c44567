package swarm

import (
	"errors"
	"log/slog"
	"sync"

	"github.com/swarmdns/swarmdns/internal/catalog"
	"github.com/swarmdns/swarmdns/internal/taskfile"
)

// The state that must outlive a Corefile reload lives here, process-wide:
// the catalog of each node name, the task file watchers, and the cluster.
// A server instance acquires it in OnStartup and releases it in OnShutdown;
// a reload starts the new instance before it stops the old one, so the
// count never falls to zero while the state is still in use, and nothing
// is reloaded, rejoined or forgotten.
var registry = struct {
	mu    sync.Mutex
	nodes map[string]*shared
}{nodes: make(map[string]*shared)}

var log = slog.With("component", "swarm")

// shared is the reload-proof state of one node.
type shared struct {
	cat *catalog.Catalog

	// mu guards the fields below.
	mu       sync.Mutex
	refs     int
	watchers map[string]*dirWatch
	cluster  *clusterState
}

type dirWatch struct {
	w    *taskfile.Watcher
	refs int
}

// lookupShared returns the shared state of node, creating it if needed.
// It takes no reference: setup may run for a reload that later fails.
func lookupShared(node string) *shared {
	registry.mu.Lock()
	defer registry.mu.Unlock()

	sh, ok := registry.nodes[node]
	if !ok {
		sh = &shared{
			cat:      catalog.New(node),
			watchers: make(map[string]*dirWatch),
		}
		registry.nodes[node] = sh
	}
	return sh
}

// acquire takes a reference for one swarm block and starts what it needs
// that is not running yet. Task files are loaded before it returns.
func (sh *shared) acquire(cfg *config) error {
	sh.mu.Lock()
	defer sh.mu.Unlock()

	var errs []error
	var started []string
	for _, dir := range cfg.dirs {
		if d, ok := sh.watchers[dir]; ok {
			d.refs++
			continue
		}
		w, err := taskfile.New(dir, sh.cat, taskfile.Options{})
		if err == nil {
			err = w.Start()
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sh.watchers[dir] = &dirWatch{w: w, refs: 1}
		started = append(started, dir)
		log.Info("task directory watched", "dir", dir)
	}
	// with or without a cluster block: a lone node still serves the API
	clusterErr := sh.startClusterLocked(cfg.cluster)
	errs = append(errs, clusterErr)
	if err := errors.Join(errs...); err != nil {
		for _, dir := range started {
			sh.dropWatcherLocked(dir)
		}
		if clusterErr == nil {
			sh.releaseClusterLocked()
		}
		return err
	}
	sh.refs++
	return nil
}

// release gives back the reference acquire took, stopping what no swarm
// block uses any more.
func (sh *shared) release(cfg *config) {
	sh.mu.Lock()
	defer sh.mu.Unlock()

	for _, dir := range cfg.dirs {
		d, ok := sh.watchers[dir]
		if !ok {
			continue
		}
		if d.refs--; d.refs == 0 {
			sh.dropWatcherLocked(dir)
		}
	}
	sh.releaseClusterLocked()
	sh.refs--
}

// dropWatcherLocked stops a directory's watcher and withdraws its tasks.
func (sh *shared) dropWatcherLocked(dir string) {
	d := sh.watchers[dir]
	delete(sh.watchers, dir)
	d.w.Stop()
	d.w.Withdraw()
	log.Info("task directory dropped", "dir", dir)
}
