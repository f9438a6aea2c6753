package perimeter

import (
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/streams/motion"
)

// walk moves a 0.05 × 0.1 box from (x0, y0) to (x1, y1) (its anchor, the
// bottom centre) in n frames at 10 fps and returns the crossings.
func walk(t *testing.T, w *Watcher, start time.Time, x0, y0, x1, y1 float64, n int) []Crossing {
	t.Helper()
	var out []Crossing
	for i := 0; i <= n; i++ {
		f := float64(i) / float64(n)
		ax, ay := x0+(x1-x0)*f, y0+(y1-y0)*f
		fr := w.Observe(start.Add(time.Duration(i)*100*time.Millisecond), []motion.Box{{X: ax - 0.025, Y: ay - 0.1, W: 0.05, H: 0.1}})
		out = append(out, fr.Crossings...)
	}
	return out
}

// TestCrossingDirection: a line drawn left to right across the picture;
// walking down across it is In (towards its right-hand side on the
// picture), walking up is Out, and a line set to In ignores Out.
func TestCrossingDirection(t *testing.T) {
	base := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	w, err := New(Config{Lines: []Line{{Name: "wall", Points: []motion.Point{{X: 0.1, Y: 0.5}, {X: 0.9, Y: 0.5}}, Direction: Both}}})
	if err != nil {
		t.Fatal(err)
	}
	got := walk(t, w, base, 0.5, 0.3, 0.5, 0.7, 20)
	if len(got) != 1 || got[0].Direction != In || got[0].Line != "wall" {
		t.Fatalf("walking down: %+v", got)
	}
	if want := base.Add(1100 * time.Millisecond); !got[0].At.Equal(want) {
		t.Errorf("crossing at %v, want the first frame past the line, %v", got[0].At, want)
	}
	w.Reset()
	if got := walk(t, w, base.Add(time.Minute), 0.5, 0.7, 0.5, 0.3, 20); len(got) != 1 || got[0].Direction != Out {
		t.Fatalf("walking up: %+v", got)
	}
	in, _ := New(Config{Lines: []Line{{Name: "wall", Points: []motion.Point{{X: 0.1, Y: 0.5}, {X: 0.9, Y: 0.5}}, Direction: In}}})
	if got := walk(t, in, base, 0.5, 0.7, 0.5, 0.3, 20); len(got) != 0 {
		t.Errorf("an in-only line fired on the way out: %+v", got)
	}
	// Round the end of the line: sides change, nothing crosses.
	w.Reset()
	if got := walk(t, w, base.Add(2*time.Minute), 0.95, 0.3, 0.95, 0.7, 20); len(got) != 0 {
		t.Errorf("passing beyond the line's end: %+v", got)
	}
}

// t0 is the start of every made-up recording.
var t0 = time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)

// frameDt is the made-up camera's frame interval (10 fps).
const frameDt = 100 * time.Millisecond

// hidden marks a frame in which the object is not seen.
var hidden = motion.Point{X: -1, Y: -1}

// at is frame i's time.
func at(i int) time.Time { return t0.Add(time.Duration(i) * frameDt) }

// boxAt is a 0.05 × 0.1 box standing at anchor a (its bottom centre).
func boxAt(a motion.Point) motion.Box {
	return motion.Box{X: a.X - 0.025, Y: a.Y - 0.1, W: 0.05, H: 0.1}
}

// pt is a point.
func pt(x, y float64) motion.Point { return motion.Point{X: x, Y: y} }

// lerp is n+1 points evenly from a to b, both included.
func lerp(a, b motion.Point, n int) []motion.Point {
	out := make([]motion.Point, 0, n+1)
	for i := 0; i <= n; i++ {
		f := float64(i) / float64(n)
		out = append(out, pt(a.X+(b.X-a.X)*f, a.Y+(b.Y-a.Y)*f))
	}
	return out
}

// route joins legs of n steps each through the given points.
func route(n int, pts ...motion.Point) []motion.Point {
	out := []motion.Point{pts[0]}
	for i := 1; i < len(pts); i++ {
		out = append(out, lerp(pts[i-1], pts[i], n)[1:]...)
	}
	return out
}

// recording is what a watcher made of a made-up recording.
type recording struct {
	crossings []Crossing
	loiters   []Loiter
	frames    []Frame
}

// play shows one object standing at anchors, one frame each from frame
// first on (hidden frames show nothing), and collects what w reports.
func play(w *Watcher, first int, anchors []motion.Point) recording {
	var r recording
	for i, a := range anchors {
		var boxes []motion.Box
		if a != hidden {
			boxes = []motion.Box{boxAt(a)}
		}
		f := w.Observe(at(first+i), boxes)
		r.frames = append(r.frames, f)
		r.crossings = append(r.crossings, f.Crossings...)
		r.loiters = append(r.loiters, f.Loiters...)
	}
	return r
}

// mustNew is New that fails the test on an error.
func mustNew(t testing.TB, cfg Config) *Watcher {
	t.Helper()
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// oneLine is a config of a single line named "wall".
func oneLine(dir Direction, pts ...motion.Point) Config {
	return Config{Lines: []Line{{Name: "wall", Points: pts, Direction: dir}}}
}

// dirs lists crossings' directions.
func dirs(cs []Crossing) []Direction {
	var out []Direction
	for _, c := range cs {
		out = append(out, c.Direction)
	}
	return out
}
