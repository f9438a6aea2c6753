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

// folds are a gate's open alerts, one per cause and device, and the
// rules that fold recurrences into them.
type folds struct {
	gate        string        // the gate's ID, for the alerts
	window      time.Duration // Config.FoldWindow
	updateEvery time.Duration // Config.UpdateEvery
	open        map[foldKey]*folded
}

func newFolds(cfg Config) folds {
	return folds{gate: cfg.ID, window: cfg.FoldWindow, updateEvery: cfg.UpdateEvery, open: map[foldKey]*folded{}}
}

// raise records one occurrence. level says the cause is a condition that
// lasts until clear is called (smoke, tamper, silent, held open).
func (fs *folds) raise(c Cause, device string, sev wire.Severity, summary string, evTime, now time.Time, level bool) []Alert {
	k := foldKey{c, device}
	f := fs.open[k]
	if f == nil || (!f.active && now.Sub(f.last) >= fs.window) {
		f = &folded{key: k, count: 1, severity: sev, summary: summary, first: evTime, evTime: evTime, last: now, active: level}
		fs.open[k] = f
		return []Alert{f.output(fs.gate, false, false, now)}
	}
	reopens := f.severity == wire.Green // it was cleared: the guard must act again
	escalates := sev.Rank() > f.severity.Rank()
	f.count++
	f.severity, f.summary, f.evTime, f.last, f.active = sev, summary, evTime, now, level
	if reopens {
		// A new alert, carrying the count, because the old one may already
		// be resolved at central.
		f.first = evTime
		return []Alert{f.output(fs.gate, false, false, now)}
	}
	if escalates || fs.updateEvery <= 0 || now.Sub(f.reportedAt) >= fs.updateEvery {
		return []Alert{f.output(fs.gate, true, false, now)}
	}
	return nil // count-only: flushed by Tick at reportedAt+UpdateEvery
}

// escalate raises the severity of an open level alert without counting a
// new occurrence (held open turning red).
func (fs *folds) escalate(c Cause, device string, sev wire.Severity, summary string, evTime, now time.Time) []Alert {
	f := fs.open[foldKey{c, device}]
	if f == nil || !f.active || sev.Rank() <= f.severity.Rank() {
		return nil
	}
	f.severity, f.summary, f.evTime = sev, summary, evTime
	return []Alert{f.output(fs.gate, true, false, now)}
}

// clear ends a level condition with a green update. The cause stays in the
// fold window: if it recurs soon, the new alert carries the running count.
func (fs *folds) clear(c Cause, device, summary string, evTime, now time.Time) []Alert {
	f := fs.open[foldKey{c, device}]
	if f == nil || !f.active {
		return nil
	}
	f.active, f.severity, f.summary, f.evTime, f.last = false, wire.Green, summary, evTime, now
	return []Alert{f.output(fs.gate, true, true, now)}
}

// flush sends pending count updates and forgets alerts whose fold
// window has passed.
func (fs *folds) flush(now time.Time) []Alert {
	var out []Alert
	for k, f := range fs.open {
		if f.count > f.reported && fs.updateEvery > 0 && !now.Before(f.reportedAt.Add(fs.updateEvery)) {
			out = append(out, f.output(fs.gate, true, false, now))
		}
		if !f.active && f.count == f.reported && now.Sub(f.last) >= fs.window {
			delete(fs.open, k)
		}
	}
	return out
}

// next calls consider with the time of each pending count update.
func (fs *folds) next(consider func(time.Time)) {
	for _, f := range fs.open {
		if f.count > f.reported && fs.updateEvery > 0 {
			consider(f.reportedAt.Add(fs.updateEvery))
		}
	}
}

// forget drops the open alert of a cause and device (central says a guard
// closed it): the next occurrence raises a new alert, with a count of one,
// instead of updating the closed one. It reports whether one was open.
func (fs *folds) forget(c Cause, device string) bool {
	k := foldKey{c, device}
	if _, ok := fs.open[k]; !ok {
		return false
	}
	delete(fs.open, k)
	return true
}
