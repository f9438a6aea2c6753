package conf

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/streams/perimeter"
)

// perimeterConfig is goodConfig with a camera's lines, dwell regions and
// perimeter tuning after its motion block.
var perimeterConfig = strings.Replace(goodConfig, "      warmup: 4s\n", `      warmup: 4s
    lines:
      - name: east wall
        points: [[0.1, 0.8], [0.9, 0.7]]
        direction: in
      - name: lane
        points: [[0.2, 0.2], [0.5, 0.3], [0.8, 0.2]]
    dwell:
      - name: gate apron
        region: [[0.3, 0.6], [0.7, 0.6], [0.7, 1], [0.3, 1]]
        after: 20s
      - name: along the wall
        line: east wall
        after: 30s
    perimeter:
      hysteresis: 0.03
`, 1)

// TestPerimeterReachesTheCamera: the lines and dwell regions an installer
// writes in edge.yaml are what the live camera and `vigil analyze` run,
// with the documented defaults (direction both, reach 0.05).
func TestPerimeterReachesTheCamera(t *testing.T) {
	cfg, err := Load(writeConfig(t, perimeterConfig))
	if err != nil {
		t.Fatal(err)
	}
	cam := cfg.Cameras[0]
	p := cam.Camera().Perimeter
	if len(p.Lines) != 2 || p.Lines[0].Name != "east wall" || p.Lines[0].Direction != perimeter.In || p.Lines[1].Direction != perimeter.Both {
		t.Fatalf("lines %+v", p.Lines)
	}
	if want := []motion.Point{{X: 0.1, Y: 0.8}, {X: 0.9, Y: 0.7}}; !slices.Equal(p.Lines[0].Points, want) {
		t.Errorf("east wall points %v, want %v", p.Lines[0].Points, want)
	}
	if len(p.Dwells) != 2 {
		t.Fatalf("dwell %+v", p.Dwells)
	}
	apron, wall := p.Dwells[0], p.Dwells[1]
	if apron.Name != "gate apron" || len(apron.Region) != 4 || apron.After != 20*time.Second || apron.Line != "" {
		t.Errorf("gate apron %+v", apron)
	}
	if wall.Line != "east wall" || wall.Reach != DefaultReach || wall.After != 30*time.Second || len(wall.Region) != 0 {
		t.Errorf("along the wall %+v", wall)
	}
	if p.Hysteresis != 0.03 {
		t.Errorf("hysteresis %v", p.Hysteresis)
	}
	if a := cam.AnalyzerConfig().Perimeter; len(a.Lines) != 2 || len(a.Dwells) != 2 || a.Hysteresis != 0.03 {
		t.Errorf("vigil analyze gets %+v", a)
	}
	if errs := cam.ValidateAnalysis(); len(errs) != 0 {
		t.Errorf("ValidateAnalysis: %v", errs)
	}
	if cfg, err := Load(writeConfig(t, goodConfig)); err != nil || !cfg.Cameras[0].Camera().Perimeter.Empty() {
		t.Errorf("a camera without lines has perimeter %+v (%v)", cfg.Cameras[0].Camera().Perimeter, err)
	}
}

// TestPerimeterErrorsNameLineAndField: each problem names its line of
// edge.yaml and its field, as the installer wrote it.
func TestPerimeterErrorsNameLineAndField(t *testing.T) {
	tests := []struct{ name, from, to, want string }{
		{"one point", "[[0.1, 0.8], [0.9, 0.7]]", "[[0.1, 0.8]]", "edge.yaml:15: cameras[0].lines[0].points: want 2 to 32 points, got 1"},
		{"not a pair", "[[0.1, 0.8], [0.9, 0.7]]", "[[0.1, 0.8], [0.9]]", "edge.yaml:15: cameras[0].lines[0].points: point 1 must be [x, y]"},
		{"outside", "[0.5, 0.3]", "[1.5, 0.3]", "edge.yaml:18: cameras[0].lines[1].points[1]: (1.5, 0.3) is outside the picture"},
		{"direction", "direction: in", "direction: inward", `edge.yaml:16: cameras[0].lines[0].direction: want in, out or both, got "inward"`},
		{"line name twice", "name: lane", "name: east wall", `edge.yaml:17: cameras[0].lines[1].name: "east wall" is used twice`},
		{"no line name", "      - name: lane\n", "      - name: \"\"\n", "cameras[0].lines[1].name: empty"},
		{"short dwell", "after: 20s", "after: 500ms", "edge.yaml:22: cameras[0].dwell[0].after: 500ms is below 1s"},
		{"no such line", "line: east wall", "line: west wall", `edge.yaml:24: cameras[0].dwell[1].line: no line named "west wall"`},
		{"region and line", "        after: 20s\n", "        after: 20s\n        line: lane\n", "cameras[0].dwell[0]: give a region or a line, not both"},
		{"flat region", "[0.7, 1], [0.3, 1]]", "[0.7, 0.6]]", "edge.yaml:21: cameras[0].dwell[0].region:"},
		{"reach", "        line: east wall\n", "        line: east wall\n        reach: 0.9\n", "cameras[0].dwell[1].reach: 0.9 is outside (0, 0.5]"},
		{"reach without line", "        after: 20s\n", "        after: 20s\n        reach: 0.1\n", "cameras[0].dwell[0].reach: only goes with line:"},
		{"dwell name twice", "name: along the wall", "name: gate apron", `edge.yaml:23: cameras[0].dwell[1].name: "gate apron" is used twice`},
		{"hysteresis", "hysteresis: 0.03", "hysteresis: 0.5", "edge.yaml:27: cameras[0].perimeter.hysteresis: 0.5 is outside 0..0.2"},
		{"unknown field", "direction: in", "direction: in\n        colour: red", "edge.yaml:17: cameras[0].lines[0].colour: unknown field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.Replace(perimeterConfig, tc.from, tc.to, 1)
			if body == perimeterConfig {
				t.Fatalf("%q not in the config", tc.from)
			}
			_, err := Load(writeConfig(t, body))
			if err == nil {
				t.Fatal("bad config accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// TestPerimeterFieldErrorsOnce: a point that is not a pair is reported
// once, not again as whatever the perimeter package makes of the rest.
func TestPerimeterFieldErrorsOnce(t *testing.T) {
	cam := CameraConfig{ID: "c", Lines: []LineConfig{{Name: "l", Points: Polygon{{0.1}, {0.5, 0.5}}, Direction: "in"}}}
	errs := cam.ValidateAnalysis()
	if len(errs) != 1 || errs[0].Field != "lines[0].points" || !strings.Contains(errs[0].Msg, "must be [x, y]") {
		t.Fatalf("errors %v", errs)
	}
}
