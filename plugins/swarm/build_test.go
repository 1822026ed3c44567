package swarm

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/swarmdns/swarmdns/internal/dnsdtest"
)

// TestBuildIntoCoreDNS builds CoreDNS with this plugin the way README
// tells users to: plugin.cfg gains the swarm line, go generate, go build.
// The CoreDNS source comes from the module cache, and this checkout
// stands in for the published module through a replace directive.
func TestBuildIntoCoreDNS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds all of CoreDNS: minutes")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	src := goRun(t, root, "list", "-m", "-f", "{{.Dir}}", "github.com/coredns/coredns")
	work := filepath.Join(t.TempDir(), "coredns")
	if err := os.CopyFS(work, os.DirFS(src)); err != nil {
		t.Fatalf("copying CoreDNS source: %v", err)
	}

	cfg := filepath.Join(work, "plugin.cfg")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	line := "swarm:github.com/swarmdns/swarmdns/plugins/swarm"
	out := strings.Replace(string(b), "\nhosts:hosts\n", "\nhosts:hosts\n"+line+"\n", 1)
	if out == string(b) {
		t.Fatal("plugin.cfg has no hosts:hosts line to put swarm after")
	}
	if err := os.WriteFile(cfg, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}

	goRun(t, work, "mod", "edit", "-require=github.com/swarmdns/swarmdns@v0.0.0",
		"-replace=github.com/swarmdns/swarmdns="+root)
	goRun(t, work, "generate", "coredns.go")
	bin := filepath.Join(work, "coredns")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	goRun(t, work, "build", "-mod=mod", "-o", bin, ".")

	plugins, err := exec.Command(bin, "-plugins").CombinedOutput()
	if err != nil {
		t.Fatalf("coredns -plugins: %v\n%s", err, plugins)
	}
	if !slices.Contains(strings.Fields(string(plugins)), "swarm") {
		t.Fatalf("coredns -plugins does not list swarm:\n%s", plugins)
	}

	// and it serves: one task file, one query
	dir := t.TempDir()
	task := "networks: [{name: n, subnet: 10.0.1.0/24}]\n" +
		"services: [{name: web, tasks: [{slot: 1, addresses: {n: 10.0.1.11}}]}]\n"
	if err := os.WriteFile(filepath.Join(dir, "web.yaml"), []byte(task), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := dnsdtest.FreeAddr(t, "127.0.0.1")
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(dir, "Corefile")
	corefile := fmt.Sprintf(".:%s {\n bind 127.0.0.1\n swarm {\n  tasks %s\n }\n}\n", port, dir)
	if err := os.WriteFile(conf, []byte(corefile), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-conf", conf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	dnsdtest.Eventually(t, 30*time.Second, func() string {
		got, _, err := dnsdtest.Query(addr, "udp", "web.swarm.internal", dns.TypeA)
		if err != nil {
			return err.Error()
		}
		if !slices.Equal(got, []string{"10.0.1.11"}) {
			return fmt.Sprintf("got %v, want [10.0.1.11]", got)
		}
		return ""
	})
}

// goRun runs the go command as a user building CoreDNS would, letting it
// update go.mod.
func goRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	return dnsdtest.Run(t, dir, []string{"GOFLAGS=-mod=mod"}, "go", args...)
}
