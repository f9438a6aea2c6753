package camera

import (
	"errors"
	"fmt"
	"time"

	"gocv.io/x/gocv"

	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/av"
	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/streams/tamper"
)

// gapReset is how long a hole in the video must be before the background
// model is thrown away: after such a gap the scene may have changed.
const gapReset = 5 * time.Second

// AnalyzerConfig is what analysis needs; zero values take the defaults.
type AnalyzerConfig struct {
	FPS    float64 // analysed frames per second (default 5)
	Width  int     // analysis width in pixels (default 320)
	Motion motion.Config
	Tamper tamper.Config
}

// Analyzer decodes every access unit of one camera and analyses a sample
// of the pictures at the configured rate and width. The live camera and
// `vigil analyze` both run exactly this, so what an installer tunes on a
// recording is what the edge does. One goroutine owns an Analyzer.
type Analyzer struct {
	cfg     AnalyzerConfig
	det     *motion.Detector
	tamper  *tamper.Detector
	dec     *av.Decoder
	codec   av.Codec
	every   time.Duration
	next    time.Time // when the next frame is due for analysis
	last    time.Time // time of the last decoded picture
	gray    []byte
	waitKey bool
}

// Frame reports what one access unit produced.
type Frame struct {
	Decoded  bool // a picture came out of the decoder
	Analysed bool // and it was analysed
	Time     time.Time
	Width    int // analysis frame size
	Height   int
	Motion   motion.Result
	// Tamper is judged on every analysed frame. While the picture is
	// covered or blinded (Tamper.Obstructed), Motion.Started is withheld:
	// a hand over the lens is not an intrusion.
	Tamper tamper.Result
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
	tam, err := tamper.New(cfg.Tamper)
	if err != nil {
		det.Close()
		return nil, err
	}
	return &Analyzer{cfg: cfg, det: det, tamper: tam, every: time.Duration(float64(time.Second) / cfg.FPS)}, nil
}

// Close frees the decoder and the detectors.
func (a *Analyzer) Close() {
	if a.dec != nil {
		a.dec.Close()
		a.dec = nil
	}
	a.det.Close()
	a.tamper.Close()
}

// Resync makes the analyzer skip units until the next keyframe (after
// units were dropped in front of it).
func (a *Analyzer) Resync() { a.waitKey = true }

// Feed decodes one access unit and analyses its picture if one is due.
// A decode error makes the analyzer wait for the next keyframe.
func (a *Analyzer) Feed(au streams.AccessUnit) (Frame, error) {
	f := Frame{Time: au.Time}
	if a.waitKey && !au.Key {
		return f, nil
	}
	a.waitKey = false
	if a.dec == nil || a.codec != au.Codec {
		if a.dec != nil {
			a.dec.Close()
			a.dec = nil
		}
		dec, err := av.NewDecoder(au.Codec)
		if err != nil {
			return f, err
		}
		a.dec, a.codec = dec, au.Codec
	}
	ok, err := a.dec.Decode(au.NALUs)
	if err != nil {
		a.waitKey = true
		if errors.Is(err, av.ErrCorruptPicture) {
			err = fmt.Errorf("concealed damage: %w", err)
		}
		return f, err
	}
	if !ok {
		return f, nil
	}
	f.Decoded = true
	if !a.last.IsZero() && (au.Time.Sub(a.last) > gapReset || au.Time.Before(a.last.Add(-gapReset))) {
		// The camera was away (or its clock jumped): relearn the scene.
		// Tamper keeps its reference: a camera turned while it was
		// unplugged must still be found to have moved.
		a.det.Reset()
		a.next = time.Time{}
	}
	a.last = au.Time
	if au.Time.Before(a.next) {
		return f, nil
	}
	if a.next.IsZero() || au.Time.Sub(a.next) > a.every {
		a.next = au.Time
	}
	a.next = a.next.Add(a.every)

	buf, w, h, err := a.dec.Gray(a.cfg.Width, a.gray)
	if err != nil {
		return f, err
	}
	a.gray = buf
	mat, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8U, buf[:w*h])
	if err != nil {
		return f, fmt.Errorf("wrapping frame: %w", err)
	}
	defer mat.Close()
	f.Analysed, f.Width, f.Height = true, w, h
	f.Motion = a.det.Process(mat, au.Time)
	f.Tamper = a.tamper.Process(mat, au.Time)
	if f.Tamper.Obstructed {
		f.Motion.Started = nil
	}
	for _, ev := range f.Tamper.Cleared {
		if ev.Kind == tamper.Covered || ev.Kind == tamper.Blinded {
			// The background model learned the cover, not the scene.
			if ended := a.det.Reset(); ended != nil && f.Motion.Ended == nil {
				f.Motion.Ended = ended
			}
		}
	}
	return f, nil
}

// Snapshot encodes the last decoded picture as a JPEG at most maxWidth wide.
func (a *Analyzer) Snapshot(maxWidth int) ([]byte, error) {
	if a.dec == nil {
		return nil, av.ErrNoPicture
	}
	return a.dec.JPEG(maxWidth, 80)
}
