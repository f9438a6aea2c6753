package edge_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/gates"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams/camera"
	"github.com/vigil-perimeter/vigil/wire"
)

// ownerRig is a node whose alert owner can be held (the outbox stalled)
// and whose raised alerts are collected in order.
type ownerRig struct {
	node    *edge.Node
	mu      sync.Mutex
	hold    chan struct{} // non-nil: the owner waits on it before each alert
	entered chan wire.Alert
	raised  []wire.Alert
	got     chan struct{}
}

func startOwnerRig(t *testing.T) *ownerRig {
	t.Helper()
	r := &ownerRig{entered: make(chan wire.Alert, 1024), got: make(chan struct{}, 4096)}
	cfg := conf.Config{
		EdgeID: "gate-1", SiteID: "village/north", Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: conf.CentralConfig{URL: "ws://127.0.0.1:1/api/v1/edge/ws", Token: token},
		Cameras: []conf.CameraConfig{{ID: "gate-cam", URL: "rtsp://127.0.0.1:1/none"}, {ID: "yard-cam", URL: "rtsp://127.0.0.1:1/none", Armed: true}},
		Gates:   []conf.GateConfig{{ID: "north-gate", Name: "North gate", Cameras: []string{"gate-cam"}}},
		GateInputs: conf.GateInputsConfig{
			Webhook: conf.WebhookInputConfig{Enabled: true, Controllers: []conf.WebhookControllerConfig{{ID: "ctrl", Secret: strings.Repeat("s", 32), Gates: []string{"north-gate"}}}},
		},
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("test config invalid: %v", errs)
	}
	opts := edge.Options{Log: testrig.Logger(t), OnAlert: func(a wire.Alert) {
		r.mu.Lock()
		r.raised = append(r.raised, a)
		r.mu.Unlock()
		r.got <- struct{}{}
	}}
	opts = edge.WithoutIncidents(edge.WithAlertOwnerHook(opts, func(a wire.Alert) {
		r.mu.Lock()
		hold := r.hold
		r.mu.Unlock()
		if hold != nil {
			r.entered <- a
			<-hold
		}
	}))
	node, err := edge.Start(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	r.node = node
	t.Cleanup(func() { r.release(); node.Close() })
	return r
}

// block holds the owner before each alert until release.
func (r *ownerRig) block() {
	r.mu.Lock()
	r.hold = make(chan struct{})
	r.mu.Unlock()
}

func (r *ownerRig) release() {
	r.mu.Lock()
	if r.hold != nil {
		close(r.hold)
		r.hold = nil
	}
	r.mu.Unlock()
}

// wait returns the raised alerts of the given kinds, in the order raised,
// once want of them have been.
func (r *ownerRig) wait(t *testing.T, want int, kinds ...string) []wire.Alert {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		var out []wire.Alert
		for _, a := range r.raised {
			for _, k := range kinds {
				if a.Kind == k {
					out = append(out, a)
				}
			}
		}
		r.mu.Unlock()
		if len(out) >= want {
			return out
		}
		select {
		case <-r.got:
		case <-deadline:
			t.Fatalf("%d alerts of %v raised, want %d", len(out), kinds, want)
		}
	}
}

// TestMotionNeverWaitsOnAlertOwner: a camera's analysis goroutine hands
// its motion events over and returns at once, however long the alert
// owner (the outbox's fsync, the video pin) takes; the alerts are raised
// afterwards in the order of the events, each with the state of the gate
// the camera sees as the gate engine published it, without a round trip
// to the engine.
func TestMotionNeverWaitsOnAlertOwner(t *testing.T) {
	r := startOwnerRig(t)
	ctx := context.Background()
	now := time.Now()
	// The gate is found open, then armed from its keypad.
	for _, ev := range []gates.Event{{Gate: "north-gate", Device: "contact", Kind: gates.Opened, Initial: true, Time: now},
		{Gate: "north-gate", Device: "kp", Kind: gates.Arm, Time: now}} {
		if err := r.node.SubmitGateEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if st := r.node.GateSnapshot(); len(st) == 1 && st[0].Door == "open" && st[0].Armed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the engine's snapshot never showed the gate open and armed: %+v", r.node.GateSnapshot())
		}
	}
	statusBefore := r.node.GateStatusCalls()

	r.block()
	const calls = 150 // within the queue's room for yellow alerts
	base := time.Now().Add(-time.Minute)
	done := make(chan time.Duration, 1)
	var slowest time.Duration
	go func() {
		t0 := time.Now()
		for i := range calls {
			c0 := time.Now()
			edge.CameraParent(r.node).OnMotion(camera.Event{Camera: "gate-cam", Start: base.Add(time.Duration(i) * time.Millisecond)})
			if d := time.Since(c0); d > slowest {
				slowest = d
			}
		}
		done <- time.Since(t0)
	}()
	select {
	case el := <-done:
		// Each call is an atomic load and a channel send; the bounds only
		// absorb a loaded test machine. Waiting on the blocked owner would
		// never return.
		if el > time.Second || slowest > 200*time.Millisecond {
			t.Errorf("%d motions took %v (slowest %v) while the alert owner was blocked", calls, el, slowest)
		}
		t.Logf("%d motions handed over in %v (slowest %v) while the alert owner was blocked", calls, el, slowest)
	case <-time.After(10 * time.Second):
		t.Fatal("OnMotion waited on the blocked alert owner")
	}
	select {
	case a := <-r.entered:
		if a.Kind != "motion" {
			t.Fatalf("the owner holds %s, want a motion", a.Kind)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the owner never took the first motion")
	}
	r.mu.Lock()
	n := 0
	for _, a := range r.raised {
		if a.Kind == "motion" {
			n++
		}
	}
	r.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d motion alerts raised while the owner was blocked", n)
	}

	r.release()
	got := r.wait(t, calls, "motion")
	if len(got) != calls {
		t.Fatalf("%d motion alerts, want %d", len(got), calls)
	}
	for i, a := range got {
		if want := base.Add(time.Duration(i) * time.Millisecond).UTC(); !a.Time.Equal(want) {
			t.Fatalf("alert %d is of %v, want %v: not raised in the order of the events", i, a.Time, want)
		}
		if a.Severity != wire.Yellow || len(a.Links) != 1 || a.Links[0].Camera != "gate-cam" || a.Links[0].ClipFrom.IsZero() {
			t.Fatalf("alert %d: severity %s, links %+v", i, a.Severity, a.Links)
		}
		if a.Gate == nil || a.Gate.Gate != "north-gate" || a.Gate.Door != "open" || !a.Gate.Armed {
			t.Fatalf("alert %d: gate state %+v, want north-gate open and armed", i, a.Gate)
		}
		if !strings.Contains(a.Summary, " · North gate: open for ") || !strings.Contains(a.Summary, ", armed from keypad kp") {
			t.Fatalf("alert %d: summary %q", i, a.Summary)
		}
	}
	if n := r.node.GateStatusCalls() - statusBefore; n != 0 {
		t.Errorf("motion alerts made %d round trips to the gate engine, want none (its published snapshot)", n)
	}
}

// TestMotionQueueFullDropsLoudlyKeepsRed: while the owner is stuck, yellow
// alerts beyond the queue's room for them are dropped (never waited for),
// red ones still find room in the reserve, and once the owner catches up
// it raises one system alert saying how many were lost.
func TestMotionQueueFullDropsLoudlyKeepsRed(t *testing.T) {
	r := startOwnerRig(t)
	r.block()
	base := time.Now().Add(-time.Minute)
	edge.CameraParent(r.node).OnMotion(camera.Event{Camera: "gate-cam", Start: base})
	select {
	case <-r.entered: // the owner holds the first: the queue is empty
	case <-time.After(5 * time.Second):
		t.Fatal("the owner never took the first motion")
	}
	const yellow, red = 300, 20
	t0 := time.Now()
	for i := 1; i < yellow; i++ {
		edge.CameraParent(r.node).OnMotion(camera.Event{Camera: "gate-cam", Start: base.Add(time.Duration(i) * time.Millisecond)})
	}
	for i := range red {
		edge.CameraParent(r.node).OnMotion(camera.Event{Camera: "yard-cam", Start: base.Add(time.Duration(yellow+i) * time.Millisecond)})
	}
	if el := time.Since(t0); el > 2*time.Second {
		t.Errorf("%d motions into a full queue took %v", yellow+red, el)
	}
	r.release()
	keptYellow := 1 + edge.AlertQueue - edge.RedReserve // the one held, and the room for yellow
	got := r.wait(t, keptYellow+red+1, "motion", "system.alerts_dropped")
	var reds, yellows int
	var notice *wire.Alert
	for i, a := range got {
		switch {
		case a.Kind == "system.alerts_dropped":
			notice = &got[i]
		case a.Severity == wire.Red:
			reds++
		default:
			yellows++
		}
	}
	if reds != red || yellows != keptYellow {
		t.Errorf("raised %d red and %d yellow motion alerts, want %d and %d", reds, yellows, red, keptYellow)
	}
	dropped := yellow - keptYellow
	if notice == nil || notice.Severity != wire.Yellow || !strings.HasPrefix(notice.Summary, strconv.Itoa(dropped)+" alerts not raised (0 red)") {
		t.Fatalf("drop notice %+v, want yellow, %d alerts not raised (0 red)", notice, dropped)
	}
}
