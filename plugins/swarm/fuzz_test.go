package swarm

import (
	"context"
	"net"
	"testing"

	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
)

// FuzzServeDNS feeds the handler whatever a packed message can say. What
// the server would drop before the plugin (no question, unpackable) is
// skipped; everything else must be answered with a reply that unpacks and
// matches its query.
func FuzzServeDNS(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"web.swarm.internal.", dns.TypeA},
		{"_http._tcp.web.swarm.internal.", dns.TypeSRV},
		{"12.1.0.10.in-addr.arpa.", dns.TypePTR},
		{"nope.swarm.internal.", dns.TypeAAAA},
		{"swarm.internal.", dns.TypeSOA},
		{"web.", dns.TypeA},
	} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		m.SetEdns0(4096, true)
		b, _ := m.Pack()
		f.Add(b, false)
	}
	h := newTestHandler(f, "bare_names\nscope networks\nmax_answers 3", testState())

	f.Fuzz(func(t *testing.T, packet []byte, tcp bool) {
		r := new(dns.Msg)
		if err := r.Unpack(packet); err != nil || len(r.Question) != 1 {
			return
		}
		ip := net.IPv4(10, 0, 2, 9)
		cw := &captureWriter{remote: &net.UDPAddr{IP: ip, Port: 53}}
		if tcp {
			cw.remote = &net.TCPAddr{IP: ip, Port: 53}
		}
		if _, err := h.ServeDNS(context.Background(), request.NewScrubWriter(r, cw), r); err != nil {
			// a question name that cannot be packed again is an error
			// the server reports, not a crash
			return
		}
		if cw.raw == nil {
			return // handed on to the next plugin
		}
		if cw.msg.Id != r.Id || len(cw.msg.Question) != 1 ||
			!dns.IsSubDomain(".", cw.msg.Question[0].Name) {
			t.Fatalf("reply %v does not match query %v", cw.msg, r)
		}
		limit := 65535
		if !tcp {
			limit = dns.MinMsgSize
			if o := r.IsEdns0(); o != nil && int(o.UDPSize()) > limit {
				limit = int(o.UDPSize())
			}
		}
		if len(cw.raw) > limit {
			t.Fatalf("reply of %d bytes over a limit of %d", len(cw.raw), limit)
		}
	})
}
