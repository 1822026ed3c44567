//go:build unix

package cluster

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startHelper starts node name in a child process bound to bind, joining
// join, and returns it with the address it listens on.
func startHelper(t *testing.T, name, bind, join string, tok Token) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		helperEnv+"=1",
		"HELPER_NAME="+name,
		"HELPER_BIND="+bind,
		"HELPER_JOIN="+join,
		"HELPER_TOKEN="+tok.String(),
	)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &tWriter{t: t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})

	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				ready <- addr
			}
		}
		close(ready)
	}()
	select {
	case addr, ok := <-ready:
		if !ok {
			t.Fatalf("helper %s exited before it was ready", name)
		}
		return cmd, addr
	case <-time.After(30 * time.Second):
		t.Fatalf("helper %s not ready after 30s", name)
	}
	return nil, ""
}

func TestProcessKilledAndRestarted(t *testing.T) {
	tok := testToken(t, "dnsd-test")
	n2 := startNode(t, "x2", "127.0.0.82", []Token{tok}, nil)
	n3 := startNode(t, "x3", "127.0.0.83", []Token{tok}, []string{n2.cl.Addr()})
	mc := n3.cl.MemberlistConfig()
	has := func() bool { return tasksOf(n3, "svc-x1") == 1 }

	p, addr := startHelper(t, "x1", "127.0.0.81:0", n2.cl.Addr(), tok)
	waitFor(t, 10*time.Second, "x1's task on x3", has)

	if err := p.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	p.Wait()
	bound := FailureBound(mc, 3)
	took := waitFor(t, bound+testSlack, "the killed node's task to go", func() bool { return !has() })
	t.Logf("SIGKILL detected in %v (bound %v)", took, bound)

	// the same node comes back at the same address: a new incarnation
	p, _ = startHelper(t, "x1", addr, n3.cl.Addr(), tok)
	waitFor(t, 10*time.Second, "the restarted node's task", has)

	start := time.Now()
	if err := p.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the stopped node's task to go", func() bool { return !has() })
	if got, limit := time.Since(start), SuspicionTimeout(mc, 3); got > limit {
		t.Fatalf("graceful stop took %v, want under %v", got, limit)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("helper exit: %v", err)
	}
}
