package swarm

import (
	"strings"
	"testing"

	"github.com/coredns/caddy"
)

// parseTest parses a Corefile swarm block, failing the test on error.
func parseTest(t testing.TB, input string) *config {
	t.Helper()
	cfg, err := parse(caddy.NewTestController("dns", input))
	if err != nil {
		t.Fatalf("parse(%q): %v", input, err)
	}
	return cfg
}

// parseCase parses a Corefile swarm block and checks its error against
// wantErr, a substring ("" for none). It returns nil when an error was
// wanted and came.
func parseCase(t *testing.T, input, wantErr string) *config {
	t.Helper()
	cfg, err := parse(caddy.NewTestController("dns", input))
	switch {
	case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
		t.Fatalf("got error %v, want one containing %q", err, wantErr)
	case wantErr != "":
		return nil
	case err != nil:
		t.Fatalf("got error %v, want none", err)
	}
	return cfg
}

func TestParse(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		input   string
		wantErr string // substring of the error; "" for success
		check   func(*config) bool
	}{
		{name: "defaults", input: "swarm",
			check: func(c *config) bool {
				return c.ttl == 5 && len(c.zones) == 1 && c.zones[0] == "swarm.internal."
			}},
		{name: "zones", input: "swarm a.example.org b.example.org",
			check: func(c *config) bool { return len(c.zones) == 2 && c.zones[1] == "b.example.org." }},
		{name: "all options", input: "swarm {\n tasks " + dir + "\n ttl 30\n bare_names\n" +
			" scope networks\n include_unhealthy\n max_answers 32\n fallthrough\n node n7\n}",
			check: func(c *config) bool {
				return c.ttl == 30 && c.bareNames && c.scope && c.includeUnhealthy &&
					c.maxAnswers == 32 && len(c.dirs) == 1 && c.node == "n7"
			}},
		{name: "bad ttl", input: "swarm {\n ttl soon\n}", wantErr: "Testfile:2"},
		{name: "ttl out of range", input: "swarm {\n ttl -1\n}", wantErr: "from 0 to 86400"},
		{name: "unknown option", input: "swarm {\n\n ttls 3\n}", wantErr: "Testfile:3"},
		{name: "missing dir", input: "swarm {\n tasks /nonexistent/dir\n}", wantErr: "not a directory"},
		{name: "scope needs networks", input: "swarm {\n scope clients\n}", wantErr: "scope networks"},
		{name: "flag with argument", input: "swarm {\n bare_names yes\n}", wantErr: "Testfile:2"},
		{name: "bad node", input: "swarm {\n node a.b\n}", wantErr: "not a DNS label"},
		{name: "two blocks", input: "swarm\nswarm", wantErr: "only one"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := parseCase(t, tc.input, tc.wantErr)
			if cfg == nil {
				return
			}
			if !tc.check(cfg) {
				t.Errorf("got config %+v, not what the input says", cfg)
			}
		})
	}
}
