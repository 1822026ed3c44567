//go:build linux && !386

package l4

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// On Linux the listener accepts with accept4 itself rather than through
// the net package, whose accept also asks the kernel for the local
// address and sets TCP_NODELAY on every connection. Here the listening
// socket carries TCP_NODELAY and the keepalive choice, which an accepted
// socket inherits, so a new client costs accept4 and the two calls that
// hand the socket to the runtime's poller (os.NewFile), and the local
// address is asked for only when a PROXY header needs it.

// listenerOptions sets TCP_NODELAY, as the net package sets it, on the
// socket about to listen, for its accepted sockets to inherit. (TCP_INQ
// is not inherited, so the relay sets it on a client's first read.)
func listenerOptions(rc syscall.RawConn) error {
	var err error
	if cerr := rc.Control(func(fd uintptr) {
		err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	}); cerr != nil {
		return cerr
	}
	return err
}

// setRoute makes r the listener's route, and sets the TCP keepalive its
// publish asks for on the listening socket, for the clients accepted
// from now on.
func (l *tcpListener) setRoute(r *route) {
	l.rt.Store(r)
	rc, err := l.ln.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		if keepAliveFor(r.pub) >= 0 {
			_ = setKeepAlive(int(fd), keepAliveConfig)
			return
		}
		_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 0)
	})
}

// prepareClient has nothing to do: the client inherited its options
// from the listening socket.
func prepareClient(stream, *route) {}

// pollListener returns a second descriptor of the listening socket in
// an *os.File, whose raw connection, unlike the listener's, can wait in
// the poller for a client to accept. stop closes it with the listener.
func pollListener(ln *net.TCPListener) (*os.File, error) {
	rc, err := ln.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = dupCloexec(int(fd))
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, os.NewSyscallError("fcntl", derr)
	}
	// the file status flags, O_NONBLOCK among them, are the listener's
	return os.NewFile(uintptr(nfd), "listener"), nil
}

// dupCloexec duplicates fd with close-on-exec set.
func dupCloexec(fd int) (int, error) {
	r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// acceptLoop takes clients until the listener is closed: every client
// queued when the poller wakes it, then it waits again.
func (l *tcpListener) acceptLoop() {
	defer l.wg.Done()
	rc, err := l.pollFile.SyscallConn()
	if err != nil {
		l.log.Error("tcp listener stopped", "listener", l.key, "err", err)
		return
	}
	var backoff time.Duration
	for {
		var acceptErr error
		err := rc.Read(func(fd uintptr) bool {
			for {
				nfd, client, errno := accept(fd)
				switch errno {
				case 0:
				case syscall.EAGAIN:
					return false
				case syscall.EINTR, syscall.ECONNABORTED:
					continue // a client that left while queued
				default:
					acceptErr = os.NewSyscallError("accept4", errno)
					return true
				}
				backoff = 0
				c, err := newSockFile(nfd, "client")
				if err != nil {
					acceptErr = err
					return true
				}
				l.take(c, client)
			}
		})
		if err == nil {
			err = acceptErr
		}
		if !l.acceptFailed(err, &backoff) {
			return
		}
	}
}

// accept takes one queued client from the listening socket fd without
// blocking, and returns its socket, non-blocking, and address.
func accept(fd uintptr) (int, netip.AddrPort, syscall.Errno) {
	var sa syscall.RawSockaddrAny
	n := uint32(unsafe.Sizeof(sa))
	r, _, errno := syscall.RawSyscall6(syscall.SYS_ACCEPT4, fd,
		uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&n)),
		syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0, 0)
	if errno != 0 {
		return -1, netip.AddrPort{}, errno
	}
	return int(r), addrPortOfRaw(rawBytes(&sa)), 0
}

// rawBytes returns the part of sa that holds an IPv4 or IPv6 address.
func rawBytes(sa *syscall.RawSockaddrAny) []byte {
	return (*[syscall.SizeofSockaddrInet6]byte)(unsafe.Pointer(sa))[:]
}

// addrPortOfRaw converts a socket address in the kernel's layout (at
// least syscall.SizeofSockaddrInet6 bytes), IPv4 unmapped; other
// families give the zero AddrPort.
func addrPortOfRaw(b []byte) netip.AddrPort {
	port := binary.BigEndian.Uint16(b[2:4])
	switch binary.NativeEndian.Uint16(b[0:2]) {
	case syscall.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port)
	case syscall.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])).Unmap(), port)
	}
	return netip.AddrPort{}
}

// LocalAddr returns the address the socket is bound to, or nil.
func (s *sockFile) LocalAddr() net.Addr {
	var sa syscall.RawSockaddrAny
	n := uint32(unsafe.Sizeof(sa))
	var errno syscall.Errno
	if err := s.rc.Control(func(fd uintptr) {
		_, _, errno = syscall.RawSyscall(syscall.SYS_GETSOCKNAME, fd,
			uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&n)))
	}); err != nil || errno != 0 {
		return nil
	}
	ap := addrPortOfRaw(rawBytes(&sa))
	if !ap.IsValid() {
		return nil
	}
	return net.TCPAddrFromAddrPort(ap)
}
