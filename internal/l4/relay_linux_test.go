//go:build linux && !386

package l4

import (
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// openFiles counts this process's descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	return len(ents)
}

// TestIdleConnectionsHoldNoPipes checks that a quiet connection costs its
// two sockets and no splice pipes.
func TestIdleConnectionsHoldNoPipes(t *testing.T) {
	// a silent backend: no byte moves either way
	bs, _ := startBackends(t, 11, 1, func(b *backend, c net.Conn) {
		_, _ = io.Copy(io.Discard, c)
	})
	lb := startLB(t, fmt.Sprintf("publish %s {\n upstream %s\n}", tcpKey, bs[0].name))
	addr := lb.addr(t, tcpKey)
	before := openFiles(t)

	const n = 50
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	waitFor(t, 10*time.Second, "backends to take every connection", func() bool {
		return bs[0].accepted.Load() == n
	})
	// per connection: the client, the backend, and lb's two sockets
	want := 4*n + 8
	waitFor(t, 10*time.Second, fmt.Sprintf("at most %d new descriptors", want), func() bool {
		return openFiles(t)-before <= want
	})
}

// TestIdleTimeoutSlowReader checks that a direction blocked writing to a
// slow reader keeps its connection open past the idle timeout.
func TestIdleTimeoutSlowReader(t *testing.T) {
	// more than lb's send buffer to the client can hold; at the client's
	// pace a splice pipe (1 MiB) takes longer to drain than the idle
	// timeout, so lb's copy to the client blocks in its writes that long
	const size = 10 << 20
	bs, _ := startBackends(t, 11, 1, func(b *backend, c net.Conn) {
		chunk := make([]byte, 1<<20)
		for range size / len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	lb := startLB(t, fmt.Sprintf("publish %s {\n upstream %s\n idle_timeout 200ms\n}",
		tcpKey, bs[0].name))
	c, err := net.Dial("tcp", lb.addr(t, tcpKey))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// a receive buffer well above the loopback MSS: a smaller one stalls
	// TCP itself (silly-window avoidance waits on backed-off probes)
	_ = c.(*net.TCPConn).SetReadBuffer(256 << 10)

	buf := make([]byte, 32<<10)
	got := 0
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	for got < size {
		n, err := c.Read(buf)
		got += n
		if err != nil {
			t.Fatalf("after %d of %d bytes in %v: %v", got, size, time.Since(start), err)
		}
		time.Sleep(12 * time.Millisecond) // pacing a slow reader, not waiting on a condition
	}
	t.Logf("read %d bytes in %v with a 200ms idle timeout", got, time.Since(start))
}
