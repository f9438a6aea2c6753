// Package edge is the node at an entrance: it wires cameras, analysis,
// the durable outbox and the uplink to central together, and serves the
// box's local API.
package edge

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/streams/camera"
	"github.com/vigil-perimeter/vigil/streams/motion"
)

// Config is edge.yaml.
type Config struct {
	EdgeID  string        `yaml:"edge_id"`
	SiteID  string        `yaml:"site_id"`
	Listen  string        `yaml:"listen"`   // local API and /metrics, e.g. 127.0.0.1:8081
	DataDir string        `yaml:"data_dir"` // outbox (and later the clip store)
	Central CentralConfig `yaml:"central"`
	// Recording keeps every camera's original video on this box.
	Recording RecordingConfig `yaml:"recording,omitempty"`
	Cameras   []CameraConfig  `yaml:"cameras"`
}

// RecordingConfig budgets the clip store; per camera via CameraConfig.Recording.
type RecordingConfig struct {
	// MaxGiBPerCamera caps each camera's stored video (0: no byte budget,
	// only the free-space floor and the age limit).
	MaxGiBPerCamera float64         `yaml:"max_gib_per_camera,omitempty"`
	MaxAge          config.Duration `yaml:"max_age,omitempty"`      // e.g. 720h (30 days); 0: no age limit
	MinFreeGiB      float64         `yaml:"min_free_gib,omitempty"` // keep this much disk free (default 2)
	PreRoll         config.Duration `yaml:"pre_roll,omitempty"`     // video kept before an alert (default 10s)
	PostRoll        config.Duration `yaml:"post_roll,omitempty"`    // and after it (default 30s)
}

func (r RecordingConfig) clips() clips.CameraConfig {
	return clips.CameraConfig{
		MaxBytes: int64(r.MaxGiBPerCamera * (1 << 30)), MaxAge: r.MaxAge.D(),
		PreRoll: r.PreRoll.D(), PostRoll: r.PostRoll.D(),
	}
}

// CentralConfig says how to reach central.
type CentralConfig struct {
	URL string `yaml:"url"` // ws(s)://host:port/api/v1/edge/ws
	// Token authenticates this edge. Prefer TokenFile (mode 0600) or the
	// VIGIL_EDGE_TOKEN environment variable to keep it out of the config.
	Token      string          `yaml:"token,omitempty"`
	TokenFile  string          `yaml:"token_file,omitempty"`
	BackoffMax config.Duration `yaml:"backoff_max,omitempty"`
}

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
}

// AnalysisConfig is how much of the stream is analysed.
type AnalysisConfig struct {
	FPS   float64 `yaml:"fps,omitempty"`   // default 5
	Width int     `yaml:"width,omitempty"` // default 320
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
	Masks []Polygon `yaml:"masks,omitempty"`
}

// Polygon is a list of [x, y] points in normalised picture coordinates:
// 0..1 from the left and from the top, whatever the stream's resolution.
type Polygon [][]float64

// ZoneConfig is one watched zone.
type ZoneConfig struct {
	Name        string  `yaml:"name"`
	Points      Polygon `yaml:"points"`
	MinArea     float64 `yaml:"min_area,omitempty"`    // fraction of the frame; default: the camera's min_area
	Sensitivity float64 `yaml:"sensitivity,omitempty"` // 0..1, default 0.5; higher sees fainter change
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// LoadConfig reads and validates edge.yaml; VIGIL_EDGE_TOKEN overrides the token.
func LoadConfig(path string) (Config, error) {
	var c Config
	if err := config.Load(path, &c); err != nil {
		return c, err
	}
	if err := c.resolveToken(); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func (c *Config) resolveToken() error {
	if t := os.Getenv("VIGIL_EDGE_TOKEN"); t != "" {
		c.Central.Token = t
	}
	if c.Central.Token == "" && c.Central.TokenFile != "" {
		b, err := os.ReadFile(c.Central.TokenFile)
		if err != nil {
			return fmt.Errorf("central.token_file: %w", err)
		}
		c.Central.Token = strings.TrimSpace(string(b))
	}
	if c.Central.Token == "" {
		return fmt.Errorf("central.token: no token (set token, token_file or VIGIL_EDGE_TOKEN)")
	}
	return nil
}

// Validate implements config.Validator.
func (c *Config) Validate() []config.FieldError {
	var errs []config.FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, config.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if !idPattern.MatchString(c.EdgeID) {
		add("edge_id", "must be 1-63 lower-case letters, digits, '.', '_' or '-'")
	}
	if c.SiteID == "" {
		add("site_id", "is required")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen", "must be host:port (%v)", err)
	}
	if c.DataDir == "" {
		add("data_dir", "is required")
	}
	if r := c.Recording; r.MaxGiBPerCamera < 0 || r.MinFreeGiB < 0 || r.MaxAge < 0 || r.PreRoll < 0 || r.PostRoll < 0 {
		add("recording", "budgets and durations must not be negative")
	}
	if r := c.Recording; r.MaxGiBPerCamera > 0 && r.MaxGiBPerCamera < 0.5 {
		add("recording.max_gib_per_camera", "must be at least 0.5 (a 10-minute bucket of 4 Mbit/s video is 0.3 GiB)")
	}
	if u, err := url.Parse(c.Central.URL); err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		add("central.url", "must be a ws:// or wss:// URL, e.g. wss://central.example:8443/api/v1/edge/ws")
	}
	if c.Central.Token != "" && c.Central.TokenFile != "" {
		add("central.token_file", "set either token or token_file, not both")
	}
	if len(c.Cameras) == 0 {
		add("cameras", "at least one camera is required")
	}
	seen := map[string]bool{}
	for i, cam := range c.Cameras {
		f := fmt.Sprintf("cameras[%d]", i)
		if !idPattern.MatchString(cam.ID) {
			add(f+".id", "must be 1-63 lower-case letters, digits, '.', '_' or '-'")
		} else if seen[cam.ID] {
			add(f+".id", "%q is used twice", cam.ID)
		}
		seen[cam.ID] = true
		if u, err := url.Parse(cam.URL); err != nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") || u.Host == "" {
			add(f+".url", "must be an rtsp:// or rtsps:// URL")
		}
		if cam.SubURL != "" {
			if u, err := url.Parse(cam.SubURL); err != nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") || u.Host == "" {
				add(f+".sub_url", "must be an rtsp:// or rtsps:// URL")
			}
		}
		if cam.SignalLostAfter != 0 && cam.SignalLostAfter.D() < time.Second {
			add(f+".signal_lost_after", "must be at least 1s")
		}
		if cam.Transport != "" && cam.Transport != "tcp" && cam.Transport != "udp" {
			add(f+".transport", "must be tcp or udp, not %q", cam.Transport)
		}
		errs = append(errs, cam.analysisErrors(f+".")...)
	}
	return errs
}

// analysisErrors checks the camera's analysis: and motion: blocks; field
// names start with prefix ("cameras[0]." in edge.yaml).
func (cam CameraConfig) analysisErrors(prefix string) []config.FieldError {
	var errs []config.FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, config.FieldError{Field: prefix + field, Msg: fmt.Sprintf(format, args...)})
	}
	if cam.Analysis.FPS < 0 || cam.Analysis.FPS > 30 {
		add("analysis.fps", "must be between 0 (default 5) and 30")
	}
	if cam.Analysis.Width != 0 && (cam.Analysis.Width < 64 || cam.Analysis.Width > 1920) {
		add("analysis.width", "must be between 64 and 1920 pixels")
	}
	errs = append(errs, cam.Motion.zoneErrors(prefix+"motion")...)
	m := cam.motion()
	m.Zones, m.Masks = nil, nil // reported field by field above
	if err := m.Defaults().Validate(); err != nil {
		add("motion", "%v", err)
	}
	return errs
}

// zoneErrors checks zones and masks, naming each bad field, e.g.
// "cameras[0].motion.zones[1].points".
func (m MotionConfig) zoneErrors(prefix string) []config.FieldError {
	var errs []config.FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, config.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if len(m.Zones) > motion.MaxZones {
		add(prefix+".zones", "at most %d zones", motion.MaxZones)
	}
	names := map[string]bool{}
	for i, z := range m.Zones {
		f := fmt.Sprintf("%s.zones[%d]", prefix, i)
		switch {
		case z.Name == "":
			add(f+".name", "is required")
		case names[z.Name]:
			add(f+".name", "%q is used twice", z.Name)
		}
		names[z.Name] = true
		if msg := z.Points.problem(); msg != "" {
			add(f+".points", "%s", msg)
		}
		if z.MinArea < 0 || z.MinArea >= 1 {
			add(f+".min_area", "must be a fraction of the frame between 0 and 1")
		}
		if z.Sensitivity < 0 || z.Sensitivity > 1 {
			add(f+".sensitivity", "must be between 0 and 1")
		}
	}
	for i, p := range m.Masks {
		if msg := p.problem(); msg != "" {
			add(fmt.Sprintf("%s.masks[%d]", prefix, i), "%s", msg)
		}
	}
	return errs
}

// problem says what is wrong with a polygon, or "".
func (p Polygon) problem() string {
	for i, pt := range p {
		if len(pt) != 2 {
			return fmt.Sprintf("point %d must be [x, y], has %d numbers", i, len(pt))
		}
	}
	if err := p.polygon().Validate(); err != nil {
		return err.Error()
	}
	return ""
}

func (p Polygon) polygon() motion.Polygon {
	out := make(motion.Polygon, 0, len(p))
	for _, pt := range p {
		if len(pt) == 2 {
			out = append(out, motion.Point{X: pt[0], Y: pt[1]})
		}
	}
	return out
}

// ValidateAnalysis checks a camera's analysis: and motion: blocks alone, as
// `vigil analyze --camera-config` reads them; field names start at those
// blocks ("motion.zones[0].points").
func (cam CameraConfig) ValidateAnalysis() []config.FieldError { return cam.analysisErrors("") }

// AnalyzerConfig is the analysis the camera runs: the live camera and
// `vigil analyze` use the same.
func (cam CameraConfig) AnalyzerConfig() camera.AnalyzerConfig {
	c := cam.camera()
	return camera.AnalyzerConfig{FPS: c.AnalysisFPS, Width: c.AnalysisWidth, Motion: c.Motion, Tamper: c.Tamper}
}

func (cam CameraConfig) motion() motion.Config {
	return motion.Config{
		MinArea: cam.Motion.MinArea, K: cam.Motion.K, N: cam.Motion.N,
		Warmup: cam.Motion.Warmup.D(), Cooldown: cam.Motion.Cooldown.D(), MaxEvent: cam.Motion.MaxEvent.D(),
		Zones: cam.Motion.zones(), Masks: cam.Motion.masks(),
	}
}

func (m MotionConfig) zones() []motion.Zone {
	var zs []motion.Zone
	for _, z := range m.Zones {
		zs = append(zs, motion.Zone{Name: z.Name, Points: z.Points.polygon(), MinArea: z.MinArea, Sensitivity: z.Sensitivity})
	}
	return zs
}

func (m MotionConfig) masks() []motion.Polygon {
	var ps []motion.Polygon
	for _, p := range m.Masks {
		ps = append(ps, p.polygon())
	}
	return ps
}

func (cam CameraConfig) camera() camera.Config {
	return camera.Config{
		ID: cam.ID, URL: cam.URL, SubURL: cam.SubURL, Transport: cam.Transport, SignalLostAfter: cam.SignalLostAfter.D(),
		AnalysisFPS: cam.Analysis.FPS, AnalysisWidth: cam.Analysis.Width,
		Motion: cam.motion(),
	}
}
