package camera

import (
	"context"
	"reflect"
	"time"

	"github.com/vigil-perimeter/vigil/streams/perimeter"
)

// draftLife is how long an installer's draft lines keep being judged
// after the setup page last asked for them; draftRecent how far back a
// preview lists crossings and loiters.
const (
	draftLife   = 30 * time.Second
	draftRecent = 10 * time.Second
)

// PerimeterPreview is what an installer's draft lines and dwell regions
// would see now: the live tracks (normalised; their paths) and the
// crossings and loiters of the last ten seconds under the draft.
type PerimeterPreview struct {
	At        time.Time
	Tracks    []perimeter.Track
	Crossings []perimeter.Crossing
	Loiters   []perimeter.Loiter
}

// draftWatcher judges the draft on the same confirmed boxes as the
// camera's own lines, beside them, until it is no longer asked for.
type draftWatcher struct {
	cfg     perimeter.Config
	w       *perimeter.Watcher
	until   time.Time
	last    perimeter.Frame
	at      time.Time
	crosses []perimeter.Crossing
	loiters []perimeter.Loiter
}

// observe feeds one frame's boxes to the draft and keeps what it found.
func (d *draftWatcher) observe(t time.Time, f *Frame) {
	d.last, d.at = d.w.Observe(t, f.Motion.Tracked), t
	if f.Tamper.Obstructed || f.Garbled {
		return
	}
	d.crosses = append(d.crosses, d.last.Crossings...)
	d.loiters = append(d.loiters, d.last.Loiters...)
	for len(d.crosses) > 0 && t.Sub(d.crosses[0].At) > draftRecent {
		d.crosses = d.crosses[1:]
	}
	for len(d.loiters) > 0 && t.Sub(d.loiters[0].At) > draftRecent {
		d.loiters = d.loiters[1:]
	}
}

// observeDraft runs the draft, if any is still asked for, after the
// camera's own watcher.
func (ps *perimeterSide) observeDraft(t time.Time, f *Frame) {
	if ps.draft == nil {
		return
	}
	if t.After(ps.draft.until) {
		ps.draft = nil
		return
	}
	if f.Motion.Global {
		ps.draft.w.Reset()
	}
	ps.draft.observe(t, f)
}

// preview answers a preview request on the analysis goroutine:
// a new or changed draft starts from nothing; each request keeps the
// draft alive for draftLife from the latest frame.
func (ps *perimeterSide) preview(cfg perimeter.Config, now time.Time) (PerimeterPreview, error) {
	if ps.draft == nil || !reflect.DeepEqual(ps.draft.cfg, cfg) {
		w, err := perimeter.New(cfg)
		if err != nil {
			return PerimeterPreview{}, err
		}
		ps.draft = &draftWatcher{cfg: cfg, w: w}
	}
	ps.draft.until = now.Add(draftLife)
	d := ps.draft
	return PerimeterPreview{At: d.at, Tracks: d.last.Tracks,
		Crossings: append([]perimeter.Crossing(nil), d.crosses...), Loiters: append([]perimeter.Loiter(nil), d.loiters...)}, nil
}

// perimeterPreviewRequest asks the analysis goroutine for a preview.
type perimeterPreviewRequest struct {
	cfg   perimeter.Config
	reply chan perimeterPreviewReply
}

type perimeterPreviewReply struct {
	p   PerimeterPreview
	err error
}

// PerimeterPreview judges an installer's draft lines and dwell regions
// on the live tracks, beside the camera's own, and returns the tracks
// and what crossed the draft in the last ten seconds. Asking again with
// the same draft keeps it running; a different one starts over. Nothing
// is raised from a draft.
func (c *Camera) PerimeterPreview(ctx context.Context, draft perimeter.Config) (PerimeterPreview, error) {
	req := perimeterPreviewRequest{cfg: draft, reply: make(chan perimeterPreviewReply, 1)}
	select {
	case c.perimPreviews <- req:
	case <-ctx.Done():
		return PerimeterPreview{}, ctx.Err()
	}
	select {
	case r := <-req.reply:
		return r.p, r.err
	case <-ctx.Done():
		return PerimeterPreview{}, ctx.Err()
	}
}
