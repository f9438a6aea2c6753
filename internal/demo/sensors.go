package demo

import (
	"log/slog"
	"time"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/sensors"
	sensorsim "github.com/vigil-perimeter/vigil/sensors/sim"
)

// The demo's safety sensors, served by the sensor simulator's Modbus
// TCP server in this process and read by the demo edge like real
// detectors: a distribution box (an electrical-fire monitor with a
// residual-current and a cable-temperature channel) whose cable heats
// through its warning (60 °C) and alarm (80 °C) thresholds and cools
// again every sensorCycle, a kitchen gas detector holding steady and a
// basement water level.
const (
	sensorSpeed = 2.4 // the 24-minute cable-heating cycle in 10 minutes
	sensorPoll  = time.Second
)

func ptrTo(v float64) *float64 { return &v }

// demoSensorDevices are the simulated Modbus devices.
var demoSensorDevices = []sensorsim.ModbusDevice{
	{ID: "box-1", UnitID: 1, Sensors: []sensorsim.Sensor{
		{ID: "box1-cable", Name: "Cable temperature", Kind: "cable_temperature", Location: "Distribution box 1, Lane 4", Scenario: sensorsim.CableHeating},
		{ID: "box1-rcm", Name: "Residual current", Kind: "residual_current", Location: "Distribution box 1, Lane 4", Scenario: sensorsim.Steady, Base: 120},
	}},
	{ID: "kitchen-gas", UnitID: 2, Sensors: []sensorsim.Sensor{
		{ID: "kitchen-gas", Name: "Gas detector", Kind: "gas", Location: "Canteen kitchen", Scenario: sensorsim.Steady, Base: 2},
	}},
	{ID: "pump-room", UnitID: 3, Sensors: []sensorsim.Sensor{
		{ID: "basement-water", Name: "Basement water level", Kind: "water_level", Location: "Pump room, basement", Scenario: sensorsim.Steady, Base: 8,
			Warn: ptrTo(30), Alarm: ptrTo(50)},
	}},
}

// startSensors starts the simulated Modbus devices on a free port.
func startSensors(log *slog.Logger) (*sensorsim.ModbusServer, error) {
	return sensorsim.StartModbus(sensorsim.ModbusConfig{Address: "127.0.0.1:0", Devices: demoSensorDevices,
		Speed: sensorSpeed, Log: log})
}

// addSensors declares the simulated sensors in the demo edge's config:
// the sensors and sensor_inputs.modbus (the devices and their register
// maps), each device polled every second.
func addSensors(cfg *edge.Config, srv *sensorsim.ModbusServer) {
	list, mc := srv.EdgeConfig(sensorPoll)
	cfg.Sensors = list
	cfg.SensorInputs = sensors.InputsConfig{Modbus: mc}
}

// sensorServer is the simulated sensors' Modbus server.
type sensorServer = sensorsim.ModbusServer
