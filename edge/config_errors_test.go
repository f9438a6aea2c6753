package edge

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
			_, err := LoadConfig(p)
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

// TestCheckNamesMissingFiles: --check fails on a file the config names
// that is not there, naming the field; a box not enrolled yet passes and
// Enrolment says so.
func TestCheckNamesMissingFiles(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, from, to, want string }{
		{"token_file in a missing directory", "  token: secret", "  token_file: /nonexistent/vigil/token", "central.token_file: /nonexistent/vigil/token: no such file, nor directory /nonexistent/vigil"},
		{"secret_file", "secret: 0123456789abcdef0123", "secret_file: /nonexistent/secret", "gate_inputs.webhook.controllers[0].secret_file: /nonexistent/secret: no such file"},
		{"password_file", "broker: tcp://127.0.0.1:1883", "broker: tcp://127.0.0.1:1883\n    password_file: /nonexistent/mqtt", "gate_inputs.mqtt.password_file: /nonexistent/mqtt: no such file"},
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
