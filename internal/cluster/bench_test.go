package cluster

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var convergence = flag.String("convergence", "",
	"comma-separated cluster sizes for TestConvergence, e.g. 3,10,50,100; empty skips it")

// TestConvergence measures, with memberlist's LAN defaults, for each size
// given in -convergence: how long a task change takes to reach every
// node, how long a silent failure takes to clear a node's tasks
// everywhere, and the gossip bandwidth per node. All nodes run in this
// process on 127.0.1.x. It is a measurement, not a pass/fail test: it
// fails only when something never converges.
//
//	go test ./internal/cluster -run TestConvergence -convergence 3,10,50,100 -v -timeout 15m
func TestConvergence(t *testing.T) {
	if *convergence == "" {
		t.Skip("measurement: run with -convergence 3,10,50,100")
	}
	fmt.Println("| nodes | change p50 | change p99 | change max | failure median / max | " +
		"failure target | idle kbit/s/node | churn kbit/s/node |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, f := range strings.Split(*convergence, ",") {
		n, err := strconv.Atoi(f)
		if err != nil || n < 2 || n > 250 {
			t.Fatalf("bad size %q: want 2 to 250", f)
		}
		t.Run(f, func(t *testing.T) { measure(t, n) })
	}
}

func measure(t *testing.T, n int) {
	tok := []Token{testToken(t, "dnsd-bench")}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	nodes := make([]*testNode, n)
	for i := range n {
		var join []string
		if i > 0 {
			join = []string{nodes[0].cl.Addr()}
		}
		nodes[i] = startNode(t, fmt.Sprintf("b%03d", i), fmt.Sprintf("127.0.1.%d", i+1), tok, join,
			func(c *Config) { c.Tune, c.Logger = nil, quiet })
	}
	waitFor(t, time.Duration(n)*time.Second+30*time.Second, "every node to see all", func() bool {
		for _, nd := range nodes {
			if alive(nd.cl) != n {
				return false
			}
		}
		return true
	})

	idle := bandwidth(nodes, 15*time.Second, nil)

	trials := 20
	if n >= 100 {
		trials = 10
	}
	var took []time.Duration
	churn := bandwidth(nodes, 0, func() {
		for i := range trials {
			took = append(took, change(t, nodes, rand.IntN(n), i+2))
		}
	})
	slices.Sort(took)

	// silent failures: Shutdown without Leave, as SIGKILL would
	mc := nodes[0].cl.MemberlistConfig()
	var failed []time.Duration
	for k := range 3 {
		live, victim := nodes[:n-1-k], nodes[n-1-k]
		putTasks(victim, "victim", 1)
		waitFor(t, time.Minute, "the victim's task everywhere", func() bool {
			return everywhere(live, "victim", 1)
		})
		start := time.Now()
		victim.cl.Shutdown()
		waitFor(t, FailureBound(mc, n)+10*time.Second, "the victim's task gone", func() bool {
			return everywhere(live, "victim", 0)
		})
		failed = append(failed, time.Since(start).Round(time.Millisecond))
	}
	slices.Sort(failed)

	fmt.Printf("| %d | %v | %v | %v | %v / %v | %v | %.1f | %.1f |\n", n,
		pct(took, 50), pct(took, 99), took[len(took)-1], failed[1], failed[2],
		(SuspicionTimeout(mc, n) + 2*time.Second).Round(time.Millisecond), idle, churn)
}

// change gives node i's service count tasks and returns how long until
// every node has them.
func change(t *testing.T, nodes []*testNode, i, count int) time.Duration {
	svc := fmt.Sprintf("svc-%s", nodes[i].name)
	var wg sync.WaitGroup
	ready := make(chan struct{})
	var mu sync.Mutex
	var last time.Time
	for _, nd := range nodes {
		ch, stop := nd.cat.Watch()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer stop()
			<-ready
			deadline := time.After(time.Minute)
			for tasksOf(nd, svc) != count {
				select {
				case <-ch:
				case <-deadline:
					return
				}
			}
			mu.Lock()
			last = time.Now()
			mu.Unlock()
		}()
	}
	start := time.Now()
	putTasks(nodes[i], svc, count)
	close(ready)
	wg.Wait()
	if !everywhere(nodes, svc, count) {
		t.Fatalf("change on %s did not reach every node in a minute", nodes[i].name)
	}
	return last.Sub(start).Round(time.Millisecond)
}

func everywhere(nodes []*testNode, svc string, count int) bool {
	for _, nd := range nodes {
		if tasksOf(nd, svc) != count {
			return false
		}
	}
	return true
}

// bandwidth returns the mean gossip bytes sent per node per second, in
// kbit/s, over window, or over run when window is 0.
func bandwidth(nodes []*testNode, window time.Duration, run func()) float64 {
	sum := func() uint64 {
		var s uint64
		for _, nd := range nodes {
			s += nd.cl.Stats().BytesSent.Load()
		}
		return s
	}
	before, start := sum(), time.Now()
	if run != nil {
		run()
	} else {
		time.Sleep(window) // the measurement window itself, not a wait for state
	}
	secs := time.Since(start).Seconds()
	return float64(sum()-before) * 8 / 1000 / secs / float64(len(nodes))
}

func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[max(0, min(len(sorted)-1, i-1))]
}
