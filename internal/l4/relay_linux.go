package l4

import (
	"net"
	"syscall"
)

// awaitReadable waits until c has bytes to read, has reached EOF or has
// failed, without reading: a one-byte MSG_PEEK tells which. It honours
// c's read deadline.
func awaitReadable(c *net.TCPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var b [1]byte
	return rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return err != syscall.EAGAIN
	})
}
