package swarm

import (
	"path/filepath"
	"testing"

	"github.com/swarmdns/swarmdns/internal/cluster"
)

func writeTestToken(t *testing.T) string {
	t.Helper()
	tok, err := cluster.NewToken("dnsd-test")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "token")
	if err := cluster.WriteTokenFile(path, []cluster.Token{tok}); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestParseCluster(t *testing.T) {
	tok := writeTestToken(t)
	block := func(body string) string {
		return "swarm {\n cluster {\n  token_file " + tok + "\n" + body + " }\n}"
	}
	tests := []struct {
		name    string
		input   string
		wantErr string
		check   func(*clusterConfig) bool
	}{
		{name: "defaults", input: block(""), check: func(c *clusterConfig) bool {
			return c.bind == "0.0.0.0:7946" && c.api == "127.0.0.1:7947" && len(c.tokens) == 1
		}},
		{name: "all options", input: block("  node n1\n  bind 10.0.0.1:7000\n" +
			"  advertise 192.0.2.1\n  join 10.0.0.2 10.0.0.3:7000\n  api unix:/run/dnsd.sock\n" +
			"  api_insecure_listen\n"),
			check: func(c *clusterConfig) bool {
				return c.node == "n1" && c.bind == "10.0.0.1:7000" &&
					c.advertise == "192.0.2.1:7946" && len(c.join) == 2 &&
					c.api == "unix:/run/dnsd.sock" && c.apiInsecure
			}},
		{name: "node names the catalog", input: block("  node n9\n"),
			check: func(c *clusterConfig) bool { return c.node == "n9" }},
		{name: "unknown option", input: block("  gossip fast\n"), wantErr: "Testfile:4"},
		{name: "bad bind", input: block("  bind nohost:x\n"), wantErr: "Testfile:4"},
		{name: "bind needs an ip", input: block("  bind example.org:7946\n"), wantErr: "IP address"},
		{name: "join needs args", input: block("  join\n"), wantErr: "Testfile:4"},
		{name: "bad api", input: block("  api 7947\n"), wantErr: "host:port or unix:PATH"},
		{name: "missing token", input: "swarm {\n cluster {\n  token_file /nonexistent/token\n }\n}",
			wantErr: "Testfile:4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := parseCase(t, tc.input, tc.wantErr)
			if cfg == nil {
				return
			}
			if !tc.check(cfg.cluster) {
				t.Errorf("got %+v, not what the input says", cfg.cluster)
			}
			if cfg.cluster.node != "" && cfg.node != cfg.cluster.node {
				t.Errorf("got node %q, want the cluster block's %q", cfg.node, cfg.cluster.node)
			}
		})
	}
}

// TestClusterSurvivesReload acquires the shared state as a reload does,
// new instance first, and checks that the cluster is neither restarted
// nor left until the last reference goes.
func TestClusterSurvivesReload(t *testing.T) {
	tok := writeTestToken(t)
	input := "swarm {\n cluster {\n  node reload1\n  bind 127.0.0.1:0\n  api 127.0.0.1:0\n" +
		"  token_file " + tok + "\n }\n}"
	old := parseTest(t, input)
	sh := lookupShared(old.node)
	if err := sh.acquire(old); err != nil {
		t.Fatal(err)
	}
	first := sh.cluster.cl

	reloaded := parseTest(t, input)
	if err := sh.acquire(reloaded); err != nil {
		t.Fatal(err)
	}
	sh.release(old)
	if sh.cluster == nil || sh.cluster.cl != first {
		t.Fatal("got the cluster restarted by a reload, want it kept")
	}
	sh.release(reloaded)
	if sh.cluster != nil {
		t.Fatal("got the cluster running after the last release")
	}
}
