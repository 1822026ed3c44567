package catalog

import (
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
)

func state(network, subnet, service string, slots ...int) *State {
	s := &State{
		Networks: []Network{{Name: network, Subnets: []netip.Prefix{netip.MustParsePrefix(subnet)}}},
		Services: []Service{{Name: service, Ports: []Port{{Name: "http", Port: 80, Protocol: "tcp"}}}},
	}
	p := netip.MustParsePrefix(subnet)
	for _, slot := range slots {
		ip := p.Addr().AsSlice()
		ip[len(ip)-1] = byte(slot)
		addr, _ := netip.AddrFromSlice(ip)
		s.Tasks = append(s.Tasks, Task{ID: TaskID(service, slot), Service: service, Slot: slot,
			Addrs: []Addr{{Network: network, IP: addr}}})
	}
	return s
}

func TestMerge(t *testing.T) {
	c := New("n1")
	c.Put("n1", "file:a", state("front", "10.0.1.0/24", "web", 1, 2))
	c.Put("n2", "gossip", state("front", "fd00::/64", "web", 3))
	c.Put("n2", "gossip2", &State{Services: []Service{{Name: "web", Mode: ModeVIP,
		Ports: []Port{{Name: "grpc", Port: 9090, Protocol: "tcp"}}}}})

	s := c.Snapshot()
	web := s.Service("web")
	if web == nil {
		t.Fatal("got no service web")
	}
	if got := len(web.Tasks); got != 3 {
		t.Errorf("got %d tasks, want 3", got)
	}
	if got := web.Tasks[2].Node; got != "n2" {
		t.Errorf("got node %q for n2's task, want n2", got)
	}
	if got := len(web.Ports); got != 2 {
		t.Errorf("got ports %v, want http and grpc", web.Ports)
	}
	if web.Mode != ModeVIP {
		t.Errorf("got mode %q, want vip from the only part that names one", web.Mode)
	}
	if got := len(s.Network("front").Subnets); got != 2 {
		t.Errorf("got subnets %v, want both parts'", s.Network("front").Subnets)
	}
	if got := len(s.Nodes); got != 2 {
		t.Errorf("got nodes %v, want n1 and n2", s.Nodes)
	}

	c.RemoveNode("n2")
	s = c.Snapshot()
	if got := len(s.Service("web").Tasks); got != 2 {
		t.Errorf("after RemoveNode: got %d tasks, want 2", got)
	}
	if s.Service("web").Mode != ModeDNSRR {
		t.Errorf("after RemoveNode: got mode %q, want the default dnsrr", s.Service("web").Mode)
	}
	c.Remove("n1", "file:a")
	if got := c.Snapshot().TaskCount(); got != 0 {
		t.Errorf("after Remove: got %d tasks, want 0", got)
	}
}

// TestOrderIndependent puts the same parts in random orders and checks
// that every order makes the same snapshot.
func TestOrderIndependent(t *testing.T) {
	type put struct {
		node, source string
		s            func() *State
	}
	puts := []put{
		{"n1", "a", func() *State { return state("front", "10.0.1.0/24", "web", 1, 2) }},
		{"n2", "a", func() *State { return state("front", "10.0.2.0/24", "web", 3) }},
		{"n3", "b", func() *State { return state("back", "10.0.3.0/24", "db", 1) }},
		{"n1", "c", func() *State { return state("back", "10.0.4.0/24", "api", 1, 2, 3) }},
	}
	var want string
	for i := range 20 {
		c := New("n1")
		for _, j := range rand.Perm(len(puts)) {
			p := puts[j]
			c.Put(p.node, p.source, p.s())
		}
		s := c.Snapshot()
		b, err := json.Marshal(struct {
			N []*Network
			S []*ServiceEntry
			D []NodeEntry
		}{s.Networks, s.Services, s.Nodes})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			want = string(b)
		} else if string(b) != want {
			t.Fatalf("order %d: got %s, want %s", i, b, want)
		}
	}
}

func TestReplaceNode(t *testing.T) {
	c := New("n1")
	c.Put("n2", "a", state("front", "10.0.1.0/24", "web", 1))
	c.Put("n2", "b", state("front", "10.0.1.0/24", "api", 1))
	v := c.Snapshot().Version

	c.ReplaceNode("n2", map[string]*State{"b": state("front", "10.0.1.0/24", "api", 1, 2)})
	s := c.Snapshot()
	if s.Version != v+1 {
		t.Errorf("got version %d, want one snapshot for the whole replacement (%d)", s.Version, v+1)
	}
	if s.Service("web") != nil {
		t.Error("got web after its source was dropped, want it gone")
	}
	if got := len(s.Service("api").Tasks); got != 2 {
		t.Errorf("got %d api tasks, want 2", got)
	}
}

func TestWatchCoalesces(t *testing.T) {
	c := New("n1")
	ch, stop := c.Watch()
	defer stop()
	for i := 1; i <= 5; i++ {
		c.Put("n1", "a", state("front", "10.0.1.0/24", "web", i))
	}
	<-ch
	select {
	case <-ch:
		t.Fatal("got two notifications for changes nobody read, want one")
	default:
	}
	if got := c.Snapshot().Service("web").Tasks[0].Slot; got != 5 {
		t.Errorf("got slot %d, want the latest, 5", got)
	}
}

// TestConcurrentReaders reads snapshots while writers put parts; run it
// with -race.
func TestConcurrentReaders(t *testing.T) {
	c := New("n1")
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				for _, e := range c.Snapshot().Services {
					_ = len(e.Tasks)
				}
			}
		})
	}
	for i := range 200 {
		c.Put("n1", "a", state("front", "10.0.1.0/24", "web", i%250+1))
	}
	close(done)
	wg.Wait()
}

func TestHealth(t *testing.T) {
	for _, h := range []Health{Healthy, Starting, Unhealthy} {
		b, _ := h.MarshalText()
		var got Health
		if err := got.UnmarshalText(b); err != nil || got != h {
			t.Errorf("got %v (%v) back from %q, want %v", got, err, b, h)
		}
	}
	if _, err := ParseHealth("sick"); err == nil {
		t.Error("got no error for health \"sick\", want one")
	}
}
