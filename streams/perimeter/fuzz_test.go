package perimeter

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/streams/motion"
)

// fuzzConfig is the configuration the fuzz target watches with: lines in
// several shapes and directions, a region and a band.
func fuzzConfig() Config {
	return Config{
		Lines: []Line{
			{Name: "wall", Points: []motion.Point{pt(0.1, 0.5), pt(0.9, 0.5)}, Direction: In},
			{Name: "vee", Points: []motion.Point{pt(0.2, 0.2), pt(0.5, 0.6), pt(0.5, 0.6), pt(0.8, 0.2)}, Direction: Both},
			{Name: "post", Points: []motion.Point{pt(0.7, 0.9), pt(0.7, 0.1)}, Direction: Out},
		},
		Dwells: []Dwell{
			{Name: "yard", Region: square, After: time.Second},
			{Name: "by the wall", Line: "wall", Reach: 0.05, After: 2 * time.Second},
		},
	}
}

// fuzzValue makes a coordinate from a byte: mostly in the picture, some
// a little or far outside, some not numbers at all.
func fuzzValue(b byte) float64 {
	switch b {
	case 255:
		return math.NaN()
	case 254:
		return math.Inf(1)
	case 253:
		return math.Inf(-1)
	case 252:
		return 1e300
	case 251:
		return -0.5
	}
	return float64(b) / 240
}

// FuzzObserve feeds a watcher frames decoded from bytes — per frame a
// time step (some back in time, some none), a box count and the boxes —
// and checks that it never panics, keeps its tracks bounded and reports
// only what it was configured to.
func FuzzObserve(f *testing.F) {
	f.Add([]byte{100, 1, 120, 60, 12, 24, 100, 1, 120, 80, 12, 24, 100, 1, 120, 100, 12, 24, 100, 1, 120, 130, 12, 24})
	f.Add([]byte{0, 3, 255, 1, 2, 3, 10, 10, 10, 10, 254, 0, 0, 0})
	f.Add([]byte{200, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24})
	f.Add([]byte{7, 1, 0, 0, 240, 240, 7, 0, 7, 1, 0, 0, 240, 240})
	f.Fuzz(observeBytes)
}

// TestObserveRandom runs FuzzObserve's checks on random inputs, for
// runs without the fuzzing engine.
func TestObserveRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		data := make([]byte, rng.IntN(2000))
		for i := range data {
			data[i] = byte(rng.IntN(256))
		}
		observeBytes(t, data)
	}
}

// observeBytes decodes frames from data, feeds them to a watcher with
// fuzzConfig and checks every frame.
func observeBytes(t *testing.T, data []byte) {
	cfg := fuzzConfig()
	lines := map[string]Direction{}
	for _, l := range cfg.Lines {
		lines[l.Name] = l.Direction
	}
	dwells := map[string]bool{"yard": true, "by the wall": true}
	w := mustNew(t, cfg)
	now := t0
	for len(data) >= 2 {
		step, n := data[0], int(data[1]%12)
		data = data[2:]
		now = now.Add(time.Duration(int(step)-20) * 10 * time.Millisecond)
		var boxes []motion.Box
		for ; n > 0 && len(data) >= 4; n-- {
			boxes = append(boxes, motion.Box{X: fuzzValue(data[0]), Y: fuzzValue(data[1]), W: fuzzValue(data[2]) / 3, H: fuzzValue(data[3]) / 3})
			data = data[4:]
		}
		checkFrame(t, w.Observe(now, boxes), lines, dwells)
	}
}

// checkFrame asserts what any frame must satisfy.
func checkFrame(t *testing.T, fr Frame, lines map[string]Direction, dwells map[string]bool) {
	t.Helper()
	if len(fr.Tracks) > MaxTracks {
		t.Fatalf("%d tracks", len(fr.Tracks))
	}
	seen := map[uint64]bool{}
	for _, k := range fr.Tracks {
		if seen[k.ID] || k.ID == 0 {
			t.Fatalf("track ID %d repeated or zero", k.ID)
		}
		seen[k.ID] = true
		if !validBox(k.Box) || len(k.Path) > pathLen || math.IsNaN(k.Anchor.X) || math.IsNaN(k.Anchor.Y) {
			t.Fatalf("bad track %+v", k)
		}
	}
	for _, c := range fr.Crossings {
		dir, ok := lines[c.Line]
		if !ok || (c.Direction != In && c.Direction != Out) || (dir != Both && dir != c.Direction) || !seen[c.Track] {
			t.Fatalf("crossing %+v not allowed by the configuration", c)
		}
	}
	for _, l := range fr.Loiters {
		if !dwells[l.Dwell] || l.At.Before(l.Since) || !seen[l.Track] {
			t.Fatalf("bad loiter %+v", l)
		}
	}
}
