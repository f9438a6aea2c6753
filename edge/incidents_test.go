package edge

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/wire"
)

// incidentRig is an incidentParent that records what the incidents raise,
// update and pin, on a clock the test moves.
type incidentRig struct {
	alerts  []wire.Alert
	updates []wire.AlertUpdate
	pins    map[string][2]time.Time
	now     time.Time
}

func (r *incidentRig) links(cams []string, at time.Time) []wire.Link {
	from, to, _ := r.PinWindow(cams[0], at)
	return []wire.Link{{Camera: cams[0], ClipFrom: from, ClipTo: to}}
}
func (r *incidentRig) raise(a wire.Alert) bool { r.alerts = append(r.alerts, a); return true }
func (r *incidentRig) pin(a wire.Alert, cam string, at time.Time) {
	from, to, _ := r.PinWindow(cam, at)
	r.pins[a.ID] = [2]time.Time{from, to}
}
func (r *incidentRig) update(u wire.AlertUpdate, _ wire.Severity) bool {
	if err := u.Validate(); err != nil {
		panic(err)
	}
	r.updates = append(r.updates, u)
	return true
}
func (r *incidentRig) clipStore() alertClips { return r }
func (r *incidentRig) PinWindow(_ string, at time.Time) (time.Time, time.Time, error) {
	return at.Add(-10 * time.Second), at.Add(30 * time.Second), nil
}
func (r *incidentRig) Pin(string, string, time.Time, string) (clips.Pin, error) {
	return clips.Pin{}, nil
}
func (r *incidentRig) PinRange(id, _ string, from, to time.Time, _ string) (clips.Pin, error) {
	r.pins[id] = [2]time.Time{from, to}
	return clips.Pin{ID: id, From: from, To: to}, nil
}

// TestMotionIncidentRules walks one camera's incidents on an explicit
// clock: the first event raises, later ones update (picture, boxes, a
// growing pin), arming and a forced gate escalate, the quiet gap ends the
// incident, central closing the alert ends it without a word, and an
// incident older than incident_max gives way to a new alert.
func TestMotionIncidentRules(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	r := &incidentRig{pins: map[string][2]time.Time{}, now: t0}
	m := newMotionIncidents("edge-1", r, slog.Default())
	m.rules = func() motion.IncidentRules { return motion.IncidentRules{Gap: time.Minute, Max: 10 * time.Minute} }
	m.now = func() time.Time { return r.now }
	n := 0
	motionAt := func(sec int, sev wire.Severity) {
		n++
		r.now = t0.Add(time.Duration(sec) * time.Second)
		a := wire.Alert{ID: "a" + strings.Repeat("x", n), EdgeID: "edge-1", SiteID: "s", Source: "cam", Kind: "motion", Severity: sev,
			Time: r.now.Add(-time.Second), Summary: "Motion at Cam", Snapshot: []byte{byte(n)}, SnapshotTime: r.now,
			Boxes: []wire.Box{{X: 0.1, Y: 0.2, W: 0.3, H: 0.4}}}
		m.motionJob(alertJob{a: a, pinCam: "cam", pinAt: a.Time, motion: true})
	}
	motionAt(0, wire.Yellow)
	motionAt(40, wire.Yellow)
	if len(r.alerts) != 1 || len(r.updates) != 1 {
		t.Fatalf("two events 40 s apart: %d alerts, %d updates; want one alert and one update", len(r.alerts), len(r.updates))
	}
	id := r.alerts[0].ID
	u := r.updates[0]
	if u.AlertID != id || len(u.Snapshot) != 1 || u.Snapshot[0] != 2 || len(u.Boxes) != 1 || u.Count != 2 || u.Severity != "" {
		t.Fatalf("continuation update %+v", u)
	}
	if p := r.pins[id]; !p[0].Equal(t0.Add(-11*time.Second)) || !p[1].Equal(t0.Add(69*time.Second)) {
		t.Fatalf("pin %v, want the first event's pre-roll to the second's post-roll", p)
	}
	motionAt(80, wire.Red) // the camera was armed meanwhile
	if u := r.updates[1]; u.Severity != wire.Red || !strings.Contains(u.Summary, "armed") {
		t.Fatalf("arming escalation %+v", u)
	}
	m.gateForced([]string{"cam"}, "North gate was forced", r.now)
	if len(r.updates) != 2 {
		t.Fatalf("a red incident escalated again: %+v", r.updates[2:])
	}

	// The gap passes: the incident ends; the next motion is a new alert.
	if next, ok := m.next(); !ok || !next.Equal(r.now.Add(time.Minute)) {
		t.Fatalf("next deadline %v %v", next, ok)
	}
	r.now = r.now.Add(time.Minute)
	m.expire()
	if u := r.updates[2]; u.AlertID != id || u.Ended.IsZero() || !strings.HasPrefix(u.Summary, "Over: ") {
		t.Fatalf("end update %+v", u)
	}
	motionAt(200, wire.Yellow)
	if len(r.alerts) != 2 {
		t.Fatal("motion after the incident ended did not raise a new alert")
	}
	m.gateForced([]string{"cam"}, "North gate was forced", r.now)
	if u := r.updates[3]; u.AlertID != r.alerts[1].ID || u.Severity != wire.Red || !strings.Contains(u.Summary, "North gate was forced") {
		t.Fatalf("forced-gate escalation %+v", u)
	}

	// Central closes it: no update, and the next motion is a new alert.
	m.alertClosed(r.alerts[1].ID)
	motionAt(210, wire.Yellow)
	if len(r.alerts) != 3 || len(r.updates) != 4 {
		t.Fatalf("after alert_closed: %d alerts, %d updates", len(r.alerts), len(r.updates))
	}

	// Activity that never goes quiet: a new alert every incident_max.
	for sec := 250; sec <= 900; sec += 40 {
		motionAt(sec, wire.Yellow)
	}
	if len(r.alerts) != 4 {
		t.Fatalf("%d alerts over 11 minutes of constant motion, want a new one after 10", len(r.alerts))
	}
	var ended int
	for _, u := range r.updates {
		if !u.Ended.IsZero() {
			ended++
		}
	}
	if ended != 2 {
		t.Fatalf("%d incidents ended, want 2 (the gap, incident_max)", ended)
	}
}

// TestArmingAndIncidentRulesApplyLive: arming a camera and changing the
// incident rules take effect without a restart (both are read from the
// config in force at each event), so arming during an activity escalates
// its incident at the next motion.
func TestArmingAndIncidentRulesApplyLive(t *testing.T) {
	running := conf.Config{EdgeID: "e", Cameras: []conf.CameraConfig{{ID: "cam"}}}
	next := running
	next.Cameras = []conf.CameraConfig{{ID: "cam", Armed: true}}
	next.Analysis.Motion.IncidentGap = config.Duration(90 * time.Second)
	if !liveOnly(running, next, false) {
		t.Fatal("arming a camera or changing analysis.motion needs a restart")
	}
	next.Cameras[0].URL = "rtsp://elsewhere/"
	if liveOnly(running, next, false) {
		t.Fatal("a camera's URL changed live")
	}
}
