package edge_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/edge/conf"
	gatesim "github.com/vigil-perimeter/vigil/gates/sim"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams/sim"
	"github.com/vigil-perimeter/vigil/wire"
)

// selfTestCentral is a stand-in for central that takes the edge's
// connection (the handshake of fakeCentral, rpc_test.go) and reads
// whatever the edge sends, so the uplink stays connected; it returns the
// URL for edge.yaml's central.url.
func selfTestCentral(t *testing.T) string {
	t.Helper()
	url, conns := fakeCentral(t)
	go func() {
		for c := range conns {
			go func() {
				defer c.Close()
				for {
					if _, _, err := c.ReadMessage(); err != nil {
						return
					}
				}
			}()
		}
	}()
	return url
}

// refusingCentral is a stand-in for central that refuses the edge's
// credential, as central answers a token it does not know (401).
func refusingCentral(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "unknown edge token", http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + wire.EdgePath
}

func smallSimClip(t *testing.T) *sim.Clip {
	return testrig.Clip(t, footage.BurstsClip{Seconds: 10, FPS: 10, Width: 320, Height: 240, Bursts: []footage.Burst{{Start: 5, End: 9}}})
}

func runSelfTest(t *testing.T, addr, method string) edge.SelfTestReport {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+addr+"/api/v1/selftest?window=2s", nil)
	req.Header.Set("Authorization", "Bearer "+accessToken(t, testEdgeID, "installer-li", "installer"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep edge.SelfTestReport
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s selftest: %d %v", method, resp.StatusCode, err)
	}
	for _, c := range rep.Checks {
		t.Logf("%-20s %-5s %s", c.ID, c.Status, c.Reason)
	}
	return rep
}

func check(t *testing.T, rep edge.SelfTestReport, id string) edge.SelfTestCheck {
	t.Helper()
	for _, c := range rep.Checks {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no %s check in the report", id)
	return edge.SelfTestCheck{}
}

func waitUp(t *testing.T, node *edge.Node, cams int, central bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var out struct {
			Cameras []struct{ Online bool } `json:"cameras"`
		}
		getJSON(t, "http://"+node.Addr()+"/api/v1/cameras", &out)
		online := 0
		for _, c := range out.Cameras {
			if c.Online {
				online++
			}
		}
		if online >= cams && (!central || node.Uplink().Connected()) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d cameras online, central connected %v", online, cams, node.Uplink().Connected())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSelfTestGreen: a camera streaming and decoding, central connected
// and a gate heard from once give an all-green report; POST keeps it on
// the box and sends it to central as a green event.
func TestSelfTestGreen(t *testing.T) {
	cams := testrig.StartSim(t, "127.0.0.1:0", sim.Camera{Path: "gate", Clip: smallSimClip(t)})
	hub := selfTestCentral(t)
	secret := randomSecret(t)
	sent := make(chan wire.Alert, 16)
	dataDir := t.TempDir()
	cfg := conf.Config{
		EdgeID: "gate-1", SiteID: "village/north", Listen: "127.0.0.1:0", DataDir: dataDir,
		Central: conf.CentralConfig{URL: hub, Token: token, BackoffMax: config.Duration(time.Second)},
		Cameras: []conf.CameraConfig{{ID: "gate-cam", Name: "Gate", URL: cams.URL("gate")}},
		Gates:   []conf.GateConfig{{ID: "north-gate", Name: "North gate", Cameras: []string{"gate-cam"}}},
		NTP:     []string{edge.SNTPResponder(t, 200*time.Millisecond, 2)},
		GateInputs: conf.GateInputsConfig{Webhook: conf.WebhookInputConfig{Enabled: true,
			Controllers: []conf.WebhookControllerConfig{{ID: "ctl", Secret: secret, Gates: []string{"north-gate"}}}}},
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t), UplinkBackoffMin: 100 * time.Millisecond,
		OnAlert: func(a wire.Alert) {
			if a.Kind == "system.selftest" {
				sent <- a
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	waitUp(t, node, 1, true)

	// The gate has not been heard from yet: that one check is red.
	rep := runSelfTest(t, node.Addr(), http.MethodGet)
	if rep.OK || check(t, rep, "gate:north-gate").Status != edge.Red {
		t.Fatalf("gate not yet heard from, report %+v", rep)
	}
	if !strings.Contains(check(t, rep, "gate:north-gate").Reason, "no event seen yet") {
		t.Errorf("gate reason %q", check(t, rep, "gate:north-gate").Reason)
	}

	// The installer presses the button (a card and a passage).
	gs, err := gatesim.New(gatesim.Config{WebhookURL: "http://" + node.Addr() + "/api/v1/gates/events", Controller: "ctl", Secret: secret,
		Gate: "north-gate", Pause: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := gs.Run(context.Background(), "passage"); err != nil {
		t.Fatal(err)
	}
	rep = runSelfTest(t, node.Addr(), http.MethodPost)
	if !rep.OK {
		t.Fatalf("self-test not green: %v", rep.Red())
	}
	if c := check(t, rep, "clock"); !strings.Contains(c.Reason, "of NTP server 127.0.0.1:") {
		t.Errorf("clock: %q does not say the NTP server's offset", c.Reason)
	}
	for _, id := range []string{"camera:gate-cam", "analysis", "disk", "clock", "central", "gate:north-gate"} {
		if c := check(t, rep, id); c.Status != edge.Green || c.Reason == "" {
			t.Errorf("%s: %+v", id, c)
		}
	}
	cam := check(t, rep, "camera:gate-cam")
	if fps := cam.Details["fps_in"].(float64); fps < 7 || fps > 13 {
		t.Errorf("camera fps %v, want about 10", fps)
	}
	select {
	case a := <-sent:
		if a.Severity != wire.Green || !strings.Contains(a.Summary, "Self-test passed") {
			t.Errorf("sent %+v", a)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the self-test was not sent to central")
	}
	if last, ok := node.LastSelfTest(); !ok || !last.OK || len(last.Checks) != len(rep.Checks) {
		t.Errorf("kept report %+v", last)
	}
	if fi, err := os.Stat(filepath.Join(dataDir, "selftest.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("kept report: %v %v", fi, err)
	}
}

// TestSelfTestRed: a camera that cannot be reached, a camera whose clock
// is off, a gate never heard from and central refusing the token are each
// red with a plain reason; the report sent to central is red.
func TestSelfTestRed(t *testing.T) {
	clip := smallSimClip(t)
	good := testrig.StartSim(t, "127.0.0.1:0", sim.Camera{Path: "gate", Clip: clip})
	skewed, err := sim.Start(sim.Config{Address: "127.0.0.1:0", Cameras: []sim.Camera{{Path: "yard", Clip: clip}},
		ClockOffset: 10 * time.Second, Log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer skewed.Close()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	hub := refusingCentral(t)
	sent := make(chan wire.Alert, 16)
	cfg := conf.Config{
		EdgeID: "gate-1", SiteID: "village/north", Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: conf.CentralConfig{URL: hub, Token: "not-the-token", BackoffMax: config.Duration(time.Second)},
		Cameras: []conf.CameraConfig{
			{ID: "gate-cam", URL: good.URL("gate")},
			{ID: "yard", Name: "Yard", URL: skewed.URL("yard")},
			{ID: "lane", Name: "Lane", URL: "rtsp://" + closed + "/lane"},
		},
		NTP:   []string{edge.SNTPResponder(t, -10*time.Second, 2)},
		Gates: []conf.GateConfig{{ID: "north-gate", Name: "North gate", Cameras: []string{"gate-cam"}}},
		GateInputs: conf.GateInputsConfig{Webhook: conf.WebhookInputConfig{Enabled: true,
			Controllers: []conf.WebhookControllerConfig{{ID: "ctl", Secret: randomSecret(t), Gates: []string{"north-gate"}}}}},
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t), UplinkBackoffMin: 100 * time.Millisecond, CameraBackoffMax: time.Second,
		OnAlert: func(a wire.Alert) {
			if a.Kind == "system.selftest" {
				sent <- a
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	waitUp(t, node, 2, false)
	// The skewed camera's clock is known from its first RTCP sender
	// report (the simulator sends one every 10 s).
	deadline := time.Now().Add(20 * time.Second)
	for {
		rep := runSelfTest(t, node.Addr(), http.MethodGet)
		if strings.Contains(check(t, rep, "clock").Reason, "Yard") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no camera clock offset within 20 s")
		}
	}

	rep := runSelfTest(t, node.Addr(), http.MethodPost)
	if rep.OK {
		t.Fatal("report green")
	}
	for id, want := range map[string]string{
		"camera:gate-cam": "",
		"camera:yard":     "",
		"camera:lane":     "camera Lane is not streaming",
		"clock":           "this box's clock is +10s off NTP server",
		"central":         "central refuses this edge's credential",
		"gate:north-gate": "gate North gate: no event seen yet",
	} {
		c := check(t, rep, id)
		if want == "" {
			if c.Status != edge.Green {
				t.Errorf("%s: %+v", id, c)
			}
			continue
		}
		if c.Status != edge.Red || !strings.Contains(c.Reason, want) {
			t.Errorf("%s: %s %q, want red %q", id, c.Status, c.Reason, want)
		}
	}
	if c := check(t, rep, "clock"); !strings.Contains(c.Reason, "camera Yard's clock is +10s off") {
		t.Errorf("clock: %q lacks the camera's offset", c.Reason)
	}
	select {
	case a := <-sent:
		if a.Severity != wire.Red || !strings.Contains(a.Summary, "Self-test failed") || !strings.Contains(a.Summary, "Lane") {
			t.Errorf("sent %+v", a)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the self-test was not queued for central")
	}
}
