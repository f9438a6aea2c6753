package conf

import (
	"strings"
	"testing"
)

// sensorsConfig is goodConfig with a gas sensor on MQTT and a residual
// current detector on a Modbus device.
const sensorsConfig = goodConfig + `sensors:
  - id: gas-kitchen
    name: Kitchen
    kind: gas
    location: No. 3 Lane
    source:
      mqtt: {device: kitchen-gas, field: gas_density}
  - id: rcd-box-3
    kind: residual_current
    source:
      modbus: {device: efd-1, register: residual}
sensor_inputs:
  mqtt:
    broker: tcp://127.0.0.1:1883
  modbus:
    models:
      efd-m1:
        - {name: residual, address: 0, scale: 1, unit: mA}
    devices:
      - {id: efd-1, address: "10.0.0.9:502", model: efd-m1}
`

// Sensors and their inputs load into edge.yaml's config, and their
// problems are the whole config's, placed by file, line and field.
func TestSensorsInEdgeYAML(t *testing.T) {
	cfg, err := Load(writeConfig(t, sensorsConfig))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Sensors) != 2 || cfg.Sensors[0].Source.MQTT == nil || cfg.Sensors[0].Source.MQTT.Field != "gas_density" ||
		cfg.Sensors[1].Source.Modbus == nil || cfg.SensorInputs.MQTT == nil || len(cfg.SensorInputs.Modbus.Devices) != 1 {
		t.Fatalf("sensors %+v, inputs %+v", cfg.Sensors, cfg.SensorInputs)
	}
	for _, tc := range []struct{ name, from, to, want string }{
		{"unknown register", "register: residual}", "register: nope}", "sensors[1].source.modbus"},
		{"warn over alarm", "    kind: gas\n", "    kind: gas\n    warn: 30\n    alarm: 20\n", "sensors[0]."},
		{"a sensor without inputs", "sensor_inputs:\n  mqtt:\n    broker: tcp://127.0.0.1:1883\n", "sensor_inputs:\n", "sensors[0].source.mqtt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(sensorsConfig, tc.from) {
				t.Fatalf("fixture lacks %q", tc.from)
			}
			p := writeConfig(t, strings.Replace(sensorsConfig, tc.from, tc.to, 1))
			_, err := Load(p)
			if err == nil {
				t.Fatal("bad config accepted")
			}
			msg := strings.ReplaceAll(err.Error(), p, "edge.yaml")
			t.Log(msg)
			if !strings.Contains(msg, "edge.yaml:") || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q: want it placed in edge.yaml, naming %s", msg, tc.want)
			}
		})
	}
}
