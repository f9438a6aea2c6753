package sensors

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/config"
)

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func num(v float64) *float64 { return &v }

func dur(d time.Duration) *config.Duration { c := config.Duration(d); return &c }

// mqttSensor is a sensor read from a topic, so that Resolve gives the
// MQTT defaults; interval 10s unless set.
func mqttSensor(id, kind string) SensorConfig {
	return SensorConfig{ID: id, Kind: kind, Interval: config.Duration(10 * time.Second),
		Source: SourceRef{MQTT: &MQTTRef{Topic: "plant/" + id}}}
}

// step is a reading at an offset from epoch (v set) or a Tick (v nil),
// and the changes it must return, as "from>to rule threshold".
type step struct {
	at   time.Duration
	v    *float64
	want []string
}

func read(at time.Duration, v float64, want ...string) step { return step{at: at, v: &v, want: want} }
func tick(at time.Duration, want ...string) step            { return step{at: at, want: want} }

func format(chs []Change) []string {
	var out []string
	for _, c := range chs {
		out = append(out, fmt.Sprintf("%s>%s %s %g", c.From, c.To, c.Rule, c.Threshold))
	}
	return out
}

func play(t *testing.T, e *Evaluator, id string, steps []step) {
	t.Helper()
	for i, s := range steps {
		at := epoch.Add(s.at)
		var got []Change
		if s.v != nil {
			got = e.Observe(Reading{Sensor: id, Time: at, Value: *s.v})
		} else {
			got = e.Tick(at)
		}
		if !slices.Equal(format(got), s.want) {
			t.Errorf("step %d (%v, value %v): changes %q, want %q", i, s.at, deref(s.v), format(got), s.want)
		}
		for _, c := range got {
			if c.Sensor != id || !c.At.Equal(at) {
				t.Errorf("step %d: change %+v, want sensor %s at %v", i, c, id, at)
			}
		}
	}
}

func deref(p *float64) any {
	if p == nil {
		return "tick"
	}
	return *p
}

const s = time.Second

func TestEvaluator(t *testing.T) {
	cable := mqttSensor("cable", "cable_temperature") // 60/80 °C, hysteresis 4, 5 s
	instant := mqttSensor("cable", "cable_temperature")
	instant.MinDuration = dur(0)
	rcd := mqttSensor("rcd", "residual_current") // 300/500 mA, 5 s
	rising := mqttSensor("cable", "cable_temperature")
	rising.RateOfRise = &RateOfRise{Delta: 5} // per 1m
	tank := mqttSensor("tank", "water_level")
	tank.Below, tank.Warn, tank.Alarm = true, num(50), num(20) // hysteresis 1, no min duration
	smoke := mqttSensor("smoke", "smoke")
	hum := mqttSensor("hum", "humidity") // 10 s × 3 stale, hysteresis 4.5
	hum.Warn, hum.Alarm = num(80), num(90)

	cases := []struct {
		name  string
		c     SensorConfig
		steps []step
	}{
		{"warn, alarm, back through warning to clear with hysteresis", cable, []step{
			read(0, 50), read(1*s, 61), tick(3 * s),
			tick(6*s, "normal>warning warning 60"),
			read(7*s, 81), tick(11 * s),
			read(12*s, 81, "warning>alarm alarm 80"),
			read(13*s, 77), read(14*s, 79.9), // within 4 of 80: still an alarm
			read(15*s, 75, "alarm>warning warning 60"),
			read(16*s, 59), read(17*s, 60.5), read(18*s, 56), // within 4 of 60
			read(19*s, 55.9, "warning>normal clear 60"),
			tick(30 * s),
		}},
		{"no flapping around a threshold", instant, []step{
			read(0, 59.9), read(1*s, 60, "normal>warning warning 60"),
			read(2*s, 59), read(3*s, 61), read(4*s, 58), read(5*s, 60.1), read(6*s, 56.5),
			read(7*s, 55, "warning>normal clear 60"),
			read(8*s, 59.9), read(9*s, 60, "normal>warning warning 60"),
		}},
		{"a short spike does nothing; a held one alarms after min_duration", rcd, []step{
			read(0, 100), read(1*s, 600), read(3*s, 100), tick(10 * s),
			read(11*s, 400), read(13*s, 250), tick(20 * s), // a warning shorter than 5 s
			read(20*s, 600), read(22*s, 650), tick(24 * s),
			tick(25*s, "normal>alarm alarm 500"),
			read(26*s, 480), read(27*s, 474.9, "alarm>warning warning 300"),
		}},
		{"a spike past alarm during a warning keeps the warning", rcd, []step{
			read(0, 350), tick(5*s, "normal>warning warning 300"),
			read(6*s, 900), read(8*s, 350), tick(12 * s), tick(20 * s),
		}},
		{"rate of rise warns before the threshold, clears when the rise slows", rising, []step{
			read(0, 30), read(10*s, 31), read(20*s, 32), read(30*s, 33), read(40*s, 34),
			read(50*s, 35), // 5 in 50 s: not more than 5 a minute
			read(60*s, 36, "normal>warning rate_of_rise 5"),
			read(70*s, 37), read(80*s, 38), read(90*s, 39),
			read(100*s, 39), read(110*s, 39), read(120*s, 39), // rise 5, 4, 3: above 2.5
			read(130*s, 39, "warning>normal clear 5"),
		}},
		{"rate of rise over sparse readings is scaled to per", rising, []step{
			read(0, 30), read(3*time.Minute, 42), // 4 a minute
			read(4*time.Minute, 48, "normal>warning rate_of_rise 5"),
		}},
		{"below: a tank running dry", tank, []step{
			read(0, 100), read(1*s, 50, "normal>warning warning 50"),
			read(2*s, 20, "warning>alarm alarm 20"),
			read(3*s, 21), read(4*s, 21.5, "alarm>warning warning 50"),
			read(5*s, 51), read(6*s, 51.1, "warning>normal clear 50"),
		}},
		{"detector", smoke, []step{
			read(0, 0), read(1*s, 1, "normal>alarm detector 1"), read(2*s, 1),
			read(3*s, 0, "alarm>normal clear 1"),
		}},
		{"stale: silent, and a reading clears it back to the value's state", hum, []step{
			tick(0), tick(29 * s),
			tick(30*s, "unknown>silent silent 0"), tick(31 * s),
			read(32*s, 50, "silent>normal clear 0"),
			tick(61 * s), tick(62*s, "normal>silent silent 0"),
			read(63*s, 95, "silent>alarm alarm 90"),
			tick(92 * s), tick(93*s, "alarm>silent silent 0"),
			read(94*s, 86, "silent>alarm alarm 90"), // 86 is within 4.5 of 90
			read(95*s, 85, "alarm>warning warning 80"),
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := Validate([]SensorConfig{tc.c}, InputsConfig{MQTT: &MQTTInputConfig{Broker: "tcp://127.0.0.1:1883"}}); err != nil {
				t.Fatal(err)
			}
			e := New([]Resolved{Resolve(tc.c, InputsConfig{})})
			play(t, e, tc.c.ID, tc.steps)
		})
	}
}

// A crossing that is pending when a sensor goes silent starts again with
// the next reading: silence is not time beyond a threshold.
func TestStaleResetsStretch(t *testing.T) {
	c := mqttSensor("rcd", "residual_current")
	c.Interval = config.Duration(2 * s) // silent after 6 s
	c.MinDuration = dur(10 * s)
	e := New([]Resolved{Resolve(c, InputsConfig{})})
	play(t, e, "rcd", []step{
		tick(0), read(1*s, 600), tick(6 * s),
		tick(7*s, "normal>silent silent 0"),
		read(8*s, 600, "silent>normal clear 0"),
		read(10*s, 600), read(12*s, 600), read(14*s, 600), read(16*s, 600), tick(17 * s),
		tick(18*s, "normal>alarm alarm 500"),
	})
}

// A sensor resumed from the verdict it had before a restart keeps it
// while its readings are within hysteresis of the stage it held (no new
// alert), clears to normal with the limit it held, goes silent from the
// first Tick when it never reports, and a rate-of-rise warning clears at
// the first reading under the thresholds.
func TestResume(t *testing.T) {
	cable := mqttSensor("cable", "cable_temperature") // 60/80 °C, hysteresis 4, 5 s; silent after 30 s
	alarm := Resumed{State: StateAlarm, Level: StateAlarm, Threshold: 80, Value: 85, At: epoch.Add(-time.Minute)}
	cases := []struct {
		name  string
		r     Resumed
		steps []step
	}{
		{"an alarm held within hysteresis, then falling to warning and clear", alarm, []step{
			tick(0), read(1*s, 77), tick(2 * s),
			read(3*s, 70, "alarm>warning warning 60"),
			read(4*s, 50, "warning>normal clear 60"),
		}},
		{"an alarm whose value is normal after the restart clears at once", alarm, []step{
			read(1*s, 40, "alarm>normal clear 80"),
		}},
		{"an alarm never heard again goes silent", alarm, []step{
			tick(0), tick(29 * s), tick(30*s, "alarm>silent silent 0"),
			read(31*s, 81, "silent>alarm alarm 80"),
		}},
		{"silent over an alarm: a normal reading clears both", Resumed{State: StateSilent, Level: StateAlarm}, []step{
			tick(0), tick(40 * s), read(41*s, 30, "silent>normal clear 0"),
		}},
		{"a rate-of-rise warning clears at the first normal reading", Resumed{State: StateWarning, Level: StateNormal, Threshold: 5}, []step{
			read(1*s, 45, "warning>normal clear 5"),
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := New([]Resolved{Resolve(cable, InputsConfig{})})
			if !e.Resume("cable", tc.r) {
				t.Fatal("Resume refused")
			}
			if st := e.Status()[0]; st.State != string(tc.r.State) || st.Value != tc.r.Value {
				t.Errorf("status after Resume: %+v", st)
			}
			play(t, e, "cable", tc.steps)
		})
	}
	e := New([]Resolved{Resolve(cable, InputsConfig{})})
	for _, r := range []Resumed{{State: StateNormal, Level: StateNormal}, {State: StateAlarm, Level: StateSilent}} {
		if e.Resume("cable", r) {
			t.Errorf("Resume took %+v", r)
		}
	}
	if e.Resume("other", alarm) {
		t.Error("Resume took an unknown sensor")
	}
	e.Observe(Reading{Sensor: "cable", Time: epoch, Value: 30})
	if e.Resume("cable", alarm) {
		t.Error("Resume after a reading")
	}
}

// Tick reports the changes of many sensors in configuration order; an
// unknown sensor's reading and a value that is not a number are ignored
// and counted; Status shows every sensor's verdict and last reading.
func TestEvaluatorOrderStatus(t *testing.T) {
	b := mqttSensor("b-gas", "gas")
	a := mqttSensor("a-leak", "water_leak")
	a.Interval = b.Interval
	c := mqttSensor("c-volt", "voltage")
	c.Warn, c.Alarm, c.MinDuration = num(240), num(250), dur(0)
	e := New(ResolveAll([]SensorConfig{b, a, c}, InputsConfig{}))
	if got := e.Tick(epoch); len(got) != 0 {
		t.Fatalf("first tick: %v", got)
	}
	e.Observe(Reading{Sensor: "b-gas", Time: epoch.Add(s), Value: 30})
	e.Observe(Reading{Sensor: "c-volt", Time: epoch.Add(s), Value: 230})
	e.Observe(Reading{Sensor: "zz", Time: epoch.Add(s), Value: 1})
	e.Observe(Reading{Sensor: "c-volt", Time: epoch.Add(2 * s), Value: math.NaN()})
	if got := e.Ignored(); got != 2 {
		t.Errorf("ignored %d readings, want 2", got)
	}
	got := format(e.Tick(epoch.Add(30 * s)))
	want := []string{"normal>alarm alarm 25", "unknown>silent silent 0"} // b after 5 s; a never reported
	if !slices.Equal(got, want) {
		t.Errorf("tick: %q, want %q", got, want)
	}
	got = format(e.Tick(epoch.Add(31 * s)))
	want = []string{"alarm>silent silent 0", "normal>silent silent 0"} // b, c: last read at 1 s
	if !slices.Equal(got, want) {
		t.Errorf("tick: %q, want %q", got, want)
	}
	// A reading stamped before the last one counts at the last one's time.
	chs := e.Observe(Reading{Sensor: "c-volt", Time: epoch, Value: 255})
	if len(chs) != 1 || !chs[0].At.Equal(epoch.Add(s)) || chs[0].To != StateAlarm || chs[0].Value != 255 {
		t.Errorf("an old reading: %+v", chs)
	}
	st := e.Status()
	if len(st) != 3 || st[0].ID != "b-gas" || st[1].ID != "a-leak" || st[2].ID != "c-volt" {
		t.Fatalf("status %+v", st)
	}
	if st[0].State != "silent" || st[0].Value != 30 || !st[0].Time.Equal(epoch.Add(s)) || st[0].Unit != "%LEL" ||
		*st[0].Warn != 10 || *st[0].Alarm != 25 {
		t.Errorf("gas status %+v", st[0])
	}
	if st[1].State != "silent" || !st[1].Time.IsZero() || st[1].Warn != nil || *st[1].Alarm != 1 {
		t.Errorf("leak status %+v", st[1])
	}
	if st[2].State != "alarm" || st[2].Value != 255 || st[2].Kind != "voltage" || st[2].Unit != "V" {
		t.Errorf("voltage status %+v", st[2])
	}
}

// Readings arrive from many sources at once while the edge ticks.
func TestEvaluatorConcurrent(t *testing.T) {
	list := []SensorConfig{mqttSensor("a", "gas"), mqttSensor("b", "gas")}
	e := New(ResolveAll(list, InputsConfig{}))
	done := make(chan struct{})
	for _, id := range []string{"a", "b"} {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 1000 {
				e.Observe(Reading{Sensor: id, Time: epoch.Add(time.Duration(i) * time.Millisecond), Value: float64(i % 40)})
			}
		}()
	}
	for i := range 100 {
		e.Tick(epoch.Add(time.Duration(i) * 10 * time.Millisecond))
		e.Status()
	}
	<-done
	<-done
	if st := e.Status(); st[0].Value != 999%40 || st[1].Value != 999%40 {
		t.Errorf("status %+v", st)
	}
}
