package central

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

// gateASite is gate A's entrance in the sites view.
func gateASite(t *testing.T, s *Server) siteOut {
	t.Helper()
	var body struct{ Sites []siteOut }
	getJSON(t, s, "/api/v1/sites", &body)
	return body.Sites[0].Children[0].Children[0].Children[0]
}

// edgeStatus is one edge as GET /api/v1/edges reports it.
func edgeStatus(t *testing.T, s *Server, id string) EdgeStatus {
	t.Helper()
	var body struct{ Edges []EdgeStatus }
	getJSON(t, s, "/api/v1/edges", &body)
	for _, e := range body.Edges {
		if e.ID == id {
			return e
		}
	}
	t.Fatalf("edge %s not listed", id)
	return EdgeStatus{}
}

func namedHeartbeat(rev, cam, gate string) wire.Heartbeat {
	return wire.Heartbeat{Time: time.Now().UTC(), ConfigRevision: rev,
		Cameras: []wire.CameraStatus{{ID: "cam-a", Name: cam, Online: true}, {ID: "cam-new", Name: "New camera", Online: true}},
		Gates:   []wire.GateStatus{{ID: "barrier-a", Name: gate, State: "closed", Online: true}}}
}

// TestEdgeDeviceNamesFollowHeartbeat: central shows the names the edge
// reports, over central.yaml's deprecated ones; a renamed camera (a new
// config revision) shows under its new name after the next heartbeat, in
// the sites view, the edges list (the live wall's source) and bundles.
func TestEdgeDeviceNamesFollowHeartbeat(t *testing.T) {
	s := newServer(t, townshipConfig(t.TempDir()))
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	e := connectEdgeAt(t, s, northID, northToken, gateA)

	// An edge older than device names: central.yaml's name is the fallback.
	e.send(wire.TypeHeartbeat, wire.Heartbeat{Time: time.Now().UTC(), Cameras: []wire.CameraStatus{{ID: "cam-a", Online: true}}})
	eventually(t, "the unnamed heartbeat", func() bool { return len(edgeStatus(t, s, northID).Cameras) == 1 })
	if ga := gateASite(t, s); len(ga.Cameras) != 1 || ga.Cameras[0].Name != "Gate A lane" {
		t.Fatalf("before the edge names its devices: %+v", ga.Cameras)
	}

	e.send(wire.TypeHeartbeat, namedHeartbeat("r1", "Lane in", "Barrier arm"))
	eventually(t, "the edge's names", func() bool { return gateASite(t, s).Cameras[0].Name == "Lane in" })
	ga := gateASite(t, s)
	if len(ga.Cameras) != 2 || ga.Cameras[1].ID != "cam-new" || ga.Cameras[1].Name != "New camera" ||
		len(ga.Gates) != 1 || ga.Gates[0].Name != "Barrier arm" || ga.Gates[0].State != "closed" {
		t.Fatalf("sites with the edge's names: cameras %+v gates %+v", ga.Cameras, ga.Gates)
	}

	// The installer renames the camera: revision r2, the next heartbeat.
	e.send(wire.TypeHeartbeat, namedHeartbeat("r2", "Lane in (east)", "Barrier arm"))
	eventually(t, "the new name", func() bool { return gateASite(t, s).Cameras[0].Name == "Lane in (east)" })
	st := edgeStatus(t, s, northID)
	if st.ConfigRevision != "r2" || len(st.Cameras) != 2 || st.Cameras[0].Name != "Lane in (east)" || st.Gates[0].Name != "Barrier arm" {
		t.Fatalf("edges list after the rename: %+v", st)
	}
	c := bundleCamera{CameraID: "cam-a", CameraName: "cam-a"}
	s.evidence.bundleSiteTree().nameCamera(&c, RetrievalItem{Edge: northID, SiteID: gateA, Camera: "cam-a"})
	if c.CameraName != "Lane in (east)" || c.EntranceName != "Gate A" || c.SiteName != "North village" {
		t.Fatalf("bundle names: %+v", c)
	}
	if d := s.edges.names.devices(northID); d.Revision != "r2" || len(d.Devices) != 3 {
		t.Fatalf("kept device list: %+v", d)
	}
}

// TestEdgeDeviceNamesSurviveRestart: an edge that is offline when central
// restarts keeps its devices and their names, from central's store.
func TestEdgeDeviceNamesSurviveRestart(t *testing.T) {
	cfg := townshipConfig(t.TempDir())
	first := newServer(t, cfg)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	e := connectEdgeAt(t, first, northID, northToken, gateA)
	e.send(wire.TypeHeartbeat, namedHeartbeat("r3", "Lane in", "Barrier arm"))
	eventually(t, "the edge's names", func() bool { return gateASite(t, first).Cameras[0].Name == "Lane in" })
	e.ws.Close()
	first.Close()

	second := newServer(t, cfg)
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	st := edgeStatus(t, second, northID)
	if st.Online || len(st.Cameras) != 2 || st.Cameras[0].Name != "Lane in" || st.Cameras[0].Online ||
		st.Cameras[1].Name != "New camera" || len(st.Gates) != 1 || st.Gates[0].Name != "Barrier arm" || st.Gates[0].State != "unknown" {
		t.Fatalf("offline edge after restart: %+v", st)
	}
	ga := gateASite(t, second)
	if len(ga.Cameras) != 2 || ga.Cameras[0].Name != "Lane in" || ga.Cameras[1].Name != "New camera" || ga.Gates[0].Name != "Barrier arm" {
		t.Fatalf("sites after restart: cameras %+v gates %+v", ga.Cameras, ga.Gates)
	}
	c := bundleCamera{CameraID: "cam-new", CameraName: "cam-new"}
	second.evidence.bundleSiteTree().nameCamera(&c, RetrievalItem{Edge: northID, SiteID: gateA, Camera: "cam-new"})
	if c.CameraName != "New camera" {
		t.Fatalf("bundle name after restart: %+v", c)
	}
}

// TestConfigLegacyDeviceNamesStillLoad: a central.yaml that still names
// cameras and gates under an entrance loads; central warns, naming the
// field, and uses those names only until the edge names its devices.
func TestConfigLegacyDeviceNamesStillLoad(t *testing.T) {
	yml := strings.Replace(townshipYAML, "{id: cam-1}", `{id: cam-1, name: "Old lane"}`, 1)
	yml = strings.Replace(yml, "/var/lib/vigil", filepath.Join(t.TempDir(), "central"), 1)
	yml = strings.Replace(yml, "0.0.0.0:8443", "127.0.0.1:0", 1)
	yml = strings.Replace(yml, "127.0.0.1:8080", "127.0.0.1:0", 1)
	path := filepath.Join(t.TempDir(), "central.yaml")
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatalf("a central.yaml with camera names no longer loads: %v", err)
	}
	var logs bytes.Buffer
	s, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, want := range []string{"township.villages[0].zones[0].entrances[0].cameras is deprecated",
		"township.villages[0].zones[0].entrances[0].gates is deprecated"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no warning %q in\n%s", want, logs.String())
		}
	}
	const site = "lotus/north/wall/gate-a"
	if n := s.edges.names.name("any-edge", site, DeviceCamera, "cam-1"); n != "Old lane" {
		t.Errorf("fallback name %q, want central.yaml's", n)
	}
	s.edges.names.report("any-edge", "r1", &wire.Heartbeat{Cameras: []wire.CameraStatus{{ID: "cam-1", Name: "New lane"}}})
	if n := s.edges.names.name("any-edge", site, DeviceCamera, "cam-1"); n != "New lane" {
		t.Errorf("name %q once the edge reported, want the edge's", n)
	}
}
