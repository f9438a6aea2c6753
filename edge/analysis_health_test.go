package edge_test

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams/sim"
	"github.com/vigil-perimeter/vigil/wire"
)

// TestDamagedStreamIsReported: a camera whose video arrives badly damaged
// (about one byte in 200 for the first 10 s of every 40) is not silently
// blind: the edge raises a yellow camera.analysis_degraded alert,
// /api/v1/cameras says "degraded" meanwhile, and a green alert follows when
// the video is clean again.
func TestDamagedStreamIsReported(t *testing.T) {
	path, _ := testrig.DamagedBursts(t, "200*not(floor(pts*tb/10))")
	clip, err := sim.LoadClip(path)
	if err != nil {
		t.Fatal(err)
	}
	cams := testrig.StartSim(t, "127.0.0.1:0", sim.Camera{Path: "cam", Clip: clip})
	var mu sync.Mutex
	var got []wire.Alert
	cfg := conf.Config{
		EdgeID: "gate-1", SiteID: "village/north", Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: conf.CentralConfig{URL: "ws://127.0.0.1:1/api/v1/edge/ws", Token: token, BackoffMax: config.Duration(time.Second)},
		Cameras: []conf.CameraConfig{{ID: "cam", Name: "Damaged", URL: cams.URL("cam"), Armed: true}},
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("test config invalid: %v", errs)
	}
	node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t), OnAlert: func(a wire.Alert) {
		if a.Kind == "camera.analysis_degraded" {
			mu.Lock()
			got = append(got, a)
			mu.Unlock()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	alerts := func() []wire.Alert {
		mu.Lock()
		defer mu.Unlock()
		return append([]wire.Alert(nil), got...)
	}
	deadline := time.Now().Add(60 * time.Second)
	sawDegraded := false
	for time.Now().Before(deadline) && len(alerts()) < 2 {
		if len(alerts()) == 1 && !sawDegraded {
			resp, err := apiGet("http://" + node.Addr() + "/api/v1/cameras")
			if err == nil {
				var cs struct {
					Cameras []struct {
						ID       string `json:"id"`
						Analysis struct {
							State string `json:"state"`
						} `json:"analysis"`
					} `json:"cameras"`
				}
				json.NewDecoder(resp.Body).Decode(&cs)
				resp.Body.Close()
				sawDegraded = len(cs.Cameras) == 1 && cs.Cameras[0].Analysis.State == "degraded"
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	as := alerts()
	if len(as) < 2 || as[0].Severity != wire.Yellow || as[1].Severity != wire.Green {
		t.Fatalf("analysis alerts %+v, want yellow then green", as)
	}
	if !sawDegraded {
		t.Error("/api/v1/cameras never said the analysis was degraded while the alert was open")
	}
	t.Logf("%s: %s; then %s", as[0].Severity, as[0].Summary, as[1].Summary)
}
