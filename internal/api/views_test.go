package api

import (
	"bytes"
	"flag"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/swarmdns/swarmdns/internal/catalog"
	"github.com/swarmdns/swarmdns/internal/cluster"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testCatalog is a two-node catalog seen from node1, with node3 down.
func testCatalog() (*catalog.Catalog, []cluster.Member) {
	cat := catalog.New("node1")
	front := catalog.Network{Name: "front",
		Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.1.0/24")}}
	back := catalog.Network{Name: "back",
		Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.2.0/24")}}
	addr := func(nw, ip string) []catalog.Addr {
		return []catalog.Addr{{Network: nw, IP: netip.MustParseAddr(ip)}}
	}
	cat.Put("node1", "file:/etc/dnsd/tasks.d/web.yaml", &catalog.State{
		Networks: []catalog.Network{front},
		Services: []catalog.Service{{Name: "web", Mode: catalog.ModeVIP,
			Ports: []catalog.Port{{Name: "http", Port: 80, Protocol: "tcp"}},
			VIPs:  addr("front", "10.0.1.2")}},
		Tasks: []catalog.Task{
			{ID: "a1b2c3d4e5f6", Service: "web", Slot: 1, Addrs: addr("front", "10.0.1.5")},
			{ID: "0f9e8d7c6b5a", Service: "web", Slot: 2, Addrs: addr("front", "10.0.1.6"),
				Health: catalog.Starting},
		},
	})
	cat.Put("node2", "file:/etc/dnsd/tasks.d/db.yaml", &catalog.State{
		Networks: []catalog.Network{back},
		Services: []catalog.Service{{Name: "db",
			Ports: []catalog.Port{{Name: "pg", Port: 5432, Protocol: "tcp"},
				{Name: "udp", Port: 53, Protocol: "udp"}}}},
		Tasks: []catalog.Task{
			{ID: "112233445566", Service: "db", Slot: 1, Addrs: append(addr("back", "10.0.2.7"),
				addr("front", "10.0.1.7")...)},
			{ID: "665544332211", Service: "web", Slot: 3, Addrs: addr("front", "10.0.1.8"),
				Health: catalog.Unhealthy},
		},
	})
	members := []cluster.Member{
		{Name: "node1", Addr: "10.0.0.1:7946", Alive: true, Self: true},
		{Name: "node2", Addr: "10.0.0.2:7946", Alive: true},
		{Name: "node3", Addr: "10.0.0.3:7946", Alive: false},
	}
	return cat, members
}

func TestViewsGolden(t *testing.T) {
	cat, members := testCatalog()
	snap := cat.Snapshot()
	tasks, _ := Tasks(snap, "web")
	single := catalog.New("solo")

	tests := []struct {
		name   string
		render func(w io.Writer, format string) error
	}{
		{name: "node_ls", render: func(b io.Writer, f string) error {
			return RenderNodes(b, Nodes(snap, members), f)
		}},
		{name: "node_ls_single", render: func(b io.Writer, f string) error {
			src := Source{Catalog: single, Addr: "-"}
			return RenderNodes(b, Nodes(single.Snapshot(), src.members()), f)
		}},
		{name: "service_ls", render: func(b io.Writer, f string) error {
			return RenderServices(b, Services(snap), f)
		}},
		{name: "service_ps_web", render: func(b io.Writer, f string) error {
			return RenderTasks(b, tasks, f)
		}},
		{name: "network_ls", render: func(b io.Writer, f string) error {
			return RenderNetworks(b, Networks(snap), f)
		}},
	}
	for _, tc := range tests {
		for _, format := range []string{FormatTable, FormatJSON} {
			t.Run(tc.name+"_"+format, func(t *testing.T) {
				var b bytes.Buffer
				if err := tc.render(&b, format); err != nil {
					t.Fatal(err)
				}
				golden(t, filepath.Join("testdata", tc.name+"."+format+".golden"), b.Bytes())
			})
		}
	}
}

func TestRenderUnknownFormat(t *testing.T) {
	var b bytes.Buffer
	if err := RenderNodes(&b, nil, "yaml"); err == nil {
		t.Fatal("got no error for format yaml")
	}
}

// golden compares got with the file at path, or rewrites the file when
// the test runs with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}
