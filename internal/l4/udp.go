package l4

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// udpListener relays datagrams on one published UDP port. Each client
// address gets a session with its own connected socket to one upstream;
// replies go back to the client from the listening socket, so the client
// sees answers from the address it asked.
type udpListener struct {
	key string
	pc  *net.UDPConn
	rc  syscall.RawConn // pc's descriptor, for batched sends
	log *slog.Logger
	m   *listenerMetrics

	rt        atomic.Pointer[route]
	accepting atomic.Bool
	done      chan struct{} // closed when the socket closes
	stopped   chan struct{} // closed by stop
	stopOnce  sync.Once
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu       sync.Mutex
	sessions map[netip.AddrPort]*session
}

// session is one client's flow to one upstream.
type session struct {
	l      *udpListener
	client netip.AddrPort
	up     *net.UDPConn
	rc     syscall.RawConn // up's descriptor, for batched sends
	ep     *endpoint
	hits   atomic.Uint64 // datagrams either way, for the sweeper
	closed atomic.Bool

	// name is the client's socket address as the kernel gave it, for
	// replies sent in batches (Linux)
	name rawName

	// touched by the sweeper only
	seen uint64
	idle time.Duration
}

// rawName is a socket address in the kernel's layout, big enough for
// IPv6.
type rawName struct {
	b [28]byte
	n uint32
}

// maxDatagram is a receive buffer that holds any UDP payload.
const maxDatagram = 65535

// listenUDP binds addr; start begins reading.
func listenUDP(key, addr string, log *slog.Logger, m *listenerMetrics) (*udpListener, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	uc := pc.(*net.UDPConn)
	rc, err := uc.SyscallConn()
	if err != nil {
		uc.Close()
		return nil, err
	}
	l := &udpListener{
		key:      key,
		pc:       uc,
		rc:       rc,
		log:      log,
		m:        m,
		done:     make(chan struct{}),
		stopped:  make(chan struct{}),
		sessions: map[netip.AddrPort]*session{},
	}
	l.accepting.Store(true)
	return l, nil
}

func (l *udpListener) addr() net.Addr    { return l.pc.LocalAddr() }
func (l *udpListener) route() *route     { return l.rt.Load() }
func (l *udpListener) setRoute(r *route) { l.rt.Store(r) }

// stop ends new sessions; datagrams of open sessions still flow.
func (l *udpListener) stop() {
	l.stopOnce.Do(func() {
		l.accepting.Store(false)
		close(l.stopped)
	})
}

func (l *udpListener) start() {
	l.wg.Add(2)
	go l.readLoop()
	go l.sweepLoop()
}

func (l *udpListener) activeCount() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(len(l.sessions))
}

// forward sends one client datagram to the client's session. name is
// the client's raw socket address, when the platform gives it.
func (l *udpListener) forward(b []byte, from netip.AddrPort, name *rawName) {
	for range 2 {
		s := l.session(from, name)
		if s == nil {
			return
		}
		s.hits.Add(1)
		_, err := s.up.Write(b)
		if err == nil {
			s.ep.m.sent.Add(float64(len(b)))
			return
		}
		if !errors.Is(err, net.ErrClosed) {
			l.upstreamError(s, err)
			return
		}
		// the sweeper closed the session under us: open a new one
	}
}

// session returns the client's session, opening one when there is none
// and the listener takes new ones. It returns nil when the datagram must
// be dropped.
func (l *udpListener) session(client netip.AddrPort, name *rawName) *session {
	l.mu.Lock()
	s := l.sessions[client]
	n := len(l.sessions)
	l.mu.Unlock()
	if s != nil {
		return s
	}

	r := l.rt.Load()
	switch {
	case !l.accepting.Load():
		l.m.draining.Inc()
		return nil
	case n >= r.pub.MaxSessions:
		l.m.maxSessions.Inc()
		return nil
	}
	uc, ep, err := r.connect(context.Background(), "udp", client.Addr())
	if err != nil {
		l.m.noUpstream.Inc()
		l.log.Debug("refused", "listener", l.key, "remote_addr", client, "err", err)
		return nil
	}

	up := uc.(*net.UDPConn)
	rc, err := up.SyscallConn()
	if err != nil {
		up.Close()
		ep.active.Add(-1)
		return nil
	}
	s = &session{l: l, client: client, up: up, rc: rc, ep: ep}
	if name != nil {
		s.name = *name
	}
	l.mu.Lock()
	l.sessions[client] = s
	l.mu.Unlock()
	l.m.sessions.Inc()
	l.m.sessActive.Inc()
	l.wg.Add(1)
	go s.replies()
	l.log.Debug("session opened", "listener", l.key, "remote_addr", client, "upstream", ep.name)
	return s
}

// upstreamError ends a session whose upstream socket failed. A refusal
// (ICMP port unreachable) counts as a connect failure of the upstream, so
// passive health applies to UDP too.
func (l *udpListener) upstreamError(s *session, err error) {
	if errors.Is(err, syscall.ECONNREFUSED) {
		l.rt.Load().pool.failed(s.ep, err)
	}
	l.log.Debug("session failed", "listener", l.key, "remote_addr", s.client,
		"upstream", s.ep.name, "err", err)
	l.closeSession(s)
}

// closeSession removes s and closes its socket. It may be called more
// than once.
func (l *udpListener) closeSession(s *session) {
	if !s.closed.CompareAndSwap(false, true) {
		return
	}
	l.mu.Lock()
	if l.sessions[s.client] == s {
		delete(l.sessions, s.client)
	}
	l.mu.Unlock()
	_ = s.up.Close()
	s.ep.active.Add(-1)
	l.m.sessActive.Dec()
}

// sweepPeriod is how often sessions are checked for the timeout: a
// quarter of it, so a session ends between 1 and 1.25 timeouts after its
// last datagram.
func sweepPeriod(timeout time.Duration) time.Duration {
	return max(timeout/4, 10*time.Millisecond)
}

// drainIdle is the session timeout while a listener drains.
const drainIdle = time.Second

// sweepLoop ends sessions that saw no datagram for the session timeout.
func (l *udpListener) sweepLoop() {
	defer l.wg.Done()
	period := sweepPeriod(l.rt.Load().pub.SessionTimeout)
	tick := time.NewTicker(period)
	defer tick.Stop()
	stopped := l.stopped
	last := time.Now()
	for {
		select {
		case <-l.done:
			return
		case <-stopped:
			// sweep now with the drain timeout, then tick as usual
			stopped = nil
		case <-tick.C:
		}
		timeout := l.rt.Load().pub.SessionTimeout
		if !l.accepting.Load() {
			// a draining listener waits for replies in flight, not for
			// clients that may never send again
			timeout = min(timeout, drainIdle)
		}
		now := time.Now()
		elapsed := now.Sub(last)
		last = now
		for _, s := range l.idleSessions(elapsed, timeout) {
			l.log.Debug("session timed out", "listener", l.key, "remote_addr", s.client,
				"upstream", s.ep.name)
			l.closeSession(s)
		}
		if p := sweepPeriod(timeout); p != period {
			period = p
			tick.Reset(p)
		}
	}
}

// idleSessions advances the idle time of every session without datagrams
// since the last sweep by elapsed, and returns those idle for timeout or
// longer.
func (l *udpListener) idleSessions(elapsed, timeout time.Duration) []*session {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*session
	for _, s := range l.sessions {
		h := s.hits.Load()
		if h != s.seen {
			s.seen, s.idle = h, 0
			continue
		}
		s.idle += elapsed
		if s.idle >= timeout {
			out = append(out, s)
		}
	}
	return out
}

// drain waits for sessions to time out, which while draining takes at
// most drainIdle of silence; when ctx ends first it closes them. Then it
// closes the socket. stop must have been called.
func (l *udpListener) drain(ctx context.Context) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for l.activeCount() > 0 {
		select {
		case <-ctx.Done():
			l.log.Warn("drain timeout, sessions closed", "listener", l.key,
				"count", l.activeCount())
			l.closeAll()
			return
		case <-tick.C:
		}
	}
	l.closeAll()
}

// closeAll closes the socket and every session, and waits for the
// goroutines.
func (l *udpListener) closeAll() {
	l.closeOnce.Do(func() {
		_ = l.pc.Close()
		close(l.done)
	})
	l.mu.Lock()
	all := make([]*session, 0, len(l.sessions))
	for _, s := range l.sessions {
		all = append(all, s)
	}
	l.mu.Unlock()
	for _, s := range all {
		l.closeSession(s)
	}
	l.wg.Wait()
}
