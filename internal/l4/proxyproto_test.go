package l4

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/pires/go-proxyproto"
)

func TestParseProxyHeader(t *testing.T) {
	src := netip.MustParseAddrPort("192.0.2.7:4000")
	dst := netip.MustParseAddrPort("198.51.100.1:443")
	v1, _ := proxyHeader(1, src, dst)
	v2, _ := proxyHeader(2, src, dst)
	src6 := netip.MustParseAddrPort("[2001:db8::7]:4000")
	dst6 := netip.MustParseAddrPort("[2001:db8::1]:443")
	v2six, _ := proxyHeader(2, src6, dst6)
	local, _ := proxyproto.HeaderProxyFromAddrs(2, nil, nil).Format()

	tests := []struct {
		name     string
		in       []byte
		want     proxyInfo
		wantRest string
		wantErr  error
	}{
		{name: "v1", in: v1, want: proxyInfo{src: src, dst: dst}},
		{name: "v2", in: v2, want: proxyInfo{src: src, dst: dst}},
		{name: "v2 ipv6", in: v2six, want: proxyInfo{src: src6, dst: dst6}},
		{
			name:     "bytes behind the header are kept",
			in:       append(append([]byte{}, v2...), "GET / HTTP/1.1\r\n"...),
			want:     proxyInfo{src: src, dst: dst},
			wantRest: "GET / HTTP/1.1\r\n",
		},
		{name: "local command", in: local, want: proxyInfo{local: true}},
		{name: "no header", in: []byte("GET / HTTP/1.1\r\n"), wantErr: ErrNoProxyHeader},
		{name: "empty", in: nil, wantErr: ErrNoProxyHeader},
		{name: "broken v1", in: []byte("PROXY TCP4 1.2.3.4\r\n"), wantErr: errAny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, rest, err := parseProxyHeader(bytes.NewReader(tc.in))
			if tc.wantErr != nil {
				if err == nil || (tc.wantErr != errAny && !errors.Is(err, tc.wantErr)) {
					t.Fatalf("got %v, want error %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || string(rest) != tc.wantRest {
				t.Errorf("got %+v rest %q, want %+v rest %q", got, rest, tc.want, tc.wantRest)
			}
		})
	}
}

// TestParseProxyHeaderLongTail is the regression test for a fuzz finding:
// with more bytes behind the header than the read buffer holds, the
// read-ahead is only the start of the stream and the rest stays unread.
func TestParseProxyHeaderLongTail(t *testing.T) {
	src := netip.MustParseAddrPort("127.0.0.5:1")
	h, _ := proxyHeader(2, src, netip.MustParseAddrPort("127.0.0.1:2"))
	payload := bytes.Repeat([]byte("0123456789"), 200)
	r := bytes.NewReader(append(h, payload...))
	_, rest, err := parseProxyHeader(r)
	if err != nil {
		t.Fatal(err)
	}
	left := make([]byte, r.Len())
	_, _ = r.Read(left)
	if got := append(rest, left...); !bytes.Equal(got, payload) {
		t.Errorf("got %d bytes after the header, want the %d-byte payload", len(got), len(payload))
	}
}

// errAny stands for "some error" in a table.
var errAny = errors.New("any error")

func TestProxyHeaderRoundTrip(t *testing.T) {
	for _, v := range []int{1, 2} {
		src := netip.MustParseAddrPort("127.0.0.5:1234")
		dst := netip.MustParseAddrPort("127.0.0.1:80")
		b, err := proxyHeader(v, src, dst)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := parseProxyHeader(bytes.NewReader(b))
		if err != nil || got.src != src || got.dst != dst {
			t.Errorf("v%d: got %+v, %v; want %v -> %v", v, got, err, src, dst)
		}
	}
}

// FuzzParseProxyHeader feeds arbitrary bytes to the PROXY header reader:
// it must not panic, and on success it must give TCP or UDP addresses
// and hand back only bytes that were in the input.
func FuzzParseProxyHeader(f *testing.F) {
	src := netip.MustParseAddrPort("192.0.2.7:4000")
	dst := netip.MustParseAddrPort("198.51.100.1:443")
	for _, v := range []int{1, 2} {
		b, _ := proxyHeader(v, src, dst)
		f.Add(b)
		f.Add(append(b, "payload"...))
	}
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add([]byte("PROXY TCP6 ::1 ::1 1 2\r\n"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		info, rest, err := parseProxyHeader(r)
		if err != nil {
			return
		}
		// what was read ahead plus what is left is the input's tail:
		// nothing lost, nothing twice
		tail := append(append([]byte{}, rest...), in[len(in)-r.Len():]...)
		if !bytes.HasSuffix(in, tail) {
			t.Fatalf("read-ahead %q and remainder are not the input's tail", rest)
		}
		if !info.local && (!info.src.IsValid() || !info.dst.IsValid()) {
			t.Fatalf("accepted header with invalid addresses %+v", info)
		}
	})
}

func TestAddrPortOfUnmaps(t *testing.T) {
	a := &net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: 80}
	got, ok := addrPortOf(a)
	if !ok || got != netip.MustParseAddrPort("127.0.0.1:80") {
		t.Errorf("got %v %v, want 127.0.0.1:80", got, ok)
	}
}
