package camera

import "github.com/prometheus/client_golang/prometheus"

// Metrics are per-camera counters, labelled by camera ID. One Metrics is
// shared by all cameras of a node and registered in the node's registry.
type Metrics struct {
	FramesIn     *prometheus.CounterVec
	BytesIn      *prometheus.CounterVec
	Analysed     *prometheus.CounterVec
	Dropped      *prometheus.CounterVec
	DecodeErrors *prometheus.CounterVec
	// Damaged counts pictures the decoder concealed errors in (analysed
	// all the same); Skipped counts units that yielded no picture.
	Damaged     *prometheus.CounterVec
	Skipped     *prometheus.CounterVec
	Reconnects  *prometheus.CounterVec
	PacketsLost *prometheus.CounterVec
	// LastFrame is the UTC time of the newest unit; its age is
	// time() - vigil_camera_last_frame_timestamp_seconds.
	LastFrame *prometheus.GaugeVec
}

// NewMetrics creates the counters and registers them in reg (if not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	vec := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "camera", Name: name, Help: help}, []string{"camera"})
	}
	m := &Metrics{
		FramesIn:     vec("frames_in_total", "Access units received from the camera."),
		BytesIn:      vec("bytes_in_total", "Video payload bytes received (rate = bitrate)."),
		Analysed:     vec("frames_analysed_total", "Frames run through motion analysis."),
		Dropped:      vec("frames_dropped_total", "Access units the analyser skipped because it fell behind."),
		DecodeErrors: vec("decode_errors_total", "Access units that failed to decode."),
		Damaged:      vec("frames_damaged_total", "Pictures decoded with errors the decoder concealed; analysed all the same."),
		Skipped:      vec("frames_skipped_total", "Access units that yielded no picture to analyse (undecodable)."),
		Reconnects:   vec("reconnects_total", "Sessions that ended and were retried."),
		PacketsLost:  vec("rtp_packets_lost_total", "RTP packets of the main stream lost on the way (sequence gaps)."),
		LastFrame: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "vigil", Subsystem: "camera", Name: "last_frame_timestamp_seconds",
			Help: "UTC time of the newest access unit (Unix seconds)."}, []string{"camera"}),
	}
	if reg != nil {
		reg.MustRegister(m.FramesIn, m.BytesIn, m.Analysed, m.Dropped, m.DecodeErrors, m.Damaged, m.Skipped, m.Reconnects, m.PacketsLost, m.LastFrame)
	}
	return m
}

// Declare exports every counter of a camera at 0 before its first event,
// so that alert rules on increase() see the first one. New calls it for
// each camera.
func (m *Metrics) Declare(camera string) {
	for _, v := range []*prometheus.CounterVec{m.FramesIn, m.BytesIn, m.Analysed, m.Dropped, m.DecodeErrors, m.Damaged, m.Skipped, m.Reconnects, m.PacketsLost} {
		v.WithLabelValues(camera).Add(0)
	}
}
