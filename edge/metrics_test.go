package edge_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/internal/testrig"
)

// TestCountersExistBeforeTheirFirstEvent: right after start-up, before
// any camera has connected or any gate has said anything, /metrics has a
// series at 0 for every camera and every gate on every counter labelled
// by camera or gate — an alert rule on increase() misses the first event
// otherwise. It includes vigil_camera_rtp_packets_lost_total.
func TestCountersExistBeforeTheirFirstEvent(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "ctrl.secret")
	if err := os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	extra := `  - id: wall-cam
    url: rtsp://127.0.0.1:1/wall
gates:
  - id: north-gate
    cameras: [gate-cam]
    arming:
      always: true
gate_inputs:
  webhook:
    enabled: true
    controllers:
      - id: ctrl-north
        secret_file: ` + secret + `
        gates: [north-gate]
`
	path := filepath.Join(dir, "edge.yaml")
	body := revConfig(filepath.Join(dir, "data"), "127.0.0.1:0", "ws://127.0.0.1:1/api/v1/edge/ws", "rtsp://127.0.0.1:1/gate", extra)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := edge.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()

	resp, err := apiGet("http://" + node.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]map[string]bool{} // family → label values present
	checked := 0
	for _, f := range families {
		if !strings.HasSuffix(f.GetName(), "_total") {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "camera" || l.GetName() == "gate" {
					if seen[f.GetName()] == nil {
						seen[f.GetName()] = map[string]bool{}
					}
					seen[f.GetName()][l.GetName()+"="+l.GetValue()] = true
				}
			}
		}
	}
	for fam, vals := range seen {
		want := []string{"camera=gate-cam", "camera=wall-cam"}
		if strings.HasPrefix(fam, "vigil_gate_") {
			want = []string{"camera=gate-cam"} // the cameras that watch a gate
		}
		if strings.Contains(strings.Join(keys(vals), ","), "gate=") {
			want = []string{"gate=north-gate"}
		}
		for _, w := range want {
			checked++
			if !vals[w] {
				t.Errorf("%s has no series for %s at start-up (has %v)", fam, w, keys(vals))
			}
		}
	}
	for _, must := range []string{"vigil_camera_rtp_packets_lost_total", "vigil_camera_reconnects_total", "vigil_camera_frames_in_total",
		"vigil_camera_decode_errors_total", "vigil_clips_dropped_total", "vigil_live_fragments_total"} {
		if seen[must] == nil {
			t.Errorf("%s is not exported at start-up", must)
		}
	}
	if f := families["vigil_camera_rtp_packets_lost_total"]; f == nil || len(f.GetMetric()) != 2 || f.GetMetric()[0].GetCounter().GetValue() != 0 {
		t.Errorf("vigil_camera_rtp_packets_lost_total: %v, want one series at 0 per camera", f)
	}
	t.Logf("%d counter families labelled by camera or gate, %d series checked", len(seen), checked)
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
