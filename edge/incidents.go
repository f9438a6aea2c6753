package edge

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/vigil-perimeter/vigil/edge/outbox"
	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/wire"
)

// Motion incidents: a camera's motion is one alert per activity, not one
// per motion event (issue #18: 78 cards in 12 minutes of the demo). The
// first motion event raises the alert; a later one that comes within the
// quiet gap (analysis.motion.incident_gap) of the previous one, while the
// incident is younger than analysis.motion.incident_max, becomes an
// update of it carrying its snapshot and boxes, and the alert's pinned
// video grows to cover it (the pin keeps its ID and start; only its end
// moves, so every second pinned stays pinned). When the gap passes
// without motion the incident ends with an update saying so (Ended). An
// escalation during the incident is an update too: red, with a summary
// saying why (the camera was armed meanwhile, or a gate it watches was
// forced). A guard closing the alert at central (alert_closed) ends the
// incident: the next motion raises a new alert.
//
// The incidents belong to the alert owner's goroutine (alertowner.go):
// the analysis goroutines only queue events, the gate worker and the
// uplink hand their news over as control messages, and the gap timer is
// the owner's, so it ends with the owner's context.

// incident is one camera's open motion incident.
type incident struct {
	id, cam  string
	severity wire.Severity
	summary  string    // the alert's summary
	start    time.Time // the first event's start
	last     time.Time // when the latest event was raised (its confirming picture)
	deadline time.Time // the owner's clock: the incident ends then without motion
	events   int
	pinFrom  time.Time // the pinned range (alert ID as pin ID)
	pinTo    time.Time
}

// motionIncidents are the open incidents, by camera; owned by the alert
// owner's goroutine.
type motionIncidents struct {
	edgeID string
	o      incidentParent
	log    *slog.Logger
	rules  func() motion.IncidentRules // the config in force
	open   map[string]*incident
	now    func() time.Time
}

// incidentParent is what the incidents use of their alert owner.
type incidentParent interface {
	links(cams []string, at time.Time) []wire.Link
	raise(wire.Alert) bool
	pin(a wire.Alert, cam string, at time.Time)
	update(u wire.AlertUpdate, class wire.Severity) bool
	clipStore() alertClips
}

func newMotionIncidents(edgeID string, o incidentParent, log *slog.Logger) *motionIncidents {
	return &motionIncidents{edgeID: edgeID, o: o, log: log, open: map[string]*incident{}, now: time.Now,
		rules: func() motion.IncidentRules { return motion.IncidentRules{}.WithDefaults() }}
}

// raisedAt is when a motion alert's event was raised: the time of the
// picture that confirmed it, else the start of its evidence.
func raisedAt(a wire.Alert) time.Time {
	if !a.SnapshotTime.IsZero() {
		return a.SnapshotTime
	}
	return a.Time
}

// next is the earliest incident deadline; ok is false with none open.
func (m *motionIncidents) next() (t time.Time, ok bool) {
	for _, in := range m.open {
		if !ok || in.deadline.Before(t) {
			t, ok = in.deadline, true
		}
	}
	return t, ok
}

// motionJob raises a motion alert, or folds it into its camera's open
// incident as an update.
func (m *motionIncidents) motionJob(j alertJob) {
	o := m.o
	r := m.rules()
	at := raisedAt(j.a)
	in := m.open[j.pinCam]
	if in != nil && !r.Continues(in.start, in.last, at) {
		why := overSummary(in)
		if at.Sub(in.last) <= r.Gap {
			why = fmt.Sprintf("Over: %s — activity went on for over %v, a new alert follows", in.summary, r.Max)
		}
		m.endIncident(in, why)
		in = nil
	}
	if in != nil {
		m.continueIncident(in, j, at, r)
		return
	}
	a := j.a
	a.Links = o.links([]string{j.pinCam}, j.pinAt)
	if !o.raise(a) {
		return
	}
	o.pin(a, j.pinCam, j.pinAt)
	in = &incident{id: a.ID, cam: j.pinCam, severity: a.Severity, summary: a.Summary, start: a.Time, last: at,
		deadline: m.now().Add(r.Gap), events: 1}
	if len(a.Links) == 1 {
		in.pinFrom, in.pinTo = a.Links[0].ClipFrom, a.Links[0].ClipTo
	}
	m.open[j.pinCam] = in
}

// continueIncident sends a later motion event of an open incident as an
// update of its alert (picture, boxes, count; red if the camera was armed
// since) and grows the alert's pin to cover it.
func (m *motionIncidents) continueIncident(in *incident, j alertJob, at time.Time, r motion.IncidentRules) {
	in.events++
	in.last, in.deadline = at, m.now().Add(r.Gap)
	u := wire.AlertUpdate{ID: newAlertID(m.edgeID, at), AlertID: in.id, EdgeID: m.edgeID, Time: at.UTC(),
		Snapshot: j.a.Snapshot, SnapshotTime: j.a.SnapshotTime, Boxes: j.a.Boxes, Count: in.events,
		Summary: fmt.Sprintf("%s (%d motion events)", in.summary, in.events)}
	if j.a.Severity.Rank() > in.severity.Rank() {
		in.severity, in.summary = j.a.Severity, j.a.Summary
		u.Severity = j.a.Severity
		u.Summary = fmt.Sprintf("Escalated: %s — the camera was armed during this activity (%d motion events)", j.a.Summary, in.events)
	}
	if m.growPin(in, j.pinAt) {
		u.Links = []wire.Link{{Camera: in.cam, ClipFrom: in.pinFrom.UTC(), ClipTo: in.pinTo.UTC()}}
	}
	m.o.update(u, in.severity)
}

// growPin extends the incident's pin to the post-roll of an event at at:
// same pin ID, same start, a later end. It reports whether the pinned
// range grew (the update then tells central, whose clip link follows).
func (m *motionIncidents) growPin(in *incident, at time.Time) bool {
	cs := m.o.clipStore()
	from, to, err := cs.PinWindow(in.cam, at)
	if err != nil {
		m.log.Warn("video for motion incident not extended", "alert", in.id, "camera", in.cam, "err", err)
		return false
	}
	if in.pinFrom.IsZero() || from.Before(in.pinFrom) {
		in.pinFrom = from
	}
	if !to.After(in.pinTo) {
		return false
	}
	in.pinTo = to
	if _, err := cs.PinRange(in.id, in.cam, in.pinFrom, in.pinTo, "motion"); err != nil {
		m.log.Warn("video for motion incident not extended", "alert", in.id, "camera", in.cam, "err", err)
		return false
	}
	return true
}

// endIncident sends the update that ends an incident and forgets it.
func (m *motionIncidents) endIncident(in *incident, summary string) {
	delete(m.open, in.cam)
	u := wire.AlertUpdate{ID: newAlertID(m.edgeID, in.last), AlertID: in.id, EdgeID: m.edgeID, Time: m.now().UTC(),
		Ended: in.last.UTC(), Summary: summary}
	m.o.update(u, in.severity)
}

// expire ends the incidents whose quiet gap has passed.
func (m *motionIncidents) expire() {
	now := m.now()
	for _, in := range m.open {
		if !now.Before(in.deadline) {
			m.endIncident(in, overSummary(in))
		}
	}
}

// overSummary says an incident ended after its quiet gap.
func overSummary(in *incident) string {
	return fmt.Sprintf("Over: %s — %d motion events, %s to %s UTC", in.summary, in.events,
		in.start.UTC().Format("15:04:05"), in.last.UTC().Format("15:04:05"))
}

// alertClosed ends the incident of an alert a guard closed at central
// (nothing is sent: the alert is closed); the next motion on its camera
// raises a new alert.
func (m *motionIncidents) alertClosed(id string) {
	for cam, in := range m.open {
		if in.id == id {
			delete(m.open, cam)
			m.log.Info("motion incident ended: central closed its alert", "alert", id, "camera", cam)
		}
	}
}

// gateForced escalates the open incidents of the cameras that watch a gate
// that was just forced: red, saying why.
func (m *motionIncidents) gateForced(cams []string, why string, at time.Time) {
	for _, cam := range cams {
		in := m.open[cam]
		if in == nil || in.severity == wire.Red {
			continue
		}
		in.severity = wire.Red
		u := wire.AlertUpdate{ID: newAlertID(m.edgeID, at), AlertID: in.id, EdgeID: m.edgeID, Time: at.UTC(), Severity: wire.Red,
			Summary: fmt.Sprintf("Escalated: %s during this activity (%s)", why, in.summary)}
		m.o.update(u, wire.Red)
	}
}

// update stores an update of one of the owner's alerts; it reports
// whether it was stored.
func (o *alertOwner) update(u wire.AlertUpdate, class wire.Severity) bool {
	if err := u.Validate(); err != nil {
		o.log.Error("dropping malformed alert update (a bug in this edge)", "update", u.ID, "alert", u.AlertID, "err", err)
		return false
	}
	if err := o.box.use(func(b *outbox.Outbox) error { return b.AppendUpdate(u, class) }); err != nil {
		o.log.Error("ALERT UPDATE NOT STORED", "update", u.ID, "alert", u.AlertID, "err", err)
		return false
	}
	if o.onUpdate != nil {
		o.onUpdate(u)
	}
	return true
}

// gateForced is the gate worker's news that a gate watched by cams was
// forced: the owner escalates their open motion incidents.
func (o *alertOwner) gateForced(cams []string, why string, at time.Time) {
	o.control("gate_forced", func(m *motionIncidents) { m.gateForced(cams, why, at) })
}

// clipStore is the clip store the owner pins video in.
func (o *alertOwner) clipStore() alertClips { return o.clips }
