package e2e

import (
	"bytes"
	"cmp"
	"context"
	"image/jpeg"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/internal/testrig/rig"
	"github.com/vigil-perimeter/vigil/wire"
)

// TestTripwireEndToEnd (issue #20): a camera served by GStreamer's RTSP
// server shows an object walking down across the middle of the picture
// and, after a pause, back up (footage.CrossingClip: the frame on which
// its feet pass the middle is known exactly). Two cameras of one edge
// watch that stream with a line across the middle, drawn left to right:
// on "both cams" it watches both ways, on "in cam" only inward (down the
// picture). Central receives exactly one perimeter.crossing alert per
// crossing and watched way — "in" then "out" from the first camera, "in"
// alone from the second — each named by its line, red (armed), with the
// object's path and a JPEG snapshot, and timed within 0.5 s of the moment
// the crossing frame was served.
func TestTripwireEndToEnd(t *testing.T) {
	spec := footage.DefaultCrossing()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	clip, err := spec.Make(ctx, footage.Cache{Dir: footage.DefaultDir()})
	if err != nil {
		t.Fatalf("making footage: %v", err)
	}
	gst := testrig.StartGstCamera(t, testrig.GstOptions{Minutes: 1, Streams: map[string]string{"walk": clip}})
	s := startGateCentral(t)
	// The shared pipeline starts with its first client, the watcher: the
	// clip's 10 s of stillness from then on let the edge connect, wait
	// for a keyframe and learn the scene before the object comes.
	served := gst.Served(t, "walk", testrig.WatchArrivals(t, gst.URL("walk")))
	line := func(dir string) []edge.LineConfig {
		return []edge.LineConfig{{Name: "north wall", Points: [][]float64{{0.05, 0.5}, {0.95, 0.5}}, Direction: dir}}
	}
	cams := []edge.CameraConfig{
		{ID: "both-cam", Name: "Both ways", URL: gst.URL("walk"), Armed: true, Lines: line("both")},
		{ID: "in-cam", Name: "Inward only", URL: gst.URL("walk"), Armed: true, Lines: line("in")},
	}
	node := startEvidenceEdge(t, s, edge.Config{
		EdgeID: edgeID, SiteID: siteID, Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: s.Uplink(500 * time.Millisecond),
		Cameras: cams,
	})

	// Wait until the walk back up has been over for 3 s (its last frame
	// served), time enough for any late or extra alert to reach central.
	last := spec.FrameTime(spec.Up + spec.Walk())
	crossings := map[string][]central.Record{}
	rig.Until(t, "the walk down and back up, and 3 s more", 60*time.Second, func() bool {
		at, ok := served(last)
		return ok && time.Since(at) > 3*time.Second
	})
	for _, r := range s.Alerts(500) {
		if r.Kind == wire.KindPerimeterCrossing {
			crossings[r.Source] = append(crossings[r.Source], r)
		}
	}

	truth := map[string]time.Time{}
	for _, dir := range []string{"in", "out"} {
		pts := spec.CrossPTS(dir == "in")
		at, ok := served(pts)
		if !ok {
			t.Fatalf("the %s crossing's frame (%v) was not seen served", dir, pts)
		}
		truth[dir] = at
		t.Logf("truth: %s crossing on frame %d (%v into the clip), served at %s", dir, spec.CrossFrame(dir == "in"), pts, at.Format("15:04:05.000"))
	}
	// Frames the analyser shed (a box starved of CPU) may put a crossing
	// on a later frame: say so, should the times be off.
	shed := edgeCounter(t, s, "http://"+node.Addr()+"/metrics", "vigil_camera_frames_dropped_total")
	want := map[string][]string{"both-cam": {"in", "out"}, "in-cam": {"in"}}
	for _, c := range cams {
		rs := crossings[c.ID]
		slices.SortFunc(rs, func(a, b central.Record) int { return cmp.Compare(a.Seq, b.Seq) })
		var dirs []string
		for _, r := range rs {
			dirs = append(dirs, r.Direction)
		}
		if !slices.Equal(dirs, want[c.ID]) {
			t.Errorf("%s: crossings %q, want %q", c.ID, dirs, want[c.ID])
		}
		for _, r := range rs {
			off := r.Time.Sub(truth[r.Direction])
			// The frame the alert names: the one served nearest its time
			// (analysed at 5 fps, the first analysed frame past the line
			// is the crossing frame or the next).
			named, nearest := -1, time.Duration(-1)
			for n := spec.CrossFrame(r.Direction == "in") - 5; n <= spec.CrossFrame(r.Direction == "in")+5; n++ {
				if at, ok := served(spec.FrameTime(n)); ok && (nearest < 0 || r.Time.Sub(at).Abs() < nearest) {
					named, nearest = n, r.Time.Sub(at).Abs()
				}
			}
			t.Logf("%s: %s %q %s at %s (%s), %v from the crossing frame, names frame %d (%v from when it was served); %d path points: %s",
				c.ID, r.Kind, r.Line, r.Direction, r.Time.Format("15:04:05.000"), r.TimeSource, off.Round(time.Millisecond),
				named, nearest.Round(time.Millisecond), len(r.Path), r.Summary)
			if truth[r.Direction].IsZero() || off < -500*time.Millisecond || off > 500*time.Millisecond {
				t.Errorf("%s: %s crossing at %v is %v from the crossing frame, want within 0.5 s (the analyser shed %v frames, load average %.1f)",
					c.ID, r.Direction, r.Time, off, shed[c.ID], testrig.LoadAverage())
			}
			if r.Line != "north wall" || r.Severity != wire.Red || r.Count != 1 || len(r.Path) < 2 {
				t.Errorf("%s: line %q, severity %s, count %d, %d path points; want north wall, red, 1, a path",
					c.ID, r.Line, r.Severity, r.Count, len(r.Path))
			}
			// The path runs down the picture for "in", up for "out".
			if n := len(r.Path); n >= 2 && (r.Direction == "in") != (r.Path[n-1].Y > r.Path[0].Y) {
				t.Errorf("%s: %s crossing's path runs from %v to %v", c.ID, r.Direction, r.Path[0], r.Path[n-1])
			}
			if r.SnapshotURL == "" {
				t.Errorf("%s: %s crossing has no snapshot", c.ID, r.Direction)
				continue
			}
			resp, body := s.Do(http.MethodGet, r.SnapshotURL, nil)
			img, err := jpeg.Decode(bytes.NewReader(body))
			if resp.StatusCode != http.StatusOK || err != nil {
				t.Errorf("%s: snapshot %s: %s, not a JPEG: %v", c.ID, r.SnapshotURL, resp.Status, err)
				continue
			}
			if b := img.Bounds(); b.Dx() != spec.Width || b.Dy() != spec.Height {
				t.Errorf("%s: snapshot %v, want %dx%d", c.ID, b.Size(), spec.Width, spec.Height)
			}
		}
	}
}
