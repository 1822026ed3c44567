package main

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/swarmdns/swarmdns/internal/dnsdtest"
)

// nameServers starts a TCP server on each of hosts, all on one port, that
// answers every connection with its own host and closes it. It returns
// the port.
func nameServers(t *testing.T, hosts ...string) int {
	t.Helper()
	for range 20 {
		first, err := net.Listen("tcp", hosts[0]+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := first.Addr().(*net.TCPAddr).Port
		lns := []net.Listener{first}
		for _, h := range hosts[1:] {
			ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", h, port))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		if len(lns) < len(hosts) {
			for _, ln := range lns {
				ln.Close()
			}
			continue // the port is taken on another address: try another
		}
		var wg sync.WaitGroup
		for i, ln := range lns {
			wg.Go(func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					io.WriteString(c, hosts[i])
					c.Close()
				}
			})
		}
		t.Cleanup(func() {
			for _, ln := range lns {
				ln.Close()
			}
			wg.Wait()
		})
		return port
	}
	t.Fatal("no port free on every host")
	return 0
}

// whoAnswers connects through addr and returns which server answered.
func whoAnswers(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dialing %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || len(b) == 0 {
		t.Fatalf("reading through %s: got %q (%v), want a server's name", addr, b, err)
	}
	return string(b)
}

func webTasks(hosts ...string) string {
	var b strings.Builder
	b.WriteString("networks: [{name: loop, subnet: 127.0.0.0/8}]\n")
	b.WriteString("services:\n  - name: web\n    tasks:\n")
	for i, h := range hosts {
		fmt.Fprintf(&b, "      - {slot: %d, addresses: {loop: %s}}\n", i+1, h)
	}
	return b.String()
}

// TestFollowsRealDNSD runs lb against the real dnsd and its swarm plugin:
// the upstream is a service name, and lb follows the task file as tasks
// come and go.
func TestFollowsRealDNSD(t *testing.T) {
	port := nameServers(t, "127.0.0.2", "127.0.0.3", "127.0.0.4")
	dnsd := dnsdtest.Start(t, dnsdtest.Options{Swarm: "ttl 1"})
	dnsd.WriteTask(t, "web.yaml", webTasks("127.0.0.2", "127.0.0.3"))
	dnsdtest.Eventually(t, 10*time.Second, func() string {
		got, _, err := dnsdtest.Query(dnsd.Addr, "udp", "tasks.web.swarm.internal", dns.TypeA)
		if err != nil || len(got) != 2 {
			return fmt.Sprintf("dnsd answers %v (%v), want the two tasks", got, err)
		}
		return ""
	})

	listen := dnsdtest.FreeAddr(t, "127.0.0.1")
	conf := fmt.Sprintf("publish %s/tcp {\n  upstream tasks.web.swarm.internal:%d\n"+
		"  resolver %s\n  policy round_robin\n}\n", listen, port, dnsd.Addr)
	runApp(t, conf)

	seen := func(n int) map[string]int {
		got := map[string]int{}
		for range n {
			got[whoAnswers(t, listen)]++
		}
		return got
	}
	if got := seen(20); got["127.0.0.2"] == 0 || got["127.0.0.3"] == 0 || len(got) != 2 {
		t.Fatalf("got %v, want both tasks and no other", got)
	}

	dnsd.WriteTask(t, "web.yaml", webTasks("127.0.0.2", "127.0.0.3", "127.0.0.4"))
	dnsdtest.Eventually(t, 10*time.Second, func() string {
		if got := seen(6); got["127.0.0.4"] == 0 {
			return fmt.Sprintf("the new task got no connection: %v", got)
		}
		return ""
	})

	dnsd.WriteTask(t, "web.yaml", webTasks("127.0.0.3", "127.0.0.4"))
	dnsdtest.Eventually(t, 10*time.Second, func() string {
		if got := seen(6); got["127.0.0.2"] > 0 {
			return fmt.Sprintf("the removed task still gets connections: %v", got)
		}
		return ""
	})
	if got := seen(20); got["127.0.0.2"] > 0 {
		t.Errorf("got %v after the task left, want none for 127.0.0.2", got)
	}
}
