package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// echoServer is a TCP server on 127.0.0.1 that echoes; it stops with the
// test.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
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
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// running is an app under test with its loop in a goroutine.
type running struct {
	*app
	hup  chan os.Signal
	logs *syncBuffer
	path string
}

// runApp writes conf to a temp dir and runs lb on it until the test ends;
// a send on hup stands for SIGHUP.
func runApp(t *testing.T, conf string) *running {
	t.Helper()
	hup := make(chan os.Signal, 1)
	r := runAppWith(t, conf, hup)
	r.hup = hup
	return r
}

// runAppWith is runApp with the reload signal channel given.
func runAppWith(t *testing.T, conf string, hup <-chan os.Signal) *running {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lb.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	a, err := start(path, log)
	if err != nil {
		t.Fatalf("starting: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.loop(ctx, hup) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("loop: %v", err)
		}
	})
	return &running{app: a, logs: logs, path: path}
}

// waitReload waits for the next reload and returns its result.
func (r *running) waitReload(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.reloaded:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no reload within 10s")
		return nil
	}
}

func publish(addr, upstream string) string {
	return fmt.Sprintf("publish %s/tcp {\n    upstream %s\n}\n", addr, upstream)
}

// echoThrough checks a round trip through addr.
func echoThrough(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dialing %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "ping"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("got %q (%v), want ping", got, err)
	}
}

func TestReload(t *testing.T) {
	up := echoServer(t)
	base := "metrics 127.0.0.1:0\n" + publish("127.0.0.31:0", up)
	r := runApp(t, base)
	first := r.srv.Addr("127.0.0.31:0/tcp").String()
	echoThrough(t, first)

	held, err := net.Dial("tcp", first)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	tests := []struct {
		name    string
		change  func() error
		wantErr string // empty: the reload must succeed
		check   func(t *testing.T)
	}{
		{
			name: "edit in place adds a listener",
			change: func() error {
				return os.WriteFile(r.path, []byte(base+publish("127.0.0.32:0", up)), 0o644)
			},
			check: func(t *testing.T) {
				echoThrough(t, r.srv.Addr("127.0.0.32:0/tcp").String())
			},
		},
		{
			name: "rename over the file removes it again",
			change: func() error {
				tmp := r.path + ".tmp"
				if err := os.WriteFile(tmp, []byte(base), 0o644); err != nil {
					return err
				}
				return os.Rename(tmp, r.path)
			},
			check: func(t *testing.T) {
				if a := r.srv.Addr("127.0.0.32:0/tcp"); a != nil {
					t.Errorf("removed listener still at %v", a)
				}
			},
		},
		{
			name: "broken config is refused with file and line",
			change: func() error {
				return os.WriteFile(r.path, []byte(base+"publish 80/tcp {\n  polcy hash\n}\n"), 0o644)
			},
			wantErr: "lb.conf:6 ",
			check: func(t *testing.T) {
				if !strings.Contains(r.logs.String(), "lb.conf:6 ") {
					t.Errorf("log does not name lb.conf:6:\n%s", r.logs)
				}
			},
		},
		{
			name: "SIGHUP reloads",
			change: func() error {
				if err := os.WriteFile(r.path, []byte(base), 0o644); err != nil {
					return err
				}
				// the write reloads too; take that one first
				if err := r.waitReload(t); err != nil {
					return err
				}
				r.hup <- os.Interrupt
				return nil
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.change(); err != nil {
				t.Fatal(err)
			}
			err := r.waitReload(t)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("reload failed: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got reload error %v, want one naming %q", err, tc.wantErr)
			}
			if tc.check != nil {
				tc.check(t)
			}
			// the first listener kept its socket and its connection
			if got := r.srv.Addr("127.0.0.31:0/tcp").String(); got != first {
				t.Errorf("listener moved from %s to %s", first, got)
			}
		})
	}

	if _, err := io.WriteString(held, "held"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	_ = held.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(held, got); err != nil {
		t.Fatalf("connection from before the reloads: %v", err)
	}
}

func TestMetricsAndHealth(t *testing.T) {
	up := echoServer(t)
	r := runApp(t, "metrics 127.0.0.1:0\n"+publish("127.0.0.31:0", up))
	echoThrough(t, r.srv.Addr("127.0.0.31:0/tcp").String())
	base := "http://" + r.metricsAddr.String()

	tests := []struct {
		path string
		want []string
	}{
		{path: "/health", want: []string{"ok"}},
		{path: "/metrics", want: []string{
			`lb_listener_connections_total{listener="127.0.0.31:0/tcp"} 1`,
			`lb_upstream_connections_total{listener="127.0.0.31:0/tcp",upstream="` + up + `"} 1`,
			`lb_upstream_sent_bytes_total{listener="127.0.0.31:0/tcp",upstream="` + up + `"} 4`,
			`lb_upstream_up{listener="127.0.0.31:0/tcp",upstream="` + up + `"} 1`,
			`lb_listener_upstreams{listener="127.0.0.31:0/tcp",state="up"} 1`,
			`lb_reloads_total{result="ok"} 1`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			var body string
			// the received bytes are counted when the relay ends, just
			// after the client sees them: poll
			deadline := time.Now().Add(5 * time.Second)
			for {
				body = get(t, base+tc.path)
				missing := ""
				for _, w := range tc.want {
					if !strings.Contains(body, w) {
						missing = w
					}
				}
				if missing == "" {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s lacks %q:\n%s", tc.path, missing, body)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStartRefusesBadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.conf")
	if err := os.WriteFile(path, []byte("\n\npublish 80/tcp {\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := start(path, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "bad.conf:3 ") {
		t.Fatalf("got %v, want an error naming bad.conf:3", err)
	}
}
