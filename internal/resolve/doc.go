// Package resolve turns the upstream entries of an lb publish block into
// socket addresses by asking a DNS server, and keeps the TTL that says when
// to ask again.
//
// An entry is one of three kinds: a literal ip:port, a name with a port
// (resolved with A and AAAA queries) or an SRV name such as
// _http._tcp.web.swarm.internal (resolved with an SRV query, taking each
// record's port and the addresses of its target). Lookups go through
// github.com/miekg/dns to a configured server or to the servers of the
// system's resolv.conf; where there is no resolv.conf (Windows) they fall
// back to the Go resolver, which reports no TTL.
//
// The package also holds the host-mode rewriting that turns a service name
// into the name of the same service's tasks on one node.
//
// It does not poll, cache or balance: the caller decides when to look up
// again and what to do with the answer.
package resolve
