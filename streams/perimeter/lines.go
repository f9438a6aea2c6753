package perimeter

import (
	"math"
	"time"

	"github.com/vigil-perimeter/vigil/streams/motion"
)

// line is a configured tripwire.
type line struct {
	idx int
	cfg Line
	pts []motion.Point // cfg.Points without repeated consecutive points
}

// newLine prepares a validated line.
func newLine(l Line) line {
	var pts []motion.Point
	for _, p := range l.Points {
		if len(pts) == 0 || pts[len(pts)-1] != p {
			pts = append(pts, p)
		}
	}
	return line{cfg: l, pts: pts}
}

// crossState is one track's relation to one line.
type crossState struct {
	side    int          // confirmed side: -1 left, +1 right, 0 not yet
	rawSide int          // side of the last anchor, hysteresis ignored
	flipAt  time.Time    // first frame on rawSide since it changed
	last    motion.Point // the last anchor judged
	cut     bool         // the path since side was confirmed cuts the line
	started bool         // last is set
}

// observe judges track k's newest anchor against the line and reports a
// crossing that counts. A crossing needs the anchor to get Hysteresis
// past the line on the side opposite its confirmed one, and its path
// since then (sightings joined by straight segments) to cut the line,
// not go round its end. The crossing's time is the first frame on the
// new side.
func (l *line) observe(k *track, at time.Time, hyst float64) (Crossing, bool) {
	if k.cross == nil {
		k.cross = map[int]*crossState{}
	}
	st := k.cross[l.idx]
	if st == nil {
		st = &crossState{}
		k.cross[l.idx] = st
	}
	a := k.anchor()
	if st.started && pathCuts([]motion.Point{st.last, a}, l.pts) {
		st.cut = true
	}
	st.last, st.started = a, true
	side, dist := sideOf(l.pts, a)
	if side != st.rawSide {
		st.rawSide, st.flipAt = side, at
	}
	if dist < hyst || side == 0 {
		return Crossing{}, false
	}
	if st.side == 0 || side == st.side {
		st.side, st.cut = side, false
		return Crossing{}, false
	}
	cut := st.cut
	st.side, st.cut = side, false
	if !cut {
		return Crossing{}, false
	}
	dir := In
	if side < 0 {
		dir = Out
	}
	if l.cfg.Direction != Both && l.cfg.Direction != dir {
		return Crossing{}, false
	}
	return Crossing{Line: l.cfg.Name, Direction: dir, Track: k.id, At: st.flipAt, Box: k.box,
		Path: append([]motion.Point(nil), k.path...)}, true
}

// sideOf says on which side of the polyline p lies (+1: right of the
// drawing direction on the picture, where y grows downwards; -1: left;
// 0: on it), and how far away it is. The side is judged against the
// nearest segment; where the nearest point is a bend, against the bend
// (the outside of the turn), so that sharp bends do not confuse it.
func sideOf(pts []motion.Point, p motion.Point) (side int, dist float64) {
	dist = math.Inf(1)
	best, bestT := -1, 0.0
	for i := 0; i+1 < len(pts); i++ {
		d, t := segDist(pts[i], pts[i+1], p)
		if d < dist {
			dist, best, bestT = d, i, t
		}
	}
	if best < 0 {
		return 0, dist
	}
	a, b := pts[best], pts[best+1]
	c := orient(a, b, p)
	// The nearest point is an interior vertex: p is outside the turn.
	v := -1
	switch {
	case bestT == 1 && best+2 < len(pts):
		v = best + 1
	case bestT == 0 && best > 0:
		v = best
	}
	if v > 0 && dist > 0 {
		if turn := orient(pts[v-1], pts[v], pts[v+1]); turn != 0 {
			c = -turn
		}
	}
	switch {
	case c > 0:
		return 1, dist
	case c < 0:
		return -1, dist
	}
	return 0, dist
}

// orient is the cross product (v-u)×(w-u): positive when w is right of
// u→v on a picture whose y grows downwards.
func orient(u, v, w motion.Point) float64 {
	return (v.X-u.X)*(w.Y-u.Y) - (v.Y-u.Y)*(w.X-u.X)
}

// segDist is the distance from p to segment ab, and where along ab
// (0..1) the nearest point lies.
func segDist(a, b, p motion.Point) (float64, float64) {
	dx, dy := b.X-a.X, b.Y-a.Y
	l2 := dx*dx + dy*dy
	t := 0.0
	if l2 > 0 {
		t = math.Max(0, math.Min(1, ((p.X-a.X)*dx+(p.Y-a.Y)*dy)/l2))
	}
	return math.Hypot(p.X-(a.X+t*dx), p.Y-(a.Y+t*dy)), t
}

// pathCuts reports whether a path crosses the polyline.
func pathCuts(path, pts []motion.Point) bool {
	for i := 0; i+1 < len(path); i++ {
		for j := 0; j+1 < len(pts); j++ {
			if segmentsCross(path[i], path[i+1], pts[j], pts[j+1]) {
				return true
			}
		}
	}
	return false
}

// segmentsCross reports whether segments pq and ab intersect (touching
// counts; collinear segments do not).
func segmentsCross(p, q, a, b motion.Point) bool {
	d1, d2, d3, d4 := orient(a, b, p), orient(a, b, q), orient(p, q, a), orient(p, q, b)
	return (d1*d2 <= 0) && (d3*d4 <= 0) && !(d1 == 0 && d2 == 0 && d3 == 0 && d4 == 0)
}

// length is a polyline's length.
func length(pts []motion.Point) float64 {
	n := 0.0
	for i := 0; i+1 < len(pts); i++ {
		n += math.Hypot(pts[i+1].X-pts[i].X, pts[i+1].Y-pts[i].Y)
	}
	return n
}
