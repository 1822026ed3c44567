package l4

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// stateCollector reports upstream state computed at scrape time from the
// live pools, so an upstream that leaves DNS leaves no stale gauge.
type stateCollector struct {
	up       *prometheus.Desc
	active   *prometheus.Desc
	upstream *prometheus.Desc

	mu    sync.Mutex
	pools map[string]*pool // by listener key
}

func newStateCollector() *stateCollector {
	return &stateCollector{
		up: prometheus.NewDesc("lb_upstream_up",
			"1 when the upstream takes new connections, 0 while it is marked down.",
			[]string{"listener", "upstream"}, nil),
		active: prometheus.NewDesc("lb_upstream_connections_active",
			"Connections and UDP sessions open to the upstream now.",
			[]string{"listener", "upstream"}, nil),
		upstream: prometheus.NewDesc("lb_listener_upstreams",
			"Upstreams of the listener by state: up or down.",
			[]string{"listener", "state"}, nil),
		pools: map[string]*pool{},
	}
}

// set makes p the pool reported for listener; nil removes it.
func (c *stateCollector) set(listener string, p *pool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p == nil {
		delete(c.pools, listener)
		return
	}
	c.pools[listener] = p
}

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.active
	ch <- c.upstream
}

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now().UnixNano()
	for key, p := range c.pools {
		var up, down float64
		for _, ep := range p.snapshot() {
			v := 0.0
			if ep.usable(now) {
				v = 1
				up++
			} else {
				down++
			}
			ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, v, key, ep.name)
			ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue,
				float64(ep.active.Load()), key, ep.name)
		}
		ch <- prometheus.MustNewConstMetric(c.upstream, prometheus.GaugeValue, up, key, "up")
		ch <- prometheus.MustNewConstMetric(c.upstream, prometheus.GaugeValue, down, key, "down")
	}
}
