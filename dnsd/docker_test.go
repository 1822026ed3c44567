package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/swarmdns/swarmdns/internal/dnsdtest"
)

// TestDockerImage builds the image of the Dockerfile from static binaries,
// runs dnsd in a container on a network of its own, and asks it for a
// service from the host. It needs a Docker engine, and no registry.
func TestDockerImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an image")
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Skip("no Docker engine:", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("dnsdtest-%d", os.Getpid())

	// the build context: the Dockerfile and the static binaries
	ctx := t.TempDir()
	copyFile(t, filepath.Join(root, "Dockerfile"), filepath.Join(ctx, "Dockerfile"))
	for _, bin := range []string{"dnsd", "lb"} {
		dnsdtest.Run(t, root, []string{"CGO_ENABLED=0"}, "go", "build", "-o",
			filepath.Join(ctx, "build", bin), "./"+bin)
	}
	dnsdtest.Run(t, ctx, nil, "docker", "build", "-q", "-t", name, ".")
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", name).Run() })
	dnsdtest.Run(t, ctx, nil, "docker", "network", "create", name)
	t.Cleanup(func() { exec.Command("docker", "network", "rm", name).Run() })

	conf := t.TempDir()
	os.Chmod(conf, 0o755)
	writeFile(t, filepath.Join(conf, "Corefile"),
		".:53 {\n  swarm {\n    tasks /etc/dnsd/tasks.d\n  }\n  errors\n}\n")
	writeFile(t, filepath.Join(conf, "tasks.d", "web.yaml"), networks+webFile(1, 2))
	dnsdtest.Run(t, ctx, nil, "docker", "run", "-d", "--name", name, "--network", name,
		"-v", conf+":/etc/dnsd:ro", name)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "logs", name).CombinedOutput()
			t.Logf("container log:\n%s", out)
		}
		exec.Command("docker", "rm", "-f", name).Run()
	})

	ip := dnsdtest.Run(t, ctx, nil, "docker", "inspect", "-f",
		"{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name)
	addr := net.JoinHostPort(ip, "53")
	dnsdtest.Eventually(t, 30*time.Second, func() string {
		got, _, err := dnsdtest.Query(addr, "udp", "web.swarm.internal", dns.TypeA)
		if err != nil {
			return err.Error()
		}
		slices.Sort(got)
		if want := ips(1, 2); !slices.Equal(got, want) {
			return fmt.Sprintf("got %v, want %v", got, want)
		}
		return ""
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(b))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
