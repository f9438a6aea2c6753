package config

import (
	"strings"
	"testing"
)

type errCam struct {
	ID    string            `yaml:"id"`
	Armed bool              `yaml:"armed"`
	Every Duration          `yaml:"every,omitempty"`
	Tags  map[string]string `yaml:"tags,omitempty"`
	N     int               `yaml:"n,omitempty"`
}

type errRoot struct {
	Central struct {
		TokenFile string `yaml:"token_file,omitempty"`
	} `yaml:"central"`
	Cameras []errCam `yaml:"cameras"`
}

// TestDecodeErrorsNameYAMLPath: decoding errors name the file, line, the
// path as written in YAML and the type wanted, never Go's struct names,
// and a syntax error does not reprint the file.
func TestDecodeErrorsNameYAMLPath(t *testing.T) {
	rest := strings.Repeat("  - id: filler\n", 40)
	tests := []struct{ name, yaml, want string }{
		{"bool in a list", "cameras:\n  - id: a\n  - id: b\n    armed: \"yes please\"\n", `edge.yaml:4: cameras[1].armed: want true or false, got "yes please"`},
		{"int", "cameras:\n  - id: a\n    n: many\n", `edge.yaml:3: cameras[0].n: want a whole number, got "many"`},
		{"list for a duration", "cameras:\n  - id: a\n    every: [1, 2]\n", "edge.yaml:3: cameras[0].every: want a duration (e.g. 500ms, 5s, 2m), got a list"},
		{"list for a map", "cameras:\n  - id: a\n    tags: [1, 2]\n", "edge.yaml:3: cameras[0].tags: want a mapping (key: value lines), got a list"},
		{"scalar for a list", "cameras: true\n", `edge.yaml:1: cameras: want a list, got "true"`},
		{"list for a struct", "central: [a]\n", "edge.yaml:1: central: want a mapping (key: value lines), got a list"},
		{"misspelt key", "central:\n  token_fil: /x\ncameras: []\n", "edge.yaml:2: central.token_fil: unknown field; did you mean token_file?"},
		{"unknown key far from any", "cameras:\n  - id: a\n    zzzzzz: 1\n", "edge.yaml:3: cameras[0].zzzzzz: unknown field"},
		{"duplicate key", "cameras:\n  - id: a\n    armed: true\n    armed: false\n", "edge.yaml:4: cameras[0].armed: appears twice in the same mapping (first on line 3)"},
		{"unclosed double quote", "central:\n  token_file: \"/x\ncameras:\n" + rest, `edge.yaml:2: central.token_file: unclosed " quote`},
		{"unclosed single quote", "central:\n  token_file: '/x\ncameras:\n" + rest, `edge.yaml:2: central.token_file: unclosed ' quote`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r errRoot
			err := Parse("edge.yaml", []byte(tc.yaml), &r)
			if err == nil {
				t.Fatal("bad file accepted")
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not contain %q", msg, tc.want)
			}
			if strings.Contains(msg, "\n") || len(msg) >= 300 || strings.Contains(msg, "filler") {
				t.Errorf("error is not one short line: %q", msg)
			}
			if strings.Contains(msg, "Go ") || strings.Contains(msg, "errRoot") {
				t.Errorf("error names Go types: %q", msg)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"url", "token", "token_file", "backoff_max"}
	for key, want := range map[string]string{"ulr": "url", "tokenfile": "token_file", "token_fiel": "token_file", "backof_max": "backoff_max", "camera": ""} {
		if got := suggest(key, known); got != want {
			t.Errorf("suggest(%q) = %q, want %q", key, got, want)
		}
	}
}
