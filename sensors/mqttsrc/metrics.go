package mqttsrc

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	messages  prometheus.Counter
	bad       map[string]prometheus.Counter
	connected prometheus.Gauge
	connects  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	bad := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_sensor_mqtt_bad_payloads_total", Help: "MQTT sensor messages that gave a sensor no reading, by reason: empty, too_large, not_json, missing, not_number.",
	}, []string{"reason"})
	m := &metrics{
		messages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_sensor_mqtt_messages_total", Help: "MQTT messages received on the sensors' topics.",
		}),
		bad: map[string]prometheus.Counter{},
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_sensor_mqtt_connected", Help: "1 while the sensors' MQTT client is connected to the broker.",
		}),
		connects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_sensor_mqtt_connects_total", Help: "Connections of the sensors' MQTT client (the first and every reconnect).",
		}),
	}
	// Every reason exists from start-up at 0, so a rate or an alert rule
	// sees the series before the first bad payload.
	for _, r := range reasons {
		m.bad[r] = bad.WithLabelValues(r)
		m.bad[r].Add(0)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{bad, m.messages, m.connected, m.connects} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("mqttsrc: metrics: %w", err)
		}
	}
	return m, nil
}
