package api

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/swarmdns/swarmdns/internal/cluster"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestListenRefusesNetwork(t *testing.T) {
	tests := []struct {
		name     string
		addr     string
		insecure bool
		wantErr  error
	}{
		{name: "all addresses", addr: "0.0.0.0:0", wantErr: ErrNotLoopback},
		{name: "private", addr: "10.1.2.3:7947", wantErr: ErrNotLoopback},
		{name: "ipv6 any", addr: "[::]:0", wantErr: ErrNotLoopback},
		{name: "loopback", addr: "127.0.0.1:0"},
		{name: "explicitly insecure", addr: "0.0.0.0:0", insecure: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := Listen(tc.addr, tc.insecure)
			if ln != nil {
				ln.Close()
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func startServer(t *testing.T, addr string, src Source) *Client {
	t.Helper()
	ln, err := Listen(addr, false)
	if err != nil {
		t.Fatal(err)
	}
	s := Serve(ln, src, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { s.Close() })
	if strings.HasPrefix(addr, "unix:") {
		return NewClient(addr)
	}
	return NewClient(s.Addr().String())
}

func TestServerRoutes(t *testing.T) {
	cat, members := testCatalog()
	src := Source{Catalog: cat, Members: func() []cluster.Member { return members }}
	for _, addr := range []string{"127.0.0.1:0", "unix:" + filepath.Join(t.TempDir(), "api.sock")} {
		t.Run(addr[:4], func(t *testing.T) {
			c := startServer(t, addr, src)

			var nodes []NodeView
			if err := c.Get("/v1/nodes", &nodes); err != nil {
				t.Fatal(err)
			}
			if len(nodes) != 3 || !nodes[0].Self || nodes[2].Status != StatusDown {
				t.Fatalf("got %+v, want node1 (self), node2, node3 (down)", nodes)
			}
			var svcs []ServiceView
			if err := c.Get("/v1/services", &svcs); err != nil {
				t.Fatal(err)
			}
			if len(svcs) != 2 || svcs[1].Replicas != (Replicas{Healthy: 1, Total: 3}) {
				t.Fatalf("got %+v, want db and web with 1/3", svcs)
			}
			tasks, err := c.Tasks("web")
			if err != nil || len(tasks) != 3 {
				t.Fatalf("got %v, %v, want 3 tasks", tasks, err)
			}
			if _, err := c.Tasks("nope"); err == nil || !strings.Contains(err.Error(), "no service") {
				t.Fatalf("got %v, want no service", err)
			}
			var nets []NetworkView
			if err := c.Get("/v1/networks", &nets); err != nil || len(nets) != 2 {
				t.Fatalf("got %v, %v, want 2 networks", nets, err)
			}
			var snap struct{ Services []struct{ Name string } }
			if err := c.Get("/v1/catalog", &snap); err != nil || len(snap.Services) != 2 {
				t.Fatalf("got %v, %v, want 2 services", snap, err)
			}
		})
	}
}

func TestRotateRoute(t *testing.T) {
	cat, _ := testCatalog()
	cur, _ := cluster.NewToken("dnsd-t")
	next, _ := cluster.NewToken("dnsd-t")
	var got cluster.Token
	src := Source{Catalog: cat, Rotate: func(c, n cluster.Token) (time.Duration, error) {
		if c != cur {
			return 0, cluster.ErrCurrentToken
		}
		got = n
		return time.Minute, nil
	}}
	c := startServer(t, "127.0.0.1:0", src)

	tests := []struct {
		name    string
		req     RotateRequest
		wantErr string
	}{
		{name: "garbage", req: RotateRequest{Current: "x", Next: next.String()},
			wantErr: "bad join token"},
		{name: "wrong current", req: RotateRequest{Current: next.String(), Next: next.String()},
			wantErr: "not this cluster's primary"},
		{name: "ok", req: RotateRequest{Current: cur.String(), Next: next.String()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var resp RotateResponse
			err := c.Post("/v1/join-token/rotate", tc.req, &resp)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || resp.DurationSeconds != 60 || got != next {
				t.Fatalf("got %v, %+v, want 60s and the next token installed", err, resp)
			}
		})
	}

	solo := startServer(t, "127.0.0.1:0", Source{Catalog: cat})
	err := solo.Post("/v1/join-token/rotate", RotateRequest{}, &RotateResponse{})
	if err == nil || !strings.Contains(err.Error(), "without a cluster") {
		t.Fatalf("got %v, want a refusal without a cluster", err)
	}
}

func TestListenKeepsOtherFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "not-a-socket")
	if err := os.WriteFile(path, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ln, err := Listen("unix:"+path, false); err == nil {
		ln.Close()
		t.Fatal("got a listener over a regular file, want an error")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("got %v, want the file kept", err)
	}
}
