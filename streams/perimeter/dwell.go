package perimeter

import (
	"time"

	"github.com/vigil-perimeter/vigil/streams/motion"
)

// dwellArea is a configured dwell region: a polygon, or the band within
// Reach of a line.
type dwellArea struct {
	idx  int
	cfg  Dwell
	band []motion.Point // the line's points, when the area is a band
}

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
	}
	st.lastInside = at
	if st.fired || at.Sub(st.entered) < d.cfg.After {
		return Loiter{}, false
	}
	st.fired = true
	return Loiter{Dwell: d.cfg.Name, Track: k.id, Since: st.entered, At: at, Box: k.box,
		Path: append([]motion.Point(nil), k.path...)}, true
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
