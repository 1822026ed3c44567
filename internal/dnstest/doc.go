// Package dnstest runs a small authoritative DNS server on loopback for
// tests of code that follows upstreams through DNS.
//
// Records are held in memory and may be changed while the server runs;
// every answer carries the TTL the test set, so a client that honours TTLs
// sees changes on schedule. Swarm is a layer on top that answers the names
// the swarm CoreDNS plugin answers (tasks.<service>.<zone>, the per-node
// names of host mode and SRV records), so tests speak in services and
// tasks and can later run against the real server instead.
//
// It is not a DNS server for production: no zones, no wildcards, no
// DNSSEC, and only the record types tests set.
package dnstest
