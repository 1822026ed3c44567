//go:build !(linux && (amd64 || arm64))

package l4

import (
	"errors"
	"net"
	"net/netip"
)

// readLoop forwards client datagrams to their sessions until the socket
// closes.
func (l *udpListener) readLoop() {
	defer l.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := l.pc.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			l.log.Debug("udp read failed", "listener", l.key, "err", err)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		l.forward(buf[:n], from, nil)
	}
}

// replies sends the upstream's datagrams back to the client until the
// session closes.
func (s *session) replies() {
	defer s.l.wg.Done()
	err := readDatagrams(s.up, func(b []byte) {
		s.hits.Add(1)
		if _, err := s.l.pc.WriteToUDPAddrPort(b, s.client); err == nil {
			s.ep.m.recv.Add(float64(len(b)))
		}
	})
	if !s.closed.Load() {
		s.l.upstreamError(s, err)
	}
}
