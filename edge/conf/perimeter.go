package conf

import (
	"fmt"
	"strings"

	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/streams/perimeter"
)

// A camera's perimeter rules (issue #20): tripwires (lines:) that raise
// an alert when an object crosses them in the watched direction, and
// dwell regions (dwell:) that raise one when an object stays in an area,
// or near a line, for a while. Coordinates are normalised like zones'.
//
//	lines:
//	  - name: east wall
//	    points: [[0.1, 0.8], [0.9, 0.7]]
//	    direction: in          # in, out or both (default both)
//	dwell:
//	  - name: gate apron
//	    region: [[0.3, 0.6], [0.7, 0.6], [0.7, 1], [0.3, 1]]
//	    after: 20s
//	  - name: along the wall
//	    line: east wall        # the band reach either side of a line
//	    reach: 0.05            # default 0.05
//	    after: 30s
//	perimeter:
//	  hysteresis: 0.02         # optional tuning

// LineConfig is one tripwire. Walking along the line from its first
// point to its last, "in" is a crossing from the left-hand side to the
// right-hand side, "out" the reverse.
type LineConfig struct {
	Name      string  `yaml:"name"`
	Points    Polygon `yaml:"points,flow"` // two or more [x, y] points (an open polyline)
	Direction string  `yaml:"direction,omitempty"`
}

// DwellConfig is one loitering rule: a region, or the band within reach
// of a named line, where an object staying after or longer raises an
// alert.
type DwellConfig struct {
	Name   string          `yaml:"name"`
	Region Polygon         `yaml:"region,omitempty,flow"`
	Line   string          `yaml:"line,omitempty"`
	Reach  float64         `yaml:"reach,omitempty"` // with line: normalised distance, default DefaultReach
	After  config.Duration `yaml:"after"`
}

// PerimeterTuning is the optional perimeter: block; zero means the
// default (streams/perimeter).
type PerimeterTuning struct {
	Hysteresis float64         `yaml:"hysteresis,omitempty"`
	Coast      config.Duration `yaml:"coast,omitempty"`
	LeaveGrace config.Duration `yaml:"leave_grace,omitempty"`
}

// DefaultReach is a line dwell's band when reach is left out.
const DefaultReach = 0.05

// maxRuleName bounds a line's or dwell region's name: it is in every
// alert the rule raises.
const maxRuleName = 64

// PerimeterRules is the camera's lines and dwell regions as its analyser
// takes them (what a revision changes live).
func (cam CameraConfig) PerimeterRules() perimeter.Config {
	p := perimeter.Config{Hysteresis: cam.Perimeter.Hysteresis, Coast: cam.Perimeter.Coast.D(), LeaveGrace: cam.Perimeter.LeaveGrace.D()}
	for _, l := range cam.Lines {
		dir := perimeter.Direction(l.Direction)
		if dir == "" {
			dir = perimeter.Both
		}
		p.Lines = append(p.Lines, perimeter.Line{Name: l.Name, Points: l.Points.points(), Direction: dir})
	}
	for _, d := range cam.Dwell {
		pd := perimeter.Dwell{Name: d.Name, Line: d.Line, Reach: d.Reach, After: d.After.D()}
		if len(d.Region) > 0 {
			pd.Region = d.Region.motionPolygon()
		}
		if d.Line != "" && d.Reach == 0 {
			pd.Reach = DefaultReach
		}
		p.Dwells = append(p.Dwells, pd)
	}
	return p
}

// points is the list of points, dropping any that is not an [x, y] pair
// (reported by validation).
func (p Polygon) points() []motion.Point { return []motion.Point(p.motionPolygon()) }

// pairProblem says which point of p is not an [x, y] pair, or "".
func (p Polygon) pairProblem() string {
	for i, pt := range p {
		if len(pt) != 2 {
			return fmt.Sprintf("point %d must be [x, y], has %d numbers", i, len(pt))
		}
	}
	return ""
}

// perimeterErrors checks the camera's lines:, dwell: and perimeter:
// blocks; field names start with prefix ("cameras[0]." in edge.yaml), e.g.
// "cameras[0].lines[1].points".
func (cam CameraConfig) perimeterErrors(prefix string) []config.FieldError {
	var errs []config.FieldError
	reported := map[string]bool{}
	add := func(field, format string, args ...any) {
		reported[field] = true
		errs = append(errs, config.FieldError{Field: prefix + field, Msg: fmt.Sprintf(format, args...)})
	}
	dwellNames := map[string]bool{}
	for i, l := range cam.Lines {
		if msg := l.Points.pairProblem(); msg != "" {
			add(fmt.Sprintf("lines[%d].points", i), "%s", msg)
		}
		if len(l.Name) > maxRuleName {
			add(fmt.Sprintf("lines[%d].name", i), "at most %d characters", maxRuleName)
		}
	}
	for i, d := range cam.Dwell {
		f := fmt.Sprintf("dwell[%d]", i)
		if msg := d.Region.pairProblem(); msg != "" {
			add(f+".region", "%s", msg)
		}
		switch {
		case len(d.Name) > maxRuleName:
			add(f+".name", "at most %d characters", maxRuleName)
		case d.Name != "" && dwellNames[d.Name]:
			add(f+".name", "%q is used twice", d.Name)
		}
		dwellNames[d.Name] = true
		if d.Reach != 0 && d.Line == "" {
			add(f+".reach", "only goes with line:")
		}
	}
	if err := cam.PerimeterRules().Validate(); err != nil {
		for _, fe := range perimeterFieldErrors(err) {
			if !reported[fe.Field] && !reported[parentField(fe.Field)] {
				add(fe.Field, "%s", fe.Msg)
			}
		}
	}
	return errs
}

// perimeterFieldErrors splits streams/perimeter's joined validation
// error into field errors named as in edge.yaml ("lines[0].points: ..."
// becomes field "lines[0].points"; the tuning's "hysteresis" is
// "perimeter.hysteresis").
func perimeterFieldErrors(err error) []config.FieldError {
	var out []config.FieldError
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		field, msg, ok := strings.Cut(e.Error(), ": ")
		switch {
		case !ok:
			field, msg = "perimeter", e.Error()
		case strings.HasPrefix(field, "lines") || strings.HasPrefix(field, "dwell"):
		case field == "hysteresis":
			field = "perimeter.hysteresis"
		default:
			field, msg = "perimeter", e.Error()
		}
		out = append(out, config.FieldError{Field: field, Msg: msg})
	}
	if err != nil {
		walk(err)
	}
	return out
}

// parentField is "lines[0].points" for "lines[0].points[1]", and the
// field itself when it has no index at its end.
func parentField(f string) string {
	if i := strings.LastIndexByte(f, '['); i > 0 && strings.HasSuffix(f, "]") {
		return f[:i]
	}
	return f
}
