package l4

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/swarmdns/swarmdns/internal/dnstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testLog logs warnings and errors to the test output.
func testLog(t testing.TB) *slog.Logger {
	h := slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})
	return slog.New(h).With("component", "lb")
}

// lbUnderTest is a Server started from config text.
type lbUnderTest struct {
	*Server
	m *Metrics
}

// startLB parses conf and applies it; the server shuts down with the test.
func startLB(t testing.TB, conf string) *lbUnderTest {
	t.Helper()
	cfg, err := ParseConfig("test.conf", strings.NewReader(conf))
	if err != nil {
		t.Fatalf("parsing config: %v", err)
	}
	m := NewMetrics()
	srv := NewServer(testLog(t), m)
	if err := srv.Apply(cfg); err != nil {
		t.Fatalf("applying config: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return &lbUnderTest{Server: srv, m: m}
}

// apply parses conf and applies it to the running server.
func (l *lbUnderTest) apply(t *testing.T, conf string) {
	t.Helper()
	cfg, err := ParseConfig("test.conf", strings.NewReader(conf))
	if err != nil {
		t.Fatalf("parsing config: %v", err)
	}
	if err := l.Apply(cfg); err != nil {
		t.Fatalf("applying config: %v", err)
	}
}

// addr returns the bound address of listener key.
func (l *lbUnderTest) addr(t *testing.T, key string) string {
	t.Helper()
	a := l.Addr(key)
	if a == nil {
		t.Fatalf("no listener %s", key)
	}
	return a.String()
}

// refused returns the refusal count of listener for reason.
func (l *lbUnderTest) refused(listener, reason string) float64 {
	return value(l.m.refused.WithLabelValues(listener, reason))
}

// value reads a counter or gauge.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// backend is a TCP test server that answers each connection with its name
// and a newline, then echoes until the client half-closes, then closes.
type backend struct {
	name     string
	ln       net.Listener
	accepted atomic.Int64
	handler  func(b *backend, c net.Conn)

	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
}

// helloEcho is the default backend handler.
func helloEcho(b *backend, c net.Conn) {
	if _, err := io.WriteString(c, b.name+"\n"); err != nil {
		return
	}
	_, _ = io.Copy(c, c)
}

// startBackends starts n TCP backends on 127.0.0.<first>, <first+1>, ...
// sharing one port, as the tasks of a service share the target port.
func startBackends(t *testing.T, first, n int, h func(*backend, net.Conn)) ([]*backend, uint16) {
	t.Helper()
	if h == nil {
		h = helloEcho
	}
	for attempt := 0; attempt < 50; attempt++ {
		lns, port, err := listenSamePort("tcp", first, n)
		if err != nil {
			continue
		}
		bs := make([]*backend, n)
		for i, ln := range lns {
			bs[i] = &backend{
				name:    ln.Addr().String(),
				ln:      ln,
				handler: h,
				conns:   map[net.Conn]bool{},
			}
			bs[i].wg.Add(1)
			go bs[i].serve()
			t.Cleanup(bs[i].kill)
		}
		return bs, port
	}
	t.Fatalf("no common free port for %d backends", n)
	return nil, 0
}

// listenSamePort opens TCP listeners on n consecutive loopback addresses
// with one port.
func listenSamePort(network string, first, n int) ([]net.Listener, uint16, error) {
	var lns []net.Listener
	port := "0"
	for i := 0; i < n; i++ {
		ln, err := net.Listen(network, net.JoinHostPort(loopback(first+i), port))
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, 0, err
		}
		lns = append(lns, ln)
		_, port, _ = net.SplitHostPort(ln.Addr().String())
	}
	p, _ := strconv.Atoi(port)
	return lns, uint16(p), nil
}

func loopback(i int) string { return fmt.Sprintf("127.0.0.%d", i) }

func (b *backend) serve() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.accepted.Add(1)
		b.mu.Lock()
		b.conns[c] = true
		b.mu.Unlock()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer c.Close()
			b.handler(b, c)
			b.mu.Lock()
			delete(b.conns, c)
			b.mu.Unlock()
		}()
	}
}

// kill closes the listener and every open connection, as a task that
// dies. It may be called more than once.
func (b *backend) kill() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// addr returns the backend's address.
func (b *backend) addr() netip.AddrPort { return netip.MustParseAddrPort(b.name) }

// tasks turns backends into DNS tasks on node.
func tasks(node string, bs ...*backend) []dnstest.Task {
	out := make([]dnstest.Task, len(bs))
	for i, b := range bs {
		out[i] = dnstest.Task{Addr: b.addr().Addr(), Node: node}
	}
	return out
}

// conn is a client connection through lb that has read the backend's
// greeting.
type conn struct {
	net.Conn
	r       *bufio.Reader
	backend string
}

// dial connects to addr from local (any when empty) and reads the
// greeting.
func dial(addr, local string) (*conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("reading greeting: %w", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	return &conn{Conn: c, r: r, backend: strings.TrimSpace(line)}, nil
}

// ask makes one connection and returns the name of the backend that took
// it.
func ask(t *testing.T, addr string) string {
	t.Helper()
	c, err := dial(addr, "")
	if err != nil {
		t.Fatalf("connecting through lb: %v", err)
	}
	c.Close()
	return c.backend
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// isClosedQuickly reports whether the peer closes c within d without
// sending anything.
func isClosedQuickly(c net.Conn, d time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(d))
	var b [1]byte
	n, err := c.Read(b[:])
	switch {
	case n > 0:
		return errors.New("got data, want close")
	case err == nil:
		return errors.New("no error, want close")
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("still open after %v", d)
	}
	return nil // reset
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
