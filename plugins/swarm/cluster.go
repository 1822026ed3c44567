package swarm

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"

	"github.com/swarmdns/swarmdns/internal/api"
	"github.com/swarmdns/swarmdns/internal/cluster"
)

// This file joins the plugin to the gossip cluster and runs the local
// API. Both belong to the node's shared state: started by the first swarm
// block that acquires it, kept across reloads, and stopped (leaving the
// cluster gracefully) when the last block releases it.

// leaveTimeout bounds how long a stopping node waits for its leave
// message to go out.
const leaveTimeout = 5 * time.Second

var clusterLog = slog.With("component", "cluster")

// clusterConfig is the cluster block of a swarm block. A nil
// *clusterConfig means no cluster block: the node runs alone and the API
// listens at its default address.
type clusterConfig struct {
	node        string
	bind        string
	advertise   string
	join        []string
	tokenFile   string
	tokens      []cluster.Token
	api         string
	apiInsecure bool
}

// clusterState is the running cluster (nil without a cluster block) and
// API of a node.
type clusterState struct {
	refs int
	cfg  *clusterConfig
	cl   *cluster.Cluster
	api  *api.Server
}

// parseCluster reads the block that follows the cluster option. The token
// file is read here, so that a missing or mistyped token is a Corefile
// error with file and line.
func parseCluster(c *caddy.Controller) (*clusterConfig, error) {
	if len(c.RemainingArgs()) != 0 {
		return nil, c.ArgErr()
	}
	cc := &clusterConfig{
		bind:      net.JoinHostPort("0.0.0.0", strconv.Itoa(cluster.DefaultPort)),
		tokenFile: filepath.Join(cluster.DefaultDataDir(), cluster.TokenFileName),
		api:       api.DefaultAddr,
	}
	for c.NextBlock() {
		if err := parseClusterOption(c, cc); err != nil {
			return nil, err
		}
	}
	toks, err := cluster.ReadTokenFile(cc.tokenFile)
	if err != nil {
		return nil, c.Errf("cluster: %v (dnsd init creates a token)", err)
	}
	cc.tokens = toks
	return cc, nil
}

func parseClusterOption(c *caddy.Controller, cc *clusterConfig) error {
	switch v := c.Val(); v {
	case "node":
		name, err := oneArg(c)
		if err != nil {
			return err
		}
		if strings.ContainsAny(name, ". ") || name == "" {
			return c.Errf("node %q: not a DNS label", name)
		}
		cc.node = strings.ToLower(name)
	case "bind":
		addr, err := addrArg(c, true)
		if err != nil {
			return err
		}
		cc.bind = addr
	case "advertise":
		addr, err := addrArg(c, false)
		if err != nil {
			return err
		}
		cc.advertise = addr
	case "join":
		args := c.RemainingArgs()
		if len(args) == 0 {
			return c.ArgErr()
		}
		for _, a := range args {
			if _, _, err := splitAddr(a); err != nil {
				return c.Errf("join %q: %v", a, err)
			}
		}
		cc.join = append(cc.join, args...)
	case "token_file":
		path, err := oneArg(c)
		if err != nil {
			return err
		}
		cc.tokenFile = path
	case "api":
		addr, err := oneArg(c)
		if err != nil {
			return err
		}
		if p, ok := strings.CutPrefix(addr, "unix:"); ok && p == "" {
			return c.Errf("api %q: want unix:PATH", addr)
		} else if !ok {
			if _, _, err := net.SplitHostPort(addr); err != nil {
				return c.Errf("api %q: want host:port or unix:PATH", addr)
			}
		}
		cc.api = addr
	case "api_insecure_listen":
		if len(c.RemainingArgs()) != 0 {
			return c.ArgErr()
		}
		cc.apiInsecure = true
	default:
		return c.Errf("cluster: unknown option %q", v)
	}
	return nil
}

func oneArg(c *caddy.Controller) (string, error) {
	args := c.RemainingArgs()
	if len(args) != 1 {
		return "", c.ArgErr()
	}
	return args[0], nil
}

// addrArg reads host[:port]; a port of 0 is allowed for bind only.
func addrArg(c *caddy.Controller, zeroPort bool) (string, error) {
	a, err := oneArg(c)
	if err != nil {
		return "", err
	}
	host, port, err := splitAddr(a)
	if err != nil {
		return "", c.Errf("%s %q: %v", c.Val(), a, err)
	}
	if port == 0 && !zeroPort {
		return "", c.Errf("%s %q: port 0", c.Val(), a)
	}
	if net.ParseIP(host) == nil {
		return "", c.Errf("%s %q: want an IP address", c.Val(), a)
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// splitAddr reads host[:port], the port defaulting to the gossip port.
func splitAddr(a string) (string, int, error) {
	host, ps, err := net.SplitHostPort(a)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			return a, cluster.DefaultPort, nil
		}
		return "", 0, err
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("bad port %q", ps)
	}
	return host, int(port), nil
}

// startClusterLocked starts the node's cluster and API unless they run,
// and takes a reference to them. cc is nil for a swarm block without a
// cluster block.
func (sh *shared) startClusterLocked(cc *clusterConfig) error {
	if cs := sh.cluster; cs != nil {
		cs.refs++
		if !sameCluster(cs.cfg, cc) {
			// TODO: changes to the cluster block other than a first one
			// take effect on restart only; a reload keeps the running
			// cluster so as not to leave and rejoin.
			clusterLog.Warn("cluster block changed; restart dnsd to apply", "node", sh.cat.Self())
		}
		return nil
	}

	cs := &clusterState{refs: 1, cfg: cc}
	src := api.Source{Catalog: sh.cat, Addr: "-"}
	apiAddr, insecure := api.DefaultAddr, false
	if cc != nil {
		cl, err := cluster.Start(cluster.Config{
			Name:          sh.cat.Self(),
			BindAddr:      cc.bind,
			AdvertiseAddr: cc.advertise,
			Join:          cc.join,
			Tokens:        cc.tokens,
			TokenFile:     cc.tokenFile,
			Logger:        slog.Default(),
		}, sh.cat)
		if err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		cs.cl = cl
		src = api.Source{Catalog: sh.cat, Members: cl.Members, Rotate: cl.RotateKey}
		apiAddr, insecure = cc.api, cc.apiInsecure
	}

	ln, err := api.Listen(apiAddr, insecure)
	switch {
	case err == nil:
		cs.api = api.Serve(ln, src, clusterLog)
		clusterLog.Info("api listening", "listener", cs.api.Addr().String())
	case cc == nil:
		// the default API of a lone node is a convenience: another dnsd
		// on the host may hold the port
		clusterLog.Warn("api not started", "listener", apiAddr, "err", err)
	default:
		cs.cl.Shutdown()
		return fmt.Errorf("cluster api: %w", err)
	}
	sh.cluster = cs
	return nil
}

// sameCluster reports whether a reload's cluster block asks for what is
// running.
func sameCluster(a, b *clusterConfig) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.node == b.node && a.bind == b.bind && a.advertise == b.advertise &&
		a.api == b.api && a.apiInsecure == b.apiInsecure &&
		strings.Join(a.join, " ") == strings.Join(b.join, " ")
}

// releaseClusterLocked gives back a reference; the last one stops the API
// and leaves the cluster gracefully, so the other nodes drop this node's
// tasks at once.
func (sh *shared) releaseClusterLocked() {
	cs := sh.cluster
	if cs == nil {
		return
	}
	if cs.refs--; cs.refs > 0 {
		return
	}
	sh.cluster = nil
	var errs []error
	if cs.api != nil {
		errs = append(errs, cs.api.Close())
	}
	if cs.cl != nil {
		errs = append(errs, cs.cl.Leave(leaveTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		clusterLog.Warn("cluster stop incomplete", "node", sh.cat.Self(), "err", err)
	}
}
