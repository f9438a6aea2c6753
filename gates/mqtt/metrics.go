package mqtt

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// results are the values of vigil_gate_mqtt_messages_total's result label.
var results = []string{"ok", "duplicate", "ignored", "malformed", "refused"}

type metrics struct {
	messages  *prometheus.CounterVec
	connected prometheus.Gauge
	connects  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_gate_mqtt_messages_total", Help: "Gate MQTT messages (events for multi-event messages) by result: ok, duplicate, ignored, malformed, refused.",
		}, []string{"result"}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_gate_mqtt_connected", Help: "1 while connected to the MQTT broker.",
		}),
		connects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_gate_mqtt_connects_total", Help: "Successful connections to the MQTT broker (the first and every reconnect).",
		}),
	}
	// Every result is exported from start-up, at 0 until it happens, so a
	// rate or an alert rule sees the series before the first refusal.
	for _, r := range results {
		m.messages.WithLabelValues(r).Add(0)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.messages, m.connected, m.connects} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("mqtt: metrics: %w", err)
		}
	}
	return m, nil
}
