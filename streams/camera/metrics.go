package camera

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Counts is a camera's counters at one moment. They are the one source for
// both /metrics (Metrics exports them) and the self-test (which compares
// two Counts over its window), so the two can never disagree.
type Counts struct {
	FramesIn, BytesIn, Analysed, Dropped, DecodeErrors uint64
	// Damaged counts pictures the decoder concealed errors in (analysed
	// all the same); Skipped counts units that yielded no picture.
	Damaged, Skipped, Reconnects, PacketsLost uint64
	LastFrame                                 time.Time // UTC time of the newest unit (zero: none yet)
}

// Sub is the increase from prev to c (counters only).
func (c Counts) Sub(prev Counts) Counts {
	return Counts{
		FramesIn: c.FramesIn - prev.FramesIn, BytesIn: c.BytesIn - prev.BytesIn, Analysed: c.Analysed - prev.Analysed,
		Dropped: c.Dropped - prev.Dropped, DecodeErrors: c.DecodeErrors - prev.DecodeErrors, Damaged: c.Damaged - prev.Damaged,
		Skipped: c.Skipped - prev.Skipped, Reconnects: c.Reconnects - prev.Reconnects, PacketsLost: c.PacketsLost - prev.PacketsLost,
		LastFrame: c.LastFrame,
	}
}

// counters is one camera's live counters, written by its goroutines with
// atomics (no label lookups on the per-frame path).
type counters struct {
	framesIn, bytesIn, analysed, dropped, decodeErrors atomic.Uint64
	damaged, skipped, reconnects, packetsLost          atomic.Uint64
	lastFrame                                          atomic.Int64 // Unix ns, 0: none
}

func (k *counters) snapshot() Counts {
	c := Counts{
		FramesIn: k.framesIn.Load(), BytesIn: k.bytesIn.Load(), Analysed: k.analysed.Load(), Dropped: k.dropped.Load(),
		DecodeErrors: k.decodeErrors.Load(), Damaged: k.damaged.Load(), Skipped: k.skipped.Load(),
		Reconnects: k.reconnects.Load(), PacketsLost: k.packetsLost.Load(),
	}
	if ns := k.lastFrame.Load(); ns != 0 {
		c.LastFrame = time.Unix(0, ns).UTC()
	}
	return c
}

// metricDesc is one exported family: its name, help and how to read it.
type metricDesc struct {
	desc  *prometheus.Desc
	gauge bool
	value func(Counts) float64
}

func family(name, help string, gauge bool, value func(Counts) float64) metricDesc {
	return metricDesc{desc: prometheus.NewDesc("vigil_camera_"+name, help, []string{"camera"}, nil), gauge: gauge, value: value}
}

var families = []metricDesc{
	family("frames_in_total", "Access units received from the camera.", false, func(c Counts) float64 { return float64(c.FramesIn) }),
	family("bytes_in_total", "Video payload bytes received (rate = bitrate).", false, func(c Counts) float64 { return float64(c.BytesIn) }),
	family("frames_analysed_total", "Frames run through motion analysis.", false, func(c Counts) float64 { return float64(c.Analysed) }),
	family("frames_dropped_total", "Access units the analyser skipped because it fell behind.", false, func(c Counts) float64 { return float64(c.Dropped) }),
	family("decode_errors_total", "Access units that failed to decode.", false, func(c Counts) float64 { return float64(c.DecodeErrors) }),
	family("frames_damaged_total", "Pictures decoded with errors the decoder concealed; analysed all the same.", false, func(c Counts) float64 { return float64(c.Damaged) }),
	family("frames_skipped_total", "Access units that yielded no picture to analyse (undecodable).", false, func(c Counts) float64 { return float64(c.Skipped) }),
	family("reconnects_total", "Sessions that ended and were retried.", false, func(c Counts) float64 { return float64(c.Reconnects) }),
	family("rtp_packets_lost_total", "RTP packets of the main stream lost on the way (sequence gaps).", false, func(c Counts) float64 { return float64(c.PacketsLost) }),
	family("last_frame_timestamp_seconds", "UTC time of the newest access unit (Unix seconds).", true, func(c Counts) float64 {
		if c.LastFrame.IsZero() {
			return 0
		}
		return float64(c.LastFrame.UnixNano()) / 1e9
	}),
}

// Metrics exports the counters of every camera made with it, as
// vigil_camera_* families labelled by camera; every counter is exported
// (at 0) from the moment its camera is made, so increase() rules see the
// first event.
type Metrics struct {
	mu   sync.Mutex
	ids  []string // in the order the cameras were made
	cams map[string]*counters
}

// NewMetrics makes the exporter and registers it in reg (if not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{cams: map[string]*counters{}}
	if reg != nil {
		reg.MustRegister(m)
	}
	return m
}

// counters returns camera id's counters, made on first use (a camera made
// again with the same ID carries on counting).
func (m *Metrics) counters(id string) *counters {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.cams[id]
	if !ok {
		k = &counters{}
		m.cams[id] = k
		m.ids = append(m.ids, id)
	}
	return k
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range families {
		ch <- f.desc
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	ids := append([]string(nil), m.ids...)
	snaps := make([]Counts, len(ids))
	for i, id := range ids {
		snaps[i] = m.cams[id].snapshot()
	}
	m.mu.Unlock()
	for _, f := range families {
		typ := prometheus.CounterValue
		if f.gauge {
			typ = prometheus.GaugeValue
		}
		for i, id := range ids {
			ch <- prometheus.MustNewConstMetric(f.desc, typ, f.value(snaps[i]), id)
		}
	}
}
