package swarm

import (
	"context"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/pkg/fall"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"

	"github.com/swarmdns/swarmdns/internal/catalog"
)

// Swarm is the swarm plugin's handler: it answers service, task and
// reverse names from the catalog through a packed answer table.
//
// ServeDNS is safe for concurrent use; the table it reads is swapped
// atomically by the goroutine that follows the catalog.
type Swarm struct {
	// Next is the plugin that names outside our zones, and names inside
	// them under fallthrough, are handed to.
	Next plugin.Handler

	zones      []zone
	bareNames  bool
	scope      bool
	maxAnswers int
	fall       fall.F
	opts       tableOptions

	table atomic.Pointer[table]
}

// zone is a forward zone we answer for, lower case and absolute.
type zone struct {
	name string
	wire int // length of the name in wire form
}

func newZone(name string) zone {
	name = strings.ToLower(dns.Fqdn(name))
	if name == "." {
		return zone{name: name, wire: 1}
	}
	return zone{name: name, wire: len(name) + 1}
}

// Name implements plugin.Handler.
func (s *Swarm) Name() string { return "swarm" }

// Ready implements ready.Readiness: the plugin is ready once it has a
// table, which setup builds before the server starts.
func (s *Swarm) Ready() bool { return s.table.Load() != nil }

// ServeDNS implements plugin.Handler.
func (s *Swarm) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	t := s.table.Load()
	if t == nil || len(r.Question) != 1 || r.Question[0].Qclass != dns.ClassINET {
		return plugin.NextOrFailure(s.Name(), s.Next, ctx, w, r)
	}
	q := r.Question[0]

	var lower [256]byte
	qname := appendLower(lower[:0], q.Name)
	res := s.resolve(t, qname, q.Qtype, w.RemoteAddr())
	res.serial = t.serial
	if res.pass {
		return plugin.NextOrFailure(s.Name(), s.Next, ctx, w, r)
	}

	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	out, err := s.write((*bp)[:0], r, &res, isTCP(w))
	if err != nil {
		return dns.RcodeServerFailure, err
	}
	*bp = out
	countAnswer(q.Qtype, res.rcode)
	return res.rcode, writeRaw(w, out, res.rcode)
}

// result is what a query resolves to, before it is written.
type result struct {
	rcode int
	pass  bool // hand the query to the next plugin

	set *rrset  // answer records (A, AAAA or PTR)
	srv *srvset // answer SRV records
	// ptr and ptrZone are the answer's PTR target: the task whose own
	// name it is, and the zone that name is written in.
	ptr     *catalog.Task
	ptrZone []byte
	// apex answers at a zone's apex
	apexSOA, apexNS bool
	// soa puts the zone's SOA in the authority section (negative answers)
	soa bool
	// zoneWire is the wire length of the zone that the SOA, NS and SRV
	// targets are written in; the question ends with it.
	zoneWire int
	serial   uint32
}

func (s *Swarm) resolve(t *table, qname []byte, qtype uint16, remote net.Addr) result {
	if isReverse(qname) {
		return s.resolveReverse(t, qname, qtype)
	}
	z, ok := s.zoneOf(qname)
	if !ok {
		return s.resolveBare(t, qname, qtype, remote)
	}
	res := result{zoneWire: z.wire}
	rel := relative(qname, z)
	if len(rel) == 0 {
		res.apex(qtype)
		return res
	}

	n := t.names[string(rel)]
	if n == emptyNonTerminal {
		res.soa = true
		return res
	}
	if n == nil {
		if s.fall.Through(string(qname)) {
			return result{pass: true}
		}
		res.rcode, res.soa = dns.RcodeNameError, true
		return res
	}

	v := s.viewFor(t, n, remote)
	if v == nil {
		// the name exists, but not on the client's network
		res.rcode, res.soa = dns.RcodeNameError, true
		return res
	}
	s.pick(&res, v, qtype)
	if res.set == nil && res.srv == nil {
		res.soa = true
	}
	return res
}

// resolveBare answers web. and tasks.web. as Docker's embedded DNS does,
// for clients without a search domain; everything else goes on.
func (s *Swarm) resolveBare(t *table, qname []byte, qtype uint16, remote net.Addr) result {
	if !s.bareNames || len(qname) < 2 {
		return result{pass: true}
	}
	n := t.names[string(qname[:len(qname)-1])]
	if n == nil || !n.service {
		return result{pass: true}
	}
	v := s.viewFor(t, n, remote)
	if v == nil {
		return result{pass: true}
	}
	res := result{zoneWire: 1}
	s.pick(&res, v, qtype)
	return res
}

func (s *Swarm) resolveReverse(t *table, qname []byte, qtype uint16) result {
	ip, ok := parseReverse(qname)
	rz := ""
	for _, z := range t.revZones {
		if hasLabelSuffix(qname, z) {
			rz = z
			break
		}
	}
	if rz == "" {
		return result{pass: true}
	}
	res := result{zoneWire: len(rz) + 1}
	if len(qname) == len(rz) {
		res.apex(qtype)
		return res
	}
	task := t.ptr[ip]
	switch {
	case !ok || task == nil:
		if s.fall.Through(string(qname)) {
			return result{pass: true}
		}
		res.rcode, res.soa = dns.RcodeNameError, true
	case qtype == dns.TypePTR || qtype == dns.TypeANY:
		res.ptr, res.ptrZone = task, t.ptrZone
	default:
		res.soa = true
	}
	return res
}

// apex answers a query for the zone's own name: its SOA or NS, else
// NODATA.
func (res *result) apex(qtype uint16) {
	switch qtype {
	case dns.TypeSOA:
		res.apexSOA = true
	case dns.TypeNS:
		res.apexNS = true
	default:
		res.soa = true
	}
}

// pick chooses the records of v that answer qtype.
func (s *Swarm) pick(res *result, v *view, qtype uint16) {
	switch qtype {
	case dns.TypeA:
		res.set = v.a
	case dns.TypeAAAA:
		res.set = v.aaaa
	case dns.TypeSRV:
		res.srv = v.srv
	case dns.TypeANY:
		// RFC 8482 lets us answer a subset; addresses are what is asked
		res.set = v.a
		if res.set == nil {
			res.set = v.aaaa
		}
	}
}

// viewFor returns the view of n that the client at remote may see: all of
// it, or under scope networks only what is on the client's network.
func (s *Swarm) viewFor(t *table, n *name, remote net.Addr) *view {
	if !s.scope {
		return &n.all
	}
	idx := t.networkOf(remoteIP(remote))
	if idx < 0 {
		return &n.all
	}
	return n.scoped(idx)
}

func (s *Swarm) zoneOf(qname []byte) (zone, bool) {
	for _, z := range s.zones {
		if hasLabelSuffix(qname, z.name) {
			return z, true
		}
	}
	return zone{}, false
}

// relative strips the zone and the dot before it: "web.swarm.internal."
// in swarm.internal. gives "web"; the apex gives "".
func relative(qname []byte, z zone) []byte {
	if z.name == "." {
		return qname[:len(qname)-1]
	}
	n := len(qname) - len(z.name)
	if n == 0 {
		return nil
	}
	return qname[:n-1]
}

// hasLabelSuffix reports whether name is zone or lies below it. Both are
// lower case and absolute.
func hasLabelSuffix(name []byte, zone string) bool {
	if zone == "." {
		return true
	}
	if len(name) < len(zone) || string(name[len(name)-len(zone):]) != zone {
		return false
	}
	return len(name) == len(zone) || name[len(name)-len(zone)-1] == '.'
}

func appendLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

func isTCP(w dns.ResponseWriter) bool {
	_, ok := w.RemoteAddr().(*net.TCPAddr)
	return ok
}

func remoteIP(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 1024)
	return &b
}}

// writeRaw sends a packed reply. CoreDNS hands plugins a writer wrapped by
// the plugins before them; where every wrapper is one that only records
// (log, prometheus), tracks (the chain's own) or scrubs (the server's), the
// bytes go out as they are and the recorders are told what went out. Any
// other wrapper (cache, dnstap, loadbalance, rewrite) wants a dns.Msg, so
// it gets one.
func writeRaw(w dns.ResponseWriter, out []byte, rcode int) error {
	if rawOK(w, out, rcode) {
		_, err := w.Write(out)
		return err
	}
	// TODO: a writer that wants a dns.Msg gets the packed answer unpacked,
	// which costs about what building the message would have; cache and
	// dnstap before swarm lose most of the packing's gain.
	m := new(dns.Msg)
	if err := m.Unpack(out); err != nil {
		return err
	}
	return w.WriteMsg(m)
}

// chainWriter is the type of the writer that CoreDNS's plugin chain wraps
// around each plugin's writer to track which plugin answered. It is not
// exported, so it is learnt from the chain itself.
var chainWriter = func() reflect.Type {
	var t reflect.Type
	probe := func(_ context.Context, w dns.ResponseWriter, _ *dns.Msg) (int, error) {
		t = reflect.TypeOf(w)
		return 0, nil
	}
	plugin.NextOrFailure("swarm", plugin.HandlerFunc(probe), context.Background(),
		&request.ScrubWriter{}, nil)
	return t
}()

// rawOK walks the writer chain: it reports whether raw bytes may be
// written through it, and tells the recorders it passes the rcode (and
// log's recorder the header, which it prints).
func rawOK(w dns.ResponseWriter, out []byte, rcode int) bool {
	for {
		switch x := w.(type) {
		case *request.ScrubWriter:
			return true
		case *metrics.Recorder:
			x.Rcode = rcode
			w = x.Recorder.ResponseWriter
		case *dnstest.Recorder:
			x.Rcode = rcode
			x.Msg = headerOnly(out)
			w = x.ResponseWriter
		default:
			if reflect.TypeOf(w) != chainWriter {
				return false
			}
			inner, ok := reflect.ValueOf(w).Elem().Field(0).Interface().(dns.ResponseWriter)
			if !ok {
				return false
			}
			w = inner
		}
	}
}

// headerOnly returns a message with the header of the packed reply out
// and no records, for recorders that read the header.
func headerOnly(out []byte) *dns.Msg {
	var hdr [12]byte
	copy(hdr[:4], out) // id and flags; the counts stay zero
	m := new(dns.Msg)
	m.Unpack(hdr[:]) // twelve bytes with no records always unpack
	return m
}
