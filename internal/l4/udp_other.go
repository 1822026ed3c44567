//go:build !unix

package l4

import "net"

// readDatagrams hands each datagram read from c to fn until c fails or
// closes, and returns the error.
//
// TODO: off Unix each UDP session holds a 64 KiB receive buffer for its
// whole life, so max_sessions 10000 can pin about 640 MiB.
func readDatagrams(c *net.UDPConn, fn func([]byte)) error {
	buf := make([]byte, maxDatagram)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		fn(buf[:n])
	}
}
