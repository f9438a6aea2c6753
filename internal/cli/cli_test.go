package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCorruptConfigIsAClearErrorNotACrash: the programs refuse a broken
// file with one line naming file, line and field, and exit 1.
func TestCorruptConfigIsAClearErrorNotACrash(t *testing.T) {
	dir := t.TempDir()
	edgeYAML := filepath.Join(dir, "edge.yaml")
	os.WriteFile(edgeYAML, []byte("edge_id: gate-1\nsite_id: s\nlisten: 127.0.0.1:0\ndata_dir: "+dir+
		"\ncentral:\n  url: ws://127.0.0.1:1/api/v1/edge/ws\n  token: x\ncameras:\n  - id: cam\n    url: rtsp://h/p\n    transport: carrier-pigeon\n"), 0o600)
	centralYAML := filepath.Join(dir, "central.yaml")
	os.WriteFile(centralYAML, []byte("listen: 127.0.0.1:0\ndata_dir: "+dir+"\nedges:\n  - id: e\n    token_sha256: nothex\n"), 0o600)
	garbage := filepath.Join(dir, "garbage.yaml")
	os.WriteFile(garbage, []byte("\x00\x01{{{: ]]"), 0o600)

	tests := []struct {
		args []string
		want string
	}{
		{[]string{"edge", "--config", edgeYAML}, "edge.yaml:11: cameras[0].transport:"},
		{[]string{"central", "--config", centralYAML}, "central.yaml:5: edges[0].token_sha256"},
		{[]string{"edge", "--config", garbage}, "garbage.yaml"},
		{[]string{"edge", "--config", filepath.Join(dir, "missing.yaml")}, "no such file"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args[:1], " ")+" "+filepath.Base(tc.args[2]), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Main(tc.args, &out, &errOut)
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("stderr %q does not contain %q", errOut.String(), tc.want)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main(nil, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "usage: vigil") {
		t.Errorf("no args: code %d, stderr %q", code, errOut.String())
	}
	if code := Main([]string{"frobnicate"}, &out, &errOut); code != 2 {
		t.Errorf("unknown command: code %d", code)
	}
}

func TestEdgeCheck(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "edge.yaml")
	os.WriteFile(p, []byte("edge_id: gate-1\nsite_id: s\nlisten: 127.0.0.1:0\ndata_dir: "+filepath.Join(dir, "data")+
		"\ncentral:\n  url: ws://127.0.0.1:1/api/v1/edge/ws\n  token: x\ncameras:\n  - id: cam\n    url: rtsp://h/p\n"), 0o600)
	var out, errOut bytes.Buffer
	if code := Main([]string{"edge", "--check", "--config", p}, &out, &errOut); code != 0 || !strings.Contains(errOut.String(), "ok (1 cameras") {
		t.Fatalf("check of a good config: code %d, %s", code, errOut.String())
	}
	// A data directory that cannot be created fails the check.
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o600)
	bad := strings.Replace(mustRead(t, p), filepath.Join(dir, "data"), filepath.Join(dir, "file", "data"), 1)
	os.WriteFile(p, []byte(bad), 0o600)
	errOut.Reset()
	if code := Main([]string{"edge", "--check", "--config", p}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "data_dir") {
		t.Fatalf("check of a bad data dir: code %d, %s", code, errOut.String())
	}
}

func mustRead(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
