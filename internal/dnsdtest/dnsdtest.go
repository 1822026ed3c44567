// Package dnsdtest runs the real dnsd binary for tests: it builds it once
// per test binary, starts it on a free loopback port from a Corefile, and
// writes task files for it to serve.
//
// It is for tests of dnsd itself and of programs that resolve through it
// (lb); it is not a way to embed dnsd.
package dnsdtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

var build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Binary returns the path of a dnsd built from this checkout, building it
// on the first call. Call Cleanup from TestMain to remove it.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "dnsdtest-")
		if build.err != nil {
			return
		}
		build.path = filepath.Join(build.dir, "dnsd"+exeSuffix())
		cmd := exec.Command("go", "build", "-o", build.path, "./dnsd")
		cmd.Dir = moduleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("building dnsd: %w\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// Cleanup removes the binary that Binary built.
func Cleanup() {
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
}

func exeSuffix() string {
	if runtime.GOOS == "windows" {
		return ".exe"
	}
	return ""
}

// moduleRoot is the folder of go.mod, found from this source file.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Server is a running dnsd.
type Server struct {
	// Addr is the host:port it serves DNS on, over UDP and TCP.
	Addr string
	// Tasks is the task directory its swarm plugin watches.
	Tasks string
	// Dir holds its Corefile and log.
	Dir string

	cmd  *exec.Cmd
	log  *lockedBuffer
	done chan struct{}
}

// Options say how to start a server.
type Options struct {
	// Swarm is the body of the swarm block, without the tasks line,
	// which Start adds; "" for the defaults.
	Swarm string
	// Zones follow the swarm directive; "" for the default zone.
	Zones string
	// Extra is added to the server block (log, errors, prometheus ...).
	Extra string
	// Addr is the address to listen on; "" for a free port on 127.0.0.1.
	Addr string
	// Tasks is a task directory to watch; "" for a new empty one.
	Tasks string
}

// Start runs dnsd with a Corefile made from opts and waits until it
// answers. The server is killed when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin := Binary(t)
	s := &Server{Dir: t.TempDir(), Addr: opts.Addr, Tasks: opts.Tasks,
		log: &lockedBuffer{}, done: make(chan struct{})}
	if s.Addr == "" {
		s.Addr = FreeAddr(t, "127.0.0.1")
	}
	if s.Tasks == "" {
		s.Tasks = filepath.Join(s.Dir, "tasks.d")
		if err := os.Mkdir(s.Tasks, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	host, port, _ := net.SplitHostPort(s.Addr)
	corefile := fmt.Sprintf(".:%s {\n  bind %s\n  swarm %s {\n    tasks %s\n%s\n  }\n%s\n}\n",
		port, host, opts.Zones, s.Tasks, opts.Swarm, opts.Extra)
	conf := filepath.Join(s.Dir, "Corefile")
	if err := os.WriteFile(conf, []byte(corefile), 0o644); err != nil {
		t.Fatal(err)
	}

	s.cmd = exec.Command(bin, "-conf", conf)
	s.cmd.Dir = s.Dir
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting dnsd: %v", err)
	}
	go func() {
		s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.done
		if t.Failed() {
			t.Logf("dnsd log:\n%s", s.Log())
		}
	})
	s.waitReady(t)
	return s
}

// waitReady polls the server until it answers, or fails the test.
func (s *Server) waitReady(t testing.TB) {
	t.Helper()
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("swarm.internal.", dns.TypeSOA)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			t.Fatalf("dnsd exited before it answered:\n%s", s.Log())
		default:
		}
		if _, _, err := c.Exchange(m, s.Addr); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("dnsd did not answer on %s within 30 s:\n%s", s.Addr, s.Log())
}

// Log returns what dnsd has printed so far.
func (s *Server) Log() string { return s.log.String() }

// Done is closed when the process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// Process returns the running process, to signal it.
func (s *Server) Process() *os.Process { return s.cmd.Process }

// WriteTask writes a task file into the watched directory the way an
// editor saves: into a temporary file, then renamed over the old one, so
// dnsd never reads it half written.
func (s *Server) WriteTask(t testing.TB, name, content string) {
	t.Helper()
	tmp := filepath.Join(s.Tasks, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.Tasks, name)); err != nil {
		t.Fatal(err)
	}
}

// RemoveTask deletes a task file.
func (s *Server) RemoveTask(t testing.TB, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(s.Tasks, name)); err != nil {
		t.Fatal(err)
	}
}

// Run runs a command in dir with env added to the environment, fails the
// test if it fails, and returns its output, trimmed.
func Run(t testing.TB, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// FreeAddr returns host:port with a port that is free for both UDP and
// TCP on host at the time of the call.
func FreeAddr(t testing.TB, host string) string {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		pc, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue
		}
		pc.Close()
		return addr
	}
	t.Fatal("no port free for both UDP and TCP")
	return ""
}

// Eventually polls cond every 20 ms until it returns "" or the deadline
// passes, then fails the test with what cond last returned.
func Eventually(t testing.TB, within time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for {
		if last = cond(); last == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Query asks addr for name over net ("udp" or "tcp") and returns the
// addresses (A, AAAA) or targets (SRV, PTR) of the answer, in order.
func Query(addr, network, name string, qtype uint16) ([]string, *dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		return nil, nil, err
	}
	var out []string
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		case *dns.SRV:
			out = append(out, fmt.Sprintf("%s:%d", rr.Target, rr.Port))
		case *dns.PTR:
			out = append(out, rr.Ptr)
		}
	}
	return out, r, nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Clone(l.b.String())
}
