package central

import (
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

// A gate alert names the cameras that watch the gate and the clip each one
// pinned; a camera alert carries the watched gate's state; a picture sent
// later as an update says which camera it is from. Central keeps all of
// it for the console.
func TestAlertLinksAndGateStateReachTheConsole(t *testing.T) {
	s := startServer(t)
	e := connectEdge(t, s, northID, northToken)
	at := time.Date(2026, 11, 22, 13, 5, 0, 0, time.UTC)
	a := testAlert(northID, "gate-1")
	a.Source, a.Kind, a.Time = "north-barrier", "gate.forced", at
	a.Links = []wire.Link{
		{Camera: "cam-gate", ClipFrom: at.Add(-10 * time.Second), ClipTo: at.Add(30 * time.Second)},
		{Camera: "cam-road", ClipFrom: at.Add(-10 * time.Second), ClipTo: at.Add(30 * time.Second)},
	}
	m := testAlert(northID, "motion-1")
	m.Gate = &wire.GateState{Gate: "north-barrier", Name: "North barrier", Door: "open", Armed: true,
		LastGrant: at.Add(-time.Minute), LastCredential: "card:04A2B9C1"}
	e.sendAlert(a)
	e.sendAlert(m)
	e.send(wire.TypeAlertUpdate, wire.AlertUpdate{ID: "gate-1-pic-2", AlertID: "gate-1", EdgeID: northID, Time: at,
		Snapshot: testJPEG(t), SnapshotTime: at, Camera: "cam-road"})

	var got Record
	deadline := time.Now().Add(waitFor)
	for {
		getJSON(t, s, "/api/v1/alerts/gate-1", &got)
		if len(got.Updates) == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(got.Links) != 2 || got.Links[1].Camera != "cam-road" || !got.Links[0].ClipTo.Equal(at.Add(30*time.Second)) {
		t.Fatalf("links: %+v", got.Links)
	}
	if len(got.Updates) != 1 || got.Updates[0].Camera != "cam-road" || got.Updates[0].SnapshotURL == "" {
		t.Fatalf("picture update: %+v", got.Updates)
	}
	var mot Record
	getJSON(t, s, "/api/v1/alerts/motion-1", &mot)
	if mot.Gate == nil || mot.Gate.Door != "open" || !mot.Gate.Armed || mot.Gate.LastCredential != "card:04A2B9C1" {
		t.Fatalf("gate state: %+v", mot.Gate)
	}
}

// Links that name no camera, or clips that end before they start, are
// refused like any other malformed alert.
func TestAlertLinksValidated(t *testing.T) {
	a := testAlert(northID, "x")
	a.Links = []wire.Link{{Camera: ""}}
	if err := a.Validate(); err == nil {
		t.Error("link without a camera accepted")
	}
	now := time.Now()
	a.Links = []wire.Link{{Camera: "c", ClipFrom: now, ClipTo: now.Add(-time.Second)}}
	if err := a.Validate(); err == nil {
		t.Error("clip ending before it starts accepted")
	}
	a.Links = make([]wire.Link, 33)
	for i := range a.Links {
		a.Links[i].Camera = "c"
	}
	if err := a.Validate(); err == nil {
		t.Error("33 links accepted")
	}
}
