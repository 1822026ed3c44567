// Package cluster joins dnsd nodes into one cluster and keeps every node's
// catalog equal to the merge of all live nodes' tasks.
//
// Membership and failure detection come from hashicorp/memberlist (SWIM
// with Lifeguard). On top of it the package gossips each node's own parts
// of the catalog: a node publishes what its task sources put under its own
// name, versioned as one record per node and incarnation, and every other
// node puts that record into its catalog under the publisher's name while
// memberlist holds the publisher alive. Changes spread as broadcasts, cut
// into chunks that fit one UDP packet; the full set of records is swapped
// in memberlist's periodic push/pull, which repairs whatever a broadcast
// missed.
//
// Gossip is always encrypted and labelled: the join token (see Token)
// carries the cluster's label and its AES key, and packets that are
// unlabelled, foreign or fail to decrypt are dropped and counted.
//
// The package does not read task files, answer DNS or serve the HTTP API;
// it only moves catalog parts between nodes and reports who is in the
// cluster.
package cluster
