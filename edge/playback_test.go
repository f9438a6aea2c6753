package edge_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams/sim"
	"github.com/vigil-perimeter/vigil/wire"
)

// answer is every part of one answer as central reads it, and when its
// first part arrived.
type answer struct {
	parts []wire.Response
	first time.Duration
}

func (a answer) final() wire.Response { return a.parts[len(a.parts)-1] }

// uplinkAsker is central's side of one edge connection: it asks and
// reads the answers (alerts and the rest are left unacknowledged).
type uplinkAsker struct {
	conn    *websocket.Conn
	answers chan wire.Response
	n       int
}

func newUplinkAsker(conn *websocket.Conn) *uplinkAsker {
	a := &uplinkAsker{conn: conn, answers: make(chan wire.Response, 1024)}
	go func() {
		defer close(a.answers)
		for {
			_, frame, err := conn.ReadMessage()
			if err != nil {
				return
			}
			env, err := wire.Unmarshal(frame)
			var r wire.Response
			if err == nil && env.Type == wire.TypeResponse && wire.DecodeBody(env, &r) == nil {
				a.answers <- r
			}
		}
	}()
	return a
}

// ask sends req and collects its answer's parts up to the final one.
func (a *uplinkAsker) ask(t *testing.T, req wire.Request) answer {
	t.Helper()
	a.n++
	req.ID = fmt.Sprintf("req-%d", a.n)
	b, err := wire.Marshal(wire.TypeRequest, req)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := a.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatal(err)
	}
	var out answer
	deadline := time.After(20 * time.Second)
	for {
		select {
		case r, ok := <-a.answers:
			if !ok {
				t.Fatal("connection ended")
			}
			if r.ID != req.ID {
				continue
			}
			if len(out.parts) == 0 {
				out.first = time.Since(start)
			}
			out.parts = append(out.parts, r)
			if r.Final {
				return out
			}
		case <-deadline:
			t.Fatalf("%s: no final answer (%d parts)", req.Method, len(out.parts))
		}
	}
}

// TestPlaybackOnNode plays a recorded window and its overlay through the
// node's uplink as central asks for them: a JSON info part, then fMP4
// parts that ffprobe decodes to the frames the info counts, the first
// part a few hundred ms after the ask at most; the overlay has the boxes
// the analyser found while the camera's motion ran, and the camera's
// zones and lines. An unknown camera is not_available, a window over
// 60 s bad_request, a window with no video not_available.
func TestPlaybackOnNode(t *testing.T) {
	url, conns := fakeCentral(t)
	clip := testrig.Clip(t, footage.BurstsClip{Seconds: 10, FPS: 10, Width: 320, Height: 240, Bursts: []footage.Burst{{Start: 1, End: 9}}})
	cams := testrig.StartSim(t, "127.0.0.1:0", sim.Camera{Path: "gate", Clip: clip})
	zones := []conf.ZoneConfig{{Name: "yard", Points: conf.Polygon{{0, 0}, {1, 0}, {1, 1}, {0, 1}}}}
	lines := []conf.LineConfig{{Name: "east wall", Points: conf.Polygon{{0.1, 0.8}, {0.5, 0.75}, {0.9, 0.7}}, Direction: "in"}}
	cfg := conf.Config{
		EdgeID: "gate-1", SiteID: "village/north", Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: conf.CentralConfig{URL: url, Token: token, BackoffMax: config.Duration(time.Second)},
		Cameras: []conf.CameraConfig{{ID: "gate-cam", Name: "Gate", URL: cams.URL("gate"), Motion: conf.MotionConfig{Zones: zones}, Lines: lines}},
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	start := time.Now()
	node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t), UplinkBackoffMin: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	var a *uplinkAsker
	select {
	case conn := <-conns:
		defer conn.Close()
		a = newUplinkAsker(conn)
	case <-time.After(10 * time.Second):
		t.Fatal("the edge did not connect")
	}
	time.Sleep(13 * time.Second)

	if r := a.ask(t, wire.Request{Method: wire.MethodPlayback, Camera: "no-cam", From: start, To: start.Add(time.Second), Playback: &wire.PlaybackParams{Origin: start}}).final(); r.Status != wire.StatusNotAvailable {
		t.Errorf("unknown camera: %s %q, want not_available", r.Status, r.Error)
	}
	if r := a.ask(t, wire.Request{Method: wire.MethodPlayback, Camera: "gate-cam", From: start, To: start.Add(61 * time.Second), Playback: &wire.PlaybackParams{Origin: start}}).final(); r.Status != wire.StatusBadRequest {
		t.Errorf("61 s window: %s %q, want bad_request", r.Status, r.Error)
	}
	if r := a.ask(t, wire.Request{Method: wire.MethodPlayback, Camera: "gate-cam", From: start.Add(-time.Hour), To: start.Add(-time.Hour + time.Second), Playback: &wire.PlaybackParams{Origin: start}}).final(); r.Status != wire.StatusNotAvailable {
		t.Errorf("a window before the recording: %s %q, want not_available", r.Status, r.Error)
	}

	from, to := start.Add(2*time.Second), start.Add(12*time.Second)
	ans := a.ask(t, wire.Request{Method: wire.MethodPlayback, Camera: "gate-cam", From: from, To: to, Playback: &wire.PlaybackParams{Origin: from}})
	info := checkPlayback(t, ans)
	t.Logf("playback of 10 s: first part after %v, %d parts, %d frames", ans.first, len(ans.parts), info.Frames)
	if ans.first > 500*time.Millisecond {
		t.Errorf("the first part came %v after the ask", ans.first)
	}

	ov := a.ask(t, wire.Request{Method: wire.MethodOverlay, Camera: "gate-cam", From: start, To: time.Now()}).final()
	if ov.Status != wire.StatusOK || ov.ContentType != "application/json" {
		t.Fatalf("overlay: %s %q", ov.Status, ov.Error)
	}
	var o wire.Overlay
	if err := json.Unmarshal(ov.Data, &o); err != nil {
		t.Fatal(err)
	}
	checkOverlay(t, o, start)
	if r := a.ask(t, wire.Request{Method: wire.MethodOverlay, Camera: "gate-cam", From: start, To: start.Add(11 * time.Minute)}).final(); r.Status != wire.StatusBadRequest {
		t.Errorf("11 min overlay: %s %q, want bad_request", r.Status, r.Error)
	}
}

// checkPlayback checks a playback answer: its info, then the fMP4 that
// ffprobe decodes whole.
func checkPlayback(t *testing.T, ans answer) wire.PlaybackInfo {
	t.Helper()
	first := ans.parts[0]
	if first.Status != wire.StatusOK || first.ContentType != "application/json" || first.Final {
		t.Fatalf("first part: %s %s %q", first.Status, first.ContentType, first.Error)
	}
	var info wire.PlaybackInfo
	if err := json.Unmarshal(first.Data, &info); err != nil {
		t.Fatal(err)
	}
	var video []byte
	for _, p := range ans.parts[1:] {
		if p.Status != wire.StatusOK || p.ContentType != "video/mp4" || len(p.Data) > wire.MaxResponsePart {
			t.Fatalf("video part %d: %s %s %q, %d bytes", p.Part, p.Status, p.ContentType, p.Error, len(p.Data))
		}
		video = append(video, p.Data...)
	}
	if !strings.HasPrefix(info.Codec, "avc1.") || info.Width != 320 || info.Height != 240 || info.Frames < 95 || info.Camera != "gate-cam" ||
		!info.End.After(info.Start) || info.Next != (time.Time{}) {
		t.Errorf("info %+v", info)
	}
	path := filepath.Join(t.TempDir(), "play.mp4")
	if err := os.WriteFile(path, video, 0o644); err != nil {
		t.Fatal(err)
	}
	if p := testrig.FFprobe(t, path); p.Frames != info.Frames || p.Codec != "h264" || !p.FirstKey {
		t.Errorf("ffprobe %+v, info %d frames", p, info.Frames)
	}
	return info
}

// checkOverlay checks the overlay of a camera whose motion ran.
func checkOverlay(t *testing.T, o wire.Overlay, start time.Time) {
	t.Helper()
	if o.Camera != "gate-cam" || len(o.Boxes) < 5 {
		t.Fatalf("overlay of %s: %d frames with boxes, want the moving object's", o.Camera, len(o.Boxes))
	}
	for i, f := range o.Boxes {
		if f.Time.Before(start) || (i > 0 && f.Time.Sub(o.Boxes[i-1].Time) < 200*time.Millisecond) || len(f.Boxes) == 0 {
			t.Fatalf("frame %d at %v (%d boxes), after %v", i, f.Time, len(f.Boxes), o.Boxes[max(i-1, 0)].Time)
		}
		for _, b := range f.Boxes {
			if b.X < 0 || b.Y < 0 || b.W <= 0 || b.H <= 0 || b.X+b.W > 1.0001 || b.Y+b.H > 1.0001 {
				t.Fatalf("frame %d: box %+v not normalised", i, b)
			}
		}
	}
	wantZones := []wire.OverlayZone{{Name: "yard", Points: []wire.Point{{X: 0, Y: 0}, {X: 1, Y: 0}, {X: 1, Y: 1}, {X: 0, Y: 1}}}}
	wantLines := []wire.OverlayLine{
		{Name: "east wall", A: wire.Point{X: 0.1, Y: 0.8}, B: wire.Point{X: 0.5, Y: 0.75}, Direction: "in"},
		{Name: "east wall", A: wire.Point{X: 0.5, Y: 0.75}, B: wire.Point{X: 0.9, Y: 0.7}, Direction: "in"},
	}
	if fmt.Sprint(o.Zones) != fmt.Sprint(wantZones) || fmt.Sprint(o.Lines) != fmt.Sprint(wantLines) {
		t.Errorf("zones %v lines %v, want %v %v", o.Zones, o.Lines, wantZones, wantLines)
	}
}
