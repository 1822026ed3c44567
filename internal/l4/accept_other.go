//go:build !linux || 386

package l4

import (
	"net"
	"os"
	"syscall"
	"time"
)

// listenerOptions has nothing to set: the net package sets TCP_NODELAY
// on each accepted connection.
func listenerOptions(syscall.RawConn) error { return nil }

// pollListener is needed only by Linux's acceptLoop.
func pollListener(*net.TCPListener) (*os.File, error) { return nil, nil }

func (l *tcpListener) setRoute(r *route) { l.rt.Store(r) }

// prepareClient turns on TCP keepalive when the publish wants it.
func prepareClient(c stream, r *route) {
	if keepAliveFor(r.pub) >= 0 {
		_ = c.(*net.TCPConn).SetKeepAliveConfig(keepAliveConfig)
	}
}

// acceptLoop takes clients until the listener is closed.
func (l *tcpListener) acceptLoop() {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		c, err := l.ln.AcceptTCP()
		if err != nil {
			if !l.acceptFailed(err, &backoff) {
				return
			}
			continue
		}
		backoff = 0
		client, _ := addrPortOf(c.RemoteAddr())
		l.take(c, client)
	}
}
