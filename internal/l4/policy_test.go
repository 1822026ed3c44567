package l4

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// testEndpoints makes n endpoints 10.1.0.1:80, 10.1.0.2:80, ...
func testEndpoints(n int) []*endpoint {
	eps := make([]*endpoint, n)
	for i := range eps {
		a := netip.MustParseAddrPort(fmt.Sprintf("10.1.0.%d:80", i+1))
		eps[i] = &endpoint{addr: a, name: a.String(), seed: fnv64([]byte(a.String()))}
	}
	return eps
}

// clients makes n distinct client addresses.
func clients(n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)})
	}
	return out
}

func assign(eps []*endpoint, cs []netip.Addr) map[netip.Addr]*endpoint {
	out := make(map[netip.Addr]*endpoint, len(cs))
	for _, c := range cs {
		out[c] = rendezvous{}.pick(eps, c, nil, 0)
	}
	return out
}

// TestHashConsistency checks the rendezvous property: a change of the
// upstream set moves only the clients it must, and spreads the rest.
func TestHashConsistency(t *testing.T) {
	const n = 10000
	cs := clients(n)
	eps := testEndpoints(6)
	before := assign(eps[:5], cs)

	t.Run("adding an upstream moves only its share to it", func(t *testing.T) {
		after := assign(eps, cs)
		moved := 0
		for c, ep := range after {
			if ep == before[c] {
				continue
			}
			moved++
			if ep != eps[5] {
				t.Fatalf("client %v moved between old upstreams %s -> %s", c, before[c].name, ep.name)
			}
		}
		// expected n/6; allow a wide band, the hash is fixed
		if moved < n/6*7/10 || moved > n/6*13/10 {
			t.Errorf("got %d clients moved, want about %d", moved, n/6)
		}
	})
	t.Run("removing an upstream moves only its clients", func(t *testing.T) {
		gone := eps[2]
		rest := []*endpoint{eps[0], eps[1], eps[3], eps[4]}
		after := assign(rest, cs)
		for c, ep := range after {
			if before[c] != gone && ep != before[c] {
				t.Fatalf("client %v of %s moved to %s", c, before[c].name, ep.name)
			}
		}
	})
	t.Run("a down upstream moves only its clients, and they come back", func(t *testing.T) {
		eps[1].downUntil.Store(time.Now().Add(time.Hour).UnixNano())
		now := time.Now().UnixNano()
		for _, c := range cs {
			got := rendezvous{}.pick(eps[:5], c, nil, now)
			if before[c] != eps[1] && got != before[c] {
				t.Fatalf("client %v moved off a healthy upstream", c)
			}
		}
		eps[1].downUntil.Store(0)
		for c, ep := range assign(eps[:5], cs) {
			if ep != before[c] {
				t.Fatalf("client %v did not return to %s", c, before[c].name)
			}
		}
	})
	t.Run("spread is even", func(t *testing.T) {
		count := map[*endpoint]int{}
		for _, ep := range before {
			count[ep]++
		}
		for ep, k := range count {
			if k < n/5*8/10 || k > n/5*12/10 {
				t.Errorf("upstream %s got %d of %d clients, want about %d", ep.name, k, n, n/5)
			}
		}
	})
}

func TestPickersSkip(t *testing.T) {
	for _, p := range []Policy{RoundRobin, LeastConn, RandomTwo, Hash} {
		t.Run(string(p), func(t *testing.T) {
			eps := testEndpoints(4)
			pk := newPicker(p)
			now := time.Now().UnixNano()
			eps[0].checkDown.Store(true)
			eps[1].downUntil.Store(now + int64(time.Hour))
			client := netip.MustParseAddr("192.0.2.1")
			for range 50 {
				got := pk.pick(eps, client, []*endpoint{eps[2]}, now)
				if got != eps[3] {
					t.Fatalf("got %v, want the one usable untried upstream %s", got, eps[3].name)
				}
			}
			if got := pk.pick(eps, client, []*endpoint{eps[2], eps[3]}, now); got != nil {
				t.Errorf("got %s with every upstream down or tried, want nil", got.name)
			}
			if got := pk.pick(nil, client, nil, now); got != nil {
				t.Errorf("got %s from an empty set, want nil", got.name)
			}
		})
	}
}

func TestLeastConnPrefersIdle(t *testing.T) {
	eps := testEndpoints(3)
	eps[0].active.Store(5)
	eps[1].active.Store(1)
	eps[2].active.Store(3)
	lc := newPicker(LeastConn)
	for range 10 {
		if got := lc.pick(eps, netip.Addr{}, nil, 0); got != eps[1] {
			t.Fatalf("got %s, want %s", got.name, eps[1].name)
		}
	}
}

func TestClampTTL(t *testing.T) {
	tests := []struct {
		name   string
		ttl    time.Duration
		lo, hi time.Duration
		want   time.Duration
	}{
		{"unknown is the floor", 0, time.Second, 30 * time.Second, time.Second},
		{"below floor", 100 * time.Millisecond, time.Second, 30 * time.Second, time.Second},
		{"inside", 7 * time.Second, time.Second, 30 * time.Second, 7 * time.Second},
		{"above ceiling", time.Hour, time.Second, 30 * time.Second, 30 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := clampTTL(tc.ttl, tc.lo, tc.hi); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
