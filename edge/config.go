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

	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/streams/camera"
	"github.com/vigil-perimeter/vigil/streams/motion"
)

// Config is edge.yaml.
type Config struct {
	EdgeID  string         `yaml:"edge_id"`
	SiteID  string         `yaml:"site_id"`
	Listen  string         `yaml:"listen"`   // local API and /metrics, e.g. 127.0.0.1:8081
	DataDir string         `yaml:"data_dir"` // outbox (and later the clip store)
	Central CentralConfig  `yaml:"central"`
	Cameras []CameraConfig `yaml:"cameras"`
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
		if cam.Analysis.FPS < 0 || cam.Analysis.FPS > 30 {
			add(f+".analysis.fps", "must be between 0 (default 5) and 30")
		}
		if cam.Analysis.Width != 0 && (cam.Analysis.Width < 64 || cam.Analysis.Width > 1920) {
			add(f+".analysis.width", "must be between 64 and 1920 pixels")
		}
		if err := cam.motion().Defaults().Validate(); err != nil {
			add(f+".motion", "%v", err)
		}
	}
	return errs
}

func (cam CameraConfig) motion() motion.Config {
	return motion.Config{
		MinArea: cam.Motion.MinArea, K: cam.Motion.K, N: cam.Motion.N,
		Warmup: cam.Motion.Warmup.D(), Cooldown: cam.Motion.Cooldown.D(), MaxEvent: cam.Motion.MaxEvent.D(),
	}
}

func (cam CameraConfig) camera() camera.Config {
	return camera.Config{
		ID: cam.ID, URL: cam.URL, SubURL: cam.SubURL, Transport: cam.Transport, SignalLostAfter: cam.SignalLostAfter.D(),
		AnalysisFPS: cam.Analysis.FPS, AnalysisWidth: cam.Analysis.Width,
		Motion: cam.motion(),
	}
}
