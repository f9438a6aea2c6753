package central

import (
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

// TestFleetGB28181: an edge's GB/T 28181 registration, as its heartbeat
// says it, is in GET /api/v1/edges (the fleet page's source, fleet.js),
// and an edge without one has none.
func TestFleetGB28181(t *testing.T) {
	s := startServer(t)
	edge := connectEdge(t, s, northID, northToken)
	since := time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC)
	gb := &wire.GBStatus{State: "online", Online: true, DeviceID: "34020000001180000001", Server: "10.20.30.40:5060",
		RegisteredSince: since, ClockOffsetMS: -1200, ClockSampledAt: since, PendingAlarms: 2}
	edge.send(wire.TypeHeartbeat, wire.Heartbeat{Time: time.Now().UTC(), GB28181: gb})
	edge.sendAlert(testAlert(northID, "gb-1")) // its ack orders it after the heartbeat

	var body struct{ Edges []EdgeStatus }
	getJSON(t, s, "/api/v1/edges", &body)
	north, south := body.Edges[0], body.Edges[1]
	if g := north.GB28181; g == nil || !g.Online || g.DeviceID != gb.DeviceID || !g.RegisteredSince.Equal(since) ||
		g.ClockOffsetMS != -1200 || g.PendingAlarms != 2 {
		t.Fatalf("north's registration: %+v", north.GB28181)
	}
	if south.GB28181 != nil {
		t.Errorf("south has no gb28181 section, yet %+v", south.GB28181)
	}

	// The platform went away: the next heartbeat says why.
	edge.send(wire.TypeHeartbeat, wire.Heartbeat{Time: time.Now().UTC(), GB28181: &wire.GBStatus{State: "offline",
		DeviceID: gb.DeviceID, Server: gb.Server, LastError: "platform silent: 3 keepalives unanswered"}})
	eventually(t, "north offline at its platform", func() bool {
		getJSON(t, s, "/api/v1/edges", &body)
		g := body.Edges[0].GB28181
		return g != nil && !g.Online && g.LastError == "platform silent: 3 keepalives unanswered"
	})
}
