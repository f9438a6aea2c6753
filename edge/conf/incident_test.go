package conf

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/streams/motion"
)

// TestIncidentConfig: analysis.motion.incident_gap and incident_max are
// read, default to 60s and 10m, and bad values name their field and line.
func TestIncidentConfig(t *testing.T) {
	cfg, err := Load(writeConfig(t, goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Analysis.Motion.Rules(); r.Gap != motion.DefaultIncidentGap || r.Max != motion.DefaultIncidentMax {
		t.Fatalf("defaults: %+v", r)
	}
	cfg, err = Load(writeConfig(t, goodConfig+"analysis:\n  motion:\n    incident_gap: 90s\n    incident_max: 20m\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Analysis.Motion.Rules(); r.Gap != 90*time.Second || r.Max != 20*time.Minute {
		t.Fatalf("read: %+v", r)
	}
	for _, tc := range []struct{ body, want string }{
		{"    incident_gap: 500ms\n", "edge.yaml:15: analysis.motion.incident_gap: must be between 1s and 30m0s"},
		{"    incident_gap: 31m\n", "analysis.motion.incident_gap"},
		{"    incident_gap: 2m\n    incident_max: 1m\n", "edge.yaml:16: analysis.motion.incident_max: must be longer than incident_gap"},
		{"    incident_max: 3h\n", "analysis.motion.incident_max"},
		{"    incident_gap: 15m\n", "analysis.motion.incident_max"},
	} {
		_, err := Load(writeConfig(t, goodConfig+"analysis:\n  motion:\n"+tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.body, err, tc.want)
		}
	}
}
