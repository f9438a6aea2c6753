package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/simonvetter/modbus"

	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/sensors"
)

// `vigil sim sensor --modbus` serves every scenario's sensor and prints
// its register map and the edge.yaml lines to read it, which pass the
// edge's own sensor validation and point at registers that answer.
func TestSimSensorModbusPrintsAValidEdgeConfig(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut testrig.LogBuffer
	done := make(chan error, 1)
	go func() {
		done <- runSimSensor(ctx, []string{"--modbus", "127.0.0.1:0", "--unit", "3"}, &out, &errOut)
	}()
	var text string
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(text, "timeout: 1s") {
		if time.Now().After(deadline) {
			t.Fatalf("no edge.yaml printed:\n%s\n%s", text, errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
		text = out.String()
	}
	if !strings.Contains(text, "unit ID 3") || !strings.Contains(text, "sim-gas") {
		t.Errorf("register map:\n%s", text)
	}
	var cfg struct {
		Sensors      []sensors.SensorConfig `yaml:"sensors"`
		SensorInputs sensors.InputsConfig   `yaml:"sensor_inputs"`
	}
	if err := yaml.Unmarshal([]byte(text[strings.Index(text, "\nsensors:")+1:]), &cfg); err != nil {
		t.Fatalf("%v:\n%s", err, text)
	}
	if len(cfg.Sensors) != 4 {
		t.Fatalf("%d sensors, want one per scenario", len(cfg.Sensors))
	}
	if err := sensors.Validate(cfg.Sensors, cfg.SensorInputs); err != nil {
		t.Fatalf("the printed edge.yaml does not validate: %v\n%s", err, text)
	}
	dev := cfg.SensorInputs.Modbus.Devices[0]
	c, err := modbus.NewClient(&modbus.ClientConfiguration{URL: "tcp://" + dev.Address, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Open(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetUnitId(dev.UnitID)
	regs := cfg.SensorInputs.Modbus.Models[dev.Model]
	v, err := c.ReadRegister(regs[0].Address, modbus.HOLDING_REGISTER)
	if err != nil || float64(int16(v))*regs[0].Scale != 35 {
		t.Errorf("%s: %v (%v), want 35 (cable-heating's start)", regs[0].Name, int16(v), err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestSimSensorRefusesBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{}, // neither --mqtt nor --modbus
		{"--modbus", "127.0.0.1:0", "--scenario", "boiling"},
		{"--modbus", "127.0.0.1:0", "--unit", "300"},
		{"--modbus", "127.0.0.1:0", "extra"},
	} {
		var out, errOut bytes.Buffer
		if err := runSimSensor(context.Background(), args, &out, &errOut); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}
