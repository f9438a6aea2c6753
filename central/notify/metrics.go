package notify

import "github.com/prometheus/client_golang/prometheus"

// Metric descriptions. Every series exists from New on, at 0, so a
// dashboard or alert rule sees a sink that never failed.
var (
	sentDesc = prometheus.NewDesc("vigil_notify_sent_total",
		"Events a receiver acknowledged (MQTT PUBACK, webhook 2xx with errcode 0).", []string{"sink"}, nil)
	failedDesc = prometheus.NewDesc("vigil_notify_failed_attempts_total",
		"Delivery attempts that failed (each retry counts).", []string{"sink"}, nil)
	droppedDesc = prometheus.NewDesc("vigil_notify_dropped_total",
		"Events given up: queue_full (oldest non-red dropped), rejected (permanent 4xx), shutdown (queued at close).", []string{"sink", "reason"}, nil)
	depthDesc = prometheus.NewDesc("vigil_notify_queue_depth",
		"Events waiting for the sink, the one in flight included.", []string{"sink"}, nil)
)

// Describe implements prometheus.Collector: register the notifier with
// central's registry (reg.MustRegister(n)).
func (n *Notifier) Describe(ch chan<- *prometheus.Desc) {
	ch <- sentDesc
	ch <- failedDesc
	ch <- droppedDesc
	ch <- depthDesc
}

// Collect implements prometheus.Collector.
func (n *Notifier) Collect(ch chan<- prometheus.Metric) {
	for _, s := range n.sinks {
		ch <- prometheus.MustNewConstMetric(sentDesc, prometheus.CounterValue, float64(s.sent.Load()), s.name)
		ch <- prometheus.MustNewConstMetric(failedDesc, prometheus.CounterValue, float64(s.failed.Load()), s.name)
		for _, r := range dropReasons {
			ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(s.dropped[r].Load()), s.name, r)
		}
		ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(s.q.len()), s.name)
	}
}

// Stats is one sink's counters, for tests and the status page.
type Stats struct {
	Sent, FailedAttempts uint64
	Dropped              map[string]uint64 // by reason
	Queued               int
}

// Stats returns the counters of the sink named name (as in Sinks).
func (n *Notifier) Stats(name string) (Stats, bool) {
	for _, s := range n.sinks {
		if s.name != name {
			continue
		}
		st := Stats{Sent: s.sent.Load(), FailedAttempts: s.failed.Load(), Dropped: map[string]uint64{}, Queued: s.q.len()}
		for _, r := range dropReasons {
			st.Dropped[r] = s.dropped[r].Load()
		}
		return st, true
	}
	return Stats{}, false
}
