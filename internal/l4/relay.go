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
// The idle timeout cannot watch individual reads, because splice reports
// nothing until it returns. Instead each direction sets a read deadline
// of a quarter of the timeout on its source and restarts the copy when it
// expires. io.Copy returns the bytes it moved before the deadline, so a
// direction that moved any bytes stamps the shared last-activity time.
// Only when a deadline passes and neither direction has moved a byte for
// the whole timeout is the connection closed, between 1 and 1.25 idle
// timeouts after the last byte. A deadline can only interrupt splice
// while it waits to read with its pipe empty, so no byte is lost.
//
// When one direction reaches EOF its destination gets CloseWrite and the
// other direction goes on (half-close). An error in either direction
// aborts both.
//
// TODO: the idle timeout watches reads only. A peer that stops reading
// while the other side still has bytes to send blocks the splice in its
// write with no deadline; only TCP keepalive ends such a connection.
type relay struct {
	client, up *net.TCPConn
	idle       time.Duration
	step       time.Duration
	m          *upstreamMetrics

	last    atomic.Int64 // unix nanoseconds of the last byte moved
	aborted atomic.Bool
	idled   atomic.Bool
}

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
		step:   max(idle/4, time.Millisecond),
		m:      m,
	}
	r.last.Store(time.Now().UnixNano())
	return r
}

// run relays until both directions end. It returns the bytes moved each
// way, and whether the idle timeout ended the connection.
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
		if r.idle > 0 {
			_ = src.SetReadDeadline(time.Now().Add(r.step))
		}
		// checked after the deadline is set, so an abort cannot be
		// overwritten by a fresh deadline
		if r.aborted.Load() {
			return total
		}

		n, err := io.Copy(dst, src)
		if n > 0 {
			total += n
			r.count(dir, n)
			r.last.Store(time.Now().UnixNano())
		}
		switch {
		case err == nil:
			_ = dst.CloseWrite()
			return total
		case r.aborted.Load():
			return total
		case r.idle > 0 && errors.Is(err, os.ErrDeadlineExceeded):
			if time.Since(time.Unix(0, r.last.Load())) < r.idle {
				continue
			}
			r.idled.Store(true)
			r.abort()
			return total
		default:
			r.abort()
			return total
		}
	}
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
