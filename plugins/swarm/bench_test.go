package swarm

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"

	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"

	"github.com/swarmdns/swarmdns/internal/catalog"
)

// clusterState is a catalog of n tasks in services of ten tasks each, on
// one network, as a swarm of many small services looks.
func manyServices(n int) *catalog.State {
	st := &catalog.State{Networks: []catalog.Network{{Name: "overlay",
		Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}}
	for i := 0; i < n; i++ {
		svc := fmt.Sprintf("svc%d", i/10)
		if i%10 == 0 {
			st.Services = append(st.Services, catalog.Service{Name: svc,
				Ports: []catalog.Port{{Name: "http", Port: 80, Protocol: "tcp"}}})
		}
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		st.Tasks = append(st.Tasks, catalog.Task{
			ID: catalog.TaskID(svc, i%10+1), Service: svc, Slot: i%10 + 1,
			Addrs: []catalog.Addr{{Network: "overlay", IP: ip}},
		})
	}
	return st
}

// discardWriter is the cheapest writer: it counts and forgets.
type discardWriter struct {
	captureWriter
	n int
}

func (w *discardWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }

func BenchmarkServeDNS(b *testing.B) {
	for _, n := range []int{10, 1000, 100000} {
		for _, qt := range []struct {
			name  string
			qname string
			qtype uint16
		}{
			{"A", "svc0.swarm.internal.", dns.TypeA},
			{"SRV", "_http._tcp.svc0.swarm.internal.", dns.TypeSRV},
			{"NXDOMAIN", "nope.swarm.internal.", dns.TypeA},
		} {
			b.Run(fmt.Sprintf("tasks=%d/%s", n, qt.name), func(b *testing.B) {
				h := newTestHandler(b, "", manyServices(n))
				r := new(dns.Msg)
				r.SetQuestion(qt.qname, qt.qtype)
				r.SetEdns0(1232, false)
				w := &discardWriter{captureWriter: captureWriter{
					remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}}}
				sw := request.NewScrubWriter(r, w)
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					h.ServeDNS(ctx, sw, r)
				}
				if w.n == 0 {
					b.Fatal("nothing written")
				}
			})
		}
	}
}

// BenchmarkCatalogMemory reports the heap that the catalog and one
// plugin's answer table hold per task at 100,000 tasks.
func BenchmarkCatalogMemory(b *testing.B) {
	const n = 100000
	for b.Loop() {
		st := manyServices(n)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)

		cat := catalog.New("n1")
		cat.Put("n1", "bench", st)
		h := newTestHandler(b, "", &catalog.State{})
		h.rebuild(cat.Snapshot())
		st = nil
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(h)
		runtime.KeepAlive(cat)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heapB/task")
	}
}

func BenchmarkBuildTable(b *testing.B) {
	cat := catalog.New("n1")
	cat.Put("n1", "bench", manyServices(100000))
	snap := cat.Snapshot()
	b.ReportAllocs()
	for b.Loop() {
		buildTable(snap, tableOptions{ttl: 5, ptrZone: defaultZone}, nil)
	}
}

// BenchmarkRebuildOneService packs the table again after one service of
// 100,000 tasks' worth changed, as a gossip update or a task file edit
// does.
func BenchmarkRebuildOneService(b *testing.B) {
	st := manyServices(100000)
	cat := catalog.New("n1")
	cat.Put("n1", "bench", st)
	opts := tableOptions{ttl: 5, ptrZone: defaultZone}
	prev := buildTable(cat.Snapshot(), opts, nil)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		cat.Put("n2", "bench", &catalog.State{Tasks: []catalog.Task{{ID: "x", Service: "svc7",
			Slot: 99, Addrs: []catalog.Addr{{Network: "overlay",
				IP: netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)})}}}}})
		prev = buildTable(cat.Snapshot(), opts, prev)
	}
}
