// Package api is dnsd's local HTTP API and the views it serves: the nodes,
// services, tasks and networks of the catalog as `dnsd node ls` and its
// siblings show them, as JSON and as aligned tables.
//
// The API listens on loopback or a unix socket only, unless the operator
// asks for another address explicitly. It has no authentication: whoever
// reaches it may read the catalog, which is why it stays local. The one
// call that changes anything, the join-token rotation, takes the current
// token as proof.
//
// The package does not gossip and does not answer DNS.
package api
