package l4

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// relay moves bytes both ways between a client and an upstream.
//
// Each direction is io.Copy between two *net.TCPConn, so on Linux the
// runtime moves the bytes with splice(2) through a pipe and they never
// enter user space. Nothing may wrap the connections: a wrapper would hide
// ReadFrom and fall back to a buffered copy.
//
// A splice holds its pipe (two descriptors) for as long as io.Copy runs,
// so an idle connection would pin two pipes. Each direction therefore
// first waits until its source is readable without a pipe, and reads what
// is waiting into a pooled buffer (readWaiting): a request or a response
// that fits goes on with one write, which costs fewer system calls than
// splicing it. Only a source with more waiting than the buffer holds goes
// on to io.Copy, with a read deadline of at most pipeHold; when the
// deadline passes the copy returns, the pipe goes back to the runtime's
// pool, and the direction waits again.
//
// The idle timeout cannot watch individual reads either, because splice
// reports nothing until it returns. Both the wait and the copy carry a
// read deadline of at most a quarter of the timeout. io.Copy returns the
// bytes it moved before its deadline, and a direction that moved any
// stamps the shared last-activity time. When a deadline passes and no
// byte has moved either way for the whole timeout, the connection is
// closed, between 1 and 1.25 idle timeouts after the last byte. A copy
// that outlives its read deadline is writing to a slow reader, so its
// connection counts as busy. A deadline can only interrupt splice while
// it waits to read with its pipe empty, so no byte is lost.
//
// When one direction reaches EOF its destination gets CloseWrite and the
// other direction goes on (half-close). An error in either direction
// aborts both.
//
// TODO: the idle timeout cannot tell a slow reader from a stuck one: a
// direction blocked writing to a peer that stopped reading is never idle,
// and only the kernel's retransmission timeout (or a peer that reads)
// ends such a connection.
type relay struct {
	client, up *net.TCPConn
	idle       time.Duration
	step       time.Duration // deadline of a wait, with an idle timeout
	hold       time.Duration // deadline of a copy
	m          *upstreamMetrics

	last    atomic.Int64    // unix nanoseconds of the last byte moved
	copying [2]atomic.Int64 // per direction: when its copy began, 0 if none
	ended   atomic.Int32    // directions that reached EOF
	aborted atomic.Bool
	idled   atomic.Bool
}

// pipeHold bounds how long a copy keeps its splice pipe once its source
// falls silent.
const pipeHold = time.Second

// Directions of a relay, for counting.
const (
	toUpstream = iota
	toClient
)

// newRelay prepares a relay; run starts it.
func newRelay(client, up *net.TCPConn, idle time.Duration, m *upstreamMetrics) *relay {
	r := &relay{
		client: client,
		up:     up,
		idle:   idle,
		hold:   pipeHold,
		m:      m,
	}
	if idle > 0 {
		r.step = max(idle/4, time.Millisecond)
		r.hold = min(r.step, pipeHold)
	}
	r.last.Store(time.Now().UnixNano())
	return r
}

// run relays until both directions end. It returns the bytes moved each
// way, and whether the idle timeout ended the connection.
//
// TODO: a connection holds two goroutines for its life, about 15 KB of
// RSS when idle, three times what HAProxy needs.
func (r *relay) run() (sent, recv int64, idled bool) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		recv = r.pump(r.client, r.up, toClient)
	}()
	sent = r.pump(r.up, r.client, toUpstream)
	wg.Wait()
	return sent, recv, r.idled.Load()
}

// pump copies src to dst until EOF, an error, or the idle timeout.
func (r *relay) pump(dst, src *net.TCPConn, dir int) int64 {
	var total int64
	for {
		// waiting first, even on a new connection: a copy started on a
		// silent source would take a pipe, and pooled pipes stay open
		// until a garbage collection, so idle connections would still
		// cost four descriptors each. What the wait finds is forwarded
		// with one read and one write; only a source with more than that
		// goes on to splice.
		n, bulk, err := r.forward(dst, src, dir)
		total += n
		if err == nil && bulk {
			n, err = r.copy(dst, src, dir)
			total += n
		} else if err == nil && n > 0 {
			continue
		}
		if err == nil {
			// EOF. The second direction to end skips the shutdown: both
			// connections are closed right after, which sends the FIN
			if r.ended.Add(1) == 1 {
				_ = dst.CloseWrite()
			}
			return total
		}

		switch {
		case r.aborted.Load():
			return total
		case !errors.Is(err, os.ErrDeadlineExceeded):
			r.abort()
			return total
		case r.idle > 0 && r.idleFor(1-dir):
			r.idled.Store(true)
			r.abort()
			return total
		}
	}
}

// forward waits until src has bytes, EOF or an error, holding no pipe,
// and forwards what it finds waiting to dst. It returns the bytes moved
// (0 with a nil error at EOF), and bulk when src may hold more, for copy
// to splice.
func (r *relay) forward(dst, src *net.TCPConn, dir int) (n int64, bulk bool, err error) {
	var deadline time.Time
	if r.idle > 0 {
		deadline = time.Now().Add(r.step)
	}
	_ = src.SetReadDeadline(deadline)
	// checked after the deadline is set, so an abort cannot be
	// overwritten by a fresh deadline
	if r.aborted.Load() {
		return 0, false, net.ErrClosed
	}
	buf, err := readWaiting(src)
	if err != nil || buf == nil {
		return 0, buf == nil && err == nil, err
	}
	defer putBuffer(buf)
	if len(*buf) == 0 {
		return 0, false, nil // EOF
	}
	r.copying[dir].Store(time.Now().UnixNano())
	err = writeAll(dst, *buf)
	r.copying[dir].Store(0)
	r.count(dir, int64(len(*buf)))
	r.last.Store(time.Now().UnixNano())
	return int64(len(*buf)), len(*buf) == cap(*buf), err
}

// copy runs one io.Copy from src to dst with the hold deadline and
// accounts for the bytes it moved. It returns nil at EOF.
func (r *relay) copy(dst, src *net.TCPConn, dir int) (int64, error) {
	_ = src.SetReadDeadline(time.Now().Add(r.hold))
	if r.aborted.Load() {
		return 0, net.ErrClosed
	}
	r.copying[dir].Store(time.Now().UnixNano())
	n, err := io.Copy(dst, src)
	r.copying[dir].Store(0)
	if n > 0 {
		r.count(dir, n)
		r.last.Store(time.Now().UnixNano())
	}
	return n, err
}

// idleFor reports whether the connection has been idle for the idle
// timeout, as seen from the direction opposite to other. A copy in other
// that outlived its read deadline is writing to a slow reader, and so
// is not idle however long ago it last returned.
func (r *relay) idleFor(other int) bool {
	now := time.Now().UnixNano()
	if now-r.last.Load() < int64(r.idle) {
		return false
	}
	began := r.copying[other].Load()
	return began == 0 || now-began < int64(2*r.hold)
}

// count adds n bytes to the direction's counter.
func (r *relay) count(dir int, n int64) {
	if dir == toUpstream {
		r.m.sent.Add(float64(n))
		return
	}
	r.m.recv.Add(float64(n))
}

// abort stops both directions: a deadline in the past wakes any read or
// write in progress. It may be called more than once and from either
// direction.
func (r *relay) abort() {
	if !r.aborted.CompareAndSwap(false, true) {
		return
	}
	past := time.Unix(1, 0)
	_ = r.client.SetDeadline(past)
	_ = r.up.SetDeadline(past)
}

// writeAll writes b to w; a short write is an error.
func writeAll(w io.Writer, b []byte) error {
	for len(b) > 0 {
		n, err := w.Write(b)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
