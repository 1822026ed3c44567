package l4

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// ErrClosed is returned by Apply after Shutdown.
var ErrClosed = errors.New("server shut down")

// listener is a published port: TCP or UDP.
type listener interface {
	addr() net.Addr
	route() *route
	setRoute(*route)
	// start begins taking clients; setRoute must have been called.
	start()
	// stop ends new clients; open ones go on.
	stop()
	// drain waits for open clients to finish, closes them when ctx ends
	// first, then releases the socket.
	drain(ctx context.Context)
	activeCount() int64
}

// Server runs the listeners of the current config and moves between
// configs without dropping established connections. Its methods are safe
// for concurrent use; Apply calls are serialised.
type Server struct {
	log *slog.Logger
	m   *Metrics

	applyMu   sync.Mutex // serialises Apply and Shutdown
	mu        sync.Mutex
	listeners map[string]listener
	closed    bool
	draining  sync.WaitGroup // listeners removed by a reload
}

// NewServer returns a Server with no listeners. log gets the server's
// events; m its metrics.
func NewServer(log *slog.Logger, m *Metrics) *Server {
	return &Server{
		log:       log,
		m:         m,
		listeners: map[string]listener{},
	}
}

// Apply makes cfg the running config. New listeners are bound and
// started, listeners that stay keep their socket and take the new
// options for new connections, and removed listeners stop accepting and
// drain in the background for the config's drain timeout. If any new
// listener cannot be bound or any pool cannot be built, nothing changes
// and the error is returned. Apply blocks while the new upstream names
// are first resolved.
func (s *Server) Apply(cfg *Config) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.mu.Lock()
	closed, current := s.closed, s.listeners
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}

	// TODO: new sockets are bound before removed ones close, so a reload
	// that moves a port to another listen host of the same family (such as
	// :8080 to 127.0.0.1:8080) fails with "address in use"; remove the
	// old block, reload, then add the new one.
	plan, err := s.prepare(cfg, current)
	if err != nil {
		return err
	}

	// from here nothing fails: swap in the plan
	next := make(map[string]listener, len(cfg.Publish))
	for _, st := range plan {
		old := st.l.route()
		st.l.setRoute(st.r)
		s.m.state.set(st.key, st.r.pool)
		if old == nil {
			st.l.start()
			s.log.Info("listener started", "listener", st.key, "addr", st.l.addr())
		} else if old.pool != st.r.pool {
			old.pool.close()
		}
		next[st.key] = st.l
	}
	for key, l := range current {
		if _, kept := next[key]; !kept {
			s.retire(key, l, cfg.DrainTimeout)
		}
	}

	s.mu.Lock()
	s.listeners = next
	s.mu.Unlock()
	return nil
}

// step is one listener of a plan with the route it will run.
type step struct {
	key string
	l   listener
	r   *route
}

// prepare binds the new listeners and builds the routes of cfg. On error
// it releases what it made.
func (s *Server) prepare(cfg *Config, current map[string]listener) ([]step, error) {
	plan := make([]step, len(cfg.Publish))
	errs := make([]error, len(cfg.Publish))
	var wg sync.WaitGroup
	for i := range cfg.Publish {
		pub := &cfg.Publish[i]
		plan[i].key = pub.Key()
		plan[i].l = current[pub.Key()]
		wg.Add(1)
		go func() {
			defer wg.Done()
			plan[i].r, errs[i] = s.buildRoute(pub, plan[i].l)
		}()
	}
	wg.Wait()

	for i := range plan {
		if errs[i] != nil || plan[i].l != nil {
			continue
		}
		plan[i].l, errs[i] = s.bind(&cfg.Publish[i])
	}
	if err := errors.Join(errs...); err != nil {
		s.release(plan, current)
		return nil, err
	}
	return plan, nil
}

// buildRoute makes the route of pub, reusing the pool of the listener's
// current route when it is built from the same spec.
func (s *Server) buildRoute(pub *Publish, l listener) (*route, error) {
	var prev *pool
	if l != nil {
		prev = l.route().pool
		if prev.spec == specOf(pub) {
			return newRoute(pub, prev), nil
		}
	}
	p, err := newPool(pub.Key(), pub, prev, s.log, s.m)
	if err != nil {
		return nil, err
	}
	return newRoute(pub, p), nil
}

// bind opens the socket of a new listener.
func (s *Server) bind(pub *Publish) (listener, error) {
	lm := s.m.forListener(pub.Key())
	var l listener
	var err error
	if pub.Network == "udp" {
		l, err = listenUDP(pub.Key(), pub.Addr, s.log, lm)
	} else {
		l, err = listenTCP(pub.Key(), pub.Addr, s.log, lm)
	}
	if err != nil {
		return nil, fmt.Errorf("publish %s (line %d): %w", pub.Key(), pub.Line, err)
	}
	return l, nil
}

// release undoes prepare: new pools close and new sockets are released.
func (s *Server) release(plan []step, current map[string]listener) {
	for _, st := range plan {
		if st.r != nil && (st.l == nil || st.l.route() == nil || st.l.route().pool != st.r.pool) {
			st.r.pool.close()
		}
		if st.l != nil && current[st.key] == nil {
			st.l.stop()
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			st.l.drain(ctx)
		}
	}
}

// retire stops a listener and drains it in the background for at most
// timeout.
func (s *Server) retire(key string, l listener, timeout time.Duration) {
	l.stop()
	s.log.Info("listener stopping", "listener", key, "open", l.activeCount())
	s.draining.Add(1)
	go func() {
		defer s.draining.Done()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		l.drain(ctx)
		l.route().pool.close()
		s.m.state.set(key, nil)
		s.m.forgetListener(key)
		s.log.Info("listener stopped", "listener", key)
	}()
}

// Addr returns the bound address of the listener with key (as
// Publish.Key), or nil when there is none.
func (s *Server) Addr(key string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.listeners[key]; l != nil {
		return l.addr()
	}
	return nil
}

// Active returns the open connections or UDP sessions of the listener
// with key.
func (s *Server) Active(key string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.listeners[key]; l != nil {
		return l.activeCount()
	}
	return 0
}

// Shutdown stops every listener from taking clients and waits for open
// connections to end, closing those still open when ctx ends. It returns
// when all is released; later calls return at once, and Apply fails.
func (s *Server) Shutdown(ctx context.Context) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	all := s.listeners
	s.listeners = map[string]listener{}
	s.mu.Unlock()

	for _, l := range all {
		l.stop()
	}
	var wg sync.WaitGroup
	for key, l := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.drain(ctx)
			l.route().pool.close()
			s.m.state.set(key, nil)
		}()
	}
	wg.Wait()
	s.draining.Wait()
}
