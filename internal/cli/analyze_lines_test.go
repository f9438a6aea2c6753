package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/streams/perimeter"
)

func TestLoadLines(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	lf, err := loadLines(write("lines.yaml", `
lines:
  - name: wall
    points: [[0.1, 0.8], [0.9, 0.7]]
    direction: in
  - {name: road, points: [[0.2, 0.5], [0.8, 0.5]]}
dwell:
  - {name: gate, region: [[0.3, 0.6], [0.7, 0.6], [0.7, 1], [0.3, 1]], after: 20s}
  - {name: along, line: wall, after: 30s}
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg := lf.camera().PerimeterRules()
	if len(cfg.Lines) != 2 || cfg.Lines[0].Direction != perimeter.In || cfg.Lines[1].Direction != perimeter.Both || cfg.Lines[0].Points[1].X != 0.9 {
		t.Errorf("lines %+v", cfg.Lines)
	}
	if len(cfg.Dwells) != 2 || cfg.Dwells[0].After != 20*time.Second || len(cfg.Dwells[0].Region) != 4 || cfg.Dwells[1].Reach != 0.05 {
		t.Errorf("dwell %+v", cfg.Dwells)
	}
	// JSON is YAML too.
	if _, err := loadLines(write("lines.json", `{"lines": [{"name": "a", "points": [[0.1, 0.1], [0.5, 0.5]], "direction": "out"}]}`)); err != nil {
		t.Errorf("json: %v", err)
	}
	for _, bad := range []string{
		`{"lines": [{"name": "a", "points": [[0.1, 0.1]]}]}`,
		`{"lines": [{"name": "a", "points": [[0.1, 0.1], [0.5, 0.5]], "direction": "sideways"}]}`,
		`{"lines": [{"name": "a", "points": [[0.1, 0.1, 3], [0.5, 0.5]]}]}`,
		`{"dwell": [{"name": "d", "line": "nowhere", "after": "10s"}]}`,
	} {
		if _, err := loadLines(write("bad.json", bad)); err == nil || !strings.Contains(err.Error(), "bad.json") {
			t.Errorf("%s: error %v", bad, err)
		}
	}
}
