package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/vigil-perimeter/vigil/internal/cmdtable"
	"github.com/vigil-perimeter/vigil/sensors"
	"github.com/vigil-perimeter/vigil/sensors/sim"
)

// simSensorOf is the sensor each scenario plays as: a distribution box's
// cable temperature heating up, a kitchen gas detector, a temperature
// sensor that goes silent, a residual-current monitor holding steady.
var simSensorOf = map[string]sim.Sensor{
	sim.CableHeating: {ID: "sim-cable", Name: "Cable temperature", Kind: "cable_temperature", Location: "Distribution box 1", Scenario: sim.CableHeating},
	sim.GasLeak:      {ID: "sim-gas", Name: "Gas detector", Kind: "gas", Location: "Kitchen", Scenario: sim.GasLeak},
	sim.Silent: {ID: "sim-silent", Name: "Pump room temperature", Kind: "temperature", Location: "Pump room", Scenario: sim.Silent, Base: 18,
		Warn: ptrTo(40.0), Alarm: ptrTo(50.0)},
	sim.Steady: {ID: "sim-rcm", Name: "Residual current", Kind: "residual_current", Location: "Distribution box 1", Scenario: sim.Steady, Base: 120},
}

// runSimSensor is `vigil sim sensor`: it plays sensor scenarios over MQTT
// (Zigbee2MQTT-style JSON) and as a Modbus TCP server, until stopped.
func runSimSensor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, level := cmdtable.NewFlags("sim sensor", stderr)
	scenario := fs.String("scenario", "all", strings.Join(sim.Scenarios(), ", ")+" or all; several separated by commas")
	broker := fs.String("mqtt", "", "publish to this MQTT broker, e.g. tcp://127.0.0.1:1883")
	base := fs.String("base-topic", "zigbee2mqtt", "Zigbee2MQTT base topic (topic: BASE/SENSOR)")
	listen := fs.String("modbus", "", "serve the sensors as Modbus TCP registers at this address, e.g. 127.0.0.1:5020")
	unit := fs.Uint("unit", 1, "the Modbus unit ID of the simulated device")
	interval := fs.Duration("interval", time.Second, "MQTT: time between reports; the printed edge.yaml's poll")
	speed := fs.Float64("speed", 1, "play the scenarios this many times faster")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *broker == "" && *listen == "" {
		return errors.New("give --mqtt BROKER, --modbus ADDRESS or both")
	}
	if *unit > 247 {
		return fmt.Errorf("--unit %d: want 0..247", *unit)
	}
	list, err := simSensors(*scenario)
	if err != nil {
		return err
	}
	log, err := cmdtable.NewLogger(stderr, *level)
	if err != nil {
		return err
	}
	if *listen != "" {
		srv, err := sim.StartModbus(sim.ModbusConfig{Address: *listen, Speed: *speed, Log: log,
			Devices: []sim.ModbusDevice{{ID: "box", UnitID: uint8(*unit), Sensors: list}}})
		if err != nil {
			return err
		}
		defer srv.Close()
		srv.WriteRegisterMap(stdout)
		cfgList, mc := srv.EdgeConfig(*interval)
		if err := writeEdgeYAML(stdout, cfgList, sensors.InputsConfig{Modbus: mc}); err != nil {
			return err
		}
	}
	if *broker == "" {
		<-ctx.Done()
		return nil
	}
	var cfgList []sensors.SensorConfig
	for _, s := range list {
		cfgList = append(cfgList, s.SensorConfig(sensors.SourceRef{MQTT: &sensors.MQTTRef{Device: s.ID, Field: s.MQTTField()}}, *interval))
	}
	if err := writeEdgeYAML(stdout, cfgList, sensors.InputsConfig{MQTT: &sensors.MQTTInputConfig{Broker: *broker, BaseTopic: *base}}); err != nil {
		return err
	}
	return sim.RunMQTT(ctx, sim.MQTTConfig{Broker: *broker, BaseTopic: *base, Sensors: list, Interval: *interval, Speed: *speed, Log: log})
}

// simSensors is the sensors of a --scenario list.
func simSensors(arg string) ([]sim.Sensor, error) {
	names := strings.Split(arg, ",")
	if arg == "all" {
		names = sim.Scenarios()
	}
	var out []sim.Sensor
	for _, n := range names {
		s, ok := simSensorOf[strings.TrimSpace(n)]
		if !ok {
			return nil, fmt.Errorf("--scenario %q: want %s or all", n, strings.Join(sim.Scenarios(), ", "))
		}
		out = append(out, s)
	}
	return out, nil
}

// writeEdgeYAML prints the edge.yaml lines that read the simulated sensors.
func writeEdgeYAML(w io.Writer, list []sensors.SensorConfig, in sensors.InputsConfig) error {
	b, err := yaml.Marshal(struct {
		Sensors      []sensors.SensorConfig `yaml:"sensors"`
		SensorInputs sensors.InputsConfig   `yaml:"sensor_inputs"`
	}{list, in})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "# edge.yaml for these sensors:\n%s\n", b)
	return nil
}

func ptrTo[T any](v T) *T { return &v }
