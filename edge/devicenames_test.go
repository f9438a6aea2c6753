package edge_test

import (
	"encoding/json"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/internal/testrig"
)

// TestRevisionRenamesCameraAtCentral: the edge owns its cameras' names.
// Central shows the name in edge.yaml as soon as the edge connects (the
// first heartbeat follows the welcome), and after a revision renames the
// camera, the name of the revision the edge runs.
func TestRevisionRenamesCameraAtCentral(t *testing.T) {
	srv := startGateCentral(t)
	path, body, _ := writeRevConfig(t, hubYAML(srv))
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
			req, _ := http.NewRequest("GET", "http://"+srv.Addr()+"/api/v1/edges", nil)
			req.Header.Set("Authorization", "Bearer "+gateAdminToken)
			var b struct{ Edges []central.EdgeStatus }
			if resp, err := http.DefaultClient.Do(req); err == nil {
				json.NewDecoder(resp.Body).Decode(&b)
				resp.Body.Close()
			}
			last = b.Edges
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
