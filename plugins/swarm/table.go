package swarm

import (
	"encoding/binary"
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
	// ptr maps a task address to the wire labels of its task's name,
	// relative to ptrZone.
	ptr map[netip.Addr][]byte
	// ptrZone is the zone PTR targets are written in, in wire form.
	ptrZone []byte
	// nets are the networks, indexed as views refer to them.
	nets []network
	// revZones are the reverse zones that the networks' subnets define.
	revZones []revZone

	services, tasks, nodes int
	serial                 uint32
}

// network is one network with the subnets that scope clients to it.
type network struct {
	name    string
	subnets []netip.Prefix
}

// revZone is a reverse zone and the subnet that made it.
type revZone struct {
	name   string // e.g. "1.0.10.in-addr.arpa."
	prefix netip.Prefix
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
	// task is the task of a per-task name.
	task *catalog.Task
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

// buildTable turns a snapshot into a table.
//
// TODO: the table is packed whole on every catalog change, about a second
// of one core at 100,000 tasks; changes that come faster coalesce, and
// answers lag the catalog by the build time. Packing only the services a
// change touches would need the catalog to keep unchanged entries.
func buildTable(snap *catalog.Snapshot, opts tableOptions) *table {
	b := &builder{
		opts:  opts,
		netIx: make(map[string]int, len(snap.Networks)),
		names: make(map[string]*pending),
	}
	t := &table{
		names:   make(map[string]*name),
		ptr:     make(map[netip.Addr][]byte),
		ptrZone: packName(opts.ptrZone),
		serial:  uint32(snap.Version),
	}
	for i, n := range snap.Networks {
		b.netIx[n.Name] = i
		t.nets = append(t.nets, network{name: n.Name, subnets: n.Subnets})
		for _, p := range n.Subnets {
			t.revZones = append(t.revZones, revZone{name: reverseZone(p), prefix: p})
		}
	}
	// longest reverse zone first, so the most specific one owns a name
	slices.SortStableFunc(t.revZones, func(x, y revZone) int { return len(y.name) - len(x.name) })

	nodes := make(map[string]struct{})
	for _, e := range snap.Services {
		b.addService(t, e)
		for _, task := range e.Tasks {
			nodes[task.Node] = struct{}{}
		}
		t.services++
		t.tasks += len(e.Tasks)
	}
	t.nodes = len(nodes)

	for _, key := range b.order {
		if _, ok := t.names[key]; ok {
			continue // a slot's name wins over a network named like a slot
		}
		t.names[key] = b.pack(b.names[key])
	}
	// the empty non-terminals share the names map, so that a miss costs
	// one lookup
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
	return t
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

func (b *builder) addService(t *table, e *catalog.ServiceEntry) {
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

	slots := make(map[string]*name, len(e.Tasks))
	for _, task := range e.Tasks {
		slot := svc + "." + strconv.Itoa(task.Slot)
		own := slot + "." + strings.ToLower(task.ID)
		node := strings.ToLower(task.Node)

		// a task's own names answer whatever its health, so that an
		// operator can always reach it; the slot name shares the task's
		// answers unless several nodes run the same slot
		tn := b.packTask(task)
		t.names[own] = tn
		if first, ok := slots[slot]; !ok {
			slots[slot] = tn
		} else {
			if first != nil {
				b.addAddrs(slot, false, first.task.Addrs)
				slots[slot] = nil
			}
			b.addAddrs(slot, false, task.Addrs)
		}
		target := packLabels(own)
		b.addPTR(t, task, target)
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
	for slot, tn := range slots {
		if tn != nil {
			t.names[slot] = tn
		}
	}
}

// packTask packs the answers of a task's own name.
func (b *builder) packTask(task *catalog.Task) *name {
	n := &name{task: task, onNet: -1}
	n.all = b.packView(task.Addrs, nil, -1)
	b.addByNet(n, task.Addrs, nil, nil)
	return n
}

func (b *builder) addPTR(t *table, task *catalog.Task, target []byte) {
	for _, a := range task.Addrs {
		if _, ok := t.ptr[a.IP]; !ok {
			t.ptr[a.IP] = target // the first task to claim an address keeps it
		}
	}
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
