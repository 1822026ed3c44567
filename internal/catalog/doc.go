// Package catalog holds what the cluster knows about networks, services and
// tasks, and hands readers immutable snapshots of it.
//
// Writers are task sources (the task file watcher, the Docker engine) and
// the gossip layer. Each writes whole parts: a part is everything one source
// on one node says, and putting a part replaces what that source said
// before. The catalog merges all parts into a Snapshot and swaps it in
// atomically, so readers never take a lock and never see half an update.
//
// The package does not answer DNS and does not talk to the network; the
// swarm plugin builds its answers from snapshots, and the cluster package
// moves parts between nodes.
package catalog
