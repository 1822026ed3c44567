package l4

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmdns/swarmdns/internal/resolve"
)

// endpoint is one upstream address and its health. It outlives set
// changes while connections hold it, so counts stay right.
type endpoint struct {
	addr netip.AddrPort
	name string // addr.String(), the "upstream" label and log value
	seed uint64 // rendezvous hash of name
	m    *upstreamMetrics

	// active counts open connections and UDP sessions, for least_conn.
	active atomic.Int64
	// downUntil is when passive health lets the upstream back, in unix
	// nanoseconds.
	downUntil atomic.Int64
	// checkDown is set while the active health check fails.
	checkDown atomic.Bool

	mu    sync.Mutex
	fails []int64 // connect failure times inside the window
}

// usable reports whether ep may take a new connection at now.
func (e *endpoint) usable(now int64) bool {
	return !e.checkDown.Load() && e.downUntil.Load() <= now
}

// poolSpec is what a pool is built from. Two publish blocks with equal
// specs can share a pool across a reload.
type poolSpec struct {
	targets        string
	resolver       string
	ttlMin, ttlMax time.Duration
	health         time.Duration
	connectTimeout time.Duration
	maxFails       int
	failWindow     time.Duration
}

func specOf(p *Publish) poolSpec {
	names := make([]string, len(p.Upstreams))
	for i, t := range p.Upstreams {
		names[i] = t.String()
	}
	return poolSpec{
		targets:        strings.Join(names, " "),
		resolver:       p.Resolver,
		ttlMin:         p.TTLMin,
		ttlMax:         p.TTLMax,
		health:         p.HealthCheck,
		connectTimeout: p.ConnectTimeout,
		maxFails:       p.MaxFails,
		failWindow:     p.FailWindow,
	}
}

// pool is the live upstream set of one listener: it follows each target
// through DNS, runs the optional active health check and applies passive
// health. snapshot and failed are safe for concurrent use.
type pool struct {
	listener string
	spec     poolSpec
	targets  []resolve.Target
	res      *resolve.Resolver
	log      *slog.Logger
	m        *Metrics

	eps atomic.Pointer[[]*endpoint]

	mu    sync.Mutex
	sets  [][]netip.AddrPort // last good answer per target
	known map[netip.AddrPort]*endpoint

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// firstLookupTimeout bounds the lookups a new pool makes before it serves.
const firstLookupTimeout = 5 * time.Second

// newPool builds the pool of listener from pub and resolves every target
// once before returning, so a new listener does not start empty. prev, if
// not nil, is the pool it replaces; upstreams they share keep their
// connection counts and health.
func newPool(listener string, pub *Publish, prev *pool, log *slog.Logger,
	m *Metrics) (*pool, error) {
	res, err := resolve.NewResolver(pub.Resolver)
	if err != nil {
		return nil, fmt.Errorf("listener %s: %w", listener, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &pool{
		listener: listener,
		spec:     specOf(pub),
		targets:  slices.Clone(pub.Upstreams),
		res:      res,
		log:      log,
		m:        m,
		sets:     make([][]netip.AddrPort, len(pub.Upstreams)),
		known:    map[netip.AddrPort]*endpoint{},
		cancel:   cancel,
	}
	p.eps.Store(&[]*endpoint{})
	if prev != nil {
		prev.mu.Lock()
		maps.Copy(p.known, prev.known)
		prev.mu.Unlock()
	}

	p.firstLookups(ctx)
	for i, t := range p.targets {
		if t.Kind == resolve.Static {
			continue
		}
		p.wg.Add(1)
		go p.follow(ctx, i, t)
	}
	if pub.HealthCheck > 0 {
		p.wg.Add(1)
		go p.healthLoop(ctx, pub.HealthCheck)
	}
	return p, nil
}

// firstLookups resolves every target once, in parallel.
func (p *pool) firstLookups(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, firstLookupTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, t := range p.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.lookup(ctx, i, t, true)
		}()
	}
	wg.Wait()
}

// close stops the pool's lookups and health checks and waits for them.
// Connections that hold its endpoints are not touched. It may be called
// more than once.
func (p *pool) close() {
	p.cancel()
	p.wg.Wait()
}

// snapshot returns the current upstreams, sorted by address. The slice is
// shared and must not be changed.
func (p *pool) snapshot() []*endpoint { return *p.eps.Load() }

// follow looks target i up again each time its TTL runs out. While the
// server fails it backs off from ttl_min, doubling up to ttl_max.
func (p *pool) follow(ctx context.Context, i int, t resolve.Target) {
	defer p.wg.Done()
	wait := p.spec.ttlMin
	failing := false
	for {
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}

		ttl, ok := p.lookup(ctx, i, t, !failing)
		switch {
		case ok && failing:
			p.log.Info("resolution recovered", "listener", p.listener, "upstream", t.String())
			wait = ttl
		case ok:
			wait = ttl
		case failing:
			wait = min(2*wait, p.spec.ttlMax)
		default:
			wait = p.spec.ttlMin
		}
		failing = !ok
	}
}

// lookup resolves target i once and applies the answer. It returns the
// clamped TTL and whether the lookup succeeded; on failure the last good
// set stays, and warn says whether to log at warning level.
func (p *pool) lookup(ctx context.Context, i int, t resolve.Target,
	warn bool) (time.Duration, bool) {
	qctx, cancel := context.WithTimeout(ctx, firstLookupTimeout)
	res, err := p.res.Lookup(qctx, t)
	cancel()
	if ctx.Err() != nil {
		return p.spec.ttlMin, false
	}

	// TODO: NXDOMAIN counts as a failed lookup and keeps the last
	// upstreams, so a service that is removed for good keeps its last
	// tasks until passive or active health takes them out.
	result := "ok"
	switch {
	case errors.Is(err, resolve.ErrNXDomain):
		result = "nxdomain"
	case err != nil:
		result = "error"
	case len(res.Addrs) == 0:
		result = "empty"
	}
	p.m.resolutions.WithLabelValues(p.listener, t.String(), result).Inc()
	if err != nil {
		level := slog.LevelDebug
		if warn {
			level = slog.LevelWarn
		}
		p.log.Log(ctx, level, "resolution failed, keeping last upstreams",
			"listener", p.listener, "upstream", t.String(), "err", err)
		return p.spec.ttlMin, false
	}

	p.setTarget(i, res.Addrs)
	return clampTTL(res.TTL, p.spec.ttlMin, p.spec.ttlMax), true
}

// clampTTL bounds ttl to [lo, hi]; an unknown (zero) TTL counts as lo.
func clampTTL(ttl, lo, hi time.Duration) time.Duration {
	return min(max(ttl, lo), hi)
}

// setTarget records the answer for target i and rebuilds the upstream
// set from the union of all targets.
func (p *pool) setTarget(i int, addrs []netip.AddrPort) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sets[i] = addrs
	var all []netip.AddrPort
	for _, s := range p.sets {
		all = append(all, s...)
	}
	slices.SortFunc(all, func(a, b netip.AddrPort) int { return a.Compare(b) })
	all = slices.Compact(all)

	eps := make([]*endpoint, 0, len(all))
	next := make(map[netip.AddrPort]*endpoint, len(all))
	for _, a := range all {
		ep := p.known[a]
		if ep == nil {
			ep = p.newEndpoint(a)
		}
		next[a] = ep
		eps = append(eps, ep)
	}
	p.logChangesLocked(next)
	p.known = next
	p.eps.Store(&eps)
}

// logChangesLocked logs upstreams that joined or left the set.
func (p *pool) logChangesLocked(next map[netip.AddrPort]*endpoint) {
	cur := p.snapshot()
	old := make(map[netip.AddrPort]bool, len(cur))
	for _, ep := range cur {
		old[ep.addr] = true
		if next[ep.addr] == nil {
			p.log.Info("upstream removed", "listener", p.listener, "upstream", ep.name)
		}
	}
	for a, ep := range next {
		if !old[a] {
			p.log.Info("upstream added", "listener", p.listener, "upstream", ep.name)
		}
	}
}

func (p *pool) newEndpoint(a netip.AddrPort) *endpoint {
	name := a.String()
	return &endpoint{
		addr: a,
		name: name,
		seed: fnv64([]byte(name)),
		m:    p.m.forUpstream(p.listener, name),
	}
}

// failed records a failed connect to ep. With max_fails failures inside
// the window the upstream is marked down for the window.
func (p *pool) failed(ep *endpoint, err error) {
	ep.m.fails.Inc()
	p.log.Debug("upstream connect failed", "listener", p.listener, "upstream", ep.name, "err", err)
	if p.spec.maxFails == 0 {
		return
	}
	now := time.Now().UnixNano()
	window := int64(p.spec.failWindow)

	ep.mu.Lock()
	kept := ep.fails[:0]
	for _, t := range ep.fails {
		if now-t < window {
			kept = append(kept, t)
		}
	}
	ep.fails = append(kept, now)
	down := len(ep.fails) >= p.spec.maxFails
	if down {
		ep.fails = ep.fails[:0]
		ep.downUntil.Store(now + window)
	}
	ep.mu.Unlock()

	if down {
		p.log.Warn("upstream down", "listener", p.listener, "upstream", ep.name,
			"duration_s", p.spec.failWindow.Seconds(), "err", err)
	}
}

// healthLoop connects to every upstream each interval and marks it up or
// down by the result.
func (p *pool) healthLoop(ctx context.Context, interval time.Duration) {
	defer p.wg.Done()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	timeout := min(interval, p.spec.connectTimeout)
	for {
		p.checkAll(ctx, timeout)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// checkAll runs one round of the active health check.
func (p *pool) checkAll(ctx context.Context, timeout time.Duration) {
	var wg sync.WaitGroup
	for _, ep := range p.snapshot() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: timeout}
			c, err := d.DialContext(ctx, "tcp", ep.name)
			if err == nil {
				c.Close()
			}
			if ctx.Err() != nil {
				return
			}
			p.setChecked(ep, err)
		}()
	}
	wg.Wait()
}

// setChecked applies one health check result and logs a change.
func (p *pool) setChecked(ep *endpoint, err error) {
	down := err != nil
	if ep.checkDown.Swap(down) == down {
		return
	}
	if down {
		p.log.Warn("upstream down", "listener", p.listener, "upstream", ep.name, "err", err)
		return
	}
	p.log.Info("upstream up", "listener", p.listener, "upstream", ep.name)
}
