package edge_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/edge/setup"
	gatesim "github.com/vigil-perimeter/vigil/gates/sim"
	"github.com/vigil-perimeter/vigil/internal/testrig"
)

// listDir names the files of dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestSetupGatesSaveRestartAndDrive: the setup page's gates step. A box
// with a camera and no gates gets a gate (its camera, an arming schedule)
// and a webhook controller: the form is refused with the field named when
// it is wrong (nothing written, no new revision, no secret file left), and
// saved as one new revision when right, with the controller's secret made,
// shown once and kept 0600. The change is not live, so the edge restarts
// on the new file; the restarted edge takes the controller's signed events.
func TestSetupGatesSaveRestartAndDrive(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	path := filepath.Join(dir, "edge.yaml")
	os.WriteFile(path, []byte("# the installer's file\n"+revConfig(data, "127.0.0.1:0", "ws://127.0.0.1:1/api/v1/edge/ws", "rtsp://127.0.0.1:1/gate", "")), 0o600)
	start := func() (*edge.Node, chan string) {
		t.Helper()
		cfg, err := edge.LoadConfig(path)
		if err != nil {
			t.Fatal(err)
		}
		rev, err := edge.OpenRevisions(cfg.DataDir).Adopt(path)
		if err != nil {
			t.Fatal(err)
		}
		restarted := make(chan string, 1)
		node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t), ConfigRevision: rev.Name, ConfigPath: path,
			Restart: func(why string) {
				select {
				case restarted <- why:
				default:
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		return node, restarted
	}
	node, restarted := start()
	defer func() { node.Close() }()

	f, err := edge.SetupBackend(node).SetupGates()
	if err != nil || len(f.Gates) != 0 || len(f.Webhook) != 0 || f.MQTT != nil || f.GPIO != nil {
		t.Fatalf("form of a box without gates: %+v %v", f, err)
	}
	good := setup.GatesForm{
		Gates: []setup.GateForm{{ID: "east-wicket", Name: "East wicket", Cameras: []string{"gate-cam"}, Arming: "schedule",
			Schedule: []setup.WindowForm{{Days: []string{"mon", "tue", "wed", "thu", "fri"}, From: "18:00", To: "07:00"},
				{Days: setup.Days, From: "00:00", To: "00:00"}}, TimeZone: "Asia/Shanghai"}},
		Webhook: []setup.ControllerForm{{ID: "wicket-ctrl", Gates: []string{"east-wicket"}}},
	}
	before := listDir(t, data)
	revBefore := node.ConfigRevision()
	fileBefore, _ := os.ReadFile(path)
	refused := func(form setup.GatesForm, field string) {
		t.Helper()
		_, err := edge.SetupBackend(node).SetupSaveGates(form)
		var ref *setup.RefusedError
		if !errors.As(err, &ref) {
			t.Fatalf("want a refusal naming %s, got %v", field, err)
		}
		found := false
		for _, p := range ref.Problems {
			found = found || p.Field == field
		}
		if !found {
			t.Errorf("refusal %q does not name %s: %+v", ref.Reason, field, ref.Problems)
		}
		if now, _ := os.ReadFile(path); string(now) != string(fileBefore) || node.ConfigRevision() != revBefore {
			t.Errorf("a refused form changed the config (revision %s)", node.ConfigRevision())
		}
		if got := listDir(t, data); !slices.Equal(got, before) {
			t.Errorf("a refused form left files: %v, was %v", got, before)
		}
	}
	bad := good
	bad.Gates = []setup.GateForm{good.Gates[0]}
	bad.Gates[0].Cameras = []string{"cam-9"}
	refused(bad, "gates[0].cameras[0]") // validated as at start-up
	bad.Gates[0] = good.Gates[0]
	bad.Gates[0].Schedule = []setup.WindowForm{{Days: nil, From: "18:00", To: "07:00"}}
	refused(bad, "gates[0].arming.schedule[0]")
	bad.Gates[0] = good.Gates[0]
	bad.Gates[0].TimeZone = "Mars/Olympus"
	refused(bad, "gates[0].arming.time_zone")
	bad.Gates[0].Cameras = []string{"cam-9"}
	refused(bad, "gates[0].cameras[0]") // every problem at once
	refused(bad, "gates[0].arming.time_zone")
	bad.Gates[0] = good.Gates[0]
	bad.Webhook = []setup.ControllerForm{{ID: "wicket-ctrl", Gates: []string{"west-gate"}}}
	refused(bad, "gate_inputs.webhook.controllers[0].gates[0]")
	bad.Webhook = good.Webhook
	bad.GPIO = &setup.GPIOForm{Chip: "gpiochip-nonexistent", Lines: []setup.GPIOLineForm{{Offset: 17, Gate: "east-wicket", Input: "door-contact", Role: "door", ActiveLow: true}}}
	refused(bad, "gate_inputs.gpio.lines[0]") // the edge could not start on it
	bad.GPIO = nil
	bad.MQTT = &setup.MQTTForm{Broker: "192.168.1.10", Devices: []setup.MQTTDeviceForm{{Name: "wicket-contact", Gate: "east-wicket"}}}
	refused(bad, "gate_inputs.mqtt.broker")

	res, err := edge.SetupBackend(node).SetupSaveGates(good)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Applied != "restarting" || res.Revision == revBefore || len(res.Secrets) != 1 || res.Secrets[0].Controller != "wicket-ctrl" || len(res.Secrets[0].Secret) != 64 {
		t.Fatalf("save: %+v", res)
	}
	sec := res.Secrets[0]
	if st, err := os.Stat(sec.File); err != nil || st.Mode().Perm() != 0o600 || filepath.Dir(sec.File) != data {
		t.Fatalf("secret file %s: %v %v", sec.File, st, err)
	}
	if b, _ := os.ReadFile(sec.File); strings.TrimSpace(string(b)) != sec.Secret {
		t.Fatal("the secret file does not hold the secret shown")
	}
	b, _ := os.ReadFile(path)
	for _, want := range []string{"# the installer's file", "id: east-wicket", "- gate-cam", "mon-fri 18:00-07:00", "00:00-24:00",
		"time_zone: Asia/Shanghai", "id: wicket-ctrl", "secret_file: " + sec.File, "enabled: true"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("edge.yaml lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), sec.Secret) {
		t.Error("the secret is in edge.yaml")
	}
	select {
	case why := <-restarted:
		t.Logf("restart: %s", why)
	case <-time.After(5 * time.Second):
		t.Fatal("the edge did not restart on a gates revision")
	}

	// The restarted edge runs the revision and takes the controller's events.
	node.Close()
	node, _ = start()
	if node.ConfigRevision() != res.Revision {
		t.Errorf("restarted at %s, want %s", node.ConfigRevision(), res.Revision)
	}
	f, _ = edge.SetupBackend(node).SetupGates()
	if len(f.Gates) != 1 || f.Gates[0].Arming != "schedule" || len(f.Gates[0].Schedule) != 2 ||
		!slices.Equal(f.Gates[0].Schedule[0].Days, []string{"mon", "tue", "wed", "thu", "fri"}) || f.Gates[0].Schedule[1].To != "00:00" ||
		len(f.Webhook) != 1 || !f.Webhook[0].HasSecret || f.Webhook[0].SecretFile != sec.File {
		t.Errorf("form after the restart: %+v", f)
	}
	events := edge.SetupBackend(node).SetupGateEvents(t.Context())
	s, err := gatesim.New(gatesim.Config{WebhookURL: "http://" + node.Addr() + "/api/v1/gates/events", Controller: "wicket-ctrl", Secret: sec.Secret, Gate: "east-wicket", Pause: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background(), "passage"); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		if v, ok := ev.(edge.GateEventView); !ok || v.Gate != "east-wicket" {
			t.Errorf("event %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no gate event from the new controller")
	}

	// A new secret makes a new file, and so a new revision the edge
	// restarts on (the running one keeps the old secret until then).
	f.Webhook[0].NewSecret = true
	res2, err := edge.SetupBackend(node).SetupSaveGates(f)
	if err != nil || len(res2.Secrets) != 1 || res2.Secrets[0].File == sec.File || res2.Applied != "restarting" {
		t.Fatalf("new secret: %+v %v", res2, err)
	}
	// The retired secret does not stay on the box; the new one does.
	if _, err := os.Stat(sec.File); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("rotated-out secret file %s still there (%v)", sec.File, err)
	}
	if _, err := os.Stat(res2.Secrets[0].File); err != nil {
		t.Errorf("new secret file: %v", err)
	}
}
