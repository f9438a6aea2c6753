// Package motion finds moving objects in a camera's analysis frames (small
// gray pictures at a few frames per second) and turns them into events a
// guard can act on: an object must persist over several frames before an
// event starts, and the event ends when the scene has been quiet again.
//
// The pipeline, each step chosen by measurement on real footage (see
// BENCHMARKS.md, "Motion evaluation"):
//
//  1. MOG2 background subtraction without shadow detection, cleaned by a
//     small opening, dilation and closing: where the picture differs from
//     the learned scene.
//  2. Zones and masks: only foreground inside a zone and outside every mask
//     counts; each foreground region must reach its zone's minimum size.
//  3. A change test: a region must hold enough pixels that are unlike
//     anything within 2 px of them two analysed frames earlier. Leaves and
//     branches that sway find their own value nearby; a lamp switched on
//     changes the picture once and then stands still; a person or a car
//     keeps bringing new content. Someone too slow for that test still
//     counts once their region has travelled far enough from where it was
//     first seen.
//  4. Tracks: k-of-n persistence counts sightings of one object near where
//     it was last seen, so rain, snow or glints in different places do not
//     add up.
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
	// MinArea is the smallest object, as a fraction of the frame area; a
	// zone may set its own.
	MinArea float64
	// K of N: an object must be seen moving in K of the last N analysed
	// frames.
	K, N int
	// Warmup is how long the background is only learned, after a start or
	// a reset, before any event can be raised.
	Warmup time.Duration
	// Cooldown is the quiet time after an event's end before a new event.
	Cooldown time.Duration
	// MaxEvent splits a very long event so that a guard gets a fresh
	// picture at least this often while motion continues.
	MaxEvent time.Duration
	// GlobalChange is the foreground fraction above which a frame in which
	// nothing moves is reported as a global change (a light switched, the
	// IR filter flipped): Result.Global.
	GlobalChange float64
	// Zones are the watched areas; none means the whole picture, as one
	// zone named "all".
	Zones []Zone
	// Masks are areas where nothing ever counts as motion: tree crowns, a
	// road outside the wall, the camera's own clock overlay.
	Masks []Polygon
}

// Fixed parts of the pipeline (measured; see the package comment).
const (
	// changeLag is how many analysed frames back the change test looks:
	// 0.4 s at 5 fps, long enough for a walker to move on, short enough
	// that swaying leaves are still within reach of where they were.
	changeLag = 2
	// changeReach is how far (pixels at analysis size) the change test
	// looks for a pixel's value in the earlier frame.
	changeReach = 2
	// changeContrast is the grey-level margin of the change test at the
	// default sensitivity 0.5; it scales linearly to 0 at sensitivity 1
	// and to twice this at 0.
	changeContrast = 20
	// changeShare is the share of a zone's minimum object size that must
	// pass the change test.
	changeShare = 0.25
	// slowTravel is how far a region that fails the change test must have
	// travelled from where it was first seen to count as moving: this
	// fraction of the frame width, and at least half its own smaller side.
	slowTravel = 0.05
	// slowStep is the largest move between two analysed frames that
	// counts towards that travel (tracker.maxStep): 8 px at 320 px, against
	// a slow walker's 1–2 px per frame.
	slowStep = 0.025
)

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
	if len(c.Zones) == 0 {
		c.Zones = []Zone{{Name: AllZone, Points: Polygon{{0, 0}, {1, 0}, {1, 1}, {0, 1}}}}
	}
	zones := make([]Zone, len(c.Zones))
	for i, z := range c.Zones {
		if z.MinArea == 0 {
			z.MinArea = c.MinArea
		}
		if z.Sensitivity == 0 {
			z.Sensitivity = DefaultSensitivity
		}
		zones[i] = z
	}
	c.Zones = zones
	return c
}

// Validate reports the first impossible setting. Zone and mask problems
// name the zone or mask by index, e.g. "zones[1].points: ...".
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
	if err := ValidateZones(c.Zones); err != nil {
		return err
	}
	return ValidateMasks(c.Masks)
}

// Box is a bounding box in normalised coordinates (0..1).
type Box struct{ X, Y, W, H float64 }

// Event is a span of persistent motion.
type Event struct {
	Start time.Time // time of the first frame of the persistence window
	End   time.Time // zero while the event is open
	Boxes []Box     // objects in the frame that confirmed (or last extended) the event
	Zones []string  // zones the event's objects touched, in configuration order
	Peak  float64   // largest foreground fraction seen
}

// Result is what one frame changed.
type Result struct {
	Objects []Box // moving objects found in this frame
	// Tracked are the objects of this frame that confirmed tracks took
	// (tracks that once had enough sightings in the window to make an
	// event, and are still seen, moving now or not: someone who stops to
	// linger stays an object), each object on its own: a track's box is the
	// union of what it took and grows over a queue of cars. Line
	// crossing and dwell follow these.
	Tracked []Box
	Fore    float64 // foreground fraction of the watched area
	Global  bool    // most of the picture changed but nothing in it moves (lighting)
	Started *Event  // an event began with this frame
	Ended   *Event  // an event ended with this frame
}

// Detector holds one camera's background model and event state. It is
// not safe for concurrent use; one goroutine owns it. Close releases the
// OpenCV memory the Go GC cannot see.
type Detector struct {
	cfg Config
	mog gocv.BackgroundSubtractorMOG2
	ras *rasters // zones and masks at the current frame size

	blurred gocv.Mat
	fg      gocv.Mat
	raw     gocv.Mat // fg before zones and masks, kept while keepRaw > 0 (Preview)
	keepRaw int
	rawAt   time.Time  // frame time raw was kept for
	past    []gocv.Mat // the last changeLag+1 blurred frames, a ring
	npast   int        // frames put into past since the last relearn
	lo, hi  gocv.Mat   // darkest and brightest of the earlier frame near each pixel
	excess  gocv.Mat   // how far each pixel lies outside [lo, hi]
	tmp     gocv.Mat
	open3   gocv.Mat // structuring elements
	reach   gocv.Mat
	labels  gocv.Mat
	stats   gocv.Mat
	cents   gocv.Mat

	first     time.Time // first frame since start or reset (warm-up)
	trk       tracker
	sinceSeen int // analysed frames since the last confirmed sighting
	open      *Event
	openZones uint64
	lastEnd   time.Time
	lastFrame time.Time
}

// New creates a detector; cfg is completed with defaults.
func New(cfg Config) (*Detector, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("motion: %w", err)
	}
	d := &Detector{cfg: cfg, trk: tracker{n: cfg.N}}
	d.trk.slow = d.slowButSteady
	d.mog = d.newModel()
	for _, m := range []*gocv.Mat{&d.blurred, &d.fg, &d.raw, &d.lo, &d.hi, &d.excess, &d.tmp, &d.labels, &d.stats, &d.cents} {
		*m = gocv.NewMat()
	}
	d.past = make([]gocv.Mat, changeLag+1)
	for i := range d.past {
		d.past[i] = gocv.NewMat()
	}
	d.open3 = gocv.GetStructuringElement(gocv.MorphEllipse, image.Pt(3, 3))
	d.reach = gocv.GetStructuringElement(gocv.MorphRect, image.Pt(2*changeReach+1, 2*changeReach+1))
	return d, nil
}

// newModel makes the background model. Shadow detection stays off: on
// gray frames MOG2 calls anything up to 50 % darker than the background a
// shadow, a dark coat in front of a bright wall included (it halved the
// pixel recall on CDnet highway, see BENCHMARKS.md).
func (d *Detector) newModel() gocv.BackgroundSubtractorMOG2 {
	return gocv.NewBackgroundSubtractorMOG2WithParams(d.cfg.History, d.cfg.VarThreshold, false)
}

// Close frees the OpenCV objects.
func (d *Detector) Close() {
	d.mog.Close()
	if d.ras != nil {
		d.ras.close()
	}
	for _, m := range d.past {
		m.Close()
	}
	for _, m := range []*gocv.Mat{&d.blurred, &d.fg, &d.raw, &d.lo, &d.hi, &d.excess, &d.tmp, &d.open3, &d.reach, &d.labels, &d.stats, &d.cents} {
		m.Close()
	}
}

// Reset forgets the background and any open event, e.g. after the camera
// was away: the scene may have changed and the gap holds no frames.
func (d *Detector) Reset() *Event {
	ended := d.closeEvent(d.lastFrame)
	d.relearn()
	return ended
}

// relearn starts a new background model, forgets what was tracked and
// starts the warm-up again.
func (d *Detector) relearn() {
	d.mog.Close()
	d.mog = d.newModel()
	d.trk.reset()
	d.npast = 0
	d.first = time.Time{}
}

// Foreground is the last frame's foreground mask (255 = differs from the
// learned scene, analysis size), inside the zones and outside the masks.
// It belongs to the detector and changes on the next Process; callers must
// not close it.
func (d *Detector) Foreground() gocv.Mat { return d.fg }

// Flush ends the open event, if any, at the last frame (end of a file).
func (d *Detector) Flush() *Event { return d.closeEvent(d.lastFrame) }

// Process analyses one 8-bit gray frame taken at t.
func (d *Detector) Process(gray gocv.Mat, t time.Time) Result {
	var res Result
	if w, h := gray.Cols(), gray.Rows(); d.ras == nil || d.ras.w != w || d.ras.h != h {
		// A new frame size is a new picture: draw the zones for it and
		// learn it afresh.
		if d.ras != nil {
			d.ras.close()
		}
		d.ras = newRasters(d.cfg.Zones, d.cfg.Masks, w, h)
		d.trk.maxStep = int(slowStep * float64(w))
		d.relearn()
	}
	if d.first.IsZero() {
		d.first = t
	}
	d.lastFrame = t
	gocv.GaussianBlur(gray, &d.blurred, image.Pt(5, 5), 0, 0, gocv.BorderDefault)
	d.blurred.CopyTo(&d.past[d.npast%len(d.past)])
	d.npast++
	d.mog.Apply(d.blurred, &d.fg)
	// Drop specks, grow what is left by a pixel and close small gaps, so
	// one person is one region (measured: +0.01 pixel F on highway).
	gocv.MorphologyEx(d.fg, &d.fg, gocv.MorphOpen, d.open3)
	gocv.Dilate(d.fg, &d.fg, d.open3)
	gocv.MorphologyEx(d.fg, &d.fg, gocv.MorphClose, d.open3)
	if d.keepRaw > 0 {
		d.keepRaw--
		d.fg.CopyTo(&d.raw)
		d.rawAt = t
	}
	gocv.BitwiseAnd(d.fg, d.ras.watch, &d.fg)
	if d.ras.watched > 0 {
		res.Fore = float64(gocv.CountNonZero(d.fg)) / float64(d.ras.watched)
	}

	var objs []object
	if t.Sub(d.first) >= d.cfg.Warmup {
		objs = d.objects()
	}
	for _, o := range objs {
		if o.moved != 0 {
			res.Objects = append(res.Objects, d.ras.box(o.rect))
		}
	}
	if res.Fore > d.cfg.GlobalChange && len(res.Objects) == 0 && t.Sub(d.first) >= d.cfg.Warmup {
		// Most of the picture differs from the model but nothing in it
		// moves: the light changed (a lamp, a cloud, the IR switch). Start
		// the model from this picture rather than wait seconds for the old
		// one to fade, during which anyone walking in would merge with the
		// lit area into one picture-sized box.
		res.Global = true
		d.mog.Close()
		d.mog = d.newModel()
		d.mog.Apply(d.blurred, &d.tmp)
		d.trk.reset()
	}
	if d.open != nil && res.Fore > d.open.Peak {
		d.open.Peak = res.Fore
	}
	d.trk.step(objs, t)
	d.step(t, &res)
	return res
}

// slowButSteady reports whether a track that fails the change test has
// still travelled far enough, in small steps, to be a walker far away
// rather than a branch swaying in place.
func (d *Detector) slowButSteady(k *track) bool {
	need := max(int(slowTravel*float64(d.ras.w)), min(k.rect.Dx(), k.rect.Dy())/2)
	return k.travelled() >= need
}

// changed measures, per pixel, how far the frame lies outside the range of
// the frame changeLag frames earlier within changeReach pixels (0: the old
// frame had this value nearby). It reports false until that frame exists.
func (d *Detector) changed() bool {
	if d.npast <= changeLag {
		return false
	}
	old := d.past[d.npast%len(d.past)] // the oldest in the ring
	gocv.Erode(old, &d.lo, d.reach)
	gocv.Dilate(old, &d.hi, d.reach)
	gocv.Subtract(d.lo, d.blurred, &d.excess) // saturates at 0
	gocv.Subtract(d.blurred, d.hi, &d.tmp)
	gocv.Max(d.excess, d.tmp, &d.excess)
	return true
}

// objects finds the foreground regions big enough for a zone they touch
// and says in which zones they pass the change test.
func (d *Detector) objects() []object {
	// 16-bit labels: a 320 px frame cannot hold 65535 regions after opening.
	n := gocv.ConnectedComponentsWithStatsWithParams(d.fg, &d.labels, &d.stats, &d.cents, 8, gocv.MatTypeCV16U, gocv.CCL_DEFAULT)
	if n <= 1 {
		return nil
	}
	area := float64(d.ras.w * d.ras.h)
	smallest := 1.0
	for _, z := range d.cfg.Zones {
		smallest = min(smallest, z.MinArea)
	}
	cand, any := candidates(d.stats, n, smallest*area/2)
	if !any {
		return nil
	}
	lab, err := d.labels.DataPtrUint16()
	if err != nil {
		panic(fmt.Sprintf("motion: labels: %v", err)) // a fresh Mat is always continuous
	}
	var excess []uint8
	if d.changed() {
		if excess, err = d.excess.DataPtrUint8(); err != nil {
			panic(fmt.Sprintf("motion: change test: %v", err))
		}
	}
	in, strong := zonePixels(lab, excess, cand, d.ras.zoneOf, d.cfg.Zones)
	return inZones(cand, in, strong, d.cfg.Zones, area)
}

// candidates reads the n labelled regions' boxes and areas from stats;
// regions under minArea pixels, too small for any zone, are left zero so
// that the pixel scan skips them. any: some region is a candidate.
func candidates(stats gocv.Mat, n int, minArea float64) (cand []object, any bool) {
	cand = make([]object, n)
	for i := 1; i < n; i++ {
		a := int(stats.GetIntAt(i, int(gocv.CC_STAT_AREA)))
		if float64(a) < minArea {
			continue
		}
		x, y := int(stats.GetIntAt(i, int(gocv.CC_STAT_LEFT))), int(stats.GetIntAt(i, int(gocv.CC_STAT_TOP)))
		w, h := int(stats.GetIntAt(i, int(gocv.CC_STAT_WIDTH))), int(stats.GetIntAt(i, int(gocv.CC_STAT_HEIGHT)))
		cand[i] = object{rect: image.Rect(x, y, x+w, y+h), area: a}
		any = true
	}
	return cand, any
}

// zonePixels counts, for each candidate region i and zone z, its pixels
// in the zone (in[i*len(zones)+z]) and those of them that pass the
// zone's change test (strong; none when excess is nil).
func zonePixels(lab []uint16, excess []uint8, cand []object, zoneOf []uint64, zones []Zone) (in, strong []int) {
	nz := len(zones)
	contrast := make([]uint8, nz)
	for z, zone := range zones {
		contrast[z] = uint8(changeContrast * 2 * (1 - zone.Sensitivity))
	}
	in = make([]int, len(cand)*nz)
	strong = make([]int, len(cand)*nz)
	for p, l := range lab {
		if l == 0 || cand[l].area == 0 {
			continue
		}
		bits := zoneOf[p]
		for z := 0; bits != 0; z, bits = z+1, bits>>1 {
			if bits&1 == 0 {
				continue
			}
			in[int(l)*nz+z]++
			if excess != nil && excess[p] > contrast[z] {
				strong[int(l)*nz+z]++
			}
		}
	}
	return in, strong
}

// inZones keeps the candidates big enough for a zone they touch, marking
// where they pass the change test; area is the frame's in pixels.
func inZones(cand []object, in, strong []int, zones []Zone, area float64) []object {
	nz := len(zones)
	var objs []object
	for i := 1; i < len(cand); i++ {
		o := cand[i]
		if o.area == 0 {
			continue
		}
		// The box must reach the zone's minimum size and the region half
		// of it, so thin but real objects (a person side on) count.
		boxArea := float64(o.rect.Dx() * o.rect.Dy())
		for z, zone := range zones {
			minPx := zone.MinArea * area
			if in[i*nz+z] == 0 || boxArea < minPx || float64(o.area) < minPx/2 {
				continue
			}
			o.zones |= 1 << z
			if float64(strong[i*nz+z]) >= changeShare*minPx {
				o.moved |= 1 << z
			}
		}
		if o.zones != 0 {
			objs = append(objs, o)
		}
	}
	return objs
}

// step advances the event state machine after a frame was tracked.
func (d *Detector) step(t time.Time, res *Result) {
	seenNow := false
	var boxes []Box
	var zones uint64
	first := t
	for _, k := range d.trk.tracks {
		k.confirmed = k.confirmed || len(k.hits) >= d.cfg.K
		if k.confirmed && k.last == d.trk.frame {
			for _, r := range k.parts {
				res.Tracked = append(res.Tracked, d.ras.box(r))
			}
		}
		if len(k.hits) < d.cfg.K {
			continue
		}
		if k.current(d.trk.frame) {
			seenNow = true
			boxes = append(boxes, d.ras.box(k.rect))
			zones |= k.zones()
		}
		if f := k.hits[0].at; f.Before(first) {
			first = f
		}
	}
	if seenNow {
		d.sinceSeen = 0
	} else {
		d.sinceSeen++
	}
	switch {
	case d.open == nil:
		if seenNow && (d.lastEnd.IsZero() || t.Sub(d.lastEnd) >= d.cfg.Cooldown) {
			d.openEvent(first, boxes, zones, res)
		}
	case d.sinceSeen >= d.cfg.N:
		res.Ended = d.closeEvent(t)
	case t.Sub(d.open.Start) >= d.cfg.MaxEvent:
		// Split: close this one and open the next at once, so a long
		// intrusion yields a fresh picture instead of one stale alert.
		res.Ended = d.closeEvent(t)
		d.lastEnd = time.Time{}
		d.openEvent(t, boxes, zones, res)
	case seenNow:
		d.open.Boxes = boxes
		d.openZones |= zones
		d.open.Zones = zoneNames(d.cfg.Zones, d.openZones)
	}
}

func (d *Detector) openEvent(start time.Time, boxes []Box, zones uint64, res *Result) {
	d.openZones = zones
	d.open = &Event{Start: start, Boxes: boxes, Zones: zoneNames(d.cfg.Zones, zones), Peak: res.Fore}
	ev := *d.open
	res.Started = &ev
}

// zoneNames names the zones whose bits are set.
func zoneNames(zones []Zone, bits uint64) []string {
	var names []string
	for i, z := range zones {
		if bits&(1<<i) != 0 {
			names = append(names, z.Name)
		}
	}
	return names
}

func (d *Detector) closeEvent(t time.Time) *Event {
	if d.open == nil {
		return nil
	}
	ev := *d.open
	ev.End = t
	d.open = nil
	d.lastEnd = t
	d.sinceSeen = 0
	return &ev
}
