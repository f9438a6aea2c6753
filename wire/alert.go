package wire

import (
	"errors"
	"fmt"
	"time"
)

// Severity is the red / yellow / green scale of ARCHITECTURE.md.
type Severity string

// Severities, worst first.
const (
	Red    Severity = "red"
	Yellow Severity = "yellow"
	Green  Severity = "green"
)

// Valid reports whether s is one of the three known severities.
func (s Severity) Valid() bool { return s == Red || s == Yellow || s == Green }

// Rank orders severities: red 3, yellow 2, green 1, unknown 0.
func (s Severity) Rank() int {
	switch s {
	case Red:
		return 3
	case Yellow:
		return 2
	case Green:
		return 1
	}
	return 0
}

// maxIDLen bounds every edge-assigned ID (alerts, updates, batches).
const maxIDLen = 128

func checkID(what, id string) error {
	if id == "" || len(id) > maxIDLen {
		return fmt.Errorf("%s: id must be 1..%d characters", what, maxIDLen)
	}
	return nil
}

// Box is a bounding box in normalised image coordinates (0..1).
type Box struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
	W float64 `json:"w"`
	H float64 `json:"h"`
}

// Point is a point in normalised image coordinates (0..1 from the left
// and from the top).
type Point struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// Perimeter alert kinds (an edge's tripwires and dwell regions).
const (
	KindPerimeterCrossing = "perimeter.crossing" // Line, Direction, Path
	KindPerimeterLoiter   = "perimeter.loiter"   // Dwell, Since, Path
)

// Bounds of a perimeter alert's fields.
const (
	MaxPath     = 256 // points of Alert.Path
	maxRuleName = 128 // bytes of Alert.Line and Alert.Dwell
)

// Alert is one thing a guard must see. The edge assigns ID; central stores
// each ID once however often the edge re-sends it.
type Alert struct {
	ID       string    `json:"id"`
	EdgeID   string    `json:"edge_id"`
	SiteID   string    `json:"site_id"`
	Source   string    `json:"source"`   // camera or gate ID
	Kind     string    `json:"kind"`     // "motion", "tamper", "gate", ...
	Severity Severity  `json:"severity"` // red, yellow, green
	Time     time.Time `json:"time"`     // UTC instant of the event
	// TimeSource says where Time came from: "rtcp" (camera sender reports)
	// or "arrival" (the edge's clock when the frame arrived).
	TimeSource string   `json:"time_source,omitempty"`
	Summary    string   `json:"summary"`
	Boxes      []Box    `json:"boxes,omitempty"`
	Zones      []string `json:"zones,omitempty"`
	// Snapshot is a JPEG of the scene at SnapshotTime (base64 in JSON).
	Snapshot     []byte    `json:"snapshot,omitempty"`
	SnapshotTime time.Time `json:"snapshot_time,omitzero"`
	// Links are the cameras whose video explains the alert (the camera
	// itself; a gate's cameras), each with the clip the edge pins for it.
	// The pictures of a gate's further cameras follow as updates.
	Links []Link `json:"links,omitempty"`
	// Gate is the state, at Time, of the gate the source camera watches.
	Gate *GateState `json:"gate,omitempty"`
	// Count is how many times the cause has occurred so far when the
	// alert is raised (a gate's running count: "smoke again, 2nd time");
	// 0 means 1. Updates carry the count on (AlertUpdate.Count).
	Count int `json:"count,omitempty"`
	// Line is the tripwire a perimeter.crossing's object crossed and
	// Direction the way it went: "in" or "out" (the line's own sense,
	// set up at the edge).
	Line      string `json:"line,omitempty"`
	Direction string `json:"direction,omitempty"`
	// Dwell is the region a perimeter.loiter's object stayed in, from
	// Since until Time.
	Dwell string    `json:"dwell,omitempty"`
	Since time.Time `json:"since,omitzero"`
	// Path is a perimeter alert's object's way (where its feet were),
	// oldest first, ending at the event; drawn over the snapshot.
	Path []Point `json:"path,omitempty"`
	// Sensor is a sensor alert's reading, the threshold it crossed and
	// the readings before it (KindSensorWarning, KindSensorAlarm,
	// KindSensorSilent; sensors.go).
	Sensor *SensorAlert `json:"sensor,omitempty"`
}

// Link is a camera an alert refers to and the range of its video that the
// edge keeps (pinned) for the alert.
type Link struct {
	Camera   string    `json:"camera"`
	ClipFrom time.Time `json:"clip_from,omitzero"`
	ClipTo   time.Time `json:"clip_to,omitzero"`
}

// GateState is a gate as a camera alert reports it.
type GateState struct {
	Gate  string `json:"gate"`
	Name  string `json:"name,omitempty"`
	Door  string `json:"door"` // open, closed, unknown
	Armed bool   `json:"armed"`
	// LastGrant is the last access granted, and to which credential.
	LastGrant      time.Time `json:"last_grant,omitzero"`
	LastCredential string    `json:"last_credential,omitempty"`
}

// maxLinks bounds Alert.Links: an entrance has a handful of cameras.
const maxLinks = 32

// Validate checks what central relies on before it stores an alert.
func (a *Alert) Validate() error {
	if err := checkID("alert", a.ID); err != nil {
		return err
	}
	switch {
	case a.EdgeID == "":
		return errors.New("alert: edge_id is empty")
	case a.Source == "":
		return errors.New("alert: source is empty")
	case a.Kind == "":
		return errors.New("alert: kind is empty")
	case !a.Severity.Valid():
		return fmt.Errorf("alert: unknown severity %q", a.Severity)
	case a.Time.IsZero():
		return errors.New("alert: time is zero")
	case a.Gate != nil && a.Gate.Gate == "":
		return errors.New("alert: gate state without a gate")
	case a.Count < 0:
		return fmt.Errorf("alert: count %d is negative", a.Count)
	}
	if err := a.checkPerimeter(); err != nil {
		return err
	}
	if err := a.checkSensor(); err != nil {
		return err
	}
	return checkLinks("alert", a.Links)
}

// checkPerimeter checks a perimeter alert's fields (empty on others).
func (a *Alert) checkPerimeter() error {
	switch {
	case len(a.Line) > maxRuleName || len(a.Dwell) > maxRuleName:
		return fmt.Errorf("alert: line or dwell name over %d bytes", maxRuleName)
	case a.Direction != "" && a.Direction != "in" && a.Direction != "out":
		return fmt.Errorf("alert: direction %q is neither in nor out", a.Direction)
	case len(a.Path) > MaxPath:
		return fmt.Errorf("alert: path of %d points, at most %d", len(a.Path), MaxPath)
	}
	for i, p := range a.Path {
		if !(p.X >= 0 && p.X <= 1 && p.Y >= 0 && p.Y <= 1) {
			return fmt.Errorf("alert: path[%d] (%v, %v) is outside the picture", i, p.X, p.Y)
		}
	}
	return nil
}

// checkLinks checks an alert's or an update's links.
func checkLinks(what string, links []Link) error {
	if len(links) > maxLinks {
		return fmt.Errorf("%s: %d links, at most %d", what, len(links), maxLinks)
	}
	for i, l := range links {
		if l.Camera == "" {
			return fmt.Errorf("%s: links[%d]: camera is empty", what, i)
		}
		if !l.ClipTo.IsZero() && l.ClipTo.Before(l.ClipFrom) {
			return fmt.Errorf("%s: links[%d]: clip ends before it starts", what, i)
		}
	}
	return nil
}

// AlertUpdate is what the edge learns about an alert after raising it: the
// motion ended, the tamper cleared, a better picture, an escalation. It has
// its own ID so central applies it once however often it is re-sent.
type AlertUpdate struct {
	ID      string    `json:"id"`
	AlertID string    `json:"alert_id"`
	EdgeID  string    `json:"edge_id"`
	Time    time.Time `json:"time"`
	// Severity, if set, replaces the alert's severity (an escalation).
	Severity Severity `json:"severity,omitempty"`
	Summary  string   `json:"summary,omitempty"`
	// Ended is when the condition stopped (motion over, tamper cleared).
	Ended        time.Time `json:"ended,omitzero"`
	Snapshot     []byte    `json:"snapshot,omitempty"`
	SnapshotTime time.Time `json:"snapshot_time,omitzero"`
	// Camera is the camera the snapshot is from, when not the alert's
	// source (a gate's second camera).
	Camera string `json:"camera,omitempty"`
	// Boxes are the motion boxes of the update's snapshot.
	Boxes []Box `json:"boxes,omitempty"`
	// Count is how many times the cause has occurred so far, the first
	// included, when the update reports a recurrence folded into the
	// alert (a gate forced again); 0 when it is not a recurrence (a
	// picture, an all-clear). Central opens a new alert for a recurrence
	// whose alert a guard has already resolved, so none is swallowed.
	Count int `json:"count,omitempty"`
	// Links are cameras whose kept video grew with this update (a motion
	// incident that goes on): central widens the alert's link for each
	// camera to cover the new range, so an open detail's clip grows.
	Links []Link `json:"links,omitempty"`
}

// Validate checks an update before central applies it.
func (u *AlertUpdate) Validate() error {
	if err := checkID("alert_update", u.ID); err != nil {
		return err
	}
	switch {
	case u.AlertID == "":
		return errors.New("alert_update: alert_id is empty")
	case u.EdgeID == "":
		return errors.New("alert_update: edge_id is empty")
	case u.Severity != "" && !u.Severity.Valid():
		return fmt.Errorf("alert_update: unknown severity %q", u.Severity)
	case u.Time.IsZero():
		return errors.New("alert_update: time is zero")
	case u.Count < 0:
		return fmt.Errorf("alert_update: count %d is negative", u.Count)
	}
	return checkLinks("alert_update", u.Links)
}

// TypeAlertClosed (central → edge) says a guard closed one of the edge's
// alerts. An edge folds a recurring cause into its open alert; once that
// alert is closed it starts a new one instead. Older edges ignore the
// frame (their uplink logs an unknown type and reads on), and central
// opens a new alert for a recurrence of a resolved one either way.
const TypeAlertClosed = "alert_closed"

// AlertClosed is the body of TypeAlertClosed.
type AlertClosed struct {
	AlertID string    `json:"alert_id"`
	State   string    `json:"state"` // the closing state, "resolved"
	By      string    `json:"by,omitempty"`
	Time    time.Time `json:"time"`
}

// Validate checks an alert_closed frame before the edge acts on it.
func (c *AlertClosed) Validate() error {
	if err := checkID("alert_closed", c.AlertID); err != nil {
		return err
	}
	switch {
	case c.State == "":
		return errors.New("alert_closed: state is empty")
	case c.Time.IsZero():
		return errors.New("alert_closed: time is zero")
	}
	return nil
}

// Event is one normal (green) happening worth keeping but not worth a
// guard's attention: a gate opened with a grant, a camera reconnected.
type Event struct {
	// ID, if set, names the event for good on its edge (a gate event's
	// journal record): central stores an event with an ID once, however
	// often and in whichever batch it is re-sent after a crash.
	ID      string    `json:"id,omitempty"`
	Time    time.Time `json:"time"`
	Source  string    `json:"source"` // camera or gate ID
	Kind    string    `json:"kind"`   // "gate.opened", "gate.closed", ...
	Summary string    `json:"summary,omitempty"`
}

// MaxBatchEvents bounds one event batch.
const MaxBatchEvents = 1000

// EventBatch carries events in bulk: they are frequent and each is small.
type EventBatch struct {
	ID     string  `json:"id"`
	EdgeID string  `json:"edge_id"`
	Events []Event `json:"events"`
}

// Validate checks a batch before central stores it.
func (b *EventBatch) Validate() error {
	if err := checkID("event_batch", b.ID); err != nil {
		return err
	}
	switch {
	case b.EdgeID == "":
		return errors.New("event_batch: edge_id is empty")
	case len(b.Events) == 0 || len(b.Events) > MaxBatchEvents:
		return fmt.Errorf("event_batch: 1..%d events, not %d", MaxBatchEvents, len(b.Events))
	}
	for i, e := range b.Events {
		if e.Time.IsZero() || e.Source == "" || e.Kind == "" {
			return fmt.Errorf("event_batch: events[%d] needs time, source and kind", i)
		}
		if e.ID != "" {
			if err := checkID(fmt.Sprintf("event_batch: events[%d]", i), e.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// Ack tells the edge which outbox items (alerts, updates, batches, by ID)
// central has stored durably.
type Ack struct {
	IDs []string `json:"ids"`
}
