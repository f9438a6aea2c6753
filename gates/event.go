// Package gates is the gate and sensor side of an edge node: the event
// model every adapter (webhook, MQTT, GPIO) produces, and a per-gate state
// machine that turns those events into red / yellow / green alerts. It does
// no I/O: time comes in as arguments, so every transition is testable
// without sockets or sleeps. Adapters live in sub-packages; the goroutine
// that feeds machines and fires their timers lives in gates/engine.
package gates

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// Kind is what happened at a gate.
type Kind string

// Event kinds. Opened/Closed, Tamper/TamperClear, Alarm/AlarmClear and
// BatteryLow/BatteryOK are levels: repeating a level is not a new event.
// Granted, Button, Presence, Arm and Disarm are momentary.
const (
	Opened      Kind = "opened"       // door contact open / barrier arm up
	Closed      Kind = "closed"       // door contact closed / barrier arm down
	Granted     Kind = "granted"      // a reader admitted Credential
	Button      Kind = "button"       // booth alarm (SOS) button pressed
	Tamper      Kind = "tamper"       // device cover opened or device moved
	TamperClear Kind = "tamper_clear" // tamper condition ended
	Alarm       Kind = "alarm"        // Sensor (smoke, gas, water_leak) alarms
	AlarmClear  Kind = "alarm_clear"  // Sensor is back to normal
	BatteryLow  Kind = "battery_low"  // device battery needs replacing
	BatteryOK   Kind = "battery_ok"   // battery replaced or recovered
	Presence    Kind = "presence"     // an occupancy (PIR) sensor saw someone
	Heartbeat   Kind = "heartbeat"    // device is alive, nothing else to say
	Offline     Kind = "offline"      // device reported (or its broker reported) offline
	Arm         Kind = "arm"          // a keypad asked to arm the gate (Mode, Code)
	Disarm      Kind = "disarm"       // a keypad asked to disarm the gate (Mode, Code)
)

// allKinds lists every kind, in the order of the constants above.
var allKinds = []Kind{Opened, Closed, Granted, Button, Tamper, TamperClear, Alarm, AlarmClear,
	BatteryLow, BatteryOK, Presence, Heartbeat, Offline, Arm, Disarm}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return slices.Contains(allKinds, k) }

// Kinds returns every event kind (for metrics that must exist before the
// first event of each kind).
func Kinds() []Kind { return slices.Clone(allKinds) }

// Sensors that raise Alarm.
const (
	Smoke     = "smoke"
	Gas       = "gas"
	WaterLeak = "water_leak"
)

// ValidSensor reports whether s is a sensor type Alarm understands.
func ValidSensor(s string) bool { return s == Smoke || s == Gas || s == WaterLeak }

// Event is one observation from a gate controller, button or sensor.
type Event struct {
	// ID identifies the event at its source, for de-duplication
	// (webhook and MQTT JSON events carry one; GPIO and Zigbee do not).
	ID string
	// Gate is the gate (a configured ID) the event belongs to.
	Gate string
	// Device is the controller, sensor or input that reported it; silence
	// and tamper are tracked per device.
	Device string
	Kind   Kind
	// Sensor is smoke, gas or water_leak for Alarm and AlarmClear.
	Sensor string
	// Credential is the card, PIN or plate admitted, for Granted.
	Credential string
	// Mode is what a keypad asked for, for Arm and Disarm, in the
	// keypad's words (arm_all_zones, arm_away, disarm, …): for people.
	Mode string
	// Code is the code entered on the keypad with Arm or Disarm, if any.
	// It is a secret: it is compared with Config.KeypadCodes and never
	// logged, shown or sent to central (alerts say "with code" or
	// "without code").
	Code string
	// Time is when it happened (UTC); adapters use arrival time when the
	// device gives none.
	Time time.Time
	// Initial marks a state report rather than a change seen live: a level
	// read when an adapter starts, or an MQTT retained message. A door
	// found open this way is not treated as forced.
	Initial bool
	// Source says which adapter delivered it, e.g. "webhook/ctrl-north"
	// or "mqtt/zigbee2mqtt/north-smoke" (logs and status only).
	Source string
}

// IDPattern is the shape of gate IDs (the same as camera and edge IDs).
var IDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// MaxFieldLen bounds free-text fields (IDs, device names, credentials).
const MaxFieldLen = 128

// Validate checks an event before it reaches a machine.
func (e *Event) Validate() error {
	switch {
	case !IDPattern.MatchString(e.Gate):
		return fmt.Errorf("gate %q: must be 1-63 lower-case letters, digits, '.', '_' or '-'", e.Gate)
	case !e.Kind.Valid():
		return fmt.Errorf("unknown event type %q", e.Kind)
	case len(e.ID) > MaxFieldLen || len(e.Device) > MaxFieldLen || len(e.Credential) > MaxFieldLen ||
		len(e.Mode) > MaxFieldLen || len(e.Code) > MaxFieldLen || len(e.Source) > 2*MaxFieldLen:
		return fmt.Errorf("a field is longer than %d characters", MaxFieldLen)
	case e.Time.IsZero():
		return errors.New("time is zero")
	}
	if (e.Kind == Alarm || e.Kind == AlarmClear) != (e.Sensor != "") {
		if e.Sensor == "" {
			return fmt.Errorf("%s needs a sensor (smoke, gas or water_leak)", e.Kind)
		}
		return fmt.Errorf("sensor is only for alarm and alarm_clear, not %s", e.Kind)
	}
	if e.Sensor != "" && !ValidSensor(e.Sensor) {
		return fmt.Errorf("unknown sensor %q (want smoke, gas or water_leak)", e.Sensor)
	}
	if e.Credential != "" && e.Kind != Granted {
		return fmt.Errorf("credential is only for granted, not %s", e.Kind)
	}
	if (e.Mode != "" || e.Code != "") && e.Kind != Arm && e.Kind != Disarm {
		return fmt.Errorf("mode and code are only for arm and disarm, not %s", e.Kind)
	}
	return nil
}
