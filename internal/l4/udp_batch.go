//go:build linux && (amd64 || arm64)

package l4

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"unsafe"
)

// On Linux the UDP path moves datagrams in batches: recvmmsg on the
// listening socket takes every queued client datagram in one call, and
// each session takes its queued replies with recvmmsg and sends them to
// the client with one sendmmsg. Under load this cuts the system calls per
// datagram by the batch size; idle, it costs the same as single reads.

// batchSize is how many datagrams one recvmmsg or sendmmsg moves.
const batchSize = 16

// mmsghdr is the kernel's struct mmsghdr.
type mmsghdr struct {
	hdr syscall.Msghdr
	n   uint32
}

// batch holds the buffers of one recvmmsg or sendmmsg call. The kernel
// writes into it, so it stays reachable from the caller for the call.
type batch struct {
	msgs  [batchSize]mmsghdr
	iovs  [batchSize]syscall.Iovec
	names [batchSize]rawName
	bufs  [batchSize][maxDatagram]byte
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
	}
	return b
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
	for {
		r, _, errno := syscall.Syscall6(sysRecvmmsg, uintptr(fd),
			uintptr(unsafe.Pointer(&b.msgs[0])), batchSize, syscall.MSG_DONTWAIT, 0, 0)
		runtime.KeepAlive(b)
		switch errno {
		case 0:
			return int(r), nil
		case syscall.EINTR:
			continue
		}
		return 0, errno
	}
}

// payload returns datagram i of the last recv.
func (b *batch) payload(i int) []byte { return b.bufs[i][:b.msgs[i].n] }

// from returns the source address of datagram i of the last recv, IPv4
// unmapped, and records the raw address for replies.
func (b *batch) from(i int) (netip.AddrPort, bool) {
	nm := &b.names[i]
	nm.n = b.msgs[i].hdr.Namelen
	port := binary.BigEndian.Uint16(nm.b[2:4])
	switch binary.NativeEndian.Uint16(nm.b[0:2]) {
	case syscall.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(nm.b[4:8])), port), true
	case syscall.AF_INET6:
		a := netip.AddrFrom16([16]byte(nm.b[8:24])).Unmap()
		return netip.AddrPortFrom(a, port), true
	}
	return netip.AddrPort{}, false
}

// send writes datagrams off..n-1 of the last recv to the address to on
// fd without blocking, and returns how many went out.
func (b *batch) send(fd, off, n int, to *rawName) (int, error) {
	for i := off; i < n; i++ {
		h := &b.msgs[i].hdr
		b.iovs[i].SetLen(int(b.msgs[i].n))
		h.Name, h.Namelen = &to.b[0], to.n
	}
	for {
		r, _, errno := syscall.Syscall6(sysSendmmsg, uintptr(fd),
			uintptr(unsafe.Pointer(&b.msgs[off])), uintptr(n-off), syscall.MSG_DONTWAIT, 0, 0)
		runtime.KeepAlive(b)
		runtime.KeepAlive(to)
		switch errno {
		case 0:
			return int(r), nil
		case syscall.EINTR:
			continue
		}
		return 0, errno
	}
}

// readLoop forwards client datagrams to their sessions until the socket
// closes.
func (l *udpListener) readLoop() {
	defer l.wg.Done()
	rc, err := l.pc.SyscallConn()
	if err != nil {
		l.log.Error("udp listener unusable", "listener", l.key, "err", err)
		return
	}
	b := newBatch()
	for {
		var recvErr error
		err := rc.Read(func(fd uintptr) bool {
			for {
				n, err := b.recv(int(fd), true)
				if err == syscall.EAGAIN {
					return false
				}
				if err != nil {
					recvErr = err
					return true
				}
				for i := range n {
					if from, ok := b.from(i); ok {
						l.forward(b.payload(i), from, &b.names[i])
					}
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
	rc, err := s.up.SyscallConn()
	if err != nil {
		return err
	}
	var recvErr error
	err = rc.Read(func(fd uintptr) bool {
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
				size += int(b.msgs[i].n)
			}
			if s.l.sendBatch(b, n, &s.name) == nil {
				s.ep.m.recv.Add(float64(size))
			}
		}
	})
	if recvErr != nil {
		return recvErr
	}
	return err
}

// sendBatch sends the first n datagrams of b to the client at to from
// the listening socket, waiting while the socket buffer is full.
func (l *udpListener) sendBatch(b *batch, n int, to *rawName) error {
	rc, err := l.pc.SyscallConn()
	if err != nil {
		return err
	}
	off := 0
	var sendErr error
	err = rc.Write(func(fd uintptr) bool {
		for off < n {
			r, err := b.send(int(fd), off, n, to)
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
