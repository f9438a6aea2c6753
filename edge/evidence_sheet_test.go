package edge

import (
	"bytes"
	"context"
	"image/jpeg"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams/sim"
	"github.com/vigil-perimeter/vigil/wire"
)

// The edge makes the contact sheet of an evidence export (central has no
// decoder): a JPEG grid of the default 4 × 3 tiles of 320 pixels, with
// no temporary file left in the data directory; an unknown camera is an
// error, not a sheet.
func TestEvidenceContactSheet(t *testing.T) {
	clip, _ := testrig.BurstsClip(t)
	cams := testrig.StartSim(t, "127.0.0.1:0", sim.Camera{Path: "gate", Clip: clip})
	cfg := conf.Config{
		EdgeID: "gate-1", SiteID: "village/north", Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: conf.CentralConfig{URL: "ws://127.0.0.1:1/api/v1/edge/ws", Token: "t", BackoffMax: config.Duration(time.Second)},
		Cameras: []conf.CameraConfig{{ID: "gate-cam", Name: "Gate", URL: cams.URL("gate")}},
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	n, err := Start(cfg, Options{Log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	start := time.Now()
	time.Sleep(7 * time.Second)
	ctx := context.Background()
	req := wire.Request{ID: "r1", Method: wire.MethodContactSheet, Camera: "gate-cam", From: start.Add(time.Second), To: start.Add(5 * time.Second),
		Evidence: &wire.EvidenceParams{Key: "req-1-0", Title: "Village / North gate / Gate  —  test"}}
	if err := req.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := n.clips.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	jpg, err := n.evidence.contactSheet(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	c, err := jpeg.DecodeConfig(bytes.NewReader(jpg))
	if err != nil || c.Width < 4*320 || c.Height < 3*180 {
		t.Fatalf("contact sheet: %+v %v", c, err)
	}
	ents, _ := os.ReadDir(cfg.DataDir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".contact-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	req.Camera = "nope"
	if _, err := n.evidence.contactSheet(ctx, req); err == nil {
		t.Error("a contact sheet of an unknown camera")
	}
	req.Evidence.Title = strings.Repeat("x", wire.MaxContactTitle+1)
	if err := req.Validate(); err == nil {
		t.Error("an over-long title passed validation")
	}
}
