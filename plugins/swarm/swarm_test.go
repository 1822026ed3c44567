package swarm

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"

	"github.com/swarmdns/swarmdns/internal/catalog"
)

// testState is the catalog the answer tests run against: two networks,
// web with two healthy tasks and one unhealthy, api on both networks with
// an IPv6 address, and db in vip mode.
func testState() *catalog.State {
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	return &catalog.State{
		Networks: []catalog.Network{
			{Name: "frontend", Subnets: []netip.Prefix{p("10.0.1.0/24"), p("fd00:1::/64")}},
			{Name: "backend", Subnets: []netip.Prefix{p("10.0.2.0/24")}},
		},
		Services: []catalog.Service{
			{Name: "web", Ports: []catalog.Port{{Name: "http", Port: 80, Protocol: "tcp"}}},
			{Name: "api", Ports: []catalog.Port{{Name: "grpc", Port: 9090, Protocol: "tcp"}}},
			{Name: "db", Mode: catalog.ModeVIP,
				VIPs: []catalog.Addr{{Network: "backend", IP: a("10.0.2.2")}}},
		},
		Tasks: []catalog.Task{
			{ID: "aaaa00000001", Service: "web", Slot: 1,
				Addrs: []catalog.Addr{{Network: "frontend", IP: a("10.0.1.11")}}},
			{ID: "aaaa00000002", Service: "web", Slot: 2,
				Addrs: []catalog.Addr{{Network: "frontend", IP: a("10.0.1.12")}}},
			{ID: "aaaa00000003", Service: "web", Slot: 3, Health: catalog.Unhealthy,
				Addrs: []catalog.Addr{{Network: "frontend", IP: a("10.0.1.13")}}},
			{ID: "bbbb00000001", Service: "api", Slot: 1, Addrs: []catalog.Addr{
				{Network: "frontend", IP: a("10.0.1.21")},
				{Network: "frontend", IP: a("fd00:1::21")},
				{Network: "backend", IP: a("10.0.2.21")},
			}},
			{ID: "cccc00000001", Service: "db", Slot: 1,
				Addrs: []catalog.Addr{{Network: "backend", IP: a("10.0.2.31")}}},
		},
	}
}

// newTestHandler returns a handler for corefile options over st, with a
// next plugin that answers REFUSED so that handing on can be seen.
func newTestHandler(t testing.TB, opts string, st *catalog.State) *Swarm {
	t.Helper()
	cfg := parseTest(t, "swarm {\n"+opts+"\n}")
	cat := catalog.New("n1")
	cat.Put("n1", "test", st)
	cfg.h.rebuild(cat.Snapshot())
	cfg.h.Next = plugin.HandlerFunc(func(_ context.Context, w dns.ResponseWriter,
		r *dns.Msg) (int, error) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeRefused)
		return dns.RcodeRefused, w.WriteMsg(m)
	})
	return cfg.h
}

// captureWriter is a dns.ResponseWriter that keeps what is written.
type captureWriter struct {
	remote net.Addr
	msg    *dns.Msg
	raw    []byte
}

var serverAddr = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}

func (w *captureWriter) LocalAddr() net.Addr       { return serverAddr }
func (w *captureWriter) RemoteAddr() net.Addr      { return w.remote }
func (w *captureWriter) Close() error              { return nil }
func (w *captureWriter) TsigStatus() error         { return nil }
func (w *captureWriter) TsigTimersOnly(bool)       {}
func (w *captureWriter) Hijack()                   {}
func (w *captureWriter) WriteMsg(m *dns.Msg) error { w.msg = m; return nil }
func (w *captureWriter) Write(b []byte) (int, error) {
	w.raw = append([]byte(nil), b...)
	w.msg = new(dns.Msg)
	return len(b), w.msg.Unpack(b)
}

type query struct {
	name   string
	qtype  uint16
	from   string // client address; default 192.0.2.1
	tcp    bool
	bufsiz uint16 // EDNS0 size; 0: no OPT
}

// ask sends q through the server's scrub writer, as CoreDNS does.
func ask(t testing.TB, h *Swarm, q query) *dns.Msg {
	t.Helper()
	r := new(dns.Msg)
	r.SetQuestion(q.name, q.qtype)
	if q.bufsiz > 0 {
		r.SetEdns0(q.bufsiz, false)
	}
	from := q.from
	if from == "" {
		from = "192.0.2.1"
	}
	ip := net.ParseIP(from)
	cw := &captureWriter{remote: &net.UDPAddr{IP: ip, Port: 5353}}
	if q.tcp {
		cw.remote = &net.TCPAddr{IP: ip, Port: 5353}
	}
	if _, err := h.ServeDNS(context.Background(), request.NewScrubWriter(r, cw), r); err != nil {
		t.Fatalf("ServeDNS(%s %s): %v", q.name, dns.TypeToString[q.qtype], err)
	}
	if cw.msg == nil {
		t.Fatalf("ServeDNS(%s): nothing written", q.name)
	}
	return cw.msg
}

// rdata returns the answers' data as text, in order.
func rdata(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		f := strings.Fields(rr.String())
		out = append(out, strings.Join(f[4:], " "))
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestAnswers(t *testing.T) {
	tests := []struct {
		name   string
		opts   string
		q      query
		rcode  int
		answer []string // sorted rdata of the answer section
		ns     int      // records in the authority section
		extra  []string // sorted rdata of the additional section, OPT left out
		next   bool     // handed to the next plugin
	}{
		{name: "service A healthy only", q: query{name: "web.swarm.internal.", qtype: dns.TypeA},
			answer: []string{"10.0.1.11", "10.0.1.12"}},
		{name: "tasks name", q: query{name: "tasks.web.swarm.internal.", qtype: dns.TypeA},
			answer: []string{"10.0.1.11", "10.0.1.12"}},
		{name: "include unhealthy", opts: "include_unhealthy",
			q:      query{name: "web.swarm.internal.", qtype: dns.TypeA},
			answer: []string{"10.0.1.11", "10.0.1.12", "10.0.1.13"}},
		{name: "slot name", q: query{name: "web.3.swarm.internal.", qtype: dns.TypeA},
			answer: []string{"10.0.1.13"}},
		{name: "task name", q: query{name: "web.2.aaaa00000002.swarm.internal.", qtype: dns.TypeA},
			answer: []string{"10.0.1.12"}},
		{name: "network name", q: query{name: "api.backend.swarm.internal.", qtype: dns.TypeA},
			answer: []string{"10.0.2.21"}},
		{name: "all networks", q: query{name: "api.swarm.internal.", qtype: dns.TypeA},
			answer: []string{"10.0.1.21", "10.0.2.21"}},
		{name: "AAAA", q: query{name: "api.swarm.internal.", qtype: dns.TypeAAAA},
			answer: []string{"fd00:1::21"}},
		{name: "node name", q: query{name: "web.n1.nodes.swarm.internal.", qtype: dns.TypeA},
			answer: []string{"10.0.1.11", "10.0.1.12"}},
		{name: "vip mode", q: query{name: "db.swarm.internal.", qtype: dns.TypeA},
			answer: []string{"10.0.2.2"}},
		{name: "vip mode tasks", q: query{name: "tasks.db.swarm.internal.", qtype: dns.TypeA},
			answer: []string{"10.0.2.31"}},
		{name: "SRV with additionals",
			q: query{name: "_http._tcp.web.swarm.internal.", qtype: dns.TypeSRV},
			answer: []string{
				"0 10 80 web.1.aaaa00000001.swarm.internal.",
				"0 10 80 web.2.aaaa00000002.swarm.internal.",
			},
			extra: []string{"10.0.1.11", "10.0.1.12"}},
		{name: "SRV dual stack",
			q:      query{name: "_grpc._tcp.api.swarm.internal.", qtype: dns.TypeSRV},
			answer: []string{"0 10 9090 api.1.bbbb00000001.swarm.internal."},
			extra:  []string{"10.0.1.21", "10.0.2.21", "fd00:1::21"}},
		{name: "PTR", q: query{name: "12.1.0.10.in-addr.arpa.", qtype: dns.TypePTR},
			answer: []string{"web.2.aaaa00000002.swarm.internal."}},
		{name: "PTR v6", q: query{name: reverse6("fd00:1::21"), qtype: dns.TypePTR},
			answer: []string{"api.1.bbbb00000001.swarm.internal."}},
		{name: "PTR unknown in subnet", q: query{name: "99.1.0.10.in-addr.arpa.", qtype: dns.TypePTR},
			rcode: dns.RcodeNameError, ns: 1},
		{name: "PTR outside subnets", q: query{name: "1.2.0.192.in-addr.arpa.", qtype: dns.TypePTR},
			next: true},
		{name: "NXDOMAIN with SOA", q: query{name: "nope.swarm.internal.", qtype: dns.TypeA},
			rcode: dns.RcodeNameError, ns: 1},
		{name: "NODATA with SOA", q: query{name: "web.swarm.internal.", qtype: dns.TypeAAAA},
			ns: 1},
		{name: "NODATA at empty non-terminal",
			q: query{name: "_tcp.web.swarm.internal.", qtype: dns.TypeA}, ns: 1},
		{name: "apex SOA", q: query{name: "swarm.internal.", qtype: dns.TypeSOA},
			answer: []string{"ns.dns.swarm.internal. hostmaster.swarm.internal. 1 7200 1800 86400 5"}},
		{name: "apex NS", q: query{name: "swarm.internal.", qtype: dns.TypeNS},
			answer: []string{"ns.dns.swarm.internal."}},
		{name: "fallthrough", opts: "fallthrough",
			q: query{name: "nope.swarm.internal.", qtype: dns.TypeA}, next: true},
		{name: "outside the zone", q: query{name: "example.org.", qtype: dns.TypeA}, next: true},
		{name: "bare name off", q: query{name: "web.", qtype: dns.TypeA}, next: true},
		{name: "bare name", opts: "bare_names", q: query{name: "web.", qtype: dns.TypeA},
			answer: []string{"10.0.1.11", "10.0.1.12"}},
		{name: "bare tasks name", opts: "bare_names", q: query{name: "tasks.web.", qtype: dns.TypeA},
			answer: []string{"10.0.1.11", "10.0.1.12"}},
		{name: "bare task name not served", opts: "bare_names",
			q: query{name: "web.1.", qtype: dns.TypeA}, next: true},
		{name: "scope: client on backend sees backend address", opts: "scope networks",
			q:      query{name: "api.swarm.internal.", qtype: dns.TypeA, from: "10.0.2.99"},
			answer: []string{"10.0.2.21"}},
		{name: "scope: service not on client's network", opts: "scope networks",
			q:     query{name: "web.swarm.internal.", qtype: dns.TypeA, from: "10.0.2.99"},
			rcode: dns.RcodeNameError, ns: 1},
		{name: "scope: client outside networks sees all", opts: "scope networks",
			q:      query{name: "api.swarm.internal.", qtype: dns.TypeA, from: "127.0.0.1"},
			answer: []string{"10.0.1.21", "10.0.2.21"}},
		{name: "other zone", opts: "", q: query{name: "web.cluster.example.org.", qtype: dns.TypeA},
			next: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHandler(t, tc.opts, testState())
			m := ask(t, h, tc.q)
			if tc.next {
				if m.Rcode != dns.RcodeRefused {
					t.Fatalf("got rcode %s, want the next plugin's REFUSED", dns.RcodeToString[m.Rcode])
				}
				return
			}
			if m.Rcode != tc.rcode {
				t.Errorf("got rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
			}
			if !m.Authoritative {
				t.Errorf("got AA unset, want set")
			}
			if got := sorted(rdata(m.Answer)); !slices.Equal(got, sorted(tc.answer)) {
				t.Errorf("got answer %v, want %v", got, tc.answer)
			}
			if len(m.Ns) != tc.ns {
				t.Errorf("got %d authority records, want %d", len(m.Ns), tc.ns)
			}
			if tc.ns > 0 && m.Ns[0].Header().Rrtype != dns.TypeSOA {
				t.Errorf("got authority %v, want the SOA", m.Ns[0])
			}
			if got := sorted(rdata(m.Extra)); !slices.Equal(got, sorted(tc.extra)) {
				t.Errorf("got additional %v, want %v", got, tc.extra)
			}
		})
	}
}

func reverse6(s string) string {
	r, _ := dns.ReverseAddr(s)
	return r
}

// TestRotation checks true round robin: N consecutive answers each put a
// different record first, and each is the previous one moved by one.
func TestRotation(t *testing.T) {
	st := testState()
	for i := 4; i <= 8; i++ {
		st.Tasks = append(st.Tasks, catalog.Task{
			ID: catalog.TaskID("web", i), Service: "web", Slot: i,
			Addrs: []catalog.Addr{{Network: "frontend",
				IP: netip.AddrFrom4([4]byte{10, 0, 1, byte(10 + i)})}},
		})
	}
	h := newTestHandler(t, "", st)
	q := query{name: "web.swarm.internal.", qtype: dns.TypeA}
	prev := rdata(ask(t, h, q).Answer)
	firsts := map[string]bool{prev[0]: true}
	for i := 1; i < len(prev); i++ {
		got := rdata(ask(t, h, q).Answer)
		want := append(slices.Clone(prev[1:]), prev[0])
		if !slices.Equal(got, want) {
			t.Fatalf("answer %d: got %v, want %v", i, got, want)
		}
		firsts[got[0]] = true
		prev = got
	}
	if len(firsts) != len(prev) {
		t.Errorf("got %d distinct first records in %d answers, want %d", len(firsts),
			len(prev), len(prev))
	}
}

func TestCaseAndTTL(t *testing.T) {
	h := newTestHandler(t, "ttl 42", testState())
	m := ask(t, h, query{name: "WeB.Swarm.INTERNAL.", qtype: dns.TypeA})
	if len(m.Answer) == 0 {
		t.Fatal("got no answer, want web's tasks")
	}
	if got := m.Question[0].Name; got != "WeB.Swarm.INTERNAL." {
		t.Errorf("got question %q, want it echoed", got)
	}
	for _, rr := range m.Answer {
		if got := rr.Header().Name; got != "WeB.Swarm.INTERNAL." {
			t.Errorf("got owner %q, want the question's case", got)
		}
		if got := rr.Header().Ttl; got != 42 {
			t.Errorf("got TTL %d, want 42", got)
		}
	}
}

// bigState is one service with n tasks on one network.
func bigState(n int) *catalog.State {
	st := &catalog.State{
		Networks: []catalog.Network{{Name: "big",
			Subnets: []netip.Prefix{netip.MustParsePrefix("10.8.0.0/14")}}},
		Services: []catalog.Service{{Name: "web",
			Ports: []catalog.Port{{Name: "http", Port: 80, Protocol: "tcp"}}}},
	}
	for i := 1; i <= n; i++ {
		ip := netip.AddrFrom4([4]byte{10, 8 + byte(i>>16), byte(i >> 8), byte(i)})
		st.Tasks = append(st.Tasks, catalog.Task{
			ID: catalog.TaskID("web", i), Service: "web", Slot: i,
			Addrs: []catalog.Addr{{Network: "big", IP: ip}},
		})
	}
	return st
}

func TestTruncation(t *testing.T) {
	tests := []struct {
		name  string
		opts  string
		q     query
		count int
		tc    bool
	}{
		{name: "udp 512", q: query{qtype: dns.TypeA}, count: (512 - 12 - 22) / sizeA, tc: true},
		{name: "udp edns 1232", q: query{qtype: dns.TypeA, bufsiz: 1232},
			count: (1232 - 12 - 22 - 11) / sizeA, tc: true},
		{name: "tcp all", q: query{qtype: dns.TypeA, tcp: true}, count: 200},
		{name: "max answers", opts: "max_answers 7", q: query{qtype: dns.TypeA, tcp: true}, count: 7},
		{name: "srv udp", q: query{qtype: dns.TypeSRV}, count: 10, tc: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHandler(t, tc.opts, bigState(200))
			tc.q.name = "web.swarm.internal."
			if tc.q.qtype == dns.TypeSRV {
				tc.q.name = "_http._tcp.web.swarm.internal."
			}
			m := ask(t, h, tc.q)
			if m.Truncated != tc.tc {
				t.Errorf("got TC %v, want %v", m.Truncated, tc.tc)
			}
			if tc.q.qtype == dns.TypeSRV {
				// SRV records vary in size: only check that the reply fits
				if len(m.Answer) == 0 || len(m.Answer) >= 200 {
					t.Errorf("got %d SRV records, want some but not all", len(m.Answer))
				}
				return
			}
			if len(m.Answer) != tc.count {
				t.Errorf("got %d answers, want %d", len(m.Answer), tc.count)
			}
		})
	}
}

// TestSlowPath checks that a writer the plugin does not know (here: none
// of the server's wrappers) gets a dns.Msg with the same answer.
func TestSlowPath(t *testing.T) {
	h := newTestHandler(t, "", testState())
	r := new(dns.Msg)
	r.SetQuestion("_http._tcp.web.swarm.internal.", dns.TypeSRV)
	cw := &captureWriter{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}}
	if _, err := h.ServeDNS(context.Background(), cw, r); err != nil {
		t.Fatal(err)
	}
	if cw.raw != nil {
		t.Fatalf("got raw bytes written to an unknown writer, want WriteMsg")
	}
	if got := len(cw.msg.Answer); got != 2 {
		t.Errorf("got %d answers, want 2", got)
	}
	if got := len(cw.msg.Extra); got != 2 {
		t.Errorf("got %d additional records, want 2", got)
	}
}

// TestRecordingChain runs a query through the writers that prometheus and
// log put before the plugin, with the chain's own tracking writers between
// them, and checks that the packed answer still goes out as it is and that
// the recorders learn what they log and count.
func TestRecordingChain(t *testing.T) {
	h := newTestHandler(t, "", testState())
	r := new(dns.Msg)
	r.SetQuestion("nope.swarm.internal.", dns.TypeA)
	cw := &captureWriter{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}}

	var logRec *dnstest.Recorder
	var metRec *metrics.Recorder
	type handler = func(context.Context, dns.ResponseWriter, *dns.Msg) (int, error)
	var logger handler = func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		logRec = dnstest.NewRecorder(w)
		return plugin.NextOrFailure("log", h, ctx, logRec, r)
	}
	var prom handler = func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		metRec = metrics.NewRecorder(w)
		return plugin.NextOrFailure("prometheus", plugin.HandlerFunc(logger), ctx, metRec, r)
	}
	if _, err := prom(context.Background(), request.NewScrubWriter(r, cw), r); err != nil {
		t.Fatal(err)
	}
	if cw.raw == nil {
		t.Fatal("got the answer through WriteMsg, want the packed bytes")
	}
	if metRec.Rcode != dns.RcodeNameError || logRec.Rcode != dns.RcodeNameError {
		t.Errorf("got recorded rcodes %d and %d, want NXDOMAIN", metRec.Rcode, logRec.Rcode)
	}
	if logRec.Msg == nil || !logRec.Msg.Authoritative || logRec.Msg.Rcode != dns.RcodeNameError {
		t.Errorf("got log's message %v, want the reply's header", logRec.Msg)
	}
	if metRec.Len != len(cw.raw) {
		t.Errorf("got recorded size %d, want %d", metRec.Len, len(cw.raw))
	}
}

// TestRebuildReuses changes one service and checks that the others keep
// their packed answers (and so their rotation), while the changed one is
// packed again, with the same answers a table built from nothing gives.
func TestRebuildReuses(t *testing.T) {
	cat := catalog.New("n1")
	cat.Put("n1", "test", testState())
	opts := tableOptions{ttl: 5, ptrZone: defaultZone}
	first := buildTable(cat.Snapshot(), opts, nil)

	cat.Put("n2", "more", &catalog.State{Tasks: []catalog.Task{{ID: "dddd00000001",
		Service: "web", Slot: 9, Addrs: []catalog.Addr{{Network: "frontend",
			IP: netip.MustParseAddr("10.0.1.99")}}}}})
	second := buildTable(cat.Snapshot(), opts, first)
	fresh := buildTable(cat.Snapshot(), opts, nil)

	if first.names["api"] != second.names["api"] {
		t.Error("got api packed again, want its answers kept: it did not change")
	}
	if first.names["web"] == second.names["web"] {
		t.Error("got web's old answers, want them packed again: it gained a task")
	}
	if len(second.names) != len(fresh.names) || len(second.ptr) != len(fresh.ptr) {
		t.Errorf("got %d names and %d PTRs, want %d and %d as a fresh build has",
			len(second.names), len(second.ptr), len(fresh.names), len(fresh.ptr))
	}
	for key, n := range fresh.names {
		m := second.names[key]
		if m == nil || !slices.Equal(setBytes(m.all.a), setBytes(n.all.a)) ||
			!slices.Equal(setBytes(m.all.aaaa), setBytes(n.all.aaaa)) {
			t.Errorf("name %q: got %v, want %v", key, m, n)
		}
	}
}

func setBytes(s *rrset) []byte {
	if s == nil {
		return nil
	}
	return s.data
}
