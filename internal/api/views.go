package api

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/swarmdns/swarmdns/internal/catalog"
	"github.com/swarmdns/swarmdns/internal/cluster"
)

// Node statuses as views show them.
const (
	StatusReady = "ready"
	StatusDown  = "down"
)

// NodeView is one row of `dnsd node ls`.
type NodeView struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Status  string `json:"status"`
	Address string `json:"address"`
	Tasks   int    `json:"tasks"`
	// Self marks the node that answered.
	Self bool `json:"self"`
}

// Replicas counts a service's tasks.
type Replicas struct {
	Healthy int `json:"healthy"`
	Total   int `json:"total"`
}

// ServiceView is one row of `dnsd service ls`.
type ServiceView struct {
	Name     string         `json:"name"`
	Mode     string         `json:"mode"`
	Replicas Replicas       `json:"replicas"`
	Ports    []catalog.Port `json:"ports"`
	Networks []string       `json:"networks"`
	VIPs     []catalog.Addr `json:"vips,omitempty"`
}

// TaskView is one row of `dnsd service ps`.
type TaskView struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	Service   string         `json:"service"`
	Slot      int            `json:"slot"`
	Node      string         `json:"node"`
	State     string         `json:"state"`
	Addresses []catalog.Addr `json:"addresses"`
}

// NetworkView is one row of `dnsd network ls`.
type NetworkView struct {
	Name     string         `json:"name"`
	Subnets  []netip.Prefix `json:"subnets"`
	Services []string       `json:"services"`
}

// NodeID returns the short id views show for a node: 12 hex digits of a
// hash of its name, stable across restarts because names are.
func NodeID(name string) string {
	sum := sha256.Sum256([]byte("node/" + name))
	return hex.EncodeToString(sum[:6])
}

// Nodes lists members, with their task counts from snap, sorted by name.
// Nodes that own tasks but are not members (none, in a consistent
// catalog) are listed as ready with no address.
func Nodes(snap *catalog.Snapshot, members []cluster.Member) []NodeView {
	tasks := make(map[string]int)
	for _, n := range snap.Nodes {
		tasks[n.Name] = n.Tasks
	}
	seen := make(map[string]bool)
	out := []NodeView{}
	for _, m := range members {
		status := StatusReady
		if !m.Alive {
			status = StatusDown
		}
		seen[m.Name] = true
		out = append(out, NodeView{
			ID:      NodeID(m.Name),
			Name:    m.Name,
			Status:  status,
			Address: m.Addr,
			Tasks:   tasks[m.Name],
			Self:    m.Self,
		})
	}
	for _, n := range snap.Nodes {
		if !seen[n.Name] {
			out = append(out, NodeView{
				ID:     NodeID(n.Name),
				Name:   n.Name,
				Status: StatusReady,
				Tasks:  n.Tasks,
				Self:   n.Name == snap.Self,
			})
		}
	}
	slices.SortFunc(out, func(a, b NodeView) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Services lists the services of snap.
func Services(snap *catalog.Snapshot) []ServiceView {
	out := []ServiceView{}
	for _, e := range snap.Services {
		v := ServiceView{
			Name:     e.Name,
			Mode:     e.Mode,
			Ports:    nonNil(e.Ports),
			Networks: nonNil(e.Networks),
			VIPs:     e.VIPs,
		}
		for _, t := range e.Tasks {
			v.Replicas.Total++
			if t.Health == catalog.Healthy {
				v.Replicas.Healthy++
			}
		}
		out = append(out, v)
	}
	return out
}

// Tasks lists the tasks of service name in snap, and false if there is no
// such service.
func Tasks(snap *catalog.Snapshot, name string) ([]TaskView, bool) {
	e := snap.Service(name)
	if e == nil {
		return nil, false
	}
	out := []TaskView{}
	for _, t := range e.Tasks {
		out = append(out, TaskView{
			ID:        t.ID,
			Name:      t.Service + "." + strconv.Itoa(t.Slot),
			Service:   t.Service,
			Slot:      t.Slot,
			Node:      t.Node,
			State:     t.Health.String(),
			Addresses: nonNil(t.Addrs),
		})
	}
	return out, true
}

// Networks lists the networks of snap with the services on each.
func Networks(snap *catalog.Snapshot) []NetworkView {
	out := []NetworkView{}
	for _, n := range snap.Networks {
		v := NetworkView{Name: n.Name, Subnets: nonNil(n.Subnets), Services: []string{}}
		for _, e := range snap.Services {
			for _, nw := range e.Networks {
				if nw == n.Name {
					v.Services = append(v.Services, e.Name)
				}
			}
		}
		out = append(out, v)
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Formats RenderX accept.
const (
	FormatTable = "table"
	FormatJSON  = "json"
)

// RenderNodes writes nodes as `dnsd node ls` shows them; `*` follows the
// id of the node that answered.
func RenderNodes(w io.Writer, nodes []NodeView, format string) error {
	return render(w, nodes, format, "ID\tNAME\tSTATUS\tADDRESS\tTASKS", func(n NodeView) string {
		id := n.ID
		if n.Self {
			id += " *"
		}
		return strings.Join([]string{id, n.Name, n.Status, orDash(n.Address),
			strconv.Itoa(n.Tasks)}, "\t")
	})
}

// RenderServices writes services as `dnsd service ls` shows them.
func RenderServices(w io.Writer, svcs []ServiceView, format string) error {
	return render(w, svcs, format, "NAME\tMODE\tREPLICAS\tPORTS", func(s ServiceView) string {
		replicas := fmt.Sprintf("%d/%d", s.Replicas.Healthy, s.Replicas.Total)
		return strings.Join([]string{s.Name, s.Mode, replicas, formatPorts(s.Ports)}, "\t")
	})
}

// RenderTasks writes tasks as `dnsd service ps` shows them.
func RenderTasks(w io.Writer, tasks []TaskView, format string) error {
	return render(w, tasks, format, "TASK\tNAME\tNODE\tSTATE\tADDRESSES", func(t TaskView) string {
		var addrs []string
		for _, a := range t.Addresses {
			addrs = append(addrs, a.IP.String()+" ("+a.Network+")")
		}
		return strings.Join([]string{t.ID, t.Name, t.Node, t.State,
			orDash(strings.Join(addrs, ", "))}, "\t")
	})
}

// RenderNetworks writes networks as `dnsd network ls` shows them.
func RenderNetworks(w io.Writer, nets []NetworkView, format string) error {
	return render(w, nets, format, "NAME\tSUBNET\tSERVICES", func(n NetworkView) string {
		var subnets []string
		for _, p := range n.Subnets {
			subnets = append(subnets, p.String())
		}
		return strings.Join([]string{n.Name, orDash(strings.Join(subnets, ", ")),
			strconv.Itoa(len(n.Services))}, "\t")
	})
}

// formatPorts writes ports as "80/tcp (http), 53/udp"; the name follows
// when it is not just the protocol again.
func formatPorts(ports []catalog.Port) string {
	var out []string
	for _, p := range ports {
		s := strconv.Itoa(int(p.Port)) + "/" + p.Protocol
		if p.Name != "" && p.Name != p.Protocol {
			s += " (" + p.Name + ")"
		}
		out = append(out, s)
	}
	return orDash(strings.Join(out, ", "))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func render[T any](w io.Writer, rows []T, format, header string, line func(T) string) error {
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(nonNil(rows)); err != nil {
			return fmt.Errorf("writing json: %w", err)
		}
		return nil
	case FormatTable, "":
		tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
		fmt.Fprintln(tw, header)
		for _, r := range rows {
			fmt.Fprintln(tw, line(r))
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("writing table: %w", err)
		}
		return nil
	}
	return fmt.Errorf("unknown format %q (want %s or %s)", format, FormatTable, FormatJSON)
}
