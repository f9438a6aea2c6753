package motion

import (
	"image"
	"time"
)

// object is one foreground region of one frame that is big enough for a
// zone it touches.
type object struct {
	rect  image.Rectangle // pixels
	area  int             // foreground pixels
	zones uint64          // bit i: big enough for zone i
	// moved: bit i: in zone i the region holds enough pixels unlike
	// anything near them a moment ago (see Detector.changed).
	moved uint64
}

// sighting is a frame in which a track's object counted as moving.
type sighting struct {
	frame int // the detector's analysed-frame counter
	at    time.Time
	zones uint64
}

// track follows one object from frame to frame, so persistence counts
// sightings of the same thing near the same place: rain drops or leaves
// glinting in different parts of a tree never add up to k.
type track struct {
	rect   image.Rectangle // where it was last seen
	last   int             // frame it was last seen
	origin image.Point     // centre when first seen
	hits   []sighting      // moving sightings within the last N frames, oldest first
	// parts are the objects the track took in its latest frame, each on
	// its own: rect is their union, which grows over a queue of cars.
	parts []image.Rectangle
	// confirmed: the track once had enough sightings to make an event;
	// it stays an object (for line crossing and dwell) while it is seen,
	// moving or not — someone lingering stops counting as motion.
	confirmed bool
}

// travelled is how far the object's centre is from where it was first
// seen, in pixels.
func (k *track) travelled() int { return dist(centre(k.rect), k.origin) }

// tracker assigns each frame's objects to tracks.
type tracker struct {
	n      int // persistence window in frames
	frame  int
	tracks []*track
	// slow decides whether a track that shows no quick change has still
	// moved far enough since it was first seen to count as moving.
	slow func(*track) bool
	// maxStep is the farthest (pixels) a track's centre may move from one
	// frame to the next and still count as travel for slow: a slow walker
	// moves a pixel or two per frame; a jump means the track took over a
	// different region nearby (the next leaf cluster), and its travel
	// starts again from there. 0: no limit.
	maxStep int
}

func (tr *tracker) reset() { tr.tracks = nil }

// step gives each object of a new frame to the track it most overlaps
// (grown by what an object may cover between frames), or starts a track,
// records the sightings that count, and forgets tracks not seen for n
// frames.
func (tr *tracker) step(objs []object, t time.Time) {
	tr.frame++
	old := len(tr.tracks)
	type part struct {
		rect         image.Rectangle
		zones, moved uint64
	}
	got := make([][]part, old)
	for _, o := range objs {
		best, bestArea := -1, 0
		for i, k := range tr.tracks[:old] {
			if a := overlap(grow(k.rect), o.rect); a > bestArea {
				best, bestArea = i, a
			}
		}
		if best >= 0 {
			got[best] = append(got[best], part{o.rect, o.zones, o.moved})
			continue
		}
		// Parts of one new object found apart in the same frame join.
		joined := false
		for _, k := range tr.tracks[old:] {
			if overlap(grow(k.rect), o.rect) > 0 {
				k.rect = k.rect.Union(o.rect)
				k.parts = append(k.parts, o.rect)
				k.origin = centre(k.rect)
				k.hits[0].zones |= o.moved
				joined = true
				break
			}
		}
		if !joined {
			tr.tracks = append(tr.tracks, &track{rect: o.rect, last: tr.frame, origin: centre(o.rect),
				hits: []sighting{{tr.frame, t, o.moved}}, parts: []image.Rectangle{o.rect}})
		}
	}
	// A new track's first sighting counts only if it showed quick change.
	for _, k := range tr.tracks[old:] {
		if k.hits[0].zones == 0 {
			k.hits = k.hits[:0]
		}
	}
	keep := tr.tracks[:0]
	for i, k := range tr.tracks {
		if i < old && len(got[i]) > 0 {
			u, zones, moved := got[i][0].rect, got[i][0].zones, got[i][0].moved
			k.parts = k.parts[:0]
			for _, p := range got[i] {
				k.parts = append(k.parts, p.rect)
			}
			for _, p := range got[i][1:] {
				u, zones, moved = u.Union(p.rect), zones|p.zones, moved|p.moved
			}
			if tr.maxStep > 0 && dist(centre(u), centre(k.rect)) > tr.maxStep {
				k.origin = centre(u)
			}
			k.rect, k.last = u, tr.frame
			if moved == 0 && tr.slow != nil && tr.slow(k) {
				moved = zones // slow but steady: a walker far away
			}
			if moved != 0 {
				k.hits = append(k.hits, sighting{tr.frame, t, moved})
			}
		}
		for len(k.hits) > 0 && k.hits[0].frame <= tr.frame-tr.n {
			k.hits = k.hits[1:]
		}
		if k.last > tr.frame-tr.n {
			keep = append(keep, k)
		}
	}
	tr.tracks = keep
}

// current reports whether the track counted a sighting in the latest frame.
func (k *track) current(frame int) bool {
	return len(k.hits) > 0 && k.hits[len(k.hits)-1].frame == frame
}

// zones are the zones of the track's counted sightings in the window.
func (k *track) zones() uint64 {
	var z uint64
	for _, h := range k.hits {
		z |= h.zones
	}
	return z
}

func overlap(a, b image.Rectangle) int {
	r := a.Intersect(b)
	return r.Dx() * r.Dy()
}

// grow widens a by half its size on every side (at least 4 px): what a
// walker or a car may cover between two analysed frames.
func grow(a image.Rectangle) image.Rectangle {
	gx, gy := max(a.Dx()/2, 4), max(a.Dy()/2, 4)
	return image.Rect(a.Min.X-gx, a.Min.Y-gy, a.Max.X+gx, a.Max.Y+gy)
}

func centre(r image.Rectangle) image.Point {
	return image.Pt((r.Min.X+r.Max.X)/2, (r.Min.Y+r.Max.Y)/2)
}

func dist(a, b image.Point) int {
	dx, dy := a.X-b.X, a.Y-b.Y
	d := 0
	for (d+1)*(d+1) <= dx*dx+dy*dy {
		d++
	}
	return d
}
