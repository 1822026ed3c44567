package taskfile

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/swarmdns/swarmdns/internal/catalog"
)

// ErrUnknownNetwork is the reason for a use of a network that neither the
// file nor the other files it is checked against define.
var ErrUnknownNetwork = errors.New("unknown network")

// File is a task file read on its own: its state, and the uses of
// networks it does not define, which only the other task files of its
// directory can settle.
type File struct {
	// Name is the file name given to ParseFile.
	Name string
	// State is what the file says. It must not be changed once it is put
	// into a catalog.
	State *catalog.State
	// Refs are the file's uses of networks it does not define, in the
	// order they appear.
	Refs []Ref
}

// Ref is a use of a network that the file using it does not define.
type Ref struct {
	// Network is the network's name, lower-cased.
	Network string
	// Addr is the address used on Network, or the zero Addr where the
	// file only names the network, as a service's networks list does.
	Addr netip.Addr
	// Line and Col are where the use is written, counting from 1.
	Line int
	Col  int
}

// Lookup returns the subnets of the network called name as the files a
// task file is checked against define it, and whether any does. A
// network known with no subnets admits any address.
type Lookup func(name string) (subnets []netip.Prefix, ok bool)

// Networks returns a Lookup of the networks the states define, with the
// subnets of a network defined more than once merged. It keeps no
// reference to the states.
func Networks(states ...*catalog.State) Lookup {
	m := make(map[string][]netip.Prefix)
	seen := make(map[string]map[netip.Prefix]bool)
	for _, s := range states {
		if s == nil {
			continue
		}
		for _, n := range s.Networks {
			if seen[n.Name] == nil {
				seen[n.Name] = make(map[netip.Prefix]bool)
				m[n.Name] = nil
			}
			for _, p := range n.Subnets {
				if !seen[n.Name][p] {
					seen[n.Name][p] = true
					m[n.Name] = append(m[n.Name], p)
				}
			}
		}
	}
	return func(name string) ([]netip.Prefix, bool) {
		subnets, ok := m[name]
		return subnets, ok
	}
}

// Parse reads a task file that stands alone: every network it uses must
// be defined in it. file names the file in errors; data is its content.
//
// On any problem Parse returns no state and an error holding every
// problem found, in position order, each a *ParseError: one *ParseError
// for one problem, several joined with errors.Join (see ParseErrors).
// Past 20 problems it stops with ErrTooManyErrors. Parse never panics,
// whatever data holds, keeps nothing between calls and is safe for
// concurrent use; so is ParseFile.
func Parse(file string, data []byte) (*catalog.State, error) {
	f, errs := parse(file, data)
	if f != nil && !errs.full() {
		errs = append(errs, f.checkRefs(nil)...)
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return f.State, nil
}

// ParseFile reads a task file that may use networks other files define.
// It checks everything Parse does except those uses, which it returns in
// File.Refs for CheckRefs. Errors are as Parse's.
func ParseFile(file string, data []byte) (*File, error) {
	f, errs := parse(file, data)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return f, nil
}

// CheckRefs checks the file's uses of networks it does not define against
// known, which may be nil: each network must be known, and each address
// must lie in one of its network's subnets. It returns nil or an error
// like Parse's, in which a use of an unknown network wraps
// ErrUnknownNetwork. CheckRefs does not change f and is safe to call
// from several goroutines at once.
func (f *File) CheckRefs(known Lookup) error {
	return f.checkRefs(known).err()
}

func (f *File) checkRefs(known Lookup) errorList {
	var errs errorList
	reported := make(map[string]bool)
	for _, r := range f.Refs {
		var subnets []netip.Prefix
		ok := false
		if known != nil {
			subnets, ok = known(r.Network)
		}

		var err error
		switch {
		case !ok && !reported[r.Network]:
			// one report per network: the first use is where to look
			reported[r.Network] = true
			err = fmt.Errorf("%w %q: define it in this file or in another task file "+
				"of the directory", ErrUnknownNetwork, r.Network)
		case ok && r.Addr.IsValid() && len(subnets) > 0 && !inSubnets(subnets, r.Addr):
			err = outsideError(r.Addr, r.Network, subnets)
		}
		if err == nil {
			continue
		}
		errs = append(errs, &ParseError{File: f.Name, Line: r.Line, Col: r.Col, Err: err})
		if errs.full() {
			break
		}
	}
	return errs
}

func inSubnets(subnets []netip.Prefix, ip netip.Addr) bool {
	return slices.ContainsFunc(subnets, func(p netip.Prefix) bool { return p.Contains(ip) })
}

func outsideError(ip netip.Addr, network string, subnets []netip.Prefix) error {
	list := make([]string, len(subnets))
	for i, p := range subnets {
		list[i] = p.String()
	}
	return fmt.Errorf("address %s is outside network %q (%s)", ip, network,
		strings.Join(list, ", "))
}

// parser reads one task file. It holds what the file defined so far, to
// check later parts against earlier ones.
type parser struct {
	file      string
	errs      errorList
	nodes     int
	budget    int
	exhausted bool

	state    catalog.State
	refs     []Ref
	networks map[string]*netDef
	services map[string]*yaml.Node
	addrs    map[catalog.Addr]*yaml.Node
}

// netDef is a network the file defines.
type netDef struct {
	at      *yaml.Node
	subnets []netip.Prefix
	// checked says the definition had no problem, so that addresses can
	// be held against its subnets without repeating its errors
	checked bool
}

// parse reads data into a File. It returns the problems found, and the
// File when the YAML itself was readable, so that Parse can add the
// problems of network uses to the others.
func parse(file string, data []byte) (*File, errorList) {
	p := &parser{
		file:     file,
		budget:   maxNodes + nodesPerByte*len(data),
		networks: make(map[string]*netDef),
		services: make(map[string]*yaml.Node),
		addrs:    make(map[catalog.Addr]*yaml.Node),
	}
	doc, pe := decodeYAML(file, data)
	if pe != nil {
		return nil, errorList{pe}
	}
	if doc != nil && doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		p.document(doc.Content[0])
	}
	f := &File{
		Name:  file,
		State: &p.state,
		Refs:  p.refs,
	}
	return f, p.errs
}

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	p.errorAt(n, fmt.Errorf(format, args...))
}

// errorAt records err at n. It drops errors past what the list reports,
// and every error after the file ran out of budget, since those follow
// from the values it could no longer read.
func (p *parser) errorAt(n *yaml.Node, err error) {
	if p.errs.full() || p.exhausted {
		return
	}
	line, col := 1, 1
	if n != nil && n.Line > 0 {
		line, col = n.Line, n.Column
	}
	p.errs = append(p.errs, &ParseError{File: p.file, Line: line, Col: col, Err: err})
}

// document reads the top-level mapping. Networks are read before
// services wherever they appear, since services are checked against them.
func (p *parser) document(root *yaml.Node) {
	fs, _ := p.mapping(root, "task file", "version", "networks", "services")
	if f, ok := fs["version"]; ok {
		v, at, ok := p.scalar(f.val, "version")
		if ok && v != "1" {
			p.errorf(at, "unsupported version %q (want 1)", v)
		}
	}
	for _, n := range p.sequence(fs["networks"].val, "networks") {
		if p.errs.full() || p.exhausted {
			return
		}
		p.network(n)
	}
	for _, n := range p.sequence(fs["services"].val, "services") {
		if p.errs.full() || p.exhausted {
			return
		}
		p.service(n)
	}
}

// item reads a list item that must be a mapping.
func (p *parser) item(n *yaml.Node, what string, known ...string) (map[string]field, bool) {
	fs, ok := p.mapping(n, what, known...)
	if !ok && isNull(n) {
		p.errorf(n, "%s: want a mapping, got nothing", what)
	}
	return fs, ok
}

// required reports whether fs has key with a value, and reports its
// absence at the key or, when there is no key, at the mapping at.
func (p *parser) required(fs map[string]field, key, what string, at *yaml.Node) bool {
	f, ok := fs[key]
	switch {
	case !ok:
		p.errorf(at, "%s: missing %s", what, key)
		return false
	case isNull(f.val):
		p.errorf(f.key, "%s: missing %s", what, key)
		return false
	}
	return true
}

// label reads a name that must be a DNS label, and returns it
// lower-cased.
func (p *parser) label(n *yaml.Node, what string) (string, *yaml.Node, bool) {
	v, at, ok := p.scalar(n, what)
	if !ok {
		return "", at, false
	}
	if err := checkLabel(v); err != nil {
		p.errorf(at, "%s %q is not a DNS label: %w", what, v, err)
		return "", at, false
	}
	return strings.ToLower(v), at, true
}

// checkLabel checks that s is a DNS label as RFC 1123 has host names:
// letters, digits and hyphens, 1 to 63 of them, no hyphen at either end.
func checkLabel(s string) error {
	switch {
	case s == "":
		return errors.New("it is empty")
	case len(s) > 63:
		return fmt.Errorf("it is %d characters long, more than 63", len(s))
	case s[0] == '-' || s[len(s)-1] == '-':
		return errors.New("it starts or ends with a hyphen")
	}
	for _, r := range s {
		ok := r == '-' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') ||
			('A' <= r && r <= 'Z')
		if !ok {
			return fmt.Errorf("it holds %q (want letters, digits and hyphens)", r)
		}
	}
	return nil
}

func (p *parser) network(n *yaml.Node) {
	fs, ok := p.item(n, "network", "name", "subnet", "subnets")
	if !ok {
		return
	}

	var name string
	var nameAt *yaml.Node
	if p.required(fs, "name", "network", n) {
		name, nameAt, _ = p.label(fs["name"].val, "network name")
	}
	if prev, dup := p.networks[name]; name != "" && dup {
		p.errorf(nameAt, "network %q already defined at %d:%d", name, prev.at.Line,
			prev.at.Column)
		return
	}

	subnets, checked := p.subnets(fs, n, name)
	if name == "" {
		return
	}
	p.networks[name] = &netDef{at: nameAt, subnets: subnets, checked: checked}
	p.state.Networks = append(p.state.Networks, catalog.Network{
		Name:    name,
		Subnets: subnets,
	})
}

// subnets reads a network's subnet or subnets key. It reports whether
// they were all well formed.
func (p *parser) subnets(fs map[string]field, n *yaml.Node, name string) ([]netip.Prefix, bool) {
	one, hasOne := fs["subnet"]
	many, hasMany := fs["subnets"]
	var items []*yaml.Node
	switch {
	case hasOne && hasMany:
		p.errorf(many.key, "network: give subnet or subnets, not both")
		return nil, false
	case hasOne:
		items = []*yaml.Node{one.val}
	case hasMany:
		items = p.sequence(many.val, "subnets")
	}

	var out []netip.Prefix
	seen := make(map[netip.Prefix]bool)
	checked := true
	for _, it := range items {
		pfx, ok := p.subnet(it, seen)
		if ok {
			seen[pfx] = true
			out = append(out, pfx)
		}
		checked = checked && ok
	}
	if len(out) == 0 && checked {
		if name == "" {
			p.errorf(n, "network: missing subnet")
		} else {
			p.errorf(n, "network %q: missing subnet", name)
		}
		checked = false
	}
	return out, checked
}

// subnet reads one subnet, which must not be among those seen.
func (p *parser) subnet(n *yaml.Node, seen map[netip.Prefix]bool) (netip.Prefix, bool) {
	v, at, ok := p.scalar(n, "subnet")
	if !ok {
		if isNull(at) {
			p.errorf(n, "subnet: want a prefix such as 10.0.1.0/24, got nothing")
		}
		return netip.Prefix{}, false
	}
	pfx, err := netip.ParsePrefix(v)
	switch {
	case err != nil:
		p.errorf(at, "bad subnet: %w", err)
	case pfx.Addr().Is4In6():
		p.errorf(at, "subnet %s is IPv4-mapped; write it as IPv4", pfx)
	case pfx != pfx.Masked():
		p.errorf(at, "subnet %s has host bits set (the network is %s)", pfx, pfx.Masked())
	case seen[pfx]:
		p.errorf(at, "subnet %s listed twice", pfx)
	default:
		return pfx, true
	}
	return netip.Prefix{}, false
}

// use records that the file uses network, with the address ip if it is
// valid: a network the file defines is checked now, another becomes a Ref.
func (p *parser) use(network string, ip netip.Addr, at *yaml.Node) {
	if def, ok := p.networks[network]; ok {
		if def.checked && ip.IsValid() && !inSubnets(def.subnets, ip) {
			p.errorAt(at, outsideError(ip, network, def.subnets))
		}
		return
	}
	p.refs = append(p.refs, Ref{
		Network: network,
		Addr:    ip,
		Line:    at.Line,
		Col:     at.Column,
	})
}

func (p *parser) service(n *yaml.Node) {
	fs, ok := p.item(n, "service", "name", "endpoint_mode", "virtual_ips", "networks",
		"ports", "tasks")
	if !ok {
		return
	}

	svc := catalog.Service{Mode: catalog.ModeDNSRR}
	if p.required(fs, "name", "service", n) {
		var at *yaml.Node
		svc.Name, at, ok = p.label(fs["name"].val, "service name")
		if prev, dup := p.services[svc.Name]; ok && dup {
			p.errorf(at, "service %q already defined at %d:%d", svc.Name, prev.Line,
				prev.Column)
		} else if ok {
			p.services[svc.Name] = at
		}
	}
	if f, ok := fs["endpoint_mode"]; ok {
		svc.Mode = p.endpointMode(f.val)
	}

	declared := p.serviceNetworks(fs["networks"].val)
	svc.Networks = declared.names
	svc.Ports = p.ports(fs["ports"].val)
	if f, ok := fs["virtual_ips"]; ok && !isNull(f.val) {
		if svc.Mode != catalog.ModeVIP {
			p.errorf(f.key, "virtual_ips: service %q has endpoint_mode %s; virtual IPs "+
				"need vip", svc.Name, svc.Mode)
		} else {
			svc.VIPs = p.addresses(f.val, "virtual_ips", declared)
		}
	}

	tasks := p.tasks(fs["tasks"].val, svc.Name, declared)
	if len(declared.names) == 0 {
		svc.Networks = usedNetworks(svc.VIPs, tasks)
	}
	p.state.Services = append(p.state.Services, svc)
	p.state.Tasks = append(p.state.Tasks, tasks...)
}

func (p *parser) endpointMode(n *yaml.Node) string {
	v, at, ok := p.scalar(n, "endpoint_mode")
	if !ok {
		return catalog.ModeDNSRR
	}
	switch m := strings.ToLower(v); m {
	case catalog.ModeDNSRR, catalog.ModeVIP:
		return m
	}
	p.errorf(at, "unknown endpoint mode %q (want dnsrr or vip)", v)
	return catalog.ModeDNSRR
}

// declaredNetworks is a service's networks list.
type declaredNetworks struct {
	names []string
	set   map[string]bool
}

// allows reports whether the service may have addresses on network: any
// network when the service lists none.
func (d declaredNetworks) allows(network string) bool {
	return len(d.names) == 0 || d.set[network]
}

// serviceNetworks reads a service's networks list.
func (p *parser) serviceNetworks(n *yaml.Node) declaredNetworks {
	d := declaredNetworks{set: make(map[string]bool)}
	for _, it := range p.sequence(n, "networks") {
		name, at, ok := p.label(it, "network name")
		switch {
		case !ok:
			continue
		case d.set[name]:
			p.errorf(at, "network %q listed twice", name)
			continue
		}
		d.set[name] = true
		p.use(name, netip.Addr{}, at)
		d.names = append(d.names, name)
	}
	return d
}

// usedNetworks returns the sorted names of the networks a service's
// virtual IPs and tasks have addresses on.
func usedNetworks(vips []catalog.Addr, tasks []catalog.Task) []string {
	var out []string
	for _, a := range vips {
		out = append(out, a.Network)
	}
	for _, t := range tasks {
		for _, a := range t.Addrs {
			out = append(out, a.Network)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (p *parser) ports(n *yaml.Node) []catalog.Port {
	var out []catalog.Port
	seen := make(map[[2]string]*yaml.Node)
	for _, it := range p.sequence(n, "ports") {
		fs, ok := p.item(it, "port", "name", "port", "protocol")
		if !ok {
			continue
		}
		port := catalog.Port{Protocol: "tcp"}
		var nameAt *yaml.Node
		okName := p.required(fs, "name", "port", it)
		if okName {
			port.Name, nameAt, okName = p.label(fs["name"].val, "port name")
		}
		okNum := p.required(fs, "port", "port", it)
		if okNum {
			port.Port, okNum = p.portNumber(fs["port"].val)
		}
		if f, ok := fs["protocol"]; ok {
			port.Protocol = p.protocol(f.val)
		}
		if !okName || !okNum {
			continue
		}

		// SRV names are _name._protocol: two ports may share a name only
		// on different protocols
		k := [2]string{port.Name, port.Protocol}
		if prev, dup := seen[k]; dup {
			p.errorf(nameAt, "port %s/%s already defined at %d:%d", port.Name,
				port.Protocol, prev.Line, prev.Column)
			continue
		}
		seen[k] = nameAt
		out = append(out, port)
	}
	return out
}

func (p *parser) portNumber(n *yaml.Node) (uint16, bool) {
	v, at, ok := p.scalar(n, "port")
	if !ok {
		return 0, false
	}
	num, err := strconv.ParseUint(v, 10, 64)
	switch {
	case err != nil:
		p.errorf(at, "port: want a number from 1 to 65535, got %q", v)
	case num < 1 || num > 65535:
		p.errorf(at, "port %d out of range (want 1 to 65535)", num)
	default:
		return uint16(num), true
	}
	return 0, false
}

func (p *parser) protocol(n *yaml.Node) string {
	v, at, ok := p.scalar(n, "protocol")
	if !ok {
		return "tcp"
	}
	switch proto := strings.ToLower(v); proto {
	case "tcp", "udp":
		return proto
	}
	p.errorf(at, "unknown protocol %q (want tcp or udp)", v)
	return "tcp"
}

// addresses reads a mapping from network names to one address or a list
// of at most one IPv4 and one IPv6 address, on networks that declared
// allows.
func (p *parser) addresses(n *yaml.Node, what string, declared declaredNetworks) []catalog.Addr {
	fields, _ := p.pairs(n, what)
	var out []catalog.Addr
	for _, f := range fields {
		network, at, ok := p.label(f.key, "network name")
		if !ok {
			continue
		}
		if !declared.allows(network) {
			p.errorf(at, "network %q is not among the service's networks (%s)", network,
				strings.Join(declared.names, ", "))
			continue
		}
		p.use(network, netip.Addr{}, at)

		var items []*yaml.Node
		if v := p.deref(f.val); v != nil && v.Kind == yaml.SequenceNode {
			items = v.Content
		} else if !isNull(v) {
			items = []*yaml.Node{f.val}
		}
		if len(items) == 0 {
			p.errorf(f.key, "network %q: missing address", network)
			continue
		}
		ips := p.networkAddrs(network, items)
		for _, ip := range ips {
			out = append(out, catalog.Addr{Network: network, IP: ip})
		}
	}
	return out
}

// networkAddrs reads the addresses one task or service has on network:
// one per family.
func (p *parser) networkAddrs(network string, items []*yaml.Node) []netip.Addr {
	var out []netip.Addr
	var first [2]*yaml.Node
	for _, it := range items {
		ip, at, ok := p.address(it)
		if !ok {
			continue
		}
		fam, name := 0, "IPv4"
		if ip.Is6() {
			fam, name = 1, "IPv6"
		}
		if prev := first[fam]; prev != nil {
			p.errorf(at, "network %q: a second %s address (first at %d:%d); give one "+
				"IPv4 and one IPv6 at most", network, name, prev.Line, prev.Column)
			continue
		}
		first[fam] = at

		a := catalog.Addr{Network: network, IP: ip}
		if prev, dup := p.addrs[a]; dup {
			p.errorf(at, "address %s on network %q already used at %d:%d", ip, network,
				prev.Line, prev.Column)
			continue
		}
		p.addrs[a] = at
		p.use(network, ip, at)
		out = append(out, ip)
	}
	return out
}

// address reads one IP address a task or service can have.
func (p *parser) address(n *yaml.Node) (netip.Addr, *yaml.Node, bool) {
	v, at, ok := p.scalar(n, "address")
	if !ok {
		return netip.Addr{}, at, false
	}
	ip, err := netip.ParseAddr(v)
	switch {
	case err != nil:
		p.errorf(at, "bad address: %w", err)
	case ip.Zone() != "":
		p.errorf(at, "address %s has a zone; give the address alone", ip)
	case ip.Is4In6():
		p.errorf(at, "address %s is IPv4-mapped; write it as %s", ip, ip.Unmap())
	case ip.IsUnspecified() || ip.IsMulticast():
		p.errorf(at, "address %s cannot be a task's or service's address", ip)
	default:
		return ip, at, true
	}
	return netip.Addr{}, at, false
}

// tasks reads the tasks of the service called service.
func (p *parser) tasks(n *yaml.Node, service string, declared declaredNetworks) []catalog.Task {
	var out []catalog.Task
	slots := make(map[int]*yaml.Node)
	ids := make(map[string]*yaml.Node)
	for _, it := range p.sequence(n, "tasks") {
		if p.errs.full() || p.exhausted {
			break
		}
		t, ok := p.task(it, service, declared)
		if !ok {
			continue
		}
		if prev, dup := slots[t.Slot]; dup {
			p.errorf(t.at, "slot %d already used at %d:%d", t.Slot, prev.Line, prev.Column)
			continue
		}
		slots[t.Slot] = t.at
		if prev, dup := ids[t.ID]; dup {
			p.errorf(t.idAt, "task id %q already used at %d:%d", t.ID, prev.Line,
				prev.Column)
			continue
		}
		ids[t.ID] = t.idAt
		out = append(out, t.Task)
	}
	return out
}

// parsedTask is a task with where its slot and id are written.
type parsedTask struct {
	catalog.Task
	at   *yaml.Node
	idAt *yaml.Node
}

func (p *parser) task(n *yaml.Node, service string,
	declared declaredNetworks) (parsedTask, bool) {
	fs, ok := p.item(n, "task", "slot", "id", "node", "addresses", "health")
	if !ok {
		return parsedTask{}, false
	}

	t := parsedTask{Task: catalog.Task{Service: service}}
	okSlot := p.required(fs, "slot", "task", n)
	if okSlot {
		t.Slot, t.at, okSlot = p.slot(fs["slot"].val)
	}
	t.idAt = t.at
	okID := true
	if f, ok := fs["id"]; ok && !isNull(f.val) {
		t.ID, t.idAt, okID = p.label(f.val, "task id")
	} else if okSlot && service != "" {
		t.ID = catalog.TaskID(service, t.Slot)
	}
	// TODO: a task's node is kept in its state, but the catalog counts
	// every task of a task file as running on the node that loads the
	// file, so the node key changes no answer.
	if f, ok := fs["node"]; ok && !isNull(f.val) {
		t.Node, _, _ = p.label(f.val, "node name")
	}
	if f, ok := fs["health"]; ok {
		t.Health = p.health(f.val)
	}

	if p.required(fs, "addresses", "task", n) {
		before := len(p.errs)
		t.Addrs = p.addresses(fs["addresses"].val, "addresses", declared)
		if len(t.Addrs) == 0 && len(p.errs) == before {
			p.errorf(fs["addresses"].key, "task: missing addresses")
		}
	}
	return t, okSlot && okID && service != ""
}

func (p *parser) slot(n *yaml.Node) (int, *yaml.Node, bool) {
	v, at, ok := p.scalar(n, "slot")
	if !ok {
		return 0, at, false
	}
	num, err := strconv.ParseInt(v, 10, 32)
	switch {
	case err != nil:
		p.errorf(at, "slot: want a whole number from 1, got %q", v)
	case num < 1:
		p.errorf(at, "slot %d out of range (slots count from 1)", num)
	default:
		return int(num), at, true
	}
	return 0, at, false
}

func (p *parser) health(n *yaml.Node) catalog.Health {
	v, at, ok := p.scalar(n, "health")
	if !ok {
		return catalog.Healthy
	}
	h, err := catalog.ParseHealth(strings.ToLower(v))
	if err != nil {
		p.errorAt(at, err)
	}
	return h
}
