package l4

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// TestCloseRightAfterReply checks that an EOF arriving with the last
// bytes is passed on at once. The backend answers and closes in one go,
// so its reply and its FIN often reach lb together; lb must not wait for
// a further arrival that never comes (the idle timeout here is minutes).
func TestCloseRightAfterReply(t *testing.T) {
	bs, _ := startBackends(t, 11, 1, func(b *backend, c net.Conn) {
		buf := make([]byte, 64)
		n, _ := c.Read(buf)
		_, _ = c.Write(bytes.ToUpper(buf[:n]))
	})
	lb := startLB(t, fmt.Sprintf("publish %s {\n upstream %s\n}", tcpKey, bs[0].name))
	addr := lb.addr(t, tcpKey)

	for i := range 200 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		// the request and the client's FIN go together too
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		_ = c.(*net.TCPConn).CloseWrite()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(got) != "HELLO" {
			t.Fatalf("connection %d: got %q (%v), want %q and EOF", i, got, err, "HELLO")
		}
	}
}

// TestExchangesOfEverySize runs request-response exchanges over one
// connection with sizes from one byte to several times the read buffer,
// so that small messages take one read and one write, large ones go on
// to splice, and the two follow each other in both directions.
func TestExchangesOfEverySize(t *testing.T) {
	bs, _ := startBackends(t, 11, 1, func(b *backend, c net.Conn) {
		_, _ = io.Copy(c, c)
	})
	lb := startLB(t, fmt.Sprintf("publish %s {\n upstream %s\n}", tcpKey, bs[0].name))
	c, err := net.Dial("tcp", lb.addr(t, tcpKey))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	sizes := []int{1, 2, 100, smallRead - 1, smallRead, smallRead + 1, 3*smallRead + 7, 1 << 20}
	for round := range 30 {
		for _, size := range sizes {
			msg := make([]byte, size)
			for i := range msg {
				msg[i] = byte(i*7 + round + size)
			}
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			errc := make(chan error, 1)
			go func() {
				_, err := c.Write(msg)
				errc <- err
			}()
			got := make([]byte, size)
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("round %d, %d bytes: %v", round, size, err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("round %d, %d bytes: write: %v", round, size, err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatalf("round %d, %d bytes: echo differs", round, size)
			}
		}
	}
}
