// Package sim plays safety-sensor scenarios for demos, tests and
// benchmarks: a cable heating up through its warning and alarm
// thresholds, a gas leak rising and falling, a sensor that goes silent,
// a steady value. The curves are pure functions of the time since the
// start (scenario.go); they are served as Modbus TCP registers
// (modbus.go) or published as Zigbee2MQTT-style JSON over MQTT (mqtt.go).
// `vigil sim sensor` (internal/cli) wires them to the command line.
package sim

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Scenario names.
const (
	CableHeating = "cable-heating" // 35 °C rising 5 °C/min through 60 to 85 °C, holding, then cooling
	GasLeak      = "gas-leak"      // 0 %LEL rising to 12, then to 30, then falling back
	Silent       = "silent"        // reports its base value for a minute, then stops for good
	Steady       = "steady"        // its base value with a slight wobble
)

// Scenarios lists the scenario names.
func Scenarios() []string { return []string{CableHeating, GasLeak, Silent, Steady} }

// knot is a point of a piecewise-linear curve: value V at time At.
type knot struct {
	At time.Duration
	V  float64
}

// The cycles, repeated for as long as the scenario plays. Cable heating:
// a minute at 35 °C, 10 minutes rising 5 °C/min to 85 °C (passing the
// 60 °C warning at minute 6 and the 80 °C alarm at minute 10), a minute
// held, 10 minutes cooling, 2 minutes at rest: 24 minutes.
var (
	cableCycle = []knot{{0, 35}, {time.Minute, 35}, {11 * time.Minute, 85}, {12 * time.Minute, 85},
		{22 * time.Minute, 35}, {24 * time.Minute, 35}}
	// Gas: a minute clean, 2 minutes rising to 12 %LEL (past the 10
	// %LEL warning), a minute there, 2 minutes rising to 30 (past the 25
	// alarm), 2 minutes there, 3 minutes falling to 0, 2 minutes clean.
	gasCycle = []knot{{0, 0}, {time.Minute, 0}, {3 * time.Minute, 12}, {4 * time.Minute, 12},
		{6 * time.Minute, 30}, {8 * time.Minute, 30}, {11 * time.Minute, 0}, {13 * time.Minute, 0}}
)

// silentAfter is how long a silent sensor reports before it stops.
const silentAfter = time.Minute

// steadyWobble is a steady value's relative swing and its period.
const (
	steadyWobble = 0.02
	steadyPeriod = 5 * time.Minute
)

// Curve is a scenario's value at a time since its start; ok is false
// while the sensor reports nothing.
type Curve func(elapsed time.Duration) (v float64, ok bool)

// CycleLength is how long one cycle of a scenario lasts (0: it does not repeat).
func CycleLength(scenario string) time.Duration {
	switch scenario {
	case CableHeating:
		return cableCycle[len(cableCycle)-1].At
	case GasLeak:
		return gasCycle[len(gasCycle)-1].At
	case Steady:
		return steadyPeriod
	}
	return 0
}

// NewCurve is the curve of a scenario. base is the steady and silent
// scenarios' value; speed (> 0, 1 for real time) plays the scenario
// faster (2: a 24-minute cycle in 12).
func NewCurve(scenario string, base, speed float64) (Curve, error) {
	if !(speed > 0) || math.IsInf(speed, 0) {
		return nil, fmt.Errorf("speed %v: want a positive number", speed)
	}
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) * speed) }
	switch scenario {
	case CableHeating:
		return func(d time.Duration) (float64, bool) { return cycle(cableCycle, scale(d)), true }, nil
	case GasLeak:
		return func(d time.Duration) (float64, bool) { return cycle(gasCycle, scale(d)), true }, nil
	case Silent:
		return func(d time.Duration) (float64, bool) { return base, scale(d) < silentAfter }, nil
	case Steady:
		return func(d time.Duration) (float64, bool) {
			phase := 2 * math.Pi * float64(scale(d)%steadyPeriod) / float64(steadyPeriod)
			return base * (1 + steadyWobble*math.Sin(phase)), true
		}, nil
	}
	return nil, fmt.Errorf("scenario %q: want one of %s", scenario, strings.Join(Scenarios(), ", "))
}

// Range is the least and greatest value a scenario takes.
func Range(scenario string, base float64) (lo, hi float64) {
	var ks []knot
	switch scenario {
	case CableHeating:
		ks = cableCycle
	case GasLeak:
		ks = gasCycle
	case Steady:
		a, b := base*(1-steadyWobble), base*(1+steadyWobble)
		return min(a, b), max(a, b)
	default:
		return base, base
	}
	vs := make([]float64, len(ks))
	for i, k := range ks {
		vs[i] = k.V
	}
	return slices.Min(vs), slices.Max(vs)
}

// cycle interpolates the knots at d modulo the cycle's length.
func cycle(ks []knot, d time.Duration) float64 {
	if d < 0 {
		d = 0
	}
	d %= ks[len(ks)-1].At
	for i := 1; i < len(ks); i++ {
		a, b := ks[i-1], ks[i]
		if d <= b.At {
			f := float64(d-a.At) / float64(b.At-a.At)
			return a.V + f*(b.V-a.V)
		}
	}
	panic("sim: a cycle's knots do not cover it") // unreachable: d < the last knot's time
}
