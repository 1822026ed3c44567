package l4

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// udpBackend answers each datagram with "<name>|<datagram>".
type udpBackend struct {
	name string
	pc   net.PacketConn
	wg   sync.WaitGroup
}

// startUDPBackends starts n UDP backends on 127.0.0.<first>... sharing a
// port.
func startUDPBackends(t *testing.T, first, n int) ([]*udpBackend, uint16) {
	t.Helper()
	for range 50 {
		bs, port, ok := tryUDPBackends(first, n)
		if !ok {
			continue
		}
		for _, b := range bs {
			b.wg.Add(1)
			go b.serve()
			t.Cleanup(b.stop)
		}
		return bs, port
	}
	t.Fatalf("no common free udp port for %d backends", n)
	return nil, 0
}

func tryUDPBackends(first, n int) ([]*udpBackend, uint16, bool) {
	var bs []*udpBackend
	port := 0
	for i := range n {
		pc, err := net.ListenPacket("udp", fmt.Sprintf("%s:%d", loopback(first+i), port))
		if err != nil {
			for _, b := range bs {
				b.pc.Close()
			}
			return nil, 0, false
		}
		port = pc.LocalAddr().(*net.UDPAddr).Port
		bs = append(bs, &udpBackend{name: pc.LocalAddr().String(), pc: pc})
	}
	return bs, uint16(port), true
}

func (b *udpBackend) serve() {
	defer b.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := b.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		_, _ = b.pc.WriteTo([]byte(b.name+"|"+string(buf[:n])), from)
	}
}

func (b *udpBackend) stop() {
	b.pc.Close()
	b.wg.Wait()
}

// udpAsk sends msg from c and returns the answering backend's name.
func udpAsk(t *testing.T, c net.Conn, msg string) string {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("sending: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("reading reply to %q: %v", msg, err)
	}
	name, echo, _ := strings.Cut(string(buf[:n]), "|")
	if echo != msg {
		t.Fatalf("got echo %q, want %q", echo, msg)
	}
	return name
}

func udpClient(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestUDPSessions(t *testing.T) {
	bs, port := startUDPBackends(t, 11, 2)
	lb := startLB(t, fmt.Sprintf(`publish %s {
	upstream %s:%d %s:%d
	session_timeout 300ms
}`, udpKey, loopback(11), port, loopback(12), port))
	addr := lb.addr(t, udpKey)
	_ = bs

	a, b := udpClient(t, addr), udpClient(t, addr)
	first := udpAsk(t, a, "a1")
	if got := udpAsk(t, a, "a2"); got != first {
		t.Errorf("second datagram of a session went to %s, want %s", got, first)
	}
	if got := udpAsk(t, b, "b1"); got == first {
		t.Errorf("second client went to %s too, want the other upstream", got)
	}
	if got := lb.Active(udpKey); got != 2 {
		t.Errorf("got %d sessions, want 2", got)
	}
	big := strings.Repeat("x", 9000)
	udpAsk(t, a, big)

	waitFor(t, 5*time.Second, "sessions to time out", func() bool { return lb.Active(udpKey) == 0 })
	udpAsk(t, a, "a3")
	total := lb.m.sessTotal.WithLabelValues(udpKey)
	if got := value(total); got != 3 {
		t.Errorf("got %v sessions opened, want 3", got)
	}
}

func TestUDPMaxSessions(t *testing.T) {
	_, port := startUDPBackends(t, 11, 1)
	lb := startLB(t, fmt.Sprintf("publish %s {\n upstream %s:%d\n max_sessions 1\n}",
		udpKey, loopback(11), port))
	addr := lb.addr(t, udpKey)

	a, b := udpClient(t, addr), udpClient(t, addr)
	udpAsk(t, a, "first")
	if _, err := b.Write([]byte("second")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "max_sessions refusal", func() bool {
		return lb.refused(udpKey, reasonMaxSessions) >= 1
	})
	udpAsk(t, a, "first again")
}

func TestUDPUpstreamRefused(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	lb := startLB(t, fmt.Sprintf("publish %s {\n upstream %s\n max_fails 1 30s\n}", udpKey, dead))
	addr := lb.addr(t, udpKey)

	c := udpClient(t, addr)
	ep := lb.endpoint(t, udpKey, dead)
	waitFor(t, 5*time.Second, "refused upstream to be marked down", func() bool {
		_, _ = c.Write([]byte("anyone?"))
		return !ep.usable(time.Now().UnixNano())
	})
	waitFor(t, 5*time.Second, "session to end", func() bool { return lb.Active(udpKey) == 0 })
}

func TestUDPReloadKeepsSessions(t *testing.T) {
	_, port := startUDPBackends(t, 11, 2)
	conf := func(policy string) string {
		return fmt.Sprintf("publish %s {\n upstream %s:%d %s:%d\n policy %s\n}",
			udpKey, loopback(11), port, loopback(12), port, policy)
	}
	lb := startLB(t, conf("round_robin"))
	addr := lb.addr(t, udpKey)
	c := udpClient(t, addr)
	first := udpAsk(t, c, "before")

	lb.apply(t, conf("hash"))
	if got := lb.addr(t, udpKey); got != addr {
		t.Fatalf("reload moved the udp listener from %s to %s", addr, got)
	}
	if got := udpAsk(t, c, "after"); got != first {
		t.Errorf("session moved from %s to %s across a reload", first, got)
	}
}
