package edge

import (
	"encoding/json"

	"github.com/vigil-perimeter/vigil/wire"
)

// SensorStatus is the sensors as the heartbeat reports them (tests).
func (n *Node) SensorStatus() []wire.SensorStatus { return n.sensors.statuses() }

// QueuedSensorReadings are the readings in the outbox's sensor batches,
// in queue order (tests: nothing acknowledges them without central).
func (n *Node) QueuedSensorReadings() ([]wire.SensorPoint, error) {
	entries, err := n.box.After(0, 100_000)
	if err != nil {
		return nil, err
	}
	var out []wire.SensorPoint
	for _, e := range entries {
		if e.Kind != wire.TypeSensorBatch {
			continue
		}
		var b wire.SensorBatch
		if err := json.Unmarshal(e.Body, &b); err != nil {
			return nil, err
		}
		out = append(out, b.Points...)
	}
	return out, nil
}
