package catalog

import (
	"cmp"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
)

// Catalog merges the parts that task sources and the gossip layer put into
// it, and publishes the result as immutable snapshots.
//
// All methods are safe for concurrent use. Snapshot never blocks; the
// writing methods serialise on one mutex and rebuild the snapshot before
// they return, so a reader that calls Snapshot after Put returned sees the
// change.
type Catalog struct {
	self string

	mu       sync.Mutex
	parts    map[partKey]*State
	version  uint64
	watchers map[chan struct{}]struct{}

	snap atomic.Pointer[Snapshot]
}

type partKey struct {
	node   string
	source string
}

// New returns an empty catalog for the node named self: parts put without
// naming another node are that node's own.
func New(self string) *Catalog {
	c := &Catalog{
		self:     self,
		parts:    make(map[partKey]*State),
		watchers: make(map[chan struct{}]struct{}),
	}
	c.snap.Store(build(self, 0, nil))
	return c
}

// Self returns the name of the node this catalog belongs to.
func (c *Catalog) Self() string { return c.self }

// Snapshot returns the current merged view. It never blocks, and the
// snapshot it returns never changes.
func (c *Catalog) Snapshot() *Snapshot { return c.snap.Load() }

// Put replaces what source on node says with s. A nil or empty s removes
// the part. The catalog keeps s and sets the Node of its tasks to node (a
// part speaks for its node: its tasks run there); the caller must not
// change s afterwards.
func (c *Catalog) Put(node, source string, s *State) {
	claim(node, s)
	c.mu.Lock()
	defer c.mu.Unlock()

	k := partKey{node: node, source: source}
	if s == nil || (len(s.Networks) == 0 && len(s.Services) == 0 && len(s.Tasks) == 0) {
		if _, ok := c.parts[k]; !ok {
			return
		}
		delete(c.parts, k)
	} else {
		c.parts[k] = s
	}
	c.publishLocked()
}

// claim sets the node of every task of s: a part speaks for its node.
func claim(node string, s *State) {
	if s == nil {
		return
	}
	for i := range s.Tasks {
		s.Tasks[i].Node = node
	}
}

// Remove drops what source on node says.
func (c *Catalog) Remove(node, source string) { c.Put(node, source, nil) }

// RemoveNode drops every part of node: what a dead or departed node said
// leaves every answer at once.
func (c *Catalog) RemoveNode(node string) {
	c.mu.Lock()
	defer c.mu.Unlock()

	changed := false
	for k := range c.parts {
		if k.node == node {
			delete(c.parts, k)
			changed = true
		}
	}
	if changed {
		c.publishLocked()
	}
}

// ReplaceNode makes parts, keyed by source, everything node says: sources
// missing from parts are dropped, and empty states count as missing. The
// change is published as one snapshot, so readers never see a mix of the
// node's old and new parts. The catalog keeps the states: the caller must
// not change them afterwards; as Put does, the catalog sets the Node of
// their tasks.
func (c *Catalog) ReplaceNode(node string, parts map[string]*State) {
	for _, s := range parts {
		claim(node, s)
	}
	c.mu.Lock()
	defer c.mu.Unlock()

	changed := false
	for k, s := range c.parts {
		if k.node == node && (parts[k.source] == nil || parts[k.source] != s) {
			delete(c.parts, k)
			changed = true
		}
	}
	for source, s := range parts {
		k := partKey{node: node, source: source}
		if s == nil || (len(s.Networks) == 0 && len(s.Services) == 0 && len(s.Tasks) == 0) {
			continue
		}
		if c.parts[k] != s {
			c.parts[k] = s
			changed = true
		}
	}
	if changed {
		c.publishLocked()
	}
}

// NodeParts returns the parts of node keyed by source. The states are
// shared with the catalog and must not be changed.
func (c *Catalog) NodeParts(node string) map[string]*State {
	c.mu.Lock()
	defer c.mu.Unlock()

	out := make(map[string]*State)
	for k, s := range c.parts {
		if k.node == node {
			out[k.source] = s
		}
	}
	return out
}

// Watch returns a channel that receives a value after every change, and a
// function that stops the watch. Notifications coalesce: a slow reader sees
// one value for many changes and then reads the latest snapshot.
func (c *Catalog) Watch() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	c.watchers[ch] = struct{}{}
	c.mu.Unlock()

	stop := func() {
		c.mu.Lock()
		delete(c.watchers, ch)
		c.mu.Unlock()
	}
	return ch, stop
}

func (c *Catalog) publishLocked() {
	c.version++
	keys := make([]partKey, 0, len(c.parts))
	for k := range c.parts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b partKey) int {
		return cmp.Or(cmp.Compare(a.node, b.node), cmp.Compare(a.source, b.source))
	})
	parts := make([]part, len(keys))
	for i, k := range keys {
		parts[i] = part{node: k.node, state: c.parts[k]}
	}
	c.snap.Store(build(c.self, c.version, parts))

	for ch := range c.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

type part struct {
	node  string
	state *State
}

// Snapshot is the merged catalog at one moment. It is immutable: every
// field and everything it points to may be read from any goroutine and
// must not be changed.
type Snapshot struct {
	// Version grows by one with every change to the catalog.
	Version uint64
	// Self is the node the catalog belongs to.
	Self string
	// Networks are sorted by name.
	Networks []*Network
	// Services are sorted by name.
	Services []*ServiceEntry
	// Nodes are sorted by name: every node that owns a part.
	Nodes []NodeEntry

	networks map[string]*Network
	services map[string]*ServiceEntry
}

// ServiceEntry is a service with its tasks from every node.
type ServiceEntry struct {
	Service
	// Tasks are sorted by slot, then node, then id.
	Tasks []*Task
}

// NodeEntry counts what one node contributes.
type NodeEntry struct {
	Name  string
	Tasks int
}

// Network returns the network called name, or nil.
func (s *Snapshot) Network(name string) *Network { return s.networks[name] }

// Service returns the service called name, or nil.
func (s *Snapshot) Service(name string) *ServiceEntry { return s.services[name] }

// TaskCount returns how many tasks the snapshot holds.
func (s *Snapshot) TaskCount() int {
	n := 0
	for _, e := range s.Services {
		n += len(e.Tasks)
	}
	return n
}

// build merges parts, which come sorted by node and source, so that the
// same parts always make the same snapshot whatever order they arrived in.
func build(self string, version uint64, parts []part) *Snapshot {
	s := &Snapshot{
		Version:  version,
		Self:     self,
		networks: make(map[string]*Network),
		services: make(map[string]*ServiceEntry),
	}
	nodeTasks := make(map[string]int)
	for _, p := range parts {
		nodeTasks[p.node] += 0 // a node with no tasks is still a node
		for i := range p.state.Networks {
			s.mergeNetwork(&p.state.Networks[i])
		}
		for i := range p.state.Services {
			s.mergeService(&p.state.Services[i])
		}
		for i := range p.state.Tasks {
			s.addTask(&p.state.Tasks[i])
			nodeTasks[p.node]++
		}
	}
	s.finish(nodeTasks)
	return s
}

func (s *Snapshot) mergeNetwork(n *Network) {
	have, ok := s.networks[n.Name]
	if !ok {
		c := &Network{Name: n.Name, Subnets: slices.Clone(n.Subnets)}
		s.networks[n.Name] = c
		s.Networks = append(s.Networks, c)
		return
	}
	for _, p := range n.Subnets {
		if !slices.Contains(have.Subnets, p) {
			have.Subnets = append(have.Subnets, p)
		}
	}
}

func (s *Snapshot) service(name string) *ServiceEntry {
	e, ok := s.services[name]
	if !ok {
		e = &ServiceEntry{Service: Service{Name: name}}
		s.services[name] = e
		s.Services = append(s.Services, e)
	}
	return e
}

func (s *Snapshot) mergeService(v *Service) {
	e := s.service(v.Name)
	if e.Mode == "" {
		e.Mode = v.Mode
	}
	for _, p := range v.Ports {
		if !slices.ContainsFunc(e.Ports, func(q Port) bool {
			return q.Name == p.Name && q.Protocol == p.Protocol
		}) {
			e.Ports = append(e.Ports, p)
		}
	}
	for _, n := range v.Networks {
		if !slices.Contains(e.Networks, n) {
			e.Networks = append(e.Networks, n)
		}
	}
	for _, a := range v.VIPs {
		if !slices.Contains(e.VIPs, a) {
			e.VIPs = append(e.VIPs, a)
		}
	}
}

func (s *Snapshot) addTask(t *Task) {
	e := s.service(t.Service)
	e.Tasks = append(e.Tasks, t)
	for _, a := range t.Addrs {
		if !slices.Contains(e.Networks, a.Network) {
			e.Networks = append(e.Networks, a.Network)
		}
	}
}

func (s *Snapshot) finish(nodeTasks map[string]int) {
	slices.SortFunc(s.Networks, func(a, b *Network) int { return cmp.Compare(a.Name, b.Name) })
	for _, n := range s.Networks {
		slices.SortFunc(n.Subnets, comparePrefix)
	}
	slices.SortFunc(s.Services, func(a, b *ServiceEntry) int { return cmp.Compare(a.Name, b.Name) })
	for _, e := range s.Services {
		if e.Mode == "" {
			e.Mode = ModeDNSRR
		}
		slices.Sort(e.Networks)
		slices.SortFunc(e.Tasks, func(a, b *Task) int {
			return cmp.Or(cmp.Compare(a.Slot, b.Slot), cmp.Compare(a.Node, b.Node),
				cmp.Compare(a.ID, b.ID))
		})
	}
	for name, n := range nodeTasks {
		s.Nodes = append(s.Nodes, NodeEntry{Name: name, Tasks: n})
	}
	slices.SortFunc(s.Nodes, func(a, b NodeEntry) int { return cmp.Compare(a.Name, b.Name) })
}

func comparePrefix(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}
