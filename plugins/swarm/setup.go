package swarm

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/fall"
	"github.com/miekg/dns"

	"github.com/swarmdns/swarmdns/internal/catalog"
)

func init() { plugin.Register("swarm", setup) }

// defaults of the Corefile options.
const (
	defaultZone = "swarm.internal."
	defaultTTL  = 5
)

// config is one swarm block of a Corefile.
type config struct {
	zones            []string
	dirs             []string
	ttl              uint32
	bareNames        bool
	scope            bool
	includeUnhealthy bool
	maxAnswers       int
	fall             fall.F
	node             string
	cluster          *clusterConfig
	h                *Swarm
}

func setup(c *caddy.Controller) error {
	cfg, err := parse(c)
	if err != nil {
		return plugin.Error("swarm", err)
	}
	sh := lookupShared(cfg.node)
	s := cfg.h
	stop := make(chan struct{})

	// Start and stop in the instance's callbacks, not here: a reload
	// that fails after this setup ran must not leave watchers behind, and
	// one that succeeds hands the shared state over without a gap.
	c.OnStartup(func() error {
		if err := sh.acquire(cfg); err != nil {
			return plugin.Error("swarm", err)
		}
		s.follow(sh.cat, stop)
		return nil
	})
	c.OnShutdown(func() error {
		close(stop)
		sh.release(cfg)
		return nil
	})

	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		s.Next = next
		return s
	})
	return nil
}

func parse(c *caddy.Controller) (*config, error) {
	var cfg *config
	for c.Next() {
		if cfg != nil {
			return nil, c.Err("swarm: only one swarm block per server block")
		}
		cfg = &config{ttl: defaultTTL}
		cfg.zones = plugin.OriginsFromArgsOrServerBlock(c.RemainingArgs(), []string{defaultZone})
		for c.NextBlock() {
			if err := parseOption(c, cfg); err != nil {
				return nil, err
			}
		}
	}
	if cfg.node == "" {
		cfg.node = defaultNode()
	}
	cfg.h = newHandler(cfg)
	return cfg, nil
}

func parseOption(c *caddy.Controller, cfg *config) error {
	switch v := c.Val(); v {
	case "tasks":
		args := c.RemainingArgs()
		if len(args) == 0 {
			return c.ArgErr()
		}
		for _, d := range args {
			abs, err := filepath.Abs(d)
			if err != nil {
				return c.Errf("tasks %q: %v", d, err)
			}
			if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
				return c.Errf("tasks %q: not a directory", d)
			}
			cfg.dirs = append(cfg.dirs, abs)
		}
	case "ttl":
		n, err := intArg(c, 0, 86400)
		if err != nil {
			return err
		}
		cfg.ttl = uint32(n)
	case "max_answers":
		n, err := intArg(c, 1, 65535)
		if err != nil {
			return err
		}
		cfg.maxAnswers = n
	case "bare_names":
		cfg.bareNames = true
		return noArgs(c)
	case "include_unhealthy":
		cfg.includeUnhealthy = true
		return noArgs(c)
	case "scope":
		args := c.RemainingArgs()
		if len(args) != 1 || args[0] != "networks" {
			return c.Errf("scope: want %q", "scope networks")
		}
		cfg.scope = true
	case "fallthrough":
		cfg.fall.SetZonesFromArgs(c.RemainingArgs())
	case "node":
		args := c.RemainingArgs()
		if len(args) != 1 {
			return c.ArgErr()
		}
		if _, ok := dns.IsDomainName(args[0]); !ok || strings.Contains(args[0], ".") {
			return c.Errf("node %q: not a DNS label", args[0])
		}
		cfg.node = strings.ToLower(args[0])
	case "cluster":
		cc, err := parseCluster(c)
		if err != nil {
			return err
		}
		cfg.cluster = cc
		if cc.node != "" {
			cfg.node = cc.node
		}
	default:
		return c.Errf("unknown option %q", v)
	}
	return nil
}

func intArg(c *caddy.Controller, lo, hi int) (int, error) {
	args := c.RemainingArgs()
	if len(args) != 1 {
		return 0, c.ArgErr()
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < lo || n > hi {
		return 0, c.Errf("%s %q: want a whole number from %d to %d", c.Val(), args[0], lo, hi)
	}
	return n, nil
}

func noArgs(c *caddy.Controller) error {
	if len(c.RemainingArgs()) != 0 {
		return c.ArgErr()
	}
	return nil
}

// defaultNode names this node after the first label of its host name.
func defaultNode() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	h, _, _ = strings.Cut(h, ".")
	return strings.ToLower(h)
}

func newHandler(cfg *config) *Swarm {
	s := &Swarm{
		bareNames:  cfg.bareNames,
		scope:      cfg.scope,
		maxAnswers: cfg.maxAnswers,
		fall:       cfg.fall,
		opts: tableOptions{
			ttl:              cfg.ttl,
			includeUnhealthy: cfg.includeUnhealthy,
			ptrZone:          strings.ToLower(dns.Fqdn(cfg.zones[0])),
		},
	}
	for _, z := range cfg.zones {
		s.zones = append(s.zones, newZone(z))
	}
	return s
}

// follow keeps the handler's table in step with the catalog until stop is
// closed. It builds the first table before it returns.
func (s *Swarm) follow(cat *catalog.Catalog, stop <-chan struct{}) {
	ch, cancel := cat.Watch()
	s.rebuild(cat.Snapshot())
	go func() {
		defer cancel()
		for {
			select {
			case <-ch:
				s.rebuild(cat.Snapshot())
			case <-stop:
				return
			}
		}
	}()
}

func (s *Swarm) rebuild(snap *catalog.Snapshot) {
	start := time.Now()
	t := buildTable(snap, s.opts, s.table.Load())
	s.table.Store(t)
	tableBuildSeconds.Observe(time.Since(start).Seconds())
	recordCatalog(t)
}
