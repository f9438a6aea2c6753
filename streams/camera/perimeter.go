package camera

import (
	"fmt"
	"image"
	"image/color"
	"time"

	"gocv.io/x/gocv"

	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/streams/perimeter"
)

// Perimeter event kinds (PerimeterEvent.Kind).
const (
	PerimeterCrossing = "crossing" // a tripwire was crossed
	PerimeterLoiter   = "loiter"   // someone stayed in a dwell region
)

// PerimeterEvent reports a line crossed or a dwell time reached, with
// the picture of the frame that showed it, the object's path, its box
// and (for a crossing) the line drawn on it.
type PerimeterEvent struct {
	Camera string
	Kind   string // PerimeterCrossing or PerimeterLoiter
	// Name is the line's (crossing) or the dwell region's (loiter) name.
	Name string
	// Direction is the way a crossing went (perimeter.In or Out); empty
	// for a loiter.
	Direction perimeter.Direction
	Track     uint64 // the object's track, stable while it is followed
	// Time is, for a crossing, the time of the first frame on the new
	// side; for a loiter, when the object had stayed the dwell time.
	Time time.Time
	// Since is when a loitering object entered the region (zero for a
	// crossing).
	Since        time.Time
	Box          motion.Box     // the object, normalised
	Path         []motion.Point // its anchors (bottom centres), oldest first, normalised
	TimeSource   string
	Snapshot     []byte // JPEG with path, box and line drawn; nil if it failed
	SnapshotTime time.Time
}

// Colours of what perimeter snapshots show (RGBA; gocv draws them in
// BGR order into the BGR picture).
var (
	pathColour = color.RGBA{R: 255, G: 220, B: 0, A: 255} // yellow
	boxColour  = color.RGBA{R: 255, G: 40, B: 40, A: 255} // red
	lineColour = color.RGBA{R: 0, G: 200, B: 255, A: 255} // sky blue
	areaColour = color.RGBA{R: 255, G: 0, B: 255, A: 255} // magenta
)

// SetPerimeter replaces the analyzer's lines and dwell regions. The
// tracks start over (a new Watcher); an empty config switches perimeter
// analysis off.
func (a *Analyzer) SetPerimeter(p perimeter.Config) error {
	w, err := newWatcher(p)
	if err != nil {
		return err
	}
	a.perim.w, a.cfg.Perimeter = w, p
	return nil
}

// perimeterSide is the analyser's perimeter: the camera's own watcher
// (nil without lines and dwell regions) and an installer's draft while
// it is previewed. The analysis goroutine owns it.
type perimeterSide struct {
	w     *perimeter.Watcher
	draft *draftWatcher
}

// newWatcher makes the watcher for p, nil when p is Empty.
func newWatcher(p perimeter.Config) (*perimeter.Watcher, error) {
	if p.Empty() {
		return nil, nil
	}
	return perimeter.New(p)
}

// reset forgets every track: the motion detector relearned the scene,
// so its boxes start over too.
func (ps *perimeterSide) reset() {
	if ps.draft != nil {
		ps.draft.w.Reset()
	}
	if ps.w != nil {
		ps.w.Reset()
	}
}

// observe follows the frame's confirmed objects (after motion and
// tamper) and withholds crossings and loiters exactly when motion's
// Started is withheld: on an obstructed or garbled picture. A draft
// being previewed is judged beside.
func (ps *perimeterSide) observe(t time.Time, f *Frame) {
	ps.observeDraft(t, f)
	if ps.w == nil {
		return
	}
	if f.Motion.Global {
		// The motion detector forgot its tracks with the light.
		ps.w.Reset()
	}
	f.Perimeter = ps.w.Observe(t, f.Motion.Tracked)
	if f.Tamper.Obstructed || f.Garbled {
		f.Perimeter.Crossings, f.Perimeter.Loiters = nil, nil
	}
}

// reportPerimeter sends the frame's crossings and loiters to the parent,
// all with one snapshot of the picture (shot, if the frame's motion event
// made one already), each with its own drawing. A frame without any
// costs nothing.
func (w *analysis) reportPerimeter(au streams.AccessUnit, pf perimeter.Frame, shot []byte) {
	if len(pf.Crossings) == 0 && len(pf.Loiters) == 0 {
		return
	}
	c := w.c
	base, at := shot, au.Time
	if base == nil {
		base, at = w.snapshot(au)
	}
	cfg := w.an.cfg.Perimeter
	for _, x := range pf.Crossings {
		ev := PerimeterEvent{Camera: c.cfg.ID, Kind: PerimeterCrossing, Name: x.Line, Direction: x.Direction, Track: x.Track,
			Time: x.At, Box: x.Box, Path: x.Path, TimeSource: au.TimeSource}
		ev.Snapshot, ev.SnapshotTime = w.drawn(base, at, cfg, ev)
		c.log.Info("perimeter line crossed", "line", x.Line, "direction", x.Direction, "track", x.Track, "at", x.At)
		c.parent.OnPerimeter(ev)
	}
	for _, l := range pf.Loiters {
		ev := PerimeterEvent{Camera: c.cfg.ID, Kind: PerimeterLoiter, Name: l.Dwell, Track: l.Track,
			Time: l.At, Since: l.Since, Box: l.Box, Path: l.Path, TimeSource: au.TimeSource}
		ev.Snapshot, ev.SnapshotTime = w.drawn(base, at, cfg, ev)
		c.log.Info("perimeter loitering", "dwell", l.Dwell, "track", l.Track, "since", l.Since, "at", l.At)
		c.parent.OnPerimeter(ev)
	}
}

// drawn is base with ev drawn on it; the plain picture if drawing fails,
// none if there is none.
func (w *analysis) drawn(base []byte, at time.Time, cfg perimeter.Config, ev PerimeterEvent) ([]byte, time.Time) {
	if base == nil {
		return nil, time.Time{}
	}
	jpg, err := drawPerimeter(base, cfg, ev)
	if err != nil {
		w.c.log.Warn("perimeter snapshot not drawn", "err", err)
		return base, at
	}
	return jpg, at
}

// drawPerimeter decodes a JPEG snapshot, draws the event's line (for a
// crossing) or dwell region (for a loiter), the object's path and its box,
// and encodes it again.
func drawPerimeter(jpg []byte, cfg perimeter.Config, ev PerimeterEvent) ([]byte, error) {
	img, err := gocv.IMDecode(jpg, gocv.IMReadColor)
	if err != nil {
		return nil, fmt.Errorf("decoding snapshot: %w", err)
	}
	defer img.Close()
	if img.Empty() {
		return nil, fmt.Errorf("decoding snapshot: not a picture")
	}
	w, h := img.Cols(), img.Rows()
	thick := max(2, w/320)
	switch ev.Kind {
	case PerimeterCrossing:
		for _, l := range cfg.Lines {
			if l.Name == ev.Name {
				polyline(&img, l.Points, w, h, false, lineColour, thick)
			}
		}
	case PerimeterLoiter:
		drawDwell(&img, cfg, ev.Name, w, h, thick)
	}
	polyline(&img, ev.Path, w, h, false, pathColour, thick)
	b := ev.Box
	r := image.Rect(px(b.X, w), px(b.Y, h), px(b.X+b.W, w), px(b.Y+b.H, h))
	gocv.Rectangle(&img, r, boxColour, thick)
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, img, []int{gocv.IMWriteJpegQuality, 85})
	if err != nil {
		return nil, fmt.Errorf("encoding snapshot: %w", err)
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...), nil
}

// drawDwell draws the named dwell region: its polygon, or the line whose
// band it is.
func drawDwell(img *gocv.Mat, cfg perimeter.Config, name string, w, h, thick int) {
	for _, d := range cfg.Dwells {
		if d.Name != name {
			continue
		}
		if len(d.Region) > 0 {
			polyline(img, d.Region, w, h, true, areaColour, thick)
		}
		for _, l := range cfg.Lines {
			if d.Line != "" && l.Name == d.Line {
				polyline(img, l.Points, w, h, false, areaColour, thick)
			}
		}
	}
}

// polyline draws normalised points on a w×h picture.
func polyline(img *gocv.Mat, pts []motion.Point, w, h int, closed bool, c color.RGBA, thick int) {
	if len(pts) == 0 {
		return
	}
	ip := make([]image.Point, len(pts))
	for i, p := range pts {
		ip[i] = image.Pt(px(p.X, w), px(p.Y, h))
	}
	if len(ip) == 1 {
		gocv.Circle(img, ip[0], thick, c, -1)
		return
	}
	pv := gocv.NewPointsVectorFromPoints([][]image.Point{ip})
	defer pv.Close()
	gocv.Polylines(img, pv, closed, c, thick)
}

// px is a normalised coordinate in pixels of a side n long.
func px(v float64, n int) int {
	return min(n-1, max(0, int(v*float64(n)+0.5)))
}
