package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/edge/uplink"
)

// `vigil edge enroll` against a real central: the credential is written
// 0600, the printed edge.yaml lines load, and the token works only once.
func TestEdgeEnroll(t *testing.T) {
	srv, err := central.New(central.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		EdgeHub: central.EdgeHubConfig{Listen: "127.0.0.1:0", SelfSignedHosts: []string{"127.0.0.1"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	tok, _, err := srv.CreateEnrolmentToken("gate-1", "lotus/n/w/g1", "ann", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "edge-credential.json")
	enroll := func(extra ...string) (int, string, string) {
		var so, se bytes.Buffer
		args := append([]string{"edge", "enroll", "--central", "https://" + srv.EdgeAddr(), "--token", tok, "--out", out}, extra...)
		code := Main(args, &so, &se)
		return code, so.String(), se.String()
	}
	code, stdout, stderr := enroll()
	if code != 0 {
		t.Fatalf("enroll: exit %d: %s", code, stderr)
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credential file: %v %v", st, err)
	}
	if _, err := uplink.LoadCredential(out); err != nil {
		t.Fatal(err)
	}
	// The printed lines make a loadable edge.yaml with a camera added.
	_, yamlPart, _ := strings.Cut(stdout, "Put this in edge.yaml:\n\n")
	edgeYAML := filepath.Join(dir, "edge.yaml")
	os.WriteFile(edgeYAML, []byte(yamlPart+"listen: 127.0.0.1:0\ndata_dir: "+dir+"\ncameras:\n  - id: cam\n    url: rtsp://127.0.0.1/x\n"), 0o600)
	cfg, err := edge.LoadConfig(edgeYAML)
	if err != nil {
		t.Fatalf("printed config does not load: %v\n%s", err, yamlPart)
	}
	if cred, ok, err := uplink.ParseCredential(cfg.Central.Token); !ok || err != nil || cred.EdgeID != "gate-1" {
		t.Fatalf("token_file does not hold the credential: %v %v", ok, err)
	}

	if code, _, stderr := enroll(); code != 1 || !strings.Contains(stderr, "exists") {
		t.Fatalf("enrolling over an existing credential: exit %d %s", code, stderr)
	}
	if code, _, stderr := enroll("--force"); code != 1 || !strings.Contains(stderr, "central refused") {
		t.Fatalf("reusing a token: exit %d %s", code, stderr)
	}
	if code := Main([]string{"edge", "enroll"}, &bytes.Buffer{}, &bytes.Buffer{}); code != 1 {
		t.Fatalf("enroll without flags: exit %d", code)
	}
}
