package perimeter

import (
	"math"
	"sort"
	"time"

	"github.com/vigil-perimeter/vigil/streams/motion"
)

// pathLen bounds a track's kept path.
const pathLen = 64

// track is one followed object.
type track struct {
	id     uint64
	box    motion.Box
	cx, cy float64 // box centre
	vx, vy float64 // centre velocity, per second (smoothed)
	seen   time.Time
	born   time.Time
	path   []motion.Point
	cross  map[int]*crossState
	dwell  map[int]*dwellState
}

// anchor is where the object stands: the bottom centre of its box.
func (k *track) anchor() motion.Point {
	return motion.Point{X: k.box.X + k.box.W/2, Y: k.box.Y + k.box.H}
}

// public is the track as Observe reports it.
func (k *track) public(at time.Time) Track {
	return Track{ID: k.id, Box: k.box, Anchor: k.anchor(), Path: append([]motion.Point(nil), k.path...), Seen: k.seen == at}
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

// step assigns a frame's boxes and returns the live tracks, oldest first.
func (tr *tracker) step(at time.Time, boxes []motion.Box) []*track {
	type pair struct {
		t, b int
		cost float64
	}
	var pairs []pair
	for ti, k := range tr.tracks {
		px, py := k.predict(at)
		for bi, b := range boxes {
			if c := matchCost(k, px, py, b); c < 1 {
				pairs = append(pairs, pair{ti, bi, c})
			}
		}
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].cost < pairs[j].cost })
	tUsed, bUsed := make([]bool, len(tr.tracks)), make([]bool, len(boxes))
	for _, p := range pairs {
		if tUsed[p.t] || bUsed[p.b] {
			continue
		}
		tUsed[p.t], bUsed[p.b] = true, true
		tr.tracks[p.t].update(at, boxes[p.b])
	}
	for bi, b := range boxes {
		if !bUsed[bi] {
			tr.nextID++
			k := &track{id: tr.nextID, born: at}
			k.update(at, b)
			tr.tracks = append(tr.tracks, k)
		}
	}
	keep := tr.tracks[:0]
	for _, k := range tr.tracks {
		if at.Sub(k.seen) <= tr.coast {
			keep = append(keep, k)
		}
	}
	tr.tracks = keep
	return tr.tracks
}

// predict is where the track's centre should be at at.
func (k *track) predict(at time.Time) (x, y float64) {
	dt := at.Sub(k.seen).Seconds()
	return k.cx + k.vx*dt, k.cy + k.vy*dt
}

// matchCost is the distance from a track's predicted centre to a box's
// centre, in units of the larger of their sizes: below 1 they match.
func matchCost(k *track, px, py float64, b motion.Box) float64 {
	bx, by := b.X+b.W/2, b.Y+b.H/2
	size := math.Max(math.Hypot(k.box.W, k.box.H), math.Hypot(b.W, b.H)) / 2
	// Boxes that grow or shrink a lot (two people merging, one
	// splitting) cost more than ones of the same size.
	ratio := (b.W * b.H) / math.Max(k.box.W*k.box.H, 1e-9)
	if ratio < 1 {
		ratio = 1 / ratio
	}
	return math.Hypot(bx-px, by-py)/math.Max(size, 1e-6) + 0.1*math.Log(ratio)
}

// update moves the track to box b sighted at at.
func (k *track) update(at time.Time, b motion.Box) {
	cx, cy := b.X+b.W/2, b.Y+b.H/2
	if !k.seen.IsZero() {
		if dt := at.Sub(k.seen).Seconds(); dt > 0 {
			const alpha = 0.5
			k.vx = alpha*(cx-k.cx)/dt + (1-alpha)*k.vx
			k.vy = alpha*(cy-k.cy)/dt + (1-alpha)*k.vy
		}
	}
	k.box, k.cx, k.cy, k.seen = b, cx, cy, at
	k.path = append(k.path, k.anchor())
	if len(k.path) > pathLen {
		k.path = append(k.path[:0], k.path[len(k.path)-pathLen:]...)
	}
}
