package setup

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"math"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/streams/perimeter"
)

// The setup page in Chromium against a fake backend (playwright-core and
// Debian's Chromium at /usr/bin/chromium, as e2e/ uses them; skipped where
// they are missing).

const chromium = "/usr/bin/chromium"

// browserBackend is fakeBackend with a camera whose picture is grey and
// whose perimeter watcher sees one person cross the first drawn line,
// from its left-hand side to its right-hand side ("in"), the moment it
// is drawn.
type browserBackend struct {
	fakeBackend
}

func (browserBackend) SetupStatus() any {
	return map[string]any{"edge_id": "gate-1", "cameras": []map[string]any{{"id": "north", "name": "North", "online": true,
		"zones": []any{}, "masks": []any{}, "lines": []any{}, "dwell": []any{}}}}
}

func (browserBackend) SetupSnapshot(context.Context, string) ([]byte, error) {
	img := image.NewGray(image.Rect(0, 0, 640, 360))
	for i := range img.Pix {
		img.Pix[i] = 90
	}
	var b bytes.Buffer
	err := jpeg.Encode(&b, img, nil)
	return b.Bytes(), err
}

// crossingPreview is a track crossing lines[0] at its first segment's
// middle, from its left-hand side to its right-hand side on a 640×360
// picture, 60 pixels either side, and that crossing.
func crossingPreview(lines []Line) PerimeterPreview {
	now := time.Now()
	if len(lines) == 0 || len(lines[0].Points) < 2 {
		return PerimeterPreviewOf(640, 360, now, nil, nil, nil)
	}
	a, b := lines[0].Points[0], lines[0].Points[1]
	const w, h = 640.0, 360.0
	dx, dy := (b[0]-a[0])*w, (b[1]-a[1])*h
	l := math.Hypot(dx, dy)
	nx, ny := -dy/l, dx/l // right-hand normal (y grows downwards)
	mx, my := (a[0]+b[0])/2*w, (a[1]+b[1])/2*h
	var path []motion.Point
	for i := -3; i <= 3; i++ {
		path = append(path, motion.Point{X: (mx + nx*float64(i)*20) / w, Y: (my + ny*float64(i)*20) / h})
	}
	end := path[len(path)-1]
	tr := perimeter.Track{ID: 7, Box: motion.Box{X: end.X - 0.03, Y: end.Y - 0.2, W: 0.06, H: 0.2}, Anchor: end, Path: path, Seen: true}
	cr := perimeter.Crossing{Line: lines[0].Name, Direction: perimeter.In, Track: 7, At: now.Add(-500 * time.Millisecond)}
	return PerimeterPreviewOf(640, 360, now, []perimeter.Track{tr}, []perimeter.Crossing{cr}, nil)
}

// TestPerimeterInBrowser: in Chromium, the installer draws a tripwire on
// the camera's picture with two clicks (a double-click finishes it),
// chooses "in", flips it (the arrow moves to the other side), saves (the
// saved form carries the flipped line) and, with the live preview on,
// sees the track cross the line and the crossing shown ("→ in").
func TestPerimeterInBrowser(t *testing.T) {
	root, _ := filepath.Abs("../..")
	for _, need := range []string{chromium, filepath.Join(root, "node_modules", "playwright-core", "package.json")} {
		if _, err := os.Stat(need); err != nil {
			t.Fatalf("%s missing: make test installs Chromium and playwright-core", need)
		}
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node missing: make test installs it")
	}
	rec := &recorder{}
	be := browserBackend{fakeBackend{rec: rec, perimeter: func(_ string, lines []Line, _ []Dwell) (PerimeterPreview, error) {
		return crossingPreview(lines), nil
	}}}
	s, err := New(Config{DataDir: t.TempDir(), Backend: be, Log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	shots := os.Getenv("SETUP_SHOTS") // keep the screenshots there
	if shots == "" {
		shots = t.TempDir()
	}
	cmd := exec.CommandContext(ctx, "node", filepath.Join("testdata", "perimeter.browser.mjs"))
	cmd.Env = append(os.Environ(), "SETUP_URL="+srv.URL, "SETUP_CODE="+s.access.code, "SETUP_SHOTS="+shots)
	out, err := cmd.CombinedOutput()
	t.Logf("node perimeter.browser.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("node: %v (screenshot on failure in %s)", err, shots)
	}
	rec.mu.Lock()
	saved := slices.Clone(rec.perimeter)
	rec.mu.Unlock()
	if len(saved) == 0 || len(saved[len(saved)-1].Lines) != 1 {
		t.Fatalf("saved: %+v", saved)
	}
	l := saved[len(saved)-1].Lines[0]
	if l.Name != "fence" || l.Direction != "in" || len(l.Points) != 2 || l.Points[0][0] < l.Points[1][0] {
		t.Errorf("the saved line is not the flipped one drawn: %+v", l)
	}
}
