package wire

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Safety sensors (electricity, gas, water): an edge reads them, judges
// each reading against its thresholds (sensors/), raises alerts of the
// kinds below through the same outbox as every other alert, and forwards
// the readings themselves store-and-forward in sensor batches so central
// keeps their history for charts.

// Alert kinds of safety sensors. A sensor alert's Source is the sensor
// ID and its Sensor field says what was measured against what.
const (
	KindSensorWarning = "sensor.warning" // yellow 预警: the warning threshold (or a rate of rise) is crossed
	KindSensorAlarm   = "sensor.alarm"   // red 报警: the alarm threshold is crossed, or a detector went off
	KindSensorSilent  = "sensor.silent"  // yellow: no reading for stale_after intervals
)

// TypeSensorBatch is an outbox item: readings, edge → central.
const TypeSensorBatch = "sensor_batch"

// MaxBatchReadings bounds one sensor batch.
const MaxBatchReadings = 5000

// MaxSensorContext bounds SensorAlert.Recent (the minutes before an alert).
const MaxSensorContext = 600

// SensorPoint is one reading, or one downsampled interval of readings
// (Count > 1: Value is the mean, Min and Max the extremes).
type SensorPoint struct {
	Sensor string    `json:"sensor"`
	Time   time.Time `json:"t"`
	Value  float64   `json:"v"`
	Min    float64   `json:"min,omitempty"`
	Max    float64   `json:"max,omitempty"`
	Count  int       `json:"n,omitempty"` // 0 or 1: a single reading
}

// SensorBatch carries readings in bulk (TypeSensorBatch). ID names the
// batch for good: central stores a batch once however often it is re-sent.
type SensorBatch struct {
	ID     string        `json:"id"`
	Points []SensorPoint `json:"points"`
}

// SensorAlert is what a sensor alert carries (Alert.Sensor).
type SensorAlert struct {
	Sensor string `json:"sensor"`
	Name   string `json:"name,omitempty"`
	// Kind is the sensor's kind (residual_current, cable_temperature,
	// gas, water_level, smoke, water_leak, ...) and Unit its unit.
	Kind     string  `json:"kind"`
	Unit     string  `json:"unit,omitempty"`
	Location string  `json:"location,omitempty"`
	Value    float64 `json:"value"`
	// Rule is what fired: "alarm", "warning", "rate_of_rise", "silent",
	// "detector" (a boolean detector's true), and Threshold its limit
	// (for rate_of_rise: units per minute).
	Rule      string  `json:"rule"`
	Threshold float64 `json:"threshold,omitempty"`
	// Recent is the readings of the minutes before the alert (oldest
	// first), for the chart drawn with it.
	Recent []SensorPoint `json:"recent,omitempty"`
}

// SensorStatus is one sensor in an edge's heartbeat.
type SensorStatus struct {
	ID       string    `json:"id"`
	Name     string    `json:"name,omitempty"`
	Kind     string    `json:"kind"`
	Unit     string    `json:"unit,omitempty"`
	Location string    `json:"location,omitempty"`
	SiteID   string    `json:"site_id,omitempty"`
	State    string    `json:"state"` // normal, warning, alarm, silent, unknown
	Value    float64   `json:"value"`
	Time     time.Time `json:"time,omitzero"` // of the last reading
	Warn     *float64  `json:"warn,omitempty"`
	Alarm    *float64  `json:"alarm,omitempty"`
}

// Validate checks a sensor batch as central receives it.
func (b *SensorBatch) Validate() error {
	if err := checkID("sensor batch", b.ID); err != nil {
		return err
	}
	if len(b.Points) == 0 || len(b.Points) > MaxBatchReadings {
		return fmt.Errorf("sensor batch: %d points (want 1..%d)", len(b.Points), MaxBatchReadings)
	}
	for i, p := range b.Points {
		switch {
		case p.Sensor == "" || len(p.Sensor) > 128:
			return fmt.Errorf("sensor batch: point %d: sensor ID of 1..128 bytes", i)
		case p.Time.IsZero():
			return fmt.Errorf("sensor batch: point %d: no time", i)
		case math.IsNaN(p.Value) || math.IsInf(p.Value, 0) || math.IsNaN(p.Min) || math.IsNaN(p.Max):
			return errors.New("sensor batch: a value is not a number")
		case p.Count < 0:
			return fmt.Errorf("sensor batch: point %d: negative count", i)
		}
	}
	return nil
}

// checkSensor checks a sensor alert's reading: the sensor kinds carry
// one, naming their source; other alerts carry none.
func (a *Alert) checkSensor() error {
	isSensor := a.Kind == KindSensorWarning || a.Kind == KindSensorAlarm || a.Kind == KindSensorSilent
	switch {
	case !isSensor && a.Sensor != nil:
		return fmt.Errorf("alert: a %s alert carries a sensor reading", a.Kind)
	case !isSensor:
		return nil
	case a.Sensor == nil:
		return fmt.Errorf("alert: a %s alert without its reading", a.Kind)
	case a.Sensor.Sensor != a.Source:
		return errors.New("alert: sensor reading of another source")
	case math.IsNaN(a.Sensor.Value) || math.IsInf(a.Sensor.Value, 0):
		return errors.New("alert: sensor value is not a number")
	case len(a.Sensor.Recent) > MaxSensorContext:
		return fmt.Errorf("alert: %d recent readings (at most %d)", len(a.Sensor.Recent), MaxSensorContext)
	}
	return nil
}
