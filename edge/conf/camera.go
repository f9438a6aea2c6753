package conf

import (
	"fmt"

	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/streams/camera"
	"github.com/vigil-perimeter/vigil/streams/motion"
)

// CameraConfig is one camera.
type CameraConfig struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name,omitempty"`
	URL  string `yaml:"url"`
	// SubURL is the camera's sub-stream, analysed instead of the main
	// stream when set (real cameras offer e.g. .../Channels/102).
	SubURL    string `yaml:"sub_url,omitempty"`
	Transport string `yaml:"transport,omitempty"` // tcp (default) or udp
	// SignalLostAfter: no video this long raises a "camera offline" alert.
	SignalLostAfter config.Duration `yaml:"signal_lost_after,omitempty"`
	// Armed cameras raise red alerts for motion; disarmed ones yellow.
	Armed    bool           `yaml:"armed"`
	Analysis AnalysisConfig `yaml:"analysis,omitempty"`
	Motion   MotionConfig   `yaml:"motion,omitempty"`
	// Lines are tripwires and Dwell loitering rules (perimeter.go); an
	// alert names the line or region. Perimeter tunes both.
	Lines     []LineConfig    `yaml:"lines,omitempty"`
	Dwell     []DwellConfig   `yaml:"dwell,omitempty"`
	Perimeter PerimeterTuning `yaml:"perimeter,omitempty"`
}

// AnalysisConfig is how much of the stream is analysed.
type AnalysisConfig struct {
	FPS   float64 `yaml:"fps,omitempty"`   // default 5
	Width int     `yaml:"width,omitempty"` // default 320
	// FullDecode keeps the codec's in-loop filter on in the analysis
	// decoder (a quarter more CPU); off by default, snapshots are decoded
	// in full either way.
	FullDecode bool `yaml:"full_decode,omitempty"`
}

// MotionConfig tunes the motion detector; zero means the default.
type MotionConfig struct {
	MinArea  float64         `yaml:"min_area,omitempty"` // fraction of the frame
	K        int             `yaml:"k,omitempty"`        // seen in k ...
	N        int             `yaml:"n,omitempty"`        // ... of n analysed frames
	Warmup   config.Duration `yaml:"warmup,omitempty"`
	Cooldown config.Duration `yaml:"cooldown,omitempty"`
	MaxEvent config.Duration `yaml:"max_event,omitempty"`
	// Zones are the watched areas, each with its own minimum object size
	// and sensitivity; none means the whole picture (zone "all"). Alerts
	// name the zones their objects touched.
	Zones []ZoneConfig `yaml:"zones,omitempty"`
	// Masks are polygons where nothing counts as motion: tree crowns, a
	// road outside the wall, the camera's clock overlay.
	Masks []Polygon `yaml:"masks,omitempty,flow"`
}

// Polygon is a list of [x, y] points in normalised picture coordinates:
// 0..1 from the left and from the top, whatever the stream's resolution.
type Polygon [][]float64

// ZoneConfig is one watched zone.
type ZoneConfig struct {
	Name        string  `yaml:"name"`
	Points      Polygon `yaml:"points,flow"`
	MinArea     float64 `yaml:"min_area,omitempty"`    // fraction of the frame; default: the camera's min_area
	Sensitivity float64 `yaml:"sensitivity,omitempty"` // 0..1, default 0.5; higher sees fainter change
}

// problem says what is wrong with a polygon, or "".
func (p Polygon) problem() string {
	for i, pt := range p {
		if len(pt) != 2 {
			return fmt.Sprintf("point %d must be [x, y], has %d numbers", i, len(pt))
		}
	}
	if err := p.motionPolygon().Validate(); err != nil {
		return err.Error()
	}
	return ""
}

// motionPolygon is the polygon as the motion detector takes it.
func (p Polygon) motionPolygon() motion.Polygon {
	out := make(motion.Polygon, 0, len(p))
	for _, pt := range p {
		if len(pt) == 2 {
			out = append(out, motion.Point{X: pt[0], Y: pt[1]})
		}
	}
	return out
}

// ValidateAnalysis checks a camera's analysis:, motion:, lines:, dwell:
// and perimeter: blocks alone, as `vigil analyze --camera-config` reads
// them; field names start at those blocks ("motion.zones[0].points",
// "lines[1].points").
func (cam CameraConfig) ValidateAnalysis() []config.FieldError { return cam.analysisErrors("") }

// AnalyzerConfig is the analysis the camera runs: the live camera and
// `vigil analyze` use the same.
func (cam CameraConfig) AnalyzerConfig() camera.AnalyzerConfig {
	c := cam.Camera()
	return camera.AnalyzerConfig{FPS: c.AnalysisFPS, Width: c.AnalysisWidth, FullDecode: c.FullDecode, Motion: c.Motion, Tamper: c.Tamper,
		Perimeter: c.Perimeter}
}

// Detector is the camera's motion detector configuration (what a
// revision changes live).
func (cam CameraConfig) Detector() motion.Config {
	return motion.Config{
		MinArea: cam.Motion.MinArea, K: cam.Motion.K, N: cam.Motion.N,
		Warmup: cam.Motion.Warmup.D(), Cooldown: cam.Motion.Cooldown.D(), MaxEvent: cam.Motion.MaxEvent.D(),
		Zones: cam.Motion.zones(), Masks: cam.Motion.masks(),
	}
}

func (m MotionConfig) zones() []motion.Zone {
	var zs []motion.Zone
	for _, z := range m.Zones {
		zs = append(zs, motion.Zone{Name: z.Name, Points: z.Points.motionPolygon(), MinArea: z.MinArea, Sensitivity: z.Sensitivity})
	}
	return zs
}

func (m MotionConfig) masks() []motion.Polygon {
	var ps []motion.Polygon
	for _, p := range m.Masks {
		ps = append(ps, p.motionPolygon())
	}
	return ps
}

// Camera is the camera as streams/camera runs it.
func (cam CameraConfig) Camera() camera.Config {
	return camera.Config{
		ID: cam.ID, URL: cam.URL, SubURL: cam.SubURL, Transport: cam.Transport, SignalLostAfter: cam.SignalLostAfter.D(),
		AnalysisFPS: cam.Analysis.FPS, AnalysisWidth: cam.Analysis.Width, FullDecode: cam.Analysis.FullDecode,
		Motion: cam.Detector(), Perimeter: cam.PerimeterRules(),
	}
}
