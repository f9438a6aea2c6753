package central

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/vigil-perimeter/vigil/central/audit"
	"github.com/vigil-perimeter/vigil/wire"
)

// Escalation, as recorded.
const (
	actorSystem         = "system" // the actor of central's own steps
	noteEscalated       = "escalated: not acknowledged in time"
	auditActionEscalate = "alert_escalate" // a-z, 0-9 and _ only (central/audit)
)

// escalator escalates, once, every red alert still raised
// alarms.escalate_after after it arrived: it submits an escalate op to
// the writer (the one owner of alerts), which sets escalated_at and adds
// a system step; consoles and notify get that change like any other, and
// the escalator records it in the audit log. Its one goroutine (run)
// owns the schedule, built at start from the store's open alerts (so a
// restart loses none) and kept from the changes the writer hands it
// (observe). The writer's op decides: an alert acknowledged meanwhile is
// not escalated, whatever the schedule said.
type escalator struct {
	after  time.Duration
	submit func(o *op, cancel <-chan struct{}) bool // the writer's
	open   func() ([]Record, error)                 // the open alerts now
	record func(rec Record) error                   // the audit entry
	log    *slog.Logger

	mu      sync.Mutex
	pending []Record      // changed alerts handed over by the writer
	wake    chan struct{} // cap 1: pending is not empty
}

func newEscalator(after time.Duration, submit func(*op, <-chan struct{}) bool, open func() ([]Record, error),
	record func(Record) error, log *slog.Logger) *escalator {
	return &escalator{after: after, submit: submit, open: open, record: record, log: log, wake: make(chan struct{}, 1)}
}

// waiting reports whether r is a red alert nobody has acknowledged and
// central has not escalated yet (self-tests never escalate: they are for
// installers).
func waiting(r *Record) bool {
	return r.State == StateRaised && r.Severity == wire.Red && r.EscalatedAt.IsZero() && r.Kind != KindSelfTest
}

// observe takes a batch's changes (the writer's goroutine): it never
// blocks on the escalator.
func (e *escalator) observe(changes []Change) {
	e.mu.Lock()
	for i := range changes {
		e.pending = append(e.pending, changes[i].Record)
	}
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// run keeps the schedule and escalates what is due until ctx ends.
func (e *escalator) run(ctx context.Context) {
	due := map[string]time.Time{}
	open, err := e.open()
	if err != nil {
		e.log.Error("escalation: reading open alerts failed; only new alerts will escalate", "err", err)
	}
	for i := range open {
		e.schedule(due, &open[i])
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		timer.Reset(time.Until(earliest(due)))
		select {
		case <-ctx.Done():
			return
		case <-e.wake:
			e.mu.Lock()
			recs := e.pending
			e.pending = nil
			e.mu.Unlock()
			for i := range recs {
				e.schedule(due, &recs[i])
			}
		case <-timer.C:
			now := time.Now()
			for id, t := range due {
				if !t.After(now) {
					delete(due, id)
					e.escalate(ctx, id)
				}
			}
		}
	}
}

func (e *escalator) schedule(due map[string]time.Time, r *Record) {
	if waiting(r) {
		if _, ok := due[r.ID]; !ok {
			due[r.ID] = r.ReceivedAt.Add(e.after)
		}
		return
	}
	delete(due, r.ID)
}

// earliest is the first due time (far ahead when nothing is due).
func earliest(due map[string]time.Time) time.Time {
	first := time.Now().Add(time.Hour)
	for _, t := range due {
		if t.Before(first) {
			first = t
		}
	}
	return first
}

// escalate asks the writer to escalate id and records it once stored.
func (e *escalator) escalate(ctx context.Context, id string) {
	done := make(chan error, 1)
	o := &op{escalate: id, done: func(_ *op, err error) { done <- err }}
	if !e.submit(o, ctx.Done()) {
		return
	}
	select {
	case err := <-done:
		switch {
		case err != nil:
			e.log.Error("escalation not stored", "alert_id", id, "err", err)
		case errors.Is(o.err, ErrConflict), errors.Is(o.err, ErrNotFound):
			// Acknowledged, downgraded or escalated meanwhile.
		case o.err != nil:
			e.log.Error("escalation failed", "alert_id", id, "err", o.err)
		case o.changed:
			e.log.Warn("alert escalated: red and not acknowledged in time", "alert_id", id, "site", o.rec.SiteID, "kind", o.rec.Kind)
			_ = e.record(o.rec)
		}
	case <-ctx.Done():
	}
}

// escalationAudit records an escalation in the audit log, once per
// alert (keyed), as the system: the actor is central itself.
func escalationAudit(a *auditor, after time.Duration) func(Record) error {
	return func(r Record) error {
		secs := math.Round(after.Seconds()*1000) / 1000
		d, err := auditDetails(map[string]any{"after_s": secs, "severity": r.Severity, "kind": r.Kind, "site": r.SiteID}, "")
		if err == nil {
			_, _, err = a.log.AppendOnce("escalate/"+r.ID, audit.Entry{Actor: audit.Actor{User: actorSystem, Role: actorSystem},
				Action: auditActionEscalate, Target: r.ID, Details: d})
		}
		if err != nil {
			a.failures.WithLabelValues(auditActionEscalate).Inc()
			a.logger.Error("audit entry not written", "action", auditActionEscalate, "target", r.ID, "err", err)
			return err
		}
		a.entries.WithLabelValues(auditActionEscalate).Inc()
		return nil
	}
}
