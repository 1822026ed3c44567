package l4

import (
	"net"
	"sync"
	"syscall"
)

// smallRead is the size of the reads that forward small messages without
// splice: a request or response that fits takes one read and one write.
const smallRead = 16 << 10

var bufPool = sync.Pool{New: func() any {
	b := make([]byte, smallRead)
	return &b
}}

func putBuffer(b *[]byte) {
	*b = (*b)[:cap(*b)]
	bufPool.Put(b)
}

// readWaiting waits until c has bytes to read, has reached EOF or has
// failed, then reads what is waiting into a pooled buffer, which the
// caller gives back with putBuffer; an empty buffer means EOF. It honours
// c's read deadline, and takes a buffer only once there is data.
func readWaiting(c *net.TCPConn) (*[]byte, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var buf *[]byte
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		b := bufPool.Get().(*[]byte)
		n, _, err := syscall.Recvfrom(int(fd), *b, syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EAGAIN:
			bufPool.Put(b)
			return false
		case err != nil:
			bufPool.Put(b)
			rerr = err
			return true
		}
		*b = (*b)[:n]
		buf = b
		return true
	})
	if err != nil {
		return nil, err
	}
	return buf, rerr
}
