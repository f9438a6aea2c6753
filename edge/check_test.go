package edge

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goodConfig, gatesConfig: edge.yaml fixtures for the tests that start a
// node or check a box (edge/conf's tests have their own copies).
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

// TestCheckNamesMissingFiles: --check fails on a file the config names
// that is not there, naming the field; a box not enrolled yet passes and
// Enrolment says so.
func TestCheckNamesMissingFiles(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, from, to, want string }{
		{"token_file in a missing directory", "  token: secret", "  token_file: /nonexistent/vigil/token", "central.token_file: /nonexistent/vigil/token: no such file, nor directory /nonexistent/vigil"},
		{"secret_file", "secret: 0123456789abcdef0123", "secret_file: /nonexistent/secret", "gate_inputs.webhook.controllers[0].secret_file: /nonexistent/secret: no such file"},
		{"password_file", "broker: tcp://127.0.0.1:1883", "broker: tcp://127.0.0.1:1883\n    password_file: /nonexistent/mqtt", "gate_inputs.mqtt.password_file: /nonexistent/mqtt: no such file"},
		{"gb28181.password_file", "  token: secret", "  token: secret\ngb28181:\n  server_id: \"34020000002000000001\"\n  server_addr: 10.0.0.9:5060\n" +
			"  device_id: \"34020000001180000001\"\n  password_file: /nonexistent/gb\n  channels:\n    - {camera: cam-1, id: \"34020000001320000001\"}",
			"gb28181.password_file: /nonexistent/gb: no such file"},
		{"not enrolled", "  token: secret", "  token_file: " + filepath.Join(dir, "edge-credential.json"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := strings.Replace(goodConfig+gatesConfig, "gpio:\n    chip: gpiochip0", "gpio:\n    chip: /dev/null", 1)
			if !strings.Contains(base, tc.from) {
				t.Fatalf("fixture lacks %q", tc.from)
			}
			cfg, err := LoadConfig(writeConfig(t, strings.Replace(base, tc.from, tc.to, 1)))
			if err != nil {
				t.Fatal(err)
			}
			err = Check(cfg)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unenrolled box fails --check: %v", err)
				}
				note := Enrolment(cfg)
				t.Log(note)
				if !strings.Contains(note, "central.token_file: "+dir) || !strings.Contains(note, NotEnrolledHint) {
					t.Fatalf("Enrolment = %q", note)
				}
				return
			}
			if err == nil {
				t.Fatalf("check passed; want %q", tc.want)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("check: %v; want %q", err, tc.want)
			}
		})
	}
	// An enrolled box has nothing to say.
	f := filepath.Join(dir, "token")
	os.WriteFile(f, []byte("tok\n"), 0o600)
	cfg, err := LoadConfig(writeConfig(t, strings.Replace(goodConfig, "  token: secret", "  token_file: "+f, 1)))
	if err != nil || cfg.Central.Token != "tok" || Enrolment(cfg) != "" {
		t.Fatalf("enrolled: %v %q %q", err, cfg.Central.Token, Enrolment(cfg))
	}
}
