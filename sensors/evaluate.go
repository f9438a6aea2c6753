package sensors

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

// Evaluator judges every sensor's readings and says when a verdict
// changes. It keeps no clock of its own: durations are measured between
// readings' times and the times Tick is given, so tests drive it with a
// fake clock and the edge calls Tick about once a second.
//
// The rules, per sensor:
//   - A value beyond a threshold (≥ it; ≤ with below) for at least
//     min_duration raises its stage: warning, or alarm, which outranks it.
//     Between readings the last value is taken to hold, so Tick raises a
//     stage once min_duration has passed; a spike that is gone by the
//     next reading raises nothing.
//   - A stage holds until the value is back more than hysteresis past its
//     threshold: alarm then falls to warning (value still beyond warn −
//     hysteresis) or to normal (RuleClear). Falling is immediate.
//   - Rate of rise: when the value rose more than delta over the last
//     per (scaled down to per when the readings are further apart), the
//     sensor is at least a warning (RuleRateOfRise) until the rise is
//     back to delta − hysteresis (at most delta/2).
//   - A detector's 1 is an alarm (RuleDetector) after min_duration (0 by
//     default), its 0 clears.
//   - No reading for stale_after × interval (counted from the first Tick
//     for a sensor that never reported) makes it silent, whatever it was;
//     the next reading is judged as usual, against the stage it had
//     before, so a sensor that was in alarm and still reads an alarm
//     value is in alarm again at once, and one that reads a new high
//     value waits min_duration.
//
// A sensor's first verdict of normal is not a Change (nothing to clear).
// Readings of unknown sensors and values that are not numbers are
// ignored and counted (Ignored). A reading older than the sensor's last
// one is taken as at the last one's time, so a clock stepping back
// cannot make durations negative.
//
// An Evaluator is safe for concurrent use (a mutex; it does no I/O).
type Evaluator struct {
	mu      sync.Mutex
	list    []*judge // in configuration order
	byID    map[string]*judge
	ignored uint64
	started time.Time // the first Tick's time
}

// judge is one sensor's verdict and what it is decided from.
type judge struct {
	cfg   Resolved
	state State
	level State // the threshold stage: normal, warning or alarm
	ror   bool  // rising faster than the rate-of-rise rule allows
	// threshold is the limit of the rule that put the sensor in state,
	// which a clear reports.
	threshold float64
	seen      bool
	value     float64
	at        time.Time // of the last reading
	// warnSince and alarmSince start the current stretch of readings
	// beyond each threshold (zero: the last reading is not beyond it).
	warnSince, alarmSince time.Time
	window                []sample // rate of rise: readings of the last per
}

type sample struct {
	t time.Time
	v float64
}

// maxWindow bounds the readings a rate-of-rise window keeps: a reading
// less than per/maxWindow after the last one kept is not kept.
const maxWindow = 1024

// New returns an evaluator of the sensors, all unknown. IDs must be
// unique (Validate).
func New(list []Resolved) *Evaluator {
	e := &Evaluator{byID: make(map[string]*judge, len(list))}
	for _, c := range list {
		if _, dup := e.byID[c.ID]; dup {
			panic(fmt.Sprintf("sensors: sensor %q twice", c.ID))
		}
		j := &judge{cfg: c, state: StateUnknown, level: StateNormal}
		e.list = append(e.list, j)
		e.byID[c.ID] = j
	}
	return e
}

// Observe judges a reading and returns the verdict's change, if any.
func (e *Evaluator) Observe(r Reading) []Change {
	e.mu.Lock()
	defer e.mu.Unlock()
	j := e.byID[r.Sensor]
	if j == nil || math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
		e.ignored++
		return nil
	}
	t := r.Time.UTC()
	if j.seen && t.Before(j.at) {
		t = j.at
	}
	j.seen, j.value, j.at = true, r.Value, t
	j.track(t)
	j.rateOfRise(t)
	if ch, ok := j.decide(t); ok {
		return []Change{ch}
	}
	return nil
}

// Tick raises the stages whose min_duration has passed since the last
// reading and makes silent the sensors that stopped reporting; the
// changes come in configuration order.
func (e *Evaluator) Tick(now time.Time) []Change {
	e.mu.Lock()
	defer e.mu.Unlock()
	now = now.UTC()
	if e.started.IsZero() {
		e.started = now
	}
	var out []Change
	for _, j := range e.list {
		if j.state == StateSilent {
			continue
		}
		last := e.started
		if j.seen {
			last = j.at
		}
		if now.Sub(last) >= j.cfg.StaleWindow() {
			out = append(out, j.silence(now))
			continue
		}
		if !j.seen {
			continue
		}
		if ch, ok := j.decide(maxTime(now, j.at)); ok {
			out = append(out, ch)
		}
	}
	return out
}

// Resumed is what a sensor's verdict was before the process restarted
// (the open alerts the edge kept): the state, the threshold stage it
// held and the limit of the rule that put it there, and its last
// reading.
type Resumed struct {
	State     State // warning, alarm or silent
	Level     State // normal, warning or alarm: the stage held (normal for a rate-of-rise warning)
	Threshold float64
	Value     float64
	At        time.Time // zero: no reading kept
}

// Resume starts a sensor from its verdict before a restart, so that its
// open alerts neither rise again nor stay open for ever: a reading within
// hysteresis of the stage it held keeps it, a normal one clears it
// (RuleClear), and silence counts from the first Tick as for any sensor
// that has not reported yet. A rate-of-rise warning is cleared by the
// first reading that is not over a threshold: the window of readings
// before the restart is gone. It must be called before the sensor's
// first reading; it says false for an unknown sensor or a state that is
// not an alert's.
func (e *Evaluator) Resume(sensor string, r Resumed) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	j := e.byID[sensor]
	if j == nil || j.seen || j.state != StateUnknown {
		return false
	}
	switch r.State {
	case StateWarning, StateAlarm, StateSilent:
	default:
		return false
	}
	switch r.Level {
	case StateNormal, StateWarning, StateAlarm:
	default:
		return false
	}
	j.state, j.level, j.threshold = r.State, r.Level, r.Threshold
	j.value, j.at = r.Value, r.At.UTC() // shown in Status; seen stays false
	return true
}

// Status is every sensor's verdict and last reading, in configuration
// order.
func (e *Evaluator) Status() []wire.SensorStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]wire.SensorStatus, len(e.list))
	for i, j := range e.list {
		c := j.cfg
		out[i] = wire.SensorStatus{ID: c.ID, Name: c.Name, Kind: c.Kind, Unit: c.Unit, Location: c.Location,
			SiteID: c.Site, State: string(j.state), Value: j.value, Time: j.at,
			Warn: copyPtr(c.Warn), Alarm: copyPtr(c.Alarm)}
	}
	return out
}

// Ignored is how many readings were ignored: of unknown sensors, or not
// numbers.
func (e *Evaluator) Ignored() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ignored
}

// track starts or ends the stretches beyond each threshold.
func (j *judge) track(t time.Time) {
	c := j.cfg
	j.alarmSince = stretch(j.alarmSince, c.Alarm != nil && j.beyond(*c.Alarm, 0), t)
	j.warnSince = stretch(j.warnSince, c.Warn != nil && j.beyond(*c.Warn, 0), t)
}

func stretch(since time.Time, beyond bool, t time.Time) time.Time {
	switch {
	case !beyond:
		return time.Time{}
	case since.IsZero():
		return t
	}
	return since
}

// beyond says whether the last value is past th, or within slack of it
// on the near side (hysteresis: a stage held).
func (j *judge) beyond(th, slack float64) bool {
	if j.cfg.Below {
		return j.value <= th+slack
	}
	return j.value >= th-slack
}

// due says whether a stretch beyond a threshold has lasted min_duration.
func (j *judge) due(since, t time.Time) bool {
	return !since.IsZero() && t.Sub(since) >= j.cfg.MinDuration
}

// stage is the threshold stage at t: a stage held within hysteresis, or
// one whose stretch is due.
func (j *judge) stage(t time.Time) State {
	c := j.cfg
	if c.Alarm != nil && (j.level == StateAlarm && j.beyond(*c.Alarm, c.Hysteresis) || j.due(j.alarmSince, t)) {
		return StateAlarm
	}
	held := j.level == StateWarning || j.level == StateAlarm
	if c.Warn != nil && (held && j.beyond(*c.Warn, c.Hysteresis) || j.due(j.warnSince, t)) {
		return StateWarning
	}
	return StateNormal
}

// rateOfRise updates the window with the last reading and the rule's
// verdict.
func (j *judge) rateOfRise(t time.Time) {
	r := j.cfg.RateOfRise
	if r == nil {
		return
	}
	per := r.Per.D()
	w := j.window
	for len(w) >= 2 && !w[1].t.After(t.Add(-per)) {
		w = w[1:] // w[0] stays the newest reading at or before t − per
	}
	if len(w) > 0 {
		rise := j.value - w[0].v
		if span := t.Sub(w[0].t); span > per {
			rise *= float64(per) / float64(span)
		}
		switch {
		case rise > r.Delta:
			j.ror = true
		case rise <= r.Delta-min(j.cfg.Hysteresis, r.Delta/2):
			j.ror = false
		}
	}
	if len(w) == 0 || t.Sub(w[len(w)-1].t) >= per/maxWindow {
		w = append(w, sample{t: t, v: j.value})
	}
	j.window = w
}

// decide settles the stage and the state at t and returns the change.
func (j *judge) decide(t time.Time) (Change, bool) {
	j.level = j.stage(t)
	next := j.level
	if next == StateNormal && j.ror {
		next = StateWarning
	}
	if next == j.state || next == StateNormal && j.state == StateUnknown {
		if j.state == StateUnknown {
			j.state = next
		}
		return Change{}, false
	}
	ch := Change{Sensor: j.cfg.ID, From: j.state, To: next, Value: j.value, At: t}
	switch {
	case next == StateAlarm && j.cfg.Detector:
		ch.Rule, ch.Threshold = RuleDetector, *j.cfg.Alarm
	case next == StateAlarm:
		ch.Rule, ch.Threshold = RuleAlarm, *j.cfg.Alarm
	case next == StateWarning && j.level == StateWarning:
		ch.Rule, ch.Threshold = RuleWarning, *j.cfg.Warn
	case next == StateWarning:
		r := j.cfg.RateOfRise
		ch.Rule, ch.Threshold = RuleRateOfRise, r.Delta/r.Per.D().Minutes()
	default:
		ch.Rule, ch.Threshold = RuleClear, j.threshold
	}
	j.state, j.threshold = next, ch.Threshold
	return ch, true
}

// silence makes the sensor silent at now. Its stage stays, as the
// reference of the next reading's hysteresis; the stretches and the
// rate-of-rise window start again with the next reading.
func (j *judge) silence(now time.Time) Change {
	ch := Change{Sensor: j.cfg.ID, From: j.state, To: StateSilent, Rule: RuleSilent, Value: j.value, At: now}
	j.state, j.threshold = StateSilent, 0
	j.warnSince, j.alarmSince, j.window, j.ror = time.Time{}, time.Time{}, nil, false
	return ch
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func copyPtr(p *float64) *float64 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
