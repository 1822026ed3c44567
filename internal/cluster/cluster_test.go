package cluster

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/swarmdns/swarmdns/internal/catalog"
)

func TestTasksSpreadAndGo(t *testing.T) {
	nodes := startCluster(t, 3, 10)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	mc := n1.cl.MemberlistConfig()

	putTasks(n1, "web", 2)
	waitFor(t, 5*time.Second, "n1's tasks on n3", func() bool { return tasksOf(n3, "web") == 2 })
	for _, tk := range n3.cat.Snapshot().Service("web").Tasks {
		if tk.Node != "n1" {
			t.Fatalf("got task on node %q, want n1", tk.Node)
		}
	}

	putTasks(n1, "web", 5)
	waitFor(t, 5*time.Second, "5 tasks on n3", func() bool { return tasksOf(n3, "web") == 5 })
	n1.cat.Remove("n1", "test:web")
	waitFor(t, 5*time.Second, "no web on n3", func() bool { return tasksOf(n3, "web") == 0 })

	// a graceful leave is heard at once: faster than the suspicion
	// timeout alone, so it cannot be failure detection
	putTasks(n2, "api", 1)
	waitFor(t, 5*time.Second, "n2's tasks on n3", func() bool { return tasksOf(n3, "api") == 1 })
	start := time.Now()
	if err := n2.cl.Leave(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "n2's tasks gone", func() bool { return tasksOf(n3, "api") == 0 })
	if got, bound := time.Since(start), SuspicionTimeout(mc, 3); got > bound {
		t.Fatalf("graceful leave took %v, want under %v", got, bound)
	}

	// a node that stops without a word is found dead within the bound
	putTasks(n1, "db", 1)
	waitFor(t, 5*time.Second, "db on n3", func() bool { return tasksOf(n3, "db") == 1 })
	n1.cl.Shutdown()
	bound := FailureBound(mc, 3)
	took := waitFor(t, bound+testSlack, "n1's tasks gone", func() bool {
		return tasksOf(n3, "db") == 0
	})
	t.Logf("failure detected in %v (bound %v)", took, bound)
	if got := view(n3.cat); got != "" {
		t.Fatalf("got ghost tasks on n3:\n%s", got)
	}
}

func TestPartitionHeals(t *testing.T) {
	p := newPartition()
	tok := []Token{testToken(t, "dnsd-test")}
	ips := []string{"127.0.0.31", "127.0.0.32", "127.0.0.33"}
	var nodes []*testNode
	for i, ip := range ips {
		var join []string
		if i > 0 {
			join = []string{nodes[0].cl.Addr()}
		}
		n := startNode(t, fmt.Sprintf("p%d", i+1), ip, tok, join,
			func(c *Config) { c.Block = p.blocker(ip) })
		putTasks(n, "svc-"+n.name, 1)
		nodes = append(nodes, n)
	}
	converged := func() bool {
		want := view(nodes[0].cat)
		for _, n := range nodes {
			if v := view(n.cat); v != want || n.cat.Snapshot().TaskCount() != 3 {
				return false
			}
		}
		return true
	}
	waitFor(t, 10*time.Second, "one catalog", func() bool {
		if converged() {
			return true
		}
		for _, n := range nodes {
			t.Logf("%s: %d alive %q", n.name, alive(n.cl), view(n.cat))
		}
		return false
	})

	p.split(ips[:1], ips[1:])
	bound := FailureBound(nodes[0].cl.MemberlistConfig(), 3)
	waitFor(t, bound+testSlack, "the sides to drop each other", func() bool {
		return nodes[0].cat.Snapshot().TaskCount() == 1 &&
			nodes[1].cat.Snapshot().TaskCount() == 2 &&
			nodes[2].cat.Snapshot().TaskCount() == 2
	})

	// changes on either side while cut
	putTasks(nodes[0], "svc-p1", 2)
	nodes[2].cat.Remove("p3", "test:svc-p3")

	p.heal()
	mc := nodes[0].cl.MemberlistConfig()
	heal := 300*time.Millisecond + 2*mc.PushPullInterval + bound
	waitFor(t, heal+testSlack, "the partition to heal", func() bool {
		want := view(nodes[0].cat)
		for _, n := range nodes {
			if view(n.cat) != want || n.cat.Snapshot().TaskCount() != 3 {
				return false
			}
		}
		return tasksOf(nodes[1], "svc-p1") == 2 && tasksOf(nodes[1], "svc-p3") == 0
	})
}

func TestWrongTokenRefused(t *testing.T) {
	good := testToken(t, "dnsd-test")
	n1 := startNode(t, "t1", "127.0.0.41", []Token{good}, nil)

	tests := []struct {
		name   string
		tok    Token
		reason string
	}{
		{name: "other key", tok: testToken(t, "dnsd-test"), reason: dropStream},
		{name: "other label", tok: Token{Label: "dnsd-other", Key: good.Key}, reason: dropLabel},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := testutil.ToFloat64(droppedTotal.WithLabelValues(tc.reason))
			n := startNode(t, fmt.Sprintf("intruder%d", i), fmt.Sprintf("127.0.0.%d", 42+i),
				[]Token{tc.tok}, []string{n1.cl.Addr()})
			waitFor(t, 10*time.Second, "the join to be refused", func() bool {
				return testutil.ToFloat64(droppedTotal.WithLabelValues(tc.reason)) > before
			})
			if got := alive(n1.cl); got != 1 {
				t.Fatalf("got %d alive members on t1, want 1", got)
			}
			if got := alive(n.cl); got != 1 {
				t.Fatalf("got %d alive members on the intruder, want 1", got)
			}
		})
	}

	if _, err := Start(Config{Name: "x"}, catalog.New("x")); !errors.Is(err, ErrNoToken) {
		t.Fatalf("got %v, want ErrNoToken", err)
	}
}

func TestGarbageDropped(t *testing.T) {
	nodes := startCluster(t, 2, 50)
	n1, n2 := nodes[0], nodes[1]
	tok := n1.cl.PrimaryToken()
	label := []byte{labelMagic, byte(len(tok.Label))}
	label = append(label, tok.Label...)

	tests := []struct {
		name   string
		packet []byte
		reason string
	}{
		{name: "plaintext", packet: []byte("hello"), reason: dropUnlabeled},
		{name: "empty label", packet: []byte{labelMagic, 0, 1}, reason: dropMalformed},
		{name: "foreign label", packet: append([]byte{labelMagic, 3}, "abc\x01"...),
			reason: dropLabel},
		{name: "our label, garbage", packet: append(label, make([]byte, 64)...),
			reason: dropDecrypt},
		{name: "our label, truncated", packet: append(label, 1, 2), reason: dropDecrypt},
	}
	conn, err := net.Dial("udp", n1.cl.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			counter := droppedTotal.WithLabelValues(tc.reason)
			before := testutil.ToFloat64(counter)
			waitFor(t, 5*time.Second, "the packet to be counted", func() bool {
				conn.Write(tc.packet) // UDP may lose it: resend until counted
				return testutil.ToFloat64(counter) > before
			})
		})
	}

	streams := []struct {
		name   string
		data   []byte
		reason string
	}{
		{name: "tcp plaintext", data: []byte("GET / HTTP/1.0\r\n\r\n"), reason: dropUnlabeled},
		{name: "tcp our label, garbage", data: append(label, "\x01garbage"...),
			reason: dropStream},
	}
	for _, tc := range streams {
		t.Run(tc.name, func(t *testing.T) {
			counter := droppedTotal.WithLabelValues(tc.reason)
			before := testutil.ToFloat64(counter)
			c, err := net.Dial("tcp", n1.cl.Addr())
			if err != nil {
				t.Fatal(err)
			}
			c.Write(tc.data)
			c.Close()
			waitFor(t, 5*time.Second, "the stream to be counted", func() bool {
				return testutil.ToFloat64(counter) > before
			})
		})
	}

	// and the node carries on
	putTasks(n2, "after", 1)
	waitFor(t, 5*time.Second, "gossip after garbage", func() bool { return tasksOf(n1, "after") == 1 })
	if n1.cl.Stats().Dropped.Load() == 0 {
		t.Fatal("got no drops in the node's stats")
	}
}

func TestKeyRotation(t *testing.T) {
	dir := t.TempDir()
	old := testToken(t, "dnsd-test")
	next := Token{Label: old.Label}
	next.Key[0] = 42
	var nodes []*testNode
	for i := range 3 {
		var join []string
		if i > 0 {
			join = []string{nodes[0].cl.Addr()}
		}
		path := filepath.Join(dir, fmt.Sprintf("token%d", i))
		nodes = append(nodes, startNode(t, fmt.Sprintf("k%d", i+1),
			fmt.Sprintf("127.0.0.%d", 61+i), []Token{old}, join,
			func(c *Config) { c.TokenFile = path }))
	}
	waitFor(t, 10*time.Second, "three members", func() bool { return alive(nodes[2].cl) == 3 })

	if _, err := nodes[0].cl.RotateKey(next, next); !errors.Is(err, ErrCurrentToken) {
		t.Fatalf("got %v, want ErrCurrentToken", err)
	}
	took, err := nodes[0].cl.RotateKey(old, next)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[0].cl.RotateKey(old, next); !errors.Is(err, ErrRotating) {
		t.Fatalf("got %v, want ErrRotating", err)
	}

	// every node keeps gossiping throughout: changes keep arriving
	deadline := time.Now().Add(took + testSlack)
	for i := 0; ; i++ {
		putTasks(nodes[0], "tick", i%3+1)
		waitFor(t, 5*time.Second, "a change during rotation", func() bool {
			return tasksOf(nodes[2], "tick") == i%3+1
		})
		done := true
		for _, n := range nodes {
			kr := n.cl.MemberlistConfig().Keyring
			done = done && len(kr.GetKeys()) == 1 && n.cl.PrimaryToken() == next
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rotation not finished after %v", took+testSlack)
		}
		time.Sleep(100 * time.Millisecond) // pace the changes, not a wait for state
	}
	for i := range nodes {
		toks, err := ReadTokenFile(filepath.Join(dir, fmt.Sprintf("token%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if len(toks) != 1 || toks[0] != next {
			t.Fatalf("node %d token file: got %v, want the new token only", i, toks)
		}
	}
	if got := alive(nodes[2].cl); got != 3 {
		t.Fatalf("got %d alive after rotation, want 3", got)
	}

	late := startNode(t, "k4", "127.0.0.64", []Token{next}, []string{nodes[1].cl.Addr()})
	waitFor(t, 10*time.Second, "a join with the new token", func() bool { return alive(late.cl) == 4 })
}
