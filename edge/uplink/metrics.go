package uplink

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/edge/outbox"
)

// metrics are the uplink's counters, and gauges of the outbox it drains.
type metrics struct {
	sent       prometheus.Counter
	acked      prometheus.Counter
	reconnects prometheus.Counter
	requests   *prometheus.CounterVec
}

func newMetrics() metrics {
	return metrics{
		sent:       prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_uplink_items_sent_total", Help: "Outbox items sent to central (re-sends included)."}),
		acked:      prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_uplink_items_acked_total", Help: "Outbox items central acknowledged."}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_uplink_reconnects_total", Help: "Connections to central that ended and were retried."}),
		requests:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_uplink_requests_total", Help: "Requests from central, by method."}, []string{"method"}),
	}
}

// register registers the counters, whether a session is up, and the
// outbox's backlog and drops.
func (m *metrics) register(reg prometheus.Registerer, box *outbox.Outbox, connected func() bool) {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	dropped := func(sev string, f func(outbox.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vigil_outbox_dropped_total",
			Help:        "Outbox items discarded by its byte bound (green first, then yellow; red never), by severity.",
			ConstLabels: prometheus.Labels{"severity": sev}}, func() float64 { return float64(f(box.Stats())) })
	}
	reg.MustRegister(m.sent, m.acked, m.reconnects, m.requests,
		gauge("vigil_uplink_connected", "1 while connected to central.", func() float64 {
			if connected() {
				return 1
			}
			return 0
		}),
		gauge("vigil_outbox_pending", "Items stored on the edge and not yet acknowledged by central.", func() float64 { return float64(box.Stats().Pending) }),
		gauge("vigil_outbox_bytes", "Bytes the outbox holds.", func() float64 { return float64(box.Stats().Bytes) }),
		gauge("vigil_outbox_max_bytes", "The outbox's byte bound.", func() float64 { return float64(box.Stats().MaxBytes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vigil_outbox_overflow_total",
			Help: "Red alerts stored although the outbox was at its bound."}, func() float64 { return float64(box.Stats().Overflow) }),
		dropped("green", func(s outbox.Stats) uint64 { return s.DroppedGreen }),
		dropped("yellow", func(s outbox.Stats) uint64 { return s.DroppedYellow }),
	)
}
