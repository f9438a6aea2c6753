package edge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/edge/setup"
	"github.com/vigil-perimeter/vigil/internal/testrig"
)

func edgesAt(t *testing.T, srv *central.Server) []central.EdgeStatus {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+srv.Addr()+"/api/v1/edges", nil)
	req.Header.Set("Authorization", "Bearer "+gateAdminToken)
	var body struct{ Edges []central.EdgeStatus }
	if resp, err := http.DefaultClient.Do(req); err == nil {
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
	}
	return body.Edges
}

// waitEdge waits until central shows edge id online running revision rev.
func waitEdge(t *testing.T, srv *central.Server, id, rev string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, e := range edgesAt(t, srv) {
			if e.ID == id && e.Online && e.ConfigRevision == rev {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("central does not show %s online at %s: %+v", id, rev, edgesAt(t, srv))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestEnrolFromSetupPage: a box that is not enrolled yet (its token_file
// does not exist) runs and waits; the setup page's enrolment writes the
// credential 0600, records the entrance, time zone and NTP servers as a
// new revision, and the uplink connects with the new credential without a
// restart. Enrolling a connected box again needs "again".
func TestEnrolFromSetupPage(t *testing.T) {
	srv, err := central.New(central.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), AdminTokenSHA256: central.HashToken(gateAdminToken),
		EdgeHub: central.EdgeHubConfig{Listen: "127.0.0.1:0", SelfSignedHosts: []string{"127.0.0.1"}}}, testrig.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
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
	time.Sleep(300 * time.Millisecond)
	if node.Uplink().Connected() || !strings.Contains(node.Uplink().LastError(), "not enrolled") || edge.SetupBackend(node).SetupEnrolled() {
		t.Fatalf("before enrolment: connected %v, error %q", node.Uplink().Connected(), node.Uplink().LastError())
	}

	ctx := context.Background()
	if _, err := edge.SetupBackend(node).SetupEnrol(ctx, setup.EnrolRequest{Central: "https://" + srv.EdgeAddr(), Token: tok, TimeZone: "Mars/Olympus"}); err == nil || !strings.Contains(err.Error(), "time_zone") {
		t.Fatalf("bad time zone: %v", err)
	}
	res, err := edge.SetupBackend(node).SetupEnrol(ctx, setup.EnrolRequest{Central: "https://" + srv.EdgeAddr(), Token: tok,
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
	waitEdge(t, srv, "gate-1", "r2")
	if !edge.SetupBackend(node).SetupEnrolled() {
		t.Error("not enrolled after enrolment")
	}
	if _, err := edge.SetupBackend(node).SetupEnrol(ctx, setup.EnrolRequest{Central: "https://" + srv.EdgeAddr(), Token: tok}); err == nil || !strings.Contains(err.Error(), "already enrolled") {
		t.Fatalf("enrolling a connected box again: %v", err)
	}
}

// TestConfigPushAndZones: central pushes a revision down the uplink; a
// change of zones is applied live (the camera's detector runs it, central
// shows the revision); a bad revision is refused with the field named
// and changes nothing. The setup page's zone save is a revision too.
func TestConfigPushAndZones(t *testing.T) {
	srv := startGateCentral(t)
	path, body, cfg := writeRevConfig(t, hubYAML(srv))
	rev, _ := edge.OpenRevisions(cfg.DataDir).Adopt(path)
	node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t), ConfigRevision: rev.Name, ConfigPath: path, UplinkBackoffMin: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	waitEdge(t, srv, "gate-1", "r1")

	push := func(cfg any) (int, map[string]any) {
		b, _ := json.Marshal(map[string]any{"revision": "central-7", "config": cfg})
		req, _ := http.NewRequest("POST", "http://"+srv.Addr()+"/api/v1/edges/gate-1/config", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+gateAdminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		rb, _ := io.ReadAll(resp.Body)
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
	waitEdge(t, srv, "gate-1", "r2")
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
		`,"central":{"url":"`+hubURL(srv)+`","pin":"`+hubPin(srv)+`","token":"`+token+`"},"cameras":[{"id":"gate-cam","url":"rtsp://127.0.0.1:2/gate"}]}`), &obj)
	code, out = push(obj)
	if code != 200 || out["applied"] != "restart_needed" || out["revision"] != "r3" {
		t.Fatalf("object push: %d %v", code, out)
	}
	if node.ConfigRevision() != "r2" {
		t.Errorf("running %s before a restart, want r2", node.ConfigRevision())
	}

	// The setup page's save: zones of the camera replaced, in force live.
	os.WriteFile(path, []byte(zoned), 0o600) // back to r2's file
	res, err := edge.SetupBackend(node).SetupSaveZones("gate-cam", []setup.Zone{{Name: "path", Points: [][2]float64{{0, 0}, {0.5, 0}, {0.5, 0.5}}, Sensitivity: 0.7}},
		[][][2]float64{{{0.8, 0}, {1, 0}, {1, 0.2}}})
	if err != nil {
		t.Fatal(err)
	}
	ar := res.(edge.ApplyResult)
	if ar.Applied != "live" || ar.Revision != "r4" {
		t.Fatalf("save zones: %+v", ar)
	}
	waitZones(t, node, "path")
	if m, _ := node.CameraMotion("gate-cam"); len(m.Masks) != 1 || m.Zones[0].Sensitivity != 0.7 {
		t.Errorf("camera runs %+v", m)
	}
	waitEdge(t, srv, "gate-1", "r4")
	if _, err := edge.SetupBackend(node).SetupSaveZones("nope", nil, nil); err == nil {
		t.Error("zones for an unknown camera accepted")
	}

	// Central re-opens a closed setup page.
	closed := filepath.Join(cfg.DataDir, setup.ClosedFile)
	os.WriteFile(closed, []byte("x"), 0o600)
	req, _ := http.NewRequest("POST", "http://"+srv.Addr()+"/api/v1/edges/gate-1/setup/reopen", nil)
	req.Header.Set("Authorization", "Bearer "+gateAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("setup reopen: %v %v", resp, err)
	}
	resp.Body.Close()
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

// Edits at once (the setup page, a script, an enrolment) each read, change
// and apply the file under one lock: none is lost.
func TestConcurrentEditsAreNotLost(t *testing.T) {
	path, _, cfg := writeRevConfig(t, "ws://127.0.0.1:1/api/v1/edge/ws")
	rev, _ := edge.OpenRevisions(cfg.DataDir).Adopt(path)
	node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t), ConfigRevision: rev.Name, ConfigPath: path})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	var wg sync.WaitGroup
	const edits = 8
	for i := range edits {
		wg.Add(1)
		go func() {
			defer wg.Done()
			server := fmt.Sprintf("ntp%d.example.org", i)
			if _, err := node.EditConfig(func(c *edge.Config) error { c.NTP = append(c.NTP, server); return nil }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := edge.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.NTP) != edits {
		t.Fatalf("after %d edits at once the file names %d NTP servers (%v): edits were lost", edits, len(got.NTP), got.NTP)
	}
}
