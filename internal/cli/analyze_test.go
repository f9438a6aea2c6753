package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/footage"
)

// burstsFile builds the default bursts clip: crossings at 5, 15, 25 and
// 35 s of a 40 s, 10 fps clip.
func burstsFile(t *testing.T) (string, footage.BurstsClip) {
	t.Helper()
	spec := footage.DefaultBursts()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := spec.Make(ctx, footage.Cache{Dir: footage.DefaultDir()})
	if err != nil {
		t.Fatal(err)
	}
	return p, spec
}

// TestAnalyzeJSON: one JSON object per crossing, at the crossing's frames
// and times, as the edge would raise them.
func TestAnalyzeJSON(t *testing.T) {
	clip, spec := burstsFile(t)
	var out, errOut bytes.Buffer
	if code := Main([]string{"analyze", "--input", clip, "--json", "--start", "2026-03-01T12:00:00Z"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var evs []jsonEvent
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var ev jsonEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("not one JSON object per line: %q: %v", sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	if len(evs) != len(spec.Bursts) {
		t.Fatalf("%d events for %d crossings:\n%s", len(evs), len(spec.Bursts), out.String())
	}
	for i, ev := range evs {
		b := spec.Bursts[i]
		entered := int(b.Start) * spec.FPS
		switch {
		case ev.Kind != "motion":
			t.Errorf("event %d: kind %q", i, ev.Kind)
		case ev.AlertFrame < entered || ev.AlertFrame > entered+spec.FPS:
			t.Errorf("event %d: alert at frame %d, the object entered at frame %d", i, ev.AlertFrame, entered)
		case ev.StartFrame > ev.AlertFrame || ev.EndFrame == nil || *ev.EndFrame < int(b.End)*spec.FPS:
			t.Errorf("event %d: frames %d–%v, alert %d, crossing %g–%g s", i, ev.StartFrame, ev.EndFrame, ev.AlertFrame, b.Start, b.End)
		case !ev.Alert.Equal(t0.Add(time.Duration(ev.AlertS * float64(time.Second)))):
			t.Errorf("event %d: alert at %v but %g s into the file", i, ev.Alert, ev.AlertS)
		case len(ev.Zones) != 1 || ev.Zones[0] != "all" || len(ev.Boxes) == 0:
			t.Errorf("event %d: zones %v, boxes %v", i, ev.Zones, ev.Boxes)
		}
	}
	if !strings.Contains(errOut.String(), "4 motion events") {
		t.Errorf("summary: %q", errOut.String())
	}
}

// TestAnalyzeWithCameraConfig: zones and masks written as in edge.yaml; a
// mistake in them is named by file, line and field.
func TestAnalyzeWithCameraConfig(t *testing.T) {
	clip, _ := burstsFile(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "camera.yaml")
	os.WriteFile(good, []byte(`analysis:
  fps: 5
motion:
  zones:
    - name: lane
      points: [[0, 0.45], [1, 0.45], [1, 0.9], [0, 0.9]]
  masks:
    - [[0, 0.45], [0.5, 0.45], [0.5, 0.9], [0, 0.9]]
`), 0o600)
	var out, errOut bytes.Buffer
	if code := Main([]string{"analyze", "--input", clip, "--camera-config", good, "--start", "2026-03-01T12:00:00Z"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 { // 4 crossings and the summary
		t.Fatalf("output:\n%s", out.String())
	}
	for _, l := range lines[:4] {
		// The left half is masked: each crossing is seen once the object
		// is past the middle, 2.5 s into its 4 s crossing.
		if !strings.HasPrefix(l, "motion  0:") || !strings.Contains(l, "zones lane") {
			t.Errorf("line %q", l)
		}
	}
	if !strings.Contains(lines[0], "– 0:10.000 (frame 100)") || !strings.Contains(lines[0], "alert at 0:07.") {
		t.Errorf("first crossing: %q", lines[0])
	}

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("motion:\n  zones:\n    - name: lane\n      points: [[0, 0], [2, 0], [1, 1]]\n"), 0o600)
	out.Reset()
	errOut.Reset()
	if code := Main([]string{"analyze", "--input", clip, "--camera-config", bad}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d for a bad camera config", code)
	}
	if want := "bad.yaml:4: motion.zones[0].points: point 1 (2, 0) is outside the picture"; !strings.Contains(errOut.String(), want) {
		t.Errorf("stderr %q does not contain %q", errOut.String(), want)
	}
}

func TestAnalyzeNeedsInput(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main([]string{"analyze"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "usage: vigil analyze --input FILE") {
		t.Errorf("exit %d, stderr %q", code, errOut.String())
	}
	if code := Main([]string{"analyze", "--input", filepath.Join(t.TempDir(), "none.mp4")}, &out, &errOut); code != 1 {
		t.Errorf("missing file: exit %d", code)
	}
}
