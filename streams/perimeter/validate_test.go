package perimeter

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/streams/motion"
)

// TestValidate: every bad setting is reported, naming its field; a
// good configuration passes.
func TestValidate(t *testing.T) {
	nan := math.NaN()
	good := func() Config {
		return Config{
			Lines: []Line{
				{Name: "wall", Points: []motion.Point{pt(0.1, 0.5), pt(0.9, 0.5)}, Direction: In},
				{Name: "gate", Points: []motion.Point{pt(0.2, 0.2), pt(0.3, 0.4), pt(0.2, 0.6)}, Direction: Both},
			},
			Dwells: []Dwell{
				{Name: "yard", Region: square, After: 10 * time.Second},
				{Name: "by the wall", Line: "wall", Reach: 0.05, After: 5 * time.Second},
			},
		}
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("empty config: %v", err)
	}
	cases := []struct {
		name string
		edit func(c *Config)
		want []string
	}{
		{"one point", func(c *Config) { c.Lines[1].Points = c.Lines[1].Points[:1] }, []string{"lines[1].points: want 2 to 32"}},
		{"too many points", func(c *Config) { c.Lines[1].Points = make([]motion.Point, 33) }, []string{"lines[1].points: want 2 to 32"}},
		{"point outside", func(c *Config) { c.Lines[0].Points[1].X = 1.5 }, []string{"lines[0].points[1]:"}},
		{"NaN point", func(c *Config) { c.Lines[1].Points[2].Y = nan }, []string{"lines[1].points[2]:"}},
		{"too short", func(c *Config) { c.Lines[0].Points[1] = pt(0.11, 0.5) }, []string{"lines[0].points: the line is too short"}},
		{"no name", func(c *Config) { c.Lines[1].Name = "" }, []string{"lines[1].name: empty"}},
		{"same name", func(c *Config) { c.Lines[1].Name = "wall" }, []string{`lines[1].name: "wall" is used twice`}},
		{"direction", func(c *Config) { c.Lines[0].Direction = "" }, []string{"lines[0].direction"}},
		{"too many lines", func(c *Config) { c.Lines = make([]Line, MaxLines+1) }, []string{"lines: 17 lines"}},
		{"hysteresis", func(c *Config) { c.Hysteresis = 0.3 }, []string{"hysteresis:"}},
		{"NaN hysteresis", func(c *Config) { c.Hysteresis = nan }, []string{"hysteresis:"}},
		{"coast", func(c *Config) { c.Coast = -time.Second }, []string{"coast: -1s"}},
		{"leave grace", func(c *Config) { c.LeaveGrace = -time.Second }, []string{"leave_grace: -1s"}},
		{"after", func(c *Config) { c.Dwells[0].After = time.Second / 2 }, []string{"dwell[0].after: 500ms"}},
		{"dwell name", func(c *Config) { c.Dwells[1].Name = "" }, []string{"dwell[1].name: empty"}},
		{"dwell same name", func(c *Config) { c.Dwells[1].Name = "yard" }, []string{`dwell[1].name: "yard" is used twice`}},
		{"region", func(c *Config) { c.Dwells[0].Region = square[:2] }, []string{"dwell[0].region:"}},
		{"region outside", func(c *Config) { c.Dwells[0].Region = motion.Polygon{pt(0, 0), pt(2, 0), pt(0, 1)} }, []string{"dwell[0].region:"}},
		{"region too big", func(c *Config) { c.Dwells[0].Region = make(motion.Polygon, 65) }, []string{"dwell[0].region: 65 points"}},
		{"both", func(c *Config) { c.Dwells[0].Line = "wall" }, []string{"dwell[0]: give a region or a line, not both"}},
		{"neither", func(c *Config) { c.Dwells[0].Region = nil }, []string{"dwell[0]: give a region or a line"}},
		{"unknown line", func(c *Config) { c.Dwells[1].Line = "fence" }, []string{`dwell[1].line: no line named "fence"`}},
		{"reach", func(c *Config) { c.Dwells[1].Reach = 0 }, []string{"dwell[1].reach:"}},
		{"NaN reach", func(c *Config) { c.Dwells[1].Reach = nan }, []string{"dwell[1].reach:"}},
		{"several at once", func(c *Config) { c.Lines[0].Direction = "up"; c.Dwells[1].After = 0 },
			[]string{"lines[0].direction", "dwell[1].after"}},
	}
	for _, c := range cases {
		cfg := good()
		cfg.Lines = append([]Line(nil), cfg.Lines...)
		for i := range cfg.Lines {
			cfg.Lines[i].Points = append([]motion.Point(nil), cfg.Lines[i].Points...)
		}
		c.edit(&cfg)
		err := cfg.Validate()
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", c.name, err, w)
			}
		}
		if _, nerr := New(cfg); nerr == nil {
			t.Errorf("%s: New accepted it", c.name)
		}
	}
}

// TestEmptyAndDefaults: a camera with nothing to watch is Empty; zero
// settings take the defaults, set ones are kept.
func TestEmptyAndDefaults(t *testing.T) {
	if !(Config{}).Empty() || oneLine(Both, pt(0.1, 0.5), pt(0.9, 0.5)).Empty() ||
		(Config{Dwells: []Dwell{{Name: "yard", Region: square, After: time.Second}}}).Empty() {
		t.Error("Empty")
	}
	d := Config{}.Defaults()
	if d.Hysteresis != DefaultHysteresis || d.Coast != DefaultCoast || d.LeaveGrace != DefaultLeaveGrace {
		t.Errorf("defaults %+v", d)
	}
	if d := (Config{Hysteresis: 0.05, Coast: 2 * time.Second, LeaveGrace: time.Second}).Defaults(); d.Hysteresis != 0.05 || d.Coast != 2*time.Second || d.LeaveGrace != time.Second {
		t.Errorf("set values overridden: %+v", d)
	}
}
