package dnstest

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Task is one task of a service as the swarm plugin would publish it.
type Task struct {
	// Addr is the task's address on the service's network.
	Addr netip.Addr
	// Node is the name of the node that runs the task.
	Node string
}

// Port is a published port of a service, answered as an SRV record
// _<Name>._<Proto>.<service>.<zone>.
type Port struct {
	// Name is the port's label without underscore, such as "http".
	Name string
	// Proto is "tcp" or "udp".
	Proto string
	// Number is the task port.
	Number uint16
}

// Swarm answers the names the swarm CoreDNS plugin answers, for services
// set by the test. Its methods are safe for concurrent use.
type Swarm struct {
	*Server
	zone string
	ttl  uint32

	mu    sync.Mutex
	nodes map[string]map[string]bool // service -> nodes ever set
}

// StartSwarm runs a Swarm for zone (such as "swarm.internal") whose
// answers carry ttl seconds.
func StartSwarm(tb testing.TB, zone string, ttl uint32) *Swarm {
	tb.Helper()
	return &Swarm{
		Server: Start(tb),
		zone:   strings.Trim(zone, "."),
		ttl:    ttl,
		nodes:  map[string]map[string]bool{},
	}
}

// Zone returns the zone the Swarm answers.
func (w *Swarm) Zone() string { return w.zone }

// SetService publishes service with tasks and ports, replacing what was
// set before: tasks.<service>.<zone> and <service>.<zone> answer every
// task, tasks.<service>.<node>.nodes.<zone> and <service>.<node>.nodes.<zone>
// answer the node's tasks, and each port adds SRV records at
// _<port>._<proto>.<service>.<zone> and under the node names, with the task
// addresses in the additional section. Nodes that lose their last task
// keep answering with no records.
func (w *Swarm) SetService(service string, tasks []Task, ports ...Port) {
	byNode := map[string][]Task{}
	for _, t := range tasks {
		byNode[t.Node] = append(byNode[t.Node], t)
	}

	// a node that ran tasks before must now answer empty, not stale
	w.mu.Lock()
	seen := w.nodes[service]
	if seen == nil {
		seen = map[string]bool{}
		w.nodes[service] = seen
	}
	for node := range byNode {
		seen[node] = true
	}
	for node := range seen {
		if _, ok := byNode[node]; !ok {
			byNode[node] = nil
		}
	}
	w.mu.Unlock()

	w.setNames(service+"."+w.zone, tasks, ports)
	for node, nt := range byNode {
		w.setNames(service+"."+node+".nodes."+w.zone, nt, ports)
	}
}

// setNames sets the address and SRV names for one service name suffix.
func (w *Swarm) setNames(base string, tasks []Task, ports []Port) {
	var a, aaaa []dns.RR
	for _, t := range tasks {
		a, aaaa = w.addrRR(a, aaaa, "tasks."+base, t.Addr)
	}
	for _, owner := range []string{"tasks." + base, base} {
		w.Set(owner, dns.TypeA, retarget(a, owner), nil)
		w.Set(owner, dns.TypeAAAA, retarget(aaaa, owner), nil)
	}

	for _, p := range ports {
		var srv, extra []dns.RR
		owner := dns.Fqdn("_" + p.Name + "._" + p.Proto + "." + base)
		for i, t := range tasks {
			target := dns.Fqdn("task" + strconv.Itoa(i) + "." + base)
			srv = append(srv, &dns.SRV{
				Hdr:      w.hdr(owner, dns.TypeSRV),
				Priority: 10,
				Weight:   10,
				Port:     p.Number,
				Target:   target,
			})
			var a4, a6 []dns.RR
			a4, a6 = w.addrRR(a4, a6, target, t.Addr)
			extra = append(append(extra, a4...), a6...)
		}
		w.Set(owner, dns.TypeSRV, srv, extra)
	}
}

// addrRR appends an A or AAAA record for addr to the matching slice.
func (w *Swarm) addrRR(a, aaaa []dns.RR, owner string, addr netip.Addr) ([]dns.RR, []dns.RR) {
	if addr.Is4() {
		return append(a, &dns.A{Hdr: w.hdr(owner, dns.TypeA), A: net.IP(addr.AsSlice())}), aaaa
	}
	rr := &dns.AAAA{Hdr: w.hdr(owner, dns.TypeAAAA), AAAA: net.IP(addr.AsSlice())}
	return a, append(aaaa, rr)
}

func (w *Swarm) hdr(owner string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: dns.Fqdn(owner), Rrtype: t, Class: dns.ClassINET, Ttl: w.ttl}
}

// retarget copies rrs with their owner name set to owner.
func retarget(rrs []dns.RR, owner string) []dns.RR {
	out := make([]dns.RR, 0, len(rrs))
	for _, rr := range rrs {
		c := dns.Copy(rr)
		c.Header().Name = dns.Fqdn(owner)
		out = append(out, c)
	}
	return out
}
