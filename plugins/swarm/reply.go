package swarm

import (
	"encoding/binary"
	"strconv"

	"github.com/miekg/dns"

	"github.com/swarmdns/swarmdns/internal/catalog"
)

// header flags of every reply: QR and AA.
const flagsQRAA = 1<<15 | 1<<10

// write packs the reply to r into out.
func (s *Swarm) write(out []byte, r *dns.Msg, res *result, tcp bool) ([]byte, error) {
	out, qwire, err := appendQuestion(out, r, res.rcode)
	if err != nil {
		return nil, err
	}
	opt := r.IsEdns0()
	p := packer{
		out:     out,
		limit:   replyLimit(opt, tcp),
		zoneOff: 12 + qwire - res.zoneWire, // the zone inside the question
		ttl:     s.opts.ttl,
		serial:  res.serial,
	}
	if opt != nil {
		p.limit -= optSize
	}

	switch {
	case res.set != nil:
		p.rrs(res.set, s.maxAnswers)
	case res.srv != nil:
		p.srvs(res.srv, s.maxAnswers)
	case res.ptr != nil:
		p.ptr(res.ptr, res.ptrZone)
	case res.apexSOA:
		p.soa()
		p.an++
	case res.apexNS:
		p.ns()
	}
	if res.soa {
		p.soa()
		p.auth++
	}
	if opt != nil {
		p.out = appendOPT(p.out, opt.Do())
		p.ar++
	}

	out = p.out
	if p.tc {
		out[2] |= 1 << 1
	}
	binary.BigEndian.PutUint16(out[6:], p.an)
	binary.BigEndian.PutUint16(out[8:], p.auth)
	binary.BigEndian.PutUint16(out[10:], p.ar)
	return out, nil
}

// appendQuestion writes the header and the question of the reply to r
// into out, and returns the length of the question name in wire form.
// The record counts are left zero for write to fill in.
func appendQuestion(out []byte, r *dns.Msg, rcode int) ([]byte, int, error) {
	q := r.Question[0]
	out = append(out[:0], make([]byte, 12)...)
	binary.BigEndian.PutUint16(out[0:], r.Id)
	flags := uint16(flagsQRAA) | uint16(rcode&0xF)
	if r.RecursionDesired {
		flags |= 1 << 8
	}
	if r.CheckingDisabled {
		flags |= 1 << 4
	}
	binary.BigEndian.PutUint16(out[2:], flags)
	binary.BigEndian.PutUint16(out[4:], 1)

	// PackDomainName writes into the slice's spare room, not past it
	if cap(out) < 12+len(q.Name)+2+4 {
		out = append(make([]byte, 0, 512+len(q.Name)), out...)
	}
	end, err := dns.PackDomainName(q.Name, out[:cap(out)], 12, nil, false)
	if err != nil {
		return nil, 0, err
	}
	out = out[:end]
	out = binary.BigEndian.AppendUint16(out, q.Qtype)
	out = binary.BigEndian.AppendUint16(out, q.Qclass)
	return out, end - 12, nil
}

// replyLimit is the largest reply the client takes: 64 KiB over TCP; over
// UDP 512 bytes, or the size its EDNS0 record gives.
func replyLimit(opt *dns.OPT, tcp bool) int {
	if tcp {
		return dns.MaxMsgSize
	}
	if opt != nil && int(opt.UDPSize()) > dns.MinMsgSize {
		return int(opt.UDPSize())
	}
	return dns.MinMsgSize
}

// packer appends records to a reply without going past its limit.
type packer struct {
	out          []byte
	limit        int
	zoneOff      int
	ttl          uint32
	serial       uint32
	an, auth, ar uint16
	tc           bool
}

// rrs appends a rotated set of fixed-size records, at most max (0: all).
func (p *packer) rrs(set *rrset, max int) {
	n := set.count()
	k := n
	if max > 0 && k > max {
		k = max
	}
	if room := (p.limit - len(p.out)) / set.size; k > room {
		k, p.tc = room, true
	}
	if k <= 0 {
		return
	}
	start := int(set.next.Add(1)-1) % n
	first := min(k, n-start)
	p.out = append(p.out, set.data[start*set.size:(start+first)*set.size]...)
	p.out = append(p.out, set.data[:(k-first)*set.size]...)
	p.an += uint16(k)
}

// srvs appends a rotated set of SRV records, then the addresses of their
// targets in the additional section as far as they fit.
func (p *packer) srvs(set *srvset, max int) {
	n := len(set.recs)
	k := n
	if max > 0 && k > max {
		k = max
	}
	start := int(set.next.Add(1)-1) % n
	var offs [64]uint16
	targets := offs[:0]
	for i := 0; i < k; i++ {
		rec := set.recs[(start+i)%n]
		rdlen := 6 + len(rec.target) + 2
		if len(p.out)+12+rdlen > p.limit {
			p.tc = true
			k = i
			break
		}
		p.out = p.rrHeader(p.out, 0xC000|12, dns.TypeSRV, rdlen)
		p.out = append(p.out, 0, 0, 0, 10)
		p.out = binary.BigEndian.AppendUint16(p.out, rec.port)
		targets = append(targets, uint16(len(p.out)))
		p.out = append(p.out, rec.target...)
		p.out = binary.BigEndian.AppendUint16(p.out, 0xC000|uint16(p.zoneOff))
		p.an++
	}
	for i := 0; i < k && i < len(targets); i++ {
		rec := set.recs[(start+i)%n]
		for _, ip := range rec.addrs {
			typ, size := dns.TypeA, 4
			if !ip.Is4() {
				typ, size = dns.TypeAAAA, 16
			}
			if len(p.out)+12+size > p.limit {
				return // additional records are optional: no TC
			}
			p.out = p.rrHeader(p.out, 0xC000|targets[i], typ, size)
			p.out = append(p.out, ip.AsSlice()...)
			p.ar++
		}
	}
}

func (p *packer) rrHeader(b []byte, owner uint16, typ uint16, rdlen int) []byte {
	b = binary.BigEndian.AppendUint16(b, owner)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, dns.ClassINET)
	b = binary.BigEndian.AppendUint32(b, p.ttl)
	return binary.BigEndian.AppendUint16(b, uint16(rdlen))
}

// ptr appends a PTR record whose target is the task's own name,
// service.slot.id, in zone.
func (p *packer) ptr(task *catalog.Task, zone []byte) {
	var digits [20]byte
	slot := strconv.AppendInt(digits[:0], int64(task.Slot), 10)
	rdlen := 1 + len(task.Service) + 1 + len(slot) + 1 + len(task.ID) + len(zone)
	p.out = p.rrHeader(p.out, 0xC000|12, dns.TypePTR, rdlen)
	p.out = appendLabel(p.out, task.Service)
	p.out = appendLabel(p.out, string(slot))
	p.out = appendLabel(p.out, task.ID)
	p.out = append(p.out, zone...)
	p.an++
}

// appendLabel appends one label, lower-cased; names in the catalog are
// DNS labels.
func appendLabel(b []byte, label string) []byte {
	b = append(b, byte(len(label)))
	return appendLower(b, label)
}

// soa appends the zone's SOA record, its names compressed to the zone in
// the question: ns.dns.<zone> and hostmaster.<zone>.
func (p *packer) soa() {
	zp := 0xC000 | uint16(p.zoneOff)
	p.out = p.rrHeader(p.out, zp, dns.TypeSOA, 9+13+20)
	p.out = append(p.out, 2, 'n', 's', 3, 'd', 'n', 's')
	p.out = binary.BigEndian.AppendUint16(p.out, zp)
	p.out = append(p.out, 10, 'h', 'o', 's', 't', 'm', 'a', 's', 't', 'e', 'r')
	p.out = binary.BigEndian.AppendUint16(p.out, zp)
	p.out = binary.BigEndian.AppendUint32(p.out, p.serial)
	p.out = binary.BigEndian.AppendUint32(p.out, 7200)  // refresh
	p.out = binary.BigEndian.AppendUint32(p.out, 1800)  // retry
	p.out = binary.BigEndian.AppendUint32(p.out, 86400) // expire
	p.out = binary.BigEndian.AppendUint32(p.out, p.ttl) // negative TTL
}

// ns appends the zone's NS record at the apex: ns.dns.<zone>.
func (p *packer) ns() {
	zp := 0xC000 | uint16(p.zoneOff)
	p.out = p.rrHeader(p.out, zp, dns.TypeNS, 9)
	p.out = append(p.out, 2, 'n', 's', 3, 'd', 'n', 's')
	p.out = binary.BigEndian.AppendUint16(p.out, zp)
	p.an++
}

// optSize is the size of the OPT record appendOPT writes.
const optSize = 11

// appendOPT appends an EDNS0 OPT record advertising our UDP size.
func appendOPT(b []byte, do bool) []byte {
	b = append(b, 0) // root owner
	b = binary.BigEndian.AppendUint16(b, dns.TypeOPT)
	b = binary.BigEndian.AppendUint16(b, ednsSize)
	var flags uint32
	if do {
		flags = 1 << 15
	}
	b = binary.BigEndian.AppendUint32(b, flags)
	return binary.BigEndian.AppendUint16(b, 0)
}

// ednsSize is the UDP payload size we advertise: the DNS flag day 2020
// value, which fits common paths without fragmenting.
const ednsSize = 1232
