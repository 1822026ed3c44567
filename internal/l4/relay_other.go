//go:build !linux || 386

package l4

import "net"

// end is empty here: off Linux io.Copy holds no pipe, so there is
// nothing to save by waiting first, and on linux/386 the socket calls
// that pass makes have no numbers of their own.
type end struct{}

func (*end) init(*net.TCPConn, *relay, int) {}

// pass sends the relay straight to io.Copy.
func (r *relay) pass(int) (int64, bool, error) { return 0, true, nil }
