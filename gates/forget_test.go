package gates

import (
	"testing"
	"time"
)

// TestForgetStartsANewAlert: a forced opening folded into its open alert
// becomes an update; once the alert is forgotten (a guard closed it at
// central) the next one is a new alert with a count of one.
func TestForgetStartsANewAlert(t *testing.T) {
	start := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	m, err := New(Config{ID: "north-gate", Name: "North gate", Arming: Arming{Always: true}, GrantGrace: -1, UpdateEvery: -1}, start)
	if err != nil {
		t.Fatal(err)
	}
	force := func(at time.Duration) []Alert {
		now := start.Add(at)
		out := m.Step(Event{Gate: "north-gate", Kind: Opened, Device: "contact", Time: now}, now)
		m.Step(Event{Gate: "north-gate", Kind: Closed, Device: "contact", Time: now.Add(time.Second)}, now.Add(time.Second))
		return out
	}
	if a := force(0); len(a) != 1 || a[0].Key != CauseForced || a[0].Update {
		t.Fatalf("first forced opening: %+v", a)
	}
	if a := force(10 * time.Second); len(a) != 1 || !a[0].Update || a[0].Count != 2 {
		t.Fatalf("second forced opening not folded: %+v", a)
	}
	if !m.Forget(CauseForced, "") {
		t.Fatal("Forget found no open forced alert")
	}
	if m.Forget(CauseForced, "") {
		t.Fatal("Forget twice found it again")
	}
	if a := force(20 * time.Second); len(a) != 1 || a[0].Update || a[0].Count != 1 {
		t.Fatalf("forced opening after Forget: %+v, want a new alert with count 1", a)
	}
}
