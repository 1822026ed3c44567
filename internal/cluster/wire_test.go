package cluster

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/swarmdns/swarmdns/internal/catalog"
)

// testParts returns the parts of a node running n tasks of service svc.
func testParts(svc string, n int) map[string]*catalog.State {
	s := &catalog.State{
		Services: []catalog.Service{{Name: svc, Ports: []catalog.Port{
			{Name: "http", Port: 80, Protocol: "tcp"},
		}}},
		Networks: []catalog.Network{{Name: "front",
			Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}}},
	}
	for i := range n {
		s.Tasks = append(s.Tasks, catalog.Task{
			ID:      catalog.TaskID(svc, i+1),
			Service: svc,
			Slot:    i + 1,
			Addrs: []catalog.Addr{{Network: "front",
				IP: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})}},
		})
	}
	return map[string]*catalog.State{"file:/etc/dnsd/tasks.d/" + svc + ".yaml": s}
}

func testRecord(t testing.TB, node string, inc, ver uint64, tasks int) *record {
	t.Helper()
	p, err := encodeParts(testParts(fmt.Sprintf("%s-v%d-%d", node, inc, ver), tasks))
	if err != nil {
		t.Fatal(err)
	}
	return &record{node: node, inc: inc, ver: ver, payload: p}
}

func TestPartsRoundTrip(t *testing.T) {
	in := testParts("web", 3)
	p1, err := encodeParts(in)
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := encodeParts(in)
	if !bytes.Equal(p1, p2) {
		t.Fatal("encoding the same parts twice gave different payloads")
	}
	out, err := decodeParts(p1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("got %+v, want %+v", out, in)
	}
}

func TestChunksFitBroadcast(t *testing.T) {
	tests := []struct {
		name  string
		tasks int
	}{
		{name: "empty", tasks: 0},
		{name: "small", tasks: 3},
		{name: "large", tasks: 2000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := testRecord(t, "node-with-a-long-name-"+tc.name, 1<<60, 7, tc.tasks)
			chunks := splitRecord(r)
			var joined []byte
			for i, c := range chunks {
				msg := encodeChunk(c)
				if len(msg) > maxBroadcast {
					t.Fatalf("chunk %d is %d bytes, want at most %d", i, len(msg), maxBroadcast)
				}
				m, err := decodeMessage(msg)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(m.chunk, c) {
					t.Fatalf("got %+v, want %+v", m.chunk, c)
				}
				joined = append(joined, m.chunk.piece...)
			}
			if !bytes.Equal(joined, r.payload) {
				t.Fatal("joined chunks differ from the payload")
			}
		})
	}
}

func TestFullStateRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   *fullState
	}{
		{name: "empty", in: &fullState{}},
		{name: "records", in: &fullState{records: []*record{
			testRecord(t, "a", 1, 2, 3), testRecord(t, "b", 5, 1, 0)}}},
		{name: "keyring", in: &fullState{
			records: []*record{testRecord(t, "a", 1, 2, 1)},
			keys:    &keyring{epoch: 9, keys: [][KeySize]byte{{1}, {2}}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := decodeMessage(encodeFull(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m.full, tc.in) {
				t.Fatalf("got %+v, want %+v", m.full, tc.in)
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	good := encodeChunk(splitRecord(testRecord(t, "a", 1, 1, 1))[0])
	tests := []struct {
		name string
		in   []byte
	}{
		{name: "empty", in: nil},
		{name: "unknown kind", in: []byte{99, 1, 2}},
		{name: "truncated chunk", in: good[:8]},
		{name: "index past total", in: encodeChunk(&chunk{node: "a", index: 2, total: 2})},
		{name: "empty name", in: encodeChunk(&chunk{node: "", total: 1})},
		{name: "empty keyring", in: encodeKeyring(&keyring{epoch: 1})},
		{name: "full trailing", in: append(encodeFull(&fullState{}), 0)},
		{name: "huge count", in: []byte{kindFull, 0xff, 0xff, 0xff, 0xff, 0x0f}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeMessage(tc.in); err == nil {
				t.Fatal("got no error, want one")
			}
		})
	}
}

// FuzzDecodeMessage checks that no input crashes the decoder, and that
// what it accepts encodes back to something it decodes the same way.
func FuzzDecodeMessage(f *testing.F) {
	r := testRecord(f, "seed", 3, 4, 20)
	for _, c := range splitRecord(r) {
		f.Add(encodeChunk(c))
	}
	f.Add(encodeFull(&fullState{records: []*record{r},
		keys: &keyring{epoch: 1, keys: [][KeySize]byte{{7}}}}))
	f.Add(encodeKeyring(&keyring{epoch: 2, keys: [][KeySize]byte{{1}, {2}}}))
	f.Add([]byte{kindFull, 1})

	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMessage(b)
		if err != nil {
			return
		}
		var again []byte
		switch {
		case m.chunk != nil:
			again = encodeChunk(m.chunk)
		case m.full != nil:
			again = encodeFull(m.full)
			for _, r := range m.full.records {
				decodeParts(r.payload) // must not panic either
			}
		case m.keys != nil:
			again = encodeKeyring(m.keys)
		}
		m2, err := decodeMessage(again)
		if err != nil {
			t.Fatalf("re-encoded message refused: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("got %+v, want %+v", m2, m)
		}
	})
}

// TestMergeOrderIndependent is a property test: whatever order records
// and their chunks arrive in, and however often, every store ends with
// the same current records.
func TestMergeOrderIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	nodes := []string{"a", "b", "c", "d"}
	var recs []*record
	for _, n := range nodes {
		for inc := uint64(1); inc <= 3; inc++ {
			for ver := uint64(1); ver <= 4; ver++ {
				recs = append(recs, testRecord(t, n, inc, ver, rng.IntN(40)))
			}
		}
	}
	live := map[string]uint64{"a": 2, "b": 3, "c": 1} // d is down

	// a random multiset: each record up to three times, some whole, some
	// in chunks; each trial delivers it in another order
	var msgs []any
	for _, r := range recs {
		for range rng.IntN(4) {
			if rng.IntN(2) == 0 {
				msgs = append(msgs, r)
				continue
			}
			for _, c := range splitRecord(r) {
				msgs = append(msgs, c)
			}
		}
	}

	var want map[string]string
	for trial := range 50 {
		s := newStore("self")
		for _, n := range nodes {
			if inc, ok := live[n]; ok {
				s.setAlive(n, inc, n+":7946", time.Unix(0, 0))
			}
		}
		rng.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
		for _, m := range msgs {
			switch m := m.(type) {
			case *record:
				s.put(m, time.Unix(0, 0))
			case *chunk:
				if r, _ := s.addChunk(m, time.Unix(0, 0)); r != nil {
					s.put(r, time.Unix(0, 0))
				}
			}
		}

		// records decode in mergeLocked; here only identity matters
		got := make(map[string]string)
		for _, n := range nodes {
			if r := s.current(n); r != nil {
				got[n] = fmt.Sprintf("%d/%d", r.inc, r.ver)
			}
		}
		if trial == 0 {
			want = got
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("trial %d: got %v, want %v", trial, got, want)
		}
	}
}

// TestMergeTakesNewest checks that with every record present, the store
// serves the newest version of each live incarnation and nothing of a
// node that is down or of itself.
func TestMergeTakesNewest(t *testing.T) {
	s := newStore("self")
	now := time.Unix(0, 0)
	for _, r := range []*record{
		testRecord(t, "a", 1, 3, 1), testRecord(t, "a", 1, 5, 1),
		testRecord(t, "a", 2, 1, 1), testRecord(t, "self", 9, 9, 1),
		testRecord(t, "b", 1, 1, 1),
	} {
		s.put(r, now)
	}
	s.setAlive("a", 1, "", now)
	s.setAlive("self", 9, "", now)
	if r := s.current("a"); r == nil || r.ver != 5 {
		t.Fatalf("got %v, want a at version 5", r)
	}
	s.setAlive("a", 2, "", now)
	if r := s.current("a"); r == nil || r.inc != 2 {
		t.Fatalf("got %v, want a's incarnation 2", r)
	}
	if r := s.current("b"); r != nil {
		t.Fatalf("got %v for b, which never came alive", r)
	}
	if r := s.current("self"); r != nil {
		t.Fatalf("got %v for the store's own node", r)
	}
	s.setDown("a", now)
	if r := s.current("a"); r != nil {
		t.Fatalf("got %v for a after it went down", r)
	}
	s.gc(now.Add(time.Hour), time.Minute, time.Minute)
	if len(s.peers) != 0 {
		t.Fatalf("got %d peers after gc, want 0", len(s.peers))
	}
}

func TestQueueBounded(t *testing.T) {
	c := &Cluster{cfg: Config{MaxQueue: 50}}
	c.queue = newTestQueue()
	for ver := uint64(1); ver <= 20; ver++ {
		for _, ch := range splitRecord(testRecord(t, "a", 1, ver, 200)) {
			c.queueLocked(chunkBroadcast(encodeChunk(ch), ch))
		}
	}
	last := len(splitRecord(testRecord(t, "a", 1, 20, 200)))
	if got := c.queue.NumQueued(); got != last {
		t.Fatalf("got %d queued, want %d: the newest version's chunks only", got, last)
	}
	for n := range 200 {
		for _, ch := range splitRecord(testRecord(t, fmt.Sprint("n", n), 1, 1, 0)) {
			c.queueLocked(chunkBroadcast(encodeChunk(ch), ch))
		}
	}
	if got := c.queue.NumQueued(); got > 50 {
		t.Fatalf("got %d queued, want at most 50", got)
	}
}
