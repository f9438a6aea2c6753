package edge

import (
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams/camera"
	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/wire"
)

// TestMotionIncidentOnNode: on a running node, a camera's motion events
// within analysis.motion.incident_gap are one alert and its updates; the
// alert's pin grows with them; the owner's timer ends the incident once
// the gap passes; central closing an alert ends its incident at once.
func TestMotionIncidentOnNode(t *testing.T) {
	cfg := conf.Config{
		EdgeID: "gate-1", SiteID: "village/north", Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central:  conf.CentralConfig{URL: "ws://127.0.0.1:1/api/v1/edge/ws", Token: "t"},
		Cameras:  []conf.CameraConfig{{ID: "gate-cam", Name: "Gate", URL: "rtsp://127.0.0.1:1/none"}},
		Analysis: conf.EdgeAnalysisConfig{Motion: conf.IncidentConfig{IncidentGap: config.Duration(time.Second)}},
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	alerts, updates := make(chan wire.Alert, 16), make(chan wire.AlertUpdate, 16)
	n, err := Start(cfg, Options{Log: testrig.Logger(t), OnAlert: func(a wire.Alert) { alerts <- a }, OnUpdate: func(u wire.AlertUpdate) { updates <- u }})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	motionAt := func(at time.Time) {
		n.events.OnMotion(camera.Event{Camera: "gate-cam", Start: at, SnapshotTime: at.Add(time.Second), Snapshot: []byte("jpeg"),
			Boxes: []motion.Box{{X: 0.1, Y: 0.1, W: 0.2, H: 0.5}}})
	}
	nextAlert := func() wire.Alert {
		t.Helper()
		select {
		case a := <-alerts:
			return a
		case <-time.After(5 * time.Second):
			t.Fatal("no alert")
		}
		return wire.Alert{}
	}
	nextUpdate := func() wire.AlertUpdate {
		t.Helper()
		select {
		case u := <-updates:
			return u
		case <-time.After(5 * time.Second):
			t.Fatal("no update")
		}
		return wire.AlertUpdate{}
	}

	base := time.Now()
	motionAt(base)
	first := nextAlert()
	motionAt(base.Add(500 * time.Millisecond))
	u := nextUpdate()
	if u.AlertID != first.ID || u.Count != 2 || len(u.Boxes) != 1 || len(u.Snapshot) == 0 || !u.Ended.IsZero() {
		t.Fatalf("continuation %+v", u)
	}
	// The update tells central the grown range, so an open detail's clip grows.
	if len(u.Links) != 1 || u.Links[0].Camera != first.Links[0].Camera || !u.Links[0].ClipFrom.Equal(first.Links[0].ClipFrom) ||
		!u.Links[0].ClipTo.Equal(first.Links[0].ClipTo.Add(500*time.Millisecond)) {
		t.Fatalf("continuation links %+v, alert links %+v", u.Links, first.Links)
	}
	grown := func() bool { // the pin grows right after the update is stored
		for _, p := range n.clips.Pins() {
			if p.ID == first.ID && p.From.Equal(first.Links[0].ClipFrom) && p.To.Equal(first.Links[0].ClipTo.Add(500*time.Millisecond)) {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(2 * time.Second); !grown(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("pins %+v: the alert's pin did not grow to the second event's post-roll", n.clips.Pins())
		}
	}
	t0 := time.Now()
	if end := nextUpdate(); end.AlertID != first.ID || end.Ended.IsZero() {
		t.Fatalf("end %+v", end)
	}
	if el := time.Since(t0); el > 3*time.Second {
		t.Errorf("the incident ended %v after its last event, gap 1s", el)
	}
	motionAt(time.Now())
	second := nextAlert()
	if second.ID == first.ID {
		t.Fatal("motion after the incident ended was folded into it")
	}
	onAlertClosed(n.alerts, n.gates, n.log)(wire.AlertClosed{AlertID: second.ID, State: "resolved", Time: time.Now()})
	time.Sleep(100 * time.Millisecond)
	motionAt(time.Now())
	if third := nextAlert(); third.ID == second.ID {
		t.Fatal("motion after central closed the alert was folded into it")
	}
	select {
	case u := <-updates:
		if u.AlertID == second.ID {
			t.Fatalf("update %+v of an alert central closed", u)
		}
	default:
	}
}
