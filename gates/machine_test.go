package gates

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// shanghai is the default zone; schedules in these tests are read there.
func shanghai(t *testing.T) *time.Location {
	t.Helper()
	loc, err := LoadLocation("")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// step is one thing that happens to a gate at an offset from the case's
// start: an event, or (ev nil) only the clock moving on to a Tick.
type step struct {
	at   time.Duration
	ev   *Event
	want []string
}

func ev(kind Kind, device string) *Event { return &Event{Kind: kind, Device: device} }
func grantEv(cred string) *Event         { return &Event{Kind: Granted, Device: "reader", Credential: cred} }
func sensorEv(kind Kind, device, sensor string) *Event {
	return &Event{Kind: kind, Device: device, Sensor: sensor}
}
func initial(e *Event) *Event { e.Initial = true; return e }
func keypadEv(kind Kind, mode, code string) *Event {
	return &Event{Kind: kind, Device: "keypad", Mode: mode, Code: code}
}

var (
	opened = ev(Opened, "contact")
	closed = ev(Closed, "contact")
)

// brief writes an alert compactly: + new, ~ update, - cleared; cause,
// @device, severity, count, time since the case's start, credential.
func brief(a Alert, start time.Time) string {
	mark := "+"
	if a.Update {
		mark = "~"
	}
	if a.Cleared {
		mark = "-"
	}
	s := mark + string(a.Key)
	if a.Device != "" {
		s += "@" + a.Device
	}
	s += fmt.Sprintf(" %s x%d t=%v", a.Severity, a.Count, a.Time.Sub(start))
	if a.Credential != "" {
		s += " " + a.Credential
	}
	return s
}

// TestMachineTransitions walks every transition of the gate state machine
// on an explicit clock.
func TestMachineTransitions(t *testing.T) {
	loc := shanghai(t)
	noon := time.Date(2026, 3, 10, 12, 0, 0, 0, loc) // a Tuesday
	night := Arming{Windows: []Window{{Days: everyDay, From: 22 * 60, To: 6 * 60}}, Location: loc}
	s := time.Second

	tests := []struct {
		name  string
		start time.Time
		cfg   func(*Config)
		steps []step
	}{
		{name: "grant then opening is a green passage", steps: []step{
			{0, grantEv("card-7"), nil},
			{5 * s, opened, []string{"+passage green x1 t=5s card-7"}},
			{10 * s, closed, nil},
			{2 * time.Minute, nil, nil},
		}},
		{name: "opening without a grant while armed is forced after the grace period", steps: []step{
			{0, opened, nil},
			{299 * time.Millisecond, nil, nil},
			{300 * time.Millisecond, nil, []string{"+forced red x1 t=0s"}},
		}},
		{name: "a grant arriving just after the opening admits it", steps: []step{
			{0, opened, nil},
			{250 * time.Millisecond, grantEv("card-1"), []string{"+passage green x1 t=0s card-1"}},
			{2 * s, nil, nil},
		}},
		{name: "a grant after the grace period is too late", steps: []step{
			{0, opened, nil},
			{2 * s, grantEv("card-1"), []string{"+forced red x1 t=0s"}},
		}},
		{name: "an expired grant does not admit", steps: []step{
			{0, grantEv("card-7"), nil},
			{31 * s, opened, nil},
			{32 * s, nil, []string{"+forced red x1 t=31s"}},
		}},
		{name: "each grant admits one opening", steps: []step{
			{0, grantEv("card-1"), nil},
			{s, grantEv("card-2"), nil},
			{2 * s, opened, []string{"+passage green x1 t=2s card-1"}},
			{5 * s, closed, nil},
			{8 * s, opened, []string{"+passage green x1 t=8s card-2"}},
			{11 * s, closed, nil},
			{14 * s, opened, nil},
			{15 * s, nil, []string{"+forced red x1 t=14s"}},
		}},
		{name: "a grant disarms its passage while armed", cfg: func(c *Config) { c.Arming = Arming{Always: true} }, steps: []step{
			{0, grantEv("plate-A123"), nil},
			{3 * s, opened, []string{"+passage green x1 t=3s plate-A123"}},
		}},
		{name: "opening while disarmed is a passage without credential", cfg: func(c *Config) { c.Arming = night }, steps: []step{
			{0, opened, nil},
			{s, nil, []string{"+passage green x1 t=0s"}},
		}},
		{name: "grace period off: forced at once", cfg: func(c *Config) { c.GrantGrace = -1 }, steps: []step{
			{0, opened, []string{"+forced red x1 t=0s"}},
		}},
		{
			name: "schedule across midnight", start: time.Date(2026, 3, 10, 21, 59, 0, 0, loc),
			cfg: func(c *Config) { c.Arming = night },
			steps: []step{
				{0, opened, nil}, // 21:59 disarmed
				{s, nil, []string{"+passage green x1 t=0s"}},
				{10 * s, closed, nil},
				{61 * s, opened, nil}, // 22:00:01 armed
				{62 * s, nil, []string{"+forced red x1 t=1m1s"}},
				{70 * s, closed, nil},
				{2*time.Hour + 2*time.Minute, opened, nil}, // 00:01 next day, still armed
				{2*time.Hour + 2*time.Minute + s, nil, []string{"+forced red x1 t=2h2m0s"}},
				{2*time.Hour + 2*time.Minute + 30*s, closed, nil},
				{8 * time.Hour, opened, nil}, // 05:59 armed
				{8*time.Hour + s, nil, []string{"+forced red x1 t=8h0m0s"}},
				{8*time.Hour + 10*s, closed, nil},
				{8*time.Hour + time.Minute + s, opened, nil}, // 06:00:01 disarmed
				{8*time.Hour + time.Minute + 2*s, nil, []string{"+passage green x1 t=8h1m1s"}},
			},
		},
		{name: "held open: yellow, then red, green when closed", steps: []step{
			{0, grantEv("card-7"), nil},
			{s, opened, []string{"+passage green x1 t=1s card-7"}},
			{60 * s, nil, nil},
			{61 * s, nil, []string{"+held_open yellow x1 t=1m1s"}},
			{5 * time.Minute, nil, nil},
			{5*time.Minute + s, nil, []string{"~held_open red x1 t=5m1s"}},
			{6 * time.Minute, closed, []string{"-held_open green x1 t=6m0s"}},
			{7 * time.Minute, nil, nil},
		}},
		{name: "closed before the limit: no held-open alert", steps: []step{
			{0, grantEv("card-7"), nil},
			{s, opened, []string{"+passage green x1 t=1s card-7"}},
			{59 * s, closed, nil},
			{10 * time.Minute, nil, nil},
		}},
		{name: "held open again soon folds into the same alert", cfg: func(c *Config) { c.GrantGrace = -1; c.Arming = night }, steps: []step{
			{0, opened, []string{"+passage green x1 t=0s"}},
			{60 * s, nil, []string{"+held_open yellow x1 t=1m0s"}},
			{90 * s, closed, []string{"-held_open green x1 t=1m30s"}},
			{2 * time.Minute, opened, []string{"+passage green x1 t=2m0s"}},
			{3 * time.Minute, nil, []string{"+held_open yellow x2 t=3m0s"}},
		}},
		{name: "door found open at start-up is not forced but can be held open", steps: []step{
			{0, initial(ev(Opened, "contact")), nil},
			{5 * s, nil, nil},
			{60 * s, nil, []string{"+held_open yellow x1 t=1m0s"}},
		}},
		{name: "a flapping contact folds into one forced alert with a count", steps: []step{
			{0, opened, nil},
			{200 * time.Millisecond, closed, nil},
			{400 * time.Millisecond, opened, []string{"+forced red x1 t=0s"}}, // the grace (300ms) is over: at once
			{600 * time.Millisecond, closed, nil},
			{s, nil, nil}, // the door settles closed
			{1500 * time.Millisecond, opened, nil},
			{2 * s, nil, nil}, // settles open at 2s, waits for a grant
			{3 * s, nil, nil}, // forced again: a count-only update waits
			{30 * s, closed, nil},
			{31 * s, nil, []string{"~forced red x2 t=1.5s"}},
			{20 * time.Minute, nil, nil},
			{21 * time.Minute, opened, nil},
			{21*time.Minute + s, nil, []string{"+forced red x1 t=21m0s"}},
		}},
		{name: "repeated identical door reports are not changes", cfg: func(c *Config) { c.Arming = night }, steps: []step{
			{0, closed, nil},
			{5 * s, closed, nil},
			{10 * s, opened, nil},
			{11 * s, nil, []string{"+passage green x1 t=10s"}},
			{20 * s, opened, nil},
			{30 * s, opened, nil},
		}},
		{name: "SOS presses fold; bounce is ignored", steps: []step{
			{0, ev(Button, "booth-1"), []string{"+sos@booth-1 red x1 t=0s"}},
			{300 * time.Millisecond, ev(Button, "booth-1"), nil},
			{5 * s, ev(Button, "booth-1"), nil},
			{9 * s, ev(Button, "booth-1"), nil},
			{30 * s, nil, []string{"~sos@booth-1 red x3 t=9s"}},
			{40 * s, ev(Button, "booth-1"), nil},
			{60 * s, nil, []string{"~sos@booth-1 red x4 t=40s"}},
			{11 * time.Minute, ev(Button, "booth-1"), []string{"+sos@booth-1 red x1 t=11m0s"}},
		}},
		{name: "update interval off: every fold is reported", cfg: func(c *Config) { c.UpdateEvery = -1 }, steps: []step{
			{0, ev(Button, "booth-1"), []string{"+sos@booth-1 red x1 t=0s"}},
			{5 * s, ev(Button, "booth-1"), []string{"~sos@booth-1 red x2 t=5s"}},
		}},
		{name: "smoke alarm, repeats, clearing, alarm again folds", steps: []step{
			{0, sensorEv(Alarm, "smoke-1", Smoke), []string{"+smoke@smoke-1 red x1 t=0s"}},
			{10 * s, sensorEv(Alarm, "smoke-1", Smoke), nil},
			{60 * s, sensorEv(AlarmClear, "smoke-1", Smoke), []string{"-smoke@smoke-1 green x1 t=1m0s"}},
			{2 * time.Minute, sensorEv(Alarm, "smoke-1", Smoke), []string{"+smoke@smoke-1 red x2 t=2m0s"}},
			{3 * time.Minute, sensorEv(AlarmClear, "smoke-1", Smoke), []string{"-smoke@smoke-1 green x2 t=3m0s"}},
			{20 * time.Minute, sensorEv(Alarm, "smoke-1", Smoke), []string{"+smoke@smoke-1 red x1 t=20m0s"}},
		}},
		{name: "gas and water leak are separate alerts", steps: []step{
			{0, sensorEv(Alarm, "gas-1", Gas), []string{"+gas@gas-1 red x1 t=0s"}},
			{s, sensorEv(Alarm, "leak-1", WaterLeak), []string{"+water_leak@leak-1 red x1 t=1s"}},
			{5 * s, sensorEv(AlarmClear, "gas-1", Gas), []string{"-gas@gas-1 green x1 t=5s"}},
			{6 * s, sensorEv(AlarmClear, "leak-1", WaterLeak), []string{"-water_leak@leak-1 green x1 t=6s"}},
		}},
		{name: "a sensor flapping inside the debounce period settles", steps: []step{
			{0, sensorEv(Alarm, "smoke-1", Smoke), []string{"+smoke@smoke-1 red x1 t=0s"}},
			{300 * time.Millisecond, sensorEv(AlarmClear, "smoke-1", Smoke), nil},
			{600 * time.Millisecond, sensorEv(Alarm, "smoke-1", Smoke), nil},
			{s, nil, nil}, // settled where it started: still in alarm
			{5 * s, sensorEv(AlarmClear, "smoke-1", Smoke), []string{"-smoke@smoke-1 green x1 t=5s"}},
			{5200 * time.Millisecond, sensorEv(Alarm, "smoke-1", Smoke), nil},
			{6 * s, nil, []string{"+smoke@smoke-1 red x2 t=5.2s"}},
		}},
		{name: "a first report of normal is not a clearing", steps: []step{
			{0, sensorEv(AlarmClear, "smoke-1", Smoke), nil},
			{0, ev(TamperClear, "smoke-1"), nil},
			{0, ev(BatteryOK, "smoke-1"), nil},
		}},
		{name: "smoke already present at start-up still alarms", steps: []step{
			{0, initial(sensorEv(Alarm, "smoke-1", Smoke)), []string{"+smoke@smoke-1 red x1 t=0s"}},
		}},
		{name: "tamper and its clearing", steps: []step{
			{0, ev(Tamper, "reader"), []string{"+tamper@reader red x1 t=0s"}},
			{5 * s, ev(TamperClear, "reader"), []string{"-tamper@reader green x1 t=5s"}},
		}},
		{name: "battery low and replaced", steps: []step{
			{0, ev(BatteryLow, "smoke-1"), []string{"+battery_low@smoke-1 yellow x1 t=0s"}},
			{time.Hour, ev(BatteryLow, "smoke-1"), nil},
			{2 * time.Hour, ev(BatteryOK, "smoke-1"), []string{"-battery_low@smoke-1 green x1 t=2h0m0s"}},
		}},
		{name: "device silent past its heartbeat, green when back", cfg: func(c *Config) {
			c.Devices = []Device{{ID: "ctrl", SilentAfter: 2 * time.Minute}}
		}, steps: []step{
			{time.Minute, ev(Heartbeat, "ctrl"), nil},
			{3*time.Minute - s, nil, nil},
			{3 * time.Minute, nil, []string{"+silent@ctrl yellow x1 t=3m0s"}},
			{10 * time.Minute, nil, nil},
			{11 * time.Minute, ev(Heartbeat, "ctrl"), []string{"-silent@ctrl green x1 t=11m0s"}},
		}},
		{name: "a watched device that never reports goes silent", cfg: func(c *Config) {
			c.Devices = []Device{{ID: "smoke-1", SilentAfter: time.Hour}}
		}, steps: []step{
			{2 * time.Hour, nil, []string{"+silent@smoke-1 yellow x1 t=1h0m0s"}},
		}},
		{name: "device reported offline, then online", steps: []step{
			{0, ev(Offline, "smoke-1"), []string{"+silent@smoke-1 yellow x1 t=0s"}},
			{s, ev(Offline, "smoke-1"), nil},
			{time.Minute, ev(Heartbeat, "smoke-1"), []string{"-silent@smoke-1 green x1 t=1m0s"}},
			{2 * time.Minute, ev(Offline, "smoke-1"), []string{"+silent@smoke-1 yellow x2 t=2m0s"}},
		}},
		{name: "presence while armed is an intrusion; disarmed it is nothing", start: time.Date(2026, 3, 10, 21, 59, 0, 0, loc),
			cfg: func(c *Config) { c.Arming = night }, steps: []step{
				{0, ev(Presence, "pir"), nil},
				{2 * time.Minute, ev(Presence, "pir"), []string{"+intrusion@pir red x1 t=2m0s"}},
			}},
		{name: "a keypad arms a disarmed gate until the schedule's next change", cfg: func(c *Config) { c.Arming = night }, steps: []step{
			{0, keypadEv(Arm, "arm_all_zones", "1234"), []string{"+arming@keypad green x1 t=0s"}},
			{10 * s, opened, nil},
			{11 * s, nil, []string{"+forced red x1 t=10s"}},
			{20 * s, closed, nil},
			{10*time.Hour + time.Minute, opened, nil}, // 22:01: the schedule arms, the override is over
			{10*time.Hour + time.Minute + s, nil, []string{"+forced red x1 t=10h1m0s"}},
			{10*time.Hour + time.Minute + 30*s, closed, nil},
			{18*time.Hour + time.Minute, opened, nil}, // 06:01: the schedule disarms
			{18*time.Hour + time.Minute + s, nil, []string{"+passage green x1 t=18h1m0s"}},
		}},
		{name: "a keypad disarms a night until the window ends; the schedule arms again", start: time.Date(2026, 3, 10, 23, 0, 0, 0, loc),
			cfg: func(c *Config) { c.Arming = night }, steps: []step{
				{0, keypadEv(Disarm, "disarm", "1234"), []string{"+arming@keypad green x1 t=0s"}},
				{10 * s, opened, nil},
				{11 * s, nil, []string{"+passage green x1 t=10s"}},
				{20 * s, ev(Presence, "pir"), nil},
				{30 * s, closed, nil},
				{7*time.Hour + time.Minute, opened, nil}, // 06:01
				{7*time.Hour + time.Minute + s, nil, []string{"+passage green x1 t=7h1m0s"}},
				{7*time.Hour + time.Minute + 30*s, closed, nil},
				{23*time.Hour + time.Minute, opened, nil}, // 22:01 the next night
				{23*time.Hour + time.Minute + s, nil, []string{"+forced red x1 t=23h1m0s"}},
			}},
		{name: "an always-armed gate disarmed from a keypad stays disarmed until armed again", steps: []step{
			{0, keypadEv(Disarm, "disarm", ""), []string{"+arming@keypad green x1 t=0s"}},
			{5 * time.Hour, opened, nil},
			{5*time.Hour + s, nil, []string{"+passage green x1 t=5h0m0s"}},
			{5*time.Hour + 10*s, closed, nil},
			{6 * time.Hour, keypadEv(Arm, "arm_away", ""), []string{"+arming@keypad green x1 t=6h0m0s"}},
			{6*time.Hour + 10*s, opened, nil},
			{6*time.Hour + 11*s, nil, []string{"+forced red x1 t=6h0m10s"}},
		}},
		{name: "presence while armed from a keypad is an intrusion", cfg: func(c *Config) { c.Arming = night }, steps: []step{
			{0, ev(Presence, "pir"), nil},
			{time.Minute, keypadEv(Arm, "arm_away", "1234"), []string{"+arming@keypad green x1 t=1m0s"}},
			{2 * time.Minute, ev(Presence, "pir"), []string{"+intrusion@pir red x1 t=2m0s"}},
		}},
		{name: "keypad codes: a wrong or missing code changes nothing and folds", cfg: func(c *Config) { c.KeypadCodes = []string{"4711", "0815"} }, steps: []step{
			{0, keypadEv(Disarm, "disarm", "1234"), []string{"+wrong_code@keypad yellow x1 t=0s"}},
			{10 * s, keypadEv(Disarm, "disarm", ""), nil},
			{20 * s, opened, nil},
			{21 * s, nil, []string{"+forced red x1 t=20s"}},
			{25 * s, closed, nil},
			{40 * s, nil, []string{"~wrong_code@keypad yellow x2 t=10s"}},
			{50 * s, keypadEv(Disarm, "disarm", "0815"), []string{"+arming@keypad green x1 t=50s"}},
			{60 * s, opened, nil},
			{61 * s, nil, []string{"+passage green x1 t=1m0s"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := tc.start
			if start.IsZero() {
				start = noon
			}
			cfg := Config{ID: "north-gate", Name: "North gate", Arming: Arming{Always: true}}
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			m, err := New(cfg, start)
			if err != nil {
				t.Fatal(err)
			}
			for i, st := range tc.steps {
				now := start.Add(st.at)
				var got []Alert
				if st.ev == nil {
					got = m.Tick(now)
				} else {
					e := *st.ev
					e.Gate, e.Time = "north-gate", now
					if err := e.Validate(); err != nil {
						t.Fatalf("step %d: test event invalid: %v", i, err)
					}
					got = m.Step(e, now)
				}
				var gs []string
				for _, a := range got {
					gs = append(gs, brief(a, start))
					if a.Gate != "north-gate" || a.Summary == "" || a.Count < 1 || !a.Severity.Valid() || a.First.After(a.Time) {
						t.Errorf("step %d: incomplete alert %+v", i, a)
					}
				}
				if strings.Join(gs, "; ") != strings.Join(st.want, "; ") {
					t.Fatalf("step %d at +%v: got  %q\nwant %q", i, st.at, gs, st.want)
				}
			}
		})
	}
}

var everyDay = [7]bool{true, true, true, true, true, true, true}

// TestNextSchedulesEveryTimer: a driver that only calls Tick at Next sees
// every timer-driven alert at its instant.
func TestNextSchedulesEveryTimer(t *testing.T) {
	start := time.Date(2026, 3, 10, 4, 0, 0, 0, time.UTC)
	m, err := New(Config{ID: "g", Arming: Arming{Always: true}, Devices: []Device{{ID: "ctrl", SilentAfter: 90 * time.Second}}}, start)
	if err != nil {
		t.Fatal(err)
	}
	if next, ok := m.Next(); !ok || !next.Equal(start.Add(90*time.Second)) {
		t.Fatalf("Next = %v %v, want the silence deadline", next, ok)
	}
	m.Step(Event{Gate: "g", Device: "ctrl", Kind: Opened, Time: start}, start)
	var got []string
	now := start
	for i := 0; i < 20; i++ {
		next, ok := m.Next()
		if !ok {
			break
		}
		if next.Before(now) {
			t.Fatalf("Next went back in time: %v < %v", next, now)
		}
		now = next
		for _, a := range m.Tick(now) {
			got = append(got, brief(a, start))
		}
	}
	want := "+forced red x1 t=0s; +held_open yellow x1 t=1m0s; +silent@ctrl yellow x1 t=1m30s; ~held_open red x1 t=5m0s"
	if strings.Join(got, "; ") != want {
		t.Fatalf("got  %s\nwant %s", strings.Join(got, "; "), want)
	}
	if _, ok := m.Next(); ok {
		t.Fatal("timers left after everything fired")
	}
}

func TestStatus(t *testing.T) {
	start := time.Date(2026, 3, 10, 4, 0, 0, 0, time.UTC)
	m, _ := New(Config{ID: "g", Arming: Arming{Always: true}}, start)
	m.Step(Event{Gate: "g", Device: "s1", Kind: Alarm, Sensor: Smoke, Time: start}, start)
	m.Step(Event{Gate: "g", Device: "c", Kind: Opened, Time: start}, start)
	m.Tick(start.Add(time.Second))
	st := m.Status(start.Add(time.Second))
	if st.Door != "open" || !st.Armed || len(st.Alerts) != 2 || len(st.Devices) != 2 || len(st.Devices[1].Alarms) != 1 {
		t.Fatalf("status %+v", st)
	}
	if !st.LastGrant.IsZero() {
		t.Fatalf("last grant %v before any grant", st.LastGrant)
	}
	m.Step(Event{Gate: "g", Device: "r", Kind: Granted, Credential: "card:1", Time: start.Add(2 * time.Second)}, start.Add(2*time.Second))
	if st := m.Status(start.Add(3 * time.Second)); !st.LastGrant.Equal(start.Add(2*time.Second)) || st.LastCredential != "card:1" {
		t.Fatalf("last grant %v %q", st.LastGrant, st.LastCredential)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{ID: "Bad ID"},
		{ID: "g", HeldOpenAfter: time.Minute, HeldOpenRedAfter: time.Minute},
		{ID: "g", Devices: []Device{{ID: "a"}, {ID: "a"}}},
		{ID: "g", Devices: []Device{{ID: ""}}},
		{ID: "g", KeypadCodes: []string{"4711", ""}},
	} {
		if _, err := New(c, time.Now()); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
}

func TestDevicesAreBounded(t *testing.T) {
	start := time.Date(2026, 3, 10, 4, 0, 0, 0, time.UTC)
	m, _ := New(Config{ID: "g"}, start)
	for i := 0; i < 3*MaxDevices; i++ {
		m.Step(Event{Gate: "g", Device: fmt.Sprint("dev-", i), Kind: Tamper, Time: start}, start)
	}
	if len(m.devices) > MaxDevices+1 || len(m.folds.open) > MaxDevices+1 {
		t.Fatalf("%d devices, %d open alerts", len(m.devices), len(m.folds.open))
	}
}

// TestKeypadNotices: what a guard reads about an arming, what status
// shows, and that the entered code appears nowhere.
func TestKeypadNotices(t *testing.T) {
	loc := shanghai(t)
	noon := time.Date(2026, 3, 10, 12, 0, 0, 0, loc) // a Tuesday
	night := Arming{Windows: []Window{{Days: everyDay, From: 22 * 60, To: 6 * 60}}, Location: loc}
	m, err := New(Config{ID: "north-gate", Name: "North gate", Arming: night, KeypadCodes: []string{"90210"}}, noon)
	if err != nil {
		t.Fatal(err)
	}
	step := func(kind Kind, mode, code string, at time.Time) Alert {
		t.Helper()
		e := Event{Gate: "north-gate", Device: "north-keypad", Kind: kind, Mode: mode, Code: code, Time: at}
		if err := e.Validate(); err != nil {
			t.Fatal(err)
		}
		out := m.Step(e, at)
		if len(out) != 1 {
			t.Fatalf("%s: %d alerts", kind, len(out))
		}
		if strings.Contains(fmt.Sprintf("%+v", out[0]), "90210") || (code != "" && strings.Contains(fmt.Sprintf("%+v", out[0]), code)) {
			t.Fatalf("the code is in the alert: %+v", out[0])
		}
		return out[0]
	}
	a := step(Arm, "arm_all_zones", "90210", noon)
	if want := "North gate armed from keypad north-keypad (arm_all_zones, with code); the schedule takes over at Tue 22:00"; a.Summary != want {
		t.Fatalf("summary %q\nwant    %q", a.Summary, want)
	}
	st := m.Status(noon.Add(time.Minute))
	if !st.Armed || st.Override == nil || st.Override.Device != "north-keypad" || !st.Override.Until.Equal(time.Date(2026, 3, 10, 22, 0, 0, 0, loc)) {
		t.Fatalf("status %+v override %+v", st, st.Override)
	}
	if st := m.Status(time.Date(2026, 3, 11, 6, 0, 0, 0, loc)); st.Armed || st.Override != nil {
		t.Fatalf("the override outlived the schedule's change: %+v", st)
	}
	a = step(Arm, "arm_day_zones", "90210", noon.Add(time.Hour))
	if want := "North gate armed from keypad north-keypad (arm_day_zones, with code), was already armed; the schedule takes over at Tue 22:00"; a.Summary != want {
		t.Fatalf("summary %q", a.Summary)
	}
	a = step(Disarm, "disarm", "11111", noon.Add(2*time.Hour))
	if a.Key != CauseWrongCode || a.Summary != "Wrong code on keypad north-keypad at North gate: disarm refused" {
		t.Fatalf("wrong code: %+v", a)
	}
	if !m.Status(noon.Add(2 * time.Hour)).Armed {
		t.Fatal("a wrong code disarmed the gate")
	}
	m2, _ := New(Config{ID: "g", Name: "Booth", Arming: Arming{Always: true}}, noon)
	out := m2.Step(Event{Gate: "g", Device: "kp", Kind: Disarm, Time: noon}, noon)
	if len(out) != 1 || out[0].Summary != "Booth disarmed from keypad kp (disarm, without code); holds until the next arm or disarm" {
		t.Fatalf("%+v", out)
	}
	if st := m2.Status(noon.AddDate(0, 1, 0)); st.Armed || st.Override == nil || !st.Override.Until.IsZero() {
		t.Fatalf("status a month later %+v", st)
	}
}
