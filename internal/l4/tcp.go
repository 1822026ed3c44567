package l4

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// tcpListener accepts clients on one published TCP port and relays each
// to an upstream chosen by its current route.
type tcpListener struct {
	key string
	ln  *net.TCPListener
	log *slog.Logger
	m   *listenerMetrics

	rt     atomic.Pointer[route]
	active atomic.Int64

	ctx    context.Context // cancelled when the listener force-closes
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept loop and connections

	mu    sync.Mutex
	conns map[*net.TCPConn]struct{}
}

// listenTCP binds addr; start begins accepting.
func listenTCP(key, addr string, log *slog.Logger, m *listenerMetrics) (*tcpListener, error) {
	// keepalive is set per connection, as the route says
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &tcpListener{
		key:    key,
		ln:     ln.(*net.TCPListener),
		log:    log,
		m:      m,
		ctx:    ctx,
		cancel: cancel,
		conns:  map[*net.TCPConn]struct{}{},
	}, nil
}

func (l *tcpListener) addr() net.Addr     { return l.ln.Addr() }
func (l *tcpListener) route() *route      { return l.rt.Load() }
func (l *tcpListener) setRoute(r *route)  { l.rt.Store(r) }
func (l *tcpListener) stop()              { _ = l.ln.Close() }
func (l *tcpListener) start()             { l.wg.Add(1); go l.acceptLoop() }
func (l *tcpListener) activeCount() int64 { return l.active.Load() }

// acceptLoop takes clients until the listener is closed.
func (l *tcpListener) acceptLoop() {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		c, err := l.ln.AcceptTCP()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// out of descriptors or similar: wait, do not spin
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log.Warn("accept failed", "listener", l.key, "err", err)
			if !l.pause(backoff) {
				return
			}
			continue
		}
		backoff = 0

		r := l.rt.Load()
		l.m.conns.Inc()
		if l.active.Add(1) > int64(r.pub.MaxConns) {
			l.active.Add(-1)
			l.m.maxConns.Inc()
			_ = c.Close()
			l.log.Debug("refused", "listener", l.key, "remote_addr", c.RemoteAddr(),
				"err", "max_conns reached")
			continue
		}
		l.wg.Add(1)
		go l.serve(c, r)
	}
}

// pause waits d, or less when the listener force-closes; it reports
// whether to go on.
func (l *tcpListener) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.ctx.Done():
		return false
	}
}

// serve relays one client and closes it.
func (l *tcpListener) serve(c *net.TCPConn, r *route) {
	defer l.wg.Done()
	defer l.active.Add(-1)
	l.track(c)
	defer l.untrack(c)
	l.m.active.Inc()
	defer l.m.active.Dec()

	if keepAliveFor(r.pub) >= 0 {
		_ = c.SetKeepAliveConfig(keepAliveConfig)
	}
	start := time.Now()
	client, local := remoteOf(c), localOf(c)
	var early []byte
	if r.pub.AcceptProxyProtocol {
		info, rest, err := readProxyHeader(c, r.pub.ConnectTimeout)
		if err != nil {
			l.m.proxyHeader.Inc()
			l.log.Debug("refused", "listener", l.key, "remote_addr", client, "err", err)
			return
		}
		if !info.local {
			client, local = info.src, info.dst
		}
		early = rest
	}

	uc, ep, err := r.connect(l.ctx, "tcp", client.Addr())
	if err != nil {
		l.m.noUpstream.Inc()
		l.log.Debug("refused", "listener", l.key, "remote_addr", client, "err", err)
		return
	}
	up := uc.(stream)
	defer up.Close()
	defer ep.active.Add(-1)

	if err := l.sendPreamble(up, r, ep, client, local, early); err != nil {
		l.log.Debug("upstream write failed", "listener", l.key, "upstream", ep.name, "err", err)
		return
	}
	sent, recv, idled := newRelay(c, up, r.pub.IdleTimeout, ep.m).run()
	d := time.Since(start).Seconds()
	l.m.duration.Observe(d)
	// checked first: building the attributes costs allocations per
	// connection even when debug is off
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug("connection closed", "listener", l.key, "remote_addr", client,
			"upstream", ep.name, "sent", sent, "received", recv, "idle", idled,
			"duration_s", d)
	}
}

// sendPreamble writes the PROXY header, if configured, and the bytes the
// client sent behind its own PROXY header, before the splice starts.
func (l *tcpListener) sendPreamble(up stream, r *route, ep *endpoint,
	client, local netip.AddrPort, early []byte) error {
	if v := r.pub.ProxyProtocol; v > 0 {
		h, err := proxyHeader(v, client, local)
		if err != nil {
			return err
		}
		if err := writeAll(up, h); err != nil {
			return err
		}
	}
	if len(early) > 0 {
		if err := writeAll(up, early); err != nil {
			return err
		}
		ep.m.sent.Add(float64(len(early)))
	}
	return nil
}

func (l *tcpListener) track(c *net.TCPConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.conns[c] = struct{}{}
}

func (l *tcpListener) untrack(c *net.TCPConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	_ = c.Close()
}

// drain waits for the connections to end by themselves; when ctx ends
// first it closes them. stop must have been called.
func (l *tcpListener) drain(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		l.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		l.cancel()
		return
	case <-ctx.Done():
	}

	l.cancel()
	l.mu.Lock()
	n := len(l.conns)
	for c := range l.conns {
		_ = c.Close()
	}
	l.mu.Unlock()
	l.log.Warn("drain timeout, connections closed", "listener", l.key, "count", n)
	<-done
}

// remoteOf and localOf return a connection's addresses, IPv4 unmapped.
func remoteOf(c net.Conn) netip.AddrPort {
	ap, _ := addrPortOf(c.RemoteAddr())
	return ap
}

func localOf(c net.Conn) netip.AddrPort {
	ap, _ := addrPortOf(c.LocalAddr())
	return ap
}
