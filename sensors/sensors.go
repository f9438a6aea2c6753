// Package sensors watches safety sensors — electricity (residual current,
// cable temperature, overload), gas (%LEL) and water (leaks, levels) — 24
// hours a day: readings from Modbus TCP detectors and MQTT devices
// (Zigbee2MQTT and others) are judged against a warning threshold
// (yellow, 预警) and an alarm threshold (red, 报警) with hysteresis, a
// minimum duration and a rate of rise, and a sensor that stops reporting
// is itself a warning. The edge (edge/sensors.go) turns verdict changes
// into alerts, keeps the readings (sensors/history) and forwards them.
//
// This file is the package's contract: the types every part shares.
package sensors

import (
	"context"
	"time"

	"github.com/vigil-perimeter/vigil/internal/config"
)

// Reading is one value from a source. Booleans (a detector's alarm
// contact, a leak sensor) are 1 (true) and 0 (false).
type Reading struct {
	Sensor string
	Time   time.Time // UTC
	Value  float64
}

// Source delivers readings until ctx ends; Run returns ctx's error then,
// or an error that stops the source for good (bad configuration). Lost
// connections are the source's to retry with backoff, not errors.
type Source interface {
	Run(ctx context.Context, emit func(Reading)) error
}

// State is a sensor's verdict.
type State string

// States, least to most urgent.
const (
	StateUnknown State = "unknown" // no reading yet
	StateNormal  State = "normal"
	StateSilent  State = "silent"  // no reading for stale_after intervals (yellow)
	StateWarning State = "warning" // yellow 预警
	StateAlarm   State = "alarm"   // red 报警
)

// Rules that change a state (Change.Rule).
const (
	RuleAlarm      = "alarm"        // the alarm threshold, held for min_duration
	RuleWarning    = "warning"      // the warning threshold, held for min_duration
	RuleRateOfRise = "rate_of_rise" // rising faster than rate_of_rise allows (a warning)
	RuleDetector   = "detector"     // a boolean detector went off (an alarm)
	RuleSilent     = "silent"       // no reading for stale_after intervals
	RuleClear      = "clear"        // back below threshold − hysteresis (or reporting again)
)

// Change is a sensor's verdict changing.
type Change struct {
	Sensor    string
	From, To  State
	Rule      string
	Value     float64 // the reading that decided it (the last one for silent)
	Threshold float64 // the limit crossed (units per minute for rate_of_rise)
	At        time.Time
}

// SensorConfig is one sensor in edge.yaml (sensors:).
type SensorConfig struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name,omitempty"`
	// Kind picks the unit and default thresholds (kinds.go):
	// residual_current (mA), cable_temperature (°C), current (A),
	// voltage (V), power (W), gas (%LEL), temperature (°C), humidity (%),
	// water_level (cm), smoke and water_leak (detectors).
	Kind string `yaml:"kind"`
	Unit string `yaml:"unit,omitempty"` // default: the kind's
	// Location is where it is, as a person says it ("Lane 4, box 3");
	// Site the site path it belongs to (default the edge's site_id).
	Location string    `yaml:"location,omitempty"`
	Site     string    `yaml:"site,omitempty"`
	Source   SourceRef `yaml:"source"`
	// Interval is how often the sensor reports (a Modbus device's poll);
	// default 1m for MQTT, the device's poll for Modbus.
	Interval config.Duration `yaml:"interval,omitempty"`
	// StaleAfter: no reading for this many intervals is "silent" (default 3).
	StaleAfter int `yaml:"stale_after,omitempty"`
	// Warn and Alarm are the thresholds (default: the kind's; a kind
	// without defaults needs them). Below: the value alarms when it falls
	// under them instead (a low water tank, a low voltage).
	Warn  *float64 `yaml:"warn,omitempty"`
	Alarm *float64 `yaml:"alarm,omitempty"`
	Below bool     `yaml:"below,omitempty"`
	// Hysteresis: a warning or alarm clears once the value is this far
	// back past its threshold (default: the kind's).
	Hysteresis *float64 `yaml:"hysteresis,omitempty"`
	// MinDuration: a threshold must be crossed this long before it
	// counts (default: the kind's; 0 for detectors).
	MinDuration *config.Duration `yaml:"min_duration,omitempty"`
	// RateOfRise warns when the value climbs faster than Delta per Per
	// (e.g. a cable temperature rising 5 °C per minute), measured over Per.
	RateOfRise *RateOfRise `yaml:"rate_of_rise,omitempty"`
}

// RateOfRise is a rate-of-rise rule.
type RateOfRise struct {
	Delta float64         `yaml:"delta"`
	Per   config.Duration `yaml:"per"` // default 1m
}

// SourceRef says where a sensor's readings come from: exactly one of
// Modbus (a register of a Modbus device) or MQTT.
type SourceRef struct {
	Modbus *ModbusRef `yaml:"modbus,omitempty"`
	MQTT   *MQTTRef   `yaml:"mqtt,omitempty"`
}

// ModbusRef names a register of a device (sensor_inputs.modbus.devices).
type ModbusRef struct {
	Device   string `yaml:"device"`
	Register string `yaml:"register"` // a register name of the device's model
}

// MQTTRef reads a value from an MQTT topic: a Zigbee2MQTT device's
// expose (Device + Field: topic base_topic/Device, JSON key Field, e.g.
// temperature, current, gas_density, water_leak), or any topic with a
// JSON path (Topic + Path: "a.b[0].c"; empty Path: the payload is the
// number itself).
type MQTTRef struct {
	Device string `yaml:"device,omitempty"`
	Field  string `yaml:"field,omitempty"`
	Topic  string `yaml:"topic,omitempty"`
	Path   string `yaml:"path,omitempty"`
}

// InputsConfig is edge.yaml's sensor_inputs: the Modbus devices and
// the MQTT broker the sensors are read from.
type InputsConfig struct {
	Modbus ModbusConfig     `yaml:"modbus,omitempty"`
	MQTT   *MQTTInputConfig `yaml:"mqtt,omitempty"`
}

// ModbusConfig is the register maps of device models and the devices.
type ModbusConfig struct {
	// Models maps a model name (e.g. "acrel-arcm300") to its register map.
	Models  map[string][]RegisterConfig `yaml:"models,omitempty"`
	Devices []ModbusDeviceConfig        `yaml:"devices,omitempty"`
}

// RegisterConfig is one value of a model's register map.
type RegisterConfig struct {
	Name    string `yaml:"name"`
	Address uint16 `yaml:"address"` // 0-based protocol address
	// Table: holding (default), input, coil or discrete.
	Table string `yaml:"table,omitempty"`
	// Type: uint16 (default), int16, uint32, int32, float32 (coils and
	// discrete inputs: bool).
	Type string `yaml:"type,omitempty"`
	// WordOrder of 32-bit values: big (default: high word first) or little.
	WordOrder string  `yaml:"word_order,omitempty"`
	Scale     float64 `yaml:"scale,omitempty"` // value = raw × scale + offset; default scale 1
	Offset    float64 `yaml:"offset,omitempty"`
	Unit      string  `yaml:"unit,omitempty"`
}

// ModbusDeviceConfig is one Modbus TCP device.
type ModbusDeviceConfig struct {
	ID      string          `yaml:"id"`
	Address string          `yaml:"address"` // host:port (port 502 by default)
	UnitID  uint8           `yaml:"unit_id,omitempty"`
	Model   string          `yaml:"model"`
	Poll    config.Duration `yaml:"poll,omitempty"`    // default 1s
	Timeout config.Duration `yaml:"timeout,omitempty"` // default 1s
}

// MQTTInputConfig is the broker MQTT sensors are read from.
type MQTTInputConfig struct {
	Broker       string `yaml:"broker"` // tcp://host:1883
	ClientID     string `yaml:"client_id,omitempty"`
	Username     string `yaml:"username,omitempty"`
	PasswordFile string `yaml:"password_file,omitempty"`
	BaseTopic    string `yaml:"base_topic,omitempty"` // Zigbee2MQTT's, default zigbee2mqtt
}
