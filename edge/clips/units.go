package clips

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/vigil-perimeter/vigil/streams"
)

// Recorded access units, one at a time: what a stream upstream (a GB/T
// 28181 platform's playback or download) sends, paced by its reader. A
// Units reads the range as a row of short windows, each planned exactly as
// an export is (OpenExport: from the keyframe at or before the window's
// start, the part tables only, the range leased from eviction and a read
// snapshot held while the window is read), so a reader of an hour holds
// one window's plan and one part's payloads at a time, and never keeps a
// snapshot for longer than a window takes to send. Windows follow the
// recording across codec or picture-size changes (a plan stops there and
// the next one starts at the change) and across gaps (the next window
// starts at the next recorded span).

// unitsWindow is how much of the range one window plans.
const unitsWindow = time.Minute

// Units reads a camera's recorded access units over [from, to). It is not
// safe for concurrent use. Close it.
type Units struct {
	rd     *playback
	camera string
	from   int64 // the range, Unix ns
	to     int64
	spans  []Span // recorded in the range, when it was opened

	e    *Export // the window being read; nil between windows
	i    int     // the next sample of e's plan
	lo   int64   // where the next window starts
	skip int64   // samples before this were sent by the window before (0: none)

	keyOnly bool // KeyframesOnly
	waitKey bool // resume at a keyframe (after keyframes only, or a damaged unit)

	nalus [][]byte
	buf   []byte
}

// OpenUnits opens a reader of camera's access units in [from, to), the
// first being the keyframe at or before from (or the first one after it
// when from falls in a gap). Nothing is read until Next. Errors:
// ErrUnknownCamera, ErrNoVideo (nothing recorded in the range), ErrClosed.
func (rd *playback) OpenUnits(camera string, from, to time.Time) (*Units, error) {
	if !to.After(from) {
		return nil, fmt.Errorf("clips: units: empty range %v..%v", from, to)
	}
	tl, err := rd.Timeline(camera, from, to)
	if err != nil {
		return nil, err
	}
	if len(tl.Spans) == 0 {
		return nil, fmt.Errorf("%w: %s has no video between %s and %s", ErrNoVideo, camera, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	}
	u := &Units{rd: rd, camera: camera, from: from.UnixNano(), to: to.UnixNano(), spans: tl.Spans}
	u.lo = u.from
	return u, nil
}

// Range is the range the reader was opened for.
func (u *Units) Range() (from, to time.Time) {
	return time.Unix(0, u.from).UTC(), time.Unix(0, u.to).UTC()
}

// Spans are the recorded spans of the range as it was opened (Timeline).
func (u *Units) Spans() []Span { return slices.Clone(u.spans) }

// Next returns the next access unit: its NAL units (valid until the next
// call; a keyframe carries its parameter sets), Time its wall time, PTS
// the same instant as a duration since the Unix epoch (continuous across
// windows, seeks and gaps; the caller rebases it), Key, Bytes. At the end
// of the range it returns io.EOF; when the store closes, ErrClosed; a
// segment cut or missing, ErrDamaged.
func (u *Units) Next() (streams.AccessUnit, error) {
	for {
		select {
		case <-u.rd.closing:
			u.closeWindow()
			return streams.AccessUnit{}, ErrClosed
		default:
		}
		if u.e == nil {
			if err := u.openWindow(); err != nil {
				return streams.AccessUnit{}, err
			}
			continue
		}
		p := u.e.plan
		if u.i >= len(p.samples) {
			u.closeWindow()
			continue
		}
		s := p.samples[u.i]
		u.i++
		if s.t < u.skip || ((u.keyOnly || u.waitKey) && !s.key) {
			continue
		}
		payload, err := u.e.cache.payload(p, s)
		if err == nil {
			u.nalus, err = splitAVCC(payload, u.nalus[:0])
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errBadPart) {
				err = fmt.Errorf("%w: %v", ErrDamaged, err)
			}
			return streams.AccessUnit{}, fmt.Errorf("clips: units of %s at %v: %w", u.camera, time.Unix(0, s.t).UTC(), err)
		}
		u.waitKey = false
		if s.key && len(paramSets(p.codec, u.nalus)) == 0 {
			// Parameter sets the camera sent once, out of band: the
			// chunk keeps them.
			u.nalus = append(slices.Clone(p.params), u.nalus...)
		}
		return streams.AccessUnit{Codec: p.codec, NALUs: u.nalus, PTS: time.Duration(s.t), Time: time.Unix(0, s.t).UTC(),
			Key: s.key, Bytes: int(s.size)}, nil
	}
}

// openWindow plans the window from u.lo: up to unitsWindow long, or up to
// a codec change; past a gap, from the next span; io.EOF at the end.
func (u *Units) openWindow() error {
	for {
		if u.lo >= u.to {
			return io.EOF
		}
		hi := min(u.lo+int64(unitsWindow), u.to)
		if m := u.rd.s.cfg.MaxExportDuration; m > 0 && hi-u.lo > int64(m) {
			hi = u.lo + int64(m)
		}
		e, err := u.rd.OpenExport(u.camera, time.Unix(0, u.lo), time.Unix(0, hi))
		if errors.Is(err, ErrNoVideo) {
			// A gap (or video evicted since the reader opened): go on at
			// the next span that starts later.
			next := int64(0)
			for _, sp := range u.spans {
				if t := sp.Start.UnixNano(); t > u.lo {
					next = t
					break
				}
			}
			if next == 0 {
				return io.EOF
			}
			u.lo, u.skip = next, 0
			continue
		}
		if err != nil {
			return err
		}
		u.e, u.i = e, 0
		// The window after this one: at the codec change where the plan
		// stops, else where this window ends.
		next := hi
		if r := e.plan.rest; r != 0 && r < hi {
			next = r
		}
		u.lo = next
		return nil
	}
}

// closeWindow ends the window being read; the next one starts at u.lo,
// and what the one before sent is not sent again.
func (u *Units) closeWindow() {
	if u.e == nil {
		return
	}
	if r := u.e.plan.rest; r != 0 && r == u.lo {
		u.skip = 0 // a new chunk: its plan starts at its own first keyframe
	} else {
		u.skip = u.lo
	}
	u.e.Close()
	u.e = nil
}

// Seek moves the reader to the keyframe at or before t (clamped to the
// range); the next unit is that keyframe.
func (u *Units) Seek(t time.Time) {
	u.closeWindow()
	u.lo = min(max(t.UnixNano(), u.from), u.to)
	u.skip = 0
}

// KeyframesOnly makes Next return keyframes only (fast playback) or, when
// off again, every unit from the next keyframe on. Skipped units' payloads
// are not read.
func (u *Units) KeyframesOnly(on bool) {
	if u.keyOnly && !on {
		u.waitKey = true
	}
	u.keyOnly = on
}

// Release lets go of the window being read (its snapshot and the lease
// on its range) while the reader waits, paused; Next goes on with the
// unit after the last one returned, planning its window again.
func (u *Units) Release() {
	if u.e == nil {
		return
	}
	if p := u.e.plan; u.i < len(p.samples) {
		next := p.samples[u.i].t
		u.e.Close()
		u.e = nil
		u.lo, u.skip = next, next
		return
	}
	u.closeWindow()
}

// Close releases the window being read. It is safe to call more than
// once.
func (u *Units) Close() { u.closeWindow() }
