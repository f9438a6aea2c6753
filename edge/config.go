// Package edge is the node at an entrance: it wires cameras, analysis,
// the durable outbox and the uplink to central together, and serves the
// box's local API.
package edge

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/gates"
	"github.com/vigil-perimeter/vigil/gates/gpio"
	"github.com/vigil-perimeter/vigil/gates/mqtt"
	"github.com/vigil-perimeter/vigil/gates/webhook"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/streams/camera"
	"github.com/vigil-perimeter/vigil/streams/motion"
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
	// Setup is the installer's setup page (edge/setup).
	Setup SetupConfig `yaml:"setup,omitempty"`
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

	// Pin is central's edge hub key pin (sha256/…, as an enrolment token
	// response shows it) for an edge on a bearer token: central's edge hub
	// is TLS only, often with a self-signed certificate. Enrolled edges
	// pin the credential's and ignore it.
	Pin string `yaml:"pin,omitempty"`
}

// pin is Pin as bytes (nil: none; checked by Validate).
func (c CentralConfig) pin() []byte {
	p, _ := wire.ParsePin(c.Pin)
	return p
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

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// ntpServer is a host name, an IPv4 address or [IPv6], optionally :port.
var ntpServer = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$`)

// LoadConfig reads and validates edge.yaml; VIGIL_EDGE_TOKEN overrides the token.
func LoadConfig(path string) (Config, error) {
	var c Config
	if err := config.Load(path, &c); err != nil {
		return c, err
	}
	if fe := c.resolveToken(); fe != nil {
		return c, config.PlaceFile(path, []config.FieldError{*fe})
	}
	return c, nil
}

// resolveToken fills Central.Token from VIGIL_EDGE_TOKEN or token_file.
// A token_file that does not exist yet is a box not enrolled yet: it runs
// (cameras, recording, the setup page) and connects once enrolment writes
// the file; Check and Enrolment say so.
func (c *Config) resolveToken() *config.FieldError {
	if t := os.Getenv("VIGIL_EDGE_TOKEN"); t != "" {
		c.Central.Token = t
	}
	if c.Central.Token == "" && c.Central.TokenFile != "" {
		b, err := os.ReadFile(c.Central.TokenFile)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return &config.FieldError{Field: "central.token_file", Msg: c.Central.TokenFile + ": " + fileProblem(err)}
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

// fieldErrors collects the problems of one validation, in edge.yaml's
// order.
type fieldErrors []config.FieldError

func (e *fieldErrors) add(field, format string, args ...any) {
	*e = append(*e, config.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// Validate implements config.Validator: every section, every problem.
func (c *Config) Validate() []config.FieldError {
	var errs fieldErrors
	c.boxErrors(&errs)
	c.Recording.errors(&errs)
	c.Central.errors(&errs)
	cameras := cameraErrors(c.Cameras, &errs)
	gateIDs := gateListErrors(c.Gates, cameras, &errs)
	c.GateInputs.errors(gateIDs, &errs)
	if h := c.Setup.OpenHours; h < 0 || h > MaxSetupOpenHours {
		errs.add("setup.open_hours", "must be between 1 and %d hours (leave it out for 24)", MaxSetupOpenHours)
	}
	return errs
}

// boxErrors checks the box's own fields: IDs, listen address, data
// directory, scrape token, entrance, time zone and NTP servers.
func (c *Config) boxErrors(errs *fieldErrors) {
	if !idPattern.MatchString(c.EdgeID) {
		errs.add("edge_id", "must be 1-63 lower-case letters, digits, '.', '_' or '-'")
	}
	if c.SiteID == "" {
		errs.add("site_id", "is required")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs.add("listen", "must be host:port (%v)", err)
	}
	if c.DataDir == "" {
		errs.add("data_dir", "is required")
	}
	if c.MetricsTokenSHA256 != "" {
		if b, err := hex.DecodeString(c.MetricsTokenSHA256); err != nil || len(b) != sha256.Size {
			errs.add("metrics_token_sha256", "must be 64 hex digits (sha256sum of the token)")
		}
	}
	if len(c.Entrance) > 120 {
		errs.add("entrance", "at most 120 characters")
	}
	if c.TimeZone != "" {
		if _, err := time.LoadLocation(c.TimeZone); err != nil {
			errs.add("time_zone", "%q is not a known time zone (e.g. Asia/Shanghai)", c.TimeZone)
		}
	}
	if len(c.NTP) > 8 {
		errs.add("ntp", "at most 8 servers")
	}
	for i, s := range c.NTP {
		if !ntpServer.MatchString(s) {
			errs.add(fmt.Sprintf("ntp[%d]", i), "%q is not a host name, address or host:port", s)
		}
	}
}

func (r RecordingConfig) errors(errs *fieldErrors) {
	if r.MaxGiBPerCamera < 0 || r.MinFreeGiB < 0 || r.MaxAge < 0 || r.PreRoll < 0 || r.PostRoll < 0 {
		errs.add("recording", "budgets and durations must not be negative")
	}
	if r.MaxGiBPerCamera > 0 && r.MaxGiBPerCamera < 0.5 {
		errs.add("recording.max_gib_per_camera", "must be at least 0.5 (a 10-minute bucket of 4 Mbit/s video is 0.3 GiB)")
	}
}

func (c CentralConfig) errors(errs *fieldErrors) {
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		errs.add("central.url", "must be a ws:// or wss:// URL, e.g. wss://central.example:8443/api/v1/edge/ws")
	}
	if c.Pin != "" {
		if _, err := wire.ParsePin(c.Pin); err != nil {
			errs.add("central.pin", "%v", err)
		}
	}
	if c.Token != "" && c.TokenFile != "" {
		errs.add("central.token_file", "set either token or token_file, not both")
	}
}

// cameraErrors checks cameras: and returns the camera IDs.
func cameraErrors(cams []CameraConfig, errs *fieldErrors) map[string]bool {
	if len(cams) == 0 {
		errs.add("cameras", "at least one camera is required")
	}
	seen := map[string]bool{}
	for i, cam := range cams {
		f := fmt.Sprintf("cameras[%d]", i)
		if !idPattern.MatchString(cam.ID) {
			errs.add(f+".id", "must be 1-63 lower-case letters, digits, '.', '_' or '-'")
		} else if seen[cam.ID] {
			errs.add(f+".id", "%q is used twice", cam.ID)
		}
		seen[cam.ID] = true
		if u, err := url.Parse(cam.URL); err != nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") || u.Host == "" {
			errs.add(f+".url", "must be an rtsp:// or rtsps:// URL")
		}
		if cam.SubURL != "" {
			if u, err := url.Parse(cam.SubURL); err != nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") || u.Host == "" {
				errs.add(f+".sub_url", "must be an rtsp:// or rtsps:// URL")
			}
		}
		if cam.SignalLostAfter != 0 && cam.SignalLostAfter.D() < time.Second {
			errs.add(f+".signal_lost_after", "must be at least 1s")
		}
		if cam.Transport != "" && cam.Transport != "tcp" && cam.Transport != "udp" {
			errs.add(f+".transport", "must be tcp or udp, not %q", cam.Transport)
		}
		*errs = append(*errs, cam.analysisErrors(f+".")...)
	}
	return seen
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
	return camera.AnalyzerConfig{FPS: c.AnalysisFPS, Width: c.AnalysisWidth, FullDecode: c.FullDecode, Motion: c.Motion, Tamper: c.Tamper}
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
		AnalysisFPS: cam.Analysis.FPS, AnalysisWidth: cam.Analysis.Width, FullDecode: cam.Analysis.FullDecode,
		Motion: cam.motion(),
	}
}

// GateConfig is one gate (barrier arm, door, wicket) in edge.yaml.
type GateConfig struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name,omitempty"`
	// Cameras that see the gate: its alerts carry their snapshots and pin
	// their video; their motion alerts carry the gate's state.
	Cameras []string     `yaml:"cameras,omitempty"`
	Arming  ArmingConfig `yaml:"arming,omitempty"`
	// KeypadCodes, if set, are the codes a keypad must send to arm or
	// disarm the gate; a wrong or missing code is refused (yellow alert).
	KeypadCodes []string `yaml:"keypad_codes,omitempty"`
	// Timing; zero takes the gates package's default (README.md, "Gates").
	GrantWindow      config.Duration    `yaml:"grant_window,omitempty"`        // default 30s
	GrantGrace       config.Duration    `yaml:"grant_grace,omitempty"`         // default 300ms; negative: off
	HeldOpenAfter    config.Duration    `yaml:"held_open_after,omitempty"`     // default 60s
	HeldOpenRedAfter config.Duration    `yaml:"held_open_red_after,omitempty"` // default 5m; negative: never red
	Debounce         config.Duration    `yaml:"debounce,omitempty"`            // default 1s; negative: off
	FoldWindow       config.Duration    `yaml:"fold_window,omitempty"`         // default 10m
	UpdateEvery      config.Duration    `yaml:"update_every,omitempty"`        // default 30s; negative: every count
	Devices          []GateDeviceConfig `yaml:"devices,omitempty"`
}

// ArmingConfig says when a gate is armed: always, or inside any of the
// schedule's windows ("22:00-06:00", "mon-fri 18:00-07:00") in TimeZone.
type ArmingConfig struct {
	Always   bool     `yaml:"always,omitempty"`
	Schedule []string `yaml:"schedule,omitempty"`
	TimeZone string   `yaml:"time_zone,omitempty"` // default: the edge's time_zone, else Asia/Shanghai
}

// GateDeviceConfig is a device expected to report for a gate.
type GateDeviceConfig struct {
	ID string `yaml:"id"`
	// SilentAfter: quiet this long raises "device silent" (0: not watched).
	SilentAfter config.Duration `yaml:"silent_after,omitempty"`
}

// GateInputsConfig: the ways gate events reach this box.
type GateInputsConfig struct {
	Webhook WebhookInputConfig `yaml:"webhook,omitempty"`
	MQTT    *MQTTInputConfig   `yaml:"mqtt,omitempty"`
	GPIO    *GPIOInputConfig   `yaml:"gpio,omitempty"`
}

// WebhookInputConfig is POST /api/v1/gates/events on the local API.
type WebhookInputConfig struct {
	Enabled     bool                      `yaml:"enabled,omitempty"`
	MaxBody     int64                     `yaml:"max_body,omitempty"` // bytes, default 65536
	Window      config.Duration           `yaml:"window,omitempty"`   // accepted timestamp skew, default 5m
	Controllers []WebhookControllerConfig `yaml:"controllers,omitempty"`
}

// WebhookControllerConfig is one controller allowed to post events.
type WebhookControllerConfig struct {
	ID string `yaml:"id"`
	// Secret signs its requests (at least 16 bytes). Prefer SecretFile
	// (mode 0600): one secret per line, two while rotating.
	Secret     string   `yaml:"secret,omitempty"`
	SecretFile string   `yaml:"secret_file,omitempty"`
	Gates      []string `yaml:"gates"` // gates it may report
}

// MQTTInputConfig subscribes to the site's broker.
type MQTTInputConfig struct {
	Broker       string `yaml:"broker"` // tcp://host:1883, ssl://host:8883, ws://host:9001
	ClientID     string `yaml:"client_id,omitempty"`
	Username     string `yaml:"username,omitempty"`
	Password     string `yaml:"password,omitempty"`
	PasswordFile string `yaml:"password_file,omitempty"`
	// BaseTopic is Zigbee2MQTT's base_topic (default zigbee2mqtt).
	BaseTopic string             `yaml:"base_topic,omitempty"`
	Devices   []MQTTDeviceConfig `yaml:"devices,omitempty"`
	// EventTopic carries events in the webhook's JSON form (unsigned:
	// guard it with the broker's ACL); EventGates limits it to those gates.
	EventTopic string   `yaml:"event_topic,omitempty"`
	EventGates []string `yaml:"event_gates,omitempty"`
}

// MQTTDeviceConfig maps a Zigbee2MQTT friendly name to its gate.
type MQTTDeviceConfig struct {
	Name string `yaml:"name"`
	Gate string `yaml:"gate"`
	// Actions maps the device's "action" values to what they mean for its
	// gate: sos, arm, disarm or ignore, e.g. {single: sos} for a Heiman
	// HS1EB emergency button. Without an entry, emergency, panic and sos
	// are SOS, a keypad's arm_* and disarm arm and disarm the gate, and
	// every other action (dimmers, remotes, scene switches) is ignored.
	Actions map[string]string `yaml:"actions,omitempty"`
}

// GPIOInputConfig reads dry contacts on this box's GPIO lines.
type GPIOInputConfig struct {
	Chip     string           `yaml:"chip,omitempty"`     // default gpiochip0
	Debounce config.Duration  `yaml:"debounce,omitempty"` // contact bounce, default 50ms
	Lines    []GPIOLineConfig `yaml:"lines"`
}

// GPIOLineConfig is one line: which gate, which input, which role.
type GPIOLineConfig struct {
	Offset    int    `yaml:"offset"`
	Chip      string `yaml:"chip,omitempty"` // default: the section's chip
	Gate      string `yaml:"gate"`
	Input     string `yaml:"input"` // the device name, e.g. door-contact
	Role      string `yaml:"role"`  // door, button, grant, tamper, smoke, gas, water_leak, presence
	ActiveLow bool   `yaml:"active_low,omitempty"`
	Bias      string `yaml:"bias,omitempty"` // pull-up, pull-down or disabled
}

// gateListErrors checks gates: (cameras are the camera IDs) and returns
// the gate IDs.
func gateListErrors(gs []GateConfig, cameras map[string]bool, errs *fieldErrors) map[string]bool {
	gateIDs := map[string]bool{}
	for i, g := range gs {
		f := fmt.Sprintf("gates[%d]", i)
		if !idPattern.MatchString(g.ID) {
			errs.add(f+".id", "must be 1-63 lower-case letters, digits, '.', '_' or '-'")
		} else if gateIDs[g.ID] {
			errs.add(f+".id", "%q is used twice", g.ID)
		}
		gateIDs[g.ID] = true
		g.errors(f, cameras, errs)
	}
	return gateIDs
}

// errors checks one gate (field prefix f) but its ID.
func (g GateConfig) errors(f string, cameras map[string]bool, errs *fieldErrors) {
	seenCam := map[string]bool{}
	for j, cam := range g.Cameras {
		switch {
		case !cameras[cam]:
			errs.add(fmt.Sprintf("%s.cameras[%d]", f, j), "%q is not one of this edge's cameras", cam)
		case seenCam[cam]:
			errs.add(fmt.Sprintf("%s.cameras[%d]", f, j), "%q is listed twice", cam)
		}
		seenCam[cam] = true
	}
	for j, code := range g.KeypadCodes {
		if code == "" || len(code) > gates.MaxFieldLen {
			errs.add(fmt.Sprintf("%s.keypad_codes[%d]", f, j), "must be 1-%d characters", gates.MaxFieldLen)
		}
	}
	if g.Arming.Always && len(g.Arming.Schedule) > 0 {
		errs.add(f+".arming", "set always or a schedule, not both")
	}
	for j, w := range g.Arming.Schedule {
		if _, err := gates.ParseWindow(w); err != nil {
			errs.add(fmt.Sprintf("%s.arming.schedule[%d]", f, j), "%v", err)
		}
	}
	if _, err := gates.LoadLocation(g.Arming.TimeZone); err != nil {
		errs.add(f+".arming.time_zone", "%v", err)
	}
	g.timingErrors(f, errs)
	devs := map[string]bool{}
	for j, d := range g.Devices {
		df := fmt.Sprintf("%s.devices[%d]", f, j)
		switch {
		case d.ID == "" || len(d.ID) > gates.MaxFieldLen:
			errs.add(df+".id", "must be 1-%d characters", gates.MaxFieldLen)
		case devs[d.ID]:
			errs.add(df+".id", "%q is listed twice", d.ID)
		}
		devs[d.ID] = true
		if d.SilentAfter < 0 || (d.SilentAfter > 0 && d.SilentAfter.D() < time.Second) {
			errs.add(df+".silent_after", "must be 0 (not watched) or at least 1s")
		}
	}
}

// timingErrors checks a gate's durations.
func (g GateConfig) timingErrors(f string, errs *fieldErrors) {
	for _, d := range []struct {
		name string
		v    config.Duration
		neg  bool // may be negative (turns the feature off)
	}{
		{"grant_window", g.GrantWindow, false}, {"grant_grace", g.GrantGrace, true},
		{"held_open_after", g.HeldOpenAfter, false}, {"held_open_red_after", g.HeldOpenRedAfter, true},
		{"debounce", g.Debounce, true}, {"fold_window", g.FoldWindow, false}, {"update_every", g.UpdateEvery, true},
	} {
		if d.v < 0 && !d.neg {
			errs.add(f+"."+d.name, "must not be negative")
		}
	}
	if gg := g.GrantGrace.D(); gg > 10*time.Second {
		errs.add(f+".grant_grace", "at most 10s (every forced-door alert waits this long)")
	}
	gc := g.machine()
	gc.Arming = gates.Arming{} // reported field by field above
	if gc = gc.WithDefaults(); gc.HeldOpenRedAfter > 0 && gc.HeldOpenRedAfter <= gc.HeldOpenAfter {
		errs.add(f+".held_open_red_after", "must be longer than held_open_after (%v)", gc.HeldOpenAfter)
	}
}

// gateRef reports a gate_inputs field that names a gate not in gates:.
func gateRef(gateIDs map[string]bool, field, gate string, errs *fieldErrors) {
	if !gateIDs[gate] {
		errs.add(field, "%q is not one of the gates configured in gates:", gate)
	}
}

// errors checks gate_inputs: against the gate IDs.
func (in GateInputsConfig) errors(gateIDs map[string]bool, errs *fieldErrors) {
	in.Webhook.errors(gateIDs, errs)
	if in.MQTT != nil {
		in.MQTT.errors(gateIDs, errs)
	}
	if in.GPIO != nil {
		in.GPIO.errors(gateIDs, errs)
	}
}

func (w WebhookInputConfig) errors(gateIDs map[string]bool, errs *fieldErrors) {
	if w.MaxBody < 0 || w.Window < 0 {
		errs.add("gate_inputs.webhook", "max_body and window must not be negative")
	}
	if w.Enabled && len(w.Controllers) == 0 {
		errs.add("gate_inputs.webhook.controllers", "an enabled webhook needs at least one controller")
	}
	ctrls := map[string]bool{}
	for i, ct := range w.Controllers {
		f := fmt.Sprintf("gate_inputs.webhook.controllers[%d]", i)
		switch {
		case ct.ID == "" || len(ct.ID) > gates.MaxFieldLen:
			errs.add(f+".id", "must be 1-%d characters", gates.MaxFieldLen)
		case ctrls[ct.ID]:
			errs.add(f+".id", "%q is used twice", ct.ID)
		}
		ctrls[ct.ID] = true
		// A secret_file is read when the node starts and by --check (it
		// exists only on the box, like central.token_file).
		switch {
		case ct.Secret != "" && ct.SecretFile != "":
			errs.add(f+".secret_file", "set either secret or secret_file, not both")
		case ct.SecretFile == "":
			if _, err := ct.secrets(); err != nil {
				errs.add(f+".secret", "%v", err)
			}
		}
		if len(ct.Gates) == 0 {
			errs.add(f+".gates", "list the gates this controller may report")
		}
		for j, g := range ct.Gates {
			gateRef(gateIDs, fmt.Sprintf("%s.gates[%d]", f, j), g, errs)
		}
	}
}

func (m *MQTTInputConfig) errors(gateIDs map[string]bool, errs *fieldErrors) {
	if u, err := url.Parse(m.Broker); err != nil || u.Host == "" || !slices.Contains([]string{"tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss"}, u.Scheme) {
		errs.add("gate_inputs.mqtt.broker", "must be a broker URL, e.g. tcp://127.0.0.1:1883")
	}
	if m.Password != "" && m.PasswordFile != "" {
		errs.add("gate_inputs.mqtt.password_file", "set either password or password_file, not both")
	}
	if len(m.Devices) == 0 && m.EventTopic == "" {
		errs.add("gate_inputs.mqtt.devices", "list devices or an event_topic: nothing to subscribe to")
	}
	if strings.ContainsAny(m.EventTopic, "+#") {
		errs.add("gate_inputs.mqtt.event_topic", "must not contain wildcards")
	}
	names := map[string]bool{}
	for i, d := range m.Devices {
		f := fmt.Sprintf("gate_inputs.mqtt.devices[%d]", i)
		switch {
		case d.Name == "" || strings.ContainsAny(d.Name, "+#") || len(d.Name) > gates.MaxFieldLen:
			errs.add(f+".name", "must be the device's Zigbee2MQTT friendly_name (1-%d characters, no + or #)", gates.MaxFieldLen)
		case names[d.Name]:
			errs.add(f+".name", "%q is listed twice", d.Name)
		}
		names[d.Name] = true
		gateRef(gateIDs, f+".gate", d.Gate, errs)
		for _, a := range slices.Sorted(maps.Keys(d.Actions)) {
			if a == "" || len(a) > gates.MaxFieldLen {
				errs.add(f+".actions", "an action value must be 1-%d characters", gates.MaxFieldLen)
			} else if _, err := mqtt.ParseActionKind(d.Actions[a]); err != nil {
				errs.add(f+".actions."+a, "%v", err)
			}
		}
	}
	for i, g := range m.EventGates {
		gateRef(gateIDs, fmt.Sprintf("gate_inputs.mqtt.event_gates[%d]", i), g, errs)
	}
}

func (g *GPIOInputConfig) errors(gateIDs map[string]bool, errs *fieldErrors) {
	if len(g.Lines) == 0 {
		errs.add("gate_inputs.gpio.lines", "list at least one line")
	}
	if g.Debounce < 0 {
		errs.add("gate_inputs.gpio.debounce", "must not be negative")
	}
	type lineKey struct {
		chip   string
		offset int
	}
	lines, inputs := map[lineKey]bool{}, map[string]bool{}
	for i, l := range g.Lines {
		f := fmt.Sprintf("gate_inputs.gpio.lines[%d]", i)
		k := lineKey{l.chip(g), l.Offset}
		switch {
		case l.Offset < 0:
			errs.add(f+".offset", "must not be negative")
		case lines[k]:
			errs.add(f+".offset", "line %d of %s is used twice", l.Offset, k.chip)
		}
		lines[k] = true
		gateRef(gateIDs, f+".gate", l.Gate, errs)
		switch {
		case l.Input == "" || len(l.Input) > 64:
			errs.add(f+".input", "name the input (1-64 characters), e.g. door-contact")
		case inputs[l.Gate+"/"+l.Input]:
			errs.add(f+".input", "%q is used twice for gate %q", l.Input, l.Gate)
		}
		inputs[l.Gate+"/"+l.Input] = true
		if !gpio.Role(l.Role).Valid() {
			errs.add(f+".role", "must be door, button, grant, tamper, smoke, gas, water_leak or presence, not %q", l.Role)
		}
		if !slices.Contains([]string{"", "pull-up", "pull-down", "disabled"}, l.Bias) {
			errs.add(f+".bias", "must be pull-up, pull-down or disabled")
		}
	}
}

func (l GPIOLineConfig) chip(g *GPIOInputConfig) string {
	switch {
	case l.Chip != "":
		return l.Chip
	case g.Chip != "":
		return g.Chip
	}
	return "gpiochip0"
}

// secrets returns the controller's secrets: Secret, or SecretFile's
// non-empty lines (two while a secret is rotated).
func (ct WebhookControllerConfig) secrets() ([]string, error) {
	var out []string
	if ct.SecretFile != "" {
		b, err := os.ReadFile(ct.SecretFile)
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				out = append(out, line)
			}
		}
	} else if ct.Secret != "" {
		out = []string{ct.Secret}
	}
	if len(out) == 0 {
		return nil, errors.New("a controller needs secret or secret_file")
	}
	if len(out) > 2 {
		return nil, fmt.Errorf("at most two secrets (the current one and, while rotating, the next), not %d", len(out))
	}
	for _, s := range out {
		if len(s) < webhook.MinSecretLen {
			return nil, fmt.Errorf("a secret must be at least %d bytes (32 random bytes recommended)", webhook.MinSecretLen)
		}
	}
	return out, nil
}

// gates are the configured gates, each schedule read in the gate's own
// time zone, else the entrance's (set at enrolment), else
// gates.DefaultTimeZone.
func (c Config) gates() []GateConfig {
	out := slices.Clone(c.Gates)
	for i := range out {
		if out[i].Arming.TimeZone == "" {
			out[i].Arming.TimeZone = c.TimeZone
		}
	}
	return out
}

// machine is the gate as its state machine is configured.
func (g GateConfig) machine() gates.Config {
	c := gates.Config{
		ID: g.ID, Name: g.Name,
		GrantWindow: g.GrantWindow.D(), GrantGrace: g.GrantGrace.D(), HeldOpenAfter: g.HeldOpenAfter.D(),
		HeldOpenRedAfter: g.HeldOpenRedAfter.D(), Debounce: g.Debounce.D(), FoldWindow: g.FoldWindow.D(), UpdateEvery: g.UpdateEvery.D(),
		Arming: gates.Arming{Always: g.Arming.Always}, KeypadCodes: g.KeypadCodes,
	}
	for _, w := range g.Arming.Schedule {
		if win, err := gates.ParseWindow(w); err == nil {
			c.Arming.Windows = append(c.Arming.Windows, win)
		}
	}
	if loc, err := gates.LoadLocation(g.Arming.TimeZone); err == nil {
		c.Arming.Location = loc
	}
	for _, d := range g.Devices {
		c.Devices = append(c.Devices, gates.Device{ID: d.ID, SilentAfter: d.SilentAfter.D()})
	}
	return c
}
