package device

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the device user agent's counters; every label value is
// created at start, so they are exported at 0 before the first event.
type metrics struct {
	registers  *prometheus.CounterVec
	keepalives *prometheus.CounterVec
	queries    *prometheus.CounterVec
	answers    *prometheus.CounterVec
	alarms     *prometheus.CounterVec
	registered prometheus.Gauge
	offset     prometheus.Gauge
	sessions   prometheus.Gauge
	calls      *prometheus.CounterVec
	subs       *prometheus.GaugeVec
	notifies   *prometheus.CounterVec
	controls   *prometheus.CounterVec
}

var (
	registerResults  = []string{"ok", "refused", "error"}
	keepaliveResults = []string{"ok", "missed", "refused"}
	queryCmds        = []string{"Catalog", "DeviceInfo", "DeviceStatus", "RecordInfo", "DeviceControl", "other", "invalid"}
	answerResults    = []string{"ok", "failed"}
	callResults      = []string{"ok", "no_ack"}
	subKinds         = []string{"Alarm", "Catalog"}
	controlResults   = []string{"ok", "failed", "unsupported"}
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		registers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_gb28181_registers_total",
			Help: "REGISTER attempts to the GB/T 28181 platform, by result (ok, refused, error: timeout or unreachable)."}, []string{"result"}),
		keepalives: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_gb28181_keepalives_total",
			Help: "Keepalive MESSAGEs sent to the platform, by result (ok, missed: no answer, refused)."}, []string{"result"}),
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_gb28181_queries_total",
			Help: "MANSCDP queries received from the platform, by command."}, []string{"cmd"}),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_gb28181_answer_messages_total",
			Help: "Response MESSAGEs sent to the platform, by result."}, []string{"result"}),
		alarms: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_gb28181_alarms_total",
			Help: "Alarm notifications sent to the platform, by result (ok, failed)."}, []string{"result"}),
		registered: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigil_gb28181_registered",
			Help: "1 while the device is registered with the platform."}),
		offset: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigil_gb28181_clock_offset_seconds",
			Help: "Platform clock (its Date header) minus the local clock; recorded, never applied."}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigil_gb28181_media_sessions",
			Help: "Media sessions (INVITE dialogs) the platform holds with the device now."}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_gb28181_media_sessions_total",
			Help: "Media sessions answered 200, by how the platform confirmed them (ok: ACK, no_ack: ended after 64*T1 without one)."}, []string{"result"}),
		subs: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vigil_gb28181_subscriptions",
			Help: "Live event subscriptions of the platform, by kind (Alarm, Catalog)."}, []string{"kind"}),
		notifies: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_gb28181_notifies_total",
			Help: "NOTIFYs sent to subscribers, by result (ok, failed)."}, []string{"result"}),
		controls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_gb28181_controls_total",
			Help: "DeviceControl commands from the platform, by result (ok, failed, unsupported: refused 501)."}, []string{"result"}),
	}
	for _, r := range callResults {
		m.calls.WithLabelValues(r)
	}
	for _, k := range subKinds {
		m.subs.WithLabelValues(k)
	}
	for _, r := range controlResults {
		m.controls.WithLabelValues(r)
	}
	for _, r := range registerResults {
		m.registers.WithLabelValues(r)
	}
	for _, r := range keepaliveResults {
		m.keepalives.WithLabelValues(r)
	}
	for _, c := range queryCmds {
		m.queries.WithLabelValues(c)
	}
	for _, r := range answerResults {
		m.answers.WithLabelValues(r)
		m.alarms.WithLabelValues(r)
		m.notifies.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.registers, m.keepalives, m.queries, m.answers, m.alarms, m.registered, m.offset, m.sessions, m.calls, m.subs, m.notifies, m.controls} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
