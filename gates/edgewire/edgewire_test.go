package edgewire

import (
	"fmt"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/gates"
	"github.com/vigil-perimeter/vigil/wire"
)

func TestConvert(t *testing.T) {
	n := 0
	c := &Converter{EdgeID: "edge-1", SiteID: "village/north", NewID: func(time.Time) string { n++; return fmt.Sprintf("id-%d", n) }}
	t0 := time.Date(2026, 3, 10, 4, 0, 0, 0, time.UTC)

	out := c.Convert(gates.Alert{Gate: "north-gate", Key: gates.CausePassage, Severity: wire.Green, Count: 1, Summary: "Passage", Time: t0})
	if out.Event == nil || out.Event.Kind != "gate.passage" || out.Alert != nil {
		t.Fatalf("passage: %+v", out)
	}
	out = c.Convert(gates.Alert{Gate: "north-gate", Key: gates.CauseSmoke, Device: "s1", Severity: wire.Red, Count: 1, Summary: "Smoke", Time: t0})
	if a := out.Alert; a == nil || a.ID != "id-1" || a.Kind != "gate.smoke" || a.Source != "north-gate" || a.Validate() != nil {
		t.Fatalf("alert: %+v", out)
	}
	out = c.Convert(gates.Alert{Gate: "north-gate", Key: gates.CauseSmoke, Device: "s1", Severity: wire.Green, Count: 1, Summary: "Smoke cleared", Time: t0.Add(time.Minute), Update: true, Cleared: true})
	if u := out.Update; u == nil || u.AlertID != "id-1" || u.Ended.IsZero() || u.Severity != wire.Green || u.Count != 0 || u.Validate() != nil {
		t.Fatalf("clear: %+v", out)
	}
	out = c.Convert(gates.Alert{Gate: "north-gate", Key: gates.CauseSmoke, Device: "s1", Severity: wire.Red, Count: 2, Summary: "Smoke (2 times)", Time: t0.Add(2 * time.Minute)})
	if out.Alert == nil || out.Alert.ID != "id-3" || out.Alert.Count != 2 {
		t.Fatalf("recurrence is a new alert: %+v", out)
	}
	out = c.Convert(gates.Alert{Gate: "north-gate", Key: gates.CauseSmoke, Device: "s1", Severity: wire.Red, Count: 3, Summary: "x", Time: t0.Add(3 * time.Minute), Update: true})
	if out.Update == nil || out.Update.AlertID != "id-3" || !out.Update.Ended.IsZero() || out.Update.Count != 3 {
		t.Fatalf("update goes to the latest alert: %+v", out.Update)
	}
}
