package sim

import (
	"math"
	"testing"
	"time"
)

// The scenarios' curves at the moments that matter: where the cable
// passes its warning (60 °C) and alarm (80 °C) thresholds and how fast it
// climbs, the gas leak's plateaus, a silent sensor stopping.
func TestScenarioCurves(t *testing.T) {
	min := time.Minute
	cases := []struct {
		scenario string
		base     float64
		at       time.Duration
		want     float64
		ok       bool
	}{
		{CableHeating, 0, 0, 35, true},
		{CableHeating, 0, min, 35, true},
		{CableHeating, 0, 6 * min, 60, true},  // the warning threshold
		{CableHeating, 0, 10 * min, 80, true}, // the alarm threshold
		{CableHeating, 0, 11*min + 30*time.Second, 85, true},
		{CableHeating, 0, 17 * min, 60, true}, // cooling
		{CableHeating, 0, 23 * min, 35, true},
		{CableHeating, 0, 24*min + 6*min, 60, true}, // the next cycle
		{GasLeak, 0, 0, 0, true},
		{GasLeak, 0, 3 * min, 12, true},
		{GasLeak, 0, 6 * min, 30, true},
		{GasLeak, 0, 9*min + 30*time.Second, 15, true},
		{GasLeak, 0, 12 * min, 0, true},
		{Silent, 22.5, 0, 22.5, true},
		{Silent, 22.5, 59 * time.Second, 22.5, true},
		{Silent, 22.5, min, 22.5, false},
		{Silent, 22.5, time.Hour, 22.5, false},
		{Steady, 100, 0, 100, true},
		{Steady, 100, 75 * time.Second, 102, true}, // a quarter of the wobble's period
	}
	for _, c := range cases {
		curve, err := NewCurve(c.scenario, c.base, 1)
		if err != nil {
			t.Fatal(err)
		}
		v, ok := curve(c.at)
		if ok != c.ok || math.Abs(v-c.want) > 1e-9 {
			t.Errorf("%s at %v: %v, %v; want %v, %v", c.scenario, c.at, v, ok, c.want, c.ok)
		}
	}
}

// The cable rises at 5 °C/min (the rate-of-rise rule's example) and a
// faster speed compresses the cycle.
func TestCableRateAndSpeed(t *testing.T) {
	curve, _ := NewCurve(CableHeating, 0, 1)
	a, _ := curve(2 * time.Minute)
	b, _ := curve(3 * time.Minute)
	if b-a != 5 {
		t.Errorf("rises %v °C/min, want 5", b-a)
	}
	fast, _ := NewCurve(CableHeating, 0, 2)
	if v, _ := fast(5 * time.Minute); v != 80 {
		t.Errorf("at speed 2, minute 5: %v, want 80 (minute 10 at speed 1)", v)
	}
	if CycleLength(CableHeating) != 24*time.Minute || CycleLength(GasLeak) != 13*time.Minute {
		t.Errorf("cycles %v, %v", CycleLength(CableHeating), CycleLength(GasLeak))
	}
	if lo, hi := Range(CableHeating, 0); lo != 35 || hi != 85 {
		t.Errorf("cable range %v..%v", lo, hi)
	}
	if lo, hi := Range(GasLeak, 0); lo != 0 || hi != 30 {
		t.Errorf("gas range %v..%v", lo, hi)
	}
}

func TestCurveErrors(t *testing.T) {
	if _, err := NewCurve("boiling", 0, 1); err == nil {
		t.Error("an unknown scenario was accepted")
	}
	for _, sp := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		if _, err := NewCurve(Steady, 1, sp); err == nil {
			t.Errorf("speed %v was accepted", sp)
		}
	}
	if _, err := curves([]Sensor{{ID: "a", Scenario: Steady}, {ID: "a", Scenario: Steady}}, 1); err == nil {
		t.Error("a sensor ID twice was accepted")
	}
}

func TestEncode(t *testing.T) {
	for v, want := range map[float64]int16{35.2: 352, -4.5: -45, 0: 0, 1e9: math.MaxInt16, -1e9: math.MinInt16} {
		if got := int16(Encode(v)); got != want {
			t.Errorf("Encode(%v) = %d, want %d", v, got, want)
		}
	}
}
