package swarm

import (
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the plugin, served by CoreDNS's prometheus plugin from the
// default registry.
var (
	answersTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "dnsd",
		Subsystem: "swarm",
		Name:      "answers_total",
		Help:      "Answers given by the swarm plugin, by query type and rcode.",
	}, []string{"qtype", "rcode"})

	catalogSize = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "dnsd",
		Subsystem: "swarm",
		Name:      "catalog_objects",
		Help:      "Objects in the catalog the answers are built from, by kind.",
	}, []string{"kind"})

	tableBuildSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Namespace: "dnsd",
		Subsystem: "swarm",
		Name:      "table_build_duration_seconds",
		Help:      "Time taken to pack the answer table after a catalog change.",
		Buckets:   prometheus.ExponentialBuckets(0.0001, 4, 9),
	})
)

// counted query types; others share the label "other".
var countedTypes = [...]uint16{
	dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypePTR, dns.TypeSOA, dns.TypeNS, dns.TypeANY,
}

// answerCounters caches the counters so that a query costs an atomic add,
// not a label lookup: [type index][0 NOERROR, 1 NXDOMAIN].
var answerCounters = func() (c [len(countedTypes) + 1][2]prometheus.Counter) {
	for i := range c {
		qtype := "other"
		if i < len(countedTypes) {
			qtype = dns.TypeToString[countedTypes[i]]
		}
		c[i][0] = answersTotal.WithLabelValues(qtype, "NOERROR")
		c[i][1] = answersTotal.WithLabelValues(qtype, "NXDOMAIN")
	}
	return c
}()

func countAnswer(qtype uint16, rcode int) {
	i := len(countedTypes)
	for j, t := range countedTypes {
		if t == qtype {
			i = j
			break
		}
	}
	j := 0
	if rcode == dns.RcodeNameError {
		j = 1
	}
	answerCounters[i][j].Inc()
}

func recordCatalog(t *table) {
	catalogSize.WithLabelValues("services").Set(float64(t.services))
	catalogSize.WithLabelValues("tasks").Set(float64(t.tasks))
	catalogSize.WithLabelValues("networks").Set(float64(len(t.nets)))
	catalogSize.WithLabelValues("nodes").Set(float64(t.nodes))
}
