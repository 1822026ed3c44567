package l4

import (
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
)

// startSink runs a TCP server on 127.0.0.1 that discards what it reads.
func startSink(tb testing.TB) string {
	return startServe(tb, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
}

// startEcho runs a TCP server on 127.0.0.1 that echoes.
func startEcho(tb testing.TB) string {
	return startServe(tb, func(c net.Conn) { _, _ = io.Copy(c, c) })
}

func startServe(tb testing.TB, h func(net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				h(c)
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// BenchmarkTCPThroughput streams 64 KiB writes through lb to a backend
// that discards them; with splice the bytes stay in the kernel.
func BenchmarkTCPThroughput(b *testing.B) {
	for _, idle := range []string{"0", "10m"} {
		b.Run("idle_timeout="+idle, func(b *testing.B) {
			sink := startSink(b)
			lb := startLB(b, fmt.Sprintf("publish %s {\n upstream %s\n idle_timeout %s\n}",
				tcpKey, sink, idle))
			c, err := net.Dial("tcp", lb.Addr(tcpKey).String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, 64<<10)
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTCPRequest makes small request-response exchanges over one
// kept-alive connection, the cost per request of an HTTP keep-alive
// client.
func BenchmarkTCPRequest(b *testing.B) {
	echo := startEcho(b)
	lb := startLB(b, fmt.Sprintf("publish %s {\n upstream %s\n}", tcpKey, echo))
	c, err := net.Dial("tcp", lb.Addr(tcpKey).String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := make([]byte, 128)
	resp := make([]byte, 128)
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTCPConnect opens, uses and closes one connection per
// iteration.
func BenchmarkTCPConnect(b *testing.B) {
	echo := startEcho(b)
	lb := startLB(b, fmt.Sprintf("publish %s {\n upstream %s\n}", tcpKey, echo))
	addr := lb.Addr(tcpKey).String()
	one := make([]byte, 1)
	b.ResetTimer()
	for range b.N {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write(one); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, one); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkUDPRoundTrip sends a 64-byte datagram through lb and waits
// for the echo, as a DNS client does.
func BenchmarkUDPRoundTrip(b *testing.B) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	b.Cleanup(func() {
		pc.Close()
		<-done
	})
	lb := startLB(b, fmt.Sprintf("publish %s {\n upstream %s\n}", udpKey, pc.LocalAddr()))
	c, err := net.Dial("udp", lb.Addr(udpKey).String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 64)
	buf := make([]byte, 2048)
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}
