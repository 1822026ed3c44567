package resolve

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// Kind says how a Target is turned into addresses.
type Kind int

// The kinds of Target.
const (
	// Static is a literal ip:port; it is never looked up.
	Static Kind = iota
	// Host is a name with a port, resolved with A and AAAA queries.
	Host
	// SRV is a service name resolved with an SRV query.
	SRV
)

// String returns the kind's lower-case name.
func (k Kind) String() string {
	switch k {
	case Static:
		return "static"
	case Host:
		return "host"
	case SRV:
		return "srv"
	}
	return "unknown"
}

// Target is one upstream entry of a publish block. The zero value is not
// useful; build one with ParseTarget.
type Target struct {
	// Kind says how the target is resolved.
	Kind Kind
	// Name is the DNS name without its trailing dot; empty for Static.
	Name string
	// Port is the upstream port for Static and Host; zero for SRV, whose
	// records carry their own ports.
	Port uint16
	// Addr is the literal address of a Static target.
	Addr netip.AddrPort
}

// ErrTarget is wrapped by every error ParseTarget returns.
var ErrTarget = errors.New("invalid upstream")

// ParseTarget reads an upstream entry: "10.0.0.5:80", "[fd00::5]:80",
// "tasks.web.swarm.internal:80" or "_http._tcp.web.swarm.internal".
func ParseTarget(s string) (Target, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return Target{}, fmt.Errorf("%w %q: port 0", ErrTarget, s)
		}
		return Target{Kind: Static, Addr: ap, Port: ap.Port()}, nil
	}
	if strings.HasPrefix(s, "_") && !strings.Contains(s, ":") {
		name := strings.TrimSuffix(s, ".")
		if err := checkName(name); err != nil {
			return Target{}, fmt.Errorf("%w %q: %w", ErrTarget, s, err)
		}
		return Target{Kind: SRV, Name: strings.ToLower(name)}, nil
	}

	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return Target{}, fmt.Errorf("%w %q: want ip:port, name:port or an SRV name: %w",
			ErrTarget, s, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return Target{}, fmt.Errorf("%w %q: bad port %q", ErrTarget, s, port)
	}
	name := strings.TrimSuffix(host, ".")
	if err := checkName(name); err != nil {
		return Target{}, fmt.Errorf("%w %q: %w", ErrTarget, s, err)
	}
	return Target{Kind: Host, Name: strings.ToLower(name), Port: uint16(p)}, nil
}

// checkName rejects names that cannot be sent in a query.
func checkName(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	if len(name) > 253 {
		return errors.New("name longer than 253 bytes")
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" {
			return errors.New("empty label")
		}
		if len(label) > 63 {
			return errors.New("label longer than 63 bytes")
		}
		if strings.ContainsAny(label, " \t\r\n\\\"()") {
			return fmt.Errorf("bad character in label %q", label)
		}
	}
	return nil
}

// String returns the entry as it would be written in the config.
func (t Target) String() string {
	switch t.Kind {
	case Static:
		return t.Addr.String()
	case SRV:
		return t.Name
	}
	return net.JoinHostPort(t.Name, strconv.Itoa(int(t.Port)))
}

// ForNode returns the target rewritten for host mode on node: the same
// service, restricted to the tasks on that node. Static targets are
// returned unchanged.
func (t Target) ForNode(node string) Target {
	if t.Kind == Static {
		return t
	}
	t.Name = NodeName(t.Name, node)
	return t
}

// NodeName inserts "<node>.nodes" right after the service label of name:
//
//	tasks.web.swarm.internal       -> tasks.web.n1.nodes.swarm.internal
//	web.swarm.internal             -> web.n1.nodes.swarm.internal
//	_http._tcp.web.swarm.internal  -> _http._tcp.web.n1.nodes.swarm.internal
//
// The service label is the first label that is neither "tasks" in first
// position nor one of the leading underscore labels of an SRV name. A name
// with nothing after the service label is returned unchanged.
func NodeName(name, node string) string {
	labels := strings.Split(name, ".")
	i := 0
	for i < len(labels) && strings.HasPrefix(labels[i], "_") {
		i++
	}
	if i == 0 && len(labels) > 1 && strings.EqualFold(labels[0], "tasks") {
		i = 1
	}
	if i >= len(labels)-1 {
		return name
	}

	out := make([]string, 0, len(labels)+2)
	out = append(out, labels[:i+1]...)
	out = append(out, strings.ToLower(node), "nodes")
	out = append(out, labels[i+1:]...)
	return strings.Join(out, ".")
}

// DefaultNode returns the first label of the host name, lower-cased: the
// node name host mode uses when the config names none.
func DefaultNode() (string, error) {
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("reading host name: %w", err)
	}
	first, _, _ := strings.Cut(h, ".")
	if first == "" {
		return "", errors.New("reading host name: empty")
	}
	return strings.ToLower(first), nil
}
