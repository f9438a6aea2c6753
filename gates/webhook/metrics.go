package webhook

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests   *prometheus.CounterVec
	events     *prometheus.CounterVec
	duplicates *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		// result only: the controller header of a refused request is
		// untrusted and would let anyone create label values.
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_gate_webhook_requests_total", Help: "Gate webhook requests by result (ok or the refusal code).",
		}, []string{"result"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_gate_webhook_events_total", Help: "Gate events accepted over the webhook, by controller.",
		}, []string{"controller"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_gate_webhook_duplicates_total", Help: "Gate events skipped as already received, by controller.",
		}, []string{"controller"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.events, m.duplicates} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("webhook: metrics: %w", err)
		}
	}
	return m, nil
}
