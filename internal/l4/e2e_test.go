package l4

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/swarmdns/swarmdns/internal/dnstest"
)

// The end-to-end tests run lb against real loopback backends and a DNS
// server that answers like the swarm plugin. To run them against the
// real dnsd, only startDNS needs to change (see its comment).

const (
	zone    = "swarm.internal"
	tcpKey  = "127.0.0.1:0/tcp"
	udpKey  = "127.0.0.1:0/udp"
	testTTL = 1
)

// taskDNS is what the tests need from the DNS server: its address, and a
// way to publish a service's tasks.
type taskDNS interface {
	Addr() string
	SetService(service string, tasks []dnstest.Task, ports ...dnstest.Port)
	Fail(on bool)
}

// startDNS starts the DNS server the end-to-end tests resolve against.
// To use the real dnsd instead, return a type whose SetService writes the
// service's task file where dnsd's swarm plugin reads it (and waits until
// dnsd answers with the new tasks), whose Addr is dnsd's listen address,
// and whose Fail stops and restarts dnsd.
func startDNS(t *testing.T) taskDNS {
	return dnstest.StartSwarm(t, zone, testTTL)
}

// webConf is a TCP publish block for service web on port with extra
// options.
func webConf(dns taskDNS, port uint16, extra string) string {
	return fmt.Sprintf(`publish %s {
	upstream tasks.web.%s:%d
	resolver %s
	%s
}
`, tcpKey, zone, port, dns.Addr(), extra)
}

func TestPolicySpread(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		hold   bool // keep connections open while making more
		check  func(t *testing.T, counts map[string]int)
	}{
		{
			name:   "round_robin takes turns",
			policy: "round_robin",
			check:  wantEach(10),
		},
		{
			name:   "least_conn fills the emptiest",
			policy: "least_conn",
			hold:   true,
			check:  wantEach(10),
		},
		{
			name:   "random_two stays balanced",
			policy: "random_two",
			hold:   true,
			check:  wantSpreadWithin(3),
		},
		{
			name:   "hash keeps one client on one upstream",
			policy: "hash",
			check: func(t *testing.T, counts map[string]int) {
				if len(counts) != 1 {
					t.Errorf("one client reached %d upstreams %v, want 1", len(counts), counts)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dns := startDNS(t)
			bs, port := startBackends(t, 11, 3, nil)
			dns.SetService("web", tasks("n1", bs...))
			lb := startLB(t, webConf(dns, port, "policy "+tc.policy))
			addr := lb.addr(t, tcpKey)

			counts := map[string]int{}
			var held []*conn
			for range 30 {
				c, err := dial(addr, "")
				if err != nil {
					t.Fatalf("connecting: %v", err)
				}
				counts[c.backend]++
				if tc.hold {
					held = append(held, c)
				} else {
					c.Close()
				}
			}
			for _, c := range held {
				c.Close()
			}
			tc.check(t, counts)
		})
	}
}

func wantEach(n int) func(*testing.T, map[string]int) {
	return func(t *testing.T, counts map[string]int) {
		t.Helper()
		for b, got := range counts {
			if got != n {
				t.Errorf("upstream %s took %d connections, want %d (all: %v)", b, got, n, counts)
			}
		}
		if len(counts) != 3 {
			t.Errorf("got %d upstreams used, want 3", len(counts))
		}
	}
}

func wantSpreadWithin(d int) func(*testing.T, map[string]int) {
	return func(t *testing.T, counts map[string]int) {
		t.Helper()
		var vals []int
		for _, v := range counts {
			vals = append(vals, v)
		}
		if len(vals) != 3 || slices.Max(vals)-slices.Min(vals) > d {
			t.Errorf("got spread %v, want 3 upstreams within %d of each other", counts, d)
		}
	}
}

func TestHashSpreadsClients(t *testing.T) {
	dns := startDNS(t)
	bs, port := startBackends(t, 11, 3, nil)
	dns.SetService("web", tasks("n1", bs...))
	lb := startLB(t, webConf(dns, port, "policy hash"))
	addr := lb.addr(t, tcpKey)

	first := map[string]string{}
	used := map[string]bool{}
	for round := range 2 {
		for i := range 60 {
			client := loopback(100 + i)
			c, err := dial(addr, client)
			if err != nil {
				t.Fatalf("connecting from %s: %v", client, err)
			}
			c.Close()
			used[c.backend] = true
			if round == 0 {
				first[client] = c.backend
			} else if first[client] != c.backend {
				t.Errorf("client %s moved from %s to %s", client, first[client], c.backend)
			}
		}
	}
	if len(used) != 3 {
		t.Errorf("60 clients reached %d upstreams, want 3", len(used))
	}
}

func TestKilledBackendIsHidden(t *testing.T) {
	dns := startDNS(t)
	bs, port := startBackends(t, 11, 3, nil)
	dns.SetService("web", tasks("n1", bs...))
	lb := startLB(t, webConf(dns, port, "max_fails 1 30s"))
	addr := lb.addr(t, tcpKey)

	bs[1].kill()
	for i := range 30 {
		if got := ask(t, addr); got == bs[1].name {
			t.Fatalf("connection %d reached the killed backend", i)
		}
	}
	ep := lb.endpoint(t, tcpKey, bs[1].name)
	if ep.usable(time.Now().UnixNano()) {
		t.Errorf("killed backend still marked up")
	}
}

// endpoint returns the live endpoint of listener key with address name.
func (l *lbUnderTest) endpoint(t *testing.T, key, name string) *endpoint {
	t.Helper()
	l.mu.Lock()
	ln := l.listeners[key]
	l.mu.Unlock()
	for _, ep := range ln.route().pool.snapshot() {
		if ep.name == name {
			return ep
		}
	}
	t.Fatalf("no upstream %s on %s", name, key)
	return nil
}

func TestActiveHealthCheck(t *testing.T) {
	dns := startDNS(t)
	bs, port := startBackends(t, 11, 2, nil)
	dns.SetService("web", tasks("n1", bs...))
	lb := startLB(t, webConf(dns, port, "health_check 50ms\nmax_fails 0"))

	bs[0].kill()
	ep := lb.endpoint(t, tcpKey, bs[0].name)
	waitFor(t, 5*time.Second, "health check to mark the backend down", func() bool {
		return !ep.usable(time.Now().UnixNano())
	})
	addr := lb.addr(t, tcpKey)
	for range 10 {
		if got := ask(t, addr); got != bs[1].name {
			t.Fatalf("got upstream %s, want %s", got, bs[1].name)
		}
	}
}

func TestFollowsDNS(t *testing.T) {
	dns := startDNS(t)
	bs, port := startBackends(t, 11, 3, nil)
	dns.SetService("web", tasks("n1", bs[:2]...))
	lb := startLB(t, webConf(dns, port, "policy round_robin"))
	addr := lb.addr(t, tcpKey)

	// a task that joins takes new connections within its TTL
	added := time.Now()
	dns.SetService("web", tasks("n1", bs...))
	waitFor(t, 10*time.Second, "new task to take a connection", func() bool {
		return ask(t, addr) == bs[2].name
	})
	t.Logf("new task took traffic after %v (TTL %ds)", time.Since(added), testTTL)

	// an established connection to a task that leaves keeps flowing
	var held *conn
	for held == nil {
		c, err := dial(addr, "")
		if err != nil {
			t.Fatal(err)
		}
		if c.backend == bs[2].name {
			held = c
		} else {
			c.Close()
		}
	}
	defer held.Close()
	dns.SetService("web", tasks("n1", bs[:2]...))
	ep := lb.endpoint(t, tcpKey, bs[0].name)
	waitFor(t, 10*time.Second, "removed task to leave the set", func() bool {
		for _, e := range lb.listener(tcpKey).route().pool.snapshot() {
			if e.name == bs[2].name {
				return false
			}
		}
		return true
	})
	_ = ep
	for range 20 {
		if got := ask(t, addr); got == bs[2].name {
			t.Fatalf("removed task took a new connection")
		}
	}
	echoCheck(t, held, []byte("still here"))
}

// listener returns the live listener with key.
func (l *lbUnderTest) listener(key string) listener {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.listeners[key]
}

// echoCheck writes msg on c and wants it echoed back.
func echoCheck(t *testing.T, c *conn, msg []byte) {
	t.Helper()
	if _, err := c.Write(msg); err != nil {
		t.Fatalf("writing: %v", err)
	}
	got := make([]byte, len(msg))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c.r, got); err != nil {
		t.Fatalf("reading echo: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("got echo %q, want %q", got, msg)
	}
}

func TestSRVUpstream(t *testing.T) {
	dns := startDNS(t)
	bs, port := startBackends(t, 11, 2, nil)
	dns.SetService("web", tasks("n1", bs...), dnstest.Port{Name: "http", Proto: "tcp", Number: port})
	lb := startLB(t, fmt.Sprintf(`publish %s {
	upstream _http._tcp.web.%s
	resolver %s
}`, tcpKey, zone, dns.Addr()))
	addr := lb.addr(t, tcpKey)

	seen := map[string]bool{}
	for range 4 {
		seen[ask(t, addr)] = true
	}
	if len(seen) != 2 {
		t.Errorf("got upstreams %v, want both SRV targets", seen)
	}
}

func TestResolutionFailureKeepsLastSet(t *testing.T) {
	dns := startDNS(t)
	bs, port := startBackends(t, 11, 1, nil)
	dns.SetService("web", tasks("n1", bs...))
	lb := startLB(t, webConf(dns, port, ""))
	addr := lb.addr(t, tcpKey)

	dns.Fail(true)
	failed := lb.m.resolutions.WithLabelValues(tcpKey, "tasks.web."+zone+":"+fmt.Sprint(port), "error")
	waitFor(t, 10*time.Second, "a failed resolution", func() bool { return value(failed) >= 1 })
	if got := ask(t, addr); got != bs[0].name {
		t.Errorf("got upstream %q, want %q", got, bs[0].name)
	}
}

func TestHostMode(t *testing.T) {
	dns := startDNS(t)
	bs, port := startBackends(t, 11, 4, nil)
	dns.SetService("web", append(tasks("n1", bs[:2]...), tasks("n2", bs[2:]...)...))
	lb := startLB(t, webConf(dns, port, "mode host\nnode n1"))
	addr := lb.addr(t, tcpKey)

	for range 10 {
		got := ask(t, addr)
		if got != bs[0].name && got != bs[1].name {
			t.Fatalf("host mode on n1 reached %s, a task of n2", got)
		}
	}
}

func TestProxyProtocolToUpstream(t *testing.T) {
	for _, version := range []string{"v1", "v2"} {
		t.Run(version, func(t *testing.T) {
			headers := make(chan *proxyproto.Header, 1)
			bs, port := startBackends(t, 11, 1, func(b *backend, c net.Conn) {
				r := bufio.NewReader(c)
				h, err := proxyproto.Read(r)
				if err != nil {
					return
				}
				headers <- h
				_, _ = io.WriteString(c, b.name+"\n")
				_, _ = io.Copy(c, r)
			})
			lb := startLB(t, fmt.Sprintf(`publish %s {
	upstream %s
	proxy_protocol %s
}`, tcpKey, bs[0].name, version))
			_ = port
			addr := lb.addr(t, tcpKey)

			c, err := dial(addr, "")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			h := <-headers
			if got, want := h.SourceAddr.String(), c.LocalAddr().String(); got != want {
				t.Errorf("got source %s, want %s", got, want)
			}
			if got, want := h.DestinationAddr.String(), addr; got != want {
				t.Errorf("got destination %s, want %s", got, want)
			}
			echoCheck(t, c, []byte("payload after header"))
		})
	}
}

func TestAcceptProxyProtocol(t *testing.T) {
	headers := make(chan *proxyproto.Header, 1)
	bs, _ := startBackends(t, 11, 1, func(b *backend, c net.Conn) {
		r := bufio.NewReader(c)
		h, err := proxyproto.Read(r)
		if err != nil {
			return
		}
		headers <- h
		_, _ = io.Copy(c, r)
	})
	lb := startLB(t, fmt.Sprintf(`publish %s {
	upstream %s
	accept_proxy_protocol
	proxy_protocol v2
	connect_timeout 2s
}`, tcpKey, bs[0].name))
	addr := lb.addr(t, tcpKey)

	t.Run("header is taken and passed on", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		src := &net.TCPAddr{IP: net.ParseIP("127.0.0.99"), Port: 4242}
		dst := &net.TCPAddr{IP: net.ParseIP("127.0.0.98"), Port: 80}
		hb, _ := proxyproto.HeaderProxyFromAddrs(1, src, dst).Format()
		// the header and the first bytes arrive in one segment
		if _, err := c.Write(append(hb, "early bytes"...)); err != nil {
			t.Fatal(err)
		}
		h := <-headers
		if h.SourceAddr.String() != src.String() || h.DestinationAddr.String() != dst.String() {
			t.Errorf("got %v -> %v, want %v -> %v", h.SourceAddr, h.DestinationAddr, src, dst)
		}
		got := make([]byte, len("early bytes"))
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "early bytes" {
			t.Errorf("got echo %q (%v), want %q", got, err, "early bytes")
		}
	})
	t.Run("client without header is closed", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
		if err := isClosedQuickly(c, 5*time.Second); err != nil {
			t.Error(err)
		}
		waitFor(t, 5*time.Second, "refusal to be counted", func() bool {
			return lb.refused(tcpKey, reasonProxyHeader) == 1
		})
	})
}

func TestMaxConns(t *testing.T) {
	bs, _ := startBackends(t, 11, 1, nil)
	lb := startLB(t, fmt.Sprintf("publish %s {\n upstream %s\n max_conns 2\n}", tcpKey, bs[0].name))
	addr := lb.addr(t, tcpKey)

	var held []*conn
	for range 2 {
		c, err := dial(addr, "")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := isClosedQuickly(c, 5*time.Second); err != nil {
		t.Errorf("third connection: %v", err)
	}
	if got := lb.refused(tcpKey, reasonMaxConns); got != 1 {
		t.Errorf("got %v max_conns refusals, want 1", got)
	}

	// a freed slot takes a client again
	held[0].Close()
	waitFor(t, 5*time.Second, "slot to free", func() bool { return lb.Active(tcpKey) < 2 })
	c2, err := dial(addr, "")
	if err != nil {
		t.Fatalf("after a slot freed: %v", err)
	}
	c2.Close()
	held[1].Close()
}

func TestAllUpstreamsDown(t *testing.T) {
	lb := startLB(t, fmt.Sprintf("publish %s {\n upstream %s %s\n}",
		tcpKey, closedPort(t), closedPort(t)))
	addr := lb.addr(t, tcpKey)

	for i := range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := isClosedQuickly(c, 5*time.Second); err != nil {
			t.Errorf("connection %d: %v", i, err)
		}
		c.Close()
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("connection %d closed after %v, want at once", i, d)
		}
	}
	waitFor(t, 5*time.Second, "refusals counted", func() bool {
		return lb.refused(tcpKey, reasonNoUpstream) == 3
	})
}

func TestHalfClose(t *testing.T) {
	// the backend answers only after the client's side is closed
	bs, _ := startBackends(t, 11, 1, func(b *backend, c net.Conn) {
		got, _ := io.ReadAll(c)
		_, _ = fmt.Fprintf(c, "got %d bytes", len(got))
	})
	lb := startLB(t, fmt.Sprintf("publish %s {\n upstream %s\n}", tcpKey, bs[0].name))

	c, err := net.Dial("tcp", lb.addr(t, tcpKey))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	reply, err := io.ReadAll(c)
	if err != nil || string(reply) != "got 1000 bytes" {
		t.Errorf("got reply %q (%v), want %q", reply, err, "got 1000 bytes")
	}
}

func TestIdleTimeout(t *testing.T) {
	bs, _ := startBackends(t, 11, 1, nil)
	lb := startLB(t, fmt.Sprintf("publish %s {\n upstream %s\n idle_timeout 400ms\n}",
		tcpKey, bs[0].name))
	addr := lb.addr(t, tcpKey)

	t.Run("busy connection stays open", func(t *testing.T) {
		c, err := dial(addr, "")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// traffic every 100ms for four idle timeouts
		for i := range 16 {
			echoCheck(t, c, []byte(fmt.Sprintf("tick %d", i)))
			time.Sleep(100 * time.Millisecond) // pacing the traffic, not waiting on a condition
		}
	})
	t.Run("silent connection is closed", func(t *testing.T) {
		c, err := dial(addr, "")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		if err := isClosedQuickly(c, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 400*time.Millisecond {
			t.Errorf("closed after %v, before the idle timeout", d)
		}
	})
}

// transfer sends size random bytes through addr to an echo backend and
// checks every byte comes back.
func transfer(addr string, size int) error {
	c, err := dial(addr, "")
	if err != nil {
		return err
	}
	defer c.Close()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.Conn.(*net.TCPConn).CloseWrite()
		}
		errc <- err
	}()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(c.r)
	if werr := <-errc; werr != nil {
		return fmt.Errorf("writing: %w", werr)
	}
	if err != nil {
		return fmt.Errorf("reading after %d bytes: %w", len(got), err)
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("got %d bytes back, want the %d sent", len(got), len(data))
	}
	return nil
}

func TestReloadUnderLoad(t *testing.T) {
	dns := startDNS(t)
	// the backends count what they receive, to compare with what the
	// clients sent
	var atBackends atomic.Int64
	bs, port := startBackends(t, 11, 3, func(b *backend, c net.Conn) {
		if _, err := io.WriteString(c, b.name+"\n"); err != nil {
			return
		}
		n, _ := io.Copy(c, c)
		atBackends.Add(n)
	})
	dns.SetService("web", tasks("n1", bs...))
	confs := []string{
		webConf(dns, port, "policy round_robin"),
		webConf(dns, port, "policy least_conn"),
		webConf(dns, port, "policy hash\nmax_fails 2 5s"),
		webConf(dns, port, "policy random_two") +
			fmt.Sprintf("publish 127.0.0.2:0/tcp {\n upstream %s\n}\n", bs[0].name),
	}
	lb := startLB(t, confs[0])
	addr := lb.addr(t, tcpKey)
	held, err := dial(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	var wg sync.WaitGroup
	var sent atomic.Int64
	errs := make(chan error, 64)
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				select {
				case <-stop:
					return
				default:
				}
				size := 64<<10 + w*1000 + i
				if err := transfer(addr, size); err != nil {
					errs <- fmt.Errorf("worker %d transfer %d: %w", w, i, err)
					return
				}
				sent.Add(int64(size))
			}
		}()
	}
	for i := range 12 {
		lb.apply(t, confs[(i+1)%len(confs)])
		if got := lb.addr(t, tcpKey); got != addr {
			t.Errorf("reload %d moved the listener from %s to %s", i, addr, got)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	echoCheck(t, held, []byte("connection from before the reloads"))
	// a backend counts a connection when it ends, after the client has
	// read its echo: poll
	waitFor(t, 5*time.Second, "backends to count every byte", func() bool {
		return atBackends.Load() == sent.Load()
	})
}

func TestReloadRemovedListenerDrains(t *testing.T) {
	bs, _ := startBackends(t, 11, 1, nil)
	keep := fmt.Sprintf("publish %s {\n upstream %s\n}\n", tcpKey, bs[0].name)
	const goneKey = "127.0.0.2:0/tcp"
	lb := startLB(t, keep+fmt.Sprintf("publish %s {\n upstream %s\n}\n", goneKey, bs[0].name))
	gone := lb.addr(t, goneKey)
	c, err := dial(gone, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	lb.apply(t, keep)
	if a := lb.Addr(goneKey); a != nil {
		t.Fatalf("removed listener still listed at %v", a)
	}
	waitFor(t, 5*time.Second, "removed listener to stop accepting", func() bool {
		nc, err := net.Dial("tcp", gone)
		if err == nil {
			nc.Close()
		}
		return err != nil
	})
	echoCheck(t, c, []byte("draining connection still flows"))
}

func TestReloadRefusesBadBind(t *testing.T) {
	bs, _ := startBackends(t, 11, 1, nil)
	conf := fmt.Sprintf("publish %s {\n upstream %s\n}\n", tcpKey, bs[0].name)
	lb := startLB(t, conf)
	addr := lb.addr(t, tcpKey)

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	bad := conf + fmt.Sprintf("publish %s/tcp {\n upstream %s\n}\n", busy.Addr(), bs[0].name)
	cfg, err := ParseConfig("test.conf", bytes.NewReader([]byte(bad)))
	if err != nil {
		t.Fatal(err)
	}
	if err := lb.Apply(cfg); err == nil {
		t.Fatal("got no error binding a busy port")
	}
	if got := ask(t, addr); got != bs[0].name {
		t.Errorf("after a refused reload got %q, want %q", got, bs[0].name)
	}
}

func TestShutdownDrains(t *testing.T) {
	bs, _ := startBackends(t, 11, 1, nil)
	lb := startLB(t, fmt.Sprintf("publish %s {\n upstream %s\n}\n", tcpKey, bs[0].name))
	addr := lb.addr(t, tcpKey)
	c, err := dial(addr, "")
	if err != nil {
		t.Fatal(err)
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := contextWithTimeout(10 * time.Second)
		defer cancel()
		lb.Shutdown(ctx)
	}()
	waitFor(t, 5*time.Second, "listener to stop accepting", func() bool {
		nc, err := net.Dial("tcp", addr)
		if err == nil {
			nc.Close()
		}
		return err != nil
	})
	echoCheck(t, c, []byte("draining but flowing"))
	select {
	case <-done:
		t.Fatal("shutdown returned while a connection was open")
	default:
	}
	c.Close()
	<-done
}

func TestShutdownDrainTimeout(t *testing.T) {
	bs, _ := startBackends(t, 11, 1, nil)
	lb := startLB(t, fmt.Sprintf("publish %s {\n upstream %s\n}\n", tcpKey, bs[0].name))
	c, err := dial(lb.addr(t, tcpKey), "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	ctx, cancel := contextWithTimeout(200 * time.Millisecond)
	defer cancel()
	lb.Shutdown(ctx)
	if err := isClosedQuickly(c, 5*time.Second); err != nil {
		t.Errorf("connection after drain timeout: %v", err)
	}
}
