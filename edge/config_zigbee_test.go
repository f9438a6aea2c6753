package edge_test

import (
	"strings"
	"testing"

	"github.com/vigil-perimeter/vigil/edge"
)

func TestZigbeeActionsAndKeypadCodesValidated(t *testing.T) {
	cfg := edge.Config{EdgeID: "e", SiteID: "s", Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: edge.CentralConfig{URL: "ws://127.0.0.1:1/x", Token: "tok-0123456789abcdef"},
		Gates:   []edge.GateConfig{{ID: "g", KeypadCodes: []string{"4711", ""}}},
		GateInputs: edge.GateInputsConfig{MQTT: &edge.MQTTInputConfig{Broker: "tcp://127.0.0.1:1883",
			Devices: []edge.MQTTDeviceConfig{{Name: "kp", Gate: "g", Actions: map[string]string{"single": "panic", "double": "ignore"}}}}}}
	errs := cfg.Validate()
	var all []string
	for _, e := range errs {
		all = append(all, e.Error())
	}
	s := strings.Join(all, "\n")
	t.Log(s)
	if !strings.Contains(s, `gate_inputs.mqtt.devices[0].actions.single`) || !strings.Contains(s, "gates[0].keypad_codes[1]") || strings.Contains(s, "double") {
		t.Fatal(s)
	}
}
