// Package conf is edge.yaml: the edge's configuration types, their
// defaults, loading and validation (every section, every problem, each
// named by file, line and field). It knows nothing of the running node:
// package edge puts a Config in force, edge/setup maps the setup page's
// forms to and from it.
package conf

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/sensors"
	"github.com/vigil-perimeter/vigil/wire"
)

// Config is edge.yaml.
type Config struct {
	EdgeID  string `yaml:"edge_id"`
	SiteID  string `yaml:"site_id"`
	Listen  string `yaml:"listen"`   // local API and /metrics, e.g. 127.0.0.1:8081
	DataDir string `yaml:"data_dir"` // outbox (and later the clip store)
	// MetricsTokenSHA256 is the hex SHA-256 of the token a monitoring
	// system sends (Authorization: Bearer) to scrape /metrics; empty:
	// /metrics takes an admin's access token only.
	MetricsTokenSHA256 string `yaml:"metrics_token_sha256,omitempty"`
	// Entrance is the entrance's name as the installer gave it at
	// enrolment (shown on the setup page and in the self-test).
	Entrance string `yaml:"entrance,omitempty"`
	// TimeZone is the entrance's IANA time zone, e.g. Asia/Shanghai
	// (setup page and self-test show local times in it).
	TimeZone string `yaml:"time_zone,omitempty"`
	// NTP names the time servers the box's clock follows (host or
	// host:port); the setup page's enrolment records them here.
	NTP     []string      `yaml:"ntp,omitempty"`
	Central CentralConfig `yaml:"central"`
	// Recording keeps every camera's original video on this box.
	Recording RecordingConfig `yaml:"recording,omitempty"`
	Cameras   []CameraConfig  `yaml:"cameras"`
	// Gates are the barrier gates and doors of this entrance, each tied to
	// the cameras that see it; GateInputs says how their controllers,
	// sensors and contacts report (README.md, "Gates").
	Gates      []GateConfig     `yaml:"gates,omitempty"`
	GateInputs GateInputsConfig `yaml:"gate_inputs,omitempty"`
	// Sensors are the safety sensors this edge reads (electricity, gas,
	// water) and SensorInputs the Modbus devices and MQTT broker they
	// come from (sensors.go; package sensors).
	Sensors      []sensors.SensorConfig `yaml:"sensors,omitempty"`
	SensorInputs sensors.InputsConfig   `yaml:"sensor_inputs,omitempty"`
	// GB28181 registers the edge with a GB/T 28181 police video platform
	// (gb28181.go); nil: off.
	GB28181 *GB28181Config `yaml:"gb28181,omitempty"`
	// Setup is the installer's setup page (edge/setup).
	Setup SetupConfig `yaml:"setup,omitempty"`
	// Analysis holds what applies to every camera's analysis: how motion
	// events are grouped into incidents (one alert per activity).
	Analysis EdgeAnalysisConfig `yaml:"analysis,omitempty"`
}

// SetupConfig configures the installer's setup page.
type SetupConfig struct {
	// OpenHours: the page closes by itself this many hours after it was
	// opened (first start) or re-opened, enrolled or not (an enrolled
	// box's page closes sooner, 30 minutes after the installer left).
	// Default 24, at most 720.
	OpenHours int `yaml:"open_hours,omitempty"`
}

// MaxSetupOpenHours bounds setup.open_hours (30 days).
const MaxSetupOpenHours = 720

// OpenFor is how long the setup page stays open (0: the page's default).
func (s SetupConfig) OpenFor() time.Duration { return time.Duration(s.OpenHours) * time.Hour }

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

// CentralConfig says how to reach central.
type CentralConfig struct {
	URL string `yaml:"url"` // ws(s)://host:port/api/v1/edge/ws
	// Token authenticates this edge. Prefer TokenFile (mode 0600) or the
	// VIGIL_EDGE_TOKEN environment variable to keep it out of the config.
	Token      string          `yaml:"token,omitempty"`
	TokenFile  string          `yaml:"token_file,omitempty"`
	BackoffMax config.Duration `yaml:"backoff_max,omitempty"`

	// Pin is central's edge hub key pin (sha256/…, as an enrolment token
	// response shows it) for an edge on a bearer token: central's edge hub
	// is TLS only, often with a self-signed certificate. Enrolled edges
	// pin the credential's and ignore it.
	Pin string `yaml:"pin,omitempty"`
}

// PinBytes is Pin as bytes (nil: none; checked by Validate).
func (c CentralConfig) PinBytes() []byte {
	p, _ := wire.ParsePin(c.Pin)
	return p
}

// NotEnrolledHint is what an edge without a credential is told to do.
const NotEnrolledHint = "not enrolled yet: run the setup page or vigil provision"

// Load reads and validates edge.yaml; VIGIL_EDGE_TOKEN overrides the token.
func Load(path string) (Config, error) {
	var c Config
	if err := config.Load(path, &c); err != nil {
		return c, err
	}
	if fe := c.ResolveToken(); fe != nil {
		return c, config.PlaceFile(path, []config.FieldError{*fe})
	}
	return c, nil
}

// ResolveToken fills Central.Token from VIGIL_EDGE_TOKEN or token_file.
// A token_file that does not exist yet is a box not enrolled yet: it runs
// (cameras, recording, the setup page) and connects once enrolment writes
// the file; Check and Enrolment say so.
func (c *Config) ResolveToken() *config.FieldError {
	if t := os.Getenv("VIGIL_EDGE_TOKEN"); t != "" {
		c.Central.Token = t
	}
	if c.Central.Token == "" && c.Central.TokenFile != "" {
		b, err := os.ReadFile(c.Central.TokenFile)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return &config.FieldError{Field: "central.token_file", Msg: c.Central.TokenFile + ": " + FileProblem(err)}
		}
		c.Central.Token = strings.TrimSpace(string(b))
		if c.Central.Token == "" {
			return &config.FieldError{Field: "central.token_file", Msg: c.Central.TokenFile + ": the file is empty"}
		}
	}
	if c.Central.Token == "" {
		return &config.FieldError{Field: "central.token", Msg: "no token: " + NotEnrolledHint + " (or set token, token_file or VIGIL_EDGE_TOKEN)"}
	}
	return nil
}

// FileProblem is an OS error without the path the caller already names.
func FileProblem(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such file"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied (the vigil user must be able to read it)"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
