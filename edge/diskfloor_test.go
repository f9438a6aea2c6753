package edge_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/internal/kv/kvtest"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/wire"
)

// TestEdgeSurvivesDiskFilledByAnotherProcess: on a 320 MiB tmpfs that dd
// fills while the edge runs, the edge keeps running and raises a red
// system.disk_full and sends the green all-clear once the filler is gone;
// a restart on the full disk starts (the clip store waits for space
// instead of opening Badger, which would die of SIGBUS) and sends the
// clip store's all-clear once space returns.
func TestEdgeSurvivesDiskFilledByAnotherProcess(t *testing.T) {
	root, inside := kvtest.Tmpfs(t, "320m")
	if !inside {
		return
	}
	path := filepath.Join(root, "edge.yaml")
	body := revConfig(filepath.Join(root, "data"), "127.0.0.1:0", "ws://127.0.0.1:1/api/v1/edge/ws", "rtsp://127.0.0.1:1/gate",
		"recording:\n  min_free_gib: 0.2\n") // a floor the freed tmpfs clears
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := edge.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	alerts := make(chan wire.Alert, 16)
	start := func() *edge.Node {
		t.Helper()
		n, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t), OnAlert: func(a wire.Alert) { alerts <- a }})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	want := func(sev wire.Severity) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case a := <-alerts:
				if a.Kind == "system.disk_full" && a.Severity == sev {
					t.Logf("%s: %s", sev, a.Summary)
					return
				}
			case <-deadline:
				t.Fatalf("no %s system.disk_full alert", sev)
			}
		}
	}

	n := start()
	filler := filepath.Join(root, "filler")
	kvtest.Fill(t, filler)
	want(wire.Red)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	want(wire.Green)

	kvtest.Fill(t, filler)
	want(wire.Red)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	// A restart on the full disk: the edge starts (the clip store waits for
	// space, with its disk_full raised), answers its health check, and
	// sends the clip store's all-clear once the filler is gone.
	n2 := start()
	defer n2.Close()
	resp, err := http.Get("http://" + n2.Addr() + "/api/v1/healthz")
	if err != nil {
		t.Fatalf("healthz after a restart on the full disk: %v", err)
	}
	resp.Body.Close()
	t.Logf("healthz on the full disk: %d", resp.StatusCode)
	wantKind := func(kind string, sev wire.Severity) {
		t.Helper()
		deadline := time.After(15 * time.Second)
		for {
			select {
			case a := <-alerts:
				if a.Kind == kind && a.Severity == sev {
					t.Logf("%s %s: %s", sev, kind, a.Summary)
					return
				}
			case <-deadline:
				t.Fatalf("no %s %s alert", sev, kind)
			}
		}
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	wantKind("system.clips.disk_full", wire.Green)
}
