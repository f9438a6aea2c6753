package camera

import (
	"bytes"
	"context"
	"image/jpeg"
	"math"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/av"
	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/streams/perimeter"
)

// The walker clip: 20 s at 10 fps, 320×240, a white 24 px square on a
// static textured gray background. It walks down the middle from above
// the picture to below it between walkDown and walkDown+walkFor, and back
// up between walkUp and walkUp+walkFor, at 320 px per walkFor.
const (
	walkDown, walkUp, walkFor = 4.0, 12.0, 6.0
	walkerSize, walkerFPS     = 24.0, 10
)

// walkerTop is the square's top edge (pixels) at t seconds.
func walkerTop(t float64) float64 {
	switch {
	case t < walkDown:
		return -40
	case t < walkDown+walkFor:
		return -40 + (t-walkDown)*320/walkFor
	case t < walkUp:
		return 300
	case t < walkUp+walkFor:
		return 280 - (t-walkUp)*320/walkFor
	}
	return -40
}

// walkerClip builds the walker clip (cached).
func walkerClip(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	y := "if(lt(t,4),-40,if(lt(t,10),-40+(t-4)*320/6,if(lt(t,12),300,if(lt(t,18),280-(t-12)*320/6,-40))))"
	args := []string{"-f", "lavfi", "-i", "color=c=gray:s=320x240:r=10:d=20", "-f", "lavfi", "-i", "color=c=white:s=24x24:r=10",
		"-filter_complex", "[0:v]geq=lum='90+50*sin(X/6)*sin(Y/9)':cb=128:cr=128[bg];" +
			"[bg][1:v]overlay=x=148:y='" + y + "':shortest=1,noise=alls=2:allf=t,format=yuv420p", "-an"}
	path, err := footage.Cache{Dir: footage.DefaultDir()}.Make(ctx, "perimeter-walker", append(args, footage.CameraX264(20)...))
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// crossFrame is the first frame (at walkerFPS) analysed at 5 fps on
// which the square's bottom edge is past the middle line, walking down
// (down) or up, after from seconds.
func crossFrame(from float64, down bool) int {
	for i := int(from * walkerFPS); ; i += 2 {
		bottom := walkerTop(float64(i)/walkerFPS) + walkerSize
		if (down && bottom > 120) || (!down && bottom < 120) {
			return i
		}
	}
}

// middleLine is a horizontal tripwire across the middle of the picture:
// drawn left to right, so walking down is In.
var middleLine = perimeter.Config{Lines: []perimeter.Line{{Name: "wall", Points: []motion.Point{{X: 0, Y: 0.5}, {X: 1, Y: 0.5}}, Direction: perimeter.Both}}}

// TestFileCrossings: AnalyzeFile reports the walker crossing the line
// once in, then once out, on the right frames.
func TestFileCrossings(t *testing.T) {
	var evs []FileEvent
	_, err := AnalyzeFile(context.Background(), walkerClip(t), AnalyzerConfig{Perimeter: middleLine}, FileOptions{},
		func(ev FileEvent) error {
			if ev.Kind == KindCrossing || ev.Kind == KindLoiter {
				evs = append(evs, ev)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		t.Logf("%s %s %s track %d at frame %d (%d path points)", ev.Kind, ev.Name, ev.Direction, ev.Track, ev.RaisedFrame, len(ev.Path))
	}
	if len(evs) != 2 {
		t.Fatalf("%d perimeter events, want one crossing in and one out", len(evs))
	}
	want := []struct {
		dir   perimeter.Direction
		frame int
	}{{perimeter.In, crossFrame(walkDown, true)}, {perimeter.Out, crossFrame(walkUp, false)}}
	for i, ev := range evs {
		if ev.Kind != KindCrossing || ev.Name != "wall" || ev.Direction != want[i].dir {
			t.Errorf("event %d: %s %q %s, want crossing wall %s", i, ev.Kind, ev.Name, ev.Direction, want[i].dir)
		}
		if d := ev.RaisedFrame - want[i].frame; d < -2 || d > 2 || ev.StartFrame != ev.RaisedFrame {
			t.Errorf("event %d on frames %d..%d, want %d ±2", i, ev.StartFrame, ev.RaisedFrame, want[i].frame)
		}
		if len(ev.Path) < 2 || len(ev.Boxes) != 1 || !ev.Start.Equal(ev.Raised) {
			t.Errorf("event %d: path %v, boxes %v, start %v raised %v", i, ev.Path, ev.Boxes, ev.Start, ev.Raised)
		}
	}
}

// TestCameraReportsCrossings runs the walker clip through the camera's
// analysis goroutine code (handle) into a Parent: one crossing in, one
// out, each with a JPEG snapshot on which the path is drawn.
func TestCameraReportsCrossings(t *testing.T) {
	info, pkts, err := av.ReadFile(walkerClip(t))
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	cam, err := New(Config{ID: "cam", Perimeter: middleLine}, col, nil, testrig.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	an, err := NewAnalyzer(AnalyzerConfig{Perimeter: middleLine})
	if err != nil {
		t.Fatal(err)
	}
	defer an.Close()
	w := &analysis{c: cam, an: an}
	epoch := time.Date(2026, 3, 1, 22, 0, 0, 0, time.UTC)
	for _, p := range pkts {
		w.handle(streams.AccessUnit{Codec: info.Codec, NALUs: p.AU, PTS: p.PTS, Time: epoch.Add(p.PTS), TimeSource: streams.TimeFile, Key: p.Key})
	}
	evs := col.perims
	if len(evs) != 2 {
		t.Fatalf("%d perimeter events, want 2: %+v", len(evs), evs)
	}
	for i, ev := range evs {
		dir, down := perimeter.In, true
		from := walkDown
		if i == 1 {
			dir, down, from = perimeter.Out, false, walkUp
		}
		wantAt := epoch.Add(time.Duration(crossFrame(from, down)) * time.Second / walkerFPS)
		if ev.Camera != "cam" || ev.Kind != PerimeterCrossing || ev.Name != "wall" || ev.Direction != dir || ev.TimeSource != streams.TimeFile {
			t.Errorf("event %d: %+v", i, ev)
		}
		if d := ev.Time.Sub(wantAt); d < -200*time.Millisecond || d > 200*time.Millisecond {
			t.Errorf("event %d at %v, want %v ±0.2 s", i, ev.Time.Sub(epoch), wantAt.Sub(epoch))
		}
		checkPathDrawn(t, ev)
	}
}

// checkPathDrawn decodes the event's snapshot and finds the path's
// colour on the path, above the object's box (the square hides it there).
func checkPathDrawn(t *testing.T, ev PerimeterEvent) {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(ev.Snapshot))
	if err != nil {
		t.Fatalf("snapshot is not a JPEG: %v", err)
	}
	b := img.Bounds()
	found, tried := false, 0
	for i := 0; i+1 < len(ev.Path) && !found; i++ {
		p, q := ev.Path[i], ev.Path[i+1]
		x, y := (p.X+q.X)/2*float64(b.Dx()), (p.Y+q.Y)/2*float64(b.Dy())
		boxTop, boxBottom := ev.Box.Y*float64(b.Dy()), (ev.Box.Y+ev.Box.H)*float64(b.Dy())
		if y > boxTop-6 && y < boxBottom+6 || math.Abs(y-float64(b.Dy())/2) < 6 {
			continue // under the square, its box or the line
		}
		tried++
		r, g, bl, _ := img.At(int(x), int(y)).RGBA()
		r, g, bl = r>>8, g>>8, bl>>8
		found = r > 170 && g > 150 && bl < 110
		if !found {
			t.Logf("path pixel (%.0f, %.0f) is rgb(%d, %d, %d)", x, y, r, g, bl)
		}
	}
	if !found {
		t.Errorf("%s %s: no path colour on %d path points of the snapshot", ev.Kind, ev.Direction, tried)
	}
}

// TestPerimeterWithheldWhenObstructed: crossings are withheld on an
// obstructed or garbled picture, as motion's Started is; tracks go on.
func TestPerimeterWithheldWhenObstructed(t *testing.T) {
	for _, tc := range []struct {
		name                string
		obstructed, garbled bool
		want                int
	}{{"clear", false, false, 1}, {"obstructed", true, false, 0}, {"garbled", false, true, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			an, err := NewAnalyzer(AnalyzerConfig{Perimeter: middleLine})
			if err != nil {
				t.Fatal(err)
			}
			defer an.Close()
			epoch := time.Date(2026, 3, 1, 22, 0, 0, 0, time.UTC)
			got := 0
			for i := 0; i < 10; i++ {
				f := Frame{Garbled: tc.garbled}
				f.Tamper.Obstructed = tc.obstructed
				f.Motion.Tracked = []motion.Box{{X: 0.45, Y: 0.1 + 0.06*float64(i), W: 0.1, H: 0.1}}
				an.perim.observe(epoch.Add(time.Duration(i)*200*time.Millisecond), &f)
				got += len(f.Perimeter.Crossings)
				if len(f.Perimeter.Tracks) != 1 {
					t.Fatalf("frame %d: %d tracks", i, len(f.Perimeter.Tracks))
				}
			}
			if got != tc.want {
				t.Errorf("%d crossings, want %d", got, tc.want)
			}
		})
	}
}

// TestSetPerimeter: a camera refuses an impossible config, an Empty one
// switches the watcher off.
func TestSetPerimeter(t *testing.T) {
	bad := perimeter.Config{Lines: []perimeter.Line{{Name: "x", Points: []motion.Point{{X: 0, Y: 0}}, Direction: perimeter.In}}}
	if _, err := New(Config{ID: "cam", Perimeter: bad}, nil, nil, nil); err == nil {
		t.Error("New took a one-point line")
	}
	cam, err := New(Config{ID: "cam"}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cam.SetPerimeter(bad); err == nil {
		t.Error("SetPerimeter took a one-point line")
	}
	if err := cam.SetPerimeter(middleLine); err != nil {
		t.Fatal(err)
	}
	an, err := NewAnalyzer(AnalyzerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer an.Close()
	w := &analysis{c: cam, an: an}
	w.applyReconfig()
	if an.perim.w == nil || len(cam.PerimeterConfig().Lines) != 1 {
		t.Fatal("perimeter config not applied")
	}
	if err := an.SetPerimeter(perimeter.Config{}); err != nil || an.perim.w != nil {
		t.Errorf("empty config: err %v, watcher %v", err, an.perim.w)
	}
}

// TestPerimeterPreviewDraft: on a camera with no lines, an installer's
// draft line is judged on the live tracks and shows both crossings in
// its preview; nothing is raised from it; a changed draft starts over.
func TestPerimeterPreviewDraft(t *testing.T) {
	info, pkts, err := av.ReadFile(walkerClip(t))
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	cam, err := New(Config{ID: "cam"}, col, nil, testrig.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	an, err := NewAnalyzer(AnalyzerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer an.Close()
	w := &analysis{c: cam, an: an}
	epoch := time.Date(2026, 3, 1, 22, 0, 0, 0, time.UTC)
	if _, err := an.perim.preview(middleLine, epoch); err != nil {
		t.Fatal(err)
	}
	if _, err := an.perim.preview(perimeter.Config{Lines: []perimeter.Line{{Name: "x"}}}, epoch); err == nil {
		t.Error("a draft with a one-point line was taken")
	}
	an.perim.preview(middleLine, epoch)
	var seen []perimeter.Crossing
	for i, p := range pkts {
		at := epoch.Add(p.PTS)
		w.handle(streams.AccessUnit{Codec: info.Codec, NALUs: p.AU, PTS: p.PTS, Time: at, TimeSource: streams.TimeFile, Key: p.Key})
		if i%10 == 0 {
			pv, err := an.perim.preview(middleLine, at)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range pv.Crossings {
				if len(seen) == 0 || seen[len(seen)-1].At != c.At {
					seen = append(seen, c)
				}
			}
		}
	}
	if len(seen) != 2 || seen[0].Direction != perimeter.In || seen[1].Direction != perimeter.Out || seen[0].Line != "wall" {
		t.Fatalf("crossings seen in the previews: %+v, want in then out", seen)
	}
	if len(col.perims) != 0 {
		t.Errorf("a draft raised %d events", len(col.perims))
	}
	other := perimeter.Config{Lines: []perimeter.Line{{Name: "other", Points: []motion.Point{{X: 0.1, Y: 0.2}, {X: 0.9, Y: 0.2}}, Direction: perimeter.Both}}}
	if pv, _ := an.perim.preview(other, epoch.Add(time.Hour)); len(pv.Crossings) != 0 {
		t.Errorf("a new draft came with the old one's crossings: %+v", pv.Crossings)
	}
}
