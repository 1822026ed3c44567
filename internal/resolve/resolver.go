package resolve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ErrNXDomain is wrapped by a Lookup error when the server says the name
// does not exist.
var ErrNXDomain = errors.New("name does not exist")

// Result is the answer to one Lookup.
type Result struct {
	// Addrs holds the upstream addresses, sorted and without duplicates.
	Addrs []netip.AddrPort
	// TTL is the smallest TTL among the records used; zero when the
	// source reports none (the Go resolver fallback, or an empty answer
	// without SOA).
	TTL time.Duration
}

// Resolver looks Targets up. It is safe for concurrent use.
type Resolver struct {
	servers []string
	client  *dns.Client
	tcp     *dns.Client
	goRes   *net.Resolver
}

// queryTimeout bounds one query to one server.
const queryTimeout = 2 * time.Second

// NewResolver returns a Resolver that asks server (host:port, or a bare
// host meaning port 53). With server empty it asks the servers of the
// system's resolver configuration, or the Go resolver where there is none.
func NewResolver(server string) (*Resolver, error) {
	r := &Resolver{
		client: &dns.Client{Net: "udp", Timeout: queryTimeout, UDPSize: dns.DefaultMsgSize},
		tcp:    &dns.Client{Net: "tcp", Timeout: queryTimeout},
	}
	if server != "" {
		addr, err := ServerAddr(server)
		if err != nil {
			return nil, err
		}
		r.servers = []string{addr}
		return r, nil
	}

	r.servers = systemServers()
	if len(r.servers) == 0 {
		r.goRes = net.DefaultResolver
	}
	return r, nil
}

// ServerAddr normalises a resolver address: a bare host gets port 53.
func ServerAddr(s string) (string, error) {
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s, nil
	}
	if _, err := netip.ParseAddr(s); err == nil || checkName(s) == nil {
		return net.JoinHostPort(s, "53"), nil
	}
	return "", fmt.Errorf("resolver address %q: want host or host:port", s)
}

// Lookup resolves t once. Static targets answer at once with TTL zero.
func (r *Resolver) Lookup(ctx context.Context, t Target) (Result, error) {
	switch t.Kind {
	case Static:
		return Result{Addrs: []netip.AddrPort{t.Addr}}, nil
	case Host:
		if r.goRes != nil {
			return r.goHost(ctx, t)
		}
		return r.host(ctx, t.Name, t.Port)
	case SRV:
		if r.goRes != nil {
			return r.goSRV(ctx, t)
		}
		return r.srv(ctx, t.Name)
	}
	return Result{}, fmt.Errorf("looking up %v: unknown kind", t)
}

// host asks for A and AAAA. It succeeds when either query does, so a
// server that fails only one family still yields the other.
func (r *Resolver) host(ctx context.Context, name string, port uint16) (Result, error) {
	var res Result
	var errs []error
	nx := 0
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		m, err := r.exchange(ctx, name, qt)
		if err != nil {
			if errors.Is(err, ErrNXDomain) {
				nx++
			}
			errs = append(errs, err)
			continue
		}
		ttl := addrsFrom(m.Answer, name, port, &res.Addrs)
		res.TTL = minTTL(res.TTL, ttl)
		if len(m.Answer) == 0 {
			res.TTL = minTTL(res.TTL, negativeTTL(m))
		}
	}
	if len(errs) == 2 {
		if nx == 2 {
			return Result{}, fmt.Errorf("looking up %s: %w", name, ErrNXDomain)
		}
		return Result{}, fmt.Errorf("looking up %s: %w", name, errors.Join(errs...))
	}
	res.Addrs = tidy(res.Addrs)
	return res, nil
}

// srv asks for SRV records, keeps those of the lowest priority and takes
// each target's addresses from the additional section, asking for them
// when the server left them out.
//
// TODO: SRV weights are ignored; every record of the lowest priority gets
// an equal share, whatever its weight.
func (r *Resolver) srv(ctx context.Context, name string) (Result, error) {
	m, err := r.exchange(ctx, name, dns.TypeSRV)
	if err != nil {
		return Result{}, fmt.Errorf("looking up %s: %w", name, err)
	}
	var res Result
	if len(m.Answer) == 0 {
		res.TTL = negativeTTL(m)
	}
	recs := lowestPriority(m.Answer)
	for _, s := range recs {
		res.TTL = minTTL(res.TTL, ttlOf(s))
		target := strings.ToLower(strings.TrimSuffix(s.Target, "."))
		n := len(res.Addrs)
		ttl := addrsFrom(m.Extra, target, s.Port, &res.Addrs)
		if len(res.Addrs) > n {
			res.TTL = minTTL(res.TTL, ttl)
			continue
		}
		sub, err := r.host(ctx, target, s.Port)
		if err != nil {
			// one missing target must not hide the others
			continue
		}
		res.Addrs = append(res.Addrs, sub.Addrs...)
		res.TTL = minTTL(res.TTL, sub.TTL)
	}
	res.Addrs = tidy(res.Addrs)
	return res, nil
}

// exchange sends one question to each server in turn until one answers
// with NOERROR or NXDOMAIN, retrying over TCP when the answer is
// truncated.
func (r *Resolver) exchange(ctx context.Context, name string, qt uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qt)
	q.SetEdns0(dns.DefaultMsgSize, false)

	var errs []error
	for _, srv := range r.servers {
		m, _, err := r.client.ExchangeContext(ctx, q, srv)
		if err == nil && m.Truncated {
			m, _, err = r.tcp.ExchangeContext(ctx, q, srv)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("asking %s: %w", srv, err))
			continue
		}
		switch m.Rcode {
		case dns.RcodeSuccess:
			return m, nil
		case dns.RcodeNameError:
			return nil, ErrNXDomain
		}
		errs = append(errs, fmt.Errorf("asking %s: rcode %s", srv, dns.RcodeToString[m.Rcode]))
	}
	if len(errs) == 0 {
		return nil, errors.New("no resolver configured")
	}
	return nil, errors.Join(errs...)
}

// addrsFrom appends the A and AAAA records of rrs owned by name, with
// port, and returns their smallest TTL. CNAMEs are followed within rrs.
func addrsFrom(rrs []dns.RR, name string, port uint16, out *[]netip.AddrPort) time.Duration {
	owners := map[string]bool{strings.ToLower(dns.Fqdn(name)): true}
	var ttl time.Duration
	for _, rr := range rrs {
		if c, ok := rr.(*dns.CNAME); ok && owners[strings.ToLower(c.Hdr.Name)] {
			owners[strings.ToLower(c.Target)] = true
			ttl = minTTL(ttl, ttlOf(rr))
		}
	}
	for _, rr := range rrs {
		if !owners[strings.ToLower(rr.Header().Name)] {
			continue
		}
		var ip net.IP
		switch a := rr.(type) {
		case *dns.A:
			ip = a.A
		case *dns.AAAA:
			ip = a.AAAA
		default:
			continue
		}
		addr, ok := netip.AddrFromSlice(ip)
		if !ok {
			continue
		}
		*out = append(*out, netip.AddrPortFrom(addr.Unmap(), port))
		ttl = minTTL(ttl, ttlOf(rr))
	}
	return ttl
}

// lowestPriority returns the SRV records that share the lowest priority.
func lowestPriority(rrs []dns.RR) []*dns.SRV {
	var out []*dns.SRV
	for _, rr := range rrs {
		s, ok := rr.(*dns.SRV)
		if !ok {
			continue
		}
		if len(out) > 0 && s.Priority > out[0].Priority {
			continue
		}
		if len(out) > 0 && s.Priority < out[0].Priority {
			out = out[:0]
		}
		out = append(out, s)
	}
	return out
}

// negativeTTL is how long an empty answer may be trusted: the SOA's
// minimum, as for negative caching; zero when there is no SOA.
func negativeTTL(m *dns.Msg) time.Duration {
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return time.Duration(min(soa.Minttl, soa.Hdr.Ttl)) * time.Second
		}
	}
	return 0
}

func ttlOf(rr dns.RR) time.Duration {
	return time.Duration(rr.Header().Ttl) * time.Second
}

// minTTL returns the smaller of two TTLs, where zero means "none yet".
func minTTL(a, b time.Duration) time.Duration {
	if a == 0 {
		return b
	}
	if b == 0 {
		return a
	}
	return min(a, b)
}

// tidy sorts addrs and drops duplicates.
func tidy(addrs []netip.AddrPort) []netip.AddrPort {
	slices.SortFunc(addrs, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return slices.Compact(addrs)
}

// goHost is the Go resolver fallback for Host targets; it has no TTL.
func (r *Resolver) goHost(ctx context.Context, t Target) (Result, error) {
	ips, err := r.goRes.LookupNetIP(ctx, "ip", t.Name)
	if err != nil {
		return Result{}, fmt.Errorf("looking up %s: %w", t.Name, goErr(err))
	}
	var res Result
	for _, ip := range ips {
		res.Addrs = append(res.Addrs, netip.AddrPortFrom(ip.Unmap(), t.Port))
	}
	res.Addrs = tidy(res.Addrs)
	return res, nil
}

// goSRV is the Go resolver fallback for SRV targets; it has no TTL.
func (r *Resolver) goSRV(ctx context.Context, t Target) (Result, error) {
	_, recs, err := r.goRes.LookupSRV(ctx, "", "", t.Name)
	if err != nil {
		return Result{}, fmt.Errorf("looking up %s: %w", t.Name, goErr(err))
	}
	var res Result
	for _, s := range recs {
		if s.Priority != recs[0].Priority {
			break
		}
		sub, err := r.goHost(ctx, Target{Kind: Host, Name: s.Target, Port: s.Port})
		if err != nil {
			continue
		}
		res.Addrs = append(res.Addrs, sub.Addrs...)
	}
	res.Addrs = tidy(res.Addrs)
	return res, nil
}

// goErr maps the Go resolver's not-found error onto ErrNXDomain.
func goErr(err error) error {
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		return fmt.Errorf("%w: %w", ErrNXDomain, err)
	}
	return err
}
