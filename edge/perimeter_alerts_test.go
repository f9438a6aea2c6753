package edge

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams/camera"
	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/streams/perimeter"
	"github.com/vigil-perimeter/vigil/wire"
)

// perimeterNode starts a node with a disarmed camera (gate-cam, "North
// gate") and an armed one (wall-cam); next waits for its next alert.
func perimeterNode(t *testing.T) (n *Node, next func() wire.Alert, updates chan wire.AlertUpdate) {
	t.Helper()
	cfg := conf.Config{
		EdgeID: "gate-1", SiteID: "village/north", Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: conf.CentralConfig{URL: "ws://127.0.0.1:1/api/v1/edge/ws", Token: "t"},
		Cameras: []conf.CameraConfig{
			{ID: "gate-cam", Name: "North gate", URL: "rtsp://127.0.0.1:1/none"},
			{ID: "wall-cam", URL: "rtsp://127.0.0.1:1/none", Armed: true},
		},
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	alerts, updates := make(chan wire.Alert, 16), make(chan wire.AlertUpdate, 16)
	n, err := Start(cfg, Options{Log: testrig.Logger(t), OnAlert: func(a wire.Alert) { alerts <- a }, OnUpdate: func(u wire.AlertUpdate) { updates <- u }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	next = func() wire.Alert {
		t.Helper()
		select {
		case a := <-alerts:
			return a
		case <-time.After(5 * time.Second):
			t.Fatal("no alert")
		}
		return wire.Alert{}
	}
	return n, next, updates
}

// TestPerimeterCrossingAlertsOnNode: a line crossing raises a
// perimeter.crossing alert naming the line and the way, each crossing its
// own alert (never folded into the camera's motion incident), yellow on a
// disarmed camera and red on an armed one.
func TestPerimeterCrossingAlertsOnNode(t *testing.T) {
	n, next, updates := perimeterNode(t)
	base := time.Now()
	cross := func(cam string, at time.Time, dir perimeter.Direction) {
		n.events.OnPerimeter(camera.PerimeterEvent{Camera: cam, Kind: camera.PerimeterCrossing, Name: "east wall", Direction: dir,
			Track: 7, Time: at, Box: motion.Box{X: 0.4, Y: 0.5, W: 0.1, H: 0.3}, Snapshot: []byte("jpeg"), SnapshotTime: at,
			Path: []motion.Point{{X: 0.45, Y: 0.7}, {X: 0.45, Y: 0.8}, {X: 0.46, Y: 1.02}}})
	}
	n.events.OnMotion(camera.Event{Camera: "gate-cam", Start: base, SnapshotTime: base, Snapshot: []byte("jpeg")})
	if m := next(); m.Kind != "motion" {
		t.Fatalf("first alert %+v", m)
	}
	cross("gate-cam", base.Add(100*time.Millisecond), perimeter.In)
	cross("gate-cam", base.Add(200*time.Millisecond), perimeter.Out)
	first, second := next(), next()
	if first.Kind != wire.KindPerimeterCrossing || first.Severity != wire.Yellow || first.Line != "east wall" || first.Direction != "in" ||
		first.Summary != "Crossed east wall inward at North gate" || len(first.Boxes) != 1 || len(first.Snapshot) == 0 {
		t.Fatalf("crossing %+v", first)
	}
	if len(first.Path) != 3 || first.Path[2] != (wire.Point{X: 0.46, Y: 1}) {
		t.Errorf("path %+v: want 3 points, the last held inside the picture", first.Path)
	}
	if !first.Time.Equal(base.Add(100*time.Millisecond)) || len(first.Links) != 1 || first.Links[0].Camera != "gate-cam" {
		t.Errorf("time %v links %+v", first.Time, first.Links)
	}
	if second.ID == first.ID || second.Direction != "out" || !strings.Contains(second.Summary, "outward") {
		t.Fatalf("second crossing %+v", second)
	}
	select {
	case u := <-updates:
		t.Fatalf("a crossing became update %+v", u)
	default:
	}
	cross("wall-cam", base.Add(300*time.Millisecond), perimeter.In)
	if armed := next(); armed.Severity != wire.Red || armed.Summary != "Crossed east wall inward at wall-cam" {
		t.Fatalf("crossing on an armed camera %+v", armed)
	}
}

// TestPerimeterLoiterAlertOnNode: a loitering raises perimeter.loiter
// with its area and entry, its video linked and pinned from the entry.
func TestPerimeterLoiterAlertOnNode(t *testing.T) {
	n, next, _ := perimeterNode(t)
	at := time.Now()
	since := at.Add(-20 * time.Second)
	n.events.OnPerimeter(camera.PerimeterEvent{Camera: "gate-cam", Kind: camera.PerimeterLoiter, Name: "gate apron", Track: 9,
		Time: at, Since: since, Box: motion.Box{X: 0.3, Y: 0.6, W: 0.1, H: 0.3}, Path: []motion.Point{{X: 0.35, Y: 0.9}}})
	l := next()
	if l.Kind != wire.KindPerimeterLoiter || l.Severity != wire.Yellow || l.Dwell != "gate apron" || !l.Since.Equal(since) ||
		l.Line != "" || l.Direction != "" || l.Summary != "Lingering 20 s at gate apron (North gate)" {
		t.Fatalf("loiter %+v", l)
	}
	from, _, _ := n.clips.PinWindow("gate-cam", since)
	_, to, _ := n.clips.PinWindow("gate-cam", at)
	if len(l.Links) != 1 || !l.Links[0].ClipFrom.Equal(from) || !l.Links[0].ClipTo.Equal(to) {
		t.Fatalf("loiter links %+v, want %v..%v (from the entry's pre-roll)", l.Links, from, to)
	}
	pinned := func() bool {
		return slices.ContainsFunc(n.clips.Pins(), func(p clips.Pin) bool { return p.ID == l.ID && p.From.Equal(from) && p.To.Equal(to) })
	}
	for deadline := time.Now().Add(2 * time.Second); !pinned(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("pins %+v: the loiter's video is not pinned from its entry", n.clips.Pins())
		}
	}
}

// TestPerimeterSummaries: the English of a perimeter alert.
func TestPerimeterSummaries(t *testing.T) {
	at := time.Now()
	for _, tc := range []struct {
		ev   camera.PerimeterEvent
		want string
	}{
		{camera.PerimeterEvent{Kind: camera.PerimeterCrossing, Name: "east wall", Direction: perimeter.Out}, "Crossed east wall outward at Gate"},
		{camera.PerimeterEvent{Kind: camera.PerimeterCrossing, Name: "east wall"}, "Crossed east wall at Gate"},
		{camera.PerimeterEvent{Kind: camera.PerimeterLoiter, Name: "apron", Time: at, Since: at.Add(-185 * time.Second)}, "Lingering 3 min 5 s at apron (Gate)"},
		{camera.PerimeterEvent{Kind: camera.PerimeterLoiter, Name: "apron", Time: at, Since: at.Add(-2 * time.Minute)}, "Lingering 2 min at apron (Gate)"},
		{camera.PerimeterEvent{Kind: camera.PerimeterLoiter, Name: "apron", Time: at}, "Lingering at apron (Gate)"},
	} {
		if got := perimeterSummary(tc.ev, "Gate"); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
	long := make([]motion.Point, wire.MaxPath+10)
	if p := wirePath(long); len(p) != wire.MaxPath {
		t.Errorf("path of %d points kept %d, want %d", len(long), len(p), wire.MaxPath)
	}
	if from := loiterPinFrom(at.Add(-time.Hour), at); !from.Equal(at.Add(-maxLoiterPin)) {
		t.Errorf("an hour's loiter pins from %v before the alert", at.Sub(from))
	}
}

// liveCam is a running camera as a revision changes it live.
type liveCam struct {
	motions []motion.Config
	perims  []perimeter.Config
	refuse  error
}

func (c *liveCam) SetMotion(m motion.Config) error { c.motions = append(c.motions, m); return nil }
func (c *liveCam) MotionConfig() motion.Config     { return motion.Config{} }
func (c *liveCam) SetPerimeter(p perimeter.Config) error {
	if c.refuse != nil {
		return c.refuse
	}
	c.perims = append(c.perims, p)
	return nil
}

type revName struct{ name string }

func (r *revName) ConfigRevision() string     { return r.name }
func (r *revName) SetConfigRevision(n string) { r.name = n }

// TestPerimeterRevisionLive: a revision that changes only a camera's
// lines, dwell regions or perimeter tuning (with or without its motion
// block) is applied live, through SetPerimeter; with anything else it
// needs a restart and nothing is applied in part.
func TestPerimeterRevisionLive(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "edge.yaml")
	body := func(url, cam string) []byte {
		return []byte("edge_id: gate-1\nsite_id: village/north\nlisten: 127.0.0.1:0\ndata_dir: " + filepath.Join(dir, "data") +
			"\ncentral:\n  url: ws://127.0.0.1:1/api/v1/edge/ws\n  token: secret\ncameras:\n  - id: gate-cam\n    url: " + url + "\n" + cam)
	}
	const lines = "    lines:\n      - name: east wall\n        points: [[0.1, 0.8], [0.9, 0.7]]\n        direction: in\n"
	const dwell = "    dwell:\n      - {name: along the wall, line: east wall, after: 30s}\n"
	const zones = "    motion:\n      zones:\n        - {name: lane, points: [[0, 0.5], [1, 0.5], [1, 1]]}\n"
	if err := os.WriteFile(path, body("rtsp://127.0.0.1:1/gate", ""), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig("edge.yaml", body("rtsp://127.0.0.1:1/gate", ""))
	if err != nil {
		t.Fatal(err)
	}
	cam := &liveCam{}
	e := newConfigEngine(cfg, Options{ConfigPath: path}, testrig.Logger(t))
	e.cams, e.rev = map[string]motionCamera{"gate-cam": cam}, &revName{}
	apply := func(data []byte, want string, changed ...string) {
		t.Helper()
		res, err := e.ApplyConfig(data)
		if err != nil || res.Applied != want || !slices.Equal(res.Changed, changed) {
			t.Fatalf("applied %+v (%v), want %s with %v changed", res, err, want, changed)
		}
	}
	apply(body("rtsp://127.0.0.1:1/gate", lines), "live", "cameras[0].lines")
	if len(cam.perims) != 1 || len(cam.perims[0].Lines) != 1 || cam.perims[0].Lines[0].Direction != perimeter.In || len(cam.motions) != 0 {
		t.Fatalf("camera got perimeter %+v, motion %+v", cam.perims, cam.motions)
	}
	apply(body("rtsp://127.0.0.1:1/gate", zones+lines+dwell), "live", "cameras[0].motion", "cameras[0].dwell")
	if len(cam.perims) != 2 || len(cam.perims[1].Dwells) != 1 || cam.perims[1].Dwells[0].Reach != conf.DefaultReach || len(cam.motions) != 1 {
		t.Fatalf("camera got perimeter %+v, motion %d times", cam.perims, len(cam.motions))
	}
	if got, _ := e.camera("gate-cam"); len(got.Dwell) != 1 {
		t.Fatalf("config in force %+v", got)
	}
	apply(body("rtsp://127.0.0.1:1/gate", zones), "live", "cameras[0].lines", "cameras[0].dwell")
	if len(cam.perims) != 3 || !cam.perims[2].Empty() {
		t.Fatalf("lines removed: camera got %+v", cam.perims[2:])
	}
	apply(body("rtsp://127.0.0.1:1/other", zones+lines), "restart_needed", "cameras[0]")
	if len(cam.perims) != 3 {
		t.Fatal("a revision that needs a restart was applied in part")
	}
	cam.refuse = errors.New("refused")
	e.cur.Store(newInForce(cfg))
	if res, err := e.ApplyConfig(body("rtsp://127.0.0.1:1/gate", lines)); err != nil || res.Applied != "restart_needed" {
		t.Fatalf("refused live change: %+v %v", res, err)
	}
}
