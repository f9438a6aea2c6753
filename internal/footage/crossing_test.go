package footage

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCrossingTruth: the default crossing clip's truth, as numbers.
func TestCrossingTruth(t *testing.T) {
	c := DefaultCrossing()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	w, h := c.ObjectSize()
	if w != 48 || h != 90 || c.ObjectX() != 296 {
		t.Errorf("object %dx%d at x %d, want 48x90 at 296", w, h, c.ObjectX())
	}
	// Down: the bottom edge is 8k px down on frame 100+k; past 180 on k = 23.
	// Up: it is 450-8k; above 180 on k = 34.
	if in, out := c.CrossFrame(true), c.CrossFrame(false); in != 123 || out != 214 {
		t.Errorf("crossings on frames %d and %d, want 123 and 214", in, out)
	}
	if got := c.CrossPTS(true); got != 12300*time.Millisecond {
		t.Errorf("down crossing at %v, want 12.3 s", got)
	}
	for _, bad := range []CrossingClip{
		{Seconds: 30, FPS: 10, Width: 640, Height: 360, Down: 100, Up: 120, Step: 8}, // walks overlap
		{Seconds: 30, FPS: 10, Width: 640, Height: 360, Down: 100, Up: 180, Step: 7}, // odd step
		{Seconds: 20, FPS: 10, Width: 640, Height: 360, Down: 100, Up: 180, Step: 8}, // past the end
		{Seconds: 30, FPS: 10, Width: 640, Height: 360, Down: 100, Up: 180, Step: 6}, // 90+6k-90 = 180 on k = 30
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v: valid, want an error", bad)
		}
	}
}

// TestCrossingClipFrames builds the default crossing clip and measures
// the object on the decoded frames: its bottom edge is where Top says on
// every frame of both walks (so CrossFrame is the first frame past the
// middle line, to the frame), and nothing moves outside the walks.
func TestCrossingClipFrames(t *testing.T) {
	c := DefaultCrossing()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path, err := c.Make(ctx, Cache{Dir: DefaultDir()})
	if err != nil {
		t.Fatal(err)
	}
	probe, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
		"-show_entries", "stream=codec_name,profile,width,height,r_frame_rate,nb_read_packets,has_b_frames", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(probe)); got != "h264,Main,640,360,0,10/1,300" {
		t.Errorf("ffprobe: %s, want h264,Main,640,360,0,10/1,300", got)
	}

	// Decode to 8-bit luma; keep, per frame, each row's mean absolute
	// difference from the first frame (the empty scene) across the
	// object's columns.
	cmd := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "gray", "-")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w, h := c.ObjectSize()
	x0 := c.ObjectX()
	r := bufio.NewReaderSize(out, 1<<20)
	frame := make([]byte, c.Width*c.Height)
	var bg []byte
	var rows [][]float64
	for {
		if _, err := io.ReadFull(r, frame); err != nil {
			break
		}
		if bg == nil {
			bg = append([]byte(nil), frame...)
		}
		diff := make([]float64, c.Height)
		for y := range c.Height {
			sum := 0
			for x := x0; x < x0+w; x++ {
				d := int(frame[y*c.Width+x]) - int(bg[y*c.Width+x])
				sum += max(d, -d)
			}
			diff[y] = float64(sum) / float64(w)
		}
		rows = append(rows, diff)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(rows) != int(c.Seconds)*c.FPS {
		t.Fatalf("%d frames decoded, want %d", len(rows), int(c.Seconds)*c.FPS)
	}
	// The object is the negative of the scene: its rows differ by tens
	// of levels, the still scene's by the sensor noise (a few).
	const object = 20
	for n, diff := range rows {
		lo, hi := -1, -1
		for y, d := range diff {
			if d > object {
				if lo < 0 {
					lo = y
				}
				hi = y + 1
			}
		}
		top, in := c.Top(n)
		if !in {
			if lo >= 0 {
				t.Errorf("frame %d: rows %d..%d changed, want a still scene", n, lo, hi)
			}
			continue
		}
		// The object's edges where they are inside the picture (its
		// first and last rows on the picture's border row or two differ
		// less: the scene's border is darker), to the row.
		const border = 4
		if top >= border && lo != top || top+h <= c.Height-border && top+h >= border && hi != top+h {
			t.Errorf("frame %d: object on rows %d..%d, want %d..%d", n, lo, hi, top, top+h)
		}
	}
	for _, down := range []bool{true, false} {
		n := c.CrossFrame(down)
		t.Logf("down=%v: crossing on frame %d (%v): bottom edge %d then %d (middle %d)", down, n, c.CrossPTS(down),
			bottomOf(rows[n-1], object), bottomOf(rows[n], object), c.Height/2)
	}
}

func bottomOf(diff []float64, object float64) int {
	hi := -1
	for y, d := range diff {
		if d > object {
			hi = y + 1
		}
	}
	return hi
}
