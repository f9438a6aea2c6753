package edge

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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

func TestLoadConfig(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cameras[0].Motion.Warmup.D().Seconds() != 4 || cfg.Central.Token != "secret" {
		t.Fatalf("parsed %+v", cfg)
	}
	t.Setenv("VIGIL_EDGE_TOKEN", "from-env")
	cfg, err = LoadConfig(writeConfig(t, goodConfig))
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
			_, err := LoadConfig(p)
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
	cfg, err := LoadConfig(writeConfig(t, goodConfig+gatesConfig))
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Gates[0]
	if g.ID != "north-gate" || g.Cameras[0] != "cam-1" || g.GrantGrace.D().Milliseconds() != 300 || g.Devices[0].SilentAfter.D().Minutes() != 2 {
		t.Fatalf("parsed %+v", g)
	}
	mc := g.machine()
	if mc.Arming.Location == nil || mc.Arming.Location.String() != "Asia/Shanghai" || len(mc.Arming.Windows) != 1 {
		t.Fatalf("arming %+v", mc.Arming)
	}
	if s, err := cfg.GateInputs.Webhook.Controllers[0].secrets(); err != nil || len(s) != 1 {
		t.Fatalf("secrets %v %v", s, err)
	}
	// secret_file: one secret per line, two while rotating.
	f := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(f, []byte("first-secret-0123456789\nnext-secret-0123456789\n"), 0o600)
	ct := WebhookControllerConfig{ID: "c", SecretFile: f, Gates: []string{"north-gate"}}
	if s, err := ct.secrets(); err != nil || len(s) != 2 {
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
			_, err := LoadConfig(writeConfig(t, strings.Replace(base, tc.from, tc.to, 1)))
			if err == nil {
				t.Fatal("bad config accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// TestCheckGateInputs: a secret file or GPIO chip missing on the box is
// found by --check, not at the first event.
func TestCheckGateInputs(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, goodConfig+strings.Replace(gatesConfig, "secret: 0123456789abcdef0123", "secret_file: /nonexistent/secret", 1)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.GateInputs.GPIO.Chip = "gpiochip-none"
	err = Check(cfg)
	for _, want := range []string{"gate_inputs.webhook.controllers[0].secret_file: /nonexistent/secret: no such file", "gate_inputs.gpio: chip gpiochip-none"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("check: %v; want %q", err, want)
		}
	}
}

// A gate without its own time zone reads its schedule in the entrance's
// (edge.yaml time_zone, set at enrolment); one with its own keeps it.
func TestGateScheduleTakesTheEntranceTimeZone(t *testing.T) {
	cfg := Config{TimeZone: "Asia/Urumqi", Gates: []GateConfig{
		{ID: "a", Arming: ArmingConfig{Schedule: []string{"22:00-06:00"}}},
		{ID: "b", Arming: ArmingConfig{Schedule: []string{"22:00-06:00"}, TimeZone: "Europe/Berlin"}},
	}}
	gs := cfg.gates()
	if a := gs[0].machine().Arming.Location.String(); a != "Asia/Urumqi" {
		t.Errorf("gate without a zone: %s, want the entrance's Asia/Urumqi", a)
	}
	if b := gs[1].machine().Arming.Location.String(); b != "Europe/Berlin" {
		t.Errorf("gate with its own zone: %s", b)
	}
	if cfg.Gates[0].Arming.TimeZone != "" {
		t.Error("gates() changed the config it was given")
	}
	if d := (Config{Gates: cfg.Gates[:1]}).gates()[0].machine().Arming.Location.String(); d != "Asia/Shanghai" {
		t.Errorf("no zone anywhere: %s, want Asia/Shanghai", d)
	}
}
