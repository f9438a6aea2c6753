package edge_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/edge/setup"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/internal/testrig/mosquitto"
	"github.com/vigil-perimeter/vigil/sensors"
)

// sensorsYAML is an edge.yaml's sensors: one cable temperature sensor
// read from a Zigbee2MQTT device through broker, and a register map the
// page shows read-only.
func sensorsYAML(broker string) string {
	return fmt.Sprintf(`sensors:
  - id: cable-3
    name: Box 3 cable
    kind: cable_temperature
    location: No. 3 Lane
    source:
      mqtt: {device: box-3-temp, field: temperature}
sensor_inputs:
  modbus:
    models:
      acrel-arcm300:
        - {name: leak, address: 3, unit: mA}
  mqtt:
    broker: %s
`, broker)
}

// sensorsNode starts an edge from an edge.yaml with sensorsYAML, as the
// service does (the file a revision, restarts asked for on restarted).
func sensorsNode(t *testing.T, broker string) (node *edge.Node, path, data string, restarted chan string) {
	t.Helper()
	dir := t.TempDir()
	data = filepath.Join(dir, "data")
	path = filepath.Join(dir, "edge.yaml")
	body := "# the installer's file\n" + revConfig(data, "127.0.0.1:0", "ws://127.0.0.1:1/api/v1/edge/ws", "rtsp://127.0.0.1:1/gate", sensorsYAML(broker))
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := edge.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := edge.OpenRevisions(cfg.DataDir).Adopt(path)
	if err != nil {
		t.Fatal(err)
	}
	restarted = make(chan string, 1)
	node, err = edge.Start(cfg, edge.Options{Log: testrig.Logger(t), ConfigRevision: rev.Name, ConfigPath: path,
		Restart: func(why string) {
			select {
			case restarted <- why:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	return node, path, data, restarted
}

// sensorsCheck is the setup self-test's sensors line.
func sensorsCheck(t *testing.T, node *edge.Node) edge.SelfTestCheck {
	t.Helper()
	rep, ok := edge.SetupBackend(node).SetupSelfTest(context.Background(), 10*time.Millisecond).(edge.SelfTestReport)
	if !ok {
		t.Fatal("the setup self-test is not a SelfTestReport")
	}
	i := slices.IndexFunc(rep.Checks, func(c edge.SelfTestCheck) bool { return c.ID == "sensors" })
	if i < 0 {
		t.Fatalf("no sensors check in %+v", rep.Checks)
	}
	if rep.OK && rep.Checks[i].Status != edge.Green {
		t.Error("the report is ok with a red sensors check")
	}
	return rep.Checks[i]
}

// TestSetupSensorsLiveSaveAndRefuse: the setup page's sensors step on a
// running edge. The form shows the sensor as the box runs it; its state
// comes from the node's evaluator (no reading yet, then the reading sent
// through mosquitto), and the setup self-test is red until it has
// reported. A form with a problem (warning above alarm, a register the
// model lacks, a device of no model) is refused with every field named
// and changes nothing; a right one becomes one new revision holding the
// new sensor, keeping the rest of the file, and the edge restarts on it.
func TestSetupSensorsLiveSaveAndRefuse(t *testing.T) {
	broker := mosquitto.Start(t)
	node, path, data, restarted := sensorsNode(t, broker.URL())
	be := edge.SetupBackend(node)

	f, err := be.SetupSensors()
	if err != nil || len(f.Sensors) != 1 || f.Sensors[0].ID != "cable-3" || f.Sensors[0].Source != setup.SourceZigbee ||
		f.MQTT == nil || f.MQTT.Broker != broker.URL() || len(f.Models) != 1 || len(f.Kinds) != len(sensors.Kinds()) {
		t.Fatalf("form: %+v %v", f, err)
	}
	st := be.SetupSensorStates()
	if len(st) != 1 || st[0].ID != "cable-3" || !st[0].Time.IsZero() {
		t.Fatalf("states before a reading (node.go wires setupBackend.sensorStatuses): %+v", st)
	}
	if c := sensorsCheck(t, node); c.Status != edge.Red || !strings.Contains(c.Reason, "cable-3") {
		t.Errorf("self-test before a reading: %+v", c)
	}
	pub := newZ2M(t, broker)
	waitFor(t, "the reading on the setup page", func() bool {
		pub.temperature(31.5)
		st := be.SetupSensorStates()
		return len(st) == 1 && st[0].State == string(sensors.StateNormal) && st[0].Value == 31.5
	})
	if c := sensorsCheck(t, node); c.Status != edge.Green {
		t.Errorf("self-test after the reading: %+v", c)
	}

	revBefore := node.ConfigRevision()
	fileBefore, _ := os.ReadFile(path)
	before := listDir(t, data)
	refused := func(form setup.SensorsForm, fields ...string) {
		t.Helper()
		_, err := be.SetupSaveSensors(form)
		var ref *setup.RefusedError
		if !errors.As(err, &ref) {
			t.Fatalf("want a refusal naming %v, got %v", fields, err)
		}
		for _, field := range fields {
			if !slices.ContainsFunc(ref.Problems, func(p setup.Problem) bool { return p.Field == field }) {
				t.Errorf("refusal %q does not name %s: %+v", ref.Reason, field, ref.Problems)
			}
		}
		if now, _ := os.ReadFile(path); string(now) != string(fileBefore) || node.ConfigRevision() != revBefore {
			t.Errorf("a refused form changed the config (revision %s)", node.ConfigRevision())
		}
		if got := listDir(t, data); !slices.Equal(got, before) {
			t.Errorf("a refused form left files: %v, was %v", got, before)
		}
	}
	w, a := 30.0, 20.0
	gas := setup.SensorForm{ID: "gas-2", Name: "Kitchen gas", Kind: "gas", Source: setup.SourceZigbee, Device: "kitchen-gas", Field: "gas_density", Warn: &w, Alarm: &a}
	bad := f
	bad.Sensors = append(slices.Clone(f.Sensors), gas)
	refused(bad, "sensors[1].warn")
	bad.Sensors[1].Warn = nil
	bad.Sensors[1].Source, bad.Sensors[1].Device, bad.Sensors[1].Register = setup.SourceModbus, "efd-1", "nope"
	bad.Modbus = []setup.ModbusDeviceForm{{ID: "efd-1", Address: "192.168.1.20:502", UnitID: 3, Model: "acrel-x"}}
	refused(bad, "sensor_inputs.modbus.devices[0].model") // every problem at once
	bad.Modbus[0].Model = "acrel-arcm300"
	refused(bad, "sensors[1].source.modbus.register")
	bad.Sensors[1].MinDuration = "soon"
	refused(bad, "sensors[1].min_duration")

	w = 10
	good := f
	rcm := setup.SensorForm{ID: "rcm-1", Kind: "residual_current", Location: "Lane 4, box 3", Source: setup.SourceModbus, Device: "efd-1", Register: "leak",
		MinDuration: "2s"}
	good.Sensors = append(slices.Clone(f.Sensors), gas, rcm)
	good.Modbus = []setup.ModbusDeviceForm{{ID: "efd-1", Address: "192.168.1.20:502", UnitID: 3, Model: "acrel-arcm300", Poll: "2s"}}
	res, err := be.SetupSaveSensors(good)
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != "restarting" || res.Revision == revBefore {
		t.Fatalf("save: %+v", res)
	}
	b, _ := os.ReadFile(path)
	rev, err := os.ReadFile(filepath.Join(data, "config", res.Revision+".yaml"))
	if err != nil || string(rev) != string(b) {
		t.Fatalf("revision %s is not the file in force (%v)", res.Revision, err)
	}
	for _, want := range []string{"# the installer's file", "id: cable-3", "id: gas-2", "kind: gas", "device: kitchen-gas", "field: gas_density",
		"warn: 10", "alarm: 20", "acrel-arcm300", "broker: " + broker.URL(), "id: rcm-1", "register: leak", "min_duration: 2s",
		"id: efd-1", "address: 192.168.1.20:502", "unit_id: 3", "model: acrel-arcm300", "poll: 2s"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("edge.yaml lacks %q:\n%s", want, b)
		}
	}
	select {
	case why := <-restarted:
		t.Logf("restart: %s", why)
	case <-time.After(5 * time.Second):
		t.Fatal("the edge did not restart on a sensors revision")
	}
	// The revision read back is the form saved.
	cfg, err := edge.ParseConfig(res.Revision, rev)
	if err != nil {
		t.Fatal(err)
	}
	back := setup.SensorsFormOf(cfg)
	if len(back.Sensors) != 3 || back.Sensors[2].Source != setup.SourceModbus || back.Sensors[2].MinDuration != "2s" ||
		len(back.Modbus) != 1 || back.Modbus[0] != good.Modbus[0] || *back.Sensors[1].Warn != 10 {
		t.Errorf("the saved revision as a form: %+v", back)
	}
}

// TestSensorsStepInBrowser: in Chromium, on a running edge's setup page,
// the installer sees the sensor's live reading and the self-test's
// sensors check green, adds a gas sensor, is refused with the warning
// field marked while it is above the alarm, and saves it once right:
// the revision the page reports holds the new sensor.
func TestSensorsStepInBrowser(t *testing.T) {
	root, _ := filepath.Abs("..")
	for _, need := range []string{"/usr/bin/chromium", filepath.Join(root, "node_modules", "playwright-core", "package.json")} {
		if _, err := os.Stat(need); err != nil {
			t.Fatalf("%s missing: make test installs Chromium and playwright-core", need)
		}
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node missing: make test installs it")
	}
	broker := mosquitto.Start(t)
	node, path, data, _ := sensorsNode(t, broker.URL())
	pub := newZ2M(t, broker)
	waitFor(t, "the sensor's reading", func() bool {
		pub.temperature(31.5)
		st := node.SensorStatus()
		return len(st) == 1 && st[0].Value == 31.5
	})
	name, rev := runSetupPage(t, node, data, "sensors.browser.mjs")
	cfg, err := edge.ParseConfig(name, rev)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(cfg.Sensors, func(s sensors.SensorConfig) bool { return s.ID == "gas-2" })
	if i < 0 || cfg.Sensors[i].Kind != "gas" || cfg.Sensors[i].Name != "Kitchen gas" || cfg.Sensors[i].Source.MQTT == nil ||
		cfg.Sensors[i].Source.MQTT.Device != "kitchen-gas" || cfg.Sensors[i].Source.MQTT.Field != "gas_density" ||
		cfg.Sensors[i].Warn == nil || *cfg.Sensors[i].Warn != 10 || cfg.Sensors[i].Alarm == nil || *cfg.Sensors[i].Alarm != 20 {
		t.Errorf("revision %s's sensors: %+v", name, cfg.Sensors)
	}
	if b, _ := os.ReadFile(path); string(b) != string(rev) {
		t.Errorf("the file in force is not revision %s", name)
	}
}

// runSetupPage runs a Chromium script of the setup page
// (setup/testdata/script) against node, logged in with the box's setup
// code, and returns the config revision it reports it saved: its name
// and its file.
func runSetupPage(t *testing.T, node *edge.Node, data, script string) (string, []byte) {
	t.Helper()
	code, err := os.ReadFile(filepath.Join(data, setup.CodeFile))
	if err != nil {
		t.Fatal(err)
	}
	shots := os.Getenv("SETUP_SHOTS") // keep the screenshots there
	if shots == "" {
		shots = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("setup", "testdata", script))
	cmd.Env = append(os.Environ(), "SETUP_URL=http://"+node.Addr(), "SETUP_CODE="+strings.TrimSpace(string(code)), "SETUP_SHOTS="+shots)
	out, err := cmd.CombinedOutput()
	t.Logf("node %s:\n%s", script, out)
	if err != nil {
		t.Fatalf("node: %v (screenshot on failure in %s)", err, shots)
	}
	m := regexp.MustCompile(`(?m)^revision: (r[0-9]+)$`).FindSubmatch(out)
	if m == nil {
		t.Fatal("the page reported no revision")
	}
	rev, err := os.ReadFile(filepath.Join(data, "config", string(m[1])+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(m[1]), rev
}
