package edge_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/edge/conf"
)

// token is the central token in the tests' edge configs.
const token = "spine-test-token"

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
%s`, listen, dataDir, central, token, camURL, extra)
}

// writeRevConfig writes a fresh edge.yaml (one camera that is not there,
// central at centralURL) into a temporary directory and loads it.
func writeRevConfig(t *testing.T, centralURL string) (path, body string, cfg conf.Config) {
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

// TestRevisionsApplyAndRefuse: the config file in force becomes r1; a good
// change becomes r2 and replaces the file; a bad one (YAML, a field, an
// identity change) is refused with the reason and changes nothing.
func TestRevisionsApplyAndRefuse(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	path := filepath.Join(dir, "edge.yaml")
	base := revConfig(dataDir, "127.0.0.1:0", "ws://127.0.0.1:1/api/v1/edge/ws", "rtsp://127.0.0.1:8554/gate", "")
	if err := os.WriteFile(path, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	running, err := edge.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	revs := edge.OpenRevisions(dataDir)
	r1, err := revs.Adopt(path)
	if err != nil || r1.Name != "r1" {
		t.Fatalf("adopt: %+v %v", r1, err)
	}
	if again, _ := revs.Adopt(path); again.Name != "r1" {
		t.Errorf("adopting the same file again gave %s", again.Name)
	}

	good := base + "    name: North gate\n"
	r2, err := revs.Apply(path, running, []byte(good))
	if err != nil || r2.Name != "r2" {
		t.Fatalf("apply: %+v %v", r2, err)
	}
	if b, _ := os.ReadFile(path); string(b) != good {
		t.Error("config file not replaced")
	}
	if cur, ok, _ := revs.Current(path); !ok || cur.Name != "r2" {
		t.Errorf("current %+v", cur)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("config file mode %v", fi.Mode())
	}

	for _, tc := range []struct{ name, body, want string }{
		{"yaml syntax", good + "  - id: [\n", "new revision:"},
		{"unknown field", good + "    colour: red\n", "colour"},
		{"bad field", strings.Replace(good, "rtsp://127.0.0.1:8554/gate", "http://nope", 1), "cameras[0].url"},
		{"edge id", strings.Replace(good, "edge_id: gate-1", "edge_id: gate-2", 1), "edge_id cannot change"},
		{"data dir", strings.Replace(good, "data_dir: "+dataDir, "data_dir: /tmp/elsewhere", 1), "data_dir cannot change"},
	} {
		_, err := revs.Apply(path, running, []byte(tc.body))
		t.Logf("%s: %v", tc.name, err)
		if !errors.Is(err, edge.ErrRevisionRefused) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want refusal naming %q", tc.name, err, tc.want)
		}
	}
	if b, _ := os.ReadFile(path); string(b) != good {
		t.Error("a refused revision changed the config file")
	}
	list, _ := revs.List()
	if len(list) != 2 {
		t.Errorf("%d revisions after refusals, want 2", len(list))
	}
	if b, _ := revs.Get(1); string(b) != base {
		t.Error("r1 is not the original file")
	}
	// No temporary files left behind.
	for _, d := range []string{dir, filepath.Join(dataDir, "config")} {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".tmp") {
				t.Errorf("left %s in %s", e.Name(), d)
			}
		}
	}
}
