package l4

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/pires/go-proxyproto"
)

// ErrNoProxyHeader is returned when a client that must send a PROXY header
// sends something else.
var ErrNoProxyHeader = errors.New("no PROXY header")

// proxyInfo is what a PROXY header says about a connection.
type proxyInfo struct {
	// local is set for the LOCAL command (a health check by the sender):
	// the addresses of the connection itself stand.
	local    bool
	src, dst netip.AddrPort
}

// headerBufSize is the read buffer for the header. Bytes that arrive
// behind the header land in it too and are handed back to be relayed.
const headerBufSize = 512

// readProxyHeader reads a PROXY v1 or v2 header from the start of c within
// timeout, and returns it with the bytes read past it.
func readProxyHeader(c deadlineReader, timeout time.Duration) (proxyInfo, []byte, error) {
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return proxyInfo{}, nil, fmt.Errorf("reading PROXY header: %w", err)
	}
	info, rest, err := parseProxyHeader(c)
	if err != nil {
		return proxyInfo{}, nil, err
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return proxyInfo{}, nil, fmt.Errorf("reading PROXY header: %w", err)
	}
	return info, rest, nil
}

// deadlineReader is a connection as readProxyHeader reads it.
type deadlineReader interface {
	io.Reader
	SetReadDeadline(t time.Time) error
}

// parseProxyHeader reads one header from r. The returned bytes are what
// was read from r past the header; they belong to the client's stream.
func parseProxyHeader(r io.Reader) (proxyInfo, []byte, error) {
	br := bufio.NewReaderSize(r, headerBufSize)
	h, err := proxyproto.Read(br)
	if errors.Is(err, proxyproto.ErrNoProxyProtocol) {
		return proxyInfo{}, nil, ErrNoProxyHeader
	}
	if err != nil {
		return proxyInfo{}, nil, fmt.Errorf("reading PROXY header: %w", err)
	}

	// copy out what bufio read ahead: the caller relays it before
	// handing the raw connection to splice
	rest, _ := br.Peek(br.Buffered())
	rest = append([]byte(nil), rest...)
	if h.Command.IsLocal() {
		return proxyInfo{local: true}, rest, nil
	}
	src, okS := addrPortOf(h.SourceAddr)
	dst, okD := addrPortOf(h.DestinationAddr)
	if !okS || !okD {
		return proxyInfo{}, nil, fmt.Errorf("reading PROXY header: %w: %v",
			ErrNoProxyHeader, h.TransportProtocol)
	}
	return proxyInfo{src: src, dst: dst}, rest, nil
}

// addrPortOf converts a TCP or UDP address; other kinds fail.
func addrPortOf(a net.Addr) (netip.AddrPort, bool) {
	switch v := a.(type) {
	case *net.TCPAddr:
		ap := v.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
	case *net.UDPAddr:
		ap := v.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
	}
	return netip.AddrPort{}, false
}

// proxyHeader formats a PROXY header of version (1 or 2) for a TCP
// connection from src to dst.
func proxyHeader(version int, src, dst netip.AddrPort) ([]byte, error) {
	h := proxyproto.HeaderProxyFromAddrs(byte(version),
		net.TCPAddrFromAddrPort(src), net.TCPAddrFromAddrPort(dst))
	b, err := h.Format()
	if err != nil {
		return nil, fmt.Errorf("formatting PROXY header: %w", err)
	}
	return b, nil
}
