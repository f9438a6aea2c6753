package conf

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vigil-perimeter/vigil/gates"
	"github.com/vigil-perimeter/vigil/gates/gpio"
	"github.com/vigil-perimeter/vigil/gates/mqtt"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/wire"
)

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// ntpServer is a host name, an IPv4 address or [IPv6], optionally :port.
var ntpServer = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$`)

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
	c.Analysis.Motion.errors(&errs)
	c.sensorErrors(&errs)  // sensors.go
	c.gb28181Errors(&errs) // gb28181.go
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

// analysisErrors checks the camera's analysis:, motion: and perimeter
// blocks (lines:, dwell:, perimeter:); field names start with prefix
// ("cameras[0]." in edge.yaml).
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
	m := cam.Detector()
	m.Zones, m.Masks = nil, nil // reported field by field above
	if err := m.Defaults().Validate(); err != nil {
		add("motion", "%v", err)
	}
	return append(errs, cam.perimeterErrors(prefix)...)
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
	gc := g.Machine()
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
			if _, err := ct.Secrets(); err != nil {
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
		k := lineKey{l.EffectiveChip(g), l.Offset}
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
