package clips

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"

	"github.com/vigil-perimeter/vigil/streams/fmp4live"
)

// Recorded playback: a window of a camera's recording as fragmented MP4
// that a browser's Media Source Extensions play as they are. The window
// is planned like an export (OpenExport: the keyframe at or before from,
// the camera's own access units, a stop at a codec or picture-size
// change) and written as an initialisation segment (the one live view
// sends, streams/fmp4live) and then one moof+mdat per group of pictures,
// the stored payloads (length-prefixed NAL units) as they are.
//
// Times are 90 kHz ticks since an origin the caller chooses: a frame
// recorded at wall time t is shown at media time t-origin, so every
// window of a playback session (one origin) lines up with the others and
// with other cameras. Decode times cannot be negative: frames before the
// origin (the session's first window starts at the keyframe before it)
// are packed into one tick each from media time 0 (they are decoded, as
// the frames after them need them, but not shown for any real time), and
// a frame they push past its own time is shown that many ticks late (at
// most one tick per such frame: well under a millisecond).

// FragmentInfo describes a playback window before its bytes are written.
type FragmentInfo struct {
	Camera string
	Codec  string // RFC 6381, e.g. "avc1.640028"
	Width  int    // from the sequence parameter set
	Height int
	Origin time.Time // media time 0
	// Start is the wall time of the first frame sent, End the end of the
	// last one.
	Start, End    time.Time
	Frames        int
	Bytes         int64 // video payload bytes sent
	KeyframesOnly bool
	// Next is set when the window stops early at a codec or picture-size
	// change: the rest starts there, in a window of its own.
	Next time.Time
}

// Window is a planned playback window. Like an Export (which it is
// planned as) it holds a read snapshot and protects its range from
// eviction until Close.
type Window struct {
	e       *Export
	info    FragmentInfo
	init    []byte
	samples []fragSample
}

// fragSample is one sample as sent: decode time since the origin (ticks),
// duration and composition offset.
type fragSample struct {
	s   sample
	dec int64
	dur uint32
	cto int32
}

// OpenWindow plans camera's playback window [from, to) with media time 0
// at origin; with keyframesOnly only the keyframes are sent, each lasting
// until the next (the last until the window's end). Only part tables are
// read here. Close it. Errors: ErrUnknownCamera, ErrNoVideo (nothing in
// the window), ErrDamaged (a segment cut or missing), ErrTooLong.
func (rd *playback) OpenWindow(camera string, from, to, origin time.Time, keyframesOnly bool) (*Window, error) {
	if origin.IsZero() {
		return nil, errors.New("clips: playback window: no origin")
	}
	e, err := rd.OpenExport(camera, from, to)
	if err != nil {
		return nil, err
	}
	init, codec, err := initSegment(e.plan)
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("clips: playback window of %s: %w", camera, err)
	}
	w := &Window{e: e, init: init}
	if keyframesOnly {
		w.samples = keyTimes(e.plan, origin.UnixNano())
	} else {
		w.samples = fragTimes(e.plan, origin.UnixNano())
	}
	if len(w.samples) == 0 { // a plan starts at a keyframe: cannot happen
		e.Close()
		return nil, fmt.Errorf("%w: %s has no keyframe between %s and %s", ErrNoVideo, camera, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	}
	ei := e.Info()
	w.info = FragmentInfo{Camera: camera, Codec: codec, Width: ei.Width, Height: ei.Height, Origin: origin.UTC(),
		Start: time.Unix(0, w.samples[0].s.t).UTC(), End: ei.End, Frames: len(w.samples), KeyframesOnly: keyframesOnly, Next: ei.Next}
	for _, s := range w.samples {
		w.info.Bytes += int64(s.s.size)
	}
	return w, nil
}

// Info describes the window.
func (w *Window) Info() FragmentInfo { return w.info }

// Close releases the snapshot and the range.
func (w *Window) Close() { w.e.Close() }

// WriteTo writes the initialisation segment and then the fragments, one
// group of pictures at a time (only its payloads in memory). If out has a
// Flush method it is called after each fragment, so a fragment leaves as
// soon as it is made. It stops when ctx ends or the store closes.
func (w *Window) WriteTo(ctx context.Context, out io.Writer) (int64, error) {
	cw := &countingWriter{ctx: ctx, closing: w.e.s.closing, w: out}
	if _, err := cw.Write(w.init); err != nil {
		return cw.n, err
	}
	flusher, _ := out.(interface{ Flush() error })
	seq := uint32(0)
	for start := 0; start < len(w.samples); {
		stop := start + 1
		for stop < len(w.samples) && !w.samples[stop].s.key {
			stop++
		}
		seq++
		frag, err := w.fragment(seq, w.samples[start:stop])
		if err != nil {
			return cw.n, err
		}
		if _, err := cw.Write(frag); err != nil {
			return cw.n, err
		}
		if flusher != nil {
			if err := flusher.Flush(); err != nil {
				return cw.n, err
			}
		}
		start = stop
	}
	return cw.n, nil
}

// fragment marshals one moof+mdat of samples (a group of pictures).
func (w *Window) fragment(seq uint32, samples []fragSample) ([]byte, error) {
	p := w.e.plan
	var size int
	for _, s := range samples {
		size += int(s.s.size)
	}
	arena := make([]byte, 0, size) // payloads are copied: the part cache reuses its buffer
	out := make([]*fmp4.Sample, len(samples))
	for i, s := range samples {
		b, err := w.e.cache.payload(p, s.s)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errBadPart) {
				err = fmt.Errorf("%w: %v", ErrDamaged, err)
			}
			return nil, fmt.Errorf("clips: playback of %s: %w", w.info.Camera, err)
		}
		at := len(arena)
		arena = append(arena, b...)
		out[i] = &fmp4.Sample{Duration: s.dur, PTSOffset: s.cto, IsNonSyncSample: !s.s.key, Payload: arena[at:len(arena):len(arena)]}
	}
	part := fmp4.Part{SequenceNumber: seq, Tracks: []*fmp4.PartTrack{{ID: 1, BaseTime: uint64(samples[0].dec), Samples: out}}}
	var buf seekablebuffer.Buffer
	if err := part.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("clips: playback fragment of %s: %w", w.info.Camera, err)
	}
	return buf.Bytes(), nil
}

// Fragments writes camera's playback window [from, to) to w: OpenWindow,
// WriteTo, Close. The info is that of the window planned, also when the
// writing failed part way.
func (rd *playback) Fragments(ctx context.Context, w io.Writer, camera string, from, to, origin time.Time, keyframesOnly bool) (FragmentInfo, error) {
	win, err := rd.OpenWindow(camera, from, to, origin, keyframesOnly)
	if err != nil {
		return FragmentInfo{}, err
	}
	defer win.Close()
	_, err = win.WriteTo(ctx, w)
	return win.Info(), err
}

// initSegment is the plan's initialisation segment and codec string.
func initSegment(p *rangePlan) ([]byte, string, error) {
	c, err := mp4Codec(p.codec, p.params)
	if err != nil {
		return nil, "", err
	}
	var params [][]byte
	switch c := c.(type) {
	case *mp4.CodecH264:
		params = [][]byte{c.SPS, c.PPS}
	case *mp4.CodecH265:
		params = [][]byte{c.VPS, c.SPS, c.PPS}
	}
	return fmp4live.InitSegment(p.codec, params)
}

// fragTimes times every sample of the plan from origin: the export's
// timing (B-frames: decode order, composition offsets) moved to the
// origin, then clamped so decode times never go negative and stay strict
// (see the package comment above).
func fragTimes(p *rangePlan, origin int64) []fragSample {
	dts, ptsOff, shift := timing(p)
	base := signedTicks(p.samples[0].t - origin)
	out := make([]fragSample, len(p.samples))
	prev := int64(-1)
	for i, s := range p.samples {
		dec := max(base-shift+dts[i], prev+1)
		pres := max(base+dts[i]+int64(ptsOff[i])-shift, dec)
		out[i] = fragSample{s: s, dec: dec, cto: int32(pres - dec)}
		prev = dec
	}
	end := max(base-shift+dts[len(p.samples)], prev+1)
	setDurations(out, end)
	return out
}

// keyTimes times the plan's keyframes only, each shown at its own time
// since origin and lasting until the next keyframe, the last until the
// plan's end.
func keyTimes(p *rangePlan, origin int64) []fragSample {
	var out []fragSample
	prev := int64(-1)
	for _, s := range p.samples {
		if !s.key {
			continue
		}
		dec := max(signedTicks(s.t-origin), prev+1)
		out = append(out, fragSample{s: s, dec: dec})
		prev = dec
	}
	setDurations(out, max(signedTicks(p.end-origin), prev+1))
	return out
}

// setDurations sets each sample's duration to the next one's decode
// time, the last one's to end.
func setDurations(s []fragSample, end int64) {
	for i := range s {
		next := end
		if i+1 < len(s) {
			next = s[i+1].dec
		}
		s[i].dur = uint32(next - s[i].dec)
	}
}

// signedTicks is ticks for times before the origin too, rounded to the
// nearest tick either way.
func signedTicks(ns int64) int64 {
	if ns < 0 {
		return -ticks(-ns)
	}
	return ticks(ns)
}
