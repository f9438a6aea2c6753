package mqtt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/vigil-perimeter/vigil/gates"
)

// ParseZigbee turns one Zigbee2MQTT device state message (the JSON object
// published on zigbee2mqtt/<friendly_name>) into events with Kind and
// Sensor set; the caller fills in gate, device and time.
//
// Zigbee2MQTT republishes a device's whole state whenever any attribute
// changes, so most messages repeat levels already known; the state
// machine ignores repeated levels. A field with an unexpected type (null
// while a device is still interviewing, say) is skipped, not an error: one
// odd attribute must not hide the others. A message that yields nothing
// else is a Heartbeat (the device is alive).
//
//	contact     false → opened, true → closed (the magnet is next to the switch)
//	smoke, gas, water_leak   true → alarm, false → alarm_clear
//	tamper      true → tamper, false → tamper_clear
//	action      any value but "" or "*release" → button (booth SOS buttons)
//	emergency   true → button
//	occupancy   true → presence
//	battery_low true → battery_low, false → battery_ok; without it,
//	battery     (percent) at or below batteryLow → battery_low, at or above
//	            batteryLow+10 → battery_ok (the gap stops flapping)
func ParseZigbee(payload []byte, batteryLow int) ([]gates.Event, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(payload, &fields); err != nil {
		return nil, fmt.Errorf("zigbee2mqtt state is not a JSON object: %w", err)
	}
	if fields == nil {
		return nil, errors.New("zigbee2mqtt state is null")
	}
	var out []gates.Event
	add := func(k gates.Kind, sensor string) { out = append(out, gates.Event{Kind: k, Sensor: sensor}) }
	if v, ok := boolField(fields, "tamper"); ok {
		add(pick(v, gates.Tamper, gates.TamperClear), "")
	}
	for _, s := range []string{gates.Smoke, gates.Gas, gates.WaterLeak} {
		if v, ok := boolField(fields, s); ok {
			add(pick(v, gates.Alarm, gates.AlarmClear), s)
		}
	}
	if v, ok := boolField(fields, "contact"); ok {
		add(pick(v, gates.Closed, gates.Opened), "")
	}
	if a, ok := stringField(fields, "action"); ok && a != "" && !strings.HasSuffix(a, "release") {
		add(gates.Button, "")
	} else if v, ok := boolField(fields, "emergency"); ok && v {
		add(gates.Button, "")
	}
	if v, ok := boolField(fields, "occupancy"); ok && v {
		add(gates.Presence, "")
	}
	if v, ok := boolField(fields, "battery_low"); ok {
		add(pick(v, gates.BatteryLow, gates.BatteryOK), "")
	} else if pct, ok := numberField(fields, "battery"); ok && pct >= 0 && pct <= 100 {
		switch {
		case pct <= float64(batteryLow):
			add(gates.BatteryLow, "")
		case pct >= float64(batteryLow+10):
			add(gates.BatteryOK, "")
		}
	}
	if len(out) == 0 {
		add(gates.Heartbeat, "")
	}
	return out, nil
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
