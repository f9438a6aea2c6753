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
