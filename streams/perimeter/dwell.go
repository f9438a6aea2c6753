package perimeter

import (
	"math"
	"time"

	"github.com/vigil-perimeter/vigil/streams/motion"
)

// dwellArea is a configured dwell region: a polygon, or the band within
// Reach of a line.
type dwellArea struct {
	idx  int
	cfg  Dwell
	band []motion.Point // the line's points, when the area is a band
	// traces are the visits in the area seen within the last grace, one
	// per track: a track that appears inside next to one of them (a pair
	// splitting, a merged box separating, a track lost and found again)
	// carries that visit on instead of starting its own.
	traces []visitTrace
}

// visitTrace is where a track's visit was last seen.
type visitTrace struct {
	track   uint64
	at      time.Time
	pos     motion.Point
	entered time.Time
	fired   bool
}

// inheritReach is how near (normalised, or the track's box size if
// larger) a new track must appear to a recent visit to carry it on.
const inheritReach = 0.1

// maxTraces bounds an area's traces.
const maxTraces = 64

// newDwellArea prepares a validated dwell region; a band takes its
// line's points from lines.
func newDwellArea(d Dwell, lines []line) dwellArea {
	a := dwellArea{cfg: d}
	for _, l := range lines {
		if d.Line != "" && l.cfg.Name == d.Line {
			a.band = l.pts
		}
	}
	return a
}

// dwellState is one track's time in one area.
type dwellState struct {
	entered    time.Time // zero while outside
	lastInside time.Time
	fired      bool
}

// contains reports whether p is in the area.
func (d *dwellArea) contains(p motion.Point) bool {
	if d.band != nil {
		_, dist := sideOf(d.band, p)
		return dist <= d.cfg.Reach
	}
	return inPolygon(d.cfg.Region, p)
}

// observe accounts track k's newest anchor and reports a loiter the
// first time the track has stayed After (once per visit). A visit is the
// sightings inside from its first one (Since) on, as long as no gap
// between two of them — the track outside, or not sighted — is longer
// than grace: a longer gap starts a new visit, which may fire again.
func (d *dwellArea) observe(k *track, at time.Time, grace time.Duration) (Loiter, bool) {
	if k.dwell == nil {
		k.dwell = map[int]*dwellState{}
	}
	st := k.dwell[d.idx]
	if st == nil {
		st = &dwellState{}
		k.dwell[d.idx] = st
	}
	if !d.contains(k.anchor()) {
		if !st.entered.IsZero() && at.Sub(st.lastInside) > grace {
			*st = dwellState{}
		}
		return Loiter{}, false
	}
	if st.entered.IsZero() || at.Sub(st.lastInside) > grace {
		*st = dwellState{entered: at}
		d.inherit(k, st, at, grace)
	}
	st.lastInside = at
	defer d.trace(k, st, at) // after firing: the trace carries fired on
	if st.fired || at.Sub(st.entered) < d.cfg.After {
		return Loiter{}, false
	}
	st.fired = true
	return Loiter{Dwell: d.cfg.Name, Track: k.id, Since: st.entered, At: at, Box: k.box,
		Path: append([]motion.Point(nil), k.path...)}, true
}

// inherit carries on the earliest recent visit of another track near
// k's anchor: its entry, and whether it already fired (a visit fires
// once, whichever track carries it).
func (d *dwellArea) inherit(k *track, st *dwellState, at time.Time, grace time.Duration) {
	a := k.anchor()
	reach := math.Max(inheritReach, math.Hypot(k.box.W, k.box.H))
	for _, tr := range d.traces {
		if tr.track == k.id || at.Sub(tr.at) > grace || math.Hypot(tr.pos.X-a.X, tr.pos.Y-a.Y) > reach {
			continue
		}
		if tr.entered.Before(st.entered) {
			st.entered = tr.entered
		}
		st.fired = st.fired || tr.fired
	}
}

// trace records k's visit as seen at at, and forgets traces older than
// the longest a visit may go unseen.
func (d *dwellArea) trace(k *track, st *dwellState, at time.Time) {
	keep := d.traces[:0]
	for _, tr := range d.traces {
		if tr.track != k.id && at.Sub(tr.at) <= 10*time.Second {
			keep = append(keep, tr)
		}
	}
	d.traces = append(keep, visitTrace{track: k.id, at: at, pos: k.anchor(), entered: st.entered, fired: st.fired})
	if len(d.traces) > maxTraces {
		d.traces = d.traces[len(d.traces)-maxTraces:]
	}
}

// inPolygon is the even-odd rule.
func inPolygon(poly motion.Polygon, p motion.Point) bool {
	in := false
	for i, j := 0, len(poly)-1; i < len(poly); j, i = i, i+1 {
		a, b := poly[i], poly[j]
		if (a.Y > p.Y) != (b.Y > p.Y) && p.X < (b.X-a.X)*(p.Y-a.Y)/(b.Y-a.Y)+a.X {
			in = !in
		}
	}
	return in
}
