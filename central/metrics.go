package central

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Reasons an edge connection is refused or cut off, the label values of
// vigil_central_edge_rejected_total.
const (
	rejectUnauthorized = "unauthorized"  // no or unknown bearer token
	rejectHello        = "bad_hello"     // first frame not a matching hello
	rejectFrame        = "bad_frame"     // malformed, oversized or wrong version
	rejectAlert        = "invalid_alert" // alert failed validation
	rejectEdgeMismatch = "edge_mismatch" // alert claims another edge or site
)

// metrics are one Server's Prometheus collectors, registered in its own
// registry so two servers in one process (tests, the demo) never collide.
type metrics struct {
	reg *prometheus.Registry

	alertsReceived    prometheus.Counter
	alertsDuplicate   prometheus.Counter
	edgesConnected    prometheus.Gauge
	consolesConnected prometheus.Gauge
	consoleDropped    prometheus.Counter
	edgeRejected      *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		alertsReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_central_alerts_received_total",
			Help: "Valid alert frames received from edges, re-sent duplicates included.",
		}),
		alertsDuplicate: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_central_alerts_duplicate_total",
			Help: "Alert frames whose ID was already stored (acknowledged again, not fanned out).",
		}),
		edgesConnected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_central_edges_connected",
			Help: "Edges with an authenticated websocket open now.",
		}),
		consolesConnected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_central_consoles_connected",
			Help: "Console websockets open now.",
		}),
		consoleDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_central_console_dropped_total",
			Help: "Consoles disconnected because they could not keep up with live alerts.",
		}),
		edgeRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_central_edge_rejected_total",
			Help: "Edge connections refused or closed for a protocol or auth problem, by reason.",
		}, []string{"reason"}),
	}
	// Pre-create every reason so dashboards see zeros instead of no series.
	for _, r := range []string{rejectUnauthorized, rejectHello, rejectFrame, rejectAlert, rejectEdgeMismatch} {
		m.edgeRejected.WithLabelValues(r)
	}
	m.reg.MustRegister(
		m.alertsReceived, m.alertsDuplicate, m.edgesConnected,
		m.consolesConnected, m.consoleDropped, m.edgeRejected,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}
