package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/edge/setup"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/internal/testrig/rig"
)

// TestEnrolFromSetupPage: a box that is not enrolled yet (its token_file
// does not exist) runs and waits; the setup page's enrolment writes the
// credential 0600, records the entrance, time zone and NTP servers as a
// new revision, and the uplink connects with the new credential without a
// restart. Enrolling a connected box again needs "again".
func TestEnrolFromSetupPage(t *testing.T) {
	srv := rig.StartCentral(t, central.Config{}) // no edge in its config: enrolment adds it
	tok, _, err := srv.CreateEnrolmentToken("gate-1", "village/north", "ann", time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	credPath := filepath.Join(dir, "cred", "edge-credential.json")
	path := filepath.Join(dir, "edge.yaml")
	body := fmt.Sprintf(`# the installer's file
edge_id: gate-1
site_id: village/north
listen: 127.0.0.1:0
data_dir: %s
central:
  url: wss://127.0.0.1:1/api/v1/edge/ws
  token_file: %s
  backoff_max: 1s
cameras:
  - id: gate-cam
    url: rtsp://127.0.0.1:1/gate
`, filepath.Join(dir, "data"), credPath)
	os.WriteFile(path, []byte(body), 0o600)
	cfg, err := edge.LoadConfig(path)
	if err != nil {
		t.Fatalf("a box not enrolled yet must load: %v", err)
	}
	rev, _ := edge.OpenRevisions(cfg.DataDir).Adopt(path)
	node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t), ConfigRevision: rev.Name, ConfigPath: path, UplinkBackoffMin: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	page := openSetupPage(t, node, cfg.DataDir)
	time.Sleep(300 * time.Millisecond)
	if node.Uplink().Connected() || !strings.Contains(node.Uplink().LastError(), "not enrolled") || page.enrolled() {
		t.Fatalf("before enrolment: connected %v, error %q", node.Uplink().Connected(), node.Uplink().LastError())
	}

	if _, err := page.enrol(setup.EnrolRequest{Central: "https://" + srv.EdgeAddr(), Token: tok, TimeZone: "Mars/Olympus"}); err == nil || !strings.Contains(err.Error(), "time_zone") {
		t.Fatalf("bad time zone: %v", err)
	}
	res, err := page.enrol(setup.EnrolRequest{Central: "https://" + srv.EdgeAddr(), Token: tok,
		Entrance: "North gate", TimeZone: "Asia/Shanghai", NTP: []string{"ntp.aliyun.com, 10.0.0.1:123"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.EdgeID != "gate-1" || res.Applied != "live" || res.Revision != "r2" || res.RestartNeeded {
		t.Fatalf("enrolment result %+v", res)
	}
	if st, err := os.Stat(credPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credential: %v %v", st, err)
	}
	b, _ := os.ReadFile(path)
	for _, want := range []string{"# the installer's file", "entrance: North gate", "time_zone: Asia/Shanghai", "ntp.aliyun.com", "10.0.0.1:123", "token_file: " + credPath, "wss://" + srv.EdgeAddr()} {
		if !strings.Contains(string(b), want) {
			t.Errorf("edge.yaml lacks %q:\n%s", want, b)
		}
	}
	if _, err := edge.LoadConfig(path); err != nil {
		t.Fatalf("the enrolment's revision does not load: %v", err)
	}
	srv.WaitEdge("gate-1", "r2", 15*time.Second)
	if !page.enrolled() {
		t.Error("not enrolled after enrolment")
	}
	if _, err := page.enrol(setup.EnrolRequest{Central: "https://" + srv.EdgeAddr(), Token: tok}); err == nil || !strings.Contains(err.Error(), "already enrolled") {
		t.Fatalf("enrolling a connected box again: %v", err)
	}
}

// TestConfigPushAndZones: central pushes a revision down the uplink; a
// change of zones is applied live (the camera's detector runs it, central
// shows the revision); a bad revision is refused with the field named
// and changes nothing. The setup page's zone save is a revision too.
func TestConfigPushAndZones(t *testing.T) {
	srv := startGateCentral(t)
	path, body, cfg := writeRevConfig(t, srv.HubYAML())
	rev, _ := edge.OpenRevisions(cfg.DataDir).Adopt(path)
	node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t), ConfigRevision: rev.Name, ConfigPath: path, UplinkBackoffMin: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	srv.WaitEdge("gate-1", "r1", 15*time.Second)

	push := func(cfg any) (int, map[string]any) {
		resp, rb := srv.Do(http.MethodPost, "/api/v1/edges/gate-1/config", map[string]any{"revision": "central-7", "config": cfg})
		var out map[string]any
		json.Unmarshal(rb, &out)
		return resp.StatusCode, out
	}
	zoned := body + `    motion:
      zones:
        - name: lane
          points: [[0.1, 0.5], [0.9, 0.5], [0.9, 1], [0.1, 1]]
`
	code, out := push(zoned)
	if code != 200 || out["revision"] != "r2" || out["applied"] != "live" {
		t.Fatalf("good push: %d %v", code, out)
	}
	srv.WaitEdge("gate-1", "r2", 15*time.Second)
	waitZones(t, node, "lane")

	before, _ := os.ReadFile(path)
	bad := strings.Replace(zoned, "[0.9, 1], [0.1, 1]", "[0.9, 1], [1.7, 1]", 1)
	code, out = push(bad)
	t.Logf("bad push: %d %v", code, out)
	if code != 400 || !strings.Contains(fmt.Sprint(out["error"]), "cameras[0].motion.zones[0].points") {
		t.Fatalf("bad push: %d %v", code, out)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("a refused revision changed edge.yaml")
	}
	if list, _ := edge.OpenRevisions(cfg.DataDir).List(); len(list) != 2 || node.ConfigRevision() != "r2" {
		t.Errorf("after a refusal: %d revisions, running %s", len(list), node.ConfigRevision())
	}
	// A JSON object is a config too; a change beyond motion is stored for
	// the next start (this node has no restart hook).
	var obj map[string]any
	json.Unmarshal([]byte(`{"edge_id":"gate-1","site_id":"village/north","listen":"127.0.0.1:0","data_dir":`+jsonString(cfg.DataDir)+
		`,"central":{"url":"`+srv.HubURL()+`","pin":"`+srv.Pin()+`","token":"`+rig.EdgeToken+`"},"cameras":[{"id":"gate-cam","url":"rtsp://127.0.0.1:2/gate"}]}`), &obj)
	code, out = push(obj)
	if code != 200 || out["applied"] != "restart_needed" || out["revision"] != "r3" {
		t.Fatalf("object push: %d %v", code, out)
	}
	if node.ConfigRevision() != "r2" {
		t.Errorf("running %s before a restart, want r2", node.ConfigRevision())
	}

	// The setup page's save: zones of the camera replaced, in force live.
	os.WriteFile(path, []byte(zoned), 0o600) // back to r2's file
	page := openSetupPage(t, node, cfg.DataDir)
	ar, err := page.saveZones("gate-cam", []setup.Zone{{Name: "path", Points: [][2]float64{{0, 0}, {0.5, 0}, {0.5, 0.5}}, Sensitivity: 0.7}},
		[][][2]float64{{{0.8, 0}, {1, 0}, {1, 0.2}}})
	if err != nil {
		t.Fatal(err)
	}
	if ar.Applied != "live" || ar.Revision != "r4" {
		t.Fatalf("save zones: %+v", ar)
	}
	waitZones(t, node, "path")
	if m, _ := node.CameraMotion("gate-cam"); len(m.Masks) != 1 || m.Zones[0].Sensitivity != 0.7 {
		t.Errorf("camera runs %+v", m)
	}
	srv.WaitEdge("gate-1", "r4", 15*time.Second)
	if _, err := page.saveZones("nope", nil, nil); err == nil {
		t.Error("zones for an unknown camera accepted")
	}

	// Central re-opens a closed setup page.
	closed := filepath.Join(cfg.DataDir, setup.ClosedFile)
	os.WriteFile(closed, []byte("x"), 0o600)
	if resp, b := srv.Do(http.MethodPost, "/api/v1/edges/gate-1/setup/reopen", nil); resp.StatusCode != 200 {
		t.Fatalf("setup reopen: %s %s", resp.Status, b)
	}
	if _, err := os.Stat(closed); !os.IsNotExist(err) {
		t.Error("setup page still closed after central re-opened it")
	}
}

func jsonString(s string) string { b, _ := json.Marshal(s); return string(b) }

func waitZones(t *testing.T, node *edge.Node, name string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if m, _ := node.CameraMotion("gate-cam"); len(m.Zones) == 1 && m.Zones[0].Name == name {
			return
		}
		if time.Now().After(deadline) {
			m, _ := node.CameraMotion("gate-cam")
			t.Fatalf("camera's detector runs %+v, want zone %s", m, name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// setupPage is an installer's script on the box's setup page (/setup on
// its API address), authenticated by the setup code in X-Setup-Code.
type setupPage struct {
	t    *testing.T
	base string
	code string
}

func openSetupPage(t *testing.T, node *edge.Node, dataDir string) *setupPage {
	t.Helper()
	code, _, err := setup.LoadOrCreateCode(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	return &setupPage{t: t, base: "http://" + node.Addr() + "/setup/api/", code: code}
}

// call sends a request to the setup API; a status other than 200 is an
// error carrying the page's message.
func (p *setupPage) call(method, path string, body, out any) error {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, p.base+path, rd)
	req.Header.Set("X-Setup-Code", p.code)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(b, &e)
		return errors.New(resp.Status + ": " + e.Error)
	}
	if err := json.Unmarshal(b, out); err != nil {
		p.t.Fatalf("%s %s: %v: %s", method, path, err, b)
	}
	return nil
}

// enrolled is the setup page's status: whether the box has its credential.
func (p *setupPage) enrolled() bool {
	p.t.Helper()
	var st struct {
		Enrolled bool `json:"enrolled"`
	}
	if err := p.call(http.MethodGet, "status", nil, &st); err != nil {
		p.t.Fatalf("setup status: %v", err)
	}
	return st.Enrolled
}

// enrol is the page's step 1.
func (p *setupPage) enrol(req setup.EnrolRequest) (setup.EnrolResult, error) {
	p.t.Helper()
	var res setup.EnrolResult
	err := p.call(http.MethodPost, "enrol", req, &res)
	return res, err
}

// saveZones is the page's zone save: a revision of edge.yaml.
func (p *setupPage) saveZones(camera string, zones []setup.Zone, masks [][][2]float64) (edge.ApplyResult, error) {
	p.t.Helper()
	var res edge.ApplyResult
	err := p.call(http.MethodPost, "zones/save", map[string]any{"camera": camera, "zones": zones, "masks": masks}, &res)
	return res, err
}
