package gates

import (
	"fmt"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

// foldKey identifies one open alert of a gate.
type foldKey struct {
	cause  Cause
	device string
}

// folded is an open alert: every recurrence of its cause within the fold
// window counts into it instead of becoming a new alert, so an SOS button
// pressed ten times is one red alert with a count of ten.
type folded struct {
	key        foldKey
	count      int
	severity   wire.Severity
	summary    string
	first      time.Time // event time of the first occurrence
	evTime     time.Time // event time of the latest occurrence
	last       time.Time // machine time of the latest occurrence or clearing
	active     bool      // a level cause whose condition still holds
	reported   int       // count in the last output
	reportedAt time.Time // machine time of the last output
}

func (f *folded) output(gate string, update, cleared bool, now time.Time) Alert {
	f.reported, f.reportedAt = f.count, now
	s := f.summary
	if f.count > 1 && !cleared {
		s = fmt.Sprintf("%s (%d times)", s, f.count)
	}
	return Alert{Gate: gate, Key: f.key.cause, Device: f.key.device, Severity: f.severity, Count: f.count,
		Summary: s, Time: f.evTime, First: f.first, Update: update, Cleared: cleared}
}

// raise records one occurrence. level says the cause is a condition that
// lasts until clear is called (smoke, tamper, silent, held open).
func (m *Machine) raise(c Cause, device string, sev wire.Severity, summary string, evTime, now time.Time, level bool) []Alert {
	k := foldKey{c, device}
	f := m.open[k]
	if f == nil || (!f.active && now.Sub(f.last) >= m.cfg.FoldWindow) {
		f = &folded{key: k, count: 1, severity: sev, summary: summary, first: evTime, evTime: evTime, last: now, active: level}
		m.open[k] = f
		return []Alert{f.output(m.cfg.ID, false, false, now)}
	}
	reopens := f.severity == wire.Green // it was cleared: the guard must act again
	escalates := sev.Rank() > f.severity.Rank()
	f.count++
	f.severity, f.summary, f.evTime, f.last, f.active = sev, summary, evTime, now, level
	if reopens {
		// A new alert, carrying the count, because the old one may already
		// be resolved at central.
		f.first = evTime
		return []Alert{f.output(m.cfg.ID, false, false, now)}
	}
	if escalates || m.cfg.UpdateEvery <= 0 || now.Sub(f.reportedAt) >= m.cfg.UpdateEvery {
		return []Alert{f.output(m.cfg.ID, true, false, now)}
	}
	return nil // count-only: flushed by Tick at reportedAt+UpdateEvery
}

// escalate raises the severity of an open level alert without counting a
// new occurrence (held open turning red).
func (m *Machine) escalate(c Cause, device string, sev wire.Severity, summary string, evTime, now time.Time) []Alert {
	f := m.open[foldKey{c, device}]
	if f == nil || !f.active || sev.Rank() <= f.severity.Rank() {
		return nil
	}
	f.severity, f.summary, f.evTime = sev, summary, evTime
	return []Alert{f.output(m.cfg.ID, true, false, now)}
}

// clear ends a level condition with a green update. The cause stays in the
// fold window: if it recurs soon, the new alert carries the running count.
func (m *Machine) clear(c Cause, device, summary string, evTime, now time.Time) []Alert {
	f := m.open[foldKey{c, device}]
	if f == nil || !f.active {
		return nil
	}
	f.active, f.severity, f.summary, f.evTime, f.last = false, wire.Green, summary, evTime, now
	return []Alert{f.output(m.cfg.ID, true, true, now)}
}

// flushFolds sends pending count updates and forgets alerts whose fold
// window has passed.
func (m *Machine) flushFolds(now time.Time) []Alert {
	var out []Alert
	for k, f := range m.open {
		if f.count > f.reported && m.cfg.UpdateEvery > 0 && !now.Before(f.reportedAt.Add(m.cfg.UpdateEvery)) {
			out = append(out, f.output(m.cfg.ID, true, false, now))
		}
		if !f.active && f.count == f.reported && now.Sub(f.last) >= m.cfg.FoldWindow {
			delete(m.open, k)
		}
	}
	return out
}
