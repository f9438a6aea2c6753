package conf

import (
	"time"

	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/streams/motion"
)

// EdgeAnalysisConfig is edge.yaml's analysis: block, for every camera.
type EdgeAnalysisConfig struct {
	Motion IncidentConfig `yaml:"motion,omitempty"`
}

// IncidentConfig groups a camera's motion events into incidents: one
// alert per activity, later events updates of it (streams/motion,
// IncidentRules). Zero means the default.
type IncidentConfig struct {
	// IncidentGap: motion within this long of the previous event continues
	// the incident; this long without motion ends it (default 60s).
	IncidentGap config.Duration `yaml:"incident_gap,omitempty"`
	// IncidentMax: an incident older than this is ended at its next event,
	// which starts a new one (default 10m): a scene that never goes quiet
	// still gets a fresh alert, and a bounded clip, this often.
	IncidentMax config.Duration `yaml:"incident_max,omitempty"`
}

// Limits of the incident settings.
const (
	MinIncidentGap = time.Second
	MaxIncidentGap = 30 * time.Minute
	MaxIncidentMax = 2 * time.Hour
)

// Rules are the incident rules in force, defaults filled.
func (c IncidentConfig) Rules() motion.IncidentRules {
	return motion.IncidentRules{Gap: c.IncidentGap.D(), Max: c.IncidentMax.D()}.WithDefaults()
}

func (c IncidentConfig) errors(errs *fieldErrors) {
	gap, maxD := c.IncidentGap.D(), c.IncidentMax.D()
	if gap != 0 && (gap < MinIncidentGap || gap > MaxIncidentGap) {
		errs.add("analysis.motion.incident_gap", "must be between %v and %v (leave it out for %v)", MinIncidentGap, MaxIncidentGap, motion.DefaultIncidentGap)
	}
	if (maxD != 0 || gap >= motion.DefaultIncidentMax) && (maxD > MaxIncidentMax || c.Rules().Max <= c.Rules().Gap) {
		errs.add("analysis.motion.incident_max", "must be longer than incident_gap (%v) and at most %v (leave it out for %v)", c.Rules().Gap, MaxIncidentMax, motion.DefaultIncidentMax)
	}
}
