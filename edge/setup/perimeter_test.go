package setup

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/streams/perimeter"
)

// drawnPerimeter is a fence line, a loitering area and a loitering band
// along the line, as the page sends them.
func drawnPerimeter() Perimeter {
	return Perimeter{
		Lines: []Line{{Name: "fence", Points: [][2]float64{{0.1, 0.5}, {0.5, 0.45}, {0.9, 0.5}}, Direction: "in"}},
		Dwell: []Dwell{
			{Name: "gate-area", Region: [][2]float64{{0.2, 0.6}, {0.4, 0.6}, {0.4, 0.9}}, AfterS: 20},
			{Name: "fence-loiter", Line: "fence", Reach: 0.05, AfterS: 30},
		},
	}
}

// TestApplyPerimeterRoundTrip: drawn lines and areas become the camera's
// lines: and dwell: (replacing those it had, zones untouched) and read
// back as drawn; a client that sends neither keeps them.
func TestApplyPerimeterRoundTrip(t *testing.T) {
	c := conf.Config{Cameras: []conf.CameraConfig{{ID: "cam-1",
		Motion: conf.MotionConfig{Zones: []conf.ZoneConfig{{Name: "lane", Points: conf.Polygon{{0, 0}, {1, 0}, {1, 1}}}}},
		Lines:  []conf.LineConfig{{Name: "old", Points: conf.Polygon{{0, 0}, {1, 1}}, Direction: "both"}}}}}
	p := drawnPerimeter()
	if err := ApplyPerimeter(&c, "cam-1", p); err != nil {
		t.Fatal(err)
	}
	cc := c.Cameras[0]
	wantLines := []conf.LineConfig{{Name: "fence", Points: conf.Polygon{{0.1, 0.5}, {0.5, 0.45}, {0.9, 0.5}}, Direction: "in"}}
	if !reflect.DeepEqual(cc.Lines, wantLines) {
		t.Errorf("lines: %+v", cc.Lines)
	}
	wantDwell := []conf.DwellConfig{
		{Name: "gate-area", Region: conf.Polygon{{0.2, 0.6}, {0.4, 0.6}, {0.4, 0.9}}, After: config.Duration(20 * time.Second)},
		{Name: "fence-loiter", Line: "fence", Reach: 0.05, After: config.Duration(30 * time.Second)},
	}
	if !reflect.DeepEqual(cc.Dwell, wantDwell) {
		t.Errorf("dwell: %+v", cc.Dwell)
	}
	if len(cc.Motion.Zones) != 1 {
		t.Errorf("zones changed: %+v", cc.Motion.Zones)
	}
	if back := PerimeterOf(cc); !reflect.DeepEqual(back, p) {
		t.Errorf("read back:\n got %+v\nwant %+v", back, p)
	}
	if err := ApplyPerimeter(&c, "cam-1", Perimeter{}); err != nil || len(c.Cameras[0].Lines) != 1 || len(c.Cameras[0].Dwell) != 2 {
		t.Errorf("nothing sent: %v %+v", err, c.Cameras[0])
	}
	if err := ApplyPerimeter(&c, "cam-1", Perimeter{Lines: []Line{}, Dwell: []Dwell{}}); err != nil || c.Cameras[0].Lines != nil || c.Cameras[0].Dwell != nil {
		t.Errorf("all deleted: %v %+v", err, c.Cameras[0])
	}
	if err := ApplyPerimeter(&c, "cam-9", p); err == nil || err.Error() != `no camera "cam-9" on this box` {
		t.Errorf("unknown camera: %v", err)
	}
	// Unnamed ones are named by their place; no direction counts both ways.
	if err := ApplyPerimeter(&c, "cam-1", Perimeter{Lines: []Line{{Points: [][2]float64{{0, 0}, {1, 1}}}}}); err != nil {
		t.Fatal(err)
	}
	if l := c.Cameras[0].Lines; len(l) != 1 || l[0].Name != "line-1" || l[0].Direction != "both" {
		t.Errorf("unnamed line: %+v", l)
	}
}

// TestApplyPerimeterRefused: impossible lines and areas are refused, each
// problem naming its field, and the config is left as it was.
func TestApplyPerimeterRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Perimeter)
		field string
	}{
		{"direction", func(p *Perimeter) { p.Lines[0].Direction = "sideways" }, "lines[0].direction"},
		{"one point", func(p *Perimeter) { p.Lines[0].Points = p.Lines[0].Points[:1] }, "lines[0].points"},
		{"outside", func(p *Perimeter) { p.Lines[0].Points[1] = [2]float64{1.5, 0.5} }, "lines[0].points[1]"},
		{"twice", func(p *Perimeter) { p.Lines = append(p.Lines, p.Lines[0]) }, "lines[1].name"},
		{"short time", func(p *Perimeter) { p.Dwell[0].AfterS = 0.5 }, "dwell[0].after"},
		{"no line", func(p *Perimeter) { p.Dwell[1].Line = "wall" }, "dwell[1].line"},
		{"reach", func(p *Perimeter) { p.Dwell[1].Reach = 0.9 }, "dwell[1].reach"},
		{"region", func(p *Perimeter) { p.Dwell[0].Region = p.Dwell[0].Region[:2] }, "dwell[0].region"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := conf.Config{Cameras: []conf.CameraConfig{{ID: "cam-1"}}}
			p := drawnPerimeter()
			tc.edit(&p)
			err := ApplyPerimeter(&c, "cam-1", p)
			var ref *RefusedError
			if !errors.As(err, &ref) {
				t.Fatalf("not refused: %v", err)
			}
			if ref.Problems[0].Field != tc.field || !strings.HasPrefix(ref.Error(), tc.field+": ") {
				t.Errorf("refusal %q, problems %+v; want field %s", ref.Error(), ref.Problems, tc.field)
			}
			if c.Cameras[0].Lines != nil || c.Cameras[0].Dwell != nil {
				t.Errorf("config changed: %+v", c.Cameras[0])
			}
		})
	}
}

// TestPerimeterPreviewOf: tracks with their paths, and only the crossings
// and loiterings of the last CrossingsShown.
func TestPerimeterPreviewOf(t *testing.T) {
	at := time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)
	p := PerimeterPreviewOf(320, 180, at,
		[]perimeter.Track{{ID: 3, Box: motion.Box{X: 0.4, Y: 0.3, W: 0.1, H: 0.3}, Path: []motion.Point{{X: 0.45, Y: 0.4}, {X: 0.45, Y: 0.6}}, Seen: true}},
		[]perimeter.Crossing{{Line: "fence", Direction: perimeter.In, Track: 3, At: at.Add(-2 * time.Second)}, {Line: "fence", Direction: perimeter.Out, Track: 1, At: at.Add(-time.Minute)}},
		[]perimeter.Loiter{{Dwell: "gate-area", Track: 3, Since: at.Add(-25 * time.Second), At: at.Add(-5 * time.Second)}})
	b, _ := json.Marshal(p)
	want := `{"width":320,"height":180,"at":"2026-12-07T18:00:00Z","tracks":[{"id":3,"box":[0.4,0.3,0.1,0.3],"path":[[0.45,0.4],[0.45,0.6]],"seen":true}],` +
		`"crossings":[{"line":"fence","direction":"in","track":3,"at":"2026-12-07T17:59:58Z"}],` +
		`"loiters":[{"dwell":"gate-area","track":3,"since":"2026-12-07T17:59:35Z","at":"2026-12-07T17:59:55Z"}]}`
	if string(b) != want {
		t.Errorf("preview:\n got %s\nwant %s", b, want)
	}
}

// TestPerimeterPreviewRoute: GET /setup/api/perimeter needs the page's
// code like the motion preview, hands the draft to the backend, answers
// its JSON, refuses an impossible draft naming the field, and says when
// the camera has no perimeter preview.
func TestPerimeterPreviewRoute(t *testing.T) {
	var got []Line
	fb := fakeBackend{perimeter: func(cam string, lines []Line, dwell []Dwell) (PerimeterPreview, error) {
		got = lines
		return PerimeterPreviewOf(320, 180, time.Now(), []perimeter.Track{{ID: 7, Path: []motion.Point{{X: 0.5, Y: 0.3}, {X: 0.5, Y: 0.7}}}},
			[]perimeter.Crossing{{Line: "fence", Direction: perimeter.In, Track: 7, At: time.Now()}}, nil), nil
	}}
	s, err := New(Config{DataDir: t.TempDir(), Backend: fb, Log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	draftOf := func(p Perimeter) string { b, _ := json.Marshal(p); return url.QueryEscape(string(b)) }
	p := drawnPerimeter()
	c := loggedIn(t, s)
	if resp, err := http.Get(c.base + "/setup/api/perimeter?camera=north&draft=" + draftOf(p)); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without the code: %v %v", resp, err)
	}
	get := func(q string) (int, map[string]any) {
		t.Helper()
		resp, err := c.c.Get(c.base + "/setup/api/perimeter?" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	code, out := get("camera=north&draft=" + draftOf(p))
	if code != 200 || len(got) != 1 || got[0].Name != "fence" {
		t.Fatalf("preview: %d %v (backend got %+v)", code, out, got)
	}
	cr, _ := out["crossings"].([]any)
	if tr, _ := out["tracks"].([]any); len(tr) != 1 || len(cr) != 1 || cr[0].(map[string]any)["direction"] != "in" {
		t.Errorf("preview answer: %v", out)
	}
	p.Lines[0].Direction = "sideways"
	if code, out := get("camera=north&draft=" + draftOf(p)); code != 422 || !strings.Contains(out["error"].(string), "lines[0].direction") {
		t.Errorf("bad direction: %d %v", code, out)
	}
	if code, _ := get("camera=north&draft=%7Bnope"); code != 400 {
		t.Errorf("bad draft: %d", code)
	}
	s2, _ := New(Config{DataDir: t.TempDir(), Backend: fakeBackend{}, Log: testrig.Logger(t)})
	c2 := loggedIn(t, s2)
	resp, err := c2.c.Get(c2.base + "/setup/api/perimeter?camera=north")
	if err != nil || resp.StatusCode != http.StatusNotImplemented {
		t.Errorf("no perimeter preview: %v %v", resp, err)
	}
}

// TestSaveZonesCarriesPerimeter: the page's save hands the drawn lines and
// areas to the backend with the zones, recorded for the audit; an
// impossible line is refused naming its field before anything is
// recorded or changed; the check step shows them as edge.yaml.
func TestSaveZonesCarriesPerimeter(t *testing.T) {
	rec := &recorder{}
	s, err := New(Config{DataDir: t.TempDir(), Backend: fakeBackend{rec: rec}, Log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	c := loggedIn(t, s)
	zones := []Zone{{Name: "gate", Points: [][2]float64{{0, 0}, {1, 0}, {1, 1}}}}
	p := drawnPerimeter()
	if code, out := c.post("/setup/api/zones/save", map[string]any{"camera": "north", "zones": zones, "lines": p.Lines, "dwell": p.Dwell}); code != 200 || out["lines"] != 1.0 {
		t.Fatalf("save: %d %v", code, out)
	}
	audits, _ := rec.calls()
	rec.mu.Lock()
	saved := rec.perimeter
	rec.mu.Unlock()
	if len(saved) != 1 || !reflect.DeepEqual(saved[0], p) {
		t.Errorf("backend got %+v", saved)
	}
	if d, _ := audits[len(audits)-1].Details.(map[string]any); d["lines"] != 1 || d["dwell"] != 2 {
		t.Errorf("audit details: %+v", audits[len(audits)-1])
	}
	p.Lines[0].Direction = "sideways"
	code, out := c.post("/setup/api/zones/save", map[string]any{"camera": "north", "zones": zones, "lines": p.Lines, "dwell": p.Dwell})
	if code != 422 || !strings.Contains(out["error"].(string), "lines[0].direction") {
		t.Errorf("bad direction saved: %d %v", code, out)
	}
	if a2, _ := rec.calls(); len(a2) != len(audits) {
		t.Errorf("a refused save was recorded: %+v", a2)
	}
	p.Lines[0].Direction = "out"
	code, out = c.post("/setup/api/zones", map[string]any{"camera": "north", "zones": zones, "lines": p.Lines, "dwell": p.Dwell})
	y, _ := out["yaml"].(string)
	if code != 200 || !strings.Contains(y, "    lines:\n      - name: \"fence\"\n        points: [[0.100, 0.500], [0.500, 0.450], [0.900, 0.500]]\n        direction: out\n") ||
		!strings.Contains(y, "        line: \"fence\"\n        reach: 0.05\n        after: 30s\n") {
		t.Errorf("check: %d\n%s", code, y)
	}
}
