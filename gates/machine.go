package gates

import (
	"crypto/subtle"
	"fmt"
	"sort"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

// Machine is the state of one gate: its door, pending grants, devices,
// open alerts and a keypad's arming override. It is pure: Step and Tick
// take the current time and return alerts; nothing happens between calls. The caller calls Tick again at
// Next (gates/engine does). A Machine is not safe for concurrent use.
//
// All timing (grant window, debounce, held open, silence, folding) runs on
// the machine clock (the now passed in), so events from devices with wrong
// clocks and from different transports compare fairly; event times are
// only reported.
type Machine struct {
	cfg  Config
	door level
	// openedAt is when the current opening began (machine clock) and
	// openedEv its event time; held is 0, 1 (yellow raised) or 2 (red).
	openedAt, openedEv time.Time
	held               int
	// An opening without a grant waits GrantGrace for one.
	pending      bool
	pendingAt    time.Time
	pendingEv    time.Time
	pendingArmed bool
	grants       grantQueue
	// lastGrant is the event time and credential of the latest grant, for
	// status (a motion alert on a camera watching the gate reports it).
	lastGrantEv   time.Time
	lastGrantCred string
	devices       deviceSet
	folds         folds
	arming        arming
}

type grant struct {
	at         time.Time
	credential string
}

// grantQueue holds the grants no opening has used yet, oldest first.
type grantQueue []grant

// add queues a grant, forgetting the oldest beyond 8: a reader stuck
// granting must not grow memory.
func (q *grantQueue) add(g grant) {
	*q = append(*q, g)
	if len(*q) > 8 {
		*q = (*q)[1:]
	}
}

// take consumes the oldest grant given within window of now.
func (q *grantQueue) take(now time.Time, window time.Duration) (grant, bool) {
	for len(*q) > 0 {
		g := (*q)[0]
		*q = (*q)[1:]
		if now.Sub(g.at) <= window {
			return g, true
		}
	}
	return grant{}, false
}

// arming is whether the gate is armed: as the schedule says, or as a
// keypad set it while its override holds.
type arming struct {
	schedule Arming
	// override is the arming a keypad set, in force instead of the
	// schedule until override.Until; nil: the schedule rules.
	override *Override
}

// current is the override in force at now, or nil.
func (a *arming) current(now time.Time) *Override {
	if o := a.override; o != nil && (o.Until.IsZero() || now.Before(o.Until)) {
		return o
	}
	return nil
}

// at reports whether the gate is armed at now.
func (a *arming) at(now time.Time) bool {
	if o := a.current(now); o != nil {
		return o.Armed
	}
	return a.schedule.ArmedAt(now)
}

// expire drops an override whose time is up: the schedule has changed
// and rules again.
func (a *arming) expire(now time.Time) {
	if o := a.override; o != nil && !o.Until.IsZero() && !now.Before(o.Until) {
		a.override = nil
	}
}

type device struct {
	id          string
	silentAfter time.Duration
	lastSeen    time.Time
	silent      bool
	tamper      level
	battery     level
	sensors     map[string]*level
	lastPress   time.Time
}

// New returns the machine of one gate; now starts every watched device's
// silence clock. cfg gets WithDefaults.
func New(cfg Config, now time.Time) (*Machine, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Machine{cfg: cfg, devices: deviceSet{}, folds: newFolds(cfg), arming: arming{schedule: cfg.Arming}}
	for _, d := range cfg.Devices {
		m.devices[d.ID] = &device{id: d.ID, silentAfter: d.SilentAfter, lastSeen: now, sensors: map[string]*level{}}
	}
	return m, nil
}

// Config is the machine's configuration with defaults applied.
func (m *Machine) Config() Config { return m.cfg }

// MaxDevices bounds the devices one gate tracks: device names come from
// outside, and an authenticated but broken controller inventing a new one
// per event must not grow memory without end. Beyond it, new names share
// one entry.
const MaxDevices = 256

// deviceSet is a gate's devices by ID.
type deviceSet map[string]*device

// get returns the device id, added if it is new (see MaxDevices).
func (ds deviceSet) get(id string) *device {
	d := ds[id]
	if d == nil && len(ds) >= MaxDevices {
		id = "(other devices)"
		d = ds[id]
	}
	if d == nil {
		d = &device{id: id, sensors: map[string]*level{}}
		ds[id] = d
	}
	return d
}

// ids lists the devices' IDs in order.
func (ds deviceSet) ids() []string {
	ids := make([]string, 0, len(ds))
	for id := range ds {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Step applies one event received at now. Timers due by now fire first.
// The event must belong to this gate and be valid (Event.Validate).
func (m *Machine) Step(ev Event, now time.Time) []Alert {
	out := m.Tick(now)
	evTime := ev.Time.UTC()
	d := m.devices.get(ev.Device)
	if ev.Kind != Offline {
		// Anything a device says proves it is alive; offline is said by a
		// bridge or broker on its behalf.
		d.lastSeen = now
		if d.silent {
			d.silent = false
			out = append(out, m.folds.clear(CauseSilent, d.id, fmt.Sprintf("Device back: %s at %s", d.id, m.cfg.Name), evTime, now)...)
		}
	}
	debounce := m.cfg.Debounce
	switch ev.Kind {
	case Opened, Closed:
		open := ev.Kind == Opened
		if ev.Initial {
			if m.door.set(open, now) {
				out = append(out, m.doorChanged(open, now, evTime, true)...)
			}
		} else if m.door.report(open, now, evTime, debounce) {
			out = append(out, m.doorChanged(open, now, evTime, false)...)
		}
	case Granted:
		out = append(out, m.granted(ev.Credential, now, evTime)...)
	case Button:
		if now.Sub(d.lastPress) >= debounce || d.lastPress.IsZero() {
			d.lastPress = now
			out = append(out, m.folds.raise(CauseSOS, d.id, wire.Red, fmt.Sprintf("SOS button pressed: %s (%s)", m.cfg.Name, d.id), evTime, now, false)...)
		}
	case Presence:
		if m.arming.at(now) && (now.Sub(d.lastPress) >= debounce || d.lastPress.IsZero()) {
			d.lastPress = now
			out = append(out, m.folds.raise(CauseIntrusion, d.id, wire.Red, fmt.Sprintf("Intrusion: presence at %s while armed (%s)", m.cfg.Name, d.id), evTime, now, false)...)
		}
	case Tamper, TamperClear:
		on := ev.Kind == Tamper
		if m.reportLevel(&d.tamper, on, ev.Initial, now, evTime) {
			out = append(out, m.tamperChanged(d, on, evTime, now)...)
		}
	case BatteryLow, BatteryOK:
		on := ev.Kind == BatteryLow
		if m.reportLevel(&d.battery, on, ev.Initial, now, evTime) {
			out = append(out, m.batteryChanged(d, on, evTime, now)...)
		}
	case Alarm, AlarmClear:
		l := d.sensors[ev.Sensor]
		if l == nil {
			l = &level{}
			d.sensors[ev.Sensor] = l
		}
		on := ev.Kind == Alarm
		if m.reportLevel(l, on, ev.Initial, now, evTime) {
			out = append(out, m.sensorChanged(d, ev.Sensor, on, evTime, now)...)
		}
	case Offline:
		if !d.silent {
			d.silent = true
			out = append(out, m.folds.raise(CauseSilent, d.id, wire.Yellow, fmt.Sprintf("Device offline: %s at %s", d.id, m.cfg.Name), evTime, now, true)...)
		}
	case Arm, Disarm:
		out = append(out, m.keypad(d, ev, now, evTime)...)
	case Heartbeat:
	default:
		panic(fmt.Sprintf("gates: unvalidated event kind %q", ev.Kind))
	}
	return out
}

// reportLevel feeds a level; a first report of "off" is not a change worth
// an alert (nothing was on), a first report of "on" is.
func (m *Machine) reportLevel(l *level, on, initial bool, now, evTime time.Time) bool {
	first := !l.known
	var changed bool
	if initial {
		changed = l.set(on, now)
	} else {
		changed = l.report(on, now, evTime, m.cfg.Debounce)
	}
	return changed && !(first && !on)
}

// doorChanged acts on a debounced door change.
func (m *Machine) doorChanged(open bool, now, evTime time.Time, initial bool) []Alert {
	if !open {
		var out []Alert
		if m.held > 0 {
			out = m.folds.clear(CauseHeldOpen, "", fmt.Sprintf("Closed: %s after %s open", m.cfg.Name, roundDur(now.Sub(m.openedAt))), evTime, now)
		}
		m.held = 0
		return out
	}
	var out []Alert
	if m.pending { // an earlier opening still waits for its grant: decide it now
		out = append(out, m.decidePending(now)...)
	}
	m.openedAt, m.openedEv, m.held = now, evTime, 0
	if initial {
		return out // found open at start-up: held-open timing applies, no verdict
	}
	if g, ok := m.grants.take(now, m.cfg.GrantWindow); ok {
		return append(out, m.passage(g.credential, evTime, now))
	}
	m.pending, m.pendingAt, m.pendingEv, m.pendingArmed = true, now, evTime, m.arming.at(now)
	if m.cfg.GrantGrace <= 0 {
		out = append(out, m.decidePending(now)...)
	}
	return out
}

// keypad applies a keypad's arm or disarm request. The arming it sets
// overrides the schedule until the schedule next changes (a window starts
// or ends) or until the next request, whichever comes first: a gate
// disarmed at 23:10 for a late delivery is armed again at the schedule's
// next transition instead of staying disarmed for good because nobody
// re-armed it, and a gate armed in the afternoon stays armed into the
// night window. A gate whose schedule never changes (armed always, or
// never) keeps the override until the next request. Every request that
// is taken is a green notice, so central records who armed or disarmed
// the gate and when; a request refused for its code is a yellow alert,
// folded per keypad like repeated button presses. The code itself is
// never put in an alert.
func (m *Machine) keypad(d *device, ev Event, now, evTime time.Time) []Alert {
	arm := ev.Kind == Arm
	verb, done := "disarm", "disarmed"
	if arm {
		verb, done = "arm", "armed"
	}
	mode := ev.Mode
	if mode == "" {
		mode = verb
	}
	with := "without code"
	if ev.Code != "" {
		with = "with code"
	}
	if len(m.cfg.KeypadCodes) > 0 && !codeOK(m.cfg.KeypadCodes, ev.Code) {
		what := "Wrong code"
		if ev.Code == "" {
			what = "No code"
		}
		return m.folds.raise(CauseWrongCode, d.id, wire.Yellow, fmt.Sprintf("%s on keypad %s at %s: %s refused", what, d.id, m.cfg.Name, verb), evTime, now, false)
	}
	was := m.arming.at(now)
	until, _ := m.cfg.Arming.NextChange(now)
	m.arming.override = &Override{Armed: arm, Device: d.id, Mode: mode, Since: evTime, Until: until}
	s := fmt.Sprintf("%s %s from keypad %s (%s, %s)", m.cfg.Name, done, d.id, mode, with)
	if was == arm {
		s += ", was already " + done
	}
	if until.IsZero() {
		s += "; holds until the next arm or disarm"
	} else {
		loc := m.cfg.Arming.Location
		if loc == nil {
			loc = time.UTC // WithDefaults sets the real zone
		}
		s += "; the schedule takes over at " + until.In(loc).Format("Mon 15:04")
	}
	return []Alert{{Gate: m.cfg.ID, Key: CauseArming, Device: d.id, Severity: wire.Green, Count: 1, Summary: s, Time: evTime, First: evTime}}
}

// codeOK reports whether code is one of the gate's keypad codes, in time
// that does not depend on which one matched or where it differed.
func codeOK(codes []string, code string) bool {
	ok := 0
	for _, c := range codes {
		ok |= subtle.ConstantTimeCompare([]byte(c), []byte(code))
	}
	return ok == 1
}

// granted records a grant, or lets it admit an opening that is waiting.
func (m *Machine) granted(credential string, now, evTime time.Time) []Alert {
	m.lastGrantEv, m.lastGrantCred = evTime, credential
	if m.pending && now.Sub(m.pendingAt) <= m.cfg.GrantGrace {
		m.pending = false
		return []Alert{m.passage(credential, m.pendingEv, now)}
	}
	m.grants.add(grant{at: now, credential: credential})
	return nil
}

// decidePending gives the verdict on an opening that found no grant.
func (m *Machine) decidePending(now time.Time) []Alert {
	m.pending = false
	if !m.pendingArmed {
		return []Alert{m.passage("", m.pendingEv, now)}
	}
	return m.folds.raise(CauseForced, "", wire.Red, fmt.Sprintf("Forced open: %s opened without a grant while armed", m.cfg.Name), m.pendingEv, now, false)
}

// passage is a normal opening, logged green and never folded: each one
// names its own credential.
func (m *Machine) passage(credential string, evTime, now time.Time) Alert {
	s := fmt.Sprintf("Passage: %s opened with credential %s", m.cfg.Name, credential)
	if credential == "" {
		s = fmt.Sprintf("Passage: %s opened while disarmed", m.cfg.Name)
	}
	return Alert{Gate: m.cfg.ID, Key: CausePassage, Severity: wire.Green, Count: 1, Summary: s, Time: evTime, First: evTime, Credential: credential}
}

func (m *Machine) tamperChanged(d *device, on bool, evTime, now time.Time) []Alert {
	if on {
		return m.folds.raise(CauseTamper, d.id, wire.Red, fmt.Sprintf("Tamper: %s at %s", d.id, m.cfg.Name), evTime, now, true)
	}
	return m.folds.clear(CauseTamper, d.id, fmt.Sprintf("Tamper cleared: %s at %s", d.id, m.cfg.Name), evTime, now)
}

func (m *Machine) batteryChanged(d *device, on bool, evTime, now time.Time) []Alert {
	if on {
		return m.folds.raise(CauseBatteryLow, d.id, wire.Yellow, fmt.Sprintf("Battery low: %s at %s", d.id, m.cfg.Name), evTime, now, true)
	}
	return m.folds.clear(CauseBatteryLow, d.id, fmt.Sprintf("Battery OK: %s at %s", d.id, m.cfg.Name), evTime, now)
}

var sensorWords = map[string]string{Smoke: "Smoke", Gas: "Gas", WaterLeak: "Water leak"}

func (m *Machine) sensorChanged(d *device, sensor string, on bool, evTime, now time.Time) []Alert {
	c := Cause(sensor)
	if on {
		return m.folds.raise(c, d.id, wire.Red, fmt.Sprintf("%s detected: %s (%s)", sensorWords[sensor], m.cfg.Name, d.id), evTime, now, true)
	}
	return m.folds.clear(c, d.id, fmt.Sprintf("%s cleared: %s (%s)", sensorWords[sensor], m.cfg.Name, d.id), evTime, now)
}

// Tick fires every timer due by now: late grants giving up, debounced
// levels settling, held-open limits, silent devices and folded counts.
func (m *Machine) Tick(now time.Time) []Alert {
	var out []Alert
	m.arming.expire(now)
	if m.pending && !now.Before(m.pendingAt.Add(m.cfg.GrantGrace)) {
		out = append(out, m.decidePending(m.pendingAt.Add(m.cfg.GrantGrace))...)
	}
	if evTime, ok := m.door.settle(now, m.cfg.Debounce); ok {
		out = append(out, m.doorChanged(m.door.on, m.door.at, evTime, false)...)
		if m.pending && !now.Before(m.pendingAt.Add(m.cfg.GrantGrace)) {
			out = append(out, m.decidePending(m.pendingAt.Add(m.cfg.GrantGrace))...)
		}
	}
	for _, id := range m.devices.ids() {
		d := m.devices[id]
		if evTime, ok := d.tamper.settle(now, m.cfg.Debounce); ok {
			out = append(out, m.tamperChanged(d, d.tamper.on, evTime, d.tamper.at)...)
		}
		if evTime, ok := d.battery.settle(now, m.cfg.Debounce); ok {
			out = append(out, m.batteryChanged(d, d.battery.on, evTime, d.battery.at)...)
		}
		for _, s := range []string{Gas, Smoke, WaterLeak} {
			if l := d.sensors[s]; l != nil {
				if evTime, ok := l.settle(now, m.cfg.Debounce); ok {
					out = append(out, m.sensorChanged(d, s, l.on, evTime, l.at)...)
				}
			}
		}
		if d.silentAfter > 0 && !d.silent && !now.Before(d.lastSeen.Add(d.silentAfter)) {
			d.silent = true
			at := d.lastSeen.Add(d.silentAfter)
			out = append(out, m.folds.raise(CauseSilent, d.id, wire.Yellow, fmt.Sprintf("Device silent: %s at %s, no report for %s", d.id, m.cfg.Name, roundDur(d.silentAfter)), at, at, true)...)
		}
	}
	if m.door.known && m.door.on {
		if yellow := m.openedAt.Add(m.cfg.HeldOpenAfter); m.held == 0 && !now.Before(yellow) {
			m.held = 1
			out = append(out, m.folds.raise(CauseHeldOpen, "", wire.Yellow, fmt.Sprintf("Held open: %s open for %s", m.cfg.Name, roundDur(m.cfg.HeldOpenAfter)), yellow, yellow, true)...)
		}
		if red := m.openedAt.Add(m.cfg.HeldOpenRedAfter); m.held == 1 && m.cfg.HeldOpenRedAfter > 0 && !now.Before(red) {
			m.held = 2
			out = append(out, m.folds.escalate(CauseHeldOpen, "", wire.Red, fmt.Sprintf("Held open: %s open for %s", m.cfg.Name, roundDur(m.cfg.HeldOpenRedAfter)), red, red)...)
		}
	}
	out = append(out, m.folds.flush(now)...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

// Next is when Tick next has something to do; ok is false when nothing
// is scheduled.
func (m *Machine) Next() (next time.Time, ok bool) {
	consider := func(t time.Time) {
		if !ok || t.Before(next) {
			next, ok = t, true
		}
	}
	if m.pending {
		consider(m.pendingAt.Add(m.cfg.GrantGrace))
	}
	if t, due := m.door.due(m.cfg.Debounce); due {
		consider(t)
	}
	for _, d := range m.devices {
		for _, l := range append([]*level{&d.tamper, &d.battery}, sensorLevels(d)...) {
			if t, due := l.due(m.cfg.Debounce); due {
				consider(t)
			}
		}
		if d.silentAfter > 0 && !d.silent {
			consider(d.lastSeen.Add(d.silentAfter))
		}
	}
	if m.door.known && m.door.on {
		if m.held == 0 {
			consider(m.openedAt.Add(m.cfg.HeldOpenAfter))
		} else if m.held == 1 && m.cfg.HeldOpenRedAfter > 0 {
			consider(m.openedAt.Add(m.cfg.HeldOpenRedAfter))
		}
	}
	m.folds.next(consider)
	return next, ok
}

func sensorLevels(d *device) []*level {
	var ls []*level
	for _, l := range d.sensors {
		ls = append(ls, l)
	}
	return ls
}

// roundDur prints durations the way a guard reads them: 1m0s → "1m", 4m12.3s → "4m12s".
func roundDur(d time.Duration) string {
	d = d.Round(time.Second)
	s := d.String()
	if len(s) > 4 && s[len(s)-4:] == "m0s" && d >= time.Minute {
		s = s[:len(s)-2]
	}
	if len(s) > 3 && s[len(s)-3:] == "h0m" {
		s = s[:len(s)-2]
	}
	return s
}

// Forget drops the gate's open alert of cause c from device (empty for
// the gate itself) because it was closed elsewhere (a guard resolved it
// at central): a recurrence then raises a new alert, with its own picture
// and clip, instead of folding into the closed one. A condition that
// still holds is not cleared; it only stops updating the closed alert.
// It reports whether such an alert was open.
func (m *Machine) Forget(c Cause, device string) bool { return m.folds.forget(c, device) }
