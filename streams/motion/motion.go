// Package motion finds moving objects in a camera's analysis frames (small
// gray pictures at a few frames per second) and turns them into events a
// guard can act on: an object must persist over several frames before an
// event starts, and the event ends when the scene has been quiet again.
package motion

import (
	"fmt"
	"image"
	"time"

	"gocv.io/x/gocv"
)

// Config tunes the detector. Zero values take the defaults below.
type Config struct {
	// History is how many analysed frames the background model remembers
	// (MOG2). At 5 fps, 100 frames ≈ 20 s: slow enough to keep a person
	// who stands still for a moment, fast enough to absorb a parked car.
	History int
	// VarThreshold is MOG2's squared Mahalanobis distance for "foreground".
	VarThreshold float64
	// MinArea is the smallest object, as a fraction of the frame area.
	MinArea float64
	// K of N: an object must be seen in K of the last N analysed frames.
	K, N int
	// Warmup is how long the background is only learned, after a start or
	// a reset, before any event can be raised.
	Warmup time.Duration
	// Cooldown is the quiet time after an event's end before a new event.
	Cooldown time.Duration
	// MaxEvent splits a very long event so that a guard gets a fresh
	// picture at least this often while motion continues.
	MaxEvent time.Duration
	// GlobalChange is the foreground fraction above which a frame counts as
	// a global change (lights, IR switch, camera moved), never as motion.
	GlobalChange float64
}

// Defaults fills zero fields.
func (c Config) Defaults() Config {
	if c.History == 0 {
		c.History = 100
	}
	if c.VarThreshold == 0 {
		c.VarThreshold = 25
	}
	if c.MinArea == 0 {
		c.MinArea = 0.002
	}
	if c.K == 0 {
		c.K = 3
	}
	if c.N == 0 {
		c.N = 5
	}
	if c.Warmup == 0 {
		c.Warmup = 3 * time.Second
	}
	if c.Cooldown == 0 {
		c.Cooldown = 2 * time.Second
	}
	if c.MaxEvent == 0 {
		c.MaxEvent = time.Minute
	}
	if c.GlobalChange == 0 {
		c.GlobalChange = 0.5
	}
	return c
}

// Validate reports the first impossible setting.
func (c Config) Validate() error {
	switch {
	case c.History < 0:
		return fmt.Errorf("history must be positive")
	case c.MinArea < 0 || c.MinArea >= 1:
		return fmt.Errorf("min_area must be a fraction of the frame between 0 and 1")
	case c.K < 0 || c.N < 0 || c.K > c.N || c.N > 64:
		return fmt.Errorf("persistence must be k of n with 1 ≤ k ≤ n ≤ 64")
	case c.GlobalChange < 0 || c.GlobalChange > 1:
		return fmt.Errorf("global_change must be between 0 and 1")
	}
	return nil
}

// Box is a bounding box in normalised coordinates (0..1).
type Box struct{ X, Y, W, H float64 }

// Event is a span of persistent motion.
type Event struct {
	Start time.Time // time of the first frame of the persistence window
	End   time.Time // zero while the event is open
	Boxes []Box     // objects in the frame that confirmed (or last extended) the event
	Zones []string
	Peak  float64   // largest foreground fraction seen
}

// Result is what one frame changed.
type Result struct {
	Objects []Box   // objects found in this frame
	Fore    float64 // foreground fraction of this frame
	Global  bool    // the frame was a global change, ignored as motion
	Started *Event  // an event began with this frame
	Ended   *Event  // an event ended with this frame
}

// Detector holds one camera's background model and event state. It is
// not safe for concurrent use; one goroutine owns it. Close releases the
// OpenCV memory the Go GC cannot see.
type Detector struct {
	cfg       Config
	mog       gocv.BackgroundSubtractorMOG2
	blurred   gocv.Mat
	fg        gocv.Mat
	kernel    gocv.Mat
	first     time.Time
	hits      []hit // ring of the last N frames
	pos       int
	open      *Event
	lastEnd   time.Time
	lastFrame time.Time
}

type hit struct {
	seen  bool
	at    time.Time
	boxes []Box
}

// New creates a detector; cfg is completed with defaults.
func New(cfg Config) (*Detector, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("motion: %w", err)
	}
	return &Detector{
		cfg:     cfg,
		mog:     gocv.NewBackgroundSubtractorMOG2WithParams(cfg.History, cfg.VarThreshold, true),
		blurred: gocv.NewMat(),
		fg:      gocv.NewMat(),
		kernel:  gocv.GetStructuringElement(gocv.MorphEllipse, image.Pt(3, 3)),
		hits:    make([]hit, cfg.N),
	}, nil
}

// Close frees the OpenCV objects.
func (d *Detector) Close() {
	d.mog.Close()
	d.blurred.Close()
	d.fg.Close()
	d.kernel.Close()
}

// Reset forgets the background and any open event, e.g. after the camera
// was away: the scene may have changed and the gap holds no frames.
func (d *Detector) Reset() *Event {
	ended := d.closeEvent(d.lastFrame)
	d.mog.Close()
	d.mog = gocv.NewBackgroundSubtractorMOG2WithParams(d.cfg.History, d.cfg.VarThreshold, true)
	d.first = time.Time{}
	for i := range d.hits {
		d.hits[i] = hit{}
	}
	return ended
}

// Process analyses one 8-bit gray frame taken at t.
func (d *Detector) Process(gray gocv.Mat, t time.Time) Result {
	if d.first.IsZero() {
		d.first = t
	}
	d.lastFrame = t
	var res Result
	gocv.GaussianBlur(gray, &d.blurred, image.Pt(5, 5), 0, 0, gocv.BorderDefault)
	d.mog.Apply(d.blurred, &d.fg)
	// MOG2 marks shadows 127 and foreground 255: keep foreground only.
	gocv.Threshold(d.fg, &d.fg, 200, 255, gocv.ThresholdBinary)
	gocv.MorphologyEx(d.fg, &d.fg, gocv.MorphOpen, d.kernel)
	gocv.Dilate(d.fg, &d.fg, d.kernel)

	area := float64(gray.Rows() * gray.Cols())
	res.Fore = float64(gocv.CountNonZero(d.fg)) / area
	learning := t.Sub(d.first) < d.cfg.Warmup
	if res.Fore > d.cfg.GlobalChange {
		res.Global = true
	} else if !learning {
		res.Objects = d.objects(gray.Cols(), gray.Rows())
	}
	d.record(hit{seen: len(res.Objects) > 0, at: t, boxes: res.Objects})
	if d.open != nil && res.Fore > d.open.Peak {
		d.open.Peak = res.Fore
	}
	d.step(t, &res)
	return res
}

func (d *Detector) objects(w, h int) []Box {
	contours := gocv.FindContours(d.fg, gocv.RetrievalExternal, gocv.ChainApproxSimple)
	defer contours.Close()
	minArea := d.cfg.MinArea * float64(w*h)
	var boxes []Box
	for i := 0; i < contours.Size(); i++ {
		c := contours.At(i)
		r := gocv.BoundingRect(c)
		if float64(r.Dx()*r.Dy()) < minArea || gocv.ContourArea(c) < minArea/2 {
			continue
		}
		boxes = append(boxes, Box{
			X: float64(r.Min.X) / float64(w), Y: float64(r.Min.Y) / float64(h),
			W: float64(r.Dx()) / float64(w), H: float64(r.Dy()) / float64(h),
		})
	}
	return boxes
}

func (d *Detector) record(h hit) {
	d.hits[d.pos] = h
	d.pos = (d.pos + 1) % len(d.hits)
}

// step advances the event state machine after a frame was recorded.
func (d *Detector) step(t time.Time, res *Result) {
	seen, first := 0, time.Time{}
	for i := range d.hits {
		h := d.hits[(d.pos+i)%len(d.hits)] // oldest first
		if h.seen {
			seen++
			if first.IsZero() {
				first = h.at
			}
		}
	}
	switch {
	case d.open == nil:
		if seen >= d.cfg.K && (d.lastEnd.IsZero() || t.Sub(d.lastEnd) >= d.cfg.Cooldown) {
			d.open = &Event{Start: first, Boxes: res.Objects, Peak: res.Fore}
			ev := *d.open
			res.Started = &ev
		}
	case seen == 0:
		res.Ended = d.closeEvent(t)
	case t.Sub(d.open.Start) >= d.cfg.MaxEvent:
		// Split: close this one and open the next at once, so a long
		// intrusion yields a fresh picture instead of one stale alert.
		res.Ended = d.closeEvent(t)
		d.lastEnd = time.Time{}
		d.open = &Event{Start: t, Boxes: res.Objects, Peak: res.Fore}
		ev := *d.open
		res.Started = &ev
	default:
		if len(res.Objects) > 0 {
			d.open.Boxes = res.Objects
		}
	}
}

func (d *Detector) closeEvent(t time.Time) *Event {
	if d.open == nil {
		return nil
	}
	ev := *d.open
	ev.End = t
	d.open = nil
	d.lastEnd = t
	return &ev
}

// Foreground is the last frame's cleaned foreground mask (255 = moving),
// at analysis size. It belongs to the detector and changes on the next
// Process; callers must not close it.
func (d *Detector) Foreground() gocv.Mat { return d.fg }

// Flush ends the open event, if any, at the last frame (end of a file).
func (d *Detector) Flush() *Event { return d.closeEvent(d.lastFrame) }
