package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/edge/setup"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams/camera"
	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/streams/perimeter"
)

// plainCamera is a setup camera without a perimeter preview.
type plainCamera struct{}

func (plainCamera) Status() camera.Status { return camera.Status{Online: true} }
func (plainCamera) Snapshot(context.Context) ([]byte, time.Time, error) {
	return nil, time.Time{}, errors.New("no picture")
}
func (plainCamera) MotionPreview(context.Context, []motion.Zone, []motion.Polygon) (motion.Preview, time.Time, error) {
	return motion.Preview{}, time.Time{}, errors.New("no preview")
}

// trackingCamera has a perimeter preview: it keeps the draft it was given.
type trackingCamera struct {
	plainCamera
	got *perimeter.Config
}

func (c trackingCamera) PerimeterPreview(_ context.Context, cfg perimeter.Config) (camPerimeterPreview, error) {
	*c.got = cfg
	at := time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)
	return camPerimeterPreview{At: at,
		Tracks:    []perimeter.Track{{ID: 4, Path: []motion.Point{{X: 0.5, Y: 0.3}, {X: 0.5, Y: 0.7}}, Seen: true}},
		Crossings: []perimeter.Crossing{{Line: "fence", Direction: perimeter.In, Track: 4, At: at.Add(-time.Second)}}}, nil
}

// TestSetupPerimeterPreview: the backend hands the page's draft to the
// camera's perimeter preview as the watcher's config and answers its
// tracks and crossings; a camera without one says so plainly.
func TestSetupPerimeterPreview(t *testing.T) {
	var got perimeter.Config
	cams := map[string]setupCamera{"cam-1": trackingCamera{got: &got}, "cam-2": plainCamera{}}
	s := &setupBackend{camera: func(id string) setupCamera { return cams[id] }}
	lines := []setup.Line{{Name: "fence", Points: [][2]float64{{0.1, 0.5}, {0.9, 0.5}}, Direction: "in"}}
	dwell := []setup.Dwell{{Name: "near", Line: "fence", AfterS: 20}}
	p, err := s.SetupPerimeterPreview(context.Background(), "cam-1", lines, dwell)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Lines) != 1 || got.Lines[0].Direction != perimeter.In || len(got.Dwells) != 1 || got.Dwells[0].Reach != setup.DefaultReach || got.Dwells[0].After != 20*time.Second {
		t.Errorf("draft given to the camera: %+v", got)
	}
	if len(p.Tracks) != 1 || p.Tracks[0].ID != 4 || len(p.Crossings) != 1 || p.Crossings[0].Direction != "in" {
		t.Errorf("preview: %+v", p)
	}
	if _, err := s.SetupPerimeterPreview(context.Background(), "cam-2", lines, nil); !errors.Is(err, setup.ErrNoPerimeterPreview) {
		t.Errorf("camera without a perimeter preview: %v", err)
	}
	if _, err := s.SetupPerimeterPreview(context.Background(), "cam-9", lines, nil); err == nil || !strings.Contains(err.Error(), `no camera "cam-9"`) {
		t.Errorf("unknown camera: %v", err)
	}
}

// TestSetupSavesLinesAndDwell: lines and loitering areas saved on the
// node's setup page become a config revision; the page reads them back
// from the box's status, and an impossible one is refused naming its
// field.
func TestSetupSavesLinesAndDwell(t *testing.T) {
	path := writeConfig(t, strings.Replace(goodConfig, "rtsp://10.0.0.5:554/stream1", "rtsp://127.0.0.1:1/gate", 1))
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := OpenRevisions(cfg.DataDir).Adopt(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := Start(cfg, Options{Log: testrig.Logger(t), ConfigRevision: rev.Name, ConfigPath: path})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	code, err := os.ReadFile(filepath.Join(cfg.DataDir, setup.CodeFile))
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, p string, body any) (int, map[string]any) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, "http://"+n.Addr()+p, bytes.NewReader(b))
		req.Header.Set("X-Setup-Code", strings.TrimSpace(string(code)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	lines := []setup.Line{{Name: "fence", Points: [][2]float64{{0.1, 0.5}, {0.9, 0.5}}, Direction: "in"}}
	dwell := []setup.Dwell{{Name: "yard", Region: [][2]float64{{0.1, 0.6}, {0.5, 0.6}, {0.5, 0.9}}, AfterS: 20}}
	zones := []setup.Zone{{Name: "path", Points: [][2]float64{{0, 0}, {0.5, 0}, {0.5, 0.5}}}}
	if c, out := call("POST", "/setup/api/zones/save", map[string]any{"camera": "cam-1", "zones": zones, "lines": lines, "dwell": dwell}); c != http.StatusOK {
		t.Fatalf("save: %d %v", c, out)
	}
	_, st := call("GET", "/setup/api/status", nil)
	cams, _ := st["cameras"].([]any)
	if len(cams) != 1 {
		t.Fatalf("status: %v", st)
	}
	cam := cams[0].(map[string]any)
	b, _ := json.Marshal(map[string]any{"lines": cam["lines"], "dwell": cam["dwell"]})
	if want := `{"dwell":[{"after_s":20,"name":"yard","region":[[0.1,0.6],[0.5,0.6],[0.5,0.9]]}],"lines":[{"direction":"in","name":"fence","points":[[0.1,0.5],[0.9,0.5]]}]}`; string(b) != want {
		t.Errorf("read back:\n got %s\nwant %s", b, want)
	}
	lines[0].Direction = "sideways"
	if c, out := call("POST", "/setup/api/zones/save", map[string]any{"camera": "cam-1", "zones": zones, "lines": lines}); c != 422 || !strings.Contains(out["error"].(string), "lines[0].direction") {
		t.Errorf("bad direction: %d %v", c, out)
	}
}
