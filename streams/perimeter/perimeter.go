// Package perimeter turns a camera's confirmed moving objects into what a
// wall needs watched: someone crossing a line (a tripwire), and in which
// direction, and someone lingering in a region or near a line.
//
// It follows the boxes motion confirms (motion.Result.Tracked) frame to
// frame with identities of its own (tracker.go), so that a person keeps
// one track through a short occlusion, and judges each track's anchor —
// the bottom centre of its box, where it stands — against the lines
// (lines.go) and dwell regions (dwell.go). It needs no OpenCV: every
// rule is tested on made-up tracks.
package perimeter

import (
	"errors"
	"fmt"
	"time"

	"github.com/vigil-perimeter/vigil/streams/motion"
)

// Direction is which crossings of a line count.
type Direction string

// A line's directions. Walking along the line from its first point to
// its last, In is a crossing from the left-hand side to the right-hand
// side (the side the setup page's arrow points to), Out the reverse.
const (
	In   Direction = "in"
	Out  Direction = "out"
	Both Direction = "both"
)

// Line is a tripwire: a polyline of two or more points, in normalised
// picture coordinates.
type Line struct {
	Name      string
	Points    []motion.Point
	Direction Direction
}

// Dwell raises a loitering event for an object that stays in a region,
// or within Reach of a named line, for After or longer. Moving about
// inside does not reset the clock; leaving for less than
// Config.LeaveGrace does not either.
type Dwell struct {
	Name   string
	Region motion.Polygon // the area, or
	Line   string         // the line whose band (Reach either side) is the area
	Reach  float64        // normalised distance from Line
	After  time.Duration
}

// Config is a camera's lines and dwell regions. Zero fields take the
// defaults below.
type Config struct {
	Lines  []Line
	Dwells []Dwell
	// Hysteresis is how far (normalised) past a line the anchor must get
	// before a crossing counts, and how far back before the next one can:
	// someone standing on the line does not fire again and again.
	// Default 0.02.
	Hysteresis float64
	// Coast is how long a track outlives its last sighting, predicted
	// along its way (an occlusion by a post, a passing car). Default 1 s.
	Coast time.Duration
	// LeaveGrace: an object that leaves a dwell region for less than this
	// keeps its time there. Default 2 s.
	LeaveGrace time.Duration
}

// Defaults.
const (
	DefaultHysteresis = 0.02
	DefaultCoast      = time.Second
	DefaultLeaveGrace = 2 * time.Second
	// MaxLines and MaxDwells bound a camera's configuration.
	MaxLines  = 16
	MaxDwells = 16
)

// Defaults fills zero fields.
func (c Config) Defaults() Config {
	if c.Hysteresis == 0 {
		c.Hysteresis = DefaultHysteresis
	}
	if c.Coast == 0 {
		c.Coast = DefaultCoast
	}
	if c.LeaveGrace == 0 {
		c.LeaveGrace = DefaultLeaveGrace
	}
	return c
}

// Empty reports a camera with no line and no dwell region.
func (c Config) Empty() bool { return len(c.Lines) == 0 && len(c.Dwells) == 0 }

// Validate reports every impossible setting, each naming its field
// ("lines[0].points: ...").
func (c Config) Validate() error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	if len(c.Lines) > MaxLines {
		bad("lines: %d lines, at most %d", len(c.Lines), MaxLines)
	}
	if len(c.Dwells) > MaxDwells {
		bad("dwell: %d regions, at most %d", len(c.Dwells), MaxDwells)
	}
	if c.Hysteresis < 0 || c.Hysteresis > 0.2 {
		bad("hysteresis: %v is outside 0..0.2", c.Hysteresis)
	}
	if c.Coast < 0 || c.LeaveGrace < 0 {
		bad("coast, leave_grace: negative")
	}
	names := map[string]bool{}
	for i, l := range c.Lines {
		errs = append(errs, validateLine(i, l, names))
	}
	for i, d := range c.Dwells {
		errs = append(errs, validateDwell(i, d, names))
	}
	return errors.Join(errs...)
}

func validateLine(i int, l Line, names map[string]bool) error {
	var errs []error
	if l.Name == "" {
		errs = append(errs, fmt.Errorf("lines[%d].name: empty", i))
	} else if names[l.Name] {
		errs = append(errs, fmt.Errorf("lines[%d].name: %q is used twice", i, l.Name))
	}
	names[l.Name] = true
	if len(l.Points) < 2 || len(l.Points) > 32 {
		errs = append(errs, fmt.Errorf("lines[%d].points: want 2 to 32 points, got %d", i, len(l.Points)))
	}
	for j, p := range l.Points {
		if p.X < 0 || p.X > 1 || p.Y < 0 || p.Y > 1 {
			errs = append(errs, fmt.Errorf("lines[%d].points[%d]: (%v, %v) is outside the picture (0..1)", i, j, p.X, p.Y))
		}
	}
	if length(l.Points) < 0.02 {
		errs = append(errs, fmt.Errorf("lines[%d].points: the line is too short to cross", i))
	}
	switch l.Direction {
	case In, Out, Both:
	default:
		errs = append(errs, fmt.Errorf("lines[%d].direction: want in, out or both, got %q", i, l.Direction))
	}
	return errors.Join(errs...)
}

func validateDwell(i int, d Dwell, names map[string]bool) error {
	var errs []error
	if d.Name == "" {
		errs = append(errs, fmt.Errorf("dwell[%d].name: empty", i))
	}
	if d.After < time.Second {
		errs = append(errs, fmt.Errorf("dwell[%d].after: %v is below 1s", i, d.After))
	}
	switch {
	case len(d.Region) > 0 && d.Line != "":
		errs = append(errs, fmt.Errorf("dwell[%d]: give a region or a line, not both", i))
	case len(d.Region) > 0:
		if err := d.Region.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("dwell[%d].region: %w", i, err))
		}
	case d.Line != "":
		if !names[d.Line] {
			errs = append(errs, fmt.Errorf("dwell[%d].line: no line named %q", i, d.Line))
		}
		if d.Reach <= 0 || d.Reach > 0.5 {
			errs = append(errs, fmt.Errorf("dwell[%d].reach: %v is outside (0, 0.5]", i, d.Reach))
		}
	default:
		errs = append(errs, fmt.Errorf("dwell[%d]: give a region or a line", i))
	}
	return errors.Join(errs...)
}

// Track is an object followed from frame to frame.
type Track struct {
	ID     uint64
	Box    motion.Box
	Anchor motion.Point   // bottom centre of Box
	Path   []motion.Point // recent anchors, oldest first (a bounded tail)
	Seen   bool           // sighted in this frame (else coasting)
}

// Crossing is a track crossing a line.
type Crossing struct {
	Line      string
	Direction Direction // In or Out: the way it went
	Track     uint64
	At        time.Time // the first frame on the new side
	Box       motion.Box
	Path      []motion.Point // the track's path up to the crossing
}

// Loiter is a track that stayed in a dwell region for its time.
type Loiter struct {
	Dwell string
	Track uint64
	Since time.Time // when it entered
	At    time.Time // when it had stayed Dwell.After
	Box   motion.Box
	Path  []motion.Point
}

// Frame is what one frame changed.
type Frame struct {
	Tracks    []Track
	Crossings []Crossing
	Loiters   []Loiter
}

// Watcher follows one camera's objects. One goroutine owns it.
type Watcher struct {
	cfg    Config
	lines  []line
	dwells []dwellArea
	trk    tracker
}

// New makes a watcher; cfg is completed with defaults.
func New(cfg Config) (*Watcher, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("perimeter: %w", err)
	}
	w := &Watcher{cfg: cfg, trk: tracker{coast: cfg.Coast}}
	for i, l := range cfg.Lines {
		ln := newLine(l)
		ln.idx = i
		w.lines = append(w.lines, ln)
	}
	for i, d := range cfg.Dwells {
		a := newDwellArea(d, w.lines)
		a.idx = i
		w.dwells = append(w.dwells, a)
	}
	return w, nil
}

// Reset forgets every track (a new picture size, a relearned scene).
func (w *Watcher) Reset() { w.trk = tracker{coast: w.cfg.Coast} }

// Observe takes the confirmed boxes of one frame taken at at and returns
// the tracks and what they crossed or completed.
func (w *Watcher) Observe(at time.Time, boxes []motion.Box) Frame {
	var f Frame
	for _, k := range w.trk.step(at, boxes) {
		if k.seen == at {
			for i := range w.lines {
				if c, ok := w.lines[i].observe(k, at, w.cfg.Hysteresis); ok {
					f.Crossings = append(f.Crossings, c)
				}
			}
			for i := range w.dwells {
				if l, ok := w.dwells[i].observe(k, at, w.cfg.LeaveGrace); ok {
					f.Loiters = append(f.Loiters, l)
				}
			}
		}
		f.Tracks = append(f.Tracks, k.public(at))
	}
	return f
}
