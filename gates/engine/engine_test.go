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
