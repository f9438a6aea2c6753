package camera

import (
	"errors"
	"fmt"
	"time"

	"gocv.io/x/gocv"

	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/av"
	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/streams/perimeter"
	"github.com/vigil-perimeter/vigil/streams/tamper"
)

// gapReset is how long a hole in the video must be before the background
// model is thrown away: after such a gap the scene may have changed.
const gapReset = 5 * time.Second

// Damage bound: a picture the decoder concealed (decoded with errors) is
// analysed, but when more than garbledRatio of the last damageWindow
// decoded pictures were damaged, the pictures may be mostly concealment
// and propagated errors: motion and tamper are not raised on them (the
// frame is Garbled, and the camera reports analysis degraded).
const (
	damageWindow = 50
	garbledRatio = 0.8
)

// maxGOPBytes bounds the access units an Analyzer keeps since the last
// keyframe for full-quality snapshots: 2 s GOPs up to 32 Mbit/s, or 16 s
// GOPs at 4 Mbit/s. A longer GOP makes snapshots come from the analysis
// decoder until the next keyframe.
const maxGOPBytes = 8 << 20

// AnalyzerConfig is what analysis needs; zero values take the defaults.
type AnalyzerConfig struct {
	FPS    float64 // analysed frames per second (default 5)
	Width  int     // analysis width in pixels (default 320)
	Motion motion.Config
	Tamper tamper.Config
	// Perimeter is the camera's tripwires and dwell regions, judged on
	// motion's confirmed objects; an Empty one switches it off.
	Perimeter perimeter.Config
	// FullDecode keeps H.264/H.265's in-loop filter on in the analysis
	// decoder. By default it is skipped (a quarter less CPU per camera,
	// same detections on the evaluation footage); snapshots are always
	// decoded in full either way.
	FullDecode bool
}

// Analyzer decodes every access unit of one camera and analyses a sample
// of the pictures at the configured rate and width. The live camera and
// `vigil analyze` both run exactly this, so what an installer tunes on a
// recording is what the edge does. One goroutine owns an Analyzer.
//
// Pictures for people (Snapshot) do not come from the analysis decoder,
// which skips the in-loop filter: the Analyzer keeps the access units
// since the last keyframe and, only when a snapshot is asked for, brings
// a second, standard decoder up to the current picture. A scene with no
// events costs one cheap decode; each snapshot at most one GOP of full
// decoding, shared by every snapshot of the same GOP. The second decoder
// is closed after a whole GOP without a snapshot.
type Analyzer struct {
	cfg     AnalyzerConfig
	det     *motion.Detector
	tamper  *tamper.Detector
	perim   perimeterSide
	dec     *av.Decoder
	codec   av.Codec
	gop     gopBuffer
	full    *av.Decoder // for snapshots; fed gop[:fullFed]
	fullFed int
	fullUse bool // a snapshot used full in the current GOP
	every   time.Duration
	next    time.Time // when the next frame is due for analysis
	last    time.Time // time of the last decoded picture
	gray    []byte
	waitKey bool
	damage  damageRing
	// srcW, srcH: the decoded picture size the detectors learned; a new
	// size or codec is a new picture (see reframe).
	srcW, srcH int
	reframed   bool // the stream changed: the next picture starts anew
}

// Frame reports what one access unit produced.
type Frame struct {
	Decoded  bool // a picture came out of the decoder
	Analysed bool // and it was analysed
	// Damaged: the decoder reported errors in the picture and concealed
	// them (DamageErr says how); it is analysed all the same.
	Damaged   bool
	DamageErr error
	// Garbled: too many recent pictures were damaged (see damageWindow);
	// the frame was analysed to keep the scene model current, but no
	// motion or tamper is raised on it.
	Garbled bool
	Time    time.Time
	Width   int // analysis frame size
	Height  int
	Motion  motion.Result
	// Tamper is judged on every analysed frame. While the picture is
	// covered or blinded (Tamper.Obstructed), Motion.Started is withheld:
	// a hand over the lens is not an intrusion.
	Tamper tamper.Result
	// Perimeter is what the confirmed objects (Motion.Tracked) crossed
	// or completed; empty without lines and dwell regions. Crossings and
	// Loiters are withheld exactly when Motion.Started is (an obstructed
	// or garbled picture); Tracks are always reported.
	Perimeter perimeter.Frame
}

// NewAnalyzer makes an analyzer; the decoder is created on the first unit.
func NewAnalyzer(cfg AnalyzerConfig) (*Analyzer, error) {
	if cfg.FPS <= 0 {
		cfg.FPS = 5
	}
	if cfg.Width <= 0 {
		cfg.Width = 320
	}
	det, err := motion.New(cfg.Motion)
	if err != nil {
		return nil, err
	}
	perim, err := newWatcher(cfg.Perimeter)
	if err != nil {
		det.Close()
		return nil, err
	}
	tam, err := tamper.New(cfg.Tamper)
	if err != nil {
		det.Close()
		return nil, err
	}
	return &Analyzer{cfg: cfg, det: det, tamper: tam, perim: perimeterSide{w: perim}, every: time.Duration(float64(time.Second) / cfg.FPS)}, nil
}

// Close frees the decoder and the detectors.
func (a *Analyzer) Close() {
	if a.dec != nil {
		a.dec.Close()
		a.dec = nil
	}
	a.closeFull()
	a.det.Close()
	a.tamper.Close()
}

func (a *Analyzer) closeFull() {
	if a.full != nil {
		a.full.Close()
		a.full = nil
	}
	a.fullFed = 0
}

// Resync makes the analyzer skip units until the next keyframe (after
// units were dropped in front of it).
func (a *Analyzer) Resync() {
	a.waitKey = true
	a.gop.reset()
}

// DamagedRatio is the share of damaged pictures among the last decoded
// ones (up to damageWindow).
func (a *Analyzer) DamagedRatio() float64 { return a.damage.ratio() }

// Feed decodes one access unit and analyses its picture if one is due.
//
// Damage does not stop analysis: a picture the decoder concealed is
// analysed and reported Damaged; a unit that yields no picture returns
// the error (the unit is skipped) and decoding goes on with the next one,
// since the decoder conceals from its references what it can. Only units
// dropped before the decoder (Resync) make it wait for a keyframe.
func (a *Analyzer) Feed(au streams.AccessUnit) (Frame, error) {
	f := Frame{Time: au.Time}
	if skip, err := a.admit(au); skip || err != nil {
		return f, err
	}
	if ok, err := a.decode(au.NALUs, &f); !ok {
		return f, err
	}
	var reframe reframing
	if a.reframed {
		reframe = a.reframe()
	}
	if !a.due(au.Time) {
		return f, nil
	}
	err := a.analyse(au.Time, reframe, &f)
	return f, err
}

// admit readies the decoder for au (a new one when the codec changed),
// starts the snapshot state over at a keyframe and keeps the unit for
// snapshots. skip: the analyzer waits for a keyframe.
func (a *Analyzer) admit(au streams.AccessUnit) (skip bool, err error) {
	if a.waitKey && !au.Key {
		return true, nil
	}
	a.waitKey = false
	if a.dec == nil || a.codec != au.Codec {
		if a.dec != nil {
			a.dec.Close()
			a.dec = nil
			a.reframed = true // the camera switched codec
		}
		a.closeFull()
		dec, err := av.NewDecoderWith(au.Codec, av.DecoderOptions{SkipLoopFilter: !a.cfg.FullDecode})
		if err != nil {
			return false, err
		}
		a.dec, a.codec = dec, au.Codec
	}
	if au.Key {
		if !a.fullUse {
			// A whole GOP without a snapshot: give the decoder's frames
			// back (10–20 MiB at 1080p) until the next one is asked for.
			a.closeFull()
		}
		a.fullFed, a.fullUse = 0, false // the full decoder starts over at this keyframe
	}
	if !a.cfg.FullDecode {
		a.gop.add(au) // snapshots come from the analysis decoder otherwise
	}
	return false, nil
}

// decode runs the analysis decoder on one unit and notes on f whether a
// picture came out (ok), damaged or not, and on a whether its size
// changed. err is only set when no picture came out.
func (a *Analyzer) decode(nalus [][]byte, f *Frame) (ok bool, err error) {
	ok, err = a.dec.Decode(nalus)
	if err != nil {
		// Snapshots must not be rebuilt from a GOP with a damaged unit
		// in it: they come from the analysis decoder until the next
		// keyframe.
		a.gop.reset()
		if !ok {
			return false, err
		}
		// A picture came out despite the error: the decoder concealed
		// what it could not decode.
		if errors.Is(err, av.ErrCorruptPicture) {
			err = fmt.Errorf("concealed damage: %w", err)
		}
		f.Damaged, f.DamageErr = true, err
	}
	if !ok {
		return false, nil
	}
	f.Decoded = true
	a.damage.add(f.Damaged)
	f.Garbled = a.damage.full() && a.damage.ratio() > garbledRatio
	if w, h := a.dec.Size(); w != a.srcW || h != a.srcH {
		// The camera was reconfigured or replaced: a resolution of the
		// same aspect gives analysis frames of the same size, but not the
		// same detail or noise.
		a.reframed = a.reframed || a.srcW != 0
		a.srcW, a.srcH = w, h
	}
	return true, nil
}

// due reports whether the picture at t is to be analysed, keeping the
// configured rate, and relearns the scene after a gap in the video.
func (a *Analyzer) due(t time.Time) bool {
	if !a.last.IsZero() && (t.Sub(a.last) > gapReset || t.Before(a.last.Add(-gapReset))) {
		// The camera was away (or its clock jumped): relearn the scene.
		// Tamper keeps its reference: a camera turned while it was
		// unplugged must still be found to have moved.
		a.det.Reset()
		a.perim.reset()
		a.next = time.Time{}
	}
	a.last = t
	if t.Before(a.next) {
		return false
	}
	if a.next.IsZero() || t.Sub(a.next) > a.every {
		a.next = t
	}
	a.next = a.next.Add(a.every)
	return true
}

// analyse runs motion and tamper on the decoder's latest picture at the
// analysis width and combines their results, with what reframe ended,
// into f.
func (a *Analyzer) analyse(t time.Time, reframe reframing, f *Frame) error {
	buf, w, h, err := a.dec.Gray(a.cfg.Width, a.gray)
	if err != nil {
		return err
	}
	a.gray = buf
	mat, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8U, buf[:w*h])
	if err != nil {
		return fmt.Errorf("wrapping frame: %w", err)
	}
	defer mat.Close()
	f.Analysed, f.Width, f.Height = true, w, h
	f.Motion = a.det.Process(mat, t)
	f.Tamper = a.tamper.Process(mat, t)
	if reframe.ended != nil && f.Motion.Ended == nil {
		f.Motion.Ended = reframe.ended
	}
	f.Tamper.Cleared = append(reframe.cleared, f.Tamper.Cleared...)
	if f.Tamper.Obstructed {
		f.Motion.Started = nil
	}
	if f.Garbled {
		// Concealment and propagated errors are not the scene: what
		// ends is still reported, nothing new starts.
		f.Motion.Started, f.Tamper.Started = nil, nil
	}
	a.perim.observe(t, f)
	for _, ev := range f.Tamper.Cleared {
		if ev.Kind == tamper.Covered || ev.Kind == tamper.Blinded {
			// The background model learned the cover, not the scene.
			if ended := a.det.Reset(); ended != nil && f.Motion.Ended == nil {
				f.Motion.Ended = ended
			}
			a.perim.reset()
		}
	}
	return nil
}

// damageRing remembers which of the last damageWindow decoded pictures
// were damaged.
type damageRing struct {
	marks   [damageWindow]bool
	n, next int
	damaged int
}

func (r *damageRing) add(damaged bool) {
	if r.n == damageWindow {
		if r.marks[r.next] {
			r.damaged--
		}
	} else {
		r.n++
	}
	r.marks[r.next] = damaged
	if damaged {
		r.damaged++
	}
	r.next = (r.next + 1) % damageWindow
}

func (r *damageRing) full() bool { return r.n == damageWindow }

func (r *damageRing) ratio() float64 {
	if r.n == 0 {
		return 0
	}
	return float64(r.damaged) / float64(r.n)
}

// reframing is what a change of the stream's picture ended.
type reframing struct {
	ended   *motion.Event
	cleared []tamper.Event
}

// reframe starts the detectors anew on a stream whose picture size or
// codec changed: the background model and the tamper reference belong to
// the old picture, and comparing across them gives false motion or a
// camera "moved" or "defocused" that was only reconfigured. Covered,
// blinded and dark are judged on the picture and carry over. The picture
// that shows the change is analysed at once, so that what ended is
// reported with it.
func (a *Analyzer) reframe() reframing {
	a.reframed = false
	a.next = time.Time{}
	a.perim.reset()
	return reframing{ended: a.det.Reset(), cleared: a.tamper.Relearn()}
}

// Snapshot encodes the last decoded picture as a JPEG at most maxWidth
// wide, decoded in full (see Analyzer). When the GOP so far was not kept
// (too long, or joined after a loss) the analysis decoder's picture is
// used instead: a little blockier, never missing.
func (a *Analyzer) Snapshot(maxWidth int) ([]byte, error) {
	if a.dec == nil {
		return nil, av.ErrNoPicture
	}
	if a.cfg.FullDecode || !a.catchUpFull() {
		return a.dec.JPEG(maxWidth, 80)
	}
	return a.full.JPEG(maxWidth, 80)
}

// catchUpFull feeds the full decoder the kept units it has not seen and
// reports whether it now shows the analysis decoder's latest picture.
func (a *Analyzer) catchUpFull() bool {
	units, ok := a.gop.units()
	if !ok {
		return false
	}
	if a.full == nil {
		dec, err := av.NewDecoder(a.codec)
		if err != nil {
			return false
		}
		a.full, a.fullFed = dec, 0
	}
	for _, au := range units[a.fullFed:] {
		if _, err := a.full.Decode(au.NALUs); err != nil && !errors.Is(err, av.ErrCorruptPicture) {
			a.closeFull()
			return false
		}
	}
	a.fullFed, a.fullUse = len(units), true
	w, h := a.full.Size()
	dw, dh := a.dec.Size()
	return w > 0 && w == dw && h == dh
}

// gopBuffer keeps the access units since the last keyframe, up to
// maxGOPBytes. Units are shared with the recorder, which never changes
// them, so keeping them costs no copy.
type gopBuffer struct {
	aus      []streams.AccessUnit
	bytes    int
	complete bool // starts at a keyframe and nothing was left out since
	limit    int  // bytes; 0: maxGOPBytes
}

func (g *gopBuffer) add(au streams.AccessUnit) {
	if au.Key {
		g.reset()
		g.complete = true
	}
	if !g.complete {
		return
	}
	n := 0
	for _, nalu := range au.NALUs {
		n += len(nalu)
	}
	limit := g.limit
	if limit == 0 {
		limit = maxGOPBytes
	}
	if g.bytes+n > limit {
		g.reset()
		return
	}
	g.aus = append(g.aus, au)
	g.bytes += n
}

func (g *gopBuffer) reset() {
	clear(g.aus) // let the units go
	g.aus, g.bytes, g.complete = g.aus[:0], 0, false
}

func (g *gopBuffer) units() ([]streams.AccessUnit, bool) {
	return g.aus, g.complete && len(g.aus) > 0
}
