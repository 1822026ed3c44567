package l4

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// stream is a TCP connection as the relay uses it: the accepted
// *net.TCPConn, and the upstream connection, which dialStream opens
// without the net package's dialer on Linux.
type stream interface {
	io.ReadWriteCloser
	SetDeadline(t time.Time) error
	SetReadDeadline(t time.Time) error
	CloseWrite() error
	SyscallConn() (syscall.RawConn, error)
}

// relay moves bytes both ways between a client and an upstream.
//
// On Linux (relay_linux.go) each direction waits in the poller until its
// source has bytes and passes each arrival on with one read into a
// pooled 16 KiB buffer and one write (pass): a request or a response
// that fits costs two system calls. The kernel says with each read
// whether bytes or an EOF are still queued (TCP_INQ), so no read is
// spent finding the queue empty. A read that fills the buffer means bulk:
// the direction then splices (bulk, splice_linux.go) through a pooled
// pipe, so the bytes never enter user space, with a read deadline of at
// most pipeHold; when the source falls silent that long the pipe goes
// back to the pool and the direction waits again. An idle connection
// holds its two sockets and nothing else. Elsewhere each direction is
// io.Copy between the two connections (relay_other.go).
//
// The idle timeout cannot watch individual reads inside a splice or a
// copy. Every wait and every bulk move carries a read deadline of at
// most an eighth of the timeout, and every write counts in a shared
// tally of moves. When a direction's deadline passes, it compares the
// tally with the one it noted at an earlier deadline; once the tally has
// stood still for the whole timeout the connection is closed, between 1
// and 1.25 idle timeouts after the last byte. A write blocked on a slow
// reader keeps its connection busy. A deadline only interrupts a wait to
// read, so no byte is lost.
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
	client, up stream
	ends       [2]end // per direction, the connection it reads
	idle       time.Duration
	step       time.Duration // deadline of a wait, with an idle timeout
	hold       time.Duration // deadline of a bulk move
	m          *upstreamMetrics

	moves   atomic.Uint64   // writes either way, for the idle timeout
	noted   [2]tally        // per direction, read by its own pump only
	blocked [2]atomic.Int64 // per direction: from when its write counts as blocked (unix ns), or 0
	ended   atomic.Int32    // directions that reached EOF
	aborted atomic.Bool
	idled   atomic.Bool
}

// tally is the count of moves a direction saw at one of its deadlines,
// and when (unix nanoseconds).
type tally struct {
	moves uint64
	at    int64
}

// pipeHold bounds how long a bulk move keeps its splice pipe once its
// source falls silent.
const pipeHold = time.Second

// smallRead is the size of the reads that pass small messages on without
// splice (Linux): a request or response that fits takes one read and one
// write.
const smallRead = 16 << 10

// Directions of a relay, for counting.
const (
	toUpstream = iota
	toClient
)

// newRelay prepares a relay; run starts it.
func newRelay(client, up stream, idle time.Duration, m *upstreamMetrics) *relay {
	r := &relay{
		client: client,
		up:     up,
		idle:   idle,
		hold:   pipeHold,
		m:      m,
	}
	r.ends[toUpstream].init(client, r, toUpstream)
	r.ends[toClient].init(up, r, toClient)
	if idle > 0 {
		r.step = max(idle/8, time.Millisecond)
		r.hold = min(r.step, pipeHold)
	}
	now := time.Now().UnixNano()
	r.noted = [2]tally{{at: now}, {at: now}}
	return r
}

// run relays until both directions end. It returns the bytes moved each
// way, and whether the idle timeout ended the connection.
//
// TODO: a connection holds two goroutines for its life, about 10 KB of
// RSS when idle (NGINX's level), twice what HAProxy needs.
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
func (r *relay) pump(dst, src stream, dir int) int64 {
	var total int64
	for {
		// waiting first, even on a new connection: a bulk move started
		// on a silent source would hold a pipe while it waits
		n, bulk, err := r.forward(src, dir)
		total += n
		if err == nil && bulk {
			n, err = r.bulk(dst, src, dir)
			total += n
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
		case r.idle > 0 && r.idleAt(dir):
			r.idled.Store(true)
			r.abort()
			return total
		}
	}
}

// forward sets the wait deadline and passes src's arrivals to the other
// connection until src reaches EOF (nil error), fails, stays silent past
// the deadline, or has more waiting than a buffer holds (bulk, nil
// error), for bulk to move. It returns the bytes moved.
func (r *relay) forward(src stream, dir int) (n int64, bulk bool, err error) {
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
	return r.pass(dir)
}

// moved accounts for n bytes written in direction dir.
func (r *relay) moved(dir int, n int64) {
	r.count(dir, n)
	r.moves.Add(1)
}

// idleAt reports, at one of direction dir's deadlines, whether no byte
// has moved either way for the idle timeout. A write of the other
// direction that is blocked on a slow reader keeps the connection busy.
func (r *relay) idleAt(dir int) bool {
	now := time.Now().UnixNano()
	seen := &r.noted[dir]
	if moves := r.moves.Load(); moves != seen.moves {
		*seen = tally{moves: moves, at: now}
		return false
	}
	if now-seen.at < int64(r.idle) {
		return false
	}
	b := r.blocked[1-dir].Load()
	return b == 0 || now < b
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
