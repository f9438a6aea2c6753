package setup

import (
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/sensors"
	"github.com/vigil-perimeter/vigil/wire"
)

// sensorsFile is a config with every kind of source, the settings the
// page does not show (rate of rise, a device's timeout, the broker's
// client ID and password file) and a register map.
func sensorsFile() conf.Config {
	f := func(v float64) *float64 { return &v }
	five := config.Duration(5 * time.Second)
	return conf.Config{
		Sensors: []sensors.SensorConfig{
			{ID: "rcm-1", Name: "Lane 4 RCM", Kind: "residual_current", Location: "Lane 4, box 3", Site: "village/lane-4",
				Source: sensors.SourceRef{Modbus: &sensors.ModbusRef{Device: "efd-1", Register: "leak"}}, Warn: f(250), MinDuration: &five},
			{ID: "cable-3", Kind: "cable_temperature", Unit: "°C", StaleAfter: 5, Interval: config.Duration(30 * time.Second),
				Source:     sensors.SourceRef{MQTT: &sensors.MQTTRef{Device: "box-3-temp", Field: "temperature"}},
				RateOfRise: &sensors.RateOfRise{Delta: 5, Per: config.Duration(time.Minute)}},
			{ID: "tank", Kind: "water_level", Below: true, Warn: f(40), Alarm: f(20), Hysteresis: f(2),
				Source: sensors.SourceRef{MQTT: &sensors.MQTTRef{Topic: "site/tank", Path: "level.cm"}}},
		},
		SensorInputs: sensors.InputsConfig{
			Modbus: sensors.ModbusConfig{
				Models: map[string][]sensors.RegisterConfig{"acrel-arcm300": {{Name: "leak", Address: 3, Type: "uint16", Unit: "mA"},
					{Name: "temp", Address: 4, Table: "input", Type: "int16", Scale: 0.1}}},
				Devices: []sensors.ModbusDeviceConfig{{ID: "efd-1", Address: "192.168.1.20:502", UnitID: 3, Model: "acrel-arcm300",
					Poll: config.Duration(2 * time.Second), Timeout: config.Duration(700 * time.Millisecond)}},
			},
			MQTT: &sensors.MQTTInputConfig{Broker: "tcp://192.168.1.10:1883", ClientID: "edge-7", PasswordFile: "/data/mqtt.secret"},
		},
	}
}

// TestSensorsFormRoundTrip: a config read into the form and written back
// unchanged is the same config (what the page does not show kept); the
// form shows the register maps and the kinds' defaults.
func TestSensorsFormRoundTrip(t *testing.T) {
	c := sensorsFile()
	if probs := sensors.Problems(c.Sensors, c.SensorInputs); len(probs) > 0 {
		t.Fatalf("the test's config: %v", probs)
	}
	f := SensorsFormOf(c)
	if len(f.Sensors) != 3 || f.Sensors[0].Source != SourceModbus || f.Sensors[1].Source != SourceZigbee || f.Sensors[2].Source != SourceTopic ||
		f.Sensors[0].MinDuration != "5s" || f.Sensors[1].Interval != "30s" || f.Modbus[0].Poll != "2s" || f.MQTT.BaseTopic != "zigbee2mqtt" {
		t.Fatalf("form %+v", f)
	}
	if len(f.Models) != 1 || f.Models[0].Name != "acrel-arcm300" || len(f.Models[0].Registers) != 2 || f.Models[0].Registers[0].Table != "holding" ||
		f.Models[0].Registers[1].Type != "int16" {
		t.Errorf("register maps %+v", f.Models)
	}
	ki := slices.IndexFunc(f.Kinds, func(k KindForm) bool { return k.Name == "residual_current" })
	if ki < 0 || *f.Kinds[ki].Warn != 300 || *f.Kinds[ki].Alarm != 500 || f.Kinds[ki].Hysteresis != 25 || f.Kinds[ki].MinDuration != "5s" || f.Kinds[ki].Unit != "mA" {
		t.Errorf("residual current's defaults: %+v", f.Kinds)
	}
	if k := f.Kinds[slices.IndexFunc(f.Kinds, func(k KindForm) bool { return k.Name == "smoke" })]; !k.Detector || k.MQTTInterval != "1h" {
		t.Errorf("smoke: %+v", k)
	}

	// Through JSON as the page sends it back (answers included: ignored).
	back := c
	back.Sensors = slices.Clone(c.Sensors)
	if probs := ApplySensorsForm(&back, f); len(probs) > 0 {
		t.Fatal(probs)
	}
	if !reflect.DeepEqual(back.Sensors, c.Sensors) || !reflect.DeepEqual(back.SensorInputs, c.SensorInputs) {
		t.Errorf("round trip changed the config:\n%+v\n%+v\nwant\n%+v\n%+v", back.Sensors, back.SensorInputs, c.Sensors, c.SensorInputs)
	}

	// A sensor added, one removed, the broker gone: the rate of rise stays
	// with its sensor, the device's timeout with its device.
	f.Sensors = append(f.Sensors[1:], SensorForm{ID: " gas-1 ", Kind: "gas", Source: SourceZigbee, Device: "kitchen-gas", Field: "gas_density"})
	f.MQTT.BaseTopic = "z2m"
	next := c
	if probs := ApplySensorsForm(&next, f); len(probs) > 0 {
		t.Fatal(probs)
	}
	if len(next.Sensors) != 3 || next.Sensors[0].ID != "cable-3" || next.Sensors[0].RateOfRise == nil || next.Sensors[2].ID != "gas-1" ||
		next.Sensors[2].Source.MQTT.Device != "kitchen-gas" || next.SensorInputs.Modbus.Devices[0].Timeout.D() != 700*time.Millisecond ||
		next.SensorInputs.MQTT.BaseTopic != "z2m" || next.SensorInputs.MQTT.PasswordFile != "/data/mqtt.secret" {
		t.Errorf("edited: %+v %+v", next.Sensors, next.SensorInputs)
	}
	f.MQTT = nil
	ApplySensorsForm(&next, f)
	if next.SensorInputs.MQTT != nil {
		t.Error("the broker was not removed")
	}
}

// TestSensorsFormRefused: the form's own problems and the config's
// validation name the field the page marks.
func TestSensorsFormRefused(t *testing.T) {
	f := SensorsFormOf(sensorsFile())
	f.Sensors[0].Source = "carrier-pigeon"
	f.Sensors[1].MinDuration = "five seconds"
	f.Modbus[0].UnitID = 300
	probs := f.Problems()
	var fields []string
	for _, p := range probs {
		fields = append(fields, p.Field)
	}
	want := []string{"sensors[0].source", "sensors[1].min_duration", "sensor_inputs.modbus.devices[0].unit_id"}
	if !slices.Equal(fields, want) {
		t.Errorf("form problems %v, want %v", probs, want)
	}

	// Warn above alarm, a register the model lacks, a model that is not
	// one: the config's validation names each.
	f = SensorsFormOf(sensorsFile())
	w, a := 600.0, 500.0
	f.Sensors[0].Warn, f.Sensors[0].Alarm = &w, &a
	f.Sensors[0].Register = "nope"
	f.Modbus[0].Model = "acrel-x"
	c := sensorsFile()
	if probs := ApplySensorsForm(&c, f); len(probs) > 0 {
		t.Fatal(probs)
	}
	fields = nil
	for _, p := range ProblemsOf(sensors.Problems(c.Sensors, c.SensorInputs)) {
		fields = append(fields, p.Field)
	}
	for _, want := range []string{"sensors[0].warn", "sensor_inputs.modbus.devices[0].model"} {
		if !slices.Contains(fields, want) {
			t.Errorf("validation %v does not name %s", fields, want)
		}
	}
}

func (fakeBackend) SetupSensors() (SensorsForm, error) { return SensorsFormOf(sensorsFile()), nil }

func (fakeBackend) SetupSensorStates() []wire.SensorStatus {
	return []wire.SensorStatus{{ID: "rcm-1", Kind: "residual_current", Unit: "mA", State: "normal", Value: 12, Time: time.Now().UTC()}}
}

// SetupSaveSensors applies the form to the test's config and refuses it
// as the edge does when the sensors' validation finds a problem.
func (fb fakeBackend) SetupSaveSensors(f SensorsForm) (SensorsSaved, error) {
	fb.rec.changed("sensors")
	c := sensorsFile()
	probs := ApplySensorsForm(&c, f)
	probs = append(probs, ProblemsOf(sensors.Problems(c.Sensors, c.SensorInputs))...)
	if len(probs) > 0 {
		return SensorsSaved{}, Refused(probs)
	}
	return SensorsSaved{Revision: "r4", Applied: "restarting"}, nil
}

// TestSensorsStep: the form and the states are read through the backend,
// a save is audited first, a refusal comes back as 422 with the fields
// named, and a form the page could not have sent is refused unaudited.
func TestSensorsStep(t *testing.T) {
	rec := &recorder{}
	s, err := New(Config{DataDir: t.TempDir(), Backend: fakeBackend{rec: rec}, Log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	c := loggedIn(t, s)
	for _, p := range []string{"/setup/api/sensors/config", "/setup/api/sensors/state"} {
		resp, err := c.c.Get(c.base + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", p, resp, err)
		}
		resp.Body.Close()
	}
	form := map[string]any{"sensors": []map[string]any{{"id": "gas-1", "kind": "gas", "source": "zigbee", "device": "kitchen", "field": "gas_density",
		"warn": 30, "alarm": 25}}, "modbus": []any{}, "mqtt": map[string]any{"broker": "tcp://10.0.0.2:1883", "base_topic": "zigbee2mqtt"},
		"models": []any{}, "kinds": []any{}}
	code, ans := c.post("/setup/api/sensors/save", form)
	probs, _ := ans["problems"].([]any)
	if code != http.StatusUnprocessableEntity || len(probs) == 0 || probs[0].(map[string]any)["field"] != "sensors[0].warn" {
		t.Errorf("warn above alarm: %d %v", code, ans)
	}
	form["sensors"].([]map[string]any)[0]["warn"] = 10
	if code, ans = c.post("/setup/api/sensors/save", form); code != 200 || ans["revision"] != "r4" {
		t.Errorf("save: %d %v", code, ans)
	}
	form["sensors"].([]map[string]any)[0]["source"] = "smoke-signal"
	if code, ans = c.post("/setup/api/sensors/save", form); code != http.StatusUnprocessableEntity || !strings.Contains(ans["error"].(string), "sensors[0].source") {
		t.Errorf("bad source: %d %v", code, ans)
	}
	form["bogus"] = 1
	if code, _ = c.post("/setup/api/sensors/save", form); code != http.StatusBadRequest {
		t.Errorf("unknown field: %d", code)
	}
	audits, changes := rec.calls()
	if len(audits) != 2 || len(changes) != 2 || audits[0].Target != "edge/sensors" || audits[0].Action != ActionConfigChange {
		t.Errorf("audits %+v changes %v", audits, changes)
	}
}
