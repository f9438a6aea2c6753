package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type cam struct {
	ID  string `yaml:"id"`
	URL string `yaml:"url"`
}

type root struct {
	Name    string   `yaml:"name"`
	Every   Duration `yaml:"every"`
	Cameras []cam    `yaml:"cameras"`
}

func (r *root) Validate() []FieldError {
	var out []FieldError
	if r.Name == "" {
		out = append(out, FieldError{"name", "is required"})
	}
	for i, c := range r.Cameras {
		if !strings.HasPrefix(c.URL, "rtsp://") {
			out = append(out, FieldError{Field: "cameras[" + itoa(i) + "].url", Msg: "must start with rtsp://"})
		}
	}
	return out
}

func itoa(i int) string { return string(rune('0' + i)) }

func TestParse(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string // substrings of the error; none means success
	}{
		{"ok", "name: a\nevery: 5s\ncameras:\n  - id: c1\n    url: rtsp://x/y\n", nil},
		{"bad url names line and field", "name: a\ncameras:\n  - id: c1\n    url: rtsp://x/y\n  - id: c2\n    url: http://z\n",
			[]string{"edge.yaml:6: cameras[1].url: must start with rtsp://"}},
		{"missing field points at file", "cameras: []\n", []string{"edge.yaml: name: is required"}},
		{"unknown field", "name: a\ncamras: []\n", []string{"edge.yaml:2:", "camras"}},
		{"syntax error", "name: [a\n", []string{"edge.yaml:"}},
		{"bad duration", "name: a\nevery: soon\n", []string{"edge.yaml:2: every: \"soon\" is not a duration"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r root
			err := Parse("edge.yaml", []byte(tc.yaml), &r)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if r.Every.D() != 5*time.Second {
					t.Fatalf("every = %v", r.Every)
				}
				return
			}
			if err == nil {
				t.Fatal("expected an error")
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not *config.Error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") && len(ce.Problems) == 1 {
				t.Errorf("single problem printed on several lines: %q", err)
			}
		})
	}
}
