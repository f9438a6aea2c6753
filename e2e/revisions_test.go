package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/internal/testrig/rig"
)

// revConfig is an edge.yaml for gate-1 with one camera, the edge token
// rig's central accepts.
func revConfig(dataDir, listen, central, camURL, extra string) string {
	return fmt.Sprintf(`edge_id: gate-1
site_id: village/north
listen: %s
data_dir: %s
central:
  url: %s
  token: %s
  backoff_max: 1s
cameras:
  - id: gate-cam
    url: %s
%s`, listen, dataDir, central, rig.EdgeToken, camURL, extra)
}

// writeRevConfig writes a fresh edge.yaml (one camera that is not there,
// central at centralURL) into a temporary directory and loads it.
func writeRevConfig(t *testing.T, centralURL string) (path, body string, cfg edge.Config) {
	t.Helper()
	dir := t.TempDir()
	path = filepath.Join(dir, "edge.yaml")
	body = revConfig(filepath.Join(dir, "data"), "127.0.0.1:0", centralURL, "rtsp://127.0.0.1:1/gate", "")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := edge.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, body, cfg
}

// TestHelloReportsRevision: central shows the revision an edge runs.
func TestHelloReportsRevision(t *testing.T) {
	srv := startGateCentral(t)
	path, body, cfg := writeRevConfig(t, srv.HubYAML())
	revs := edge.OpenRevisions(cfg.DataDir)
	revs.Adopt(path)
	rev, err := revs.Apply(path, cfg, []byte(body+"    name: Gate\n"))
	if err != nil {
		t.Fatal(err)
	}
	node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t), ConfigRevision: rev.Name, UplinkBackoffMin: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		edges := srv.Edges()
		if len(edges) == 1 && edges[0].Online {
			if edges[0].ConfigRevision != "r2" {
				t.Fatalf("central shows revision %q, want r2", edges[0].ConfigRevision)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("edge not online at central: %+v", edges)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRevisionRenamesCameraAtCentral: the edge owns its cameras' names.
// Central shows the name in edge.yaml as soon as the edge connects (the
// first heartbeat follows the welcome), and after a revision renames the
// camera, the name of the revision the edge runs.
func TestRevisionRenamesCameraAtCentral(t *testing.T) {
	srv := startGateCentral(t)
	path, body, _ := writeRevConfig(t, srv.HubYAML())
	start := func() *edge.Node {
		t.Helper()
		cfg, err := edge.LoadConfig(path)
		if err != nil {
			t.Fatal(err)
		}
		rev, err := edge.OpenRevisions(cfg.DataDir).Adopt(path)
		if err != nil {
			t.Fatal(err)
		}
		node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t), ConfigRevision: rev.Name, ConfigPath: path,
			UplinkBackoffMin: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return node
	}
	waitName := func(rev, want string) {
		t.Helper()
		var last []central.EdgeStatus
		deadline := time.Now().Add(8 * time.Second) // well inside the 10 s heartbeat period
		for time.Now().Before(deadline) {
			last = srv.Edges()
			if len(last) == 1 && last[0].Online && last[0].ConfigRevision == rev &&
				len(last[0].Cameras) == 1 && last[0].Cameras[0].Name == want {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("central does not show camera %q at %s: %+v", want, rev, last)
	}

	if err := os.WriteFile(path, []byte(body+"    name: Gate lane\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	node := start()
	waitName("r1", "Gate lane")

	res, err := node.ApplyConfig([]byte(body + "    name: Gate lane (east)\n"))
	if err != nil || res.Revision != "r2" {
		t.Fatalf("rename refused: %+v %v", res, err)
	}
	node.Close() // the revision needs a restart (Options.Restart would do it)
	node = start()
	defer node.Close()
	waitName("r2", "Gate lane (east)")
}
