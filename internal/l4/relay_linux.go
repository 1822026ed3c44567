//go:build linux && !386

package l4

import (
	"sync"
	"syscall"
	"time"
	"unsafe"
)

var bufPool = sync.Pool{New: func() any {
	b := make([]byte, smallRead)
	return &b
}}

// tcpInq is the TCP_INQ socket option (Linux 4.18): each recvmsg then
// carries a control message with the bytes still queued, or 1 when the
// queue is empty but the peer's FIN has arrived.
const tcpInq = 36

// end is one connection of a relay, read by one direction and written
// by the other. It holds the descriptor, whether the kernel reports what
// is left queued after each read (TCP_INQ), and the state of a read or a
// write in progress, for the poller's callbacks, which are bound once per
// connection so that a wait allocates nothing.
type end struct {
	rc     syscall.RawConn
	r      *relay
	reader int // the direction that reads this end
	writer int // the direction that writes to it

	inq      bool // TCP_INQ is on
	inqTried bool

	// pass's read in progress
	read     func(fd uintptr) bool // passIn, bound once
	stopBulk bool
	passed   int64
	bulk     bool
	readErr  error

	// send's write in progress
	write func(fd uintptr) bool // sendOut, bound once
	out   []byte
	flags int
	err   error
	full  bool // out found the socket full
}

// init sets e up as the end that direction dir reads.
func (e *end) init(c stream, r *relay, dir int) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	e.rc, e.r, e.reader, e.writer = rc, r, dir, 1-dir
	e.read, e.write = e.passIn, e.sendOut
	if s, ok := c.(*sockFile); ok && s.inq {
		// dialStream set it already
		e.inq, e.inqTried = true, true
	}
}

// pass waits in the poller, holding no buffer, until src has bytes, and
// writes each arrival to the other end with one read and one write. It
// returns with a nil error at EOF, with bulk set when a read filled the
// buffer (more is likely waiting, for splice), or with the error that
// ended a read or a write, the read deadline's among them.
//
// The poller is edge-triggered and remembers an arrival that comes while
// nobody waits, so once a read has emptied the queue the next arrival is
// sure to wake the wait. TCP_INQ says when a read emptied it; a FIN that
// came with the data it read counts as not empty, so the EOF is read at
// once rather than waited for. Without TCP_INQ, each arrival costs a
// second read, the one that finds the queue empty.
func (r *relay) pass(dir int) (n int64, bulk bool, err error) {
	return r.passUntil(dir, true)
}

// passUntil is pass; without stopBulk a full buffer is passed on like
// any other read, for when no splice pipe can be had.
func (r *relay) passUntil(dir int, stopBulk bool) (n int64, bulk bool, err error) {
	src := &r.ends[dir]
	if src.rc == nil || r.ends[1-dir].rc == nil {
		return 0, false, errNoDescriptor
	}
	src.stopBulk, src.passed, src.bulk, src.readErr = stopBulk, 0, false, nil
	err = src.rc.Read(src.read)
	if src.readErr != nil {
		err = src.readErr
	}
	return src.passed, src.bulk && err == nil, err
}

// passIn is pass's callback on the reading end e.
func (e *end) passIn(fd uintptr) bool {
	if !e.inqTried {
		// on the first read rather than at init: it needs the
		// descriptor, and the callback has it without a closure
		e.inqTried = true
		e.inq = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpInq, 1) == nil
	}
	dst := &e.r.ends[e.writer]
	for {
		b := bufPool.Get().(*[]byte)
		m, left, rerr := recvQueued(fd, *b, e.inq)
		switch {
		case rerr == syscall.EINTR:
			bufPool.Put(b)
			continue
		case rerr == syscall.EAGAIN:
			bufPool.Put(b)
			return false
		case rerr != nil:
			bufPool.Put(b)
			e.readErr = rerr
			return true
		case m == 0:
			bufPool.Put(b)
			return true // EOF
		}
		// TCP_INQ reports a lone FIN as one byte left. Corking the write
		// then lets the FIN passed on next share its segment, as a reply
		// and its close do; if the byte is data, the next write flushes
		// both.
		werr := dst.send((*b)[:m], e.inq && left == 1)
		e.r.moved(e.reader, int64(m))
		e.passed += int64(m)
		bufPool.Put(b)
		switch {
		case werr != nil:
			e.readErr = werr
			return true
		case m == smallRead && e.stopBulk:
			e.bulk = true
			return true
		case e.inq && left == 0:
			return false
		}
	}
}

// send writes b to e, waiting in the poller while its send buffer is
// full. With more, the kernel holds a last partial segment back until
// the next write, shutdown or close (MSG_MORE).
func (e *end) send(b []byte, more bool) error {
	e.out, e.err, e.full = b, nil, false
	e.flags = syscall.MSG_DONTWAIT | syscall.MSG_NOSIGNAL
	if more {
		e.flags |= syscall.MSG_MORE
	}
	err := e.rc.Write(e.write)
	if e.full {
		e.r.blocked[e.writer].Store(0)
	}
	e.out = nil
	if e.err != nil {
		return e.err
	}
	return err
}

// sendOut is send's callback: it writes out without blocking, and marks
// the writing direction blocked when the socket is full.
func (e *end) sendOut(fd uintptr) bool {
	for len(e.out) > 0 {
		n, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, fd,
			uintptr(unsafe.Pointer(&e.out[0])), uintptr(len(e.out)),
			uintptr(e.flags), 0, 0)
		switch errno {
		case 0:
			e.out = e.out[n:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			if !e.full {
				e.full = true
				e.r.blocked[e.writer].Store(time.Now().UnixNano())
			}
			return false
		default:
			e.err = errno
			return true
		}
	}
	return true
}

// recvQueued reads what is queued on fd into b without blocking. With
// inq it also returns what TCP_INQ reports left queued, else -1.
//
// The socket calls of pass and send never block, so they skip the
// scheduler's bookkeeping for calls that may (RawSyscall).
func recvQueued(fd uintptr, b []byte, inq bool) (n, left int, err error) {
	if !inq {
		r, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd,
			uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), syscall.MSG_DONTWAIT, 0, 0)
		if e != 0 {
			return 0, -1, e
		}
		return int(r), -1, nil
	}
	var ctl [4]uint64 // aligned for the control message header
	iov := syscall.Iovec{Base: &b[0]}
	iov.SetLen(len(b))
	msg := syscall.Msghdr{Iov: &iov, Iovlen: 1, Control: (*byte)(unsafe.Pointer(&ctl[0]))}
	msg.SetControllen(len(ctl) * 8)
	r, _, e := syscall.RawSyscall(syscall.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&msg)),
		syscall.MSG_DONTWAIT)
	if e != 0 {
		return 0, -1, e
	}
	left = -1
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&ctl[0]))
	if int(msg.Controllen) >= syscall.CmsgLen(4) && h.Level == syscall.IPPROTO_TCP && h.Type == tcpInq {
		left = int(*(*int32)(unsafe.Add(unsafe.Pointer(&ctl[0]), syscall.CmsgLen(0))))
	}
	return int(r), left, nil
}
