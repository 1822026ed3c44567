// Command lb publishes ports on a host and spreads TCP connections and
// UDP sessions over the tasks of Docker Swarm services, following the
// tasks through DNS as they come and go. It stands in for Swarm's routing
// mesh where the mesh is missing, such as on Windows hosts.
//
// Usage:
//
//	lb -conf lb.conf [-log-level debug|info|warn|error] [-cpuprofile file]
//
// The config file uses the Corefile-like syntax described in
// lb.conf.example. SIGHUP, or any change to the file, reloads it; a
// config that fails to parse is refused and the running one stays.
// SIGTERM and SIGINT stop taking clients and drain open connections for
// the config's drain_timeout.
//
// lb is not a DNS server and not an HTTP proxy: it relays bytes and
// datagrams, and reads nothing of them but an optional PROXY header.
package main
