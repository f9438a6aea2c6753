package clips

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the store's Prometheus collectors.
type metrics struct {
	in, written, dropped     *prometheus.CounterVec
	evicted                  *prometheus.CounterVec
	bytes, pinned, oldest    *prometheus.GaugeVec
	condition                *prometheus.GaugeVec
	diskFree, diskUsed, rssF prometheus.Gauge
	flush, sync, drop        prometheus.Histogram
	all                      []prometheus.Collector
}

func newMetrics() *metrics {
	cam := []string{"camera"}
	m := &metrics{
		in:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_clips_access_units_total", Help: "Access units handed to the clip store."}, cam),
		written:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_clips_written_bytes_total", Help: "Video bytes committed to the clip store."}, cam),
		dropped:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_clips_dropped_total", Help: "Access units not recorded, by reason (no_keyframe, queue_full, disk_full, write_error)."}, []string{"camera", "reason"}),
		evicted:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_clips_evicted_bytes_total", Help: "Video bytes evicted by retention, by reason (bytes, age, disk)."}, []string{"camera", "reason"}),
		bytes:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vigil_clips_bytes", Help: "Video bytes stored per camera, pinned included."}, cam),
		pinned:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vigil_clips_pinned_bytes", Help: "Video bytes held by pins per camera."}, cam),
		oldest:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vigil_clips_oldest_timestamp_seconds", Help: "Start of the oldest stored video per camera (Unix seconds)."}, cam),
		condition: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vigil_clips_condition", Help: "1 while a system condition is raised (disk_full, pins_full, write_error)."}, []string{"kind"}),
		diskFree:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigil_clips_disk_free_bytes", Help: "Free space on the clip store's file system."}),
		diskUsed:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigil_clips_disk_used_bytes", Help: "Space the clip store occupies: its segments and its index."}),
		rssF:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigil_clips_resident_file_bytes", Help: "File-backed resident memory of the process after the last page-out of the index's mapped files."}),
		flush:     prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vigil_clips_commit_seconds", Help: "Duration of one flush commit.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		sync:      prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vigil_clips_sync_seconds", Help: "Duration of one flush's fdatasync of the segments it wrote.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		drop:      prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vigil_clips_evict_seconds", Help: "Duration of one eviction (segments deleted, index dropped).", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
	}
	m.all = []prometheus.Collector{m.in, m.written, m.dropped, m.evicted, m.bytes, m.pinned, m.oldest,
		m.condition, m.diskFree, m.diskUsed, m.rssF, m.flush, m.sync, m.drop}
	return m
}

func (m *metrics) register(r prometheus.Registerer) error {
	for i, c := range m.all {
		if err := r.Register(c); err != nil {
			for _, done := range m.all[:i] {
				r.Unregister(done)
			}
			return err
		}
	}
	return nil
}

func (m *metrics) unregister(r prometheus.Registerer) {
	for _, c := range m.all {
		r.Unregister(c)
	}
}

func (m *metrics) camera(name string) camMetrics {
	cm := camMetrics{
		in:      m.in.WithLabelValues(name),
		written: m.written.WithLabelValues(name),
		dropped: map[string]prometheus.Counter{},
	}
	for _, r := range []string{dropNoKeyframe, dropQueueFull, dropDiskFull, dropWriteError} {
		cm.dropped[r] = m.dropped.WithLabelValues(name, r)
	}
	for _, r := range []string{evictBytes, evictAge, evictDisk, evictResume} {
		m.evicted.WithLabelValues(name, r).Add(0) // exported at 0 before the first eviction
	}
	return cm
}
