package modbus

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Error kinds, the values of vigil_sensor_modbus_errors_total's kind label.
const (
	kindConnect    = "connect"    // the TCP connection could not be opened
	kindTimeout    = "timeout"    // no answer within the request timeout
	kindConnection = "connection" // the connection broke (reset, closed by the device)
	kindException  = "exception"  // the device answered with a Modbus exception (e.g. illegal address)
	kindProtocol   = "protocol"   // a malformed or mismatched answer
	kindBadValue   = "bad_value"  // a register held no number (float32 NaN or infinity)
)

var kinds = []string{kindConnect, kindTimeout, kindConnection, kindException, kindProtocol, kindBadValue}

// metrics are one device's series; the vectors are shared by every
// device of a registry.
type metrics struct {
	polls  prometheus.Counter
	errors map[string]prometheus.Counter
	up     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, device string) (*metrics, error) {
	polls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_sensor_modbus_polls_total", Help: "Polls of a Modbus sensor device (every mapped register read once), failed ones included; connection attempts while it is down are not polls.",
	}, []string{"device"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_sensor_modbus_errors_total", Help: "Failed Modbus polls and connection attempts by kind: connect, timeout, connection, exception, protocol, bad_value.",
	}, []string{"device", "kind"})
	up := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "vigil_sensor_modbus_up", Help: "1 while the Modbus device answers its polls.",
	}, []string{"device"})
	if reg != nil {
		var err error
		if polls, err = registerOrReuse(reg, polls); err != nil {
			return nil, err
		}
		if errs, err = registerOrReuse(reg, errs); err != nil {
			return nil, err
		}
		if up, err = registerOrReuse(reg, up); err != nil {
			return nil, err
		}
	}
	m := &metrics{polls: polls.WithLabelValues(device), errors: map[string]prometheus.Counter{}, up: up.WithLabelValues(device)}
	// Every series exists from start-up at 0, so a rate or an alert rule
	// sees it before the first failure.
	m.polls.Add(0)
	for _, k := range kinds {
		m.errors[k] = errs.WithLabelValues(device, k)
		m.errors[k].Add(0)
	}
	m.up.Set(0)
	return m, nil
}

// registerOrReuse registers a vector, or returns the one already registered by
// another device.
func registerOrReuse[V prometheus.Collector](reg prometheus.Registerer, c V) (V, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	switch {
	case err == nil:
		return c, nil
	case errors.As(err, &are):
		if existing, ok := are.ExistingCollector.(V); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("modbus: metrics: %w", err)
}
