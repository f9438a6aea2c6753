package mqtt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/vigil-perimeter/vigil/gates"
)

// ActionKind is what a Zigbee2MQTT "action" value means to a gate.
type ActionKind string

// Action kinds, as an installer writes them under a device's actions:.
const (
	ActionSOS    ActionKind = "sos"    // the booth alarm button: a button event (red SOS alert)
	ActionArm    ActionKind = "arm"    // arm the device's gate (a keypad's arm request)
	ActionDisarm ActionKind = "disarm" // disarm the device's gate
	ActionIgnore ActionKind = "ignore" // nothing; the message only proves the device is alive
)

var actionKinds = []ActionKind{ActionSOS, ActionArm, ActionDisarm, ActionIgnore}

// defaultActions are the action values Zigbee2MQTT's converters publish
// for panic buttons and alarm keypads (zigbee-herdsman-converters:
// command_emergency, command_panic, command_arm and the Tuya keypads'
// data points). Everything else a remote, dimmer or scene switch says
// (single, double, hold, on, off, toggle, brightness_move_up, *_release,
// …) means nothing to a gate unless an installer maps it: a Heiman
// HS1EB emergency button, for one, reports its press as "single", the
// same word as any wall switch.
var defaultActions = map[string]ActionKind{
	"emergency": ActionSOS, // IAS ACE emergency: Tuya TS0215A_sos, Loginovo ZG-101Z, Climax keypads
	"panic":     ActionSOS, // IAS ACE panic: Hive KEYPAD001, Linkind ZS130000078, Feibit, Immax 07046L
	"sos":       ActionSOS, // Tuya keypads (Daewoo WKE502Z, Immax), ZG-101Z

	// IAS ACE arm (command_arm): the ZCL arm modes.
	"arm_all_zones":     ActionArm,
	"arm_day_zones":     ActionArm,
	"arm_night_zones":   ActionArm,
	"arm_partial_zones": ActionArm, // ADEO, Linkind remotes
	// Tuya keypads and fobs.
	"arm_away":  ActionArm,
	"arm_home":  ActionArm,
	"arm_stay":  ActionArm,
	"arm_night": ActionArm,
	"disarm":    ActionDisarm,
}

// ParseActionKind reads an action kind as an installer writes it.
func ParseActionKind(s string) (ActionKind, error) {
	if k := ActionKind(s); slices.Contains(actionKinds, k) {
		return k, nil
	}
	return "", fmt.Errorf("unknown kind %q (want sos, arm, disarm or ignore)", s)
}

// ParseActions checks an installer's mapping of a device's action values
// to kinds, e.g. {single: sos, double: ignore}; errors name the entry
// ("actions.single: …").
func ParseActions(m map[string]string) (map[string]ActionKind, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := make(map[string]ActionKind, len(m))
	names := make([]string, 0, len(m))
	for a := range m {
		names = append(names, a)
	}
	slices.Sort(names) // the same error for the same config every time
	for _, a := range names {
		if a == "" || len(a) > gates.MaxFieldLen {
			return nil, fmt.Errorf("actions: %q: an action value must be 1-%d characters", a, gates.MaxFieldLen)
		}
		k, err := ParseActionKind(m[a])
		if err != nil {
			return nil, fmt.Errorf("actions.%s: %w", a, err)
		}
		out[a] = k
	}
	return out, nil
}

// ZigbeeOptions say how to read one device's state messages.
type ZigbeeOptions struct {
	// BatteryLow: a "battery" percentage at or below it is low; at or
	// above BatteryLow+10 it is fine again (the gap stops flapping).
	BatteryLow int
	// Actions maps action values to kinds, over the defaults (an
	// installer's per-device actions:, from ParseActions).
	Actions map[string]ActionKind
}

// action says what one action value means for this device.
func (o ZigbeeOptions) action(a string) (ActionKind, bool) {
	if k, ok := o.Actions[a]; ok {
		return k, true
	}
	k, ok := defaultActions[a]
	return k, ok
}

// Levels is what ParseZigbee keeps of one device between its messages.
// Zigbee2MQTT caches a device's state and republishes all of it with every
// report: a motion sensor's "occupancy": true comes again with each
// illuminance or battery update, an SOS zone's "sos": true with each
// battery report. Someone new is only a rising edge. The zero value knows
// nothing yet; a first true then counts once.
type Levels struct {
	occupancy, sos flag
}

// flag is a two-state level that may not be known yet.
type flag uint8

const (
	flagUnknown flag = iota
	flagOff
	flagOn
)

// rise records v and reports whether it is a rising edge: on after off,
// or on after nothing known (the first report after a start counts once).
func (f *flag) rise(v bool) bool {
	was := *f
	*f = flagOff
	if v {
		*f = flagOn
	}
	return v && was != flagOn
}

// ParseZigbee turns one Zigbee2MQTT device state message (the JSON object
// published on zigbee2mqtt/<friendly_name>) into events with Kind (and
// Sensor, Mode, Code) set; the caller fills in gate, device and time.
// last holds the device's levels from earlier messages and is updated
// (nil: nothing remembered, every true counts). unmapped is an action
// value that means nothing here and was not mapped by the installer, for
// the caller to mention once.
//
// Zigbee2MQTT republishes a device's whole state whenever any attribute
// changes, so most messages repeat levels already known; the state
// machine ignores repeated levels, and the momentary ones (occupancy,
// sos) count only on their rising edge here. "action" is not cached by
// Zigbee2MQTT: each one is a fresh press. A field with an unexpected type
// (null while a device is still interviewing, say) is skipped, not an
// error: one odd attribute must not hide the others. A message that
// yields nothing else is a Heartbeat (the device is alive).
//
//	contact      false → opened, true → closed (the magnet is next to the switch)
//	smoke, gas, water_leak   true → alarm, false → alarm_clear
//	tamper       true → tamper, false → tamper_clear
//	action       by opts.Actions, else: emergency, panic, sos → button;
//	             arm_all_zones, arm_day_zones, arm_night_zones,
//	             arm_partial_zones, arm_away, arm_home, arm_stay,
//	             arm_night → arm; disarm → disarm (Mode: the action,
//	             Code: action_code, a string or number, if any);
//	             anything else (single, on, toggle, brightness_*,
//	             *_release, *_hold, …) → nothing
//	sos, emergency   false/unknown → true → button (once per rising edge)
//	occupancy    false/unknown → true → presence (once per rising edge)
//	battery_low  true → battery_low, false → battery_ok; without it,
//	battery      (percent) at or below BatteryLow → battery_low, at or
//	             above BatteryLow+10 → battery_ok
func ParseZigbee(payload []byte, opts ZigbeeOptions, last *Levels) (evs []gates.Event, unmapped string, err error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(payload, &fields); err != nil {
		return nil, "", fmt.Errorf("zigbee2mqtt state is not a JSON object: %w", err)
	}
	if fields == nil {
		return nil, "", errors.New("zigbee2mqtt state is null")
	}
	if last == nil {
		last = &Levels{}
	}
	add := func(ev gates.Event) { evs = append(evs, ev) }
	if v, ok := boolField(fields, "tamper"); ok {
		add(gates.Event{Kind: pick(v, gates.Tamper, gates.TamperClear)})
	}
	for _, s := range []string{gates.Smoke, gates.Gas, gates.WaterLeak} {
		if v, ok := boolField(fields, s); ok {
			add(gates.Event{Kind: pick(v, gates.Alarm, gates.AlarmClear), Sensor: s})
		}
	}
	if v, ok := boolField(fields, "contact"); ok {
		add(gates.Event{Kind: pick(v, gates.Closed, gates.Opened)})
	}
	button := false
	if a, ok := stringField(fields, "action"); ok && a != "" {
		kind, known := opts.action(a)
		switch kind {
		case ActionSOS:
			button = true
		case ActionArm, ActionDisarm:
			add(gates.Event{Kind: pick(kind == ActionArm, gates.Arm, gates.Disarm), Mode: a, Code: codeField(fields, "action_code")})
		}
		if !known {
			unmapped = a
		}
	}
	// An SOS zone (IAS zone type "sos", e.g. Feibit SEB01ZB) reports a
	// level, which Zigbee2MQTT caches and repeats like occupancy.
	sos, okSOS := boolField(fields, "sos")
	emergency, okEmergency := boolField(fields, "emergency")
	if (okSOS || okEmergency) && last.sos.rise(sos || emergency) {
		button = true
	}
	if button {
		add(gates.Event{Kind: gates.Button})
	}
	if v, ok := boolField(fields, "occupancy"); ok && last.occupancy.rise(v) {
		add(gates.Event{Kind: gates.Presence})
	}
	if v, ok := boolField(fields, "battery_low"); ok {
		add(gates.Event{Kind: pick(v, gates.BatteryLow, gates.BatteryOK)})
	} else if pct, ok := numberField(fields, "battery"); ok && pct >= 0 && pct <= 100 {
		switch {
		case pct <= float64(opts.BatteryLow):
			add(gates.Event{Kind: gates.BatteryLow})
		case pct >= float64(opts.BatteryLow+10):
			add(gates.Event{Kind: gates.BatteryOK})
		}
	}
	if len(evs) == 0 {
		add(gates.Event{Kind: gates.Heartbeat})
	}
	return evs, unmapped, nil
}

func pick(v bool, ifTrue, ifFalse gates.Kind) gates.Kind {
	if v {
		return ifTrue
	}
	return ifFalse
}

func boolField(f map[string]json.RawMessage, name string) (v, ok bool) {
	raw, present := f[name]
	return v, present && json.Unmarshal(raw, &v) == nil && !isNull(raw)
}

func stringField(f map[string]json.RawMessage, name string) (v string, ok bool) {
	raw, present := f[name]
	return v, present && json.Unmarshal(raw, &v) == nil && !isNull(raw)
}

func numberField(f map[string]json.RawMessage, name string) (v float64, ok bool) {
	raw, present := f[name]
	return v, present && json.Unmarshal(raw, &v) == nil && !isNull(raw)
}

// codeField reads a keypad code: a string ("1234", as the ZCL carries
// it), or a number where a converter made one of it (its digits as
// written: a leading zero is already lost then). Anything else is no code.
func codeField(f map[string]json.RawMessage, name string) string {
	if s, ok := stringField(f, name); ok {
		return s
	}
	var n json.Number
	if raw, ok := f[name]; ok && json.Unmarshal(raw, &n) == nil && !isNull(raw) {
		return n.String()
	}
	return ""
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// ParseAvailability reads zigbee2mqtt/<name>/availability: {"state":"online"}
// or {"state":"offline"} (Zigbee2MQTT 1.x and 2.x), or the legacy plain
// online / offline.
func ParseAvailability(payload []byte) (online bool, err error) {
	p := bytes.TrimSpace(payload)
	state := string(p)
	if len(p) > 0 && p[0] == '{' {
		var v struct {
			State string `json:"state"`
		}
		if err := json.Unmarshal(p, &v); err != nil {
			return false, fmt.Errorf("availability is not JSON: %w", err)
		}
		state = v.State
	}
	switch state {
	case "online":
		return true, nil
	case "offline":
		return false, nil
	}
	return false, fmt.Errorf("availability %q: want online or offline", truncate(state))
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// momentary reports whether an event is something happening now rather
// than a level: a retained message replays it to every new subscriber.
func momentary(k gates.Kind) bool {
	return k == gates.Button || k == gates.Presence || k == gates.Arm || k == gates.Disarm
}
