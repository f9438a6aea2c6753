package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/gates"
)

// TestEngineForget: Forget runs on the engine's goroutine; after it, a
// forced opening that would have folded into the open alert is a new one.
func TestEngineForget(t *testing.T) {
	c := newCollector()
	e, _ := start(t, gates.Config{ID: "g", Name: "Gate", Arming: gates.Arming{Always: true}, GrantGrace: -1, UpdateEvery: -1, Debounce: time.Millisecond}, c)
	ctx := context.Background()
	force := func() gates.Alert {
		t.Helper()
		for _, k := range []gates.Kind{gates.Opened, gates.Closed} {
			if err := e.Submit(ctx, gates.Event{Gate: "g", Device: "contact", Kind: k, Time: time.Now()}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return c.wait(t, 2*time.Second)
	}
	if a := force(); a.Update || a.Key != gates.CauseForced {
		t.Fatalf("first: %+v", a)
	}
	if a := force(); !a.Update || a.Count != 2 {
		t.Fatalf("second not folded: %+v", a)
	}
	if ok, err := e.Forget(ctx, "g", gates.CauseForced, ""); err != nil || !ok {
		t.Fatalf("Forget = %v, %v", ok, err)
	}
	if a := force(); a.Update || a.Count != 1 {
		t.Fatalf("after Forget: %+v, want a new alert", a)
	}
	if _, err := e.Forget(ctx, "nope", gates.CauseForced, ""); !errors.Is(err, ErrUnknownGate) {
		t.Fatalf("unknown gate: %v", err)
	}
}
