package l4

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds lb's Prometheus metrics in a registry of their own. Build
// one with NewMetrics; its methods are safe for concurrent use.
type Metrics struct {
	// Registry holds every lb metric plus the Go and process collectors.
	Registry *prometheus.Registry

	connsTotal   *prometheus.CounterVec
	connsActive  *prometheus.GaugeVec
	connDuration *prometheus.HistogramVec
	refused      *prometheus.CounterVec
	upConns      *prometheus.CounterVec
	sentBytes    *prometheus.CounterVec
	recvBytes    *prometheus.CounterVec
	connectFails *prometheus.CounterVec
	resolutions  *prometheus.CounterVec
	reloads      *prometheus.CounterVec
	sessTotal    *prometheus.CounterVec
	sessActive   *prometheus.GaugeVec
	state        *stateCollector
}

// Reasons a listener refuses a client, the values of label "reason".
const (
	reasonMaxConns    = "max_conns"
	reasonNoUpstream  = "no_upstream"
	reasonMaxSessions = "max_sessions"
	reasonProxyHeader = "proxy_header"
	reasonDraining    = "draining"
)

// NewMetrics builds the metrics and registers them in a new registry.
func NewMetrics() *Metrics {
	const ns = "lb"
	counter := func(sub, name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns,
			Subsystem: sub,
			Name:      name,
			Help:      help,
		}, labels)
	}
	gauge := func(sub, name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns,
			Subsystem: sub,
			Name:      name,
			Help:      help,
		}, labels)
	}
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		connsTotal: counter("listener", "connections_total",
			"TCP connections accepted, refused ones included.", "listener"),
		connsActive: gauge("listener", "connections_active",
			"TCP connections open now.", "listener"),
		connDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns,
			Subsystem: "listener",
			Name:      "connection_duration_seconds",
			Help:      "Lifetime of relayed TCP connections.",
			Buckets:   prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"listener"}),
		refused: counter("listener", "refused_total",
			"Clients closed at once, by reason.", "listener", "reason"),
		upConns: counter("upstream", "connections_total",
			"Connections and UDP sessions opened to an upstream.", "listener", "upstream"),
		sentBytes: counter("upstream", "sent_bytes_total",
			"Bytes relayed from clients to an upstream.", "listener", "upstream"),
		recvBytes: counter("upstream", "received_bytes_total",
			"Bytes relayed from an upstream to clients.", "listener", "upstream"),
		connectFails: counter("upstream", "connect_failures_total",
			"Failed connects to an upstream, and UDP sessions it refused.",
			"listener", "upstream"),
		resolutions: counter("resolver", "resolutions_total",
			"Upstream lookups by result: ok, empty, nxdomain or error.",
			"listener", "target", "result"),
		reloads: counter("", "reloads_total",
			"Config loads by result: ok or error.", "result"),
		sessTotal: counter("udp", "sessions_total",
			"UDP sessions opened.", "listener"),
		sessActive: gauge("udp", "sessions_active",
			"UDP sessions open now.", "listener"),
		state: newStateCollector(),
	}
	m.Registry.MustRegister(
		m.connsTotal, m.connsActive, m.connDuration, m.refused,
		m.upConns, m.sentBytes, m.recvBytes, m.connectFails,
		m.resolutions, m.reloads, m.sessTotal, m.sessActive, m.state,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Reload counts one config load with result "ok" or "error".
func (m *Metrics) Reload(result string) { m.reloads.WithLabelValues(result).Inc() }

// listenerMetrics caches one listener's metric children so the data path
// does no label lookups.
type listenerMetrics struct {
	conns       prometheus.Counter
	active      prometheus.Gauge
	duration    prometheus.Observer
	sessions    prometheus.Counter
	sessActive  prometheus.Gauge
	maxConns    prometheus.Counter
	noUpstream  prometheus.Counter
	maxSessions prometheus.Counter
	proxyHeader prometheus.Counter
	draining    prometheus.Counter
}

func (m *Metrics) forListener(key string) *listenerMetrics {
	return &listenerMetrics{
		conns:       m.connsTotal.WithLabelValues(key),
		active:      m.connsActive.WithLabelValues(key),
		duration:    m.connDuration.WithLabelValues(key),
		sessions:    m.sessTotal.WithLabelValues(key),
		sessActive:  m.sessActive.WithLabelValues(key),
		maxConns:    m.refused.WithLabelValues(key, reasonMaxConns),
		noUpstream:  m.refused.WithLabelValues(key, reasonNoUpstream),
		maxSessions: m.refused.WithLabelValues(key, reasonMaxSessions),
		proxyHeader: m.refused.WithLabelValues(key, reasonProxyHeader),
		draining:    m.refused.WithLabelValues(key, reasonDraining),
	}
}

// upstreamMetrics caches one upstream's metric children.
type upstreamMetrics struct {
	conns prometheus.Counter
	sent  prometheus.Counter
	recv  prometheus.Counter
	fails prometheus.Counter
}

// TODO: counter series of upstreams that left DNS are never deleted, so a
// long-lived lb whose services churn through many task addresses grows its
// /metrics output without bound.
func (m *Metrics) forUpstream(listener, upstream string) *upstreamMetrics {
	return &upstreamMetrics{
		conns: m.upConns.WithLabelValues(listener, upstream),
		sent:  m.sentBytes.WithLabelValues(listener, upstream),
		recv:  m.recvBytes.WithLabelValues(listener, upstream),
		fails: m.connectFails.WithLabelValues(listener, upstream),
	}
}

// forgetListener drops the gauge series of a listener that is gone.
func (m *Metrics) forgetListener(key string) {
	m.connsActive.DeleteLabelValues(key)
	m.sessActive.DeleteLabelValues(key)
}
