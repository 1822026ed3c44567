package l4

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
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
	closed atomic.Bool // stop was called

	ctx    context.Context // cancelled when the listener force-closes
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept loop and connections

	// local is the listening address when it names one IP, which every
	// client then reaches; unset for a wildcard address
	local netip.AddrPort

	// pollFile is a second descriptor of the listening socket that Linux's
	// acceptLoop waits on; nil elsewhere
	pollFile *os.File

	mu    sync.Mutex
	conns map[stream]struct{}
}

// listenTCP binds addr; start begins accepting.
func listenTCP(key, addr string, log *slog.Logger, m *listenerMetrics) (*tcpListener, error) {
	// keepalive is set per connection, as the route says
	lc := net.ListenConfig{KeepAlive: -1, Control: func(_, _ string, rc syscall.RawConn) error {
		return listenerOptions(rc)
	}}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	tl := ln.(*net.TCPListener)
	pf, err := pollListener(tl)
	if err != nil {
		tl.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &tcpListener{
		key:    key,
		ln:     tl,
		log:    log,
		m:      m,
		ctx:    ctx,
		cancel: cancel,
		conns:  map[stream]struct{}{},

		pollFile: pf,
	}
	if ap, ok := addrPortOf(tl.Addr()); ok && !ap.Addr().IsUnspecified() {
		l.local = ap
	}
	return l, nil
}

func (l *tcpListener) addr() net.Addr     { return l.ln.Addr() }
func (l *tcpListener) route() *route      { return l.rt.Load() }
func (l *tcpListener) start()             { l.wg.Add(1); go l.acceptLoop() }
func (l *tcpListener) activeCount() int64 { return l.active.Load() }

// stop closes the listening socket: no client is taken from now on.
func (l *tcpListener) stop() {
	l.closed.Store(true)
	_ = l.ln.Close()
	if l.pollFile != nil {
		_ = l.pollFile.Close()
	}
}

// take admits one accepted client: it is counted, refused past
// max_conns, and otherwise served in a goroutine of its own.
func (l *tcpListener) take(c stream, client netip.AddrPort) {
	r := l.rt.Load()
	l.m.conns.Inc()
	if l.active.Add(1) > int64(r.pub.MaxConns) {
		l.active.Add(-1)
		l.m.maxConns.Inc()
		_ = c.Close()
		l.log.Debug("refused", "listener", l.key, "remote_addr", client,
			"err", "max_conns reached")
		return
	}
	l.wg.Add(1)
	go l.serve(c, client, r)
}

// acceptFailed logs a failed accept other than the listener's close and
// waits, longer after each failure in a row (backoff), so that running
// out of descriptors does not spin. It reports whether to go on.
func (l *tcpListener) acceptFailed(err error, backoff *time.Duration) bool {
	if l.closed.Load() || errors.Is(err, net.ErrClosed) {
		return false
	}
	*backoff = min(max(2**backoff, 5*time.Millisecond), time.Second)
	l.log.Warn("accept failed", "listener", l.key, "err", err)
	t := time.NewTimer(*backoff)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.ctx.Done():
		return false
	}
}

// serve relays one client and closes it.
func (l *tcpListener) serve(c stream, client netip.AddrPort, r *route) {
	defer l.wg.Done()
	defer l.active.Add(-1)
	l.track(c)
	defer l.untrack(c)
	l.m.active.Inc()
	defer l.m.active.Dec()

	prepareClient(c, r)
	start := time.Now()
	local := l.local
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

	if r.pub.ProxyProtocol > 0 && !local.IsValid() {
		local = localOf(c)
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

func (l *tcpListener) track(c stream) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.conns[c] = struct{}{}
}

func (l *tcpListener) untrack(c stream) {
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

// localOf returns the address a client reached, IPv4 unmapped, or the
// zero AddrPort when it cannot be had.
func localOf(c stream) netip.AddrPort {
	if la, ok := c.(interface{ LocalAddr() net.Addr }); ok {
		if ap, ok := addrPortOf(la.LocalAddr()); ok {
			return ap
		}
	}
	return netip.AddrPort{}
}
