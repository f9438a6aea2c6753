package edge

import (
	"slices"
	"strings"
	"testing"

	"github.com/vigil-perimeter/vigil/streams/motion"
)

// zonesConfig is goodConfig with zones and masks in place of its warm-up,
// so both fixtures keep the same line numbers.
var zonesConfig = strings.Replace(goodConfig, "      warmup: 4s\n", `      zones:
        - name: lane
          points: [[0, 0.5], [1, 0.5], [1, 1], [0, 1]]
          min_area: 0.001
          sensitivity: 0.7
        - name: footpath
          points: [[0, 0], [1, 0], [1, 0.4]]
      masks:
        - [[0, 0], [0.3, 0], [0.3, 0.08], [0, 0.08]]
`, 1)

// TestZonesAndMasksReachTheDetector: what an installer draws in edge.yaml
// is what the camera's detector gets.
func TestZonesAndMasksReachTheDetector(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, zonesConfig))
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Cameras[0].AnalyzerConfig().Motion
	if len(m.Zones) != 2 || m.Zones[0].Name != "lane" || m.Zones[0].MinArea != 0.001 || m.Zones[0].Sensitivity != 0.7 {
		t.Fatalf("zones %+v", m.Zones)
	}
	if want := (motion.Polygon{{X: 0, Y: 0}, {X: 1, Y: 0}, {X: 1, Y: 0.4}}); !slices.Equal(m.Zones[1].Points, want) {
		t.Errorf("footpath points %v, want %v", m.Zones[1].Points, want)
	}
	if len(m.Masks) != 1 || len(m.Masks[0]) != 4 || m.Masks[0][2] != (motion.Point{X: 0.3, Y: 0.08}) {
		t.Errorf("masks %v", m.Masks)
	}
	if cfg.Cameras[0].camera().Motion.Zones[0].Name != "lane" {
		t.Error("the live camera does not get the zones")
	}
}

func TestZoneErrorsNameLineAndField(t *testing.T) {
	tests := []struct{ name, from, to, want string }{
		{"point outside", "[1, 0.5], [1, 1]", "[1.5, 0.5], [1, 1]", "edge.yaml:14: cameras[0].motion.zones[0].points: point 1 (1.5, 0.5) is outside the picture"},
		{"too few points", "[[0, 0], [1, 0], [1, 0.4]]", "[[0, 0], [1, 0]]", "edge.yaml:18: cameras[0].motion.zones[1].points: needs at least 3 points"},
		{"not a pair", "[1, 0.4]]", "[1]]", "edge.yaml:18: cameras[0].motion.zones[1].points: point 2 must be [x, y]"},
		{"duplicate name", "name: footpath", "name: lane", `edge.yaml:17: cameras[0].motion.zones[1].name: "lane" is used twice`},
		{"no name", "        - name: footpath\n", "        - name: \"\"\n", "cameras[0].motion.zones[1].name: is required"},
		{"sensitivity", "sensitivity: 0.7", "sensitivity: 7", "edge.yaml:16: cameras[0].motion.zones[0].sensitivity: must be between 0 and 1"},
		{"min area", "min_area: 0.001", "min_area: 2", "edge.yaml:15: cameras[0].motion.zones[0].min_area:"},
		{"flat mask", "[0.3, 0.08], [0, 0.08]]", "[0.3, 0]]", "cameras[0].motion.masks[0]: encloses no area"},
		{"unknown field", "sensitivity: 0.7", "sensitivity: 0.7\n          colour: red", `edge.yaml:17: cameras[0].motion.zones[0].colour: unknown field`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.Replace(zonesConfig, tc.from, tc.to, 1)
			if body == zonesConfig {
				t.Fatalf("%q not in the config", tc.from)
			}
			_, err := LoadConfig(writeConfig(t, body))
			if err == nil {
				t.Fatal("bad config accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}
