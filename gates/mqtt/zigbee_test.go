package mqtt

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/gates"
)

// brief writes events compactly: kind, :sensor, :mode, and +code or
// -code for arm and disarm (never the code itself).
func brief(evs []gates.Event) string {
	var got []string
	for _, ev := range evs {
		s := string(ev.Kind)
		if ev.Sensor != "" {
			s += ":" + ev.Sensor
		}
		if ev.Kind == gates.Arm || ev.Kind == gates.Disarm {
			s += ":" + ev.Mode
			if ev.Code != "" {
				s += "+code"
			} else {
				s += "-code"
			}
		}
		got = append(got, s)
	}
	return strings.Join(got, " ")
}

// Payloads as real Zigbee2MQTT 1.x/2.x devices publish them (the device's
// cached state merged with what it just said), named by model.
func TestParseZigbee(t *testing.T) {
	tests := []struct {
		name, payload string
		actions       map[string]string // the installer's mapping, if any
		want          string
		unmapped      string
	}{
		{name: "Aqara door contact closed (MCCGQ11LM)", payload: `{"battery":100,"contact":true,"device_temperature":25,"linkquality":87,"power_outage_count":3,"voltage":3025}`, want: "closed battery_ok"},
		{name: "Aqara door contact open", payload: `{"battery":100,"contact":false,"linkquality":87,"voltage":3025}`, want: "opened battery_ok"},
		{name: "Heiman smoke alarm (HS1SA) with tamper field", payload: `{"battery":90,"battery_low":false,"linkquality":120,"smoke":true,"tamper":false,"test":false}`, want: "tamper_clear alarm:smoke battery_ok"},
		{name: "Heiman gas (HS1CG, mains)", payload: `{"gas":true,"linkquality":96,"tamper":false}`, want: "tamper_clear alarm:gas"},
		{name: "Aqara water leak (SJCGQ11LM)", payload: `{"battery":100,"battery_low":false,"device_temperature":21,"linkquality":120,"power_outage_count":0,"voltage":3005,"water_leak":true}`, want: "alarm:water_leak battery_ok"},
		{name: "cover opened on a sensor", payload: `{"tamper":true,"water_leak":false,"battery_low":true}`, want: "tamper alarm_clear:water_leak battery_low"},

		// SOS and panic buttons.
		{name: "Tuya SOS button (TS0215A_sos): command_emergency", payload: `{"action":"emergency","battery":100,"linkquality":65,"voltage":3000}`, want: "button battery_ok"},
		{name: "Loginovo SOS button (ZG-101Z)", payload: `{"action":"sos","battery_low":false,"linkquality":142}`, want: "button battery_ok"},
		{name: "Hive keypad panic button (KEYPAD001): command_panic", payload: `{"action":"panic","battery":87,"battery_low":false,"linkquality":72,"tamper":false,"voltage":2900}`, want: "tamper_clear button battery_ok"},
		{name: "Immax keypad SOS key (07505L, Tuya)", payload: `{"action":"sos","battery":100,"linkquality":98,"tamper":false}`, want: "tamper_clear button battery_ok"},
		{name: "Feibit SOS button (SEB01ZB): an IAS zone level", payload: `{"battery":100,"battery_low":false,"linkquality":60,"sos":true,"tamper":false}`, want: "tamper_clear button battery_ok"},
		{name: "emergency flag", payload: `{"emergency":true}`, want: "button"},
		{name: "emergency flag off", payload: `{"emergency":false,"sos":false}`, want: "heartbeat"},
		// Heiman's emergency button reports its press as a plain "single"
		// (command_status_change_notification_action): only a mapping
		// makes it an SOS.
		{name: "Heiman emergency button (HS1EB) unmapped", payload: `{"action":"single","battery":100,"linkquality":83}`, want: "battery_ok", unmapped: "single"},
		{name: "Heiman emergency button (HS1EB) mapped single: sos", payload: `{"action":"single","battery":100,"linkquality":83}`, actions: map[string]string{"single": "sos"}, want: "button battery_ok"},
		{name: "an installer silences emergency", payload: `{"action":"emergency","linkquality":65}`, actions: map[string]string{"emergency": "ignore"}, want: "heartbeat"},

		// Alarm keypads.
		{name: "Frient keypad arms (KEPZB-110 / Develco KEYZB-110): command_arm_with_transaction",
			payload: `{"action":"arm_all_zones","action_code":"1234","action_transaction":99,"action_zone":23,"battery":100,"battery_low":false,"linkquality":120,"tamper":false,"voltage":3100}`,
			want:    "tamper_clear arm:arm_all_zones+code battery_ok"},
		{name: "Frient keypad disarms",
			payload: `{"action":"disarm","action_code":"1234","action_transaction":100,"action_zone":23,"battery":100,"battery_low":false,"linkquality":117,"tamper":false,"voltage":3100}`,
			want:    "tamper_clear disarm:disarm+code battery_ok"},
		{name: "Frient keypad home mode without a code", payload: `{"action":"arm_day_zones","action_code":"","action_transaction":101,"action_zone":23,"linkquality":117}`, want: "arm:arm_day_zones-code"},
		{name: "Hive keypad (KEYPAD001) night, code as a number", payload: `{"action":"arm_night_zones","action_code":4711,"action_transaction":7,"action_zone":23,"linkquality":72}`, want: "arm:arm_night_zones+code"},
		{name: "Hive keypad entry delay is no request", payload: `{"action":"entry_delay","linkquality":72}`, want: "heartbeat", unmapped: "entry_delay"},
		{name: "Immax keypad (07505L, Tuya) arm away", payload: `{"action":"arm_away","battery":100,"linkquality":98,"tamper":false}`, want: "tamper_clear arm:arm_away-code battery_ok"},
		{name: "Immax keypad arm home", payload: `{"action":"arm_home","battery":100,"linkquality":98,"tamper":false}`, want: "tamper_clear arm:arm_home-code battery_ok"},
		{name: "Frient keypad emergency key", payload: `{"action":"emergency","battery":100,"battery_low":false,"linkquality":117,"tamper":false,"voltage":3100}`, want: "tamper_clear button battery_ok"},
		{name: "an installer's own words for arming", payload: `{"action":"away","linkquality":51}`, actions: map[string]string{"away": "arm", "home": "disarm"}, want: "arm:away-code"},

		// Remotes, dimmers and scene switches say nothing to a gate.
		{name: "IKEA on/off switch (E1743) dimming", payload: `{"action":"brightness_move_up","battery":87,"linkquality":57}`, want: "battery_ok", unmapped: "brightness_move_up"},
		{name: "IKEA on/off switch on", payload: `{"action":"on","linkquality":57}`, want: "heartbeat", unmapped: "on"},
		{name: "IKEA remote (E1524/E1810) toggle", payload: `{"action":"toggle","linkquality":105}`, want: "heartbeat", unmapped: "toggle"},
		{name: "IKEA remote step", payload: `{"action":"brightness_step_down","action_step_size":43,"action_transition_time":0.02,"linkquality":105}`, want: "heartbeat", unmapped: "brightness_step_down"},
		{name: "Philips Hue dimmer (324131092621) hold", payload: `{"action":"up_hold","action_duration":2,"battery":100,"linkquality":86}`, want: "battery_ok", unmapped: "up_hold"},
		{name: "Philips Hue dimmer release", payload: `{"action":"up_release","action_duration":2,"linkquality":86}`, want: "heartbeat", unmapped: "up_release"},
		{name: "Aqara wireless switch (WXKG11LM) single", payload: `{"action":"single","battery":100,"linkquality":70,"voltage":3042}`, want: "battery_ok", unmapped: "single"},
		{name: "Aqara wireless switch release", payload: `{"action":"release","linkquality":70}`, want: "heartbeat", unmapped: "release"},
		{name: "Heiman scene switch (HS2SS) go out", payload: `{"action":"go_out","battery":100,"linkquality":90}`, want: "battery_ok", unmapped: "go_out"},
		{name: "IKEA colour remote", payload: `{"action":"color_temperature_move","action_color_temperature":370,"linkquality":90}`, want: "heartbeat", unmapped: "color_temperature_move"},
		{name: "action cleared by Zigbee2MQTT 1.x", payload: `{"action":"","linkquality":70}`, want: "heartbeat"},

		// Motion.
		{name: "Aqara motion (RTCGQ11LM)", payload: `{"battery":100,"illuminance":23,"illuminance_lux":23,"linkquality":110,"occupancy":true,"voltage":3015}`, want: "presence battery_ok"},
		{name: "no occupancy is nothing", payload: `{"occupancy":false}`, want: "heartbeat"},

		{name: "battery percentage low", payload: `{"battery":12}`, want: "battery_low"},
		{name: "battery in the hysteresis gap", payload: `{"battery":20}`, want: "heartbeat"},
		{name: "battery percentage fine", payload: `{"battery":25}`, want: "battery_ok"},
		{name: "still interviewing: nulls", payload: `{"contact":null,"battery":null,"action":null,"occupancy":null,"linkquality":40}`, want: "heartbeat"},
		{name: "odd types are skipped, not fatal", payload: `{"contact":"open","smoke":1,"gas":false,"action":7,"sos":"yes"}`, want: "alarm_clear:gas"},
		{name: "only link quality", payload: `{"linkquality":40}`, want: "heartbeat"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			actions, err := ParseActions(tc.actions)
			if err != nil {
				t.Fatal(err)
			}
			evs, unmapped, err := ParseZigbee([]byte(tc.payload), ZigbeeOptions{BatteryLow: 15, Actions: actions}, &Levels{})
			if err != nil {
				t.Fatal(err)
			}
			if got := brief(evs); got != tc.want || unmapped != tc.unmapped {
				t.Fatalf("got %q (unmapped %q), want %q (unmapped %q)", got, unmapped, tc.want, tc.unmapped)
			}
			for _, ev := range evs {
				ev.Gate, ev.Device, ev.Time = "g", "d", time.Now()
				if err := ev.Validate(); err != nil {
					t.Fatalf("invalid event %+v: %v", ev, err)
				}
			}
		})
	}
	for _, bad := range []string{``, `offline`, `[1,2]`, `null`, `"contact"`, `{"contact":true`} {
		if _, _, err := ParseZigbee([]byte(bad), ZigbeeOptions{BatteryLow: 15}, nil); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestParseZigbeeCode: the code a keypad sent is carried as it was typed,
// for the gate to check.
func TestParseZigbeeCode(t *testing.T) {
	for payload, want := range map[string]string{
		`{"action":"disarm","action_code":"0815"}`: "0815",
		`{"action":"disarm","action_code":4711}`:   "4711",
		`{"action":"disarm","action_code":null}`:   "",
		`{"action":"disarm","action_code":[1]}`:    "",
		`{"action":"disarm"}`:                      "",
	} {
		evs, _, err := ParseZigbee([]byte(payload), ZigbeeOptions{}, nil)
		if err != nil || len(evs) != 1 || evs[0].Kind != gates.Disarm || evs[0].Code != want || evs[0].Mode != "disarm" {
			t.Errorf("%s: %+v %v, want code %q", payload, evs, err, want)
		}
	}
}

// TestParseZigbeeRisingEdges: Zigbee2MQTT republishes a motion sensor's
// whole cached state, occupancy included, with every illuminance and
// battery report; only false (or nothing known) → true is presence.
func TestParseZigbeeRisingEdges(t *testing.T) {
	steps := []struct{ payload, want string }{
		// Aqara RTCGQ11LM: motion, then illuminance reports while occupied.
		{`{"battery":100,"illuminance":23,"illuminance_lux":23,"linkquality":110,"occupancy":true,"voltage":3015}`, "presence battery_ok"},
		{`{"battery":100,"illuminance":31,"illuminance_lux":31,"linkquality":110,"occupancy":true,"voltage":3015}`, "battery_ok"},
		{`{"illuminance":40,"illuminance_lux":40,"linkquality":107,"occupancy":true}`, "heartbeat"},
		// Zigbee2MQTT's occupancy_timeout (90 s) ends it.
		{`{"illuminance":40,"illuminance_lux":40,"linkquality":107,"occupancy":false}`, "heartbeat"},
		{`{"illuminance":12,"illuminance_lux":12,"linkquality":107,"occupancy":true}`, "presence"},
		{`{"illuminance":12,"illuminance_lux":12,"linkquality":107}`, "heartbeat"}, // no occupancy field: the level stays
		{`{"illuminance":13,"illuminance_lux":13,"linkquality":107,"occupancy":true}`, "heartbeat"},
		// Feibit SEB01ZB SOS zone: pressed, then its battery report
		// carries the cached sos: true again; released; pressed.
		{`{"battery":100,"battery_low":false,"linkquality":60,"sos":true,"tamper":false}`, "tamper_clear button battery_ok"},
		{`{"battery":99,"battery_low":false,"linkquality":61,"sos":true,"tamper":false}`, "tamper_clear battery_ok"},
		{`{"battery":99,"battery_low":false,"linkquality":61,"sos":false,"tamper":false}`, "tamper_clear battery_ok"},
		{`{"battery":99,"battery_low":false,"linkquality":61,"sos":true,"tamper":false}`, "tamper_clear button battery_ok"},
		// An action is never cached: each one counts, even with sos still true.
		{`{"action":"emergency","linkquality":61,"sos":true}`, "button"},
		{`{"action":"emergency","linkquality":61,"sos":true}`, "button"},
	}
	var last Levels
	for i, st := range steps {
		evs, _, err := ParseZigbee([]byte(st.payload), ZigbeeOptions{BatteryLow: 15}, &last)
		if err != nil {
			t.Fatal(err)
		}
		if got := brief(evs); got != st.want {
			t.Fatalf("step %d: got %q, want %q", i, got, st.want)
		}
	}
}

func TestParseActions(t *testing.T) {
	got, err := ParseActions(map[string]string{"single": "sos", "double": "ignore", "away": "arm", "home": "disarm"})
	if err != nil || len(got) != 4 || got["single"] != ActionSOS || got["home"] != ActionDisarm {
		t.Fatalf("%v %v", got, err)
	}
	for m, want := range map[*map[string]string]string{
		{"single": "SOS"}:                  `actions.single: unknown kind "SOS" (want sos, arm, disarm or ignore)`,
		{"double": "ignore", "hold": "on"}: `actions.hold: unknown kind "on"`,
		{"": "sos"}:                        `actions: "": an action value must be 1-128 characters`,
		{strings.Repeat("x", 129): "sos"}:  "an action value must be 1-128 characters",
	} {
		if _, err := ParseActions(*m); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: error %v, want %q", *m, err, want)
		}
	}
}

func TestParseAvailability(t *testing.T) {
	for payload, want := range map[string]bool{`{"state":"online"}`: true, `{"state":"offline"}`: false, "online": true, "offline\n": false} {
		got, err := ParseAvailability([]byte(payload))
		if err != nil || got != want {
			t.Errorf("%q: %v %v", payload, got, err)
		}
	}
	for _, bad := range []string{``, `{"state":"sleeping"}`, `{"state":`, `ONLINE`} {
		if _, err := ParseAvailability([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzParseZigbee: any payload, read after any other, yields an error or
// events that are valid once the adapter has filled in gate, device and
// time.
func FuzzParseZigbee(f *testing.F) {
	f.Add([]byte(`{"battery":90,"battery_low":false,"smoke":true,"tamper":false}`), []byte(`{"occupancy":true}`))
	f.Add([]byte(`{"contact":false,"action":"single","occupancy":true,"battery":3}`), []byte(`{"sos":true}`))
	f.Add([]byte(`{"action":"arm_all_zones","action_code":"1234","action_transaction":99,"action_zone":23}`), []byte(`{"action":"disarm","action_code":4711}`))
	f.Add([]byte(`{"state":"offline"}`), []byte(`{"emergency":true,"sos":false}`))
	f.Add([]byte(`{"contact":null}`), []byte(`{"action":"single"}`))
	now := time.Date(2026, 3, 10, 4, 0, 0, 0, time.UTC)
	opts := ZigbeeOptions{BatteryLow: 15, Actions: map[string]ActionKind{"single": ActionSOS, "double": ActionArm}}
	f.Fuzz(func(t *testing.T, first, payload []byte) {
		ParseAvailability(payload) // must not panic either
		var last Levels
		ParseZigbee(first, opts, &last)
		evs, _, err := ParseZigbee(payload, opts, &last)
		if err != nil {
			return
		}
		if len(evs) == 0 {
			t.Fatal("no events and no error")
		}
		for _, ev := range evs {
			ev.Gate, ev.Device, ev.Time = "g", "d", now
			// A keypad code longer than any configured one is passed on
			// as it came, for the sink to refuse (and count) the event.
			if err := ev.Validate(); err != nil && len(ev.Code) <= gates.MaxFieldLen {
				t.Fatalf("invalid event %+v: %v", ev, err)
			}
		}
	})
}
