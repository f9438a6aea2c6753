package edge

import (
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/gates"
	"github.com/vigil-perimeter/vigil/gates/edgewire"
	"github.com/vigil-perimeter/vigil/wire"
)

// TestGateEventForEveryAlertOutput: every gate alert output, new or
// update, becomes an event for central's log: gate.<cause>, gate.closed
// for a door's all-clear, the gate as source, the output's summary, an
// ID that follows the output's (a replay stores it once); passages are
// events already and get no second one.
func TestGateEventForEveryAlertOutput(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	alert := edgewire.Out{Alert: &wire.Alert{ID: "a-1"}}
	update := edgewire.Out{Update: &wire.AlertUpdate{ID: "u-1"}}
	for _, tc := range []struct {
		a        gates.Alert
		out      edgewire.Out
		kind, id string
	}{
		{gates.Alert{Key: gates.CauseForced}, alert, "gate.forced", "a-1-event"},
		{gates.Alert{Key: gates.CauseForced, Update: true, Count: 2}, update, "gate.forced", "u-1-event"},
		{gates.Alert{Key: gates.CauseHeldOpen}, alert, "gate.held_open", "a-1-event"},
		{gates.Alert{Key: gates.CauseHeldOpen, Update: true, Cleared: true}, update, "gate.closed", "u-1-event"},
		{gates.Alert{Key: gates.CauseSOS}, alert, "gate.sos", "a-1-event"},
		{gates.Alert{Key: gates.CauseSmoke, Update: true, Cleared: true}, update, "gate.smoke", "u-1-event"},
		{gates.Alert{Key: gates.CauseGas}, alert, "gate.gas", "a-1-event"},
		{gates.Alert{Key: gates.CauseTamper, Device: "reader"}, alert, "gate.tamper", "a-1-event"},
		{gates.Alert{Key: gates.CauseArming}, alert, "gate.arming", "a-1-event"},
	} {
		tc.a.Gate, tc.a.Time, tc.a.Summary = "north-gate", at, "what happened"
		ev := gateEvent(tc.a, tc.out)
		if ev == nil || ev.Kind != tc.kind || ev.ID != tc.id || ev.Source != "north-gate" || ev.Summary != "what happened" || !ev.Time.Equal(at) {
			t.Errorf("%s (cleared %v): event %+v, want kind %s, ID %s", tc.a.Key, tc.a.Cleared, ev, tc.kind, tc.id)
		}
	}
	passage := edgewire.Out{Event: &wire.Event{Kind: "gate.passage"}}
	if ev := gateEvent(gates.Alert{Key: gates.CausePassage, Gate: "north-gate", Time: at}, passage); ev != nil {
		t.Errorf("a passage got a second event %+v", ev)
	}
}
