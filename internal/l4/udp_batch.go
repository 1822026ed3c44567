//go:build linux && (amd64 || arm64)

package l4

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"unsafe"
)

// On Linux the UDP path moves datagrams in batches. recvmmsg on the
// listening socket takes every queued client datagram in one call; the
// datagrams of each session then go upstream in one sendmmsg on its
// socket. Each session takes its queued replies with recvmmsg and sends
// them to the client with one sendmmsg from the listening socket. Under
// load this divides the system calls per datagram; idle, it costs the
// same as single reads.
//
// A recvmmsg that returns fewer datagrams than asked for has emptied the
// queue, and the poller, which is edge-triggered and remembers an arrival
// that comes while nobody waits, wakes the reader for the next one. So
// the reader waits at once instead of spending a call to find the queue
// empty: one recvmmsg and one sendmmsg each way per datagram at low load.

// batchSize is how many datagrams one recvmmsg or sendmmsg moves.
const batchSize = 16

// mmsghdr is the kernel's struct mmsghdr.
type mmsghdr struct {
	hdr syscall.Msghdr
	n   uint32
}

// batch holds the buffers of one recvmmsg call and the headers to send
// them on. The kernel writes into it, so it stays reachable for the call.
type batch struct {
	msgs  [batchSize]mmsghdr
	iovs  [batchSize]syscall.Iovec
	names [batchSize]rawName
	bufs  [batchSize][maxDatagram]byte

	out    [batchSize]mmsghdr
	outIov [batchSize]syscall.Iovec
}

// batchPool holds reply batches; a session takes one only while replies
// are ready, so idle sessions hold none.
var batchPool = sync.Pool{New: func() any { return newBatch() }}

func newBatch() *batch {
	b := new(batch)
	for i := range b.msgs {
		b.iovs[i].Base = &b.bufs[i][0]
		b.msgs[i].hdr.Iov = &b.iovs[i]
		b.msgs[i].hdr.Iovlen = 1
		b.out[i].hdr.Iov = &b.outIov[i]
		b.out[i].hdr.Iovlen = 1
	}
	return b
}

// mmsg runs recvmmsg or sendmmsg on fd without blocking. A call that
// cannot block skips the scheduler's bookkeeping for calls that may
// (RawSyscall6).
func mmsg(trap uintptr, fd int, msgs []mmsghdr) (int, error) {
	for {
		r, _, errno := syscall.RawSyscall6(trap, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])),
			uintptr(len(msgs)), syscall.MSG_DONTWAIT, 0, 0)
		runtime.KeepAlive(msgs)
		switch errno {
		case 0:
			return int(r), nil
		case syscall.EINTR:
			continue
		}
		return 0, errno
	}
}

// recv reads up to batchSize datagrams from fd without blocking, with
// their source addresses when names is set.
func (b *batch) recv(fd int, names bool) (int, error) {
	for i := range b.msgs {
		h := &b.msgs[i].hdr
		b.iovs[i].SetLen(maxDatagram)
		h.Flags = 0
		h.Name, h.Namelen = nil, 0
		if names {
			h.Name, h.Namelen = &b.names[i].b[0], uint32(len(b.names[i].b))
		}
	}
	return mmsg(sysRecvmmsg, fd, b.msgs[:])
}

// payload returns datagram i of the last recv.
func (b *batch) payload(i int) []byte { return b.bufs[i][:b.msgs[i].n] }

// from returns the source address of datagram i of the last recv, IPv4
// unmapped, and records the raw address for replies.
func (b *batch) from(i int) (netip.AddrPort, bool) {
	nm := &b.names[i]
	nm.n = b.msgs[i].hdr.Namelen
	ap := addrPortOfRaw(nm.b[:])
	return ap, ap.IsValid()
}

// stage prepares out[k] to send datagram i of the last recv to to (nil
// on a connected socket), and returns its size.
func (b *batch) stage(k, i int, to *rawName) int {
	n := int(b.msgs[i].n)
	b.outIov[k].Base = &b.bufs[i][0]
	b.outIov[k].SetLen(n)
	h := &b.out[k].hdr
	h.Name, h.Namelen = nil, 0
	if to != nil {
		h.Name, h.Namelen = &to.b[0], to.n
	}
	return n
}

// sendAll sends out[:n] on rc, waiting while the socket buffer is full.
func (b *batch) sendAll(rc syscall.RawConn, n int) error {
	off := 0
	var sendErr error
	err := rc.Write(func(fd uintptr) bool {
		for off < n {
			r, err := mmsg(sysSendmmsg, int(fd), b.out[off:n])
			if err == syscall.EAGAIN {
				return false
			}
			if err != nil {
				sendErr = err
				return true
			}
			off += r
		}
		return true
	})
	if sendErr != nil {
		return sendErr
	}
	return err
}

// readLoop forwards client datagrams to their sessions until the socket
// closes.
func (l *udpListener) readLoop() {
	defer l.wg.Done()
	b := newBatch()
	for {
		var recvErr error
		err := l.rc.Read(func(fd uintptr) bool {
			for {
				n, err := b.recv(int(fd), true)
				if err == syscall.EAGAIN {
					return false
				}
				if err != nil {
					recvErr = err
					return true
				}
				l.forwardBatch(b, n)
				if n < batchSize {
					return false // the queue is empty: wait for the next arrival
				}
			}
		})
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				l.log.Error("udp listener stopped", "listener", l.key, "err", err)
			}
			return
		}
		l.log.Debug("udp read failed", "listener", l.key, "err", recvErr)
	}
}

// forwardBatch sends the n datagrams of the last recv upstream, one
// sendmmsg per session, keeping each session's datagrams in order.
func (l *udpListener) forwardBatch(b *batch, n int) {
	var sess [batchSize]*session
	for i := range n {
		if from, ok := b.from(i); ok {
			sess[i] = l.session(from, &b.names[i])
		}
	}
	var idx [batchSize]int
	for i := range n {
		s := sess[i]
		if s == nil {
			continue
		}
		k, size := 0, 0
		for j := i; j < n; j++ {
			if sess[j] == s {
				size += b.stage(k, j, nil)
				idx[k] = j
				sess[j] = nil
				k++
			}
		}
		l.sendUpstream(s, b, idx[:k], size)
	}
}

// sendUpstream sends the staged datagrams idx of b on the session's
// socket.
func (l *udpListener) sendUpstream(s *session, b *batch, idx []int, size int) {
	s.hits.Add(uint64(len(idx)))
	err := b.sendAll(s.rc, len(idx))
	switch {
	case err == nil:
		s.ep.m.sent.Add(float64(size))
	case errors.Is(err, net.ErrClosed):
		// the sweeper closed the session under us: the datagrams go one
		// by one, through a new session
		for _, j := range idx {
			if from, ok := b.from(j); ok {
				l.forward(b.payload(j), from, &b.names[j])
			}
		}
	default:
		l.upstreamError(s, err)
	}
}

// replies sends the upstream's datagrams back to the client until the
// session closes.
func (s *session) replies() {
	defer s.l.wg.Done()
	err := s.relayReplies()
	if !s.closed.Load() {
		s.l.upstreamError(s, err)
	}
}

// relayReplies moves the upstream's queued datagrams to the client a
// batch at a time, and returns the error that ended the session.
func (s *session) relayReplies() error {
	var recvErr error
	err := s.rc.Read(func(fd uintptr) bool {
		b := batchPool.Get().(*batch)
		defer batchPool.Put(b)
		for {
			n, err := b.recv(int(fd), false)
			if err == syscall.EAGAIN {
				return false
			}
			if err != nil {
				recvErr = err
				return true
			}
			s.hits.Add(uint64(n))
			size := 0
			for i := range n {
				size += b.stage(i, i, &s.name)
			}
			if b.sendAll(s.l.rc, n) == nil {
				s.ep.m.recv.Add(float64(size))
			}
			if n < batchSize {
				return false
			}
		}
	})
	if recvErr != nil {
		return recvErr
	}
	return err
}
