package cluster

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The metrics are registered once per process with the default registerer,
// which CoreDNS's prometheus plugin serves.
//
// TODO: the members and queue-depth gauges are per process; with several
// clusters in one process (tests, benchmarks) they show whichever set them
// last, and the counters add up all of them.
var (
	membersGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "dnsd",
		Subsystem: "cluster",
		Name:      "members",
		Help:      "Nodes this node knows of, by state: alive or failed.",
	}, []string{"state"})

	messagesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "dnsd",
		Subsystem: "cluster",
		Name:      "gossip_messages_total",
		Help:      "Gossip packets (udp) and streams (tcp) sent and received.",
	}, []string{"direction", "transport"})

	bytesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "dnsd",
		Subsystem: "cluster",
		Name:      "gossip_bytes_total",
		Help:      "Gossip bytes sent and received, encrypted, by transport.",
	}, []string{"direction", "transport"})

	queueDepth = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "dnsd",
		Subsystem: "cluster",
		Name:      "broadcast_queue_depth",
		Help:      "Broadcasts waiting to be gossiped.",
	})

	broadcastsPruned = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "dnsd",
		Subsystem: "cluster",
		Name:      "broadcasts_pruned_total",
		Help:      "Broadcasts dropped because the queue was full; push/pull repairs them.",
	})

	droppedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "dnsd",
		Subsystem: "cluster",
		Name:      "packets_dropped_total",
		Help: "Gossip packets and streams dropped, by reason: unlabeled, " +
			"foreign_label, decrypt, malformed, stream.",
	}, []string{"reason"})

	mergesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "dnsd",
		Subsystem: "cluster",
		Name:      "merges_total",
		Help: "Node records received, by path (broadcast, pushpull) and result " +
			"(applied, stale, invalid).",
	}, []string{"path", "result"})
)

// Reasons a packet is dropped, as the packets_dropped_total label.
const (
	dropUnlabeled = "unlabeled"
	dropLabel     = "foreign_label"
	dropDecrypt   = "decrypt"
	dropMalformed = "malformed"
	dropStream    = "stream"
)
