package swarm

import (
	"encoding/binary"
	"hash/fnv"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/swarmdns/swarmdns/internal/catalog"
)

// table holds every answer the plugin can give for one catalog snapshot,
// packed in wire format when the catalog changes so that a query costs a
// map lookup and a few copies. A table is immutable once built, except for
// the rotation counters in its record sets.
type table struct {
	// names maps a name relative to the zone, lower case ("web",
	// "tasks.web", "_http._tcp.web", "web.1.3f2a9c0d1e4b"), to its answers;
	// empty non-terminals map to emptyNonTerminal.
	names map[string]*name
	// ptr maps a task address to its task, whose own name the PTR record
	// points at.
	ptr map[netip.Addr]*catalog.Task
	// ptrZone is the zone PTR targets are written in, in wire form.
	ptrZone []byte
	// nets are the networks, indexed as views refer to them.
	nets []network
	// revZones are the reverse zones that the networks' subnets define,
	// such as "1.0.10.in-addr.arpa.", longest first.
	revZones []string

	// packs are the packed answers of each service, kept so that the next
	// table can reuse those of services that did not change.
	packs map[string]*servicePack

	services, tasks, nodes int
	serial                 uint32
}

// servicePack is everything one service contributes to a table.
type servicePack struct {
	// sig identifies the service's content; equal sigs, equal packs.
	sig uint64
	// tasks are the own names of the service's tasks, in its task order.
	tasks []*name
	// shared are the names that several tasks make up: the service's,
	// its networks', nodes' and SRV names, and slots with several tasks.
	shared []keyedName
}

type keyedName struct {
	key string
	n   *name
}

// network is one network with the subnets that scope clients to it.
type network struct {
	name    string
	subnets []netip.Prefix
}

// name is everything one owner name answers.
type name struct {
	all view
	// byNet holds the name as seen from inside one network (scope
	// networks), sorted by network index. A network absent here sees
	// nothing of the name.
	byNet []netView
	// onNet, when byNet is empty, is the one network the name is on: seen
	// from inside it the name is the same as from outside. -1: none.
	onNet int32
	// service marks service-level names (web, tasks.web), the only ones
	// answered as bare names.
	service bool
}

type netView struct {
	net int
	v   *view
}

// view is the answers of one name for one audience.
type view struct {
	a, aaaa *rrset
	srv     *srvset
}

func (v *view) empty() bool { return v.a == nil && v.aaaa == nil && v.srv == nil }

// scoped returns the view of n seen from network idx, or nil.
func (n *name) scoped(idx int) *view {
	if n.byNet == nil {
		if int(n.onNet) == idx {
			return &n.all
		}
		return nil
	}
	for i := range n.byNet {
		if n.byNet[i].net == idx {
			return n.byNet[i].v
		}
	}
	return nil
}

// rrset is a set of records of one type and one size, packed back to back
// with the owner name compressed to the question (offset 12), which echoes
// the question's case for free. next rotates the set by one record on
// every answer.
type rrset struct {
	data []byte
	size int
	next atomic.Uint32
}

func (s *rrset) count() int { return len(s.data) / s.size }

// srvset is a set of SRV records. Their targets and the targets' addresses
// are compressed against the question at answer time, so they are kept as
// parts rather than packed.
type srvset struct {
	recs []*srvRec
	next atomic.Uint32
}

type srvRec struct {
	// target is the per-task name relative to the zone, in wire form
	// without the terminating root label.
	target []byte
	port   uint16
	addrs  []netip.Addr
}

// options that change what a table holds.
type tableOptions struct {
	ttl              uint32
	includeUnhealthy bool
	// ptrZone is the zone that PTR targets are written in.
	ptrZone string
}

// record types packed into rrsets: owner pointer, type, class, TTL,
// rdlength, then the address.
const (
	sizeA    = 2 + 2 + 2 + 4 + 2 + 4
	sizeAAAA = 2 + 2 + 2 + 4 + 2 + 16
)

// builder collects the addresses of each name before packing them.
type builder struct {
	opts  tableOptions
	netIx map[string]int
	names map[string]*pending
	order []string
}

// pending is a name's content before packing: its addresses and SRV
// records in answer order, each tagged with the network it came from.
type pending struct {
	service bool
	// nets are networks the name is on even with no address there yet,
	// so that a scoped client sees NODATA rather than NXDOMAIN.
	nets  []int
	addrs []catalog.Addr
	srv   []pendingSRV
}

// pendingSRV is one task's SRV record for one port. The three names that
// carry it share rec, the record as every client sees it.
type pendingSRV struct {
	rec   *srvRec
	addrs []catalog.Addr
}

func (b *builder) get(key string) *pending {
	p, ok := b.names[key]
	if !ok {
		p = &pending{}
		b.names[key] = p
		b.order = append(b.order, key)
	}
	return p
}

func (b *builder) addAddrs(key string, service bool, addrs []catalog.Addr) {
	p := b.get(key)
	p.service = p.service || service
	p.addrs = append(p.addrs, addrs...)
}

// buildTable turns a snapshot into a table. Services that have not
// changed since prev (same networks, same content) keep their packed
// answers, and their rotation goes on where it was; prev may be nil.
//
// TODO: the names map and its empty non-terminals are built anew on every
// catalog change, with the packs of the services that changed: about 0.4 s
// of one core at 100,000 tasks when one service changes, 0.9 s when the
// networks change. Changes that come faster coalesce, and answers lag the
// catalog by the build time.
func buildTable(snap *catalog.Snapshot, opts tableOptions, prev *table) *table {
	b := &builder{
		opts:  opts,
		netIx: make(map[string]int, len(snap.Networks)),
	}
	// sized as the last table was: growing a map of this size is most of
	// the cost of a rebuild
	size, ptrs := 4*snap.TaskCount(), snap.TaskCount()
	if prev != nil {
		size, ptrs = len(prev.names), len(prev.ptr)
	}
	t := &table{
		names:   make(map[string]*name, size),
		ptr:     make(map[netip.Addr]*catalog.Task, ptrs),
		ptrZone: packName(opts.ptrZone),
		packs:   make(map[string]*servicePack, len(snap.Services)),
		serial:  uint32(snap.Version),
	}
	for i, n := range snap.Networks {
		b.netIx[n.Name] = i
		t.nets = append(t.nets, network{name: n.Name, subnets: n.Subnets})
		for _, p := range n.Subnets {
			t.revZones = append(t.revZones, reverseZone(p))
		}
	}
	// longest reverse zone first, so the most specific one owns a name
	slices.SortStableFunc(t.revZones, func(x, y string) int { return len(y) - len(x) })
	if prev != nil && !slices.EqualFunc(prev.nets, t.nets, sameNetwork) {
		prev = nil // views are indexed by network: pack everything again
	}

	nodes := make(map[string]struct{})
	for _, e := range snap.Services {
		sig := signature(e)
		pack := prev.pack(e.Name, sig)
		if pack == nil {
			pack = b.packService(e, sig)
		}
		t.packs[e.Name] = pack
		t.install(e, pack)
		for _, task := range e.Tasks {
			nodes[task.Node] = struct{}{}
		}
		t.services++
		t.tasks += len(e.Tasks)
	}
	t.nodes = len(nodes)
	for _, e := range snap.Services {
		for _, kn := range t.packs[e.Name].shared {
			if _, ok := t.names[kn.key]; !ok {
				t.names[kn.key] = kn.n // a slot's name wins over a network named like it
			}
		}
	}
	t.addEmptyNonTerminals()
	return t
}

// pack returns the pack of service name if t has one with signature sig.
func (t *table) pack(name string, sig uint64) *servicePack {
	if t == nil {
		return nil
	}
	if p := t.packs[name]; p != nil && p.sig == sig {
		return p
	}
	return nil
}

func sameNetwork(a, b network) bool {
	return a.name == b.name && slices.Equal(a.subnets, b.subnets)
}

// install puts a service's per-task names, slot names and reverse names
// into the table.
func (t *table) install(e *catalog.ServiceEntry, pack *servicePack) {
	svc := strings.ToLower(e.Name)
	for i, task := range e.Tasks {
		slot := svc + "." + strconv.Itoa(task.Slot)
		t.names[slot+"."+strings.ToLower(task.ID)] = pack.tasks[i]
		// tasks come sorted by slot: a slot of one task is that task
		lone := (i == 0 || e.Tasks[i-1].Slot != task.Slot) &&
			(i == len(e.Tasks)-1 || e.Tasks[i+1].Slot != task.Slot)
		if lone {
			t.names[slot] = pack.tasks[i]
		}
		for _, a := range task.Addrs {
			if _, ok := t.ptr[a.IP]; !ok {
				t.ptr[a.IP] = task // the first task to claim an address keeps it
			}
		}
	}
}

// addEmptyNonTerminals adds the names that have nothing of their own but
// have names below them. They share the names map, so that a miss costs
// one lookup.
func (t *table) addEmptyNonTerminals() {
	var ents []string
	for key := range t.names {
		for rest := parentName(key); rest != ""; rest = parentName(rest) {
			if _, ok := t.names[rest]; !ok {
				ents = append(ents, rest)
			}
		}
	}
	for _, key := range ents {
		t.names[key] = emptyNonTerminal
	}
}

// signature hashes everything of a service that its answers depend on.
func signature(e *catalog.ServiceEntry) uint64 {
	h := fnv.New64a()
	var buf [8]byte
	str := func(s string) { h.Write([]byte(s)); h.Write([]byte{0}) }
	num := func(n int) { binary.LittleEndian.PutUint64(buf[:], uint64(n)); h.Write(buf[:]) }
	addr := func(a catalog.Addr) { str(a.Network); b, _ := a.IP.MarshalBinary(); h.Write(b) }

	str(e.Name)
	str(e.Mode)
	for _, p := range e.Ports {
		str(p.Name)
		str(p.Protocol)
		num(int(p.Port))
	}
	for _, n := range e.Networks {
		str(n)
	}
	for _, a := range e.VIPs {
		addr(a)
	}
	for _, task := range e.Tasks {
		str(task.ID)
		str(task.Node)
		num(task.Slot)
		num(int(task.Health))
		for _, a := range task.Addrs {
			addr(a)
		}
	}
	return h.Sum64()
}

// emptyNonTerminal stands for every name that has nothing of its own but
// has names below it ("1.3f2a9c0d1e4b", "_tcp.web", "nodes"): it exists,
// so it answers NODATA rather than NXDOMAIN.
var emptyNonTerminal = &name{onNet: -1}

// parentName strips the first label: "a.b.c" gives "b.c", "c" gives "".
func parentName(s string) string {
	i := strings.IndexByte(s, '.')
	if i < 0 {
		return ""
	}
	return s[i+1:]
}

func (b *builder) serves(t *catalog.Task) bool {
	return t.Health == catalog.Healthy || b.opts.includeUnhealthy
}

// packService packs the answers of one service.
func (b *builder) packService(e *catalog.ServiceEntry, sig uint64) *servicePack {
	b.names, b.order = make(map[string]*pending), nil
	pack := &servicePack{sig: sig, tasks: make([]*name, len(e.Tasks))}
	svc := strings.ToLower(e.Name)
	tasksName := "tasks." + svc

	// the service name answers its virtual IPs in vip mode, else its tasks
	if e.Mode == catalog.ModeVIP && len(e.VIPs) > 0 {
		b.addAddrs(svc, true, e.VIPs)
		for _, a := range e.VIPs {
			b.addAddrs(svc+"."+a.Network, true, []catalog.Addr{a})
		}
	}
	vip := e.Mode == catalog.ModeVIP && len(e.VIPs) > 0
	// names exist while the service does, even with no task to answer
	b.get(tasksName).service = true
	b.get(svc).service = true
	for _, nw := range e.Networks {
		idx, ok := b.netIx[nw]
		if !ok {
			continue
		}
		for _, key := range []string{svc, tasksName, svc + "." + nw, tasksName + "." + nw} {
			p := b.get(key)
			p.nets = append(p.nets, idx)
		}
	}

	for i, task := range e.Tasks {
		slot := svc + "." + strconv.Itoa(task.Slot)
		own := slot + "." + strings.ToLower(task.ID)
		node := strings.ToLower(task.Node)

		// a task's own names answer whatever its health, so that an
		// operator can always reach it; the slot name is the task's own
		// unless several nodes run the same slot (install decides)
		pack.tasks[i] = b.packTask(task)
		if (i > 0 && e.Tasks[i-1].Slot == task.Slot) ||
			(i < len(e.Tasks)-1 && e.Tasks[i+1].Slot == task.Slot) {
			b.addAddrs(slot, false, task.Addrs)
		}
		if !b.serves(task) {
			continue
		}
		b.addAddrs(tasksName, true, task.Addrs)
		b.addAddrs("tasks."+svc+"."+node+".nodes", false, task.Addrs)
		b.addAddrs(svc+"."+node+".nodes", false, task.Addrs)
		if !vip {
			b.addAddrs(svc, true, task.Addrs)
		}
		for _, a := range task.Addrs {
			if !vip {
				b.addAddrs(svc+"."+a.Network, false, []catalog.Addr{a})
			}
			b.addAddrs("tasks."+svc+"."+a.Network, false, []catalog.Addr{a})
		}
		if len(e.Ports) == 0 {
			continue
		}
		target := packLabels(own)
		ips := make([]netip.Addr, len(task.Addrs))
		for i, a := range task.Addrs {
			ips[i] = a.IP
		}
		for _, p := range e.Ports {
			srvName := "_" + strings.ToLower(p.Name) + "._" + p.Protocol + "."
			rec := pendingSRV{
				rec:   &srvRec{target: target, port: p.Port, addrs: ips},
				addrs: task.Addrs,
			}
			for _, owner := range []string{svc, tasksName, svc + "." + node + ".nodes"} {
				sp := b.get(srvName + owner)
				sp.srv = append(sp.srv, rec)
			}
		}
	}
	for _, key := range b.order {
		pack.shared = append(pack.shared, keyedName{key: key, n: b.pack(b.names[key])})
	}
	return pack
}

// packTask packs the answers of a task's own name.
func (b *builder) packTask(task *catalog.Task) *name {
	n := &name{onNet: -1}
	n.all = b.packView(task.Addrs, nil, -1)
	b.addByNet(n, task.Addrs, nil, nil)
	return n
}

// pack turns a pending name into its views: one for clients outside every
// network, one for each network it has addresses on.
func (b *builder) pack(p *pending) *name {
	n := &name{service: p.service, onNet: -1}
	n.all = b.packView(p.addrs, p.srv, -1)
	b.addByNet(n, p.addrs, p.srv, p.nets)
	return n
}

// addByNet adds the views of n from inside each network. A name on one
// network only shows the same records from inside it as from outside, so
// it shares the outside view rather than packing it again.
func (b *builder) addByNet(n *name, addrs []catalog.Addr, srv []pendingSRV, nets []int) {
	var seen []int
	note := func(idx int) {
		if !slices.Contains(seen, idx) {
			seen = append(seen, idx)
		}
	}
	for _, idx := range nets {
		note(idx)
	}
	for _, a := range addrs {
		note(b.netIx[a.Network])
	}
	for _, r := range srv {
		for _, a := range r.addrs {
			note(b.netIx[a.Network])
		}
	}
	if len(seen) == 1 {
		n.onNet = int32(seen[0])
		return
	}
	slices.Sort(seen)
	for _, idx := range seen {
		v := b.packView(addrs, srv, idx)
		if !v.empty() || slices.Contains(nets, idx) {
			n.byNet = append(n.byNet, netView{net: idx, v: &v})
		}
	}
}

// packView packs the records of one audience: every address when net is
// -1, else only the addresses on network net.
func (b *builder) packView(addrs []catalog.Addr, srv []pendingSRV, net int) view {
	var v view
	n4, n6 := 0, 0
	for _, a := range addrs {
		if net >= 0 && b.netIx[a.Network] != net {
			continue
		}
		if a.IP.Is4() {
			n4++
		} else {
			n6++
		}
	}
	// sized exactly: these live as long as the table
	a4 := make([]byte, 0, n4*sizeA)
	a6 := make([]byte, 0, n6*sizeAAAA)
	for _, a := range addrs {
		if net >= 0 && b.netIx[a.Network] != net {
			continue
		}
		if a.IP.Is4() {
			a4 = appendRRHeader(a4, dns.TypeA, b.opts.ttl, 4)
			ip := a.IP.As4()
			a4 = append(a4, ip[:]...)
		} else {
			a6 = appendRRHeader(a6, dns.TypeAAAA, b.opts.ttl, 16)
			ip := a.IP.As16()
			a6 = append(a6, ip[:]...)
		}
	}
	if len(a4) > 0 {
		v.a = &rrset{data: a4, size: sizeA}
	}
	if len(a6) > 0 {
		v.aaaa = &rrset{data: a6, size: sizeAAAA}
	}

	var recs []*srvRec
	for _, r := range srv {
		if net < 0 {
			recs = append(recs, r.rec)
			continue
		}
		var ips []netip.Addr
		for _, a := range r.addrs {
			if b.netIx[a.Network] == net {
				ips = append(ips, a.IP)
			}
		}
		if len(ips) > 0 {
			recs = append(recs, &srvRec{target: r.rec.target, port: r.rec.port, addrs: ips})
		}
	}
	if len(recs) > 0 {
		v.srv = &srvset{recs: recs}
	}
	return v
}

// appendRRHeader appends a record header whose owner is the question.
func appendRRHeader(b []byte, typ uint16, ttl uint32, rdlen int) []byte {
	b = append(b, 0xC0, 12)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, dns.ClassINET)
	b = binary.BigEndian.AppendUint32(b, ttl)
	return binary.BigEndian.AppendUint16(b, uint16(rdlen))
}

// packLabels packs a relative dotted name ("web.1.abc") into wire labels
// without the root label. Names come from validated DNS labels.
func packLabels(s string) []byte {
	out := make([]byte, 0, len(s)+1)
	for label := range strings.SplitSeq(s, ".") {
		out = append(out, byte(len(label)))
		out = append(out, label...)
	}
	return out
}

// packName packs an absolute dotted name ("web.1.abc.swarm.internal.").
func packName(s string) []byte {
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return []byte{0}
	}
	return append(packLabels(s), 0)
}

// reverseZone names the reverse zone of a subnet, widened to the nearest
// label boundary: 10.0.1.0/24 gives 1.0.10.in-addr.arpa., 10.0.0.0/20
// gives 0.10.in-addr.arpa.
func reverseZone(p netip.Prefix) string {
	var sb strings.Builder
	ip := p.Masked().Addr()
	if ip.Is4() {
		b := ip.As4()
		for i := p.Bits()/8 - 1; i >= 0; i-- {
			sb.WriteString(strconv.Itoa(int(b[i])))
			sb.WriteByte('.')
		}
		sb.WriteString("in-addr.arpa.")
		return sb.String()
	}
	b := ip.As16()
	const hex = "0123456789abcdef"
	for i := p.Bits()/4 - 1; i >= 0; i-- {
		nib := b[i/2] >> 4
		if i%2 == 1 {
			nib = b[i/2] & 0x0f
		}
		sb.WriteByte(hex[nib])
		sb.WriteByte('.')
	}
	sb.WriteString("ip6.arpa.")
	return sb.String()
}

// networkOf returns the index of the network whose subnet holds ip, or -1.
func (t *table) networkOf(ip netip.Addr) int {
	ip = ip.Unmap()
	for i := range t.nets {
		for _, p := range t.nets[i].subnets {
			if p.Contains(ip) {
				return i
			}
		}
	}
	return -1
}
