// Package tamper tells when a camera has stopped seeing its scene: the lens
// covered or sprayed (covered), a light shone into it (blinded), the focus
// turned or the lens smeared (defocused), or the camera turned away
// (moved). It works on the same small gray analysis frames as motion
// detection. Covered and blinded are judged on the picture alone, so they
// work from the first frame; defocused and moved compare the picture with a
// reference of the camera's own scene, learned during a warm-up and
// refreshed slowly, only while nothing is wrong.
//
// Every condition must hold for a while before it starts and must be gone
// for a while before it clears, with separate thresholds to start and to
// clear (hysteresis), so a person walking past the lens or a flicker in the
// picture does not raise an alert.
package tamper

import (
	"fmt"
	"image"
	"math"
	"time"

	"gocv.io/x/gocv"
)

// Kind is a tamper condition. The names are the camera package's Tamper*
// constants, which carry them to alerts.
type Kind string

// Tamper conditions judged from the picture.
const (
	Covered   Kind = "covered"
	Blinded   Kind = "blinded"
	Defocused Kind = "defocused"
	Moved     Kind = "moved"
)

// kinds in order of precedence: a blinded picture is also flat, and a
// covered one matches nothing, so the first one found explains the others.
var kinds = [...]Kind{blinded: Blinded, covered: Covered, defocused: Defocused, moved: Moved}

// Indexes into kinds and Detector.conds.
const (
	blinded = iota
	covered
	defocused
	moved
)

// Config tunes the detector. Zero values take the defaults.
type Config struct {
	// Hold is how long a condition must last before it starts (default
	// 3 s): longer than a person or a bird passes in front of the lens.
	Hold time.Duration
	// Clear is how long the picture must be good again before the
	// condition clears (default 3 s).
	Clear time.Duration
	// Warmup is how long healthy frames are averaged into the reference
	// before defocused and moved are judged (default 5 s).
	Warmup time.Duration
	// Refresh is the time constant with which the reference follows the
	// scene while nothing is wrong (default 2 min): slow enough that a
	// camera turned away is never learned as normal, fast enough to follow
	// shadows, dusk and the switch to infrared.
	Refresh time.Duration
	// CoveredContrast and CoveredEdges: the picture is covered when its
	// contrast (standard deviation of the gray levels) is below
	// CoveredContrast (default 16) and its edge energy (mean gradient in
	// gray levels per pixel on an 80-pixel-wide copy, where sensor noise
	// averages out) is below CoveredEdges (default 2.5). It clears when
	// either is a quarter (contrast) or 60% (edges) above its threshold.
	CoveredContrast float64
	CoveredEdges    float64
	// BlindedShare: the picture is blinded when at least this share of its
	// pixels is saturated, at 250 or more (default 0.5); it clears below
	// 60% of that.
	BlindedShare float64
	// DefocusedRatio: the picture is defocused when its sharpness (fine
	// detail per unit of contrast) falls below this fraction of the
	// reference's (default 0.4); it clears above 1.5 times that.
	DefocusedRatio float64
	// MovedMatch: the camera has moved when less than this share of the
	// reference's textured cells still match the picture (default 0.35);
	// it clears at MovedMatch + 0.15.
	MovedMatch float64
}

// Defaults fills zero fields.
func (c Config) Defaults() Config {
	if c.Hold == 0 {
		c.Hold = 3 * time.Second
	}
	if c.Clear == 0 {
		c.Clear = 3 * time.Second
	}
	if c.Warmup == 0 {
		c.Warmup = 5 * time.Second
	}
	if c.Refresh == 0 {
		c.Refresh = 2 * time.Minute
	}
	if c.CoveredContrast == 0 {
		c.CoveredContrast = 16
	}
	if c.CoveredEdges == 0 {
		c.CoveredEdges = 2.5
	}
	if c.BlindedShare == 0 {
		c.BlindedShare = 0.5
	}
	if c.DefocusedRatio == 0 {
		c.DefocusedRatio = 0.4
	}
	if c.MovedMatch == 0 {
		c.MovedMatch = 0.35
	}
	return c
}

// Validate reports the first impossible setting.
func (c Config) Validate() error {
	switch {
	case c.Hold < 0 || c.Clear < 0 || c.Warmup < 0 || c.Refresh < 0:
		return fmt.Errorf("tamper hold, clear, warmup and refresh must not be negative")
	case c.CoveredContrast < 0 || c.CoveredContrast > 100:
		return fmt.Errorf("tamper covered_contrast must be between 0 and 100 gray levels")
	case c.CoveredEdges < 0 || c.CoveredEdges > 50:
		return fmt.Errorf("tamper covered_edges must be between 0 and 50 gray levels per pixel")
	case c.BlindedShare < 0 || c.BlindedShare > 1:
		return fmt.Errorf("tamper blinded_share must be a fraction between 0 and 1")
	case c.DefocusedRatio < 0 || c.DefocusedRatio >= 0.66:
		return fmt.Errorf("tamper defocused_ratio must be between 0 and 0.66 (it clears at 1.5 times that)")
	case c.MovedMatch < 0 || c.MovedMatch > 0.85:
		return fmt.Errorf("tamper moved_match must be a share between 0 and 0.85 (it clears 0.15 above)")
	}
	return nil
}

// Measures are what one frame showed.
type Measures struct {
	Mean      float64 // mean gray level, 0..255
	Contrast  float64 // standard deviation of the gray levels
	Edges     float64 // mean gradient on the 80-pixel-wide copy, gray levels per pixel
	Saturated float64 // share of pixels at 250 or more
	Sharpness float64 // standard deviation of the Laplacian per unit of contrast
	Focus     float64 // Sharpness over the reference's (1: as learned); 0 while learning
	Match     float64 // share of the reference's textured cells the picture still matches (1: same view); 0 while learning
}

// Event is a condition starting or clearing.
type Event struct {
	Kind    Kind
	Cleared bool
	// Since is when the change began: the first frame of the hold (or, for
	// a clear, of the good pictures) that confirmed it.
	Since time.Time
	// At is the frame that confirmed it.
	At time.Time
	// Value is the deciding measure at At (Contrast for covered, Saturated,
	// Focus, Match for the others).
	Value  float64
	Detail string
}

// Result is what one frame changed. It holds at most one started and one
// cleared event per kind.
type Result struct {
	Measures Measures
	// Learning: there is no reference yet, so defocused and moved are not
	// judged.
	Learning bool
	// Obstructed: covered or blinded is active after this frame. Nothing
	// in the picture can be trusted then, motion included.
	Obstructed bool
	Started    []Event
	Cleared    []Event
}

// verdict is one frame's judgement of one condition.
type verdict int

const (
	unknown verdict = iota // cannot be judged: keeps nothing pending
	good                   // past the clear threshold
	between                // between the thresholds: keeps what is pending
	bad                    // past the start threshold
)

// condition is the hysteresis state of one kind.
type condition struct {
	active bool
	since  time.Time // start of the pending change (to active, or back); zero if none
}

// Detector holds one camera's reference and condition state. One goroutine
// owns it; Close releases the OpenCV memory the Go GC cannot see.
type Detector struct {
	cfg Config

	// Scratch Mats reused for every frame.
	small, gx, gy, mag, lap, sat, mean, std gocv.Mat

	w, h      int // frame size the reference belongs to
	refEdges  []float32
	refSharp  float64
	learnFrom time.Time // first frame of the warm-up; zero before it
	learned   int       // frames averaged into the warm-up reference
	ready     bool

	last  time.Time
	conds [len(kinds)]condition
}

// New creates a detector; cfg is completed with defaults.
func New(cfg Config) (*Detector, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Detector{
		cfg: cfg, small: gocv.NewMat(), gx: gocv.NewMat(), gy: gocv.NewMat(), mag: gocv.NewMat(),
		lap: gocv.NewMat(), sat: gocv.NewMat(), mean: gocv.NewMat(), std: gocv.NewMat(),
	}, nil
}

// Close frees the OpenCV objects.
func (d *Detector) Close() {
	for _, m := range []*gocv.Mat{&d.small, &d.gx, &d.gy, &d.mag, &d.lap, &d.sat, &d.mean, &d.std} {
		m.Close()
	}
}

// Active reports whether a condition is currently started.
func (d *Detector) Active(k Kind) bool {
	for i, kk := range kinds {
		if kk == k {
			return d.conds[i].active
		}
	}
	return false
}

// Reset forgets the reference and every condition, e.g. after an installer
// re-aimed the camera on purpose. It returns a cleared event for each
// condition that was active, timed at the last frame.
func (d *Detector) Reset() []Event { return d.reset("reset: learning the view anew") }

func (d *Detector) reset(why string) []Event {
	var cleared []Event
	for i, k := range kinds {
		if d.conds[i].active {
			cleared = append(cleared, Event{Kind: k, Cleared: true, Since: d.last, At: d.last, Detail: why})
		}
		d.conds[i] = condition{}
	}
	d.forgetReference()
	return cleared
}

func (d *Detector) forgetReference() {
	d.refEdges, d.refSharp, d.learnFrom, d.learned, d.ready = nil, 0, time.Time{}, 0, false
}

// Process judges one 8-bit gray frame taken at t.
func (d *Detector) Process(gray gocv.Mat, t time.Time) Result {
	if gray.Type() != gocv.MatTypeCV8U {
		panic(fmt.Sprintf("tamper: Process needs an 8-bit gray frame, got Mat type %v", gray.Type()))
	}
	var res Result
	w, h := gray.Cols(), gray.Rows()
	if w < 16 || h < 16 {
		return res
	}
	if w != d.w || h != d.h {
		// The stream was reconfigured: the reference says nothing about the
		// new picture, and a condition judged against it cannot stay open.
		res.Cleared = d.reset("picture size changed: learning the view anew")
		d.w, d.h = w, h
	}
	// A hole in the video longer than the hold (the camera was away, or its
	// clock jumped) is not an observation: what was pending starts over.
	dt := t.Sub(d.last)
	if !d.last.IsZero() && (dt > max(d.cfg.Hold, 2*time.Second) || dt < 0) {
		for i := range d.conds {
			d.conds[i].since = time.Time{}
		}
		dt = 0
	}
	if d.last.IsZero() {
		dt = 0
	}
	d.last = t

	m := &res.Measures
	edges := d.measure(gray, m)
	res.Learning = !d.ready

	var v [len(kinds)]verdict
	v[blinded] = threshold(m.Saturated, d.cfg.BlindedShare, 0.6*d.cfg.BlindedShare, true)
	blocked := v[blinded] == bad || d.conds[blinded].active
	v[covered] = d.judgeCovered(m)
	if blocked {
		v[covered] = unknown
	}
	// Defocused and moved cannot be judged through a cover either.
	blocked = blocked || v[covered] == bad || d.conds[covered].active

	if d.ready {
		m.Focus = m.Sharpness / d.refSharp
		var cells int
		m.Match, cells = d.matchCells(edges)
		if !blocked {
			v[defocused] = threshold(m.Focus, d.cfg.DefocusedRatio, 1.5*d.cfg.DefocusedRatio, false)
			if cells >= minCells {
				v[moved] = threshold(m.Match, d.cfg.MovedMatch, d.cfg.MovedMatch+0.15, false)
			}
		}
	}

	healthy := !blocked
	for i, k := range kinds {
		c := &d.conds[i]
		if c.step(v[i], t, d.cfg.Hold, d.cfg.Clear) {
			ev := Event{Kind: k, Cleared: !c.active, Since: c.since, At: t, Value: value(k, m), Detail: detail(k, m)}
			c.since = time.Time{}
			if ev.Cleared {
				res.Cleared = append(res.Cleared, ev)
			} else {
				res.Started = append(res.Started, ev)
			}
		}
		if c.active || !c.since.IsZero() || v[i] == bad {
			healthy = false
		}
	}
	res.Obstructed = d.conds[blinded].active || d.conds[covered].active
	d.learn(edges, m.Sharpness, t, dt, healthy)
	return res
}

// measure fills m from gray and returns the edge map of the 80-pixel-wide
// copy. The slice points into a scratch Mat: valid until the next frame.
func (d *Detector) measure(gray gocv.Mat, m *Measures) []float32 {
	gocv.MeanStdDev(gray, &d.mean, &d.std)
	m.Mean, m.Contrast = d.mean.GetDoubleAt(0, 0), d.std.GetDoubleAt(0, 0)

	gocv.Threshold(gray, &d.sat, 249, 255, gocv.ThresholdBinary)
	m.Saturated = float64(gocv.CountNonZero(d.sat)) / float64(d.w*d.h)

	// Fine detail against overall contrast: a blur removes the first and
	// keeps most of the second, while light and exposure scale both.
	// The Laplacian's mean is ~0, so its RMS is its standard deviation.
	gocv.Laplacian(gray, &d.lap, gocv.MatTypeCV16S, 3, 1, 0, gocv.BorderReplicate)
	rms := gocv.Norm(d.lap, gocv.NormL2) / math.Sqrt(float64(d.w*d.h))
	m.Sharpness = rms / (m.Contrast + 1)

	// The edge map at 80 pixels wide keeps the scene's structure (walls,
	// kerbs, poles) and averages away noise, compression and leaves.
	sh := max(8, (d.h*edgeWidth+d.w/2)/d.w)
	gocv.Resize(gray, &d.small, image.Pt(edgeWidth, sh), 0, 0, gocv.InterpolationArea)
	// Sobel's 3×3 kernel weighs a unit ramp 8: scale to gray levels per pixel.
	gocv.Sobel(d.small, &d.gx, gocv.MatTypeCV32F, 1, 0, 3, 0.125, 0, gocv.BorderReplicate)
	gocv.Sobel(d.small, &d.gy, gocv.MatTypeCV32F, 0, 1, 3, 0.125, 0, gocv.BorderReplicate)
	gocv.Magnitude(d.gx, d.gy, &d.mag)
	edges, err := d.mag.DataPtrFloat32()
	if err != nil {
		panic(fmt.Sprintf("tamper: edge map: %v", err)) // Magnitude of CV_32F is always continuous CV_32F
	}
	var sum float64
	for _, e := range edges {
		sum += float64(e)
	}
	m.Edges = sum / float64(len(edges))
	return edges
}

const edgeWidth = 80

// judgeCovered: flat and without edges. Both are needed: a foggy night is low
// in contrast but keeps its edges; a bright sky is smooth but has contrast.
func (d *Detector) judgeCovered(m *Measures) verdict {
	c, e := d.cfg.CoveredContrast, d.cfg.CoveredEdges
	switch {
	case m.Contrast < c && m.Edges < e:
		return bad
	case m.Contrast > 1.25*c || m.Edges > 1.6*e:
		return good
	}
	return between
}

// threshold judges x against a start and a clear threshold; high means
// large values are bad.
func threshold(x, start, clear float64, high bool) verdict {
	if !high {
		x, start, clear = -x, -start, -clear
	}
	switch {
	case x >= start:
		return bad
	case x < clear:
		return good
	}
	return between
}

// step advances the hysteresis by one frame and reports whether the
// condition changed (started or cleared).
func (c *condition) step(v verdict, t time.Time, hold, clear time.Duration) bool {
	toward, away, need := bad, good, hold
	if c.active {
		toward, away, need = good, bad, clear
	}
	switch v {
	case toward:
		if c.since.IsZero() {
			c.since = t
		}
	case between:
		// Hysteresis: neither confirms nor cancels what is pending.
	case away, unknown:
		c.since = time.Time{}
	}
	if c.since.IsZero() || t.Sub(c.since) < need {
		return false
	}
	c.active = !c.active
	return true
}

// learn builds the reference from healthy frames: a plain average during
// the warm-up, then an exponential one with the Refresh time constant.
func (d *Detector) learn(edges []float32, sharp float64, t time.Time, dt time.Duration, healthy bool) {
	if !healthy {
		return
	}
	if d.refEdges == nil {
		d.refEdges = make([]float32, len(edges))
	}
	var a float64
	if !d.ready {
		if d.learnFrom.IsZero() {
			d.learnFrom = t
		}
		d.learned++
		a = 1 / float64(d.learned)
		d.ready = t.Sub(d.learnFrom) >= d.cfg.Warmup && d.learned >= 3
	} else {
		a = min(1, dt.Seconds()/d.cfg.Refresh.Seconds())
	}
	for i, e := range edges {
		d.refEdges[i] += float32(a) * (e - d.refEdges[i])
	}
	d.refSharp += a * (sharp - d.refSharp)
	if d.ready && d.refSharp <= 0 {
		// A reference without any detail cannot tell focus: keep learning.
		d.forgetReference()
	}
}

// Cells of the edge map, compared one by one: a car or a person hides a
// few of them and leaves the others matching exactly, while a camera turned
// away matches almost none. (One correlation over the whole map fell to 0.41
// on a highway full of cars, as low as a camera turned by a fifth.)
const (
	cell     = 10 // pixels of the 80-pixel-wide map: 8×6 cells at 4:3
	textured = 1  // reference gradient spread (gray levels per pixel) that makes a cell count
	matching = 0.5
	minCells = 6 // fewer textured cells say nothing about where the camera points
)

// matchCells returns the share of the reference's textured cells whose edge
// pattern the picture still shows, and how many cells were textured.
func (d *Detector) matchCells(edges []float32) (float64, int) {
	w := edgeWidth
	h := len(edges) / w
	if len(d.refEdges) != len(edges) {
		return 0, 0
	}
	match, total := 0, 0
	for y := 0; y+cell <= h; y += cell {
		for x := 0; x+cell <= w; x += cell {
			r, spread := cellCorrelation(edges, d.refEdges, w, x, y)
			if spread < textured {
				continue
			}
			total++
			if r > matching {
				match++
			}
		}
	}
	if total == 0 {
		return 0, 0
	}
	return float64(match) / float64(total), total
}

// cellCorrelation is the Pearson correlation of one cell of two edge maps,
// which ignores brightness and contrast, and the reference's standard
// deviation there.
func cellCorrelation(cur, ref []float32, w, x0, y0 int) (r, spread float64) {
	var sc, sr float64
	for y := y0; y < y0+cell; y++ {
		for x := x0; x < x0+cell; x++ {
			sc += float64(cur[y*w+x])
			sr += float64(ref[y*w+x])
		}
	}
	const n = cell * cell
	mc, mr := sc/n, sr/n
	var cr, cc, rr float64
	for y := y0; y < y0+cell; y++ {
		for x := x0; x < x0+cell; x++ {
			a, b := float64(cur[y*w+x])-mc, float64(ref[y*w+x])-mr
			cr += a * b
			cc += a * a
			rr += b * b
		}
	}
	spread = math.Sqrt(rr / n)
	if cc == 0 || rr == 0 {
		return 0, spread
	}
	return cr / math.Sqrt(cc*rr), spread
}

func value(k Kind, m *Measures) float64 {
	switch k {
	case Blinded:
		return m.Saturated
	case Covered:
		return m.Contrast
	case Defocused:
		return m.Focus
	}
	return m.Match
}

func detail(k Kind, m *Measures) string {
	switch k {
	case Blinded:
		return fmt.Sprintf("%.0f%% of the picture saturated", 100*m.Saturated)
	case Covered:
		return fmt.Sprintf("contrast %.1f, edges %.1f, brightness %.0f", m.Contrast, m.Edges, m.Mean)
	case Defocused:
		return fmt.Sprintf("sharpness %.0f%% of the learned view", 100*m.Focus)
	}
	return fmt.Sprintf("%.0f%% of the learned view in place", 100*m.Match)
}
