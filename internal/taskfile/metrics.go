package taskfile

import (
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// The watcher's metrics. They are shared by every Watcher of the process
// and registered with the default registerer when the first one is made.
var (
	loadsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "dnsd",
		Subsystem: "taskfile",
		Name:      "loads_total",
		Help:      "Task file loads by result: ok (put into the catalog) or rejected.",
	}, []string{"result"})

	filesGauge = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "dnsd",
		Subsystem: "taskfile",
		Name:      "files",
		Help:      "Task files whose state the catalog holds.",
	})

	rejectedGauge = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "dnsd",
		Subsystem: "taskfile",
		Name:      "rejected_files",
		Help:      "Task files whose current content is rejected.",
	})

	lastReload = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "dnsd",
		Subsystem: "taskfile",
		Name:      "last_reload_timestamp_seconds",
		Help:      "When a task file was last put into or removed from the catalog.",
	})

	registerOnce sync.Once
	registerErr  error
)

// registerMetrics registers the metrics once per process. A collector
// registered already (by an earlier copy of the same metric) is left as
// it is; any other failure is returned, on every call.
func registerMetrics() error {
	registerOnce.Do(func() {
		for _, c := range []prometheus.Collector{loadsTotal, filesGauge, rejectedGauge,
			lastReload} {
			err := prometheus.DefaultRegisterer.Register(c)
			var are prometheus.AlreadyRegisteredError
			if err != nil && !errors.As(err, &are) {
				registerErr = fmt.Errorf("registering task file metrics: %w", err)
				return
			}
		}
		// show both results before the first load
		loadsTotal.WithLabelValues(resultOK)
		loadsTotal.WithLabelValues(resultRejected)
	})
	return registerErr
}

// The values of the result label of loads_total.
const (
	resultOK       = "ok"
	resultRejected = "rejected"
)
