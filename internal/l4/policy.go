package l4

import (
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
)

// picker chooses an upstream for a new connection from eps, skipping the
// ones in tried and those not usable at now (unix nanoseconds). It returns
// nil when none is left. Implementations are safe for concurrent use and
// do not allocate.
type picker interface {
	pick(eps []*endpoint, client netip.Addr, tried []*endpoint, now int64) *endpoint
}

// newPicker returns the picker of policy p.
func newPicker(p Policy) picker {
	switch p {
	case LeastConn:
		return &leastConn{}
	case RandomTwo:
		return randomTwo{}
	case Hash:
		return rendezvous{}
	}
	return &roundRobin{}
}

// candidate reports whether ep may be picked.
func candidate(ep *endpoint, tried []*endpoint, now int64) bool {
	if !ep.usable(now) {
		return false
	}
	for _, t := range tried {
		if t == ep {
			return false
		}
	}
	return true
}

// roundRobin takes the upstreams in turn, passing over unusable ones.
type roundRobin struct{ next atomic.Uint64 }

func (r *roundRobin) pick(eps []*endpoint, _ netip.Addr, tried []*endpoint, now int64) *endpoint {
	n := uint64(len(eps))
	if n == 0 {
		return nil
	}
	start := r.next.Add(1) - 1
	for i := range n {
		if ep := eps[(start+i)%n]; candidate(ep, tried, now) {
			return ep
		}
	}
	return nil
}

// leastConn takes the upstream with the fewest open connections. The scan
// starts at a rotating offset so ties spread instead of piling onto the
// first upstream.
type leastConn struct{ next atomic.Uint64 }

func (l *leastConn) pick(eps []*endpoint, _ netip.Addr, tried []*endpoint, now int64) *endpoint {
	n := uint64(len(eps))
	if n == 0 {
		return nil
	}
	start := l.next.Add(1) - 1
	var best *endpoint
	var least int64
	for i := range n {
		ep := eps[(start+i)%n]
		if !candidate(ep, tried, now) {
			continue
		}
		if a := ep.active.Load(); best == nil || a < least {
			best, least = ep, a
		}
	}
	return best
}

// randomTwo draws two distinct upstreams and keeps the one with fewer open
// connections ("power of two choices"). When a draw hits an unusable
// upstream it falls back to a full least-connections scan.
type randomTwo struct{}

func (randomTwo) pick(eps []*endpoint, client netip.Addr, tried []*endpoint, now int64) *endpoint {
	n := len(eps)
	switch n {
	case 0:
		return nil
	case 1:
		if candidate(eps[0], tried, now) {
			return eps[0]
		}
		return nil
	}
	i := rand.IntN(n)
	j := rand.IntN(n - 1)
	if j >= i {
		j++
	}
	a, b := eps[i], eps[j]
	if !candidate(a, tried, now) || !candidate(b, tried, now) {
		var lc leastConn
		lc.next.Store(uint64(i))
		return lc.pick(eps, client, tried, now)
	}
	if b.active.Load() < a.active.Load() {
		return b
	}
	return a
}

// rendezvous is highest-random-weight hashing on the client IP: each
// upstream scores every client, and the client goes to the best score.
// Adding an upstream moves only the clients it now wins; removing one
// moves only its own clients. A retry takes the next best score.
type rendezvous struct{}

func (rendezvous) pick(eps []*endpoint, client netip.Addr, tried []*endpoint, now int64) *endpoint {
	h := hashAddr(client)
	var best *endpoint
	var top uint64
	for _, ep := range eps {
		if !candidate(ep, tried, now) {
			continue
		}
		if s := mix64(h ^ ep.seed); best == nil || s > top {
			best, top = ep, s
		}
	}
	return best
}

// hashAddr is FNV-1a over the 16-byte form of a, so a client scores the
// same in every lb process and on every node.
func hashAddr(a netip.Addr) uint64 {
	b := a.Unmap().As16()
	return fnv64(b[:])
}

func fnv64(b []byte) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for _, c := range b {
		h ^= uint64(c)
		h *= prime
	}
	return h
}

// mix64 is the splitmix64 finaliser: it spreads every input bit over the
// whole output, so scores of one client against different upstreams are
// unrelated.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
