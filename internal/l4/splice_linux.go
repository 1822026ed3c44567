//go:build linux && !386

package l4

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// errNoDescriptor is returned when a connection has no descriptor to
// relay on, which the net package and os.File always provide.
var errNoDescriptor = errors.New("connection without a descriptor")

// maxSplice is how much one splice asks for, and the size asked for the
// pipes.
const maxSplice = 1 << 20

// pipe is a kernel pipe that bulk transfers splice through, so that their
// bytes never enter user space.
type pipe struct {
	r, w int
}

// pipes holds idle pipes. One that the pool drops is closed by its
// finalizer.
var pipes = sync.Pool{New: func() any {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		return (*pipe)(nil)
	}
	// a smaller pipe still works, with more calls
	_, _, _ = syscall.RawSyscall(syscall.SYS_FCNTL, uintptr(fds[0]), syscall.F_SETPIPE_SZ, maxSplice)
	p := &pipe{r: fds[0], w: fds[1]}
	runtime.SetFinalizer(p, (*pipe).close)
	return p
}}

func (p *pipe) close() {
	_ = syscall.Close(p.r)
	_ = syscall.Close(p.w)
}

// spliceCall runs one non-blocking splice(2) from in to out.
func spliceCall(out, in int, max int) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0,
		uintptr(max), spliceMove|spliceNonblock)
	return int(n), errno
}

// Flags of splice(2).
const (
	spliceMove     = 0x1
	spliceNonblock = 0x2
)

// bulk moves src's bytes to dst through a pipe until src falls silent for
// the hold deadline, reaches EOF (nil error) or fails. Each round takes
// what src has into the pipe and empties the pipe into dst; a round that
// finds dst full marks the direction blocked until dst takes the rest.
// With no pipe to be had (out of descriptors) the bytes go through user
// space instead.
func (r *relay) bulk(_, src stream, dir int) (int64, error) {
	_ = src.SetReadDeadline(time.Now().Add(r.hold))
	if r.aborted.Load() {
		return 0, net.ErrClosed
	}
	p := pipes.Get().(*pipe)
	if p == nil {
		n, _, err := r.passUntil(dir, false)
		return n, err
	}
	in, out := &r.ends[dir], &r.ends[1-dir]
	var n int64
	var ioErr error
	err := in.rc.Read(func(fd uintptr) bool {
		for {
			m, errno := spliceCall(p.w, int(fd), maxSplice)
			switch {
			case errno == syscall.EINTR:
				continue
			case errno == syscall.EAGAIN:
				return false
			case errno != 0:
				ioErr = errno
				return true
			case m == 0:
				return true // EOF
			}
			if ioErr = out.drain(p, m); ioErr != nil {
				return true
			}
			r.moved(dir, int64(m))
			n += int64(m)
		}
	})
	if ioErr != nil {
		// the pipe may hold bytes that never left: it is not reused
		p.close()
		runtime.SetFinalizer(p, nil)
		return n, ioErr
	}
	pipes.Put(p)
	return n, err
}

// drain splices the m bytes in p to e, waiting in the poller while e's
// send buffer is full.
func (e *end) drain(p *pipe, m int) error {
	var drainErr error
	marked := false
	err := e.rc.Write(func(fd uintptr) bool {
		for m > 0 {
			k, errno := spliceCall(int(fd), p.r, m)
			switch errno {
			case 0:
				m -= k
			case syscall.EINTR:
			case syscall.EAGAIN:
				if !marked {
					marked = true
					e.r.blocked[e.writer].Store(time.Now().UnixNano())
				}
				return false
			default:
				drainErr = errno
				return true
			}
		}
		return true
	})
	if marked {
		e.r.blocked[e.writer].Store(0)
	}
	if drainErr != nil {
		return drainErr
	}
	return err
}

// sockFile is a TCP connection that lb accepted or opened itself (see
// acceptLoop and dialStream): a non-blocking socket in an *os.File, so
// the runtime's poller serves its waits and deadlines as it does for a
// *net.TCPConn.
type sockFile struct {
	*os.File
	rc  syscall.RawConn
	inq bool // TCP_INQ is on
}

// newSockFile hands the connected, non-blocking socket fd to the
// runtime's poller. On failure fd is closed.
func newSockFile(fd int, name string) (*sockFile, error) {
	f := os.NewFile(uintptr(fd), name)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &sockFile{File: f, rc: rc}, nil
}

func (s *sockFile) SyscallConn() (syscall.RawConn, error) { return s.rc, nil }

// CloseWrite shuts down the writing side, sending the FIN.
func (s *sockFile) CloseWrite() error {
	var err error
	if cerr := s.rc.Control(func(fd uintptr) {
		err = syscall.Shutdown(int(fd), syscall.SHUT_WR)
	}); cerr != nil {
		return cerr
	}
	return err
}

// dialStream connects to ep within d's timeout, with TCP_NODELAY as the
// net package sets it, and TCP keepalive with d.KeepAliveConfig's timing
// unless d.KeepAlive is negative. It makes the socket itself rather than use the
// net package's dialer, which per connection parses the address, builds
// a context with a timer and asks the kernel for both addresses; a new
// connection here costs socket, two setsockopt (TCP_NODELAY, TCP_INQ),
// connect, the two calls that hand it to the poller, and one
// getpeername once the connect is done. The context is not watched: the timeout
// bounds the wait.
func dialStream(_ context.Context, d *net.Dialer, ep *endpoint) (stream, error) {
	addr := ep.addr.Addr().Unmap()
	var sa syscall.Sockaddr
	family := syscall.AF_INET
	if addr.Is4() {
		sa = &syscall.SockaddrInet4{Port: int(ep.addr.Port()), Addr: addr.As4()}
	} else {
		family = syscall.AF_INET6
		sa = &syscall.SockaddrInet6{Port: int(ep.addr.Port()), Addr: addr.As16()}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC,
		syscall.IPPROTO_TCP)
	if err != nil {
		return nil, dialError(ep.addr, os.NewSyscallError("socket", err))
	}
	_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	inq := syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, tcpInq, 1) == nil
	if d.KeepAlive >= 0 {
		_ = setKeepAlive(fd, d.KeepAliveConfig)
	}
	switch err := syscall.Connect(fd, sa); err {
	case nil, syscall.EINPROGRESS, syscall.EALREADY, syscall.EINTR:
	default:
		_ = syscall.Close(fd)
		return nil, dialError(ep.addr, os.NewSyscallError("connect", err))
	}
	s, err := newSockFile(fd, ep.name)
	if err != nil {
		return nil, dialError(ep.addr, err)
	}
	s.inq = inq
	// on loopback the handshake is often done by now, and the deadline,
	// a timer set and stopped, is needed only for a wait
	done := false
	_ = s.rc.Control(func(fd uintptr) { done = connected(fd) })
	if done {
		return s, nil
	}
	if d.Timeout > 0 {
		_ = s.SetWriteDeadline(time.Now().Add(d.Timeout))
	}
	var connErr error
	err = s.rc.Write(func(fd uintptr) bool {
		if connected(fd) {
			return true
		}
		n, gerr := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_ERROR)
		switch e := syscall.Errno(n); {
		case gerr != nil:
			connErr = os.NewSyscallError("getsockopt", gerr)
			return true
		case e == 0, e == syscall.EINPROGRESS, e == syscall.EALREADY, e == syscall.EINTR:
			return false // not yet: wait until writable
		default:
			connErr = os.NewSyscallError("connect", e)
			return true
		}
	})
	if err == nil {
		err = connErr
	}
	if err != nil {
		s.Close()
		return nil, dialError(ep.addr, err)
	}
	_ = s.SetWriteDeadline(time.Time{})
	return s, nil
}

// setKeepAlive turns on TCP keepalive on fd with cfg's timing, as the
// net package's dialer does.
func setKeepAlive(fd int, cfg net.KeepAliveConfig) error {
	return errors.Join(
		syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1),
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, int(cfg.Idle/time.Second)),
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, int(cfg.Interval/time.Second)),
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, cfg.Count))
}

// connected reports whether the socket fd has a peer, which after a
// non-blocking connect means the connect is done.
func connected(fd uintptr) bool {
	var rsa syscall.RawSockaddrAny
	n := uint32(unsafe.Sizeof(rsa))
	_, _, errno := syscall.RawSyscall(syscall.SYS_GETPEERNAME, fd,
		uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n)))
	return errno == 0
}

// dialError wraps err as the net package's dialer does.
func dialError(to netip.AddrPort, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = errConnectTimeout
	}
	return &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(to), Err: err}
}

// errConnectTimeout is the error of a connect that outlived the connect
// timeout.
var errConnectTimeout = errors.New("connect timeout")
