// Package edgewire turns the gate machines' alerts into the messages an
// edge sends to central: a new alert becomes a wire.Alert of kind
// "gate.<cause>", every later output for it (a higher count, an
// escalation, the all-clear) a wire.AlertUpdate pointing at it, and a
// passage a green wire.Event for the log, not an alert.
package edgewire

import (
	"time"

	"github.com/vigil-perimeter/vigil/gates"
	"github.com/vigil-perimeter/vigil/wire"
)

// KindPrefix starts the kind of every gate alert and event.
const KindPrefix = "gate."

// Converter remembers which wire alert each open gate alert became. It is
// not safe for concurrent use: call it from the engine's OnAlert, which is
// serial. Its memory is bounded by gates × causes × devices.
type Converter struct {
	EdgeID, SiteID string
	// NewID returns a fresh, unique outbox ID (the edge's alert ID scheme).
	NewID func(t time.Time) string
	open  map[key]string
}

type key struct {
	gate   string
	cause  gates.Cause
	device string
}

// Out is what one gate alert becomes: exactly one field is set.
type Out struct {
	Alert  *wire.Alert
	Update *wire.AlertUpdate
	Event  *wire.Event
}

// Convert maps one machine output.
func (c *Converter) Convert(a gates.Alert) Out {
	if c.open == nil {
		c.open = map[key]string{}
	}
	t := a.Time.UTC()
	if a.Key == gates.CausePassage {
		return Out{Event: &wire.Event{Time: t, Source: a.Gate, Kind: KindPrefix + string(a.Key), Summary: a.Summary}}
	}
	k := key{a.Gate, a.Key, a.Device}
	alertID, known := c.open[k]
	if !a.Update || !known { // an update without its alert (cannot happen in one process) is raised afresh
		id := c.NewID(t)
		c.open[k] = id
		return Out{Alert: &wire.Alert{ID: id, EdgeID: c.EdgeID, SiteID: c.SiteID, Source: a.Gate,
			Kind: KindPrefix + string(a.Key), Severity: a.Severity, Time: t, Summary: a.Summary, Count: a.Count}}
	}
	u := &wire.AlertUpdate{ID: c.NewID(t), AlertID: alertID, EdgeID: c.EdgeID, Time: t, Severity: a.Severity, Summary: a.Summary}
	if a.Cleared {
		u.Ended = t
	} else {
		// The running count: central tells a recurrence (count up) from
		// an escalation and opens a new alert if the guard has closed
		// this one already.
		u.Count = a.Count
	}
	return Out{Update: u}
}
