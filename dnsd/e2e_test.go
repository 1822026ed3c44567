package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/swarmdns/swarmdns/internal/dnsdtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	dnsdtest.Cleanup()
	os.Exit(code)
}

const networks = `networks:
  - {name: frontend, subnet: 10.0.1.0/24}
`

func webFile(slots ...int) string {
	var b strings.Builder
	b.WriteString("services:\n  - name: web\n    ports: [{name: http, port: 80}]\n    tasks:\n")
	for _, s := range slots {
		fmt.Fprintf(&b, "      - {slot: %d, addresses: {frontend: 10.0.1.%d}}\n", s, 10+s)
	}
	return b.String()
}

func ips(slots ...int) []string {
	var out []string
	for _, s := range slots {
		out = append(out, fmt.Sprintf("10.0.1.%d", 10+s))
	}
	slices.Sort(out)
	return out
}

// answers polls name until its sorted answers over UDP and TCP are want.
func answers(t *testing.T, s *dnsdtest.Server, name string, want []string) {
	t.Helper()
	dnsdtest.Eventually(t, 5*time.Second, func() string {
		for _, network := range []string{"udp", "tcp"} {
			got, _, err := dnsdtest.Query(s.Addr, network, name, dns.TypeA)
			if err != nil {
				return err.Error()
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				return fmt.Sprintf("%s %s: got %v, want %v", network, name, got, want)
			}
		}
		return ""
	})
}

// TestTaskFilesFollowed runs the real dnsd and changes its task files in
// every way an operator or an editor does, checking that answers follow.
func TestTaskFilesFollowed(t *testing.T) {
	s := dnsdtest.Start(t, dnsdtest.Options{Extra: "errors"})
	s.WriteTask(t, "networks.yaml", networks)
	s.WriteTask(t, "web.yaml", webFile(1, 2))
	answers(t, s, "web.swarm.internal", ips(1, 2))

	t.Run("rename-save adds a task", func(t *testing.T) {
		s.WriteTask(t, "web.yaml", webFile(1, 2, 3))
		answers(t, s, "web.swarm.internal", ips(1, 2, 3))
	})
	t.Run("write in place removes one", func(t *testing.T) {
		path := filepath.Join(s.Tasks, "web.yaml")
		if err := os.WriteFile(path, []byte(webFile(1, 3)), 0o644); err != nil {
			t.Fatal(err)
		}
		answers(t, s, "web.swarm.internal", ips(1, 3))
	})
	t.Run("broken file keeps the old answers", func(t *testing.T) {
		s.WriteTask(t, "web.yaml", webFile(1, 3)+"      - {slot: 4, addresses: {frontend: 10.0.9.4}}\n")
		dnsdtest.Eventually(t, 5*time.Second, func() string {
			if !strings.Contains(s.Log(), "web.yaml:7:41: address 10.0.9.4 is outside") {
				return "no rejection with file:line in the log yet"
			}
			return ""
		})
		answers(t, s, "web.swarm.internal", ips(1, 3))
	})
	t.Run("fixed file is loaded", func(t *testing.T) {
		s.WriteTask(t, "web.yaml", webFile(1, 3, 4))
		answers(t, s, "web.swarm.internal", ips(1, 3, 4))
	})
	t.Run("new file", func(t *testing.T) {
		s.WriteTask(t, "api.yaml", "services:\n  - name: api\n    tasks:\n"+
			"      - {slot: 1, addresses: {frontend: 10.0.1.50}}\n")
		answers(t, s, "api.swarm.internal", []string{"10.0.1.50"})
	})
	t.Run("deleted file", func(t *testing.T) {
		s.RemoveTask(t, "api.yaml")
		dnsdtest.Eventually(t, 5*time.Second, func() string {
			_, r, err := dnsdtest.Query(s.Addr, "udp", "api.swarm.internal", dns.TypeA)
			if err != nil {
				return err.Error()
			}
			if r.Rcode != dns.RcodeNameError {
				return "got " + dns.RcodeToString[r.Rcode] + ", want NXDOMAIN"
			}
			return ""
		})
		answers(t, s, "web.swarm.internal", ips(1, 3, 4))
	})
}

// TestResolvers asks the real dnsd through Go's own resolver and checks
// rotation, SRV and truncation over the wire.
func TestResolvers(t *testing.T) {
	s := dnsdtest.Start(t, dnsdtest.Options{})
	slots := make([]int, 0, 60)
	for i := 1; i <= 60; i++ {
		slots = append(slots, i)
	}
	s.WriteTask(t, "networks.yaml", networks)
	s.WriteTask(t, "web.yaml", webFile(slots...)+"  - name: api\n    tasks:\n"+
		"      - {slot: 1, addresses: {frontend: 10.0.1.200}}\n"+
		"      - {slot: 2, addresses: {frontend: 10.0.1.201}}\n"+
		"      - {slot: 3, addresses: {frontend: 10.0.1.202}}\n")
	answers(t, s, "api.swarm.internal", []string{"10.0.1.200", "10.0.1.201", "10.0.1.202"})

	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, s.Addr)
	}
	r := &net.Resolver{PreferGo: true, Dial: dial}
	ctx := context.Background()

	t.Run("net.Resolver rotation", func(t *testing.T) {
		firsts := map[string]bool{}
		for range 3 {
			got, err := r.LookupHost(ctx, "api.swarm.internal.")
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 {
				t.Fatalf("got %v, want 3 addresses", got)
			}
			firsts[got[0]] = true
		}
		// Go's resolver may sort by RFC 6724; with one prefix it keeps
		// the server's order
		if len(firsts) != 3 {
			t.Errorf("got %d distinct first addresses in 3 answers, want 3", len(firsts))
		}
	})
	t.Run("net.Resolver SRV", func(t *testing.T) {
		_, srvs, err := r.LookupSRV(ctx, "http", "tcp", "web.swarm.internal.")
		if err != nil {
			t.Fatal(err)
		}
		if len(srvs) != 60 || srvs[0].Port != 80 {
			t.Errorf("got %d SRV records (first %+v), want 60 on port 80", len(srvs), srvs[0])
		}
	})
	t.Run("truncated over UDP, whole over TCP", func(t *testing.T) {
		_, udp, err := dnsdtest.Query(s.Addr, "udp", "web.swarm.internal", dns.TypeA)
		if err != nil {
			t.Fatal(err)
		}
		if !udp.Truncated || len(udp.Answer) >= 60 {
			t.Errorf("UDP: got TC=%v with %d answers, want TC and fewer than 60",
				udp.Truncated, len(udp.Answer))
		}
		_, tcp, err := dnsdtest.Query(s.Addr, "tcp", "web.swarm.internal", dns.TypeA)
		if err != nil {
			t.Fatal(err)
		}
		if tcp.Truncated || len(tcp.Answer) != 60 {
			t.Errorf("TCP: got TC=%v with %d answers, want all 60", tcp.Truncated, len(tcp.Answer))
		}
	})
	t.Run("PTR", func(t *testing.T) {
		names, err := r.LookupAddr(ctx, "10.0.1.201")
		if err != nil {
			t.Fatal(err)
		}
		if len(names) != 1 || !strings.HasPrefix(names[0], "api.2.") {
			t.Errorf("got %v, want api.2.<id>.swarm.internal.", names)
		}
	})
}
