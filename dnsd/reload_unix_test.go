//go:build !windows

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/swarmdns/swarmdns/internal/dnsdtest"
)

// TestReloadKeepsCatalog reloads the Corefile (SIGUSR1, as CoreDNS's
// reload plugin does on a change) while a client keeps asking, and checks
// that the new options take effect and that no answer goes missing.
func TestReloadKeepsCatalog(t *testing.T) {
	s := dnsdtest.Start(t, dnsdtest.Options{Swarm: "ttl 5"})
	s.WriteTask(t, "web.yaml", networks+webFile(1, 2))
	answers(t, s, "web.swarm.internal", ips(1, 2))

	conf := filepath.Join(s.Dir, "Corefile")
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte(strings.Replace(string(b), "ttl 5", "ttl 7", 1)),
		0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Process().Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	queries := 0
	dnsdtest.Eventually(t, 20*time.Second, func() string {
		queries++
		got, r, err := dnsdtest.Query(s.Addr, "udp", "web.swarm.internal", dns.TypeA)
		if err != nil {
			return err.Error()
		}
		if len(got) != 2 {
			t.Fatalf("query %d during reload: got %v (%s), want both tasks", queries, got,
				dns.RcodeToString[r.Rcode])
		}
		if ttl := r.Answer[0].Header().Ttl; ttl != 7 {
			return fmt.Sprintf("got TTL %d, want 7 after the reload", ttl)
		}
		return ""
	})
	if strings.Contains(s.Log(), "task directory dropped") {
		t.Errorf("the reload dropped the task directory:\n%s", s.Log())
	}
}
