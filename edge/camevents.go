package edge

import (
	"fmt"
	"strings"
	"time"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/camera"
	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/wire"
)

// cameraEvents is every camera's parent (camera.Parent) and the clip
// store's condition sink: it turns their callbacks into alerts for the
// alert owner and hands access units to the recorder, the self-test's
// clock and the live view. It runs on the cameras' goroutines and never
// waits: names come from the config in force (an atomic snapshot), gate
// states from the engine's published snapshot.
type cameraEvents struct {
	edgeID, siteID string
	conf           *configEngine
	alerts         *alertOwner
	// Set by the composition root before the cameras run (node.go).
	gates *gateSide // nil without gates
	clips interface {
		Write(cam string, au streams.AccessUnit)
	}
	camClock *camClocks
	live     *liveHub
	upstream *gbLive     // GB/T 28181 live calls; nil without gb28181
	boxes    interface { // the motion box log (edge/boxlog)
		Add(cam string, t time.Time, boxes []wire.Box)
	}
}

var (
	_ camera.Parent  = (*cameraEvents)(nil)
	_ camera.BoxSink = (*cameraEvents)(nil)
)

// OnMotionBoxes keeps an analysed frame's moving objects for playback's
// overlay; the box log never waits (it drops and counts instead).
func (c *cameraEvents) OnMotionBoxes(cam string, t time.Time, boxes []motion.Box) {
	wb := make([]wire.Box, len(boxes))
	for i, b := range boxes {
		wb[i] = wire.Box{X: b.X, Y: b.Y, W: b.W, H: b.H}
	}
	c.boxes.Add(cam, t, wb)
}

// OnMotion turns a camera's motion event into an alert for the alert
// owner to raise (alertowner.go). It runs on the camera's analysis
// goroutine and never waits: the gates' state comes from the engine's
// published snapshot, the outbox write and the video pin are the owner's.
func (c *cameraEvents) OnMotion(ev camera.Event) {
	cc, _ := c.conf.camera(ev.Camera)
	sev, what := wire.Yellow, "Motion"
	if cc.Armed {
		sev, what = wire.Red, "Intrusion: motion while armed"
	}
	name := cc.Name
	if name == "" {
		name = cc.ID
	}
	note, gate := c.gates.watched(ev.Camera)
	a := wire.Alert{
		ID: newAlertID(c.edgeID, ev.Start), EdgeID: c.edgeID, SiteID: c.siteID,
		Source: ev.Camera, Kind: "motion", Severity: sev, Time: ev.Start.UTC(), TimeSource: ev.TimeSource,
		Summary: fmt.Sprintf("%s at %s%s", what, name, note), Snapshot: ev.Snapshot, SnapshotTime: ev.SnapshotTime.UTC(),
		Zones: ev.Zones, Gate: gate,
	}
	for _, b := range ev.Boxes {
		a.Boxes = append(a.Boxes, wire.Box{X: b.X, Y: b.Y, W: b.W, H: b.H})
	}
	c.alerts.queue(alertJob{a: a, pinCam: ev.Camera, pinAt: ev.Start, motion: true})
}

// OnPerimeter turns a line crossing or a loitering into an alert:
// perimeter.crossing or perimeter.loiter, red while the camera is armed,
// yellow while it is not (as motion), naming the line and the way or the
// area and how long, with the watched gates' state. Each is its own alert,
// never folded into the camera's motion incident; the video around it is
// pinned (for a loiter, from the object's entry). Like OnMotion it only
// queues the alert for the alert owner.
func (c *cameraEvents) OnPerimeter(ev camera.PerimeterEvent) {
	cc, _ := c.conf.camera(ev.Camera)
	sev := wire.Yellow
	if cc.Armed {
		sev = wire.Red
	}
	note, gate := c.gates.watched(ev.Camera)
	a := wire.Alert{
		ID: newAlertID(c.edgeID, ev.Time), EdgeID: c.edgeID, SiteID: c.siteID,
		Source: ev.Camera, Severity: sev, Time: ev.Time.UTC(), TimeSource: ev.TimeSource,
		Summary: perimeterSummary(ev, displayName(cc.Name, ev.Camera)) + note, Snapshot: ev.Snapshot, SnapshotTime: ev.SnapshotTime.UTC(),
		Gate: gate, Path: wirePath(ev.Path),
	}
	if b := ev.Box; b.W > 0 && b.H > 0 {
		a.Boxes = []wire.Box{{X: b.X, Y: b.Y, W: b.W, H: b.H}}
	}
	j := alertJob{pinCam: ev.Camera, pinAt: ev.Time}
	if ev.Kind == camera.PerimeterLoiter {
		a.Kind, a.Dwell, a.Since = wire.KindPerimeterLoiter, ev.Name, ev.Since.UTC()
		j.pinFrom = loiterPinFrom(ev.Since, ev.Time)
	} else {
		a.Kind, a.Line, a.Direction = wire.KindPerimeterCrossing, ev.Name, wireDirection(ev.Direction)
	}
	j.a = a
	c.alerts.queue(j)
}

// OnTamper turns a tamper condition into an alert: a camera that cannot
// see is red, one that sends nothing is yellow (ARCHITECTURE.md, decision
// 6), and the all-clear is green so the guard knows it is over. Like
// OnMotion it only queues the alert for the alert owner.
func (c *cameraEvents) OnTamper(ev camera.TamperEvent) {
	cc, _ := c.conf.camera(ev.Camera)
	name := cc.Name
	if name == "" {
		name = cc.ID
	}
	sev := wire.Red
	what := map[string]string{
		camera.TamperCovered:    "Camera covered",
		camera.TamperBlinded:    "Camera blinded by light",
		camera.TamperDefocused:  "Camera out of focus",
		camera.TamperMoved:      "Camera turned away from its scene",
		camera.TamperSignalLost: "Camera offline",
		camera.TamperTooDark:    "Camera too dark to see",
	}[ev.Kind]
	if what == "" {
		what = "Camera tampered (" + ev.Kind + ")"
	}
	// Offline and too dark (dusk before the IR switch, a lamp that
	// failed) mean "look", not "someone is attacking the camera".
	look := ev.Kind == camera.TamperSignalLost || ev.Kind == camera.TamperTooDark
	if look {
		sev = wire.Yellow
	}
	if ev.Cleared {
		sev, what = wire.Green, "Restored: "+strings.ToLower(what[:1])+what[1:]
	}
	summary := fmt.Sprintf("%s: %s", what, name)
	if ev.Detail != "" {
		summary += " (" + ev.Detail + ")"
	}
	a := wire.Alert{
		ID: newAlertID(c.edgeID, ev.Time), EdgeID: c.edgeID, SiteID: c.siteID,
		Source: ev.Camera, Kind: "tamper." + ev.Kind, Severity: sev, Time: ev.Time.UTC(),
		Summary: summary, Snapshot: ev.Snapshot, SnapshotTime: ev.SnapshotTime.UTC(),
	}
	j := alertJob{a: a}
	if !ev.Cleared && !look { // the video of an attack on the camera is kept
		j.pinCam, j.pinAt = ev.Camera, ev.Time
	}
	c.alerts.queue(j)
}

// OnAccessUnit records every unit of every camera; it never blocks.
func (c *cameraEvents) OnAccessUnit(cam string, au streams.AccessUnit) {
	c.clips.Write(cam, au)
	c.camClock.observe(cam, au)
	c.live.feed(cam, au)
	c.upstream.feed(cam, au)
}

// OnAnalysis turns a camera's analysis health change into an alert: yellow
// (look: the camera is not being watched properly) while degraded, green
// when it recovers.
func (c *cameraEvents) OnAnalysis(ev camera.AnalysisEvent) {
	name := c.conf.cameraName(ev.Camera)
	sev, what := wire.Yellow, "Camera video too damaged to analyse"
	if !ev.Degraded {
		sev, what = wire.Green, "Restored: camera video analysed again"
	}
	summary := fmt.Sprintf("%s: %s", what, name)
	if ev.Detail != "" {
		summary += " (" + ev.Detail + ")"
	}
	a := wire.Alert{
		ID: newAlertID(c.edgeID, ev.Time), EdgeID: c.edgeID, SiteID: c.siteID,
		Source: ev.Camera, Kind: analysisDegradedKind, Severity: sev, Time: ev.Time.UTC(), Summary: summary,
	}
	// Raising goes through the outbox (an fsync): never on the camera's
	// analysis goroutine.
	c.alerts.raiseInOrder(a)
}

// onClipCondition runs on the store's writer goroutine: raising goes
// through the outbox (an fsync), so it is queued for the node's alert
// owner (alertowner.go).
func (c *cameraEvents) onClipCondition(cond clips.Condition) {
	sev := wire.Red
	if !cond.Active {
		sev = wire.Green
	}
	a := wire.Alert{
		ID: newAlertID(c.edgeID, cond.Since), EdgeID: c.edgeID, SiteID: c.siteID,
		Source: "recorder", Kind: "system.clips." + cond.Kind, Severity: sev, Time: cond.Since.UTC(), Summary: cond.Message,
	}
	c.alerts.raiseInOrder(a)
}

// analysisDegradedKind is the alert a camera raises while it streams but
// too little of its video is analysed (damaged or undecodable pictures):
// online, yet not watching.
const analysisDegradedKind = "camera.analysis_degraded"
