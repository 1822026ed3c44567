package l4

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"time"
)

// errNoUpstream is returned when no upstream took a connection.
var errNoUpstream = errors.New("no upstream available")

// route is what a listener does with a new client: the publish options,
// the upstream pool and the policy. A listener swaps its route on reload;
// a connection keeps the route it started with.
type route struct {
	pub    *Publish
	pool   *pool
	picker picker
	dialer net.Dialer
}

func newRoute(pub *Publish, p *pool) *route {
	return &route{
		pub:    pub,
		pool:   p,
		picker: newPicker(pub.Policy),
		dialer: net.Dialer{
			Timeout:         pub.ConnectTimeout,
			KeepAlive:       keepAliveFor(pub),
			KeepAliveConfig: keepAliveConfig,
		},
	}
}

// keepAliveFor says whether connections of pub get TCP keepalive: a
// negative value turns it off, zero turns it on with keepAliveConfig. With
// an idle timeout, dead idle peers are found by that timeout, and data
// in flight to a dead peer by the kernel's retransmission timeout, so
// keepalive would only cost two system calls per connection. Without
// one, keepalive is what ends connections to peers that vanished.
func keepAliveFor(pub *Publish) time.Duration {
	if pub.IdleTimeout > 0 {
		return -1
	}
	return 0
}

// keepAliveConfig is the TCP keepalive of both connections of a
// listener without an idle timeout: the net package's default timing,
// set on each connection, since the listener's own keepalive is off and
// the kernel's default waits two hours before its first probe.
var keepAliveConfig = net.KeepAliveConfig{
	Enable:   true,
	Idle:     15 * time.Second,
	Interval: 15 * time.Second,
	Count:    9,
}

// maxTries caps Publish.Tries so tried fits on the stack.
const maxTries = 8

// connect opens a connection to an upstream for client, moving on to the
// next upstream the policy offers when a connect fails, up to Tries
// upstreams. The chosen endpoint's active count is already raised. The
// connection is a stream for "tcp" and a *net.UDPConn for "udp".
func (r *route) connect(ctx context.Context, network string,
	client netip.Addr) (io.Closer, *endpoint, error) {
	eps := r.pool.snapshot()
	var buf [maxTries]*endpoint
	tried := buf[:0]
	tries := min(r.pub.Tries, len(eps), maxTries)
	for range tries {
		ep := r.picker.pick(eps, client, tried, time.Now().UnixNano())
		if ep == nil {
			break
		}
		tried = append(tried, ep)

		// counted before the connect so least_conn sees it in flight
		ep.active.Add(1)
		c, err := r.dial(ctx, network, ep)
		if err != nil {
			ep.active.Add(-1)
			r.pool.failed(ep, err)
			continue
		}
		ep.m.conns.Inc()
		return c, ep, nil
	}
	return nil, nil, errNoUpstream
}

// dial connects to ep over network.
func (r *route) dial(ctx context.Context, network string, ep *endpoint) (io.Closer, error) {
	if network == "udp" {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(ep.addr))
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	return dialStream(ctx, &r.dialer, ep)
}
