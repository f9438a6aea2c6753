package edge

import (
	"encoding/json"

	"github.com/vigil-perimeter/vigil/wire"
)

// Heartbeat is the heartbeat the node would send central now (tests).
func (n *Node) Heartbeat() wire.Heartbeat {
	return heartbeat(n.cams, n.conf, n.gates, n.sensors, n.gb)
}

// QueuedAccessRecords are the audit records in the outbox, in queue
// order (tests: nothing acknowledges them without central).
func (n *Node) QueuedAccessRecords() ([]wire.AccessRecord, error) {
	entries, err := n.box.After(0, 100_000)
	if err != nil {
		return nil, err
	}
	var out []wire.AccessRecord
	for _, e := range entries {
		if e.Kind != wire.TypeAccess {
			continue
		}
		var r wire.AccessRecord
		if err := json.Unmarshal(e.Body, &r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
