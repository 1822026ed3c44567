package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
)

// Health is a task's health as its container reports it.
type Health uint8

// The health states a task can be in. The zero value is Healthy so that a
// task without a health check is served.
const (
	Healthy Health = iota
	Starting
	Unhealthy
)

// String returns the lower-case word used in task files and views.
func (h Health) String() string {
	switch h {
	case Healthy:
		return "healthy"
	case Starting:
		return "starting"
	case Unhealthy:
		return "unhealthy"
	}
	return "health(" + strconv.Itoa(int(h)) + ")"
}

// ParseHealth reads the words that String returns.
func ParseHealth(s string) (Health, error) {
	switch s {
	case "", "healthy":
		return Healthy, nil
	case "starting":
		return Starting, nil
	case "unhealthy":
		return Unhealthy, nil
	}
	return 0, fmt.Errorf("unknown health %q (want healthy, starting or unhealthy)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (h Health) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *Health) UnmarshalText(b []byte) error {
	v, err := ParseHealth(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// Endpoint modes, as Docker names them. In dnsrr mode the service name
// answers the tasks' addresses; in vip mode it answers the service's
// virtual IPs when it has any, and tasks.<service> answers the tasks.
const (
	ModeDNSRR = "dnsrr"
	ModeVIP   = "vip"
)

// Network is an overlay network: a name and the subnets its tasks'
// addresses come from.
type Network struct {
	Name    string         `json:"name"`
	Subnets []netip.Prefix `json:"subnets,omitempty"`
}

// Port is a port a service listens on, named for SRV records.
type Port struct {
	Name     string `json:"name"`
	Port     uint16 `json:"port"`
	Protocol string `json:"protocol"` // "tcp" or "udp"
}

// Addr is one address of a task or a virtual IP of a service, on one
// network.
type Addr struct {
	Network string     `json:"network"`
	IP      netip.Addr `json:"ip"`
}

// Service is a named set of tasks.
type Service struct {
	Name     string   `json:"name"`
	Mode     string   `json:"mode,omitempty"` // ModeDNSRR (default) or ModeVIP
	Ports    []Port   `json:"ports,omitempty"`
	Networks []string `json:"networks,omitempty"`
	VIPs     []Addr   `json:"vips,omitempty"`
}

// Task is one replica of a service, running on one node.
type Task struct {
	ID      string `json:"id"`
	Service string `json:"service"`
	Slot    int    `json:"slot"`
	Node    string `json:"node,omitempty"`
	Addrs   []Addr `json:"addresses"`
	Health  Health `json:"health"`
}

// Name returns the task's name as Docker forms it: service.slot.id.
func (t *Task) Name() string {
	return t.Service + "." + strconv.Itoa(t.Slot) + "." + t.ID
}

// TaskID returns the stable id a task gets when its source names none: the
// first 12 hex digits of a hash of its service and slot, so that the same
// task keeps its name across reloads and restarts.
func TaskID(service string, slot int) string {
	sum := sha256.Sum256([]byte(service + "/" + strconv.Itoa(slot)))
	return hex.EncodeToString(sum[:6])
}

// State is everything one source on one node says: the networks it knows,
// its services and their tasks. A State handed to the catalog must not be
// changed afterwards.
type State struct {
	Networks []Network `json:"networks,omitempty"`
	Services []Service `json:"services,omitempty"`
	Tasks    []Task    `json:"tasks,omitempty"`
}
