package conf

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/streams/motion"
)

const goodConfig = `edge_id: gate-1
site_id: village/north
listen: 127.0.0.1:0
data_dir: %DIR%
central:
  url: ws://127.0.0.1:8080/api/v1/edge/ws
  token: secret
cameras:
  - id: cam-1
    url: rtsp://10.0.0.5:554/stream1
    motion:
      warmup: 4s
`

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "edge.yaml")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(body, "%DIR%", t.TempDir())), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	cfg, err := Load(writeConfig(t, goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cameras[0].Motion.Warmup.D().Seconds() != 4 || cfg.Central.Token != "secret" {
		t.Fatalf("parsed %+v", cfg)
	}
	t.Setenv("VIGIL_EDGE_TOKEN", "from-env")
	cfg, err = Load(writeConfig(t, goodConfig))
	if err != nil || cfg.Central.Token != "from-env" {
		t.Fatalf("env override: %v %q", err, cfg.Central.Token)
	}
}

// TestConfigErrorsNameFileLineAndField: an installer must be able to fix
// the file from the message alone.
func TestConfigErrorsNameFileLineAndField(t *testing.T) {
	tests := []struct{ name, from, to, want string }{
		{"bad camera url", "rtsp://10.0.0.5:554/stream1", "http://10.0.0.5/stream1", "edge.yaml:10: cameras[0].url: must be an rtsp:// or rtsps:// URL"},
		{"bad duration", "warmup: 4s", "warmup: soon", `edge.yaml:12: cameras[0].motion.warmup: "soon" is not a duration`},
		{"unknown field", "    url: rtsp", "    ulr: rtsp", "edge.yaml:10:"},
		{"bad central url", "ws://127.0.0.1:8080", "tcp://127.0.0.1:8080", "edge.yaml:6: central.url:"},
		{"bad id", "id: cam-1", "id: Cam 1", "edge.yaml:9: cameras[0].id:"},
		{"no token", "  token: secret\n", "", "central.token: no token"},
		{"not yaml", "cameras:", "cameras: [", "edge.yaml:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeConfig(t, strings.Replace(goodConfig, tc.from, tc.to, 1))
			_, err := Load(p)
			if err == nil {
				t.Fatal("bad config accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

const gatesConfig = `
gates:
  - id: north-gate
    name: North gate
    cameras: [cam-1]
    arming:
      schedule: ["22:00-06:00"]
    grant_grace: 300ms
    devices:
      - id: door
        silent_after: 2m
gate_inputs:
  webhook:
    enabled: true
    controllers:
      - id: ctrl-north
        secret: 0123456789abcdef0123
        gates: [north-gate]
  mqtt:
    broker: tcp://127.0.0.1:1883
    devices:
      - name: north-smoke
        gate: north-gate
  gpio:
    chip: gpiochip0
    lines:
      - offset: 17
        gate: north-gate
        input: door-contact
        role: door
        active_low: true
`

func TestLoadGatesConfig(t *testing.T) {
	cfg, err := Load(writeConfig(t, goodConfig+gatesConfig))
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Gates[0]
	if g.ID != "north-gate" || g.Cameras[0] != "cam-1" || g.GrantGrace.D().Milliseconds() != 300 || g.Devices[0].SilentAfter.D().Minutes() != 2 {
		t.Fatalf("parsed %+v", g)
	}
	mc := g.Machine()
	if mc.Arming.Location == nil || mc.Arming.Location.String() != "Asia/Shanghai" || len(mc.Arming.Windows) != 1 {
		t.Fatalf("arming %+v", mc.Arming)
	}
	if s, err := cfg.GateInputs.Webhook.Controllers[0].Secrets(); err != nil || len(s) != 1 {
		t.Fatalf("secrets %v %v", s, err)
	}
	// secret_file: one secret per line, two while rotating.
	f := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(f, []byte("first-secret-0123456789\nnext-secret-0123456789\n"), 0o600)
	ct := WebhookControllerConfig{ID: "c", SecretFile: f, Gates: []string{"north-gate"}}
	if s, err := ct.Secrets(); err != nil || len(s) != 2 {
		t.Fatalf("secret_file: %v %v", s, err)
	}
}

func TestGatesConfigErrors(t *testing.T) {
	base := goodConfig + gatesConfig
	tests := []struct{ name, from, to, want string }{
		{"unknown camera", "cameras: [cam-1]", "cameras: [cam-9]", `edge.yaml:17: gates[0].cameras[0]: "cam-9" is not one of this edge's cameras`},
		{"bad schedule", `["22:00-06:00"]`, `["22:00-22:00"]`, "edge.yaml:19: gates[0].arming.schedule[0]:"},
		{"bad zone", "schedule: [", "time_zone: Mars/Olympus\n      schedule: [", "edge.yaml:19: gates[0].arming.time_zone:"},
		{"bad duration", "grant_grace: 300ms", "grant_grace: quick", `edge.yaml:20: gates[0].grant_grace: "quick" is not a duration`},
		{"grace too long", "grant_grace: 300ms", "grant_grace: 1m", "edge.yaml:20: gates[0].grant_grace: at most 10s"},
		{"short secret", "secret: 0123456789abcdef0123", "secret: short", "edge.yaml:29: gate_inputs.webhook.controllers[0].secret: a secret must be at least 16 bytes"},
		{"secret and secret file", "secret: 0123456789abcdef0123", "secret: 0123456789abcdef0123\n        secret_file: /etc/vigil/x", "edge.yaml:30: gate_inputs.webhook.controllers[0].secret_file: set either"},
		{"controller for unknown gate", "gates: [north-gate]", "gates: [south-gate]", `edge.yaml:30: gate_inputs.webhook.controllers[0].gates[0]: "south-gate" is not one of the gates`},
		{"bad broker", "tcp://127.0.0.1:1883", "http://127.0.0.1:1883", "edge.yaml:32: gate_inputs.mqtt.broker:"},
		{"mqtt device of unknown gate", "        gate: north-gate\n  gpio", "        gate: nowhere\n  gpio", "edge.yaml:35: gate_inputs.mqtt.devices[0].gate:"},
		{"bad role", "role: door", "role: window", "edge.yaml:42: gate_inputs.gpio.lines[0].role: must be door, button"},
		{"unknown field", "active_low: true", "activelow: true", "edge.yaml:43: gate_inputs.gpio.lines[0].activelow: unknown field; did you mean active_low?"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(base, tc.from) {
				t.Fatalf("fixture lacks %q", tc.from)
			}
			_, err := Load(writeConfig(t, strings.Replace(base, tc.from, tc.to, 1)))
			if err == nil {
				t.Fatal("bad config accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// A gate without its own time zone reads its schedule in the entrance's
// (edge.yaml time_zone, set at enrolment); one with its own keeps it.
func TestGateScheduleTakesTheEntranceTimeZone(t *testing.T) {
	cfg := Config{TimeZone: "Asia/Urumqi", Gates: []GateConfig{
		{ID: "a", Arming: ArmingConfig{Schedule: []string{"22:00-06:00"}}},
		{ID: "b", Arming: ArmingConfig{Schedule: []string{"22:00-06:00"}, TimeZone: "Europe/Berlin"}},
	}}
	gs := cfg.ResolvedGates()
	if a := gs[0].Machine().Arming.Location.String(); a != "Asia/Urumqi" {
		t.Errorf("gate without a zone: %s, want the entrance's Asia/Urumqi", a)
	}
	if b := gs[1].Machine().Arming.Location.String(); b != "Europe/Berlin" {
		t.Errorf("gate with its own zone: %s", b)
	}
	if cfg.Gates[0].Arming.TimeZone != "" {
		t.Error("ResolvedGates() changed the config it was given")
	}
	if d := (Config{Gates: cfg.Gates[:1]}).ResolvedGates()[0].Machine().Arming.Location.String(); d != "Asia/Shanghai" {
		t.Errorf("no zone anywhere: %s, want Asia/Shanghai", d)
	}
}

// TestConfigErrorsNameYAMLPathAndType: decoding errors name the file,
// line, YAML path and wanted type, never Go's struct names, and a syntax
// error is one short line.
func TestConfigErrorsNameYAMLPathAndType(t *testing.T) {
	tests := []struct{ name, from, to, want string }{
		{"bool deep in a list", "    motion:", "    armed: \"yes please\"\n    motion:", `edge.yaml:11: cameras[0].armed: want true or false, got "yes please"`},
		{"string for a duration", "warmup: 4s", "warmup: soon", `edge.yaml:12: cameras[0].motion.warmup: "soon" is not a duration`},
		{"list for a duration", "warmup: 4s", "warmup: [4s]", "edge.yaml:12: cameras[0].motion.warmup: want a duration (e.g. 500ms, 5s, 2m), got a list"},
		{"list for a mapping", "    motion:\n      warmup: 4s", "    motion: [4s]", "edge.yaml:11: cameras[0].motion: want a mapping (key: value lines), got a list"},
		{"text for a number", "    motion:", "    analysis:\n      fps: fast\n    motion:", `edge.yaml:12: cameras[0].analysis.fps: want a number, got "fast"`},
		{"misspelt token_file", "  token: secret", "  token: secret\n  token_fil: /x", "edge.yaml:8: central.token_fil: unknown field; did you mean token_file?"},
		{"unclosed quote", "  token: secret", "  token: \"secret", `edge.yaml:7: central.token: unclosed " quote`},
		{"no token at all", "  token: secret\n", "", "edge.yaml:6: central.token: no token: not enrolled yet: run the setup page or vigil provision"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(goodConfig, tc.from) {
				t.Fatalf("fixture lacks %q", tc.from)
			}
			p := writeConfig(t, strings.Replace(goodConfig, tc.from, tc.to, 1))
			_, err := Load(p)
			if err == nil {
				t.Fatal("bad config accepted")
			}
			msg := strings.ReplaceAll(err.Error(), p, "edge.yaml")
			t.Log(msg)
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not contain %q", msg, tc.want)
			}
			if strings.Contains(msg, "\n") || len(msg) >= 300 || strings.Contains(msg, "cameras:\n") {
				t.Errorf("error is not one short line: %q", msg)
			}
			if strings.Contains(msg, "Go ") || strings.Contains(msg, "Config") {
				t.Errorf("error names Go types: %q", msg)
			}
		})
	}
}

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
	cfg, err := Load(writeConfig(t, zonesConfig))
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
	if cfg.Cameras[0].Camera().Motion.Zones[0].Name != "lane" {
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

func TestZigbeeActionsAndKeypadCodesValidated(t *testing.T) {
	cfg := Config{EdgeID: "e", SiteID: "s", Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: CentralConfig{URL: "ws://127.0.0.1:1/x", Token: "tok-0123456789abcdef"},
		Gates:   []GateConfig{{ID: "g", KeypadCodes: []string{"4711", ""}}},
		GateInputs: GateInputsConfig{MQTT: &MQTTInputConfig{Broker: "tcp://127.0.0.1:1883",
			Devices: []MQTTDeviceConfig{{Name: "kp", Gate: "g", Actions: map[string]string{"single": "panic", "double": "ignore"}}}}}}
	errs := cfg.Validate()
	var all []string
	for _, e := range errs {
		all = append(all, e.Error())
	}
	s := strings.Join(all, "\n")
	t.Log(s)
	if !strings.Contains(s, `gate_inputs.mqtt.devices[0].actions.single`) || !strings.Contains(s, "gates[0].keypad_codes[1]") || strings.Contains(s, "double") {
		t.Fatal(s)
	}
}

// TestSetupOpenHoursConfig: setup.open_hours is read and checked.
func TestSetupOpenHoursConfig(t *testing.T) {
	cfg, err := Load(writeConfig(t, goodConfig))
	if err != nil || cfg.Setup.OpenFor() != 0 {
		t.Fatalf("default: %v %v", cfg.Setup, err)
	}
	cfg, err = Load(writeConfig(t, goodConfig+"setup:\n  open_hours: 48\n"))
	if err != nil || cfg.Setup.OpenFor() != 48*time.Hour {
		t.Fatalf("48 hours: %v %v", cfg.Setup, err)
	}
	for _, bad := range []string{"-1", "721"} {
		_, err := Load(writeConfig(t, goodConfig+"setup:\n  open_hours: "+bad+"\n"))
		if err == nil || !strings.Contains(err.Error(), "setup.open_hours") {
			t.Errorf("open_hours %s: %v", bad, err)
		}
	}
}
