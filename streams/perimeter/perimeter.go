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
// or within Reach of a named line (either side, ends included), for
// After or longer: once per visit. Moving about inside does not reset
// the clock; leaving (or going unseen) for at most Config.LeaveGrace
// does not either, while a longer absence starts a new visit.
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
	// someone standing or dithering on the line within the band does not
	// fire again and again (one who steps clear of the band each way
	// does fire each way). Default 0.02.
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
	// MaxLinePoints and MaxRegionPoints bound a line's and a dwell
	// region's points.
	MaxLinePoints   = 32
	MaxRegionPoints = 64
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
	if !(c.Hysteresis >= 0 && c.Hysteresis <= 0.2) {
		bad("hysteresis: %v is outside 0..0.2", c.Hysteresis)
	}
	if c.Coast < 0 {
		bad("coast: %v is negative", c.Coast)
	}
	if c.LeaveGrace < 0 {
		bad("leave_grace: %v is negative", c.LeaveGrace)
	}
	names := map[string]bool{}
	for i, l := range c.Lines {
		errs = append(errs, validateLine(i, l, names))
	}
	dwellNames := map[string]bool{}
	for i, d := range c.Dwells {
		errs = append(errs, validateDwell(i, d, names, dwellNames))
	}
	return errors.Join(errs...)
}

// validateLine reports what is wrong with lines[i], recording its name
// in names.
func validateLine(i int, l Line, names map[string]bool) error {
	var errs []error
	if l.Name == "" {
		errs = append(errs, fmt.Errorf("lines[%d].name: empty", i))
	} else if names[l.Name] {
		errs = append(errs, fmt.Errorf("lines[%d].name: %q is used twice", i, l.Name))
	}
	names[l.Name] = true
	if len(l.Points) < 2 || len(l.Points) > MaxLinePoints {
		errs = append(errs, fmt.Errorf("lines[%d].points: want 2 to %d points, got %d", i, MaxLinePoints, len(l.Points)))
	}
	for j, p := range l.Points {
		if !inPicture(p) {
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

// inPicture reports a point inside the picture (0..1 both ways; NaN is
// not).
func inPicture(p motion.Point) bool { return p.X >= 0 && p.X <= 1 && p.Y >= 0 && p.Y <= 1 }

// validateDwell reports what is wrong with dwell[i]; lines holds the
// line names, dwells the dwell names so far (it records this one's).
func validateDwell(i int, d Dwell, lines, dwells map[string]bool) error {
	var errs []error
	if d.Name == "" {
		errs = append(errs, fmt.Errorf("dwell[%d].name: empty", i))
	} else if dwells[d.Name] {
		errs = append(errs, fmt.Errorf("dwell[%d].name: %q is used twice", i, d.Name))
	}
	dwells[d.Name] = true
	if d.After < time.Second {
		errs = append(errs, fmt.Errorf("dwell[%d].after: %v is below 1s", i, d.After))
	}
	switch {
	case len(d.Region) > 0 && d.Line != "":
		errs = append(errs, fmt.Errorf("dwell[%d]: give a region or a line, not both", i))
	case len(d.Region) > MaxRegionPoints:
		errs = append(errs, fmt.Errorf("dwell[%d].region: %d points, at most %d", i, len(d.Region), MaxRegionPoints))
	case len(d.Region) > 0:
		if err := d.Region.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("dwell[%d].region: %w", i, err))
		}
	case d.Line != "":
		if !lines[d.Line] {
			errs = append(errs, fmt.Errorf("dwell[%d].line: no line named %q", i, d.Line))
		}
		if !(d.Reach > 0 && d.Reach <= 0.5) {
			errs = append(errs, fmt.Errorf("dwell[%d].reach: %v is outside (0, 0.5]", i, d.Reach))
		}
	default:
		errs = append(errs, fmt.Errorf("dwell[%d]: give a region or a line", i))
	}
	return errors.Join(errs...)
}

// Track is an object followed from frame to frame. IDs start at 1 and
// are never reused by a watcher, Reset included. A coasting track (Seen
// false) reports the box, anchor and path of its last sighting.
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
	At        time.Time // the first frame it was seen on the new side
	// Box and Path are the track's when the crossing is reported: the
	// first frame past the hysteresis band, which may be later than At.
	Box  motion.Box
	Path []motion.Point // the track's path up to the crossing
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
	last   time.Time // the last frame's time
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
// Track IDs are not reused: tracks made after a Reset get new ones.
func (w *Watcher) Reset() {
	w.trk = tracker{coast: w.cfg.Coast, nextID: w.trk.nextID}
	w.last = time.Time{}
}

// Observe takes the confirmed boxes of one frame taken at at and returns
// the tracks (oldest first, coasting ones included) and what they
// crossed or completed. Boxes that are not finite, have no size or lie
// outside the picture are ignored. Frames come in time order; one
// stamped at the same instant as the one before is taken as it is (no
// time passes), while one stamped before it means the clock went back:
// the watcher forgets its tracks (as Reset) and starts afresh.
func (w *Watcher) Observe(at time.Time, boxes []motion.Box) Frame {
	if at.Before(w.last) {
		w.Reset()
	}
	w.last = at
	var f Frame
	for _, k := range w.trk.step(at, boxes) {
		if k.hit {
			w.judge(&f, k, at)
		}
		f.Tracks = append(f.Tracks, k.public())
	}
	return f
}

// judge checks a sighted track against the lines and dwell regions. A
// fragment (see FragmentMute) keeps its line state but reports no
// crossing while muted.
func (w *Watcher) judge(f *Frame, k *track, at time.Time) {
	muted := k.muted(at)
	for i := range w.lines {
		if c, ok := w.lines[i].observe(k, at, w.cfg.Hysteresis); ok && !muted {
			f.Crossings = append(f.Crossings, c)
		}
	}
	for i := range w.dwells {
		if l, ok := w.dwells[i].observe(k, at, w.cfg.LeaveGrace); ok {
			f.Loiters = append(f.Loiters, l)
		}
	}
}
