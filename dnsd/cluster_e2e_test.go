package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/miekg/dns"

	"github.com/swarmdns/swarmdns/internal/api"
	"github.com/swarmdns/swarmdns/internal/cluster"
	"github.com/swarmdns/swarmdns/internal/dnsdtest"
)

// clusterNode is one dnsd of the end-to-end cluster.
type clusterNode struct {
	*dnsdtest.Server
	gossip string
	api    string
}

// startClusterNode runs dnsd as node name with a cluster block joining
// join.
func startClusterNode(t *testing.T, name, tokenFile string, join ...string) *clusterNode {
	t.Helper()
	n := &clusterNode{
		gossip: dnsdtest.FreeAddr(t, "127.0.0.1"),
		api:    dnsdtest.FreeAddr(t, "127.0.0.1"),
	}
	body := fmt.Sprintf("    cluster {\n      node %s\n      bind %s\n      api %s\n"+
		"      token_file %s\n", name, n.gossip, n.api, tokenFile)
	if len(join) > 0 {
		body += "      join"
		for _, j := range join {
			body += " " + j
		}
		body += "\n"
	}
	body += "    }"
	n.Server = dnsdtest.Start(t, dnsdtest.Options{Swarm: body})
	return n
}

// nodes runs `dnsd node ls --format json` against n.
func (n *clusterNode) nodes(t *testing.T) []api.NodeView {
	t.Helper()
	out, err := exec.Command(dnsdtest.Binary(t), "node", "ls", "--api", n.api,
		"--format", "json").Output()
	if err != nil {
		t.Fatalf("dnsd node ls: %v", err)
	}
	var v []api.NodeView
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("dnsd node ls: %v\n%s", err, out)
	}
	return v
}

// TestClusterEndToEnd runs three dnsd processes in one cluster: node 3
// answers for node 1's service, and forgets it when node 1 is killed.
func TestClusterEndToEnd(t *testing.T) {
	tok, err := cluster.NewToken("dnsd-e2e")
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := cluster.WriteTokenFile(tokenFile, []cluster.Token{tok}); err != nil {
		t.Fatal(err)
	}
	n1 := startClusterNode(t, "n1", tokenFile)
	n2 := startClusterNode(t, "n2", tokenFile, n1.gossip)
	n3 := startClusterNode(t, "n3", tokenFile, n1.gossip, n2.gossip)

	n1.WriteTask(t, "networks.yaml", networks)
	n1.WriteTask(t, "web.yaml", webFile(1, 2))
	answers(t, n3.Server, "web.swarm.internal", ips(1, 2))

	dnsdtest.Eventually(t, 10*time.Second, func() string {
		got := n3.nodes(t)
		if len(got) != 3 || got[0].Tasks != 2 || !got[2].Self {
			return fmt.Sprintf("node ls on n3: got %+v, want n1 (2 tasks), n2, n3 (self)", got)
		}
		return ""
	})

	if err := n1.Process().Kill(); err != nil {
		t.Fatal(err)
	}
	<-n1.Done()
	// dnsd runs memberlist's LAN defaults
	bound := cluster.FailureBound(memberlist.DefaultLANConfig(), 3)
	start := time.Now()
	dnsdtest.Eventually(t, bound, func() string {
		_, r, err := dnsdtest.Query(n3.Addr, "udp", "web.swarm.internal", dns.TypeA)
		if err != nil {
			return err.Error()
		}
		if r.Rcode != dns.RcodeNameError {
			return fmt.Sprintf("got %s with %d answers, want NXDOMAIN",
				dns.RcodeToString[r.Rcode], len(r.Answer))
		}
		return ""
	})
	t.Logf("n1's service gone from n3 %v after SIGKILL (bound %v)", time.Since(start), bound)

	got := n3.nodes(t)
	i := slices.IndexFunc(got, func(v api.NodeView) bool { return v.Name == "n1" })
	if i < 0 || got[i].Status != api.StatusDown {
		t.Fatalf("node ls on n3: got %+v, want n1 down", got)
	}
}
