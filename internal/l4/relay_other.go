//go:build !linux || 386

package l4

import (
	"context"
	"io"
	"net"
	"time"
)

// end is empty here: off Linux io.Copy holds no pipe, so there is
// nothing to save by waiting first, and on linux/386 the socket calls
// that pass makes have no numbers of their own.
type end struct{}

func (*end) init(stream, *relay, int) {}

// pass sends the relay straight to io.Copy.
func (r *relay) pass(int) (int64, bool, error) { return 0, true, nil }

// bulk runs one io.Copy from src to dst with the hold deadline and
// accounts for the bytes it moved. It returns nil at EOF.
func (r *relay) bulk(dst, src stream, dir int) (int64, error) {
	now := time.Now()
	_ = src.SetReadDeadline(now.Add(r.hold))
	if r.aborted.Load() {
		return 0, net.ErrClosed
	}
	// a copy still running twice its read deadline after it began
	// cannot be waiting to read: it is writing to a slow reader
	r.blocked[dir].Store(now.Add(2 * r.hold).UnixNano())
	n, err := io.Copy(dst, src.(io.Reader))
	r.blocked[dir].Store(0)
	if n > 0 {
		r.moved(dir, n)
	}
	return n, err
}

// dialStream connects to ep with the net package's dialer.
func dialStream(ctx context.Context, d *net.Dialer, ep *endpoint) (stream, error) {
	c, err := d.DialContext(ctx, "tcp", ep.name)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}
