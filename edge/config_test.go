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
