package central

import (
	"log/slog"

	"github.com/vigil-perimeter/vigil/central/notify"
	"github.com/vigil-perimeter/vigil/wire"
)

// changeCause is what made a stored change: the outlets tell a new alert
// from an edge's update, a guard's step and an escalation by it.
type changeCause uint8

const (
	causeUpdate   changeCause = iota // an edge's update of an alert
	causeNew                         // a new alert (an edge's, or a successor an update opened)
	causeStep                        // a workflow step (acknowledge, dispatch, resolve)
	causeEscalate                    // central escalated a red alert nobody acknowledged
)

// publisher is where alert events go out (notify.Notifier): it queues
// and returns at once.
type publisher interface {
	Publish(notify.Event)
}

// edgeSender hands a frame to a connected edge without waiting (false:
// not connected, or its queue is full).
type edgeSender interface {
	sendTo(edgeID string, frame []byte) bool
}

// alarmOutlets carries every stored change beyond the consoles: out to
// MQTT and webhooks (notify), an alert_closed frame to the owning edge
// when a guard resolves its alert (so the edge stops folding recurrences
// into it), and to the escalator. The writer calls observe in its
// goroutine after each batch, in sequence order; nothing here blocks.
type alarmOutlets struct {
	notify publisher  // nil: no notify section
	edges  edgeSender // nil in tests without an edge hub
	log    *slog.Logger
}

// observe is the writer's observer (writer.observers).
func (a *alarmOutlets) observe(changes []Change) {
	for i := range changes {
		c := &changes[i]
		if a.notify != nil {
			a.notify.Publish(notifyEvent(c))
		}
		if c.cause == causeStep && c.Record.State == StateResolved && a.edges != nil {
			a.tellEdge(&c.Record)
		}
	}
}

// tellEdge sends the alert's edge an alert_closed frame. An edge that is
// offline, or too busy to take it, misses it: central still opens a new
// alert for a recurrence (putUpdate), so nothing is swallowed either way.
func (a *alarmOutlets) tellEdge(r *Record) {
	last := r.History[len(r.History)-1]
	id := r.ID
	if r.EdgeAlertID != "" {
		id = r.EdgeAlertID
	}
	frame, err := wire.Marshal(wire.TypeAlertClosed, wire.AlertClosed{AlertID: id, State: r.State, By: last.Actor, Time: last.At})
	if err != nil {
		panic("central: alert_closed does not marshal: " + err.Error())
	}
	if !a.edges.sendTo(r.EdgeID, frame) {
		a.log.Debug("alert_closed not sent: the edge is offline or busy", "edge_id", r.EdgeID, "alert_id", id)
	}
}

// notifyEvent is the event a change sends out (central/notify/README.md):
// type by cause; for a step the previous state, who and when.
func notifyEvent(c *Change) notify.Event {
	r := &c.Record
	e := notify.Event{Seq: c.Seq, AlertID: r.ID, Site: r.SiteID, Edge: r.EdgeID, Source: r.Source, Kind: r.Kind,
		Severity: string(r.Severity), Priority: r.Priority, State: r.State, Count: max(r.Count, 1),
		Time: r.Time, Summary: r.Summary}
	last := r.History[len(r.History)-1]
	switch c.cause {
	case causeNew:
		e.Type, e.StateTime = notify.TypeNew, r.ReceivedAt
	case causeStep:
		e.Type, e.By, e.StateTime = notify.TypeState, last.Actor, last.At
		if n := len(r.History); n >= 2 {
			e.PrevState = r.History[n-2].State
		}
	case causeEscalate:
		e.Type, e.By, e.StateTime = notify.TypeEscalated, actorSystem, r.EscalatedAt
	default:
		e.Type, e.StateTime = notify.TypeUpdate, r.UpdatedAt
	}
	return e
}

// edgeFrames is the edge hub as an edgeSender.
type edgeFrames struct{ hub *edgeHub }

func (e edgeFrames) sendTo(edgeID string, frame []byte) bool {
	for _, c := range e.hub.connections() {
		if c.edge.ID == edgeID {
			select {
			case <-c.welcomed: // nothing goes before the welcome
				return c.trySend(frame)
			default:
				return false
			}
		}
	}
	return false
}
