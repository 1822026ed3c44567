//go:build linux && !386

package l4

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
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

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		s.Close()
	})
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// TestBulkWithoutPipe checks the path taken when no splice pipe can be
// had: full buffers are passed on through user space, every byte
// arrives, and the EOF ends the pass.
func TestBulkWithoutPipe(t *testing.T) {
	client, accepted := tcpPair(t)
	upstream, backend := tcpPair(t)
	r := newRelay(accepted, upstream, 0, NewMetrics().forUpstream("l", "u"))

	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i * 31)
	}
	go func() {
		_, _ = client.Write(data)
		_ = client.CloseWrite()
	}()
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, _, err := r.passUntil(toUpstream, false)
		done <- result{n, err}
	}()
	_ = backend.SetReadDeadline(time.Now().Add(20 * time.Second))
	got := make([]byte, len(data))
	if _, err := io.ReadFull(backend, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("bytes differ")
	}
	res := <-done
	if res.err != nil || res.n != int64(len(data)) {
		t.Fatalf("passUntil = %d, %v; want %d, nil at EOF", res.n, res.err, len(data))
	}
}

// TestDialStreamTimeout checks that a connect the peer never completes
// ends at the connect timeout. The listener's accept queue is full and
// nobody accepts, so the kernel drops further handshakes.
func TestDialStreamTimeout(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	sa := &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	if err := syscall.Bind(fd, sa); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	bound, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}),
		uint16(bound.(*syscall.SockaddrInet4).Port))
	ep := &endpoint{addr: addr, name: addr.String()}
	d := &net.Dialer{Timeout: 300 * time.Millisecond}

	// fill the accept queue; these connects complete
	var filled []stream
	defer func() {
		for _, c := range filled {
			c.Close()
		}
	}()
	for range 3 {
		start := time.Now()
		c, err := dialStream(context.Background(), d, ep)
		if err != nil {
			took := time.Since(start)
			if !errors.Is(err, errConnectTimeout) {
				t.Fatalf("connect failed with %v, want a connect timeout", err)
			}
			if took < 250*time.Millisecond || took > 5*time.Second {
				t.Fatalf("connect gave up after %v with a 300ms timeout", took)
			}
			return
		}
		filled = append(filled, c)
	}
	t.Fatal("every connect completed: the accept queue never filled")
}

// TestDialStreamKeepAlive checks that upstream connections get TCP
// keepalive with the configured timing when the dialer asks for it, and
// none when it turns keepalive off.
func TestDialStreamKeepAlive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	ep := &endpoint{addr: addr, name: addr.String()}

	for _, tc := range []struct {
		name      string
		keepAlive time.Duration
		wantOn    int
		wantIdle  int
	}{
		{name: "on", keepAlive: 0, wantOn: 1, wantIdle: 15},
		{name: "off", keepAlive: -1, wantOn: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: tc.keepAlive,
				KeepAliveConfig: keepAliveConfig}
			c, err := dialStream(context.Background(), d, ep)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			rc, err := c.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var on, idle int
			_ = rc.Control(func(fd uintptr) {
				on, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
				idle, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
			})
			if on != tc.wantOn {
				t.Errorf("got SO_KEEPALIVE %d, want %d", on, tc.wantOn)
			}
			if tc.wantOn == 1 && idle != tc.wantIdle {
				t.Errorf("got TCP_KEEPIDLE %d, want %d", idle, tc.wantIdle)
			}
		})
	}
}
