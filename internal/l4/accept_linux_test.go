//go:build linux && !386

package l4

import (
	"log/slog"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// An accepted client carries the options lb set on the listening socket
// (TCP_NODELAY and the route's keepalive choice), since the
// accept path sets none per connection, and accept reports its address.
func TestAcceptedSocketInheritsOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		idle time.Duration
		ka   int
	}{
		{name: "keepalive without idle timeout", idle: 0, ka: 1},
		{name: "no keepalive with idle timeout", idle: time.Minute, ka: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := slog.New(slog.DiscardHandler)
			l, err := listenTCP("test", "127.0.0.1:0", log, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer l.stop()
			// a reload may flip keepalive: set the other choice first
			l.setRoute(&route{pub: &Publish{IdleTimeout: time.Minute - tc.idle}})
			l.setRoute(&route{pub: &Publish{IdleTimeout: tc.idle}})

			c, err := net.Dial("tcp", l.addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			rc, err := l.pollFile.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var fd int
			var client netip.AddrPort
			var errno syscall.Errno
			if err := rc.Read(func(lfd uintptr) bool {
				fd, client, errno = accept(lfd)
				return errno != syscall.EAGAIN
			}); err != nil || errno != 0 {
				t.Fatalf("accept: %v, %v", err, errno)
			}
			defer syscall.Close(fd)
			if want := c.LocalAddr().(*net.TCPAddr).AddrPort(); client != want {
				t.Errorf("client address %v, want %v", client, want)
			}

			for _, o := range []struct {
				name       string
				level, opt int
				want       int
			}{
				{"TCP_NODELAY", syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1},
				{"SO_KEEPALIVE", syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, tc.ka},
			} {
				got, err := syscall.GetsockoptInt(fd, o.level, o.opt)
				if err != nil || got != o.want {
					t.Errorf("%s = %d (%v), want %d", o.name, got, err, o.want)
				}
			}
			if tc.ka == 1 {
				idle, _ := syscall.GetsockoptInt(fd, syscall.IPPROTO_TCP,
					syscall.TCP_KEEPIDLE)
				if want := int(keepAliveConfig.Idle / time.Second); idle != want {
					t.Errorf("TCP_KEEPIDLE = %d, want %d", idle, want)
				}
			}
		})
	}
}
