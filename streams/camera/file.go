package camera

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"gocv.io/x/gocv"

	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/av"
	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/streams/perimeter"
	"github.com/vigil-perimeter/vigil/streams/tamper"
)

// Foreground is the motion detector's foreground mask of the last analysed
// frame (255 = moving, analysis size). It stays owned by the Analyzer and
// is valid until the next Feed: evaluation reads it, callers never close it.
func (a *Analyzer) Foreground() gocv.Mat { return a.det.Foreground() }

// Flush ends an open motion event at the last analysed frame: the end of a
// file is not the end of the motion, but nothing more will be seen.
func (a *Analyzer) Flush() *motion.Event { return a.det.Flush() }

// Kinds of FileEvent.
const (
	KindMotion   = "motion"
	KindTamper   = "tamper"
	KindCrossing = "crossing" // a perimeter line crossed (AnalyzerConfig.Perimeter)
	KindLoiter   = "loiter"   // a perimeter dwell time reached
)

// FileEvent is an event the edge would raise, placed in the file both by
// wall-clock time and by frame number (the access unit's index in the
// file, which is the picture's index for camera streams without B-frames).
type FileEvent struct {
	Kind string // KindMotion, KindTamper, KindCrossing or KindLoiter
	// Start is the first frame of the evidence (the persistence window for
	// motion, the hold for tamper); Raised the frame on which the edge
	// would send the alert; End the frame on which it was over (motion:
	// the scene quiet again, or the end of the file when Open).
	Start, Raised, End                time.Time
	StartFrame, RaisedFrame, EndFrame int
	Open                              bool
	// Motion; crossings and loiters give the object's box (one).
	Boxes []motion.Box
	Zones []string
	Peak  float64 // largest foreground fraction during the event
	// Tamper: the condition, and whether this reports its clearing.
	Tamper  string
	Cleared bool
	Detail  string
	// Crossing and loiter: the line's or dwell region's name, the way a
	// crossing went (perimeter.In or Out), the object's track and its
	// path (normalised anchors, oldest first). A crossing's Start and
	// Raised are both its time (the first frame on the new side); a
	// loiter's Start is when the object entered, Raised when it had
	// stayed the dwell time. Neither has an End.
	Name      string
	Direction perimeter.Direction
	Track     uint64
	Path      []motion.Point
}

// FileFrame is one analysed frame of a file, handed to FileOptions.OnFrame
// while the Analyzer still holds its picture and foreground mask.
type FileFrame struct {
	Index int // frame number in the file
	Frame Frame
}

// FileOptions adjusts AnalyzeFile; the zero value is fine.
type FileOptions struct {
	// Start is the wall-clock time of the file's first frame; each unit's
	// time is Start plus its presentation time, as a camera's would be.
	Start time.Time
	// OnFrame, if set, sees every analysed frame (evaluation uses it to
	// score the foreground mask against per-pixel ground truth).
	OnFrame func(a *Analyzer, f FileFrame)
}

// FileSummary describes a finished file analysis.
type FileSummary struct {
	Info         av.FileInfo
	Units        int // access units read
	Decoded      int
	Analysed     int
	DecodeErrors int
	Damaged      int // pictures decoded with concealed errors, analysed all the same
	Skipped      int // units that yielded no picture
	Garbled      int // pictures in a stretch too damaged to raise events on
	Width        int // analysis frame size
	Height       int
}

// AnalyzeFile runs exactly the live camera's analysis (an Analyzer with the
// same configuration and defaults) over a video file at its real frame
// timing, as fast as the machine allows. It calls emit with each motion
// event when it ends, with each tamper condition when it starts and when
// it clears, and with each perimeter crossing and loiter (cfg.Perimeter)
// on the frame that raised it. It is what `vigil analyze` and `make eval` run.
func AnalyzeFile(ctx context.Context, path string, cfg AnalyzerConfig, opt FileOptions, emit func(FileEvent) error) (FileSummary, error) {
	var sum FileSummary
	r, err := av.OpenFile(path)
	if err != nil {
		return sum, err
	}
	defer r.Close()
	sum.Info = r.Info()
	an, err := NewAnalyzer(cfg)
	if err != nil {
		return sum, err
	}
	defer an.Close()

	run := fileRun{emit: emit, frames: map[time.Time]int{}}
	for idx := 0; ; idx++ {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return sum, err
		}
		sum.Units++
		au := streams.AccessUnit{
			Codec: sum.Info.Codec, NALUs: p.AU, PTS: p.PTS, Time: opt.Start.Add(p.PTS),
			TimeSource: streams.TimeFile, Key: p.Key,
		}
		f, err := an.Feed(au)
		if err != nil {
			// A unit that yields no picture is skipped as on a live
			// camera; the Analyzer goes on with the next one.
			sum.DecodeErrors++
			sum.Skipped++
			continue
		}
		if f.Decoded {
			sum.Decoded++
		}
		if f.Damaged {
			sum.Damaged++
		}
		if f.Garbled {
			sum.Garbled++
		}
		if !f.Analysed {
			continue
		}
		sum.Analysed++
		sum.Width, sum.Height = f.Width, f.Height
		if opt.OnFrame != nil {
			opt.OnFrame(an, FileFrame{Index: idx, Frame: f})
		}
		if err := run.frame(idx, f); err != nil {
			return sum, err
		}
	}
	if ev := an.Flush(); ev != nil && run.open != nil {
		run.open.Open = true
		if err := run.end(ev, run.last); err != nil {
			return sum, err
		}
	}
	if sum.Units > 0 && sum.Decoded == 0 {
		return sum, fmt.Errorf("%s: no picture could be decoded", path)
	}
	return sum, nil
}

// fileRun turns the Analyzer's per-frame results into FileEvents.
type fileRun struct {
	emit   func(FileEvent) error
	frames map[time.Time]int // analysed frame times → frame numbers
	open   *FileEvent        // the motion event in progress
	last   int               // frame number of the last analysed frame
}

func (r *fileRun) frame(idx int, f Frame) error {
	r.frames[f.Time] = idx
	r.last = idx
	m := f.Motion
	if m.Ended != nil && r.open != nil {
		if err := r.end(m.Ended, idx); err != nil {
			return err
		}
	}
	if m.Started != nil {
		r.open = &FileEvent{
			Kind: KindMotion, Start: m.Started.Start, Raised: f.Time,
			StartFrame: r.frameAt(m.Started.Start, idx), RaisedFrame: idx,
			Boxes: m.Started.Boxes, Zones: m.Started.Zones,
		}
	}
	if err := r.perimeter(idx, f.Perimeter); err != nil {
		return err
	}
	for _, evs := range [][]tamper.Event{f.Tamper.Started, f.Tamper.Cleared} {
		for _, ev := range evs {
			if err := r.emit(FileEvent{
				Kind: KindTamper, Tamper: string(ev.Kind), Cleared: ev.Cleared, Detail: ev.Detail,
				Start: ev.Since, StartFrame: r.frameAt(ev.Since, idx),
				Raised: ev.At, RaisedFrame: r.frameAt(ev.At, idx),
			}); err != nil {
				return err
			}
		}
	}
	r.forget(f.Time)
	return nil
}

// perimeter emits a frame's crossings and loiters.
func (r *fileRun) perimeter(idx int, pf perimeter.Frame) error {
	for _, x := range pf.Crossings {
		at := r.frameAt(x.At, idx)
		if err := r.emit(FileEvent{
			Kind: KindCrossing, Name: x.Line, Direction: x.Direction, Track: x.Track, Path: x.Path,
			Boxes: []motion.Box{x.Box}, Start: x.At, Raised: x.At, StartFrame: at, RaisedFrame: at,
		}); err != nil {
			return err
		}
	}
	for _, l := range pf.Loiters {
		if err := r.emit(FileEvent{
			Kind: KindLoiter, Name: l.Dwell, Track: l.Track, Path: l.Path, Boxes: []motion.Box{l.Box},
			Start: l.Since, StartFrame: r.frameAt(l.Since, idx), Raised: l.At, RaisedFrame: r.frameAt(l.At, idx),
		}); err != nil {
			return err
		}
	}
	return nil
}

func (r *fileRun) end(ev *motion.Event, idx int) error {
	fe := *r.open
	r.open = nil
	fe.End, fe.EndFrame, fe.Peak = ev.End, idx, ev.Peak
	if len(ev.Zones) > 0 {
		fe.Zones = ev.Zones // every zone touched while it lasted
	}
	return r.emit(fe)
}

// frameAt finds the frame number of an analysed frame's time.
func (r *fileRun) frameAt(t time.Time, fallback int) int {
	if idx, ok := r.frames[t]; ok {
		return idx
	}
	return fallback
}

// forget keeps the frame times of the last minute only: evidence starts
// at most a persistence window or a tamper hold before its alert.
func (r *fileRun) forget(now time.Time) {
	if len(r.frames) < 1024 {
		return
	}
	for t := range r.frames {
		if now.Sub(t) > time.Minute {
			delete(r.frames, t)
		}
	}
}
