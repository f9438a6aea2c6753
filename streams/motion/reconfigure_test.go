package motion_test

import (
	"image"
	"image/color"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/vigil-perimeter/vigil/streams/motion"
)

// frame is a textured still scene with a bright square at x (pixels).
func frame(x int) gocv.Mat {
	m := gocv.NewMatWithSize(120, 160, gocv.MatTypeCV8U)
	for y := range 120 {
		for i := range 160 {
			m.SetUCharAt(y, i, uint8(60+(i*7+y*13)%40))
		}
	}
	if x >= 0 {
		gocv.Rectangle(&m, image.Rect(x, 40, x+24, 80), color.RGBA{250, 250, 250, 0}, -1)
	}
	return m
}

func count(b []byte) int {
	n := 0
	for _, v := range b {
		if v != 0 {
			n++
		}
	}
	return n
}

// A running detector takes new zones without relearning: a preview with
// draft zones shows the foreground inside them only, and after
// Reconfigure with a mask over the mover the detector's own foreground is
// empty there while the learned scene is kept (no warm-up again).
func TestReconfigureAndPreview(t *testing.T) {
	d, err := motion.New(motion.Config{Warmup: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Preview(nil, nil); err == nil {
		t.Fatal("preview before any frame")
	}
	t0 := time.Unix(0, 0)
	for i := range 30 { // learn the still scene
		f := frame(-1)
		d.Process(f, t0.Add(time.Duration(i)*200*time.Millisecond))
		f.Close()
	}
	step := func(i, x int) {
		f := frame(x)
		defer f.Close()
		d.Process(f, t0.Add(time.Duration(30+i)*200*time.Millisecond))
	}
	step(0, 20) // a square appears on the left half
	left := []motion.Zone{{Name: "left", Points: motion.Polygon{{0, 0}, {0.5, 0}, {0.5, 1}, {0, 1}}}}
	right := []motion.Zone{{Name: "right", Points: motion.Polygon{{0.5, 0}, {1, 0}, {1, 1}, {0.5, 1}}}}
	p, err := d.Preview(left, nil)
	if err != nil || p.W != 160 || p.H != 120 || len(p.Fore) != 160*120 {
		t.Fatalf("preview %dx%d %v", p.W, p.H, err)
	}
	step(1, 22) // the next frame keeps the unmasked foreground for drafts
	pl, _ := d.Preview(left, nil)
	pr, _ := d.Preview(right, nil)
	if count(pl.Fore) < 200 || count(pr.Fore) != 0 {
		t.Fatalf("left draft sees %d px, right draft %d px", count(pl.Fore), count(pr.Fore))
	}
	if w := count(pl.Watch); w < 160*120/2-200 || w > 160*120/2+200 {
		t.Fatalf("left zone watches %d px", w)
	}
	masked, _ := d.Preview(nil, []motion.Polygon{{{0, 0}, {0.5, 0}, {0.5, 1}, {0, 1}}})
	if count(masked.Fore) != 0 {
		t.Fatalf("a mask over the mover still shows %d px", count(masked.Fore))
	}

	if err := d.Reconfigure(motion.Config{Zones: []motion.Zone{{Name: "bad", Points: motion.Polygon{{0, 0}, {1, 0}}}}}); err == nil {
		t.Fatal("a two-point zone accepted")
	}
	if err := d.Reconfigure(motion.Config{Warmup: time.Second, Zones: right}); err != nil {
		t.Fatal(err)
	}
	step(2, 24)
	fg := d.Foreground()
	if n := gocv.CountNonZero(fg); n != 0 {
		t.Fatalf("outside the new zone: %d foreground px", n)
	}
	step(3, 100) // into the right half: seen at once, the scene was kept
	if n := gocv.CountNonZero(d.Foreground()); n < 200 {
		t.Fatalf("inside the new zone: %d foreground px", n)
	}
}
