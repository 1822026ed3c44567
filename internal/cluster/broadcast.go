package cluster

import (
	"github.com/hashicorp/memberlist"
)

// broadcast is one gossip message in the queue: a chunk of a node's record
// or a keyring change. A newer record of the same node invalidates the
// queued chunks of older ones, and a newer keyring older keyrings, so the
// queue holds at most one generation of each.
type broadcast struct {
	msg   []byte
	kind  byte
	node  string
	inc   uint64
	ver   uint64 // the keyring epoch for kindKeyring
	index int
}

var _ memberlist.Broadcast = (*broadcast)(nil)

// Invalidates implements memberlist.Broadcast.
func (b *broadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(*broadcast)
	if !ok || o.kind != b.kind || o.node != b.node {
		return false
	}
	if b.kind == kindKeyring {
		return o.ver <= b.ver
	}
	if o.inc != b.inc || o.ver != b.ver {
		return (&record{inc: b.inc, ver: b.ver}).newer(&record{inc: o.inc, ver: o.ver})
	}
	return o.index == b.index
}

// Message implements memberlist.Broadcast.
func (b *broadcast) Message() []byte { return b.msg }

// Finished implements memberlist.Broadcast.
func (b *broadcast) Finished() {}

func chunkBroadcast(msg []byte, c *chunk) *broadcast {
	return &broadcast{
		msg:   msg,
		kind:  kindChunk,
		node:  c.node,
		inc:   c.inc,
		ver:   c.ver,
		index: c.index,
	}
}
