package motion

import "time"

// Incident rules: a camera's motion is reported as one item per activity,
// not one per motion event. The first confirmed motion starts an incident;
// a later event continues it while it comes within Gap of the previous
// one, and while the incident is younger than Max (a scene that never
// goes quiet still gets a fresh item, and a bounded clip, every Max). The
// incident ends once Gap passes without motion.
const (
	DefaultIncidentGap = 60 * time.Second
	DefaultIncidentMax = 10 * time.Minute
)

// IncidentRules decide whether a motion event continues an open incident.
type IncidentRules struct {
	Gap time.Duration // quiet time that ends an incident (default DefaultIncidentGap)
	Max time.Duration // longest incident before the next event starts a new one (default DefaultIncidentMax)
}

// WithDefaults fills unset rules.
func (r IncidentRules) WithDefaults() IncidentRules {
	if r.Gap <= 0 {
		r.Gap = DefaultIncidentGap
	}
	if r.Max <= 0 {
		r.Max = DefaultIncidentMax
	}
	return r
}

// Continues reports whether a motion event at at continues an incident
// that started at start and whose latest event was at last.
func (r IncidentRules) Continues(start, last, at time.Time) bool {
	r = r.WithDefaults()
	return !at.Before(start) && at.Sub(last) <= r.Gap && at.Sub(start) < r.Max
}

// Incident is one activity on a camera: the motion events it folded.
type Incident struct {
	Start  time.Time // the first event's start
	Last   time.Time // when the latest event was raised
	End    time.Time // Last + Gap: when the incident is over
	Events int
}

// GroupIncidents folds motion events, given by their start and the time
// they were raised (in raising order), into incidents as the edge's alert
// owner does: the pure form of its rule, for measurements and tests.
func GroupIncidents(r IncidentRules, starts, raised []time.Time) []Incident {
	r = r.WithDefaults()
	var out []Incident
	for i := range raised {
		if n := len(out); n > 0 && r.Continues(out[n-1].Start, out[n-1].Last, raised[i]) {
			in := &out[n-1]
			in.Last, in.End = raised[i], raised[i].Add(r.Gap)
			in.Events++
			continue
		}
		out = append(out, Incident{Start: starts[i], Last: raised[i], End: raised[i].Add(r.Gap), Events: 1})
	}
	return out
}
