package sensors

import (
	"slices"
	"time"
)

// Kind is what a sensor measures: its unit and the defaults of its rules.
//
// Where the defaults come from (paste into README as is):
//
//	| kind              | unit | warn     | alarm    | hysteresis | min duration | source of the thresholds |
//	|-------------------|------|----------|----------|------------|--------------|--------------------------|
//	| residual_current  | mA   | 300      | 500      | 25 mA      | 5 s          | GB 50116-2013 §9.2.3: a residual-current detector's alarm "宜为 300 mA～500 mA"; GB 14287.2-2014 lets detectors be set within 20–1000 mA. The 300 → 500 split into 预警/报警 is common practice, not a standard. |
//	| cable_temperature | °C   | 60       | 80       | 4 °C       | 5 s          | Practice. GB 14287.3-2014 (temperature-type detectors) lets the alarm be set within 55–140 °C; PVC-insulated cable is rated for a 70 °C conductor (XLPE 90 °C), so 60 warns before and 80 alarms past the PVC limit. |
//	| gas               | %LEL | 10       | 25       | 1.25 %LEL  | 5 s          | GB/T 50493-2019 (报警值设定): combustible gas first-level alarm ≤ 25 %LEL (second level ≤ 50 %LEL). 10 %LEL as an early warning is common detector practice (many have a 10 %LEL low alarm), not a standard value. |
//	| current           | A    | required | required | 5 % alarm  | 5 s          | none: depends on the circuit's breaker and cable |
//	| voltage           | V    | required | required | 5 % alarm  | 5 s          | none (GB/T 12325-2008 allows 220 V single-phase +7 % / −10 %: use below: true for undervoltage) |
//	| power             | W    | required | required | 5 % alarm  | 5 s          | none |
//	| temperature       | °C   | required | required | 5 % alarm  | 0            | none |
//	| humidity          | %    | required | required | 5 % alarm  | 0            | none |
//	| water_level       | cm   | required | required | 5 % alarm  | 0            | none (below: true for a tank running dry) |
//	| smoke, water_leak | —    | —        | 1        | —          | 0            | detectors: 1 (true) alarms at once, 0 clears |
//
// Hysteresis defaults to 5 % of the alarm threshold (of the warning one
// without an alarm), at most half the gap between them, so a value
// hovering at a threshold cannot flap. Minimum durations are practice:
// 5 s rides out an inrush or a switching transient on electrical
// measures and a puff of gas; slow ambient measures (usually reported
// once a minute, already averaged) need none, and a detector has its own.
// A sensor that stops reporting for stale_after (3) intervals is silent.
type Kind struct {
	Name     string
	Unit     string
	Detector bool // a boolean detector: 1 alarms, 0 clears
	// Warn and Alarm are the default thresholds; nil: the sensor's
	// configuration must give them.
	Warn, Alarm *float64
	// MinDuration is the default minimum duration of a threshold crossing.
	MinDuration time.Duration
	// MQTTInterval is how often such a sensor reports over MQTT by
	// default. Zigbee detectors only report a change and a check-in
	// about hourly, so a minute would make every quiet one silent.
	MQTTInterval time.Duration
}

// Defaults that are not per kind.
const (
	// DefaultStaleAfter is how many intervals without a reading make a
	// sensor silent.
	DefaultStaleAfter = 3
	// DefaultMQTTInterval is how often an MQTT sensor is taken to report.
	DefaultMQTTInterval = time.Minute
	// DefaultPoll is a Modbus device's poll interval (and so its sensors').
	DefaultPoll = time.Second
	// DefaultTimeout is a Modbus request's timeout.
	DefaultTimeout = time.Second
	// DefaultRatePer is a rate-of-rise rule's window.
	DefaultRatePer = time.Minute
	// HysteresisFraction of the alarm threshold is the default hysteresis.
	HysteresisFraction = 0.05
)

// electricalMin is the minimum duration of electrical and gas crossings.
const electricalMin = 5 * time.Second

func ptr(v float64) *float64 { return &v }

// kinds is every known kind, in the order the documentation lists them.
var kinds = []Kind{
	{Name: "residual_current", Unit: "mA", Warn: ptr(300), Alarm: ptr(500), MinDuration: electricalMin, MQTTInterval: DefaultMQTTInterval},
	{Name: "cable_temperature", Unit: "°C", Warn: ptr(60), Alarm: ptr(80), MinDuration: electricalMin, MQTTInterval: DefaultMQTTInterval},
	{Name: "current", Unit: "A", MinDuration: electricalMin, MQTTInterval: DefaultMQTTInterval},
	{Name: "voltage", Unit: "V", MinDuration: electricalMin, MQTTInterval: DefaultMQTTInterval},
	{Name: "power", Unit: "W", MinDuration: electricalMin, MQTTInterval: DefaultMQTTInterval},
	{Name: "gas", Unit: "%LEL", Warn: ptr(10), Alarm: ptr(25), MinDuration: electricalMin, MQTTInterval: DefaultMQTTInterval},
	{Name: "temperature", Unit: "°C", MQTTInterval: DefaultMQTTInterval},
	{Name: "humidity", Unit: "%", MQTTInterval: DefaultMQTTInterval},
	{Name: "water_level", Unit: "cm", MQTTInterval: DefaultMQTTInterval},
	{Name: "smoke", Detector: true, MQTTInterval: time.Hour},
	{Name: "water_leak", Detector: true, MQTTInterval: time.Hour},
}

// LookupKind returns the kind called name.
func LookupKind(name string) (Kind, bool) {
	i := slices.IndexFunc(kinds, func(k Kind) bool { return k.Name == name })
	if i < 0 {
		return Kind{}, false
	}
	return kinds[i], true
}

// Kinds returns the names of every known kind.
func Kinds() []string {
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = k.Name
	}
	return out
}

// defaultHysteresis is HysteresisFraction of the alarm threshold (of the
// warning one without an alarm), at most half the gap between the two.
func defaultHysteresis(warn, alarm *float64) float64 {
	var h float64
	switch {
	case alarm != nil:
		h = HysteresisFraction * abs(*alarm)
	case warn != nil:
		h = HysteresisFraction * abs(*warn)
	}
	if warn != nil && alarm != nil {
		h = min(h, abs(*alarm-*warn)/2)
	}
	return h
}

func abs(v float64) float64 { return max(v, -v) }
