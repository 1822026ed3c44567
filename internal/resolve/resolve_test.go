package resolve

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/swarmdns/swarmdns/internal/dnstest"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Target
		wantErr bool
	}{
		{
			name: "ipv4 literal",
			in:   "10.0.0.5:80",
			want: Target{Kind: Static, Addr: netip.MustParseAddrPort("10.0.0.5:80"), Port: 80},
		},
		{
			name: "ipv6 literal",
			in:   "[fd00::5]:8080",
			want: Target{Kind: Static, Addr: netip.MustParseAddrPort("[fd00::5]:8080"), Port: 8080},
		},
		{
			name: "name with port",
			in:   "tasks.Web.swarm.internal.:80",
			want: Target{Kind: Host, Name: "tasks.web.swarm.internal", Port: 80},
		},
		{
			name: "srv name",
			in:   "_http._tcp.web.swarm.internal",
			want: Target{Kind: SRV, Name: "_http._tcp.web.swarm.internal"},
		},
		{name: "no port", in: "web.swarm.internal", wantErr: true},
		{name: "port zero", in: "web:0", wantErr: true},
		{name: "port too big", in: "web:70000", wantErr: true},
		{name: "literal port zero", in: "10.0.0.1:0", wantErr: true},
		{name: "empty label", in: "web..internal:80", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTarget(tc.in)
			if tc.wantErr {
				if !errors.Is(err, ErrTarget) {
					t.Fatalf("got %v, %v; want an ErrTarget", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestNodeName(t *testing.T) {
	tests := []struct {
		name, in, node, want string
	}{
		{"tasks name", "tasks.web.swarm.internal", "n1", "tasks.web.n1.nodes.swarm.internal"},
		{"service name", "web.swarm.internal", "n1", "web.n1.nodes.swarm.internal"},
		{"srv name", "_http._tcp.web.swarm.internal", "n1",
			"_http._tcp.web.n1.nodes.swarm.internal"},
		{"node lower-cased", "tasks.web.example.org", "Node-A", "tasks.web.node-a.nodes.example.org"},
		{"single label unchanged", "web", "n1", "web"},
		{"nothing after service", "tasks.web", "n1", "tasks.web"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := NodeName(tc.in, tc.node); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestForNodeKeepsStatic(t *testing.T) {
	tg, err := ParseTarget("10.0.0.5:80")
	if err != nil {
		t.Fatal(err)
	}
	if got := tg.ForNode("n1"); got != tg {
		t.Errorf("got %+v, want %+v unchanged", got, tg)
	}
}

func TestLookup(t *testing.T) {
	dns := dnstest.StartSwarm(t, "swarm.internal", 7)
	ts := []dnstest.Task{
		{Addr: netip.MustParseAddr("10.0.0.2"), Node: "n1"},
		{Addr: netip.MustParseAddr("10.0.0.1"), Node: "n1"},
		{Addr: netip.MustParseAddr("fd00::3"), Node: "n2"},
	}
	dns.SetService("web", ts, dnstest.Port{Name: "http", Proto: "tcp", Number: 8080})
	dns.SetService("empty", nil)
	r, err := NewResolver(dns.Addr())
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		target  string
		want    []string
		wantErr error
	}{
		{
			name:   "a and aaaa",
			target: "tasks.web.swarm.internal:80",
			want:   []string{"10.0.0.1:80", "10.0.0.2:80", "[fd00::3]:80"},
		},
		{
			name:   "srv with additional section",
			target: "_http._tcp.web.swarm.internal",
			want:   []string{"10.0.0.1:8080", "10.0.0.2:8080", "[fd00::3]:8080"},
		},
		{
			name:   "host mode name",
			target: "tasks.web.n1.nodes.swarm.internal:80",
			want:   []string{"10.0.0.1:80", "10.0.0.2:80"},
		},
		{
			name:   "no tasks",
			target: "tasks.empty.swarm.internal:80",
			want:   nil,
		},
		{
			name:    "unknown service",
			target:  "tasks.nope.swarm.internal:80",
			wantErr: ErrNXDomain,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg, err := ParseTarget(tc.target)
			if err != nil {
				t.Fatal(err)
			}
			res, err := r.Lookup(context.Background(), tg)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got error %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range res.Addrs {
				got = append(got, a.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if len(tc.want) > 0 && res.TTL != 7*time.Second {
				t.Errorf("got TTL %v, want 7s", res.TTL)
			}
		})
	}
}

func TestLookupServerFailure(t *testing.T) {
	dns := dnstest.StartSwarm(t, "swarm.internal", 1)
	dns.Fail(true)
	r, _ := NewResolver(dns.Addr())
	tg, _ := ParseTarget("tasks.web.swarm.internal:80")
	if _, err := r.Lookup(context.Background(), tg); err == nil || errors.Is(err, ErrNXDomain) {
		t.Errorf("got %v, want a server failure", err)
	}
}

func TestServerAddr(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "127.0.0.1", want: "127.0.0.1:53"},
		{in: "127.0.0.1:1053", want: "127.0.0.1:1053"},
		{in: "::1", want: "[::1]:53"},
		{in: "dns.example.org", want: "dns.example.org:53"},
		{in: "bad host!", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ServerAddr(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("got %q, %v; want %q (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
