//go:build !linux

package l4

import "net"

// readWaiting reads nothing off Linux: io.Copy holds no pipe there, so
// there is nothing to save by waiting first. A nil buffer with a nil
// error sends the caller straight to io.Copy.
func readWaiting(*net.TCPConn) (*[]byte, error) { return nil, nil }

func putBuffer(*[]byte) {}
