package motion

import (
	"image"
	"testing"
	"time"
)

// slowTracker is a tracker whose slow path is the detector's at 320 px:
// travel of 16 px, steps of at most 8 px.
func slowTracker() *tracker {
	tr := &tracker{n: 5, maxStep: int(slowStep * 320)}
	tr.slow = func(k *track) bool { return k.travelled() >= int(slowTravel*320) }
	return tr
}

// sightings runs centres through tr as a 15×15 px object that always
// passes the size test and never the change test (after its first frame,
// which starts the track), and returns in how many frames it counted.
func sightings(tr *tracker, centres []image.Point) int {
	n := 0
	for i, c := range centres {
		o := object{rect: image.Rect(c.X-7, c.Y-7, c.X+8, c.Y+8), area: 200, zones: 1}
		if i == 0 {
			o.moved = 1
		}
		tr.step([]object{o}, time.Unix(int64(i), 0))
		if len(tr.tracks) == 1 && tr.tracks[0].current(tr.frame) {
			n++
		}
	}
	return n - 1 // not the first frame
}

// TestSlowPathNeedsSteadySteps: a walker far away that moves 2 px per
// analysed frame counts once it has travelled 16 px; a region taken over
// from a neighbour 18 px away (one jump) that then stands still never
// does, however long it stays.
func TestSlowPathNeedsSteadySteps(t *testing.T) {
	var walker, jumper []image.Point
	for i := range 20 {
		walker = append(walker, image.Pt(100+2*i, 100))
		x := 300
		if i > 0 {
			x = 282
		}
		jumper = append(jumper, image.Pt(x, 160))
	}
	if n := sightings(slowTracker(), walker); n < 5 {
		t.Errorf("slow walker counted in %d frames, want ≥ 5", n)
	}
	if n := sightings(slowTracker(), jumper); n != 0 {
		t.Errorf("a region that jumped once and stood still counted in %d frames", n)
	}
}
