//go:build unix && !(linux && (amd64 || arm64))

package l4

import (
	"net"
	"sync"
	"syscall"
)

// datagramPool holds receive buffers. A session takes one only while a
// datagram is ready, so idle sessions hold no buffer.
var datagramPool = sync.Pool{New: func() any { return new([maxDatagram]byte) }}

// readDatagrams hands each datagram read from c to fn until c fails or
// closes, and returns the error. It reads through the raw descriptor so
// that no buffer is pinned while the session waits.
func readDatagrams(c *net.UDPConn, fn func([]byte)) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var readErr error
	err = rc.Read(func(fd uintptr) bool {
		buf := datagramPool.Get().(*[maxDatagram]byte)
		defer datagramPool.Put(buf)
		for {
			n, err := syscall.Read(int(fd), buf[:])
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN:
				return false
			case err != nil:
				readErr = err
				return true
			}
			fn(buf[:n])
		}
	})
	if readErr != nil {
		return readErr
	}
	return err
}
