package cluster

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/goleak"

	"github.com/swarmdns/swarmdns/internal/catalog"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(runHelper())
	}
	goleak.VerifyTestMain(m)
}

// testSlack is what the tests allow on top of a bound computed from the
// configuration, for a loaded machine running the race detector: the
// scheduler, not the protocol, is what it covers.
const testSlack = 2 * time.Second

// fastTune shortens memberlist's timings so that tests run in seconds.
// Suspicion is kept long next to probing so that a graceful leave (gone
// within a gossip round or two) is told apart from failure detection.
func fastTune(mc *memberlist.Config) {
	mc.ProbeInterval = 200 * time.Millisecond
	mc.ProbeTimeout = 150 * time.Millisecond
	mc.GossipInterval = 30 * time.Millisecond
	mc.PushPullInterval = time.Second
	mc.GossipToTheDeadTime = 2 * time.Second
	mc.TCPTimeout = 2 * time.Second
	mc.SuspicionMult = 10
	mc.SuspicionMaxTimeoutMult = 2
	mc.AwarenessMaxMultiplier = 3
}

func newTestQueue() *memberlist.TransmitLimitedQueue {
	return &memberlist.TransmitLimitedQueue{
		NumNodes:       func() int { return 10 },
		RetransmitMult: 3,
	}
}

func testToken(t testing.TB, label string) Token {
	t.Helper()
	tok, err := NewToken(label)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// testNode is one in-process node: its catalog and its cluster.
type testNode struct {
	name string
	cat  *catalog.Catalog
	cl   *Cluster
}

type nodeOpt func(*Config)

// startNode starts node name on ip (127.0.0.x), port 0, joining join.
func startNode(t testing.TB, name, ip string, tok []Token, join []string,
	opts ...nodeOpt) *testNode {
	t.Helper()
	cat := catalog.New(name)
	cfg := Config{
		Name:              name,
		BindAddr:          net.JoinHostPort(ip, "0"),
		Join:              join,
		Tokens:            tok,
		Logger:            testLogger(t),
		ReconnectInterval: 300 * time.Millisecond,
		Tune:              fastTune,
	}
	for _, o := range opts {
		o(&cfg)
	}
	cl, err := Start(cfg, cat)
	if err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	t.Cleanup(func() { cl.Shutdown() })
	return &testNode{name: name, cat: cat, cl: cl}
}

// testLogger logs at warn and above through t, so failures come with the
// cluster's complaints and passing runs stay quiet. memberlist's probe
// goroutines may log after Shutdown returned; once the test is over their
// lines are dropped.
func testLogger(t testing.TB) *slog.Logger {
	w := &tWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// startCluster starts n nodes on 127.0.0.<base+i>, all joining the first.
func startCluster(t testing.TB, n, base int, opts ...nodeOpt) []*testNode {
	t.Helper()
	tok := []Token{testToken(t, "dnsd-test")}
	var nodes []*testNode
	for i := range n {
		var join []string
		if i > 0 {
			join = []string{nodes[0].cl.Addr()}
		}
		nodes = append(nodes, startNode(t, fmt.Sprintf("n%d", i+1),
			fmt.Sprintf("127.0.0.%d", base+i), tok, join, opts...))
	}
	waitFor(t, 10*time.Second, "all nodes alive everywhere", func() bool {
		for _, nd := range nodes {
			if alive(nd.cl) != n {
				return false
			}
		}
		return true
	})
	return nodes
}

func alive(c *Cluster) int {
	n := 0
	for _, m := range c.Members() {
		if m.Alive {
			n++
		}
	}
	return n
}

// waitFor polls cond every 10ms until it holds, failing the test after
// timeout. It returns how long the condition took.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// putTasks makes service svc on node n run count tasks.
func putTasks(n *testNode, svc string, count int) {
	s := &catalog.State{}
	for i := range count {
		s.Tasks = append(s.Tasks, catalog.Task{
			ID:      catalog.TaskID(svc, i+1),
			Service: svc,
			Slot:    i + 1,
			Addrs: []catalog.Addr{{Network: "front",
				IP: netip.AddrFrom4([4]byte{10, 1, byte(len(svc)), byte(i + 1)})}},
		})
	}
	n.cat.Put(n.name, "test:"+svc, s)
}

// tasksOf returns how many tasks of svc n's catalog holds.
func tasksOf(n *testNode, svc string) int {
	e := n.cat.Snapshot().Service(svc)
	if e == nil {
		return 0
	}
	return len(e.Tasks)
}

// view renders a catalog as comparable text: every task with its node.
func view(c *catalog.Catalog) string {
	var lines []string
	for _, e := range c.Snapshot().Services {
		for _, tk := range e.Tasks {
			lines = append(lines, tk.Node+"/"+tk.Name())
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// partition cuts links between groups of gossip addresses by IP.
type partition struct {
	mu  sync.Mutex
	cut map[[2]string]bool
}

func newPartition() *partition { return &partition{cut: make(map[[2]string]bool)} }

// split cuts every link between an IP in a and one in b, both ways.
func (p *partition) split(a, b []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, x := range a {
		for _, y := range b {
			p.cut[[2]string{x, y}] = true
			p.cut[[2]string{y, x}] = true
		}
	}
}

func (p *partition) heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.cut)
}

// blocker returns the Block function of the node on ip.
func (p *partition) blocker(ip string) func(string) bool {
	return func(addr string) bool {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return false
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.cut[[2]string{ip, host}]
	}
}
