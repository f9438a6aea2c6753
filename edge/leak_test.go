package edge_test

import (
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/edge/setup"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams/camera"
	"github.com/vigil-perimeter/vigil/wire"
)

// TestNodeCloseLeavesNoGoroutines: every goroutine a node starts (local
// API, camera supervisor, uplink, system alerts, disk watch) has ended
// when Close returns, and an alert raised after Close is refused without
// touching the closed outbox.
func TestNodeCloseLeavesNoGoroutines(t *testing.T) {
	leaks := testrig.CheckGoroutines(t)
	_, _, cfg := writeRevConfig(t, "ws://127.0.0.1:1/api/v1/edge/ws")
	var raised atomic.Int32
	node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t), CameraBackoffMax: 100 * time.Millisecond,
		UplinkBackoffMin: 50 * time.Millisecond, OnAlert: func(wire.Alert) { raised.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + node.Addr() + "/api/v1/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	time.Sleep(200 * time.Millisecond) // the camera and the uplink are retrying
	if err := node.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	before := raised.Load()
	edge.CameraParent(node).OnTamper(camera.TamperEvent{Camera: "gate-cam", Kind: camera.TamperCovered, Time: time.Now(), Cleared: true})
	if raised.Load() != before {
		t.Fatal("an alert raised after Close was queued")
	}
	http.DefaultClient.CloseIdleConnections()
	leaks.Check()
}

// TestConfigRestartNotAfterClose: a revision that needs a restart asks for
// it from a goroutine the node owns; a node closed before it fires never
// calls Restart afterwards, and nothing of it is left running.
func TestConfigRestartNotAfterClose(t *testing.T) {
	leaks := testrig.CheckGoroutines(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	path := filepath.Join(dir, "edge.yaml")
	os.WriteFile(path, []byte(revConfig(data, "127.0.0.1:0", "ws://127.0.0.1:1/api/v1/edge/ws", "rtsp://127.0.0.1:1/gate", "")), 0o600)
	cfg, err := edge.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := edge.OpenRevisions(cfg.DataDir).Adopt(path)
	if err != nil {
		t.Fatal(err)
	}
	// A Restart that comes after Close returned hangs (as a restart of a
	// closed node would do anything but restart it): the leak check shows it.
	var closed atomic.Bool
	var late atomic.Int32
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t), ConfigRevision: rev.Name, ConfigPath: path,
		Restart: func(string) {
			if closed.Load() {
				late.Add(1)
				<-release
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := edge.SetupBackend(node).SetupSaveGates(setup.GatesForm{
		Gates:   []setup.GateForm{{ID: "east-wicket", Name: "East wicket", Cameras: []string{"gate-cam"}, Arming: "armed"}},
		Webhook: []setup.ControllerForm{{ID: "wicket-ctrl", Gates: []string{"east-wicket"}}},
	})
	if err != nil || res.Applied != "restarting" {
		t.Fatalf("save gates: %+v %v", res, err)
	}
	if err := node.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closed.Store(true)
	time.Sleep(500 * time.Millisecond) // past the restart's delay
	if n := late.Load(); n != 0 {
		t.Errorf("Restart called %d time(s) after Close", n)
	}
	leaks.Check()
	once.Do(func() { close(release) })
}
