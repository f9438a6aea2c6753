package central

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vigil-perimeter/vigil/internal/kv"
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
	disk              *diskCollector
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
	m.disk = newDiskCollector()
	// Pre-create every label so dashboards see zeros instead of no series.
	for _, r := range []string{rejectUnauthorized, rejectRevoked, rejectHello, rejectFrame, rejectAlert, rejectEdgeMismatch} {
		m.edgeRejected.WithLabelValues(r)
	}
	m.enrolments.WithLabelValues("ok")
	m.enrolments.WithLabelValues("refused")
	m.reg.MustRegister(
		m.alertsReceived, m.alertsDuplicate, m.edgesConnected,
		m.consolesConnected, m.consoleDropped, m.edgeRejected, m.enrolments,
		m.commitSeconds, m.batchSize, m.disk,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// diskCollector exports the store's free-space floor, read at scrape
// time from its owner (the floor) rather than copied: writes refused
// because the disk is below the floor, and the free bytes. Both read 0
// until watchDisk names the source.
type diskCollector struct {
	src     atomic.Pointer[func() (kv.FloorState, error)]
	refused *prometheus.Desc
	free    *prometheus.Desc
	full    *prometheus.Desc
}

func newDiskCollector() *diskCollector {
	return &diskCollector{
		refused: prometheus.NewDesc("vigil_central_disk_refused_total",
			"Writes to central's store refused because its disk is below the free-space floor (console actions, sessions, audit entries; edge items use the reserve).", nil, nil),
		free: prometheus.NewDesc("vigil_central_disk_free_bytes",
			"Free bytes on the disk of central's store.", nil, nil),
		full: prometheus.NewDesc("vigil_central_disk_below_floor",
			"1 while central's store is below its free-space floor (only edge items are stored, from the reserve).", nil, nil),
	}
}

// watchDisk makes the disk metrics read src (Store.Disk).
func (m *metrics) watchDisk(src func() (kv.FloorState, error)) { m.disk.src.Store(&src) }

func (c *diskCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.refused
	ch <- c.free
	ch <- c.full
}

func (c *diskCollector) Collect(ch chan<- prometheus.Metric) {
	var st kv.FloorState
	if src := c.src.Load(); src != nil {
		st, _ = (*src)() // on a statfs error the zero state says "unknown"
	}
	full := 0.0
	if st.Full {
		full = 1
	}
	ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(st.Refused))
	ch <- prometheus.MustNewConstMetric(c.free, prometheus.GaugeValue, float64(st.Free))
	ch <- prometheus.MustNewConstMetric(c.full, prometheus.GaugeValue, full)
}
