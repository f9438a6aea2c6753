package sensors

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/config"
)

// goodConfig is a site's sensors: two Modbus detectors of one model and
// Zigbee2MQTT and plain MQTT devices.
func goodConfig() ([]SensorConfig, InputsConfig) {
	in := InputsConfig{
		Modbus: ModbusConfig{
			Models: map[string][]RegisterConfig{
				"acrel-arcm300": {
					{Name: "leakage", Address: 0, Unit: "mA"},
					{Name: "temp1", Address: 1, Type: "int16", Scale: 0.1},
					{Name: "energy", Address: 10, Type: "uint32", WordOrder: "little", Table: "input"},
					{Name: "alarm", Address: 0, Table: "coil"},
				},
				"gas-x": {{Name: "lel", Address: 100, Type: "float32"}},
			},
			Devices: []ModbusDeviceConfig{
				{ID: "box-3", Address: "192.168.1.20:502", Model: "acrel-arcm300", Poll: config.Duration(2 * time.Second)},
				{ID: "kitchen", Address: "gas.local", Model: "gas-x"},
			},
		},
		MQTT: &MQTTInputConfig{Broker: "tcp://127.0.0.1:1883"},
	}
	list := []SensorConfig{
		{ID: "box-3.leak", Kind: "residual_current", Source: SourceRef{Modbus: &ModbusRef{Device: "box-3", Register: "leakage"}}},
		{ID: "box-3.temp", Kind: "cable_temperature", Warn: num(55), RateOfRise: &RateOfRise{Delta: 5},
			Source: SourceRef{Modbus: &ModbusRef{Device: "box-3", Register: "temp1"}}},
		{ID: "kitchen-gas", Kind: "gas", Source: SourceRef{Modbus: &ModbusRef{Device: "kitchen", Register: "lel"}}},
		{ID: "pump-room", Kind: "water_leak", Source: SourceRef{MQTT: &MQTTRef{Device: "pump room/leak", Field: "water_leak"}}},
		{ID: "tank", Kind: "water_level", Below: true, Warn: num(50), Alarm: num(20),
			Source: SourceRef{MQTT: &MQTTRef{Topic: "plant/tank", Path: "levels[0].cm"}}},
		{ID: "mains", Kind: "voltage", Below: true, Alarm: num(198), Hysteresis: num(2),
			Source: SourceRef{MQTT: &MQTTRef{Topic: "plant/mains"}}},
	}
	return list, in
}

func TestValidate(t *testing.T) {
	list, in := goodConfig()
	if err := Validate(list, in); err != nil {
		t.Fatalf("a good configuration: %v", err)
	}
	cases := []struct {
		name  string
		edit  func(list []SensorConfig, in *InputsConfig) []SensorConfig
		field string // the field the (only) problem names
		msg   string // part of its message
	}{
		{"bad id", func(l []SensorConfig, _ *InputsConfig) []SensorConfig { l[1].ID = "Box 3"; return l }, "sensors[1].id", "lower-case"},
		{"duplicate id", func(l []SensorConfig, _ *InputsConfig) []SensorConfig { l[2].ID = "box-3.leak"; return l }, "sensors[2].id", "used twice"},
		{"unknown kind", func(l []SensorConfig, _ *InputsConfig) []SensorConfig { l[0].Kind = "co2"; return l }, "sensors[0].kind", "residual_current, cable_temperature"},
		{"no source", func(l []SensorConfig, _ *InputsConfig) []SensorConfig { l[0].Source = SourceRef{}; return l }, "sensors[0].source", "give modbus: or mqtt:"},
		{"two sources", func(l []SensorConfig, _ *InputsConfig) []SensorConfig {
			l[0].Source.MQTT = &MQTTRef{Topic: "x"}
			return l
		}, "sensors[0].source", "not both"},
		{"unknown device", func(l []SensorConfig, _ *InputsConfig) []SensorConfig { l[0].Source.Modbus.Device = "box-4"; return l }, "sensors[0].source.modbus.device", `"box-4"`},
		{"unknown register", func(l []SensorConfig, _ *InputsConfig) []SensorConfig {
			l[2].Source.Modbus.Register = "temp1"
			return l
		}, "sensors[2].source.modbus.register", `model "gas-x"`},
		{"mqtt without a broker", func(l []SensorConfig, in *InputsConfig) []SensorConfig { in.MQTT = nil; return l[:4] }, "sensors[3].source.mqtt", "sensor_inputs.mqtt"},
		{"zigbee and topic", func(l []SensorConfig, _ *InputsConfig) []SensorConfig { l[3].Source.MQTT.Topic = "x"; return l }, "sensors[3].source.mqtt", "not both"},
		{"zigbee without field", func(l []SensorConfig, _ *InputsConfig) []SensorConfig { l[3].Source.MQTT.Field = ""; return l }, "sensors[3].source.mqtt.field", "property"},
		{"wildcard topic", func(l []SensorConfig, _ *InputsConfig) []SensorConfig { l[4].Source.MQTT.Topic = "plant/+"; return l }, "sensors[4].source.mqtt.topic", "wildcards"},
		{"bad path", func(l []SensorConfig, _ *InputsConfig) []SensorConfig { l[4].Source.MQTT.Path = "levels[x]"; return l }, "sensors[4].source.mqtt.path", "array index"},
		{"empty mqtt", func(l []SensorConfig, _ *InputsConfig) []SensorConfig { l[4].Source.MQTT = &MQTTRef{}; return l }, "sensors[4].source.mqtt", "give device and field"},
		{"warn above the default alarm", func(l []SensorConfig, _ *InputsConfig) []SensorConfig { l[0].Warn = num(600); return l }, "sensors[0].warn", "500 (the kind's default)"},
		{"alarm below the default warn", func(l []SensorConfig, _ *InputsConfig) []SensorConfig { l[0].Alarm = num(200); return l }, "sensors[0].alarm", "warn 300 (the kind's default)"},
		{"below, reversed", func(l []SensorConfig, _ *InputsConfig) []SensorConfig { l[4].Warn = num(10); return l }, "sensors[4].warn", "above alarm"},
		{"no thresholds", func(l []SensorConfig, _ *InputsConfig) []SensorConfig {
			l[5].Alarm = nil
			l[5].Hysteresis = nil
			return l
		}, "sensors[5].alarm", "no default thresholds"},
		{"below with the kind's defaults", func(l []SensorConfig, _ *InputsConfig) []SensorConfig { l[2].Below = true; return l }, "sensors[2].alarm", "upper limits"},
		{"negative hysteresis", func(l []SensorConfig, _ *InputsConfig) []SensorConfig { l[0].Hysteresis = num(-1); return l }, "sensors[0].hysteresis", "negative"},
		{"hysteresis past the gap", func(l []SensorConfig, _ *InputsConfig) []SensorConfig { l[0].Hysteresis = num(200); return l }, "sensors[0].hysteresis", "gap"},
		{"not a number", func(l []SensorConfig, _ *InputsConfig) []SensorConfig { l[0].Warn = num(math.NaN()); return l }, "sensors[0].warn", "number"},
		{"rate of rise without delta", func(l []SensorConfig, _ *InputsConfig) []SensorConfig { l[1].RateOfRise.Delta = 0; return l }, "sensors[1].rate_of_rise.delta", "positive"},
		{"rate of rise per", func(l []SensorConfig, _ *InputsConfig) []SensorConfig {
			l[1].RateOfRise.Per = config.Duration(time.Millisecond)
			return l
		}, "sensors[1].rate_of_rise.per", "between"},
		{"detector with thresholds", func(l []SensorConfig, _ *InputsConfig) []SensorConfig { l[3].Alarm = num(1); return l }, "sensors[3].alarm", "no thresholds"},
		{"detector with a rate", func(l []SensorConfig, _ *InputsConfig) []SensorConfig {
			l[3].RateOfRise = &RateOfRise{Delta: 1}
			return l
		}, "sensors[3].rate_of_rise", "no thresholds"},
		{"interval", func(l []SensorConfig, _ *InputsConfig) []SensorConfig {
			l[0].Interval = config.Duration(time.Millisecond)
			return l
		}, "sensors[0].interval", "between"},
		{"stale_after", func(l []SensorConfig, _ *InputsConfig) []SensorConfig { l[0].StaleAfter = -1; return l }, "sensors[0].stale_after", "between"},
		{"min_duration", func(l []SensorConfig, _ *InputsConfig) []SensorConfig { l[0].MinDuration = dur(-s); return l }, "sensors[0].min_duration", "between"},
		{"long name", func(l []SensorConfig, _ *InputsConfig) []SensorConfig { l[0].Name = strings.Repeat("x", 121); return l }, "sensors[0].name", "at most"},
		{"unknown model", func(l []SensorConfig, in *InputsConfig) []SensorConfig {
			in.Modbus.Devices[1].Model = "gas-y"
			return l
		}, "sensor_inputs.modbus.devices[1].model", `"gas-y"`},
		{"duplicate device", func(l []SensorConfig, in *InputsConfig) []SensorConfig {
			in.Modbus.Devices[1].ID = "box-3"
			return l[:2]
		}, "sensor_inputs.modbus.devices[1].id", "used twice"},
		{"bad address", func(l []SensorConfig, in *InputsConfig) []SensorConfig {
			in.Modbus.Devices[0].Address = "192.168.1.20:70000"
			return l
		}, "sensor_inputs.modbus.devices[0].address", "host:port"},
		{"bad poll", func(l []SensorConfig, in *InputsConfig) []SensorConfig {
			in.Modbus.Devices[0].Poll = config.Duration(time.Millisecond)
			return l
		}, "sensor_inputs.modbus.devices[0].poll", "between"},
		{"bad timeout", func(l []SensorConfig, in *InputsConfig) []SensorConfig {
			in.Modbus.Devices[0].Timeout = config.Duration(2 * time.Minute)
			return l
		}, "sensor_inputs.modbus.devices[0].timeout", "between"},
		{"duplicate register", func(l []SensorConfig, in *InputsConfig) []SensorConfig {
			in.Modbus.Models["acrel-arcm300"][1].Name = "leakage"
			return l[:1]
		}, "sensor_inputs.modbus.models.acrel-arcm300[1].name", "used twice"},
		{"bad table", func(l []SensorConfig, in *InputsConfig) []SensorConfig {
			in.Modbus.Models["gas-x"][0].Table = "holdings"
			return l
		}, "sensor_inputs.modbus.models.gas-x[0].table", "holding, input"},
		{"bad type", func(l []SensorConfig, in *InputsConfig) []SensorConfig {
			in.Modbus.Models["gas-x"][0].Type = "float64"
			return l
		}, "sensor_inputs.modbus.models.gas-x[0].type", "float32"},
		{"typed coil", func(l []SensorConfig, in *InputsConfig) []SensorConfig {
			in.Modbus.Models["acrel-arcm300"][3].Type = "int16"
			return l
		}, "sensor_inputs.modbus.models.acrel-arcm300[3].type", "bool"},
		{"bad word order", func(l []SensorConfig, in *InputsConfig) []SensorConfig {
			in.Modbus.Models["gas-x"][0].WordOrder = "middle"
			return l
		}, "sensor_inputs.modbus.models.gas-x[0].word_order", "big or little"},
		{"word order of 16 bits", func(l []SensorConfig, in *InputsConfig) []SensorConfig {
			in.Modbus.Models["acrel-arcm300"][0].WordOrder = "big"
			return l
		}, "sensor_inputs.modbus.models.acrel-arcm300[0].word_order", "32-bit"},
		{"32 bits at the last address", func(l []SensorConfig, in *InputsConfig) []SensorConfig {
			in.Modbus.Models["gas-x"][0].Address = 65535
			return l
		}, "sensor_inputs.modbus.models.gas-x[0].address", "two registers"},
		{"empty model", func(l []SensorConfig, in *InputsConfig) []SensorConfig { in.Modbus.Models["gas-x"] = nil; return l[:2] }, "sensor_inputs.modbus.models.gas-x", "no registers"},
		{"bad broker", func(l []SensorConfig, in *InputsConfig) []SensorConfig { in.MQTT.Broker = "http://x"; return l }, "sensor_inputs.mqtt.broker", "broker URL"},
		{"wildcard base topic", func(l []SensorConfig, in *InputsConfig) []SensorConfig { in.MQTT.BaseTopic = "z2m/#"; return l }, "sensor_inputs.mqtt.base_topic", "wildcards"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			list, in := goodConfig()
			list = tc.edit(list, &in)
			fes := Problems(list, in)
			if len(fes) != 1 || fes[0].Field != tc.field || !strings.Contains(fes[0].Msg, tc.msg) {
				t.Fatalf("problems %v, want one of %s containing %q", fes, tc.field, tc.msg)
			}
			err := Validate(list, in)
			var fe config.FieldError
			if !errors.As(err, &fe) || fe != fes[0] {
				t.Errorf("Validate: %v, want the field error", err)
			}
		})
	}
}

// Every problem of a configuration is reported at once.
func TestValidateAll(t *testing.T) {
	list, in := goodConfig()
	list[0].Kind = "co2"
	list[1].Warn = num(90)
	in.Modbus.Devices[0].Address = ""
	fes := Problems(list, in)
	var got []string
	for _, fe := range fes {
		got = append(got, fe.Field)
	}
	want := "sensor_inputs.modbus.devices[0].address sensors[0].kind sensors[1].warn"
	if strings.Join(got, " ") != want {
		t.Errorf("problems %v, want %s", fes, want)
	}
	if err := Validate(list, in); err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("Validate: %v", err)
	}
}

func TestResolve(t *testing.T) {
	list, in := goodConfig()
	r := ResolveAll(list, in)
	check := func(i int, unit string, warn, alarm, hyst float64, minDur, interval time.Duration) {
		t.Helper()
		got := r[i]
		if got.Unit != unit || val(got.Warn) != warn || val(got.Alarm) != alarm || math.Abs(got.Hysteresis-hyst) > 1e-9 ||
			got.MinDuration != minDur || got.Interval != interval || got.StaleAfter != 3 {
			t.Errorf("%s: %+v, want unit %s, %v/%v ±%v, min %v, every %v, stale after 3",
				got.ID, got, unit, warn, alarm, hyst, minDur, interval)
		}
	}
	check(0, "mA", 300, 500, 25, 5*s, 2*s) // the device's poll
	check(1, "°C", 55, 80, 4, 5*s, 2*s)
	check(2, "%LEL", 10, 25, 1.25, 5*s, time.Second) // the default poll
	check(3, "", -1, 1, 0, 0, time.Hour)             // a Zigbee detector
	check(4, "cm", 50, 20, 1, 0, time.Minute)
	check(5, "V", -1, 198, 2, 5*s, time.Minute)
	if !r[3].Detector || r[0].Detector || r[1].RateOfRise.Per.D() != time.Minute || r[0].RateOfRise != nil {
		t.Errorf("detector or rate of rise: %+v %+v", r[3], r[1])
	}
	if r[4].StaleWindow() != 3*time.Minute {
		t.Errorf("stale window %v", r[4].StaleWindow())
	}
	// The default hysteresis is at most half the gap between thresholds.
	c := SensorConfig{ID: "x", Kind: "current", Warn: num(95), Alarm: num(100), Source: SourceRef{MQTT: &MQTTRef{Topic: "x"}}}
	if h := Resolve(c, in).Hysteresis; h != 2.5 {
		t.Errorf("hysteresis %v, want 2.5", h)
	}
}

func val(p *float64) float64 {
	if p == nil {
		return -1
	}
	return *p
}

func TestParsePath(t *testing.T) {
	doc := map[string]any{"a": map[string]any{"b": []any{1.0, map[string]any{"c": 2.5}}}, "x.y": 3.0}
	for _, tc := range []struct {
		path string
		want any // nil: no value; error: not a path
	}{
		{"", doc}, {"a.b[0]", 1.0}, {"a.b[1].c", 2.5}, {"a.b[2]", nil}, {"a.c", nil}, {"a[0]", nil}, {"a.b.c", nil},
		{"a..b", errors.New("")}, {".a", errors.New("")}, {"a.", errors.New("")}, {"a[", errors.New("")},
		{"a[-1]", errors.New("")}, {"a[01]", errors.New("")}, {"a[0]b", errors.New("")}, {"a]", errors.New("")},
		{"a.[0]", errors.New("")}, {"a[1234567]", errors.New("")}, {strings.Repeat("a", 257), errors.New("")},
	} {
		p, err := ParsePath(tc.path)
		if _, bad := tc.want.(error); bad {
			if err == nil {
				t.Errorf("%q: parsed as %v", tc.path, p)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.path, err)
			continue
		}
		if p.String() != tc.path {
			t.Errorf("%q: written back as %q", tc.path, p.String())
		}
		got, err := p.Lookup(doc)
		switch {
		case tc.want == nil && !errors.Is(err, ErrNoValue):
			t.Errorf("%q: %v, %v; want no value", tc.path, got, err)
		case tc.want != nil && tc.path != "" && (err != nil || got != tc.want):
			t.Errorf("%q: %v, %v; want %v", tc.path, got, err, tc.want)
		}
	}
	if p, _ := ParsePath("[1].value"); len(p) != 2 || !p[0].IsIndex || p[0].Index != 1 || p[1].Key != "value" {
		t.Errorf("[1].value: %+v", p)
	}
}

// A path that parses writes back as itself and parses to the same steps.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"", "a", "a.b[0].c", "[1]", "a..b", "a[01]", "é.ü[3]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			return
		}
		if p.String() != s {
			t.Fatalf("%q written back as %q", s, p.String())
		}
		for _, st := range p {
			if !st.IsIndex && (st.Key == "" || strings.ContainsAny(st.Key, ".[]")) {
				t.Fatalf("%q: bad key %q", s, st.Key)
			}
		}
	})
}
