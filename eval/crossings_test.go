package main

import (
	"testing"

	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/streams/perimeter"
)

// track makes a truth track whose anchor (bottom centre) follows path,
// one point a frame from frame first.
func track(id, first int, path ...motion.Point) truthTrack {
	t := truthTrack{ID: id}
	for i, p := range path {
		t.Boxes = append(t.Boxes, truthBox{first + i, motion.Box{X: p.X - 0.05, Y: p.Y - 0.1, W: 0.1, H: 0.1}})
	}
	return t
}

func TestPathCrossings(t *testing.T) {
	lines := []perimeter.Line{
		{Name: "h", Points: []motion.Point{pt(0.2, 0.5), pt(0.8, 0.5)}, Direction: perimeter.Both}, // drawn left to right: In is downwards
		{Name: "v", Points: []motion.Point{pt(0.5, 0.9), pt(0.5, 0.6)}, Direction: perimeter.Both}, // drawn upwards: In is rightwards
	}
	cases := []struct {
		name string
		tr   truthTrack
		want []trueCrossing
	}{
		{"down through h", track(1, 10, pt(0.4, 0.3), pt(0.4, 0.45), pt(0.4, 0.55), pt(0.4, 0.7)),
			[]trueCrossing{{"h", perimeter.In, 1, 12}}},
		{"up through h", track(2, 0, pt(0.6, 0.58), pt(0.6, 0.52), pt(0.6, 0.48)),
			[]trueCrossing{{"h", perimeter.Out, 2, 2}}},
		{"round the end of h", track(3, 0, pt(0.9, 0.3), pt(0.9, 0.7)), nil},
		{"touches h and goes back", track(4, 0, pt(0.3, 0.4), pt(0.3, 0.5), pt(0.3, 0.4)), nil},
		{"along h, never across", track(5, 0, pt(0.25, 0.4), pt(0.5, 0.4), pt(0.75, 0.4)), nil},
		{"right across v, then back", track(6, 5, pt(0.4, 0.8), pt(0.6, 0.8), pt(0.6, 0.8), pt(0.4, 0.8)),
			[]trueCrossing{{"v", perimeter.In, 6, 6}, {"v", perimeter.Out, 6, 8}}},
		{"diagonal through both", track(7, 0, pt(0.3, 0.3), pt(0.45, 0.55), pt(0.55, 0.7)),
			[]trueCrossing{{"h", perimeter.In, 7, 1}, {"v", perimeter.In, 7, 2}}},
	}
	for _, c := range cases {
		got := pathCrossings(lines, c.tr)
		if len(got) != len(c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: crossing %d = %+v, want %+v", c.name, i, got[i], c.want[i])
			}
		}
	}
}

func TestMatchCrossings(t *testing.T) {
	truth := []trueCrossing{
		{"a", perimeter.In, 1, 100},
		{"a", perimeter.In, 2, 110},
		{"b", perimeter.Out, 3, 200},
		{"b", perimeter.Out, 4, 400}, // missed
	}
	found := []detCrossing{
		{Line: "a", Direction: perimeter.In, Frame: 112},  // closer to 110 than to 100
		{Line: "a", Direction: perimeter.Out, Frame: 97},  // matches 100, wrong way
		{Line: "a", Direction: perimeter.In, Frame: 104},  // both a's taken: false
		{Line: "a", Direction: perimeter.Out, Frame: 200}, // wrong line: false
		{Line: "b", Direction: perimeter.Out, Frame: 215}, // 15 frames late: within 15
		{Line: "b", Direction: perimeter.Out, Frame: 300}, // nothing near: false
	}
	sc := matchCrossings(truth, found, 15, 30)
	if sc.Matched != 3 || sc.Truth != 4 || sc.Found != 6 || sc.DirRight != 2 {
		t.Fatalf("score %+v", sc)
	}
	wantMatch := []int{1, 0, -1, -1, 2, -1}
	for i, f := range found {
		if f.Matched != wantMatch[i] {
			t.Errorf("found %d matched %d, want %d", i, f.Matched, wantMatch[i])
		}
	}
	if sc.Recall != 0.75 || sc.Precision != 0.5 || sc.MaxAbsErr != 0.5 {
		t.Errorf("recall %v precision %v max error %v", sc.Recall, sc.Precision, sc.MaxAbsErr)
	}
	if m := (2.0/30 + 3.0/30 + 15.0/30) / 3; sc.MeanAbsErr < m-1e-9 || sc.MeanAbsErr > m+1e-9 {
		t.Errorf("mean error %v, want %v", sc.MeanAbsErr, m)
	}
}

func TestLinkerAndIDSwitches(t *testing.T) {
	var l linker
	box := func(x float64) motion.Box { return motion.Box{X: x, Y: 0.5, W: 0.1, H: 0.1} }
	// Frame 0: two objects. Frame 1: both move a little. Frame 2: object
	// 1 splits in two (the larger part keeps the track), object 2 gone.
	l.step(0, []motion.Box{{}, box(0.1), box(0.6)}, []bool{false, true, true}, [][]int{nil, {0, 0, 0}, {0, 0, 0}})
	l.step(1, []motion.Box{{}, box(0.12), box(0.62)}, []bool{false, true, true}, [][]int{nil, {0, 80, 0}, {0, 0, 90}})
	l.step(2, []motion.Box{{}, box(0.13), box(0.2), {}}, []bool{false, true, true, false}, [][]int{nil, {0, 50, 0}, {0, 20, 0}, {0, 0, 5}})
	if len(l.tracks) != 3 {
		t.Fatalf("%d tracks, want 3", len(l.tracks))
	}
	if n := len(l.tracks[0].Boxes); n != 3 || l.tracks[0].Boxes[2].Box != box(0.13) {
		t.Errorf("track 1: %+v", l.tracks[0].Boxes)
	}
	if n := len(l.tracks[1].Boxes); n != 2 {
		t.Errorf("track 2 has %d boxes, want 2", n)
	}
	if b := l.tracks[2].Boxes; len(b) != 1 || b[0].Frame != 2 {
		t.Errorf("track 3: %+v", b)
	}

	tr := truthTrack{ID: 1}
	for f := 0; f < 6; f++ {
		tr.Boxes = append(tr.Boxes, truthBox{f, box(0.1 + 0.01*float64(f))})
	}
	seen := func(id uint64, x float64) perimeter.Track { return perimeter.Track{ID: id, Box: box(x), Seen: true} }
	tracks := map[int][]perimeter.Track{
		0: {seen(7, 0.1), seen(8, 0.5)},
		2: {seen(7, 0.12)},
		3: nil,                            // analysed, not covered
		4: {seen(9, 0.14)},                // a new ID: one switch
		5: {seen(9, 0.6), seen(10, 0.15)}, // the far box does not count; another switch
	}
	sw, cov, n, ids := idSwitches(tr, tracks, 0.3)
	if sw != 2 || cov != 4 || n != 5 || len(ids) != 3 {
		t.Errorf("switches %d covered %d of %d ids %v; want 2, 4 of 5, 3 ids", sw, cov, n, ids)
	}
}
