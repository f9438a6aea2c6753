package tamper

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/streams/av"
)

// epoch is the wall-clock time of the first frame of every clip.
var epoch = time.Date(2026, 3, 1, 22, 0, 0, 0, time.UTC)

func sample(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(footage.SamplesDir, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is missing: install Debian's opencv-doc (`make deps`)", p)
	}
	return p
}

// vtestClip makes (once per recipe) seconds of vtest.avi passed through an
// ffmpeg filter graph whose input is [0:v], encoded like a camera.
func vtestClip(t testing.TB, name string, seconds int, graph string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"-i", sample(t, "vtest.avi"), "-t", strconv.Itoa(seconds), "-an", "-filter_complex", graph}
	path, err := footage.Cache{Dir: footage.DefaultDir()}.Make(ctx, "tamper-"+name, append(args, footage.CameraX264(20)...))
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// decode plays a file as camera.Analyzer sees a camera: every picture
// decoded, one every 200 ms converted to 8-bit gray 320 pixels wide.
func decode(t testing.TB, path string, fn func(gray gocv.Mat, at time.Time)) {
	t.Helper()
	info, pkts, err := av.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := av.NewDecoder(info.Codec)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var buf []byte
	next := time.Duration(0)
	for i, p := range pkts {
		ok, err := dec.Decode(p.AU)
		if err != nil {
			t.Fatalf("%s: AU %d: %v", path, i, err)
		}
		if !ok || p.PTS < next {
			continue
		}
		next = p.PTS + 200*time.Millisecond
		b, w, h, err := dec.Gray(320, buf)
		if err != nil {
			t.Fatal(err)
		}
		buf = b
		gray, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8U, b[:w*h])
		if err != nil {
			t.Fatal(err)
		}
		fn(gray, epoch.Add(p.PTS))
		gray.Close()
	}
}

// span collects the range of each measure over part of a clip, to show
// how far the thresholds are from what the footage measured.
type span struct {
	n                                     int
	contrast, edges, focus, match, satMax [2]float64 // min, max
}

func (s *span) add(m Measures, learning bool) {
	if s.n == 0 {
		for _, r := range []*[2]float64{&s.contrast, &s.edges, &s.focus, &s.match, &s.satMax} {
			*r = [2]float64{math.Inf(1), math.Inf(-1)}
		}
	}
	s.n++
	upd := func(r *[2]float64, v float64) { r[0], r[1] = math.Min(r[0], v), math.Max(r[1], v) }
	upd(&s.contrast, m.Contrast)
	upd(&s.edges, m.Edges)
	upd(&s.satMax, m.Saturated)
	if !learning {
		upd(&s.focus, m.Focus)
		upd(&s.match, m.Match)
	}
}

func (s *span) String() string {
	if s.n == 0 {
		return "no frames"
	}
	return fmt.Sprintf("contrast %.1f..%.1f, edges %.1f..%.1f, saturated ≤%.3f, focus %.2f..%.2f, match %.2f..%.2f",
		s.contrast[0], s.contrast[1], s.edges[0], s.edges[1], s.satMax[1], s.focus[0], s.focus[1], s.match[0], s.match[1])
}
