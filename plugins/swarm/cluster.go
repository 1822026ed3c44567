package swarm

import "github.com/coredns/caddy"

// This file joins the plugin to the gossip cluster. It is a placeholder
// until internal/cluster lands: parseCluster refuses the block.

// clusterConfig is the cluster block of a swarm block.
type clusterConfig struct {
	node string
}

// clusterState is the running cluster of a node.
type clusterState struct{}

func parseCluster(c *caddy.Controller) (*clusterConfig, error) {
	return nil, c.Err("cluster: not available in this build")
}

func (sh *shared) startClusterLocked(*clusterConfig) error { return nil }

func (sh *shared) releaseClusterLocked() {}
