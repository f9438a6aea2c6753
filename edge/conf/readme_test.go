package conf

import (
	"os"
	"strings"
	"testing"
)

// The sensors example in README.md ("For installers: declaring sensors")
// is a valid edge.yaml fragment: what an installer copies loads.
func TestReadmeSensorExample(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	_, after, ok := strings.Cut(doc, "### For installers: declaring sensors")
	if !ok {
		t.Fatal("README.md has no \"For installers: declaring sensors\" section")
	}
	_, block, ok := strings.Cut(after, "```yaml\n")
	if !ok {
		t.Fatal("the section has no yaml block")
	}
	block, _, _ = strings.Cut(block, "```")
	cfg, err := Load(writeConfig(t, goodConfig+block))
	if err != nil {
		t.Fatalf("README's sensors example does not load: %v", err)
	}
	if len(cfg.Sensors) != 5 || len(cfg.SensorInputs.Modbus.Devices) != 1 || cfg.SensorInputs.MQTT == nil {
		t.Fatalf("README's example: %d sensors, inputs %+v", len(cfg.Sensors), cfg.SensorInputs)
	}
}

// The GB/T 28181 example in README.md ("Connecting to a GB/T 28181
// platform") is a valid gb28181: section for a box with the cameras,
// gates and sensor it names.
func TestReadmeGB28181Example(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "## Connecting to a GB/T 28181 platform")
	if !ok {
		t.Fatal("README.md has no \"Connecting to a GB/T 28181 platform\" section")
	}
	_, block, ok := strings.Cut(after, "```yaml\n")
	if !ok {
		t.Fatal("the section has no yaml block")
	}
	block, _, _ = strings.Cut(block, "```")
	box := `edge_id: gate-1
site_id: village/north
listen: 127.0.0.1:0
data_dir: %DIR%
central:
  url: ws://127.0.0.1:8080/api/v1/edge/ws
  token: secret
cameras:
  - id: north-gate-entry
    url: rtsp://10.0.0.5:554/stream1
gates:
  - id: north-gate
    cameras: [north-gate-entry]
  - id: side-gate
sensors:
  - id: box1-cable
    kind: cable_temperature
    source: {mqtt: {device: box-1, field: temperature}}
sensor_inputs:
  mqtt: {broker: "tcp://127.0.0.1:1883"}
`
	cfg, err := Load(writeConfig(t, box+block))
	if err != nil {
		t.Fatalf("README's gb28181 example does not load: %v", err)
	}
	if g := cfg.GB28181; g == nil || len(g.Channels) != 4 || g.Channels[0].ID != "34020000001320000001" || g.PasswordFile == "" {
		t.Fatalf("README's example: %+v", cfg.GB28181)
	}
}
