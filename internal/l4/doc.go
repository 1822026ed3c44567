// Package l4 is the engine of lb, a layer-4 proxy that publishes ports on
// a host and spreads TCP connections and UDP sessions over the tasks of a
// service, following the tasks through DNS as they come and go.
//
// It holds the config syntax (ParseConfig), the listeners and their
// reload (Server.Apply), the TCP relay, which hands both directions to
// the kernel's splice path on Linux, the UDP session table, the balancing
// policies, passive and active health, and the Prometheus metrics.
//
// It is not a general L7 proxy: it never looks inside the bytes it relays,
// except for an optional PROXY protocol header at the start of a client
// connection. Name resolution itself lives in package resolve.
package l4
