package sim

import (
	"fmt"
	"time"

	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/sensors"
)

// Sensor is one simulated sensor.
type Sensor struct {
	// ID is the sensor's ID in edge.yaml, its register's name on a Modbus
	// device and its Zigbee2MQTT device name over MQTT.
	ID       string
	Name     string // as a person says it (optional)
	Kind     string // a sensors kind: cable_temperature, gas, residual_current ...
	Location string
	Scenario string
	Base     float64 // the steady and silent scenarios' value
	// Field is the JSON key published over MQTT (default: fieldOf(Kind)).
	Field string
	// Warn and Alarm go into the sensor's edge.yaml entry (needed by the
	// kinds without default thresholds: temperature, water_level ...).
	Warn, Alarm *float64
}

// fieldOf is the Zigbee2MQTT expose a kind is published as.
func fieldOf(kind string) string {
	switch kind {
	case "cable_temperature", "temperature":
		return "temperature"
	case "gas":
		return "gas_density"
	case "":
		return "value"
	}
	return kind // current, voltage, power, humidity, water_leak, residual_current, water_level ...
}

// MQTTField is the sensor's JSON key over MQTT.
func (s Sensor) MQTTField() string {
	if s.Field != "" {
		return s.Field
	}
	return fieldOf(s.Kind)
}

// curves makes each sensor's curve, checking the list.
func curves(list []Sensor, speed float64) ([]Curve, error) {
	out := make([]Curve, len(list))
	seen := map[string]bool{}
	for i, s := range list {
		if s.ID == "" {
			return nil, fmt.Errorf("sensors[%d].id: empty", i)
		}
		if seen[s.ID] {
			return nil, fmt.Errorf("sensors[%d].id: %q twice", i, s.ID)
		}
		seen[s.ID] = true
		c, err := NewCurve(s.Scenario, s.Base, speed)
		if err != nil {
			return nil, fmt.Errorf("sensors[%d] (%s): %w", i, s.ID, err)
		}
		out[i] = c
	}
	return out, nil
}

// SensorConfig is the edge.yaml entry reading s from source src.
func (s Sensor) SensorConfig(src sensors.SourceRef, interval time.Duration) sensors.SensorConfig {
	return sensors.SensorConfig{ID: s.ID, Name: s.Name, Kind: s.Kind, Location: s.Location,
		Source: src, Interval: config.Duration(interval), Warn: s.Warn, Alarm: s.Alarm}
}

// unitOf is a kind's unit as the simulator reports it.
func unitOf(kind string) string {
	switch kind {
	case "residual_current":
		return "mA"
	case "cable_temperature", "temperature":
		return "°C"
	case "current":
		return "A"
	case "voltage":
		return "V"
	case "power":
		return "W"
	case "gas":
		return "%LEL"
	case "humidity":
		return "%"
	case "water_level":
		return "cm"
	}
	return ""
}
