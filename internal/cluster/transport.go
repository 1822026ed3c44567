package cluster

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// labelMagic is the first byte of a packet that carries a memberlist
// label header: magic, length, label.
const labelMagic = 244

// AES-GCM framing of an encrypted memberlist packet: version, nonce, then
// the sealed message with its tag.
const (
	gcmNonce = 12
	gcmTag   = 16
)

// errBlocked is what a dial returns while a test partition is in place.
var errBlocked = errors.New("link blocked by partition")

// Stats counts one node's gossip traffic. All fields are updated
// atomically; read them with Load.
type Stats struct {
	PacketsSent, PacketsReceived atomic.Uint64
	BytesSent, BytesReceived     atomic.Uint64
	StreamsOpened                atomic.Uint64
	Dropped                      atomic.Uint64
}

// transport wraps memberlist's NetTransport. It counts traffic, and it
// drops inbound packets that memberlist would refuse anyway (unlabelled,
// foreign label, undecryptable) before they reach memberlist, counting
// each by reason. For tests it can also cut links to chosen addresses.
type transport struct {
	inner  *memberlist.NetTransport
	label  string
	keys   func() [][]byte
	block  func(addr string) bool
	stats  *Stats
	logger *slog.Logger

	// aeads caches a cipher per key (string of the key bytes).
	aeads sync.Map

	// dialCtx is cancelled at shutdown, so that a join stuck dialing an
	// unreachable node does not hold the shutdown up.
	dialCtx    context.Context
	cancelDial context.CancelFunc

	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	// done stops forwarding to memberlist; innerDone, closed once the
	// inner transport has shut down, stops draining it.
	done      chan struct{}
	innerDone chan struct{}
	wg        sync.WaitGroup
	stopOnce  sync.Once
}

var _ memberlist.NodeAwareTransport = (*transport)(nil)

func newTransport(inner *memberlist.NetTransport, label string, keys func() [][]byte,
	block func(string) bool, stats *Stats, logger *slog.Logger) *transport {
	t := &transport{
		inner:     inner,
		label:     label,
		keys:      keys,
		block:     block,
		stats:     stats,
		logger:    logger,
		packetCh:  make(chan *memberlist.Packet),
		streamCh:  make(chan net.Conn),
		done:      make(chan struct{}),
		innerDone: make(chan struct{}),
	}
	t.dialCtx, t.cancelDial = context.WithCancel(context.Background())
	t.wg.Add(2)
	go t.pumpPackets()
	go t.pumpStreams()
	return t
}

func (t *transport) blocked(addr string) bool {
	return t.block != nil && t.block(addr)
}

func (t *transport) pumpPackets() {
	defer t.wg.Done()
	for {
		var p *memberlist.Packet
		select {
		case p = <-t.inner.PacketCh():
		case <-t.innerDone:
			return
		}
		if t.blocked(p.From.String()) {
			continue
		}
		t.stats.PacketsReceived.Add(1)
		t.stats.BytesReceived.Add(uint64(len(p.Buf)))
		messagesTotal.WithLabelValues("received", "udp").Inc()
		bytesTotal.WithLabelValues("received", "udp").Add(float64(len(p.Buf)))

		if reason := t.check(p.Buf); reason != "" {
			t.stats.Dropped.Add(1)
			droppedTotal.WithLabelValues(reason).Inc()
			t.logger.Debug("gossip packet dropped", "remote_addr", p.From.String(),
				"err", reason)
			continue
		}
		select {
		case t.packetCh <- p:
		case <-t.done:
		}
	}
}

// check returns why memberlist would refuse packet b, or "" if it would
// take it: the label must be ours and one of our keys must open it.
func (t *transport) check(b []byte) string {
	if len(b) == 0 || b[0] != labelMagic {
		return dropUnlabeled
	}
	if len(b) < 2 || len(b) < 2+int(b[1]) || b[1] == 0 {
		return dropMalformed
	}
	label, body := b[2:2+int(b[1])], b[2+int(b[1]):]
	if string(label) != t.label {
		return dropLabel
	}
	if len(body) < 1+gcmNonce+gcmTag || body[0] > 1 {
		return dropDecrypt
	}
	for _, key := range t.keys() {
		if gcm := t.aead(key); gcm != nil {
			if _, err := gcm.Open(nil, body[1:1+gcmNonce], body[1+gcmNonce:], label); err == nil {
				return ""
			}
		}
	}
	return dropDecrypt
}

// aead returns the AES-GCM cipher of key, or nil for a key AES refuses.
func (t *transport) aead(key []byte) cipher.AEAD {
	if g, ok := t.aeads.Load(string(key)); ok {
		return g.(cipher.AEAD)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil
	}
	t.aeads.Store(string(key), gcm)
	return gcm
}

func (t *transport) pumpStreams() {
	defer t.wg.Done()
	for {
		var c net.Conn
		select {
		case c = <-t.inner.StreamCh():
		case <-t.innerDone:
			return
		}
		if t.blocked(c.RemoteAddr().String()) {
			c.Close()
			continue
		}
		messagesTotal.WithLabelValues("received", "tcp").Inc()
		select {
		case t.streamCh <- &countedConn{Conn: c, stats: t.stats}:
		case <-t.done:
			c.Close()
		}
	}
}

// FinalAdvertiseAddr implements memberlist.Transport.
func (t *transport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return t.inner.FinalAdvertiseAddr(ip, port)
}

// WriteTo implements memberlist.Transport.
func (t *transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress implements memberlist.NodeAwareTransport.
func (t *transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.blocked(a.Addr) {
		return time.Now(), nil
	}
	t.stats.PacketsSent.Add(1)
	t.stats.BytesSent.Add(uint64(len(b)))
	messagesTotal.WithLabelValues("sent", "udp").Inc()
	bytesTotal.WithLabelValues("sent", "udp").Add(float64(len(b)))
	return t.inner.WriteToAddress(b, a)
}

// PacketCh implements memberlist.Transport.
func (t *transport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// DialTimeout implements memberlist.Transport.
func (t *transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport.
func (t *transport) DialAddressTimeout(a memberlist.Address, d time.Duration) (net.Conn, error) {
	if t.blocked(a.Addr) {
		return nil, fmt.Errorf("dialing %s: %w", a.Addr, errBlocked)
	}
	dialer := net.Dialer{Timeout: d}
	c, err := dialer.DialContext(t.dialCtx, "tcp", a.Addr)
	if err != nil {
		return nil, err
	}
	t.stats.StreamsOpened.Add(1)
	messagesTotal.WithLabelValues("sent", "tcp").Inc()
	return &countedConn{Conn: c, stats: t.stats}, nil
}

// StreamCh implements memberlist.Transport.
func (t *transport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown implements memberlist.Transport. It may be called twice.
func (t *transport) Shutdown() error {
	var err error
	t.stopOnce.Do(func() {
		// keep draining while the inner listeners stop: they block on
		// their channels until someone reads
		close(t.done)
		t.cancelDial()
		err = t.inner.Shutdown()
		close(t.innerDone)
		t.wg.Wait()
	})
	return err
}

// countedConn counts a stream's bytes into the node's stats and metrics.
type countedConn struct {
	net.Conn
	stats *Stats
}

func (c *countedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.stats.BytesReceived.Add(uint64(n))
	bytesTotal.WithLabelValues("received", "tcp").Add(float64(n))
	return n, err
}

func (c *countedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.stats.BytesSent.Add(uint64(n))
	bytesTotal.WithLabelValues("sent", "tcp").Add(float64(n))
	return n, err
}
