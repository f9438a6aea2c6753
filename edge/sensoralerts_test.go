package edge

import (
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/sensors"
)

// Sensor alerts say in one English line what was measured against what,
// and where.
func TestSensorAlertSummaries(t *testing.T) {
	gas := sensors.Resolved{ID: "gas-3", Name: "Kitchen", Kind: "gas", Unit: "%LEL", Location: "No. 3 Lane", Interval: time.Minute, StaleAfter: 3}
	tank := sensors.Resolved{ID: "tank-1", Kind: "water_level", Unit: "cm", Below: true, Interval: 2 * time.Second, StaleAfter: 3}
	cable := sensors.Resolved{ID: "cable-1", Kind: "cable_temperature", Unit: "°C"}
	smoke := sensors.Resolved{ID: "smoke-1", Name: "Hall", Kind: "smoke"}
	for _, c := range []struct {
		r    sensors.Resolved
		c    sensors.Change
		want string
	}{
		{gas, sensors.Change{Rule: sensors.RuleAlarm, Value: 27.5, Threshold: 25}, "Gas 27.5 %LEL over alarm 25 %LEL at Kitchen, No. 3 Lane"},
		{gas, sensors.Change{Rule: sensors.RuleWarning, Value: 10.123456, Threshold: 10}, "Gas 10.12 %LEL over warning 10 %LEL at Kitchen, No. 3 Lane"},
		{gas, sensors.Change{Rule: sensors.RuleSilent}, "Gas sensor silent: no reading for 3 min at Kitchen, No. 3 Lane"},
		{tank, sensors.Change{Rule: sensors.RuleAlarm, Value: 12, Threshold: 20}, "Water level 12 cm under alarm 20 cm at tank-1"},
		{tank, sensors.Change{Rule: sensors.RuleSilent}, "Water level sensor silent: no reading for 6s at tank-1"},
		{cable, sensors.Change{Rule: sensors.RuleRateOfRise, Value: 58, Threshold: 5}, "Cable temperature 58 °C rising faster than 5 °C/min at cable-1"},
		{smoke, sensors.Change{Rule: sensors.RuleDetector, Value: 1, Threshold: 1}, "Smoke detected at Hall"},
	} {
		if got := summary(c.r, c.c); got != c.want {
			t.Errorf("%s %s: %q, want %q", c.r.ID, c.c.Rule, got, c.want)
		}
	}
}
