package l4

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy/caddyfile"

	"github.com/swarmdns/swarmdns/internal/resolve"
)

// Policy names how a listener picks an upstream for a new connection.
type Policy string

// The balancing policies.
const (
	// RoundRobin takes the upstreams in turn.
	RoundRobin Policy = "round_robin"
	// LeastConn takes the upstream with the fewest open connections.
	LeastConn Policy = "least_conn"
	// RandomTwo takes two upstreams at random and keeps the less busy.
	RandomTwo Policy = "random_two"
	// Hash sends a client IP to the same upstream while the set is
	// unchanged, and moves few clients when it changes (rendezvous hash).
	Hash Policy = "hash"
)

// Mode names which tasks a listener asks DNS for.
type Mode string

// The publishing modes.
const (
	// Ingress spreads over every task of the service.
	Ingress Mode = "ingress"
	// HostMode spreads over the tasks on this node only.
	HostMode Mode = "host"
)

// Config is a parsed lb config file. It is a plain value: Server.Apply
// reads it and never changes it.
type Config struct {
	// File is the name the config was read from, used in messages.
	File string
	// Metrics is the address of the /metrics and /health endpoint;
	// empty means none.
	Metrics string
	// DrainTimeout bounds how long a stopped listener waits for its open
	// connections before closing them.
	DrainTimeout time.Duration
	// Publish holds one entry per publish block, in file order.
	Publish []Publish
}

// Publish is one published port and how it reaches its upstreams.
type Publish struct {
	// Line is the config line of the publish directive.
	Line int
	// Network is "tcp" or "udp".
	Network string
	// Addr is the listen address, host:port; the host may be empty.
	Addr string
	// Upstreams are the entries to resolve, after host-mode rewriting.
	Upstreams []resolve.Target
	// Resolver is the DNS server as host:port; empty means the system's.
	Resolver string
	// Policy picks among upstreams.
	Policy Policy
	// Mode says whether the names were rewritten for this node.
	Mode Mode
	// Node is the node name used by host mode.
	Node string
	// ConnectTimeout bounds one upstream connect, and the wait for a
	// PROXY header from the client.
	ConnectTimeout time.Duration
	// IdleTimeout closes a TCP connection with no bytes either way for
	// this long; zero means never.
	IdleTimeout time.Duration
	// MaxConns bounds open TCP connections on the listener.
	MaxConns int
	// MaxFails connect failures within FailWindow mark an upstream down
	// for FailWindow; zero turns passive health off.
	MaxFails int
	// FailWindow is the passive health window.
	FailWindow time.Duration
	// HealthCheck is the interval of the active TCP connect check; zero
	// means no active check.
	HealthCheck time.Duration
	// ProxyProtocol is the PROXY header version sent upstream (1 or 2);
	// zero sends none.
	ProxyProtocol int
	// AcceptProxyProtocol requires a PROXY header from each client.
	AcceptProxyProtocol bool
	// SessionTimeout ends a UDP session with no datagrams for this long.
	SessionTimeout time.Duration
	// MaxSessions bounds the UDP sessions of the listener.
	MaxSessions int
	// TTLMin and TTLMax clamp the interval between lookups.
	TTLMin, TTLMax time.Duration
	// Tries bounds the upstreams tried for one connection.
	Tries int
}

// Defaults for options a publish block leaves out.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultIdleTimeout    = 10 * time.Minute
	DefaultMaxConns       = 10000
	DefaultMaxFails       = 1
	DefaultFailWindow     = 10 * time.Second
	DefaultSessionTimeout = 30 * time.Second
	DefaultMaxSessions    = 10000
	DefaultTTLMin         = time.Second
	DefaultTTLMax         = 30 * time.Second
	DefaultTries          = 3
	DefaultDrainTimeout   = 30 * time.Second
)

// Key names the listener: "host:port/network". Two publish blocks with
// the same key are the same listener across reloads.
func (p *Publish) Key() string { return p.Addr + "/" + p.Network }

// ReadConfig reads and parses the config file at path.
func ReadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return ParseConfig(path, bytes.NewReader(b))
}

// ParseConfig parses a config from r. filename is used in errors, which
// name file:line.
func ParseConfig(filename string, r io.Reader) (*Config, error) {
	d := caddyfile.NewDispenser(filename, r)
	cfg := &Config{File: filename, DrainTimeout: DefaultDrainTimeout}
	seen := map[string]int{}
	for d.Next() {
		switch d.Val() {
		case "publish":
			p, err := parsePublish(&d)
			if err != nil {
				return nil, err
			}
			if line, dup := seen[p.Key()]; dup {
				return nil, d.Errf("%s published twice (first at line %d)", p.Key(), line)
			}
			seen[p.Key()] = p.Line
			cfg.Publish = append(cfg.Publish, *p)
		case "metrics":
			a, err := oneArg(&d)
			if err != nil {
				return nil, err
			}
			if _, _, err := net.SplitHostPort(a); err != nil {
				return nil, d.Errf("metrics address %q: want host:port", a)
			}
			cfg.Metrics = a
		case "drain_timeout":
			v, err := durationArg(&d, "drain_timeout", false)
			if err != nil {
				return nil, err
			}
			cfg.DrainTimeout = v
		default:
			return nil, d.Errf("unknown directive %q", d.Val())
		}
	}
	return cfg, nil
}

// parsePublish parses "publish [host:]port/proto { ... }".
func parsePublish(d *caddyfile.Dispenser) (*Publish, error) {
	p := &Publish{
		Line:           d.Line(),
		Policy:         RoundRobin,
		Mode:           Ingress,
		ConnectTimeout: DefaultConnectTimeout,
		IdleTimeout:    DefaultIdleTimeout,
		MaxConns:       DefaultMaxConns,
		MaxFails:       DefaultMaxFails,
		FailWindow:     DefaultFailWindow,
		SessionTimeout: DefaultSessionTimeout,
		MaxSessions:    DefaultMaxSessions,
		TTLMin:         DefaultTTLMin,
		TTLMax:         DefaultTTLMax,
		Tries:          DefaultTries,
	}
	// RemainingArgs stops before the block's brace and leaves it unread
	args := d.RemainingArgs()
	if len(args) != 1 {
		return nil, d.ArgErr()
	}
	spec := args[0]
	var err error
	if p.Addr, p.Network, err = parseListen(spec); err != nil {
		return nil, d.Errf("publish %q: %v", spec, err)
	}

	for d.NextBlock() {
		if err := parseOption(d, p); err != nil {
			return nil, err
		}
	}
	return p, finishPublish(d, p)
}

// parseListen splits "[host:]port/proto" into a listen address and a
// network.
func parseListen(s string) (addr, network string, err error) {
	hp, network, ok := strings.Cut(s, "/")
	if !ok || (network != "tcp" && network != "udp") {
		return "", "", fmt.Errorf("want [host:]port/tcp or [host:]port/udp")
	}
	host, port := "", hp
	if strings.Contains(hp, ":") {
		if host, port, err = net.SplitHostPort(hp); err != nil {
			return "", "", fmt.Errorf("listen address: %w", err)
		}
		if _, err := netip.ParseAddr(host); err != nil && host != "" {
			return "", "", fmt.Errorf("listen host %q is not an IP address", host)
		}
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || port != strconv.Itoa(int(n)) {
		return "", "", fmt.Errorf("bad port %q", port)
	}
	return net.JoinHostPort(host, port), network, nil
}

// parseOption parses the option line the dispenser is on.
func parseOption(d *caddyfile.Dispenser, p *Publish) error {
	var err error
	switch opt := d.Val(); opt {
	case "upstream":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.ArgErr()
		}
		for _, a := range args {
			t, err := resolve.ParseTarget(a)
			if err != nil {
				return d.Errf("%v", err)
			}
			p.Upstreams = append(p.Upstreams, t)
		}
	case "resolver":
		a, err := oneArg(d)
		if err != nil {
			return err
		}
		if p.Resolver, err = resolve.ServerAddr(a); err != nil {
			return d.Errf("%v", err)
		}
	case "policy":
		return parsePolicy(d, p)
	case "mode":
		return parseMode(d, p)
	case "node":
		p.Node, err = oneArg(d)
		p.Node = strings.ToLower(p.Node)
	case "connect_timeout":
		p.ConnectTimeout, err = durationArg(d, opt, false)
	case "idle_timeout":
		p.IdleTimeout, err = durationArg(d, opt, true)
	case "session_timeout":
		p.SessionTimeout, err = durationArg(d, opt, false)
	case "health_check":
		p.HealthCheck, err = durationArg(d, opt, false)
	case "ttl_min":
		p.TTLMin, err = durationArg(d, opt, false)
	case "ttl_max":
		p.TTLMax, err = durationArg(d, opt, false)
	case "max_conns":
		p.MaxConns, err = intArg(d, opt, 1)
	case "max_sessions":
		p.MaxSessions, err = intArg(d, opt, 1)
	case "tries":
		p.Tries, err = intArg(d, opt, 1)
	case "max_fails":
		return parseMaxFails(d, p)
	case "proxy_protocol":
		return parseProxyVersion(d, p)
	case "accept_proxy_protocol":
		if len(d.RemainingArgs()) != 0 {
			return d.ArgErr()
		}
		p.AcceptProxyProtocol = true
	default:
		return d.Errf("unknown option %q", opt)
	}
	return err
}

func parsePolicy(d *caddyfile.Dispenser, p *Publish) error {
	a, err := oneArg(d)
	if err != nil {
		return err
	}
	switch Policy(a) {
	case RoundRobin, LeastConn, RandomTwo, Hash:
		p.Policy = Policy(a)
		return nil
	}
	return d.Errf("unknown policy %q (want round_robin, least_conn, random_two or hash)", a)
}

func parseMode(d *caddyfile.Dispenser, p *Publish) error {
	a, err := oneArg(d)
	if err != nil {
		return err
	}
	switch Mode(a) {
	case Ingress, HostMode:
		p.Mode = Mode(a)
		return nil
	}
	return d.Errf("unknown mode %q (want ingress or host)", a)
}

// parseMaxFails parses "max_fails N [window]".
func parseMaxFails(d *caddyfile.Dispenser, p *Publish) error {
	args := d.RemainingArgs()
	if len(args) < 1 || len(args) > 2 {
		return d.ArgErr()
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 0 {
		return d.Errf("max_fails %q: want a count of 0 or more", args[0])
	}
	p.MaxFails = n
	if len(args) == 2 {
		w, err := time.ParseDuration(args[1])
		if err != nil || w <= 0 {
			return d.Errf("max_fails window %q: want a positive duration", args[1])
		}
		p.FailWindow = w
	}
	return nil
}

func parseProxyVersion(d *caddyfile.Dispenser, p *Publish) error {
	a, err := oneArg(d)
	if err != nil {
		return err
	}
	switch a {
	case "v1":
		p.ProxyProtocol = 1
	case "v2":
		p.ProxyProtocol = 2
	default:
		return d.Errf("proxy_protocol %q: want v1 or v2", a)
	}
	return nil
}

// finishPublish checks the block as a whole and applies host mode.
func finishPublish(d *caddyfile.Dispenser, p *Publish) error {
	errAt := func(format string, args ...any) error {
		return fmt.Errorf("%s:%d - Error during parsing: publish %s: %s",
			d.File(), p.Line, p.Key(), fmt.Sprintf(format, args...))
	}
	if len(p.Upstreams) == 0 {
		return errAt("no upstream")
	}
	if p.TTLMin > p.TTLMax {
		return errAt("ttl_min %v is above ttl_max %v", p.TTLMin, p.TTLMax)
	}
	// TODO: PROXY protocol is not offered on UDP listeners, though v2 can
	// describe datagrams; a UDP upstream never learns the client address.
	if p.Network == "udp" && (p.ProxyProtocol != 0 || p.AcceptProxyProtocol) {
		return errAt("PROXY protocol is supported on tcp only")
	}
	if p.Mode != HostMode {
		return nil
	}

	if p.Node == "" {
		n, err := resolve.DefaultNode()
		if err != nil {
			return errAt("host mode needs a node name: %v", err)
		}
		p.Node = n
	}
	for i, t := range p.Upstreams {
		p.Upstreams[i] = t.ForNode(p.Node)
	}
	return nil
}

// oneArg returns the single argument of the current line.
func oneArg(d *caddyfile.Dispenser) (string, error) {
	args := d.RemainingArgs()
	if len(args) != 1 {
		return "", d.ArgErr()
	}
	return args[0], nil
}

// durationArg returns the single duration argument of option opt.
func durationArg(d *caddyfile.Dispenser, opt string, zeroOK bool) (time.Duration, error) {
	a, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	v, err := time.ParseDuration(a)
	if err != nil || v < 0 || (v == 0 && !zeroOK) {
		return 0, d.Errf("%s %q: want a positive duration such as 5s", opt, a)
	}
	return v, nil
}

// intArg returns the single integer argument of option opt.
func intArg(d *caddyfile.Dispenser, opt string, least int) (int, error) {
	a, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(a)
	if err != nil || n < least {
		return 0, d.Errf("%s %q: want a whole number of at least %d", opt, a, least)
	}
	return n, nil
}
