package central

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Reasons an edge connection is refused or cut off, the label values of
// vigil_central_edge_rejected_total.
const (
	rejectUnauthorized = "unauthorized"  // unknown edge, bad token or bad hello signature
	rejectRevoked      = "revoked"       // a revoked edge tried, or was cut off
	rejectHello        = "bad_hello"     // first frame not a matching hello
	rejectFrame        = "bad_frame"     // malformed, oversized or wrong version
	rejectAlert        = "invalid_alert" // alert, update or batch failed validation
	rejectEdgeMismatch = "edge_mismatch" // item claims another edge or site
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
	enrolments        *prometheus.CounterVec
	commitSeconds     prometheus.Histogram
	batchSize         prometheus.Histogram
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
		enrolments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_central_enrolments_total",
			Help: "Enrolment attempts by result (ok, refused).",
		}, []string{"result"}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vigil_central_commit_seconds",
			Help:    "Time to commit one batch of alerts, updates and actions (one fsync).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vigil_central_commit_batch_size",
			Help:    "Items committed together.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
	}
	// Pre-create every label so dashboards see zeros instead of no series.
	for _, r := range []string{rejectUnauthorized, rejectRevoked, rejectHello, rejectFrame, rejectAlert, rejectEdgeMismatch} {
		m.edgeRejected.WithLabelValues(r)
	}
	m.enrolments.WithLabelValues("ok")
	m.enrolments.WithLabelValues("refused")
	m.reg.MustRegister(
		m.alertsReceived, m.alertsDuplicate, m.edgesConnected,
		m.consolesConnected, m.consoleDropped, m.edgeRejected, m.enrolments,
		m.commitSeconds, m.batchSize,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}
