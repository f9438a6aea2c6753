package perimeter

import (
	"math"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/streams/motion"
)

// ids is the IDs of the tracks sighted in a frame.
func ids(f Frame) []uint64 {
	var out []uint64
	for _, k := range f.Tracks {
		if k.Seen {
			out = append(out, k.ID)
		}
	}
	return out
}

// TestCoastThroughOcclusion: an object hidden for 0.5 s (5 frames at
// 10 fps), crossing the line meanwhile, keeps its track, and the
// crossing is reported when it shows up on the other side, dated then.
func TestCoastThroughOcclusion(t *testing.T) {
	w := mustNew(t, oneLine(Both, pt(0.1, 0.5), pt(0.9, 0.5)))
	path := lerp(pt(0.5, 0.3), pt(0.5, 0.7), 20) // 0.02 a frame
	for i := 9; i <= 13; i++ {                   // 0.48 … 0.56 unseen
		path[i] = hidden
	}
	r := play(w, 0, path)
	first := ids(r.frames[0])
	if len(first) != 1 {
		t.Fatalf("frame 0 tracks %v", first)
	}
	for i, f := range r.frames {
		if path[i] == hidden {
			if len(f.Tracks) != 1 || f.Tracks[0].Seen {
				t.Errorf("frame %d: want the track coasting, got %+v", i, f.Tracks)
			}
			continue
		}
		if got := ids(f); len(got) != 1 || got[0] != first[0] {
			t.Errorf("frame %d: tracks %v, want [%d]", i, got, first[0])
		}
	}
	if len(r.crossings) != 1 || r.crossings[0].Direction != In || !r.crossings[0].At.Equal(at(14)) {
		t.Fatalf("crossings %+v, want one In at frame 14, the first sighting past the line", r.crossings)
	}
	// Hidden longer than Coast (1 s): the track is gone, and the object
	// comes back as a new one that crosses nothing it was not seen to.
	w = mustNew(t, oneLine(Both, pt(0.1, 0.5), pt(0.9, 0.5)))
	path = lerp(pt(0.5, 0.3), pt(0.5, 0.7), 20)
	for i := 9; i <= 20; i++ {
		path[i] = hidden
	}
	path = append(path, pt(0.5, 0.72), pt(0.5, 0.74))
	r = play(w, 0, path)
	if len(r.crossings) != 0 || len(r.frames[20].Tracks) != 0 {
		t.Errorf("after a long occlusion: crossings %+v, tracks %+v", r.crossings, r.frames[20].Tracks)
	}
}

// TestPassingEachOther: two people walking past each other in opposite
// directions keep their tracks: side by side a little apart, on the
// very same row (their boxes coincide in one frame), and when the
// camera sees them as one box while they overlap.
func TestPassingEachOther(t *testing.T) {
	for _, c := range []struct {
		name  string
		gap   float64 // vertical offset between them
		merge bool    // overlapping boxes come as their union
		n     int     // frames to walk 0.6 of the picture
	}{
		{"apart", 0.03, false, 30},
		{"same row", 0, false, 30},
		{"close, slow", 0.01, false, 90},
		{"merged while overlapping", 0.02, true, 30},
		{"merged while overlapping, slow", 0, true, 60},
		{"merged while overlapping, very slow", 0, true, 120},
	} {
		w := mustNew(t, Config{})
		var a, b uint64
		for i := 0; i <= c.n; i++ {
			f := float64(i) / float64(c.n)
			ba, bb := boxAt(pt(0.2+0.6*f, 0.5)), boxAt(pt(0.8-0.6*f, 0.5+c.gap))
			boxes := []motion.Box{ba, bb}
			if c.merge && math.Abs(ba.X-bb.X) < ba.W {
				boxes = []motion.Box{union(ba, bb)}
			}
			fr := w.Observe(at(i), boxes)
			if len(boxes) == 1 || ba == bb {
				continue // one box, or two the same: nothing to tell apart
			}
			ka, kb := nearestTrack(fr, ba), nearestTrack(fr, bb)
			if i == 0 {
				a, b = ka, kb
			}
			if ka != a || kb != b {
				t.Errorf("%s: frame %d: tracks %d, %d, want %d, %d", c.name, i, ka, kb, a, b)
				break
			}
		}
	}
}

// union is the box holding both.
func union(a, b motion.Box) motion.Box {
	x0, y0 := math.Min(a.X, b.X), math.Min(a.Y, b.Y)
	x1, y1 := math.Max(a.X+a.W, b.X+b.W), math.Max(a.Y+a.H, b.Y+b.H)
	return motion.Box{X: x0, Y: y0, W: x1 - x0, H: y1 - y0}
}

// nearestTrack is the ID of the sighted track whose box is b.
func nearestTrack(f Frame, b motion.Box) uint64 {
	for _, k := range f.Tracks {
		if k.Seen && k.Box == b {
			return k.ID
		}
	}
	return 0
}

// TestSplitDoesNotCrossTwice: a person whose shadow comes apart from
// them for a few frames while crossing: one crossing, one track kept.
func TestSplitDoesNotCrossTwice(t *testing.T) {
	w := mustNew(t, oneLine(Both, pt(0.1, 0.5), pt(0.9, 0.5)))
	var crossings []Crossing
	var person uint64
	for i := 0; i <= 20; i++ {
		a := pt(0.5, 0.3+0.02*float64(i)) // on the line at frame 10
		body := boxAt(a)
		shadow := motion.Box{X: body.X + body.W + 0.01, Y: body.Y + 0.04, W: 0.05, H: 0.06}
		boxes := []motion.Box{union(body, shadow)}
		if i >= 8 && i <= 12 {
			boxes = []motion.Box{body, shadow}
		}
		f := w.Observe(at(i), boxes)
		crossings = append(crossings, f.Crossings...)
		if i == 0 {
			person = f.Tracks[0].ID
		}
		if f.Tracks[0].ID != person || !f.Tracks[0].Seen {
			t.Errorf("frame %d: the person's track is %+v, want %d sighted", i, f.Tracks[0], person)
		}
	}
	if len(crossings) != 1 || crossings[0].Track != person {
		t.Fatalf("crossings %+v, want one by track %d", crossings, person)
	}
}

// TestBadBoxes: boxes that are not numbers, have no size or lie outside
// the picture are ignored and do not disturb a good one.
func TestBadBoxes(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	bad := []motion.Box{
		{X: nan, Y: 0.5, W: 0.1, H: 0.1}, {X: 0.5, Y: 0.5, W: inf, H: 0.1},
		{X: 0.5, Y: -inf, W: 0.1, H: 0.1}, {X: 0.5, Y: 0.5, W: -0.1, H: 0.1},
		{X: 0.5, Y: 0.5, W: 0.1, H: 0}, {X: 1e300, Y: 0.5, W: 1e300, H: 0.1},
		{X: -5, Y: -5, W: 10, H: 10}, {X: 2, Y: 2, W: 0.1, H: 0.1},
	}
	w := mustNew(t, oneLine(Both, pt(0.1, 0.5), pt(0.9, 0.5)))
	if f := w.Observe(at(0), bad); len(f.Tracks) != 0 {
		t.Fatalf("bad boxes made tracks: %+v", f.Tracks)
	}
	var crossings []Crossing
	for i, a := range lerp(pt(0.5, 0.3), pt(0.5, 0.7), 20) {
		f := w.Observe(at(i+1), append([]motion.Box{boxAt(a)}, bad...))
		crossings = append(crossings, f.Crossings...)
		if len(f.Tracks) != 1 {
			t.Fatalf("frame %d: %d tracks", i, len(f.Tracks))
		}
		k := f.Tracks[0]
		if !(math.Abs(k.Anchor.X-a.X) < 1e-9 && math.Abs(k.Anchor.Y-a.Y) < 1e-9) {
			t.Fatalf("frame %d: anchor %v, want %v", i, k.Anchor, a)
		}
	}
	if len(crossings) != 1 {
		t.Errorf("crossings %+v", crossings)
	}
}

// grid is n small boxes in rows of 8 from (x0, y0).
func grid(n int, x0, y0 float64) []motion.Box {
	var out []motion.Box
	for i := range n {
		out = append(out, motion.Box{X: x0 + 0.06*float64(i%8), Y: y0 + 0.06*float64(i/8), W: 0.02, H: 0.02})
	}
	return out
}

// TestTrackBound: never more than MaxTracks live tracks; the ones
// coasting longest give way first to new objects.
func TestTrackBound(t *testing.T) {
	w := mustNew(t, Config{})
	if f := w.Observe(at(0), grid(200, 0, 0)); len(f.Tracks) != MaxTracks {
		t.Fatalf("200 boxes: %d tracks, want %d", len(f.Tracks), MaxTracks)
	}
	w.Reset()
	a := w.Observe(at(1), grid(32, 0, 0))                                // 32 tracks
	w.Observe(at(2), grid(32, 0.5, 0))                                   // 32 more; a's coast
	c := w.Observe(at(3), append(grid(32, 0.5, 0), grid(10, 0, 0.6)...)) // 10 new
	if len(c.Tracks) != MaxTracks {
		t.Fatalf("%d tracks, want %d", len(c.Tracks), MaxTracks)
	}
	live := map[uint64]bool{}
	for _, k := range c.Tracks {
		live[k.ID] = true
	}
	gone := 0
	for _, k := range a.Tracks {
		if !live[k.ID] {
			gone++
		}
	}
	if gone != 10 {
		t.Errorf("%d of the oldest coasting tracks dropped, want 10", gone)
	}
	if got := len(ids(c)); got != 42 {
		t.Errorf("%d tracks sighted, want 42 (32 kept, 10 new)", got)
	}
	for i := 4; i < 40; i++ { // a long run keeps within bounds
		f := w.Observe(at(i), grid(40, 0.03*float64(i%5), 0.1*float64(i%3)))
		if len(f.Tracks) > MaxTracks {
			t.Fatalf("frame %d: %d tracks", i, len(f.Tracks))
		}
		for _, k := range f.Tracks {
			if len(k.Path) > pathLen {
				t.Fatalf("path of %d points", len(k.Path))
			}
		}
	}
}

// TestTimestamps: a frame at the same instant as the one before counts
// no time; one before it forgets the tracks; IDs never come back.
func TestTimestamps(t *testing.T) {
	w := mustNew(t, Config{})
	f := w.Observe(at(0), []motion.Box{boxAt(pt(0.5, 0.5))})
	id := f.Tracks[0].ID
	f = w.Observe(at(0), nil)
	if len(f.Tracks) != 1 || f.Tracks[0].Seen {
		t.Errorf("repeated instant without the box: %+v, want the track coasting", f.Tracks)
	}
	f = w.Observe(at(0), []motion.Box{boxAt(pt(0.51, 0.5))})
	if len(f.Tracks) != 1 || f.Tracks[0].ID != id || !f.Tracks[0].Seen {
		t.Errorf("repeated instant with the box: %+v", f.Tracks)
	}
	f = w.Observe(at(0).Add(-time.Hour), []motion.Box{boxAt(pt(0.51, 0.5))})
	if len(f.Tracks) != 1 || f.Tracks[0].ID <= id {
		t.Errorf("after the clock went back: %+v, want one new track", f.Tracks)
	}
	id = f.Tracks[0].ID
	w.Reset()
	f = w.Observe(at(1), []motion.Box{boxAt(pt(0.51, 0.5))})
	if len(f.Tracks) != 1 || f.Tracks[0].ID <= id {
		t.Errorf("after Reset: %+v, want a new ID above %d", f.Tracks, id)
	}
}

// TestFragmentGrowsUp: a second object that appears next to a tracked
// one is muted only for FragmentMute; once older it crosses like any
// other.
func TestFragmentGrowsUp(t *testing.T) {
	w := mustNew(t, oneLine(Both, pt(0.1, 0.5), pt(0.9, 0.5)))
	var crossings []Crossing
	for i := 0; i <= 40; i++ {
		boxes := []motion.Box{boxAt(pt(0.3, 0.3))} // someone standing
		if i >= 1 {                                // a second one steps out beside them and walks down
			boxes = append(boxes, boxAt(pt(0.36, 0.3+0.01*float64(i-1))))
		}
		crossings = append(crossings, w.Observe(at(i), boxes).Crossings...)
	}
	if len(crossings) != 1 || crossings[0].Track != 2 || crossings[0].Direction != In {
		t.Fatalf("crossings %+v, want one In by track 2", crossings)
	}
}
