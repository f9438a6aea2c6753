package mqtt

import (
	"strings"
	"testing"
	"time"
)

// Payloads as real Zigbee2MQTT 1.x/2.x devices publish them.
func TestParseZigbee(t *testing.T) {
	tests := []struct {
		name, payload, want string
	}{
		{"Aqara door contact closed (MCCGQ11LM)", `{"battery":100,"contact":true,"device_temperature":25,"linkquality":87,"power_outage_count":3,"voltage":3025}`, "closed battery_ok"},
		{"Aqara door contact open", `{"battery":100,"contact":false,"linkquality":87,"voltage":3025}`, "opened battery_ok"},
		{"Heiman smoke alarm (HS1SA) with tamper field", `{"battery":90,"battery_low":false,"linkquality":120,"smoke":true,"tamper":false,"test":false}`, "tamper_clear alarm:smoke battery_ok"},
		{"Heiman gas (HS1CG, mains)", `{"gas":true,"linkquality":96,"tamper":false}`, "tamper_clear alarm:gas"},
		{"Aqara water leak (SJCGQ11LM)", `{"battery":100,"battery_low":false,"device_temperature":21,"linkquality":120,"power_outage_count":0,"voltage":3005,"water_leak":true}`, "alarm:water_leak battery_ok"},
		{"cover opened on a sensor", `{"tamper":true,"water_leak":false,"battery_low":true}`, "tamper alarm_clear:water_leak battery_low"},
		{"Tuya SOS button (TS0215A)", `{"action":"emergency","battery":100,"linkquality":65}`, "button battery_ok"},
		{"Aqara button single press", `{"action":"single","battery":100,"linkquality":70}`, "button battery_ok"},
		{"button release is not a press", `{"action":"release","linkquality":70}`, "heartbeat"},
		{"action cleared by Zigbee2MQTT", `{"action":"","linkquality":70}`, "heartbeat"},
		{"emergency flag", `{"emergency":true}`, "button"},
		{"Aqara motion (RTCGQ11LM)", `{"battery":100,"illuminance":23,"illuminance_lux":23,"linkquality":110,"occupancy":true,"voltage":3015}`, "presence battery_ok"},
		{"no occupancy is nothing", `{"occupancy":false}`, "heartbeat"},
		{"battery percentage low", `{"battery":12}`, "battery_low"},
		{"battery in the hysteresis gap", `{"battery":20}`, "heartbeat"},
		{"battery percentage fine", `{"battery":25}`, "battery_ok"},
		{"still interviewing: nulls", `{"contact":null,"battery":null,"linkquality":40}`, "heartbeat"},
		{"odd types are skipped, not fatal", `{"contact":"open","smoke":1,"gas":false}`, "alarm_clear:gas"},
		{"only link quality", `{"linkquality":40}`, "heartbeat"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := ParseZigbee([]byte(tc.payload), 15)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ev := range evs {
				s := string(ev.Kind)
				if ev.Sensor != "" {
					s += ":" + ev.Sensor
				}
				got = append(got, s)
			}
			if strings.Join(got, " ") != tc.want {
				t.Fatalf("got %q, want %q", strings.Join(got, " "), tc.want)
			}
		})
	}
	for _, bad := range []string{``, `offline`, `[1,2]`, `null`, `"contact"`, `{"contact":true`} {
		if _, err := ParseZigbee([]byte(bad), 15); err == nil {
			t.Errorf("%q accepted", bad)
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

// FuzzParseZigbee: any payload yields an error or events that are valid
// once the adapter has filled in gate, device and time.
func FuzzParseZigbee(f *testing.F) {
	f.Add([]byte(`{"battery":90,"battery_low":false,"smoke":true,"tamper":false}`))
	f.Add([]byte(`{"contact":false,"action":"single","occupancy":true,"battery":3}`))
	f.Add([]byte(`{"state":"offline"}`))
	f.Add([]byte(`{"contact":null}`))
	now := time.Date(2026, 3, 10, 4, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, payload []byte) {
		ParseAvailability(payload) // must not panic either
		evs, err := ParseZigbee(payload, 15)
		if err != nil {
			return
		}
		if len(evs) == 0 {
			t.Fatal("no events and no error")
		}
		for _, ev := range evs {
			ev.Gate, ev.Device, ev.Time = "g", "d", now
			if err := ev.Validate(); err != nil {
				t.Fatalf("invalid event %+v: %v", ev, err)
			}
		}
	})
}
