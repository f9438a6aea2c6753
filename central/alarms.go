package central

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/wire"
)

// AlarmsConfig is how central ranks and escalates alarms (central.yaml):
//
//	alarms:
//	  priorities:            # kind or kind prefix → priority, 1 = most urgent
//	    "gate.sos": 1
//	    "motion": 5
//	    "perimeter.": 2      # every kind starting with "perimeter."
//	    "sensor.*": 1        # the same, written with a star
//	  sites:
//	    "north/gate-3":      # a site ID; applies to that site and everything under it
//	      priorities: {"gate.held": 2}
//	  escalate_after: 60s    # default 60s; 0s turns escalation off
//
// A key is a whole kind ("gate.forced") or a prefix ending in "." or "*"
// ("perimeter." and "perimeter.*" are the same). For an alert the most
// specific rule wins: the deepest configured site above or at the alert's
// site first, then the top-level priorities, then the default order
// (defaultPriority); within one table an exact kind beats the longest
// matching prefix. Priorities are 1..9.
type AlarmsConfig struct {
	Priorities map[string]int               `yaml:"priorities,omitempty"`
	Sites      map[string]AlarmSitePriority `yaml:"sites,omitempty"`
	// EscalateAfter is how long a red alert may stay raised (nobody
	// acknowledged it) before central escalates it once (default 60s; 0s:
	// never). A pointer: an absent key is the default, "0s" is off.
	EscalateAfter *config.Duration `yaml:"escalate_after,omitempty"`
}

// AlarmSitePriority is one site's own priority table.
type AlarmSitePriority struct {
	Priorities map[string]int `yaml:"priorities,omitempty"`
}

// Escalation and priority bounds.
const (
	defaultEscalateAfter = 60 * time.Second
	maxEscalateAfter     = 24 * time.Hour
	maxPriority          = 9
	// KindSelfTest is an edge's self-test report: for installers and
	// admins, never in a guard's queue (alertsAPI, the console feed).
	KindSelfTest = "system.selftest"
)

// escalateAfter is the configured delay (0: off).
func (c *AlarmsConfig) escalateAfter() time.Duration {
	if c.EscalateAfter == nil {
		return defaultEscalateAfter
	}
	return c.EscalateAfter.D()
}

// validate reports problems naming the field as written under alarms:.
func (c *AlarmsConfig) validate(add func(field, format string, args ...any)) {
	validatePriorities("alarms.priorities", c.Priorities, add)
	for site, sp := range c.Sites {
		if site == "" {
			add("alarms.sites", "a site ID is empty")
			continue
		}
		validatePriorities(fmt.Sprintf("alarms.sites[%q].priorities", site), sp.Priorities, add)
	}
	if c.EscalateAfter != nil {
		if d := c.EscalateAfter.D(); d < 0 || d > maxEscalateAfter {
			add("alarms.escalate_after", "must be between 0s (off) and 24h (default 60s)")
		}
	}
}

func validatePriorities(field string, m map[string]int, add func(field, format string, args ...any)) {
	for k, p := range m {
		f := fmt.Sprintf("%s[%q]", field, k)
		switch {
		case strings.TrimRight(k, ".*") == "":
			add(f, "a kind or a kind prefix ending in \".\" or \"*\" is needed")
		case strings.Contains(strings.TrimSuffix(k, "*"), "*"):
			add(f, "\"*\" may only end a prefix (e.g. \"perimeter.*\")")
		case p < 1 || p > maxPriority:
			add(f, "priority %d: must be 1 (most urgent) to %d", p, maxPriority)
		}
	}
}

// defaultPriority is the built-in order, 1 most urgent:
//
//  1. life and fire: gate.sos, gate.duress, gate.smoke, gate.gas, gate.fire,
//     and sensor.* kinds of fire, smoke or gas (sensor.smoke, sensor.gas, …);
//     a safety sensor's alarm (sensor.alarm: residual current, cable
//     heat, gas over its alarm threshold, a smoke or leak detector)
//  2. intrusion: gate.forced, gate.intrusion, perimeter.* (line crossings:
//     perimeter.crossing)
//  3. tamper: tamper.*, tamper, gate.tamper; loitering (perimeter.loiter):
//     someone staying by the wall, not yet over it
//  4. held open, water leak: gate.held, *.water, *.leak; a safety
//     sensor's early warning (sensor.warning)
//  5. motion: motion, motion.*
//  6. equipment: offline, silent, system.*, battery, *.battery, *.offline
//     (a sensor gone silent: sensor.silent)
//  7. anything else
func defaultPriority(kind string) int {
	last := kind
	if i := strings.LastIndexByte(kind, '.'); i >= 0 {
		last = kind[i+1:]
	}
	first, _, _ := strings.Cut(kind, ".")
	switch {
	case (first == "gate" || first == "sensor") && oneOf(last, "sos", "duress", "smoke", "gas", "fire", "panic"),
		kind == wire.KindSensorAlarm:
		return 1
	case kind == wire.KindSensorWarning:
		return 4
	case kind == "perimeter.loiter":
		return 3
	case oneOf(kind, "gate.forced", "gate.intrusion") || first == "perimeter" || first == "intrusion":
		return 2
	case first == "tamper" || kind == "gate.tamper":
		return 3
	case oneOf(last, "held", "water", "leak"):
		return 4
	case first == "motion":
		return 5
	case oneOf(first, "offline", "silent", "system", "battery") || oneOf(last, "offline", "silent", "battery"):
		return 6
	}
	return 7
}

func oneOf(s string, set ...string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

// priorityRules are the configured tables, ready to look up. The zero
// value (nil) is the default order alone.
type priorityRules struct {
	global table
	sites  map[string]table
}

// table is one priorities map: exact kinds, and prefixes longest first.
type table struct {
	exact    map[string]int
	prefixes []prefixRule
}

type prefixRule struct {
	prefix string
	prio   int
}

func newTable(m map[string]int) table {
	t := table{exact: map[string]int{}}
	for k, p := range m {
		if strings.HasSuffix(k, "*") || strings.HasSuffix(k, ".") {
			t.prefixes = append(t.prefixes, prefixRule{strings.TrimSuffix(k, "*"), p})
		} else {
			t.exact[k] = p
		}
	}
	sort.Slice(t.prefixes, func(i, j int) bool { return len(t.prefixes[i].prefix) > len(t.prefixes[j].prefix) })
	return t
}

func (t table) lookup(kind string) (int, bool) {
	if p, ok := t.exact[kind]; ok {
		return p, true
	}
	for _, r := range t.prefixes {
		if strings.HasPrefix(kind, r.prefix) {
			return r.prio, true
		}
	}
	return 0, false
}

// newPriorityRules compiles a validated config (nil for none).
func newPriorityRules(c *AlarmsConfig) *priorityRules {
	if c == nil || (len(c.Priorities) == 0 && len(c.Sites) == 0) {
		return nil
	}
	r := &priorityRules{global: newTable(c.Priorities), sites: map[string]table{}}
	for site, sp := range c.Sites {
		r.sites[site] = newTable(sp.Priorities)
	}
	return r
}

// priority is kind's priority at site (nil rules: the default order).
func (r *priorityRules) priority(site, kind string) int {
	if r != nil {
		for s := site; s != ""; s = parentSite(s) {
			if t, ok := r.sites[s]; ok {
				if p, ok := t.lookup(kind); ok {
					return p
				}
			}
		}
		if p, ok := r.global.lookup(kind); ok {
			return p
		}
	}
	return defaultPriority(kind)
}

// parentSite is the site above s ("a/b/c" → "a/b"; "a" → "").
func parentSite(s string) string {
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[:i]
	}
	return ""
}
