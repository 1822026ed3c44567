package cluster

import (
	"bytes"
	"cmp"
	"hash/crc32"
	"slices"
	"time"
)

// maxIncarnations is how many incarnations of one node the store keeps
// records for; older ones are dropped.
const maxIncarnations = 4

// store holds what the cluster knows about the other nodes: the newest
// record of each incarnation of each node, and the incarnation memberlist
// currently holds alive. A node's tasks are served only from the record
// of its live incarnation, so a record that outlived its process (still
// travelling in someone's push/pull) can never come back as ghost tasks.
//
// Merging records is a join: per node and incarnation the highest version
// wins, whatever order and however often records arrive. Which incarnation
// is live is a separate input, set from memberlist's events.
//
// A store is not safe for concurrent use; Cluster guards it.
type store struct {
	self  string
	peers map[string]*peer
}

// peer is what the store knows about one other node.
type peer struct {
	recs  map[uint64]*record // by incarnation
	live  bool
	inc   uint64 // the live incarnation, from the node's memberlist meta
	addr  string
	since time.Time // last change of live, or when first heard of

	// applied is the record whose parts are in the catalog, nil if none.
	applied *record
	// asm collects the chunks of the newest record in flight, per
	// incarnation.
	asm map[uint64]*assembly
}

// assembly is a record arriving in chunks.
type assembly struct {
	inc, ver uint64
	total    int
	sum      uint32
	pieces   [][]byte
	got      int
	started  time.Time
}

func newStore(self string) *store {
	return &store{self: self, peers: make(map[string]*peer)}
}

func (s *store) peer(node string, now time.Time) *peer {
	p := s.peers[node]
	if p == nil {
		p = &peer{
			recs:  make(map[uint64]*record),
			asm:   make(map[uint64]*assembly),
			since: now,
		}
		s.peers[node] = p
	}
	return p
}

// stale reports whether a record of node at (inc, ver) brings nothing new:
// it is about this node itself, or the store holds that version or later.
func (s *store) stale(node string, inc, ver uint64) bool {
	if node == s.self {
		return true
	}
	p := s.peers[node]
	if p == nil {
		return false
	}
	have := p.recs[inc]
	return have != nil && have.ver >= ver
}

// put merges r, whose parts must be decoded, and reports whether it was
// new. Of a node's incarnations only the maxIncarnations highest and the
// live one are kept.
func (s *store) put(r *record, now time.Time) bool {
	if s.stale(r.node, r.inc, r.ver) {
		return false
	}
	p := s.peer(r.node, now)
	p.recs[r.inc] = r
	if a := p.asm[r.inc]; a != nil && a.ver <= r.ver {
		delete(p.asm, r.inc)
	}
	for len(p.recs) > maxIncarnations {
		delete(p.recs, lowest(p, p.recs))
	}
	return true
}

// lowest returns the lowest incarnation in m other than the live one.
func lowest[V any](p *peer, m map[uint64]V) uint64 {
	var low uint64
	first := true
	for inc := range m {
		if (first || inc < low) && !(p.live && inc == p.inc) {
			low, first = inc, false
		}
	}
	return low
}

// setAlive records that memberlist holds node alive at incarnation inc.
func (s *store) setAlive(node string, inc uint64, addr string, now time.Time) {
	if node == s.self {
		return
	}
	p := s.peer(node, now)
	if !p.live || p.inc != inc {
		p.since = now
	}
	p.live, p.inc, p.addr = true, inc, addr
}

// setDown records that memberlist declared node dead or that it left.
func (s *store) setDown(node string, now time.Time) {
	p := s.peers[node]
	if p == nil || !p.live {
		return
	}
	p.live = false
	p.since = now
}

// current returns the record whose parts node should have in the catalog,
// or nil.
func (s *store) current(node string) *record {
	p := s.peers[node]
	if p == nil || !p.live {
		return nil
	}
	return p.recs[p.inc]
}

// liveRecords returns the current record of every live node, sorted by
// node name.
func (s *store) liveRecords() []*record {
	var out []*record
	for node := range s.peers {
		if r := s.current(node); r != nil {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *record) int { return cmp.Compare(a.node, b.node) })
	return out
}

// addChunk files c into its node's assembly. It returns the whole record
// once the last chunk arrives, and fresh when c was news worth passing on.
func (s *store) addChunk(c *chunk, now time.Time) (done *record, fresh bool) {
	if s.stale(c.node, c.inc, c.ver) {
		return nil, false
	}
	p := s.peer(c.node, now)
	a := p.asm[c.inc]
	switch {
	case a == nil || c.ver > a.ver:
		a = &assembly{
			inc:     c.inc,
			ver:     c.ver,
			total:   c.total,
			sum:     c.sum,
			pieces:  make([][]byte, c.total),
			started: now,
		}
		p.asm[c.inc] = a
		for len(p.asm) > maxIncarnations {
			delete(p.asm, lowest(p, p.asm))
		}
	case c.ver < a.ver:
		return nil, false // older than the record in flight
	case a.total != c.total || a.sum != c.sum:
		return nil, false // inconsistent with its siblings: drop
	}
	if a.pieces[c.index] != nil {
		return nil, false
	}
	a.pieces[c.index] = c.piece
	a.got++
	if a.got < a.total {
		return nil, true
	}

	delete(p.asm, c.inc)
	payload := bytes.Join(a.pieces, nil)
	if crc32.ChecksumIEEE(payload) != a.sum {
		return nil, true
	}
	return &record{node: c.node, inc: c.inc, ver: c.ver, payload: payload}, true
}

// gc forgets nodes that have been down, or never came alive, for longer
// than ttl, and assemblies that missed a chunk for longer than asmTTL (the
// record will come whole with the next push/pull).
func (s *store) gc(now time.Time, ttl, asmTTL time.Duration) {
	for node, p := range s.peers {
		for inc, a := range p.asm {
			if now.Sub(a.started) > asmTTL {
				delete(p.asm, inc)
			}
		}
		if !p.live && now.Sub(p.since) > ttl {
			delete(s.peers, node)
		}
	}
}
