package l4

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name  string
		conf  string
		check func(t *testing.T, c *Config)
	}{
		{
			name: "defaults",
			conf: "publish 8080/tcp {\n upstream tasks.web.swarm.internal:80\n}",
			check: func(t *testing.T, c *Config) {
				p := c.Publish[0]
				if p.Addr != ":8080" || p.Network != "tcp" || p.Key() != ":8080/tcp" {
					t.Errorf("got addr %q network %q", p.Addr, p.Network)
				}
				if p.Policy != RoundRobin || p.Mode != Ingress || p.MaxConns != DefaultMaxConns ||
					p.TTLMin != time.Second || p.TTLMax != 30*time.Second || p.Tries != 3 {
					t.Errorf("got %+v, want defaults", p)
				}
				if c.DrainTimeout != DefaultDrainTimeout {
					t.Errorf("got drain %v, want %v", c.DrainTimeout, DefaultDrainTimeout)
				}
			},
		},
		{
			name: "every option",
			conf: `publish 127.0.0.1:8080/tcp {
	upstream tasks.web.swarm.internal:80 10.0.0.9:80
	upstream _http._tcp.web.swarm.internal
	resolver 127.0.0.1:1053
	policy least_conn
	connect_timeout 2s
	idle_timeout 0
	max_conns 5
	max_fails 3 20s
	health_check 2s
	proxy_protocol v1
	accept_proxy_protocol
	ttl_min 2s
	ttl_max 10s
	tries 2
}
metrics 127.0.0.1:9154
drain_timeout 5s`,
			check: func(t *testing.T, c *Config) {
				p := c.Publish[0]
				if len(p.Upstreams) != 3 || p.Resolver != "127.0.0.1:1053" ||
					p.Policy != LeastConn || p.ConnectTimeout != 2*time.Second ||
					p.IdleTimeout != 0 || p.MaxConns != 5 || p.MaxFails != 3 ||
					p.FailWindow != 20*time.Second || p.HealthCheck != 2*time.Second ||
					p.ProxyProtocol != 1 || !p.AcceptProxyProtocol || p.TTLMin != 2*time.Second ||
					p.TTLMax != 10*time.Second || p.Tries != 2 {
					t.Errorf("got %+v", p)
				}
				if c.Metrics != "127.0.0.1:9154" || c.DrainTimeout != 5*time.Second {
					t.Errorf("got metrics %q drain %v", c.Metrics, c.DrainTimeout)
				}
			},
		},
		{
			name: "host mode rewrites names but not addresses",
			conf: `publish 53/udp {
	upstream tasks.dns.swarm.internal:53 _dns._udp.dns.swarm.internal 10.0.0.1:53
	mode host
	node N1
}`,
			check: func(t *testing.T, c *Config) {
				var got []string
				for _, u := range c.Publish[0].Upstreams {
					got = append(got, u.String())
				}
				want := "tasks.dns.n1.nodes.swarm.internal:53 " +
					"_dns._udp.dns.n1.nodes.swarm.internal 10.0.0.1:53"
				if strings.Join(got, " ") != want {
					t.Errorf("got %v, want %s", got, want)
				}
			},
		},
		{
			name: "ipv6 listen address and udp options",
			conf: "publish [::1]:5353/udp {\n upstream [::1]:53\n session_timeout 5s\n max_sessions 7\n}",
			check: func(t *testing.T, c *Config) {
				p := c.Publish[0]
				if p.Key() != "[::1]:5353/udp" || p.SessionTimeout != 5*time.Second ||
					p.MaxSessions != 7 {
					t.Errorf("got %+v", p)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig("test.conf", strings.NewReader(tc.conf))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		conf string
		want string // file:line and a word of the message
	}{
		{"unknown directive", "listen 80", "test.conf:1 "},
		{"unknown option", "publish 80/tcp {\n upstream a:1\n colour blue\n}", "test.conf:3 "},
		{"bad proto", "\npublish 80/sctp {\n upstream a:1\n}", "test.conf:2 "},
		{"bad port", "publish 99999/tcp {\n upstream a:1\n}", "test.conf:1 "},
		{"host name listen", "publish web:80/tcp {\n upstream a:1\n}", "test.conf:1 "},
		{"no upstream", "\n\npublish 80/tcp {\n policy hash\n}", "test.conf:3 "},
		{"no block", "publish 80/tcp", "test.conf:1 "},
		{"bad upstream", "publish 80/tcp {\n upstream web.swarm.internal\n}", "test.conf:2 "},
		{"bad policy", "publish 80/tcp {\n upstream a:1\n policy fastest\n}", "test.conf:3 "},
		{"bad mode", "publish 80/tcp {\n upstream a:1\n mode mesh\n}", "test.conf:3 "},
		{"bad duration", "publish 80/tcp {\n upstream a:1\n connect_timeout soon\n}", "test.conf:3 "},
		{"zero duration", "publish 80/tcp {\n upstream a:1\n session_timeout 0s\n}", "test.conf:3 "},
		{"bad count", "publish 80/tcp {\n upstream a:1\n max_conns -1\n}", "test.conf:3 "},
		{"bad max_fails", "publish 80/tcp {\n upstream a:1\n max_fails x\n}", "test.conf:3 "},
		{"bad window", "publish 80/tcp {\n upstream a:1\n max_fails 1 -1s\n}", "test.conf:3 "},
		{"bad proxy version", "publish 80/tcp {\n upstream a:1\n proxy_protocol v3\n}", "test.conf:3 "},
		{"proxy on udp", "publish 80/udp {\n upstream a:1\n proxy_protocol v2\n}", "test.conf:1 "},
		{"ttl bounds", "publish 80/tcp {\n upstream a:1\n ttl_min 1m\n}", "test.conf:1 "},
		{"duplicate", "publish 80/tcp {\n upstream a:1\n}\npublish 80/tcp {\n upstream a:1\n}",
			"test.conf:6 "},
		{"metrics address", "metrics 9154", "test.conf:1 "},
		{"extra argument", "publish 80/tcp extra {\n upstream a:1\n}", "test.conf:1 "},
		{"flag with argument", "publish 80/tcp {\n upstream a:1\n accept_proxy_protocol yes\n}",
			"test.conf:3 "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("test.conf", strings.NewReader(tc.conf))
			if err == nil {
				t.Fatalf("got no error, want one at %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, want it to name %q", err, tc.want)
			}
		})
	}
}

// TestExampleConfig parses lb.conf.example and compares the result with
// testdata/example.golden; -update rewrites the golden file.
func TestExampleConfig(t *testing.T) {
	c, err := ReadConfig(filepath.Join("..", "..", "lb.conf.example"))
	if err != nil {
		t.Fatal(err)
	}
	c.File = "lb.conf.example"
	got, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "example.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("parsed example differs from %s (run with -update):\n%s", golden, got)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add("publish 8080/tcp {\n upstream tasks.web.swarm.internal:80\n policy hash\n}")
	f.Add("publish 127.0.0.1:53/udp {\n upstream _dns._udp.dns.x:53\n mode host\n node a\n}")
	f.Add("metrics 127.0.0.1:9154\ndrain_timeout 3s\n")
	f.Add("publish 1/tcp { upstream a:1 { nested } }")
	f.Add("publish \"80/tcp\" {\n upstream \"a:1\" # comment\n max_fails 1 10s\n}")
	f.Add("import foo\n{\n}\n}")
	f.Fuzz(func(t *testing.T, conf string) {
		c, err := ParseConfig("fuzz.conf", strings.NewReader(conf))
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.conf:") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		for _, p := range c.Publish {
			if len(p.Upstreams) == 0 || (p.Network != "tcp" && p.Network != "udp") {
				t.Fatalf("accepted an invalid publish %+v", p)
			}
		}
	})
}
