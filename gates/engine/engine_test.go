package engine

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/gates"
)

// collector gathers alerts from the engine goroutine.
type collector struct {
	mu     sync.Mutex
	alerts []gates.Alert
	ch     chan struct{}
}

func newCollector() *collector { return &collector{ch: make(chan struct{}, 1000)} }

func (c *collector) add(a gates.Alert) {
	c.mu.Lock()
	c.alerts = append(c.alerts, a)
	c.mu.Unlock()
	c.ch <- struct{}{}
}

// wait returns the next alert or fails after timeout.
func (c *collector) wait(t *testing.T, timeout time.Duration) gates.Alert {
	t.Helper()
	select {
	case <-c.ch:
	case <-time.After(timeout):
		t.Fatalf("no alert within %v", timeout)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.alerts[0]
	c.alerts = c.alerts[1:]
	return a
}

func start(t *testing.T, cfg gates.Config, c *collector) (*Engine, context.CancelFunc) {
	t.Helper()
	e, err := New(Options{Gates: []gates.Config{cfg}, OnAlert: c.add, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return e, cancel
}

// TestEngineFiresTimersOnTime: real clock, short limits; each timer-driven
// alert arrives close to its deadline without polling.
func TestEngineFiresTimersOnTime(t *testing.T) {
	c := newCollector()
	e, cancel := start(t, gates.Config{ID: "g", Name: "Gate", Arming: gates.Arming{Always: true},
		GrantGrace: 50 * time.Millisecond, Debounce: 20 * time.Millisecond, HeldOpenAfter: 200 * time.Millisecond, HeldOpenRedAfter: 400 * time.Millisecond}, c)
	ctx := context.Background()
	t0 := time.Now()
	if err := e.Submit(ctx, gates.Event{Gate: "g", Device: "contact", Kind: gates.Opened, Time: t0}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		cause gates.Cause
		sev   string
		after time.Duration
	}{{gates.CauseForced, "red", 50 * time.Millisecond}, {gates.CauseHeldOpen, "yellow", 200 * time.Millisecond}, {gates.CauseHeldOpen, "red", 400 * time.Millisecond}} {
		a := c.wait(t, 2*time.Second)
		el := time.Since(t0)
		if a.Key != want.cause || string(a.Severity) != want.sev || el < want.after || el > want.after+300*time.Millisecond {
			t.Fatalf("got %s %s after %v, want %s %s after %v", a.Key, a.Severity, el, want.cause, want.sev, want.after)
		}
	}
	st, err := e.Status(ctx)
	if err != nil || len(st) != 1 || st[0].Door != "open" {
		t.Fatalf("status %v %+v", err, st)
	}
	e.Submit(ctx, gates.Event{Gate: "g", Device: "contact", Kind: gates.Closed, Time: time.Now()})
	if a := c.wait(t, 2*time.Second); a.Key != gates.CauseHeldOpen || !a.Cleared {
		t.Fatalf("got %+v, want held open cleared", a)
	}

	err = e.Submit(ctx, gates.Event{Gate: "other", Kind: gates.Opened, Time: t0})
	if !errors.Is(err, ErrUnknownGate) {
		t.Fatalf("unknown gate: %v", err)
	}
	if err := e.Submit(ctx, gates.Event{Gate: "g", Kind: "exploded", Time: t0}); err == nil || !strings.Contains(err.Error(), "unknown event type") {
		t.Fatalf("invalid event: %v", err)
	}
	cancel()
	for i := 0; i < 100; i++ { // Run ends promptly; then Submit refuses
		if err := e.Submit(ctx, gates.Event{Gate: "g", Kind: gates.Heartbeat, Time: t0}); errors.Is(err, ErrStopped) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("Submit still accepts after the engine stopped")
}

func TestEngineRejectsDuplicateGates(t *testing.T) {
	if _, err := New(Options{Gates: []gates.Config{{ID: "g"}, {ID: "g"}}}); err == nil {
		t.Fatal("duplicate gate accepted")
	}
}

// TestMetricsExistFromStart: every configured gate's event and alert
// series are exported at 0 before anything happens.
func TestMetricsExistFromStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(Options{Gates: []gates.Config{{ID: "north-gate"}, {ID: "south-gate"}}, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]map[string]float64{} // family → labels → value
	for _, mf := range mfs {
		series[mf.GetName()] = map[string]float64{}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, lp.GetName()+"="+lp.GetValue())
			}
			series[mf.GetName()][strings.Join(ls, ",")] = m.GetCounter().GetValue()
		}
	}
	if n, want := len(series["vigil_gate_events_total"]), 2*len(gates.Kinds()); n != want {
		t.Fatalf("%d event series, want %d", n, want)
	}
	if n, want := len(series["vigil_gate_alerts_total"]), 2*len(gates.Causes())*3; n != want {
		t.Fatalf("%d alert series, want %d", n, want)
	}
	for _, want := range []struct{ family, labels string }{
		{"vigil_gate_events_total", "gate=north-gate,type=opened"},
		{"vigil_gate_events_total", "gate=south-gate,type=arm"},
		{"vigil_gate_alerts_total", "cause=forced,gate=north-gate,severity=red"},
		{"vigil_gate_alerts_total", "cause=arming,gate=south-gate,severity=green"},
	} {
		if v, ok := series[want.family][want.labels]; !ok || v != 0 {
			t.Errorf("%s{%s}: %v %v, want 0", want.family, want.labels, v, ok)
		}
	}
}

// TestSnapshotWithoutRoundTrip: the state the engine publishes after a
// step is readable while the engine's goroutine is stuck handing an alert
// on (the edge's queue full), when a Status round trip cannot answer.
func TestSnapshotWithoutRoundTrip(t *testing.T) {
	release := make(chan struct{})
	handed := make(chan gates.Alert, 10)
	e, err := New(Options{Gates: []gates.Config{{ID: "g", Name: "Gate"}}, Registerer: prometheus.NewRegistry(),
		OnAlert: func(a gates.Alert) { handed <- a; <-release }})
	if err != nil {
		t.Fatal(err)
	}
	if st := e.Snapshot(); len(st) != 1 || st[0].Gate != "g" || st[0].Door != "unknown" || st[0].Armed {
		t.Fatalf("snapshot before Run: %+v", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	defer close(release)

	now := time.Now()
	// Found open (no alert), then armed from a keypad: a green notice the
	// engine cannot hand on.
	for _, ev := range []gates.Event{{Gate: "g", Device: "contact", Kind: gates.Opened, Initial: true, Time: now},
		{Gate: "g", Device: "kp", Kind: gates.Arm, Time: now}} {
		if err := e.Submit(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case a := <-handed:
		if a.Key != gates.CauseArming {
			t.Fatalf("handed %s, want the arming notice", a.Key)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the arming notice was not handed on")
	}
	sctx, scancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer scancel()
	if _, err := e.Status(sctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Status while the engine is stuck: %v, want a timeout", err)
	}
	t0 := time.Now()
	st := e.Snapshot()
	if d := time.Since(t0); d > 10*time.Millisecond {
		t.Errorf("Snapshot took %v", d)
	}
	if len(st) != 1 || st[0].Door != "open" || !st[0].Armed || st[0].Override == nil || st[0].Override.Device != "kp" {
		t.Fatalf("snapshot while the engine is stuck: %+v, want open, armed from keypad kp", st)
	}
}

// TestSnapshotArmingFollowsTheClock: the arming in a snapshot is the
// schedule's at the time it is read, not at the step that published it: a
// night window that began since arms the gate, with no step in between.
func TestSnapshotArmingFollowsTheClock(t *testing.T) {
	var mu sync.Mutex
	clock := time.Date(2025, 3, 1, 21, 59, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	all := [7]bool{true, true, true, true, true, true, true}
	night := gates.Arming{Windows: []gates.Window{{Days: all, From: 22 * 60, To: 6 * 60}}, Location: time.UTC}
	e, err := New(Options{Gates: []gates.Config{{ID: "g", Name: "Gate", Arming: night}}, Now: now, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if st := e.Snapshot(); st[0].Armed {
		t.Fatalf("at 21:59: %+v, want disarmed", st[0])
	}
	mu.Lock()
	clock = clock.Add(2 * time.Minute)
	mu.Unlock()
	if st := e.Snapshot(); !st[0].Armed {
		t.Fatalf("at 22:01: %+v, want armed by the night window", st[0])
	}
	// A keypad disarm holds until the window ends at 06:00.
	e.Replay([]Past{{Seq: 1, At: now(), Event: gates.Event{Gate: "g", Device: "kp", Kind: gates.Disarm, Time: now()}}})
	st := e.Snapshot()
	if st[0].Armed || st[0].Override == nil || st[0].Override.Until.IsZero() {
		t.Fatalf("after a keypad disarm: %+v, want disarmed until the schedule's next change", st[0])
	}
	mu.Lock()
	clock = st[0].Override.Until.Add(-time.Minute)
	mu.Unlock()
	if st := e.Snapshot(); st[0].Armed {
		t.Fatalf("before the override ran out: %+v, want disarmed", st[0])
	}
	mu.Lock()
	clock = st[0].Override.Until.Add(22 * time.Hour) // 04:00 the next night
	mu.Unlock()
	if st := e.Snapshot(); !st[0].Armed || st[0].Override != nil {
		t.Fatalf("after the override ran out: %+v, want armed by the schedule", st[0])
	}
}
