package perimeter

import (
	"math"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/streams/motion"
)

// square is the dwell region used below: the middle of the picture.
var square = motion.Polygon{pt(0.3, 0.3), pt(0.7, 0.3), pt(0.7, 0.7), pt(0.3, 0.7)}

// circling is n frames walking round a circle of radius r about c,
// from its leftmost point.
func circling(c motion.Point, r float64, n int) []motion.Point {
	var out []motion.Point
	for i := 1; i <= n; i++ {
		a := math.Pi + 2*math.Pi*float64(i)/50 // a lap every 5 s
		out = append(out, pt(c.X+r*math.Cos(a), c.Y+r*math.Sin(a)))
	}
	return out
}

// TestDwellMovingInside: someone walking about inside the region for
// 10 s raises exactly one loiter, when they have been in for After,
// dated from their first frame inside.
func TestDwellMovingInside(t *testing.T) {
	w := mustNew(t, Config{Dwells: []Dwell{{Name: "gate", Region: square, After: 5 * time.Second}}})
	path := route(10, pt(0.1, 0.5), pt(0.4, 0.5))            // frame 10 at 0.4: inside since frame 7 (0.31)
	path = append(path, circling(pt(0.5, 0.5), 0.1, 100)...) // 10 s about inside
	r := play(w, 0, path)
	if len(r.loiters) != 1 {
		t.Fatalf("loiters %+v, want one", r.loiters)
	}
	l := r.loiters[0]
	if l.Dwell != "gate" || !l.Since.Equal(at(7)) || !l.At.Equal(at(7).Add(5*time.Second)) {
		t.Errorf("loiter %s since %v at %v, want gate since %v at %v", l.Dwell, l.Since, l.At, at(7), at(57))
	}
}

// TestDwellLeaveGrace: stepping out for less than LeaveGrace (2 s) keeps
// the visit; staying out longer starts a new one, which fires again.
func TestDwellLeaveGrace(t *testing.T) {
	out, in := pt(0.2, 0.5), pt(0.5, 0.5)
	stay := func(p motion.Point, n int) []motion.Point {
		var s []motion.Point
		for i := range n {
			s = append(s, pt(p.X+0.005*float64(i%3), p.Y)) // fidgeting
		}
		return s
	}
	cfg := Config{Dwells: []Dwell{{Name: "gate", Region: square, After: 5 * time.Second}}}
	// In 3 s, out 1 s, in 3 s: one visit of 7 s, fires 5 s after entry.
	path := append(append(append(stay(in, 30), route(3, in, out)...), stay(out, 7)...), route(3, out, in)...)
	path = append(path, stay(in, 30)...)
	r := play(mustNew(t, cfg), 0, path)
	if len(r.loiters) != 1 || !r.loiters[0].Since.Equal(at(0)) || !r.loiters[0].At.Equal(at(50)) {
		t.Fatalf("short absence: loiters %+v, want one since frame 0 at frame 50", r.loiters)
	}
	// In 6 s (fires), out 5 s, in 6 s: a new visit, fires again.
	cfg.Dwells[0].After = 4 * time.Second
	path = append(append(append(stay(in, 60), route(3, in, out)...), stay(out, 50)...), route(3, out, in)...)
	back := len(path) - 1 // the first frame inside again is within the last leg
	path = append(path, stay(in, 60)...)
	r = play(mustNew(t, cfg), 0, path)
	if len(r.loiters) != 2 {
		t.Fatalf("long absence: loiters %+v, want two", r.loiters)
	}
	if l := r.loiters[1]; l.Since.Before(at(back-3)) || !l.At.Equal(l.Since.Add(4*time.Second)) {
		t.Errorf("second visit: since %v at %v, want since about %v", l.Since, l.At, at(back))
	}
	if r.loiters[0].Track != r.loiters[1].Track {
		t.Errorf("the person changed tracks")
	}
}

// TestDwellNearLine: a band dwell counts whoever stays within Reach of
// the line, on either side, and nobody further away.
func TestDwellNearLine(t *testing.T) {
	cfg := Config{
		Lines:  []Line{{Name: "wall", Points: []motion.Point{pt(0.1, 0.5), pt(0.9, 0.5)}, Direction: Both}},
		Dwells: []Dwell{{Name: "by the wall", Line: "wall", Reach: 0.05, After: 3 * time.Second}},
	}
	cases := []struct {
		name string
		path []motion.Point
		want int
	}{
		{"along it, just above", route(40, pt(0.2, 0.47), pt(0.8, 0.47)), 1},
		{"along it, just below", route(40, pt(0.2, 0.54), pt(0.8, 0.54)), 1},
		{"weaving across it", route(10, pt(0.3, 0.46), pt(0.35, 0.54), pt(0.4, 0.46), pt(0.45, 0.54), pt(0.5, 0.46)), 1},
		{"too far", route(40, pt(0.2, 0.6), pt(0.8, 0.6)), 0},
		{"past the end", route(40, pt(0.96, 0.2), pt(0.96, 0.8)), 0},
		{"briefly", route(20, pt(0.5, 0.3), pt(0.5, 0.7)), 0},
	}
	for _, c := range cases {
		r := play(mustNew(t, cfg), 0, c.path)
		if len(r.loiters) != c.want {
			t.Errorf("%s: loiters %+v, want %d", c.name, r.loiters, c.want)
		}
	}
}

// TestDwellUnseen: time not seen inside counts as time away: a track
// coasting (unseen) for longer than LeaveGrace starts a new visit when
// it is sighted inside again.
func TestDwellUnseen(t *testing.T) {
	cfg := Config{Coast: 3 * time.Second, LeaveGrace: time.Second,
		Dwells: []Dwell{{Name: "gate", Region: square, After: 3 * time.Second}}}
	var path []motion.Point
	for i := range 80 {
		p := pt(0.5+0.001*float64(i), 0.5)
		if i >= 20 && i < 40 { // unseen for 2 s
			p = hidden
		}
		path = append(path, p)
	}
	r := play(mustNew(t, cfg), 0, path)
	if len(r.loiters) != 1 || !r.loiters[0].Since.Equal(at(40)) || !r.loiters[0].At.Equal(at(70)) {
		t.Fatalf("loiters %+v, want one since frame 40 at frame 70", r.loiters)
	}
	if r.frames[0].Tracks[0].ID != r.frames[40].Tracks[0].ID {
		t.Errorf("the track was lost while coasting")
	}
}

// TestDwellAtPictureEdge: someone walking in close to the camera, their
// box cut by the bottom of the picture, is inside a region drawn down to
// the picture's edge.
func TestDwellAtPictureEdge(t *testing.T) {
	lawn := motion.Polygon{pt(0, 0.6), pt(0.8, 0.8), pt(0.8, 1), pt(0, 1)}
	w := mustNew(t, Config{Dwells: []Dwell{{Name: "lawn", Region: lawn, After: 2 * time.Second}}})
	var l []Loiter
	for i := range 40 {
		f := w.Observe(at(i), []motion.Box{{X: 0.3 + 0.002*float64(i), Y: 0.75, W: 0.1, H: 0.25}}) // feet at y = 1
		l = append(l, f.Loiters...)
	}
	if len(l) != 1 || !l[0].Since.Equal(at(0)) {
		t.Fatalf("loiters %+v, want one since the first frame", l)
	}
}

// TestDwellCarriedAcrossSplit: a pair walks in as one box; after 3 s
// she goes on alone, her box too far from the pair's to be its track
// but near where the pair stood: the visit carries on (the
// loiter is dated from the pair's entry, not from her new track's
// first frame), and a visit that already fired does not fire again
// when it changes track once more.
func TestDwellCarriedAcrossSplit(t *testing.T) {
	w := mustNew(t, Config{Dwells: []Dwell{{Name: "gate", Region: square, After: 5 * time.Second}}})
	var got []Loiter
	ids := map[uint64]bool{}
	step := func(i int, b motion.Box) {
		f := w.Observe(at(i), []motion.Box{b})
		got = append(got, f.Loiters...)
		for _, k := range f.Tracks {
			if k.Seen {
				ids[k.ID] = true
			}
		}
	}
	for i := range 30 { // 3 s as one box
		step(i, motion.Box{X: 0.4, Y: 0.4, W: 0.1, H: 0.2})
	}
	for i := 30; i < 80; i++ { // she, 0.2 to the right
		step(i, motion.Box{X: 0.61, Y: 0.35, W: 0.08, H: 0.25})
	}
	if len(ids) != 2 {
		t.Fatalf("%d tracks, want the pair's and hers", len(ids))
	}
	if len(got) != 1 || !got[0].Since.Equal(at(0)) || !got[0].At.Equal(at(50)) {
		t.Fatalf("loiters %+v, want one since the pair walked in, at 5 s", got)
	}
	got = nil
	for i := 80; i < 160; i++ { // and found again 0.2 back to the left
		step(i, motion.Box{X: 0.41, Y: 0.35, W: 0.08, H: 0.25})
	}
	if len(ids) != 3 || len(got) != 0 {
		t.Errorf("%d tracks, loiters %+v: want a third track and no second loiter for the visit", len(ids), got)
	}
}
