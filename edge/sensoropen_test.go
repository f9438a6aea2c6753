package edge

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-perimeter/vigil/sensors"
	"github.com/vigil-perimeter/vigil/wire"
)

// The open alerts' file: none when it is missing; a malformed one, a
// version not known and an entry that is not an open alert are errors
// naming the file.
func TestLoadSensorOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, sensorOpenFile)
	if m, err := loadSensorOpen(path); err != nil || len(m) != 0 {
		t.Fatalf("missing file: %v %v", m, err)
	}
	good := `{"version":1,"open":{"gas-1":{"alarm":{"id":"a1","summary":"Gas 30 %LEL","severity":"red","rule":"alarm","threshold":25}}}}`
	for _, c := range []struct{ body, err string }{
		{good, ""},
		{`{"version":1,"open":{"gas-1":{"alarm":`, "unexpected end"},
		{`{"version":2,"open":{}}`, "version 2"},
		{`{"version":1,"open":{"gas-1":{"normal":{"id":"a1","severity":"red"}}}}`, "bad open alert"},
		{`{"version":1,"open":{"gas-1":{"alarm":{"id":"a1","severity":"pink"}}}}`, "bad open alert"},
		{`{"version":1,"open":{"gas-1":{"alarm":{"severity":"red"}}}}`, "bad open alert"},
	} {
		if err := os.WriteFile(path, []byte(c.body), 0o600); err != nil {
			t.Fatal(err)
		}
		m, err := loadSensorOpen(path)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.body, err)
		case c.err == "" && m["gas-1"][sensors.StateAlarm] != (openSensorAlert{ID: "a1", Summary: "Gas 30 %LEL", Sev: wire.Red, Rule: "alarm", Threshold: 25}):
			t.Errorf("%s: loaded %+v", c.body, m)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), path)):
			t.Errorf("%s: error %v, want one naming the file and %q", c.body, err, c.err)
		}
	}
}

// A sensor's open alerts say which verdict it resumes from.
func TestResumedFrom(t *testing.T) {
	a := func(rule string, th float64) openSensorAlert {
		return openSensorAlert{ID: "x", Sev: wire.Yellow, Rule: rule, Threshold: th}
	}
	for _, c := range []struct {
		name string
		open map[sensors.State]openSensorAlert
		want sensors.Resumed
	}{
		{"alarm", map[sensors.State]openSensorAlert{sensors.StateAlarm: a(sensors.RuleAlarm, 80)},
			sensors.Resumed{State: sensors.StateAlarm, Level: sensors.StateAlarm, Threshold: 80}},
		{"warning", map[sensors.State]openSensorAlert{sensors.StateWarning: a(sensors.RuleWarning, 60)},
			sensors.Resumed{State: sensors.StateWarning, Level: sensors.StateWarning, Threshold: 60}},
		{"rate of rise", map[sensors.State]openSensorAlert{sensors.StateWarning: a(sensors.RuleRateOfRise, 5)},
			sensors.Resumed{State: sensors.StateWarning, Level: sensors.StateNormal, Threshold: 5}},
		{"alarm kept over a warning", map[sensors.State]openSensorAlert{sensors.StateAlarm: a(sensors.RuleAlarm, 80), sensors.StateWarning: a(sensors.RuleWarning, 60)},
			sensors.Resumed{State: sensors.StateAlarm, Level: sensors.StateAlarm, Threshold: 80}},
		{"silent over an alarm", map[sensors.State]openSensorAlert{sensors.StateAlarm: a(sensors.RuleAlarm, 80), sensors.StateSilent: a(sensors.RuleSilent, 0)},
			sensors.Resumed{State: sensors.StateSilent, Level: sensors.StateAlarm}},
		{"silent", map[sensors.State]openSensorAlert{sensors.StateSilent: a(sensors.RuleSilent, 0)},
			sensors.Resumed{State: sensors.StateSilent, Level: sensors.StateNormal}},
	} {
		if got := resumedFrom(c.open); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}
