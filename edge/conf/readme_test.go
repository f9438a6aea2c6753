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
