package perimeter

import (
	"slices"
	"testing"

	"github.com/vigil-perimeter/vigil/streams/motion"
)

// TestSideOf: the right-hand side of a line as drawn, on a picture whose
// y grows downwards, in every orientation, and at a sharp bend.
func TestSideOf(t *testing.T) {
	horiz := []motion.Point{pt(0.1, 0.5), pt(0.9, 0.5)}
	vert := []motion.Point{pt(0.5, 0.1), pt(0.5, 0.9)}
	diag := []motion.Point{pt(0.1, 0.1), pt(0.9, 0.9)}
	vee := []motion.Point{pt(0.4, 0.2), pt(0.5, 0.6), pt(0.6, 0.2)} // a sharp V
	rev := func(p []motion.Point) []motion.Point { q := slices.Clone(p); slices.Reverse(q); return q }
	cases := []struct {
		name string
		line []motion.Point
		p    motion.Point
		side int
	}{
		{"left to right, below", horiz, pt(0.5, 0.6), 1},
		{"left to right, above", horiz, pt(0.5, 0.4), -1},
		{"right to left, below", rev(horiz), pt(0.5, 0.6), -1},
		{"right to left, above", rev(horiz), pt(0.5, 0.4), 1},
		{"top to bottom, left", vert, pt(0.4, 0.5), 1},
		{"top to bottom, right", vert, pt(0.6, 0.5), -1},
		{"bottom to top, left", rev(vert), pt(0.4, 0.5), -1},
		{"bottom to top, right", rev(vert), pt(0.6, 0.5), 1},
		{"diagonal, below left", diag, pt(0.3, 0.7), 1},
		{"diagonal, above right", diag, pt(0.7, 0.3), -1},
		{"beyond the end, below", horiz, pt(0.95, 0.6), 1},
		{"on the line", horiz, pt(0.5, 0.5), 0},
		{"V, inside", vee, pt(0.5, 0.4), -1},
		{"V, under the bend", vee, pt(0.5, 0.7), 1},
		// Nearest to the bend, but right of the first arm's extension:
		// judged by the bend, it is outside the V.
		{"V, beside the bend", vee, pt(0.56, 0.62), 1},
		{"V, beside the bend, other way", vee, pt(0.44, 0.62), 1},
		{"V drawn back, under the bend", rev(vee), pt(0.56, 0.62), -1},
	}
	for _, c := range cases {
		if side, _ := sideOf(c.line, c.p); side != c.side {
			t.Errorf("%s: side %d, want %d", c.name, side, c.side)
		}
	}
}

// TestCrossingOrientations walks straight across lines drawn every which
// way and checks the direction reported, and that In and Out lines keep
// only their own.
func TestCrossingOrientations(t *testing.T) {
	cases := []struct {
		name     string
		line     []motion.Point
		from, to motion.Point
		want     Direction
	}{
		{"left to right, walking down", []motion.Point{pt(0.1, 0.5), pt(0.9, 0.5)}, pt(0.5, 0.3), pt(0.5, 0.7), In},
		{"left to right, walking up", []motion.Point{pt(0.1, 0.5), pt(0.9, 0.5)}, pt(0.5, 0.7), pt(0.5, 0.3), Out},
		{"right to left, walking down", []motion.Point{pt(0.9, 0.5), pt(0.1, 0.5)}, pt(0.5, 0.3), pt(0.5, 0.7), Out},
		{"right to left, walking up", []motion.Point{pt(0.9, 0.5), pt(0.1, 0.5)}, pt(0.5, 0.7), pt(0.5, 0.3), In},
		{"top to bottom, walking right", []motion.Point{pt(0.5, 0.1), pt(0.5, 0.9)}, pt(0.3, 0.5), pt(0.7, 0.5), Out},
		{"top to bottom, walking left", []motion.Point{pt(0.5, 0.1), pt(0.5, 0.9)}, pt(0.7, 0.5), pt(0.3, 0.5), In},
		{"bottom to top, walking right", []motion.Point{pt(0.5, 0.9), pt(0.5, 0.1)}, pt(0.3, 0.5), pt(0.7, 0.5), In},
		{"bottom to top, walking left", []motion.Point{pt(0.5, 0.9), pt(0.5, 0.1)}, pt(0.7, 0.5), pt(0.3, 0.5), Out},
		{"diagonal, walking down left", []motion.Point{pt(0.1, 0.1), pt(0.9, 0.9)}, pt(0.7, 0.3), pt(0.3, 0.7), In},
		{"diagonal, walking up right", []motion.Point{pt(0.1, 0.1), pt(0.9, 0.9)}, pt(0.3, 0.7), pt(0.7, 0.3), Out},
		{"V, down through the bend", []motion.Point{pt(0.1, 0.3), pt(0.5, 0.6), pt(0.9, 0.3)}, pt(0.5, 0.4), pt(0.5, 0.8), In},
		{"V, up through the bend", []motion.Point{pt(0.1, 0.3), pt(0.5, 0.6), pt(0.9, 0.3)}, pt(0.5, 0.8), pt(0.5, 0.4), Out},
		{"V with its bend point repeated", []motion.Point{pt(0.1, 0.3), pt(0.5, 0.6), pt(0.5, 0.6), pt(0.9, 0.3)}, pt(0.5, 0.4), pt(0.5, 0.8), In},
		{"V, across one arm", []motion.Point{pt(0.1, 0.3), pt(0.5, 0.6), pt(0.9, 0.3)}, pt(0.3, 0.3), pt(0.3, 0.6), In},
		{"L bend, across the corner", []motion.Point{pt(0.2, 0.5), pt(0.5, 0.5), pt(0.5, 0.2)}, pt(0.6, 0.6), pt(0.4, 0.4), Out},
	}
	for _, c := range cases {
		path := lerp(c.from, c.to, 20) // frame 10 is the middle, on the line
		for _, dir := range []Direction{Both, In, Out} {
			got := play(mustNew(t, oneLine(dir, c.line...)), 0, path).crossings
			var want []Direction
			if dir == Both || dir == c.want {
				want = []Direction{c.want}
			}
			if !slices.Equal(dirs(got), want) {
				t.Errorf("%s, %s line: got %v, want %v", c.name, dir, dirs(got), want)
				continue
			}
			if len(got) == 1 && got[0].Line != "wall" {
				t.Errorf("%s: line %q", c.name, got[0].Line)
			}
		}
	}
}

// TestCrossingTime: the crossing is dated by the first frame on the new
// side, though it counts only once the anchor is past the band.
func TestCrossingTime(t *testing.T) {
	w := mustNew(t, oneLine(Both, pt(0.1, 0.5), pt(0.9, 0.5)))
	// 0.45, 0.49 (band), 0.51 (new side, in the band), 0.53 (past it).
	r := play(w, 0, []motion.Point{pt(0.5, 0.40), pt(0.5, 0.45), pt(0.5, 0.49), pt(0.5, 0.51), pt(0.5, 0.53), pt(0.5, 0.56)})
	if len(r.crossings) != 1 || !r.crossings[0].At.Equal(at(3)) {
		t.Fatalf("crossings %+v, want one dated frame 3 (%v)", r.crossings, at(3))
	}
	if len(r.frames[3].Crossings) != 0 || len(r.frames[4].Crossings) != 1 {
		t.Errorf("the crossing should be reported in frame 4, when the band is passed")
	}
}

// TestHysteresis: an anchor dithering on the line does not fire again
// and again; stepping over and back fires each way only once each side
// is reached beyond the band (0.02).
func TestHysteresis(t *testing.T) {
	ys := func(v ...float64) []motion.Point {
		var out []motion.Point
		for _, y := range v {
			out = append(out, pt(0.5, y))
		}
		return out
	}
	repeat := func(n int, v ...float64) []float64 {
		var out []float64
		for range n {
			out = append(out, v...)
		}
		return out
	}
	approach := []float64{0.40, 0.42, 0.44, 0.46, 0.48}
	cases := []struct {
		name string
		ys   []float64
		want []Direction
	}{
		{"dithering within the band, then back", append(append(approach, repeat(20, 0.485, 0.515, 0.5, 0.49, 0.51)...), 0.45, 0.40), nil},
		{"dithering slightly beyond on the far side", append(approach, repeat(20, 0.49, 0.525, 0.51, 0.495)...), []Direction{In}},
		{"dithering slightly beyond on the near side", append(approach, repeat(20, 0.475, 0.51, 0.49, 0.505)...), nil},
		{"standing on the line, then on", append(append(approach, repeat(30, 0.5)...), 0.52, 0.55), []Direction{In}},
		{"over and back within the band, then on", append(approach, 0.515, 0.485, 0.515, 0.485, 0.55, 0.6), []Direction{In}},
		{"over and back beyond the band", append(approach, 0.53, 0.47, 0.53, 0.47), []Direction{In, Out, In, Out}},
		{"over beyond, back within, over again", append(approach, 0.53, 0.49, 0.53, 0.56), []Direction{In}},
	}
	for _, c := range cases {
		w := mustNew(t, oneLine(Both, pt(0.1, 0.5), pt(0.9, 0.5)))
		if got := dirs(play(w, 0, ys(c.ys...)).crossings); !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

// TestRoundTheEnd: walking round a line's end changes side but crosses
// nothing; coming back across it does.
func TestRoundTheEnd(t *testing.T) {
	for _, line := range [][]motion.Point{
		{pt(0.3, 0.5), pt(0.7, 0.5)},
		{pt(0.3, 0.5), pt(0.5, 0.55), pt(0.7, 0.5)},
	} {
		w := mustNew(t, oneLine(Both, line...))
		r := play(w, 0, route(10, pt(0.5, 0.3), pt(0.8, 0.3), pt(0.8, 0.8), pt(0.5, 0.8)))
		if len(r.crossings) != 0 {
			t.Errorf("%v: round the end: %+v", line, r.crossings)
		}
		r = play(w, 31, route(10, pt(0.5, 0.8), pt(0.5, 0.3)))
		if got := dirs(r.crossings); !slices.Equal(got, []Direction{Out}) {
			t.Errorf("%v: back across: %v", line, got)
		}
	}
}

// TestFastJump: an object so fast that it is on one side, clear of the
// band, in one frame and on the other in the next still crosses: the
// segment between its sightings cuts the line.
func TestFastJump(t *testing.T) {
	w := mustNew(t, oneLine(Both, pt(0.1, 0.5), pt(0.9, 0.5)))
	// 0.08 a frame (0.8 of the picture a second): 0.46 → 0.54.
	r := play(w, 0, lerp(pt(0.5, 0.22), pt(0.5, 0.86), 8))
	if len(r.crossings) != 1 || r.crossings[0].Direction != In || !r.crossings[0].At.Equal(at(4)) {
		t.Fatalf("crossings %+v, want one In at frame 4", r.crossings)
	}
	ids := map[uint64]bool{}
	for _, f := range r.frames {
		for _, k := range f.Tracks {
			ids[k.ID] = true
		}
	}
	if len(ids) != 1 {
		t.Errorf("the fast object got %d tracks", len(ids))
	}
}
