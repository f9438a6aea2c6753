package gpio

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/gates"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type run struct {
	events chan gates.Event
	stop   func()
}

func start(t *testing.T, inputs ...Input) *run {
	t.Helper()
	r := &run{events: make(chan gates.Event, 100)}
	a, err := New(Config{Inputs: inputs}, func(_ context.Context, ev gates.Event) error {
		if err := ev.Validate(); err != nil {
			t.Errorf("invalid event %+v: %v", ev, err)
		}
		r.events <- ev
		return nil
	}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	r.stop = func() { cancel(); <-done }
	t.Cleanup(r.stop)
	return r
}

func (r *run) next(t *testing.T) gates.Event {
	t.Helper()
	select {
	case ev := <-r.events:
		return ev
	case <-time.After(2 * time.Second):
		t.Fatal("no event")
		return gates.Event{}
	}
}

// quietFor asserts that no event arrives for d.
func (r *run) quietFor(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case ev := <-r.events:
		t.Fatalf("unexpected event %+v", ev)
	case <-time.After(d):
	}
}

// bounce toggles a line n times, 2 ms apart, as a reed contact does when
// a door swings, ending at final.
func bounce(l *SimLine, n int, final bool) {
	for i := 0; i < n; i++ {
		l.Set(i%2 == 0 == final)
		time.Sleep(2 * time.Millisecond)
	}
	l.Set(final)
}

// TestDebounceDoorContact: a bouncing contact yields one event per real
// movement, timed at the first edge.
func TestDebounceDoorContact(t *testing.T) {
	door := NewSimLine(false)
	r := start(t, Input{Gate: "north-gate", Device: "door", Role: RoleDoor, Line: door})
	if ev := r.next(t); ev.Kind != gates.Closed || !ev.Initial {
		t.Fatalf("initial state: %+v", ev)
	}
	began := time.Now()
	bounce(door, 9, true)
	ev := r.next(t)
	if ev.Kind != gates.Opened || ev.Initial || ev.Device != "door" || ev.Source != "gpio/door" {
		t.Fatalf("open: %+v", ev)
	}
	if d := ev.Time.Sub(began); d < 0 || d > 10*time.Millisecond {
		t.Fatalf("event time %v after the first edge, want the first edge", d)
	}
	if el := time.Since(began); el < DefaultDebounce {
		t.Fatalf("reported after %v, before the contact settled", el)
	}
	r.quietFor(t, 150*time.Millisecond)

	bounce(door, 6, false)
	if ev := r.next(t); ev.Kind != gates.Closed {
		t.Fatalf("close: %+v", ev)
	}
	// A glitch shorter than the debounce period is not a movement.
	door.Set(true)
	time.Sleep(10 * time.Millisecond)
	door.Set(false)
	r.quietFor(t, 150*time.Millisecond)
}

// TestButtonShortPressCounts: a press released inside the debounce period
// is still one press; releasing is not an event.
func TestButtonShortPressCounts(t *testing.T) {
	btn := NewSimLine(false)
	r := start(t, Input{Gate: "north-gate", Device: "booth-sos", Role: RoleButton, Line: btn})
	bounce(btn, 3, true)
	time.Sleep(20 * time.Millisecond)
	bounce(btn, 3, false)
	if ev := r.next(t); ev.Kind != gates.Button || ev.Device != "booth-sos" {
		t.Fatalf("short press: %+v", ev)
	}
	r.quietFor(t, 120*time.Millisecond)
	btn.Set(true) // a long press: reported once it settles, release is silent
	if ev := r.next(t); ev.Kind != gates.Button {
		t.Fatalf("long press: %+v", ev)
	}
	time.Sleep(200 * time.Millisecond)
	btn.Set(false)
	r.quietFor(t, 150*time.Millisecond)
}

func TestRoles(t *testing.T) {
	smoke, tamper, grant := NewSimLine(true), NewSimLine(false), NewSimLine(false)
	r := start(t,
		Input{Gate: "g", Device: "smoke", Role: RoleSmoke, Line: smoke},
		Input{Gate: "g", Device: "cover", Role: RoleTamper, Line: tamper},
		Input{Gate: "g", Device: "reader", Role: RoleGrant, Line: grant},
	)
	got := map[string]gates.Event{}
	for i := 0; i < 2; i++ { // start-up state of the two level inputs, in either order
		ev := r.next(t)
		got[ev.Device] = ev
	}
	if ev := got["smoke"]; ev.Kind != gates.Alarm || ev.Sensor != gates.Smoke || !ev.Initial {
		t.Fatalf("smoke at start: %+v", ev)
	}
	if ev := got["cover"]; ev.Kind != gates.TamperClear {
		t.Fatalf("tamper at start: %+v", ev)
	}
	grant.Set(true)
	if ev := r.next(t); ev.Kind != gates.Granted || ev.Credential != "relay:reader" {
		t.Fatalf("grant: %+v", ev)
	}
	smoke.Set(false)
	if ev := r.next(t); ev.Kind != gates.AlarmClear || ev.Sensor != gates.Smoke {
		t.Fatalf("smoke clear: %+v", ev)
	}
}

func TestClosedLineEndsItsWatcher(t *testing.T) {
	l := NewSimLine(false)
	r := start(t, Input{Gate: "g", Device: "door", Role: RoleDoor, Line: l})
	r.next(t)
	l.Close()
	l.Set(true) // ignored after Close
	r.stop()    // returns: the watcher ended
}

// TestOpenLineReportsMissingHardware: without a GPIO chip (CI, a laptop)
// OpenLine fails with a message naming the chip; it never panics.
func TestOpenLineReportsMissingHardware(t *testing.T) {
	_, err := OpenLine("gpiochip-vigil-test-absent", 3, LineOptions{ActiveLow: true, Bias: "pull-up"})
	if err == nil || !strings.Contains(err.Error(), "gpiochip-vigil-test-absent") {
		t.Fatalf("err = %v", err)
	}
	if _, err := OpenLine("gpiochip0", 3, LineOptions{Bias: "sideways"}); err == nil {
		t.Fatal("bad bias accepted")
	}
}

func TestConfigRefused(t *testing.T) {
	l := NewSimLine(false)
	for _, in := range []Input{
		{Gate: "G", Device: "d", Role: RoleDoor, Line: l},
		{Gate: "g", Role: RoleDoor, Line: l},
		{Gate: "g", Device: "d", Role: "window", Line: l},
		{Gate: "g", Device: "d", Role: RoleDoor},
	} {
		if _, err := New(Config{Inputs: []Input{in}}, nil, quiet); err == nil {
			t.Errorf("%+v accepted", in)
		}
	}
}
