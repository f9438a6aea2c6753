package perimeter

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/vigil-perimeter/vigil/streams/motion"
)

// Bounds on what a watcher keeps.
const (
	// MaxTracks bounds the live tracks: past it, the tracks coasting
	// longest are dropped first, and boxes that still find no room start
	// no track.
	MaxTracks = 64
	// MaxBoxes bounds the boxes of one frame that are considered; the
	// largest are kept.
	MaxBoxes = 128
	// FragmentMute is how long a track born next to another one (a piece
	// of it: a person and their shadow, a group coming apart) reports no
	// crossing, so that a split lasting a few frames does not report the
	// same crossing twice.
	FragmentMute = time.Second
)

// pathLen bounds a track's kept path.
const pathLen = 64

// gateSpeed widens the match gate by this much (normalised units per
// second) for every second since a track was last sighted, up to
// maxSlack: its first steps, before its velocity is known, and a coast
// are less sure.
const (
	gateSpeed = 0.5
	maxSlack  = 0.1
)

// maxSpeed bounds a track's velocity (normalised units per second), so
// that two sightings close in time cannot fling its prediction away.
const maxSpeed = 4.0

// track is one followed object.
type track struct {
	id       uint64
	box      motion.Box
	cx, cy   float64 // box centre
	vx, vy   float64 // centre velocity, per second (smoothed)
	seen     time.Time
	born     time.Time
	fragment bool // born next to another live track
	hit      bool // sighted in the current step
	path     []motion.Point
	cross    map[int]*crossState
	dwell    map[int]*dwellState
}

// anchor is where the object stands: the bottom centre of its box.
//
// A box cut by the bottom of the picture (someone walking in close to
// the camera) has its anchor on the picture's edge, y = 1, where a
// region drawn to the edge would not count it as inside: anchors stay a
// hair inside the picture.
func (k *track) anchor() motion.Point {
	const in = 1 - 1e-6
	return motion.Point{X: min(k.box.X+k.box.W/2, in), Y: min(k.box.Y+k.box.H, in)}
}

// public is the track as Observe reports it. A coasting track reports
// its last sighted box and anchor.
func (k *track) public() Track {
	return Track{ID: k.id, Box: k.box, Anchor: k.anchor(), Path: append([]motion.Point(nil), k.path...), Seen: k.hit}
}

// muted reports a fragment too young to report crossings.
func (k *track) muted(at time.Time) bool {
	return k.fragment && at.Sub(k.born) < FragmentMute
}

// tracker gives boxes identities: each box goes to the track whose
// predicted centre is nearest, within about a box's size; a track not
// sighted coasts along its velocity for coast, so that a person hidden
// for a moment keeps their track.
type tracker struct {
	coast  time.Duration
	nextID uint64
	tracks []*track
}

// validBox reports a box that lies in the picture (with a little slack
// for rounding) and has a size: NaN, infinite, negative, empty or huge
// boxes are refused.
func validBox(b motion.Box) bool {
	const slack = 0.01
	for _, v := range []float64{b.X, b.Y, b.W, b.H} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return b.W > 1e-6 && b.H > 1e-6 && b.X >= -slack && b.Y >= -slack &&
		b.X+b.W <= 1+slack && b.Y+b.H <= 1+slack
}

// cleanBoxes keeps the valid boxes, the largest MaxBoxes of them.
func cleanBoxes(boxes []motion.Box) []motion.Box {
	out := make([]motion.Box, 0, len(boxes))
	for _, b := range boxes {
		if validBox(b) {
			out = append(out, b)
		}
	}
	if len(out) > MaxBoxes {
		slices.SortStableFunc(out, func(a, b motion.Box) int { return cmp.Compare(b.W*b.H, a.W*a.H) })
		out = out[:MaxBoxes]
	}
	return out
}

// step assigns a frame's boxes and returns the live tracks, oldest first.
// Boxes that are not valid (see validBox) are ignored.
func (tr *tracker) step(at time.Time, boxes []motion.Box) []*track {
	boxes = cleanBoxes(boxes)
	for _, k := range tr.tracks {
		k.hit = false
	}
	bUsed := tr.match(at, boxes)
	keep := tr.tracks[:0]
	for _, k := range tr.tracks {
		if k.hit || at.Sub(k.seen) <= tr.coast {
			keep = append(keep, k)
		}
	}
	clear(tr.tracks[len(keep):])
	tr.tracks = keep
	var fresh []motion.Box
	for bi, b := range boxes {
		if !bUsed[bi] {
			fresh = append(fresh, b)
		}
	}
	tr.makeRoom(len(fresh))
	for _, b := range fresh {
		if len(tr.tracks) >= MaxTracks {
			break
		}
		tr.nextID++
		k := &track{id: tr.nextID, born: at, fragment: tr.near(b)}
		k.update(at, b)
		k.hit = true
		tr.tracks = append(tr.tracks, k)
	}
	return tr.tracks
}

// match pairs tracks and boxes greedily, cheapest first, updates the
// matched tracks and reports which boxes were taken.
func (tr *tracker) match(at time.Time, boxes []motion.Box) []bool {
	type pair struct {
		t, b int
		cost float64
	}
	var pairs []pair
	for ti, k := range tr.tracks {
		px, py := k.predict(at)
		slack := min(gateSpeed*max(at.Sub(k.seen).Seconds(), 0), maxSlack)
		for bi, b := range boxes {
			if c := matchCost(k, px, py, slack, b); c < 1 {
				pairs = append(pairs, pair{ti, bi, c})
			}
		}
	}
	// Ties go to the older track, then the earlier box: deterministic.
	slices.SortFunc(pairs, func(x, y pair) int {
		return cmp.Or(cmp.Compare(x.cost, y.cost), cmp.Compare(x.t, y.t), cmp.Compare(x.b, y.b))
	})
	tUsed, bUsed := make([]bool, len(tr.tracks)), make([]bool, len(boxes))
	for _, p := range pairs {
		if tUsed[p.t] || bUsed[p.b] {
			continue
		}
		tUsed[p.t], bUsed[p.b] = true, true
		tr.tracks[p.t].update(at, boxes[p.b])
		tr.tracks[p.t].hit = true
	}
	return bUsed
}

// makeRoom drops coasting tracks, longest unseen first, until n new
// tracks fit under MaxTracks (or no coasting track is left).
func (tr *tracker) makeRoom(n int) {
	over := len(tr.tracks) + n - MaxTracks
	if over <= 0 {
		return
	}
	var coasting []*track
	for _, k := range tr.tracks {
		if !k.hit {
			coasting = append(coasting, k)
		}
	}
	slices.SortStableFunc(coasting, func(a, b *track) int { return a.seen.Compare(b.seen) })
	drop := map[*track]bool{}
	for _, k := range coasting[:min(over, len(coasting))] {
		drop[k] = true
	}
	keep := tr.tracks[:0]
	for _, k := range tr.tracks {
		if !drop[k] {
			keep = append(keep, k)
		}
	}
	clear(tr.tracks[len(keep):])
	tr.tracks = keep
}

// near reports whether box b touches or nearly touches (within half
// its own size) the box of a track sighted in this step: a new box
// there is likely a piece of that object.
func (tr *tracker) near(b motion.Box) bool {
	gx, gy := b.W/2, b.H/2
	for _, k := range tr.tracks {
		if !k.hit {
			continue
		}
		o := k.box
		if b.X-gx < o.X+o.W && o.X < b.X+b.W+gx && b.Y-gy < o.Y+o.H && o.Y < b.Y+b.H+gy {
			return true
		}
	}
	return false
}

// predict is where the track's centre should be at at.
func (k *track) predict(at time.Time) (x, y float64) {
	dt := max(at.Sub(k.seen).Seconds(), 0)
	return k.cx + k.vx*dt, k.cy + k.vy*dt
}

// matchCost is the distance from a track's predicted centre to a box's
// centre, in units of the larger of their half diagonals (plus slack),
// plus a little for a change of size: below 1 they match.
func matchCost(k *track, px, py, slack float64, b motion.Box) float64 {
	bx, by := b.X+b.W/2, b.Y+b.H/2
	size := math.Max(math.Hypot(k.box.W, k.box.H), math.Hypot(b.W, b.H))/2 + slack
	// Boxes that grow or shrink a lot (two people merging, one
	// splitting) cost more than ones of the same size.
	ratio := (b.W * b.H) / math.Max(k.box.W*k.box.H, 1e-9)
	if ratio < 1 {
		ratio = 1 / ratio
	}
	return math.Hypot(bx-px, by-py)/math.Max(size, 1e-6) + 0.1*math.Log(ratio)
}

// update moves the track to box b sighted at at. Sightings at the same
// instant as the last one leave the velocity alone.
func (k *track) update(at time.Time, b motion.Box) {
	cx, cy := b.X+b.W/2, b.Y+b.H/2
	if !k.seen.IsZero() {
		if dt := at.Sub(k.seen).Seconds(); dt > 0 {
			const alpha = 0.5
			k.vx = alpha*(cx-k.cx)/dt + (1-alpha)*k.vx
			k.vy = alpha*(cy-k.cy)/dt + (1-alpha)*k.vy
			if s := math.Hypot(k.vx, k.vy); s > maxSpeed {
				k.vx, k.vy = k.vx*maxSpeed/s, k.vy*maxSpeed/s
			}
		}
	}
	k.box, k.cx, k.cy, k.seen = b, cx, cy, at
	k.path = append(k.path, k.anchor())
	if len(k.path) > pathLen {
		k.path = append(k.path[:0], k.path[len(k.path)-pathLen:]...)
	}
}
