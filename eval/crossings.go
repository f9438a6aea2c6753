package main

// Perimeter evaluation: tripwire crossings and dwell (issue #20), scored
// against truth derived from the footage. The truth logic (tracks from
// per-frame boxes, crossings of their anchor paths, one-to-one matching,
// ID switches) is plain Go and unit-tested on made-up paths
// (crossings_test.go); reading masks and running the detector needs the
// footage and runs only under `make eval`.

import (
	"math"
	"sort"

	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/streams/perimeter"
)

// truthBox is one object in one frame of the truth.
type truthBox struct {
	Frame int
	Box   motion.Box // normalised
}

// truthTrack is one object followed through the truth masks.
type truthTrack struct {
	ID    int
	Boxes []truthBox // consecutive frames, oldest first
}

// anchor is where the perimeter judges an object: its box's bottom centre.
func anchor(b motion.Box) motion.Point { return motion.Point{X: b.X + b.W/2, Y: b.Y + b.H} }

// trueCrossing is a truth track's anchor path cutting a line.
type trueCrossing struct {
	Line      string              `json:"line"`
	Direction perimeter.Direction `json:"direction"`
	Track     int                 `json:"truth_track"`
	Frame     int                 `json:"frame"` // the first frame on the new side
}

// side says on which side of polyline pts p lies, judged against its
// nearest segment (+1 right of the drawing direction with y downwards,
// the perimeter's In side; -1 left; 0 on it): the perimeter's rule.
func side(pts []motion.Point, p motion.Point) int {
	best, s := math.Inf(1), 0
	for i := 0; i+1 < len(pts); i++ {
		a, b := pts[i], pts[i+1]
		dx, dy := b.X-a.X, b.Y-a.Y
		t := 0.0
		if l2 := dx*dx + dy*dy; l2 > 0 {
			t = math.Max(0, math.Min(1, ((p.X-a.X)*dx+(p.Y-a.Y)*dy)/l2))
		}
		if d := math.Hypot(p.X-(a.X+t*dx), p.Y-(a.Y+t*dy)); d < best {
			best = d
			c := dx*(p.Y-a.Y) - dy*(p.X-a.X)
			s = 0
			if c > 0 {
				s = 1
			} else if c < 0 {
				s = -1
			}
		}
	}
	return s
}

// cuts reports whether segment pq meets the polyline.
func cuts(p, q motion.Point, pts []motion.Point) bool {
	o := func(u, v, w motion.Point) float64 { return (v.X-u.X)*(w.Y-u.Y) - (v.Y-u.Y)*(w.X-u.X) }
	for i := 0; i+1 < len(pts); i++ {
		a, b := pts[i], pts[i+1]
		d1, d2, d3, d4 := o(a, b, p), o(a, b, q), o(p, q, a), o(p, q, b)
		if d1*d2 <= 0 && d3*d4 <= 0 && !(d1 == 0 && d2 == 0) {
			return true
		}
	}
	return false
}

// pathCrossings are the crossings of a truth track's anchor path: each
// step from one side of a line to the other that cuts it (not round its
// end). A path that touches the line and returns is no crossing; a
// crossing is timed at the first frame on the new side.
func pathCrossings(lines []perimeter.Line, t truthTrack) []trueCrossing {
	var out []trueCrossing
	for _, l := range lines {
		last, lastAt := 0, -1 // confirmed side and index of its last anchor
		for i, b := range t.Boxes {
			s := side(l.Points, anchor(b.Box))
			if s == 0 {
				continue
			}
			if last != 0 && s != last && cuts(anchor(t.Boxes[lastAt].Box), anchor(b.Box), l.Points) {
				dir := perimeter.In
				if s < 0 {
					dir = perimeter.Out
				}
				out = append(out, trueCrossing{Line: l.Name, Direction: dir, Track: t.ID, Frame: b.Frame})
			}
			last, lastAt = s, i
		}
	}
	return out
}

// detCrossing is a crossing the perimeter reported, placed by frame.
type detCrossing struct {
	Line      string              `json:"line"`
	Direction perimeter.Direction `json:"direction"`
	Track     uint64              `json:"track"`
	Frame     int                 `json:"frame"`
	Matched   int                 `json:"matched_truth"` // index into the truth crossings, -1 if none
}

// crossingScore is crossings matched against the truth.
type crossingScore struct {
	Truth      int       `json:"truth_crossings"`
	Found      int       `json:"found_crossings"`
	Matched    int       `json:"matched"`
	Recall     float64   `json:"recall"`
	Precision  float64   `json:"precision"`
	DirRight   int       `json:"direction_right"`
	DirRatio   float64   `json:"direction_accuracy"`
	TimeErrS   []float64 `json:"time_errors_s"` // found − true, per match
	MeanAbsErr float64   `json:"mean_abs_time_error_s"`
	MaxAbsErr  float64   `json:"max_abs_time_error_s"`
}

// matchCrossings pairs found crossings with true ones one to one: same
// line, frames at most tol apart, the closest pairs first. It sets each
// found crossing's Matched and scores the lot (fps turns frames into
// seconds).
func matchCrossings(truth []trueCrossing, found []detCrossing, tol int, fps float64) crossingScore {
	type pair struct{ t, f, d int }
	var pairs []pair
	for ti, t := range truth {
		for fi, f := range found {
			d := f.Frame - t.Frame
			if f.Line == t.Line && d >= -tol && d <= tol {
				pairs = append(pairs, pair{ti, fi, d})
			}
		}
	}
	sort.SliceStable(pairs, func(i, j int) bool { return abs(pairs[i].d) < abs(pairs[j].d) })
	tUsed := make([]bool, len(truth))
	for i := range found {
		found[i].Matched = -1
	}
	sc := crossingScore{Truth: len(truth), Found: len(found)}
	for _, p := range pairs {
		if tUsed[p.t] || found[p.f].Matched >= 0 {
			continue
		}
		tUsed[p.t] = true
		found[p.f].Matched = p.t
		sc.Matched++
		if found[p.f].Direction == truth[p.t].Direction {
			sc.DirRight++
		}
		e := float64(p.d) / fps
		sc.TimeErrS = append(sc.TimeErrS, e)
		sc.MeanAbsErr += math.Abs(e)
		sc.MaxAbsErr = math.Max(sc.MaxAbsErr, math.Abs(e))
	}
	if sc.Matched > 0 {
		sc.MeanAbsErr /= float64(sc.Matched)
		sc.DirRatio = float64(sc.DirRight) / float64(sc.Matched)
	}
	if sc.Truth > 0 {
		sc.Recall = float64(sc.Matched) / float64(sc.Truth)
	}
	if sc.Found > 0 {
		sc.Precision = float64(sc.Matched) / float64(sc.Found)
	}
	return sc
}

func abs(i int) int {
	if i < 0 {
		return -i
	}
	return i
}

// iou is the intersection over union of two boxes.
func iou(a, b motion.Box) float64 {
	x0, y0 := math.Max(a.X, b.X), math.Max(a.Y, b.Y)
	x1, y1 := math.Min(a.X+a.W, b.X+b.W), math.Min(a.Y+a.H, b.Y+b.H)
	if x1 <= x0 || y1 <= y0 {
		return 0
	}
	in := (x1 - x0) * (y1 - y0)
	return in / (a.W*a.H + b.W*b.H - in)
}

// idSwitches counts, for one truth track, the changes of perimeter track
// ID among the frames where a perimeter track covers it (the seen track
// whose box overlaps the truth box most, IoU at least minIoU), and how
// many of its frames were covered at all. tracks maps analysed frame
// numbers to the perimeter's seen tracks.
func idSwitches(t truthTrack, tracks map[int][]perimeter.Track, minIoU float64) (switches, covered, frames int, ids []uint64) {
	var last uint64
	for _, b := range t.Boxes {
		ks, ok := tracks[b.Frame]
		if !ok {
			continue // not an analysed frame
		}
		frames++
		best, id := minIoU, uint64(0)
		for _, k := range ks {
			if v := iou(k.Box, b.Box); v >= best {
				best, id = v, k.ID
			}
		}
		if id == 0 {
			continue
		}
		covered++
		if last != 0 && id != last {
			switches++
		}
		if last != id {
			ids = append(ids, id)
		}
		last = id
	}
	return switches, covered, frames, ids
}

// linker follows connected components from frame to frame by pixel
// overlap, giving truth tracks. A component continues the previous
// frame's component it overlaps most; when two take the same one (a
// split), the larger overlap keeps the track and the other starts a new
// one; a component that overlaps none starts a new track.
type linker struct {
	tracks []*truthTrack
	prev   []int // previous frame: component label → track index (-1: none)
}

// step takes one frame's components: overlap[c][p] is how many pixels
// component c of this frame shares with component p of the previous
// frame (labels from 1; index 0 unused), boxes[c] its box, and keep[c]
// whether it is large enough to be an object.
func (l *linker) step(frame int, boxes []motion.Box, keep []bool, overlap [][]int) {
	cur := make([]int, len(boxes))
	for c := range cur {
		cur[c] = -1
	}
	type claim struct{ c, p, n int }
	var claims []claim
	for c := 1; c < len(boxes); c++ {
		if !keep[c] {
			continue
		}
		bp, bn := -1, 0
		for p := 1; p < len(overlap[c]); p++ {
			if overlap[c][p] > bn && p < len(l.prev) && l.prev[p] >= 0 {
				bp, bn = p, overlap[c][p]
			}
		}
		if bp >= 0 {
			claims = append(claims, claim{c, bp, bn})
		}
	}
	sort.SliceStable(claims, func(i, j int) bool { return claims[i].n > claims[j].n })
	taken := map[int]bool{}
	for _, cl := range claims {
		if taken[cl.p] {
			continue
		}
		taken[cl.p] = true
		ti := l.prev[cl.p]
		cur[cl.c] = ti
		l.tracks[ti].Boxes = append(l.tracks[ti].Boxes, truthBox{frame, boxes[cl.c]})
	}
	for c := 1; c < len(boxes); c++ {
		if keep[c] && cur[c] < 0 {
			l.tracks = append(l.tracks, &truthTrack{ID: len(l.tracks) + 1, Boxes: []truthBox{{frame, boxes[c]}}})
			cur[c] = len(l.tracks) - 1
		}
	}
	l.prev = cur
}

// gap ends every track (a frame without truth).
func (l *linker) gap() { l.prev = nil }
