package gates

import "time"

// level debounces one two-state input (a door contact, a smoke sensor, a
// tamper switch) on the machine's clock. The first change after a quiet
// period is taken at once, so alerts are not delayed; changes inside the
// next Debounce period only update what the input will settle on, which
// settle applies when the period ends. A contact flapping in the wind thus
// yields at most one change per period instead of a storm of alerts.
type level struct {
	known   bool
	on      bool
	at      time.Time // machine time the current level was taken
	pending bool      // the input reads !on and will settle there
	pendEv  time.Time // event time of the report that made it pending
}

// set takes a level without debouncing (a state report at start-up).
func (l *level) set(on bool, now time.Time) (changed bool) {
	changed = !l.known || l.on != on
	l.known, l.on, l.at, l.pending = true, on, now, false
	return changed
}

// report feeds one reading; it returns true when the level changed now.
func (l *level) report(on bool, now, evTime time.Time, debounce time.Duration) bool {
	if !l.known {
		return l.set(on, now)
	}
	if debounce <= 0 || now.Sub(l.at) >= debounce {
		l.pending = false
		if on == l.on {
			return false
		}
		l.on, l.at = on, now
		return true
	}
	l.pending = on != l.on
	l.pendEv = evTime
	return false
}

// due is when a pending level settles.
func (l *level) due(debounce time.Duration) (time.Time, bool) {
	if !l.pending {
		return time.Time{}, false
	}
	return l.at.Add(debounce), true
}

// settle applies a pending level whose period is over; it returns the
// event time of the report that set it.
func (l *level) settle(now time.Time, debounce time.Duration) (time.Time, bool) {
	due, ok := l.due(debounce)
	if !ok || now.Before(due) {
		return time.Time{}, false
	}
	l.pending = false
	l.on, l.at = !l.on, due
	return l.pendEv, true
}
