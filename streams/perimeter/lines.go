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
}

func newLine(l Line) line { return line{cfg: l} }

// crossState is one track's relation to one line.
type crossState struct {
	side    int            // confirmed side: -1 left, +1 right, 0 not yet
	rawSide int            // side of the last anchor, hysteresis ignored
	flipAt  time.Time      // first frame on rawSide since it changed
	since   []motion.Point // anchors since the side was confirmed
}

// observe judges track k's newest anchor against the line and reports a
// crossing that counts. A crossing needs the anchor to get Hysteresis
// past the line on the side opposite its confirmed one, and its path
// since then to cut the line (not go round its end).
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
	side, dist := sideOf(l.cfg.Points, a)
	if side != st.rawSide {
		st.rawSide, st.flipAt = side, at
	}
	st.since = append(st.since, a)
	if len(st.since) > 4*pathLen {
		st.since = st.since[len(st.since)-4*pathLen:]
	}
	if dist < hyst || side == 0 {
		return Crossing{}, false
	}
	if st.side == 0 || side == st.side {
		st.side, st.since = side, st.since[len(st.since)-1:]
		return Crossing{}, false
	}
	cut := pathCuts(st.since, l.cfg.Points)
	st.side, st.since = side, st.since[len(st.since)-1:]
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

// sideOf says on which side of the polyline p lies, judged against its
// nearest segment (+1: right of the drawing direction on the picture,
// where y grows downwards; -1: left), and how far away it is.
func sideOf(pts []motion.Point, p motion.Point) (side int, dist float64) {
	dist = math.Inf(1)
	for i := 0; i+1 < len(pts); i++ {
		a, b := pts[i], pts[i+1]
		d := segDist(a, b, p)
		if d < dist {
			dist = d
			cross := (b.X-a.X)*(p.Y-a.Y) - (b.Y-a.Y)*(p.X-a.X)
			switch {
			case cross > 0:
				side = 1
			case cross < 0:
				side = -1
			default:
				side = 0
			}
		}
	}
	return side, dist
}

// segDist is the distance from p to segment ab.
func segDist(a, b, p motion.Point) float64 {
	dx, dy := b.X-a.X, b.Y-a.Y
	l2 := dx*dx + dy*dy
	t := 0.0
	if l2 > 0 {
		t = math.Max(0, math.Min(1, ((p.X-a.X)*dx+(p.Y-a.Y)*dy)/l2))
	}
	return math.Hypot(p.X-(a.X+t*dx), p.Y-(a.Y+t*dy))
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
// counts).
func segmentsCross(p, q, a, b motion.Point) bool {
	o := func(u, v, w motion.Point) float64 { return (v.X-u.X)*(w.Y-u.Y) - (v.Y-u.Y)*(w.X-u.X) }
	d1, d2, d3, d4 := o(a, b, p), o(a, b, q), o(p, q, a), o(p, q, b)
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
