package edge_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/internal/testrig/mosquitto"
	"github.com/vigil-perimeter/vigil/sensors"
	"github.com/vigil-perimeter/vigil/sensors/sim"
	"github.com/vigil-perimeter/vigil/wire"
)

// sensorHooks collects what a node raises.
type sensorHooks struct {
	mu      sync.Mutex
	alerts  []wire.Alert
	updates []wire.AlertUpdate
}

func (h *sensorHooks) options(t *testing.T) edge.Options {
	return edge.Options{Log: testrig.Logger(t),
		OnAlert: func(a wire.Alert) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.alerts = append(h.alerts, a)
		},
		OnUpdate: func(u wire.AlertUpdate) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.updates = append(h.updates, u)
		}}
}

// sensorAlert is the alert of kind k, if raised.
func (h *sensorHooks) sensorAlert(k string) (wire.Alert, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, a := range h.alerts {
		if a.Kind == k {
			return a, true
		}
	}
	return wire.Alert{}, false
}

// ended is the update that ended alert id, if sent.
func (h *sensorHooks) ended(id string) (wire.AlertUpdate, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, u := range h.updates {
		if u.AlertID == id && !u.Ended.IsZero() {
			return u, true
		}
	}
	return wire.AlertUpdate{}, false
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	testrig.Until(t, what, 15*time.Second, ok)
}

// startSensorNode starts a node with cfg (no central: its batches stay
// queued; a new data directory unless cfg has one), collecting what it
// raises.
func startSensorNode(t *testing.T, cfg conf.Config) (*edge.Node, *sensorHooks) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.Central = conf.CentralConfig{URL: "ws://127.0.0.1:1/api/v1/edge/ws", Token: "t", BackoffMax: config.Duration(time.Second)}
	cfg.Cameras = []conf.CameraConfig{{ID: "cam", URL: "rtsp://127.0.0.1:1/cam"}}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	hooks := &sensorHooks{}
	node, err := edge.Start(cfg, hooks.options(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	return node, hooks
}

// z2m publishes a Zigbee2MQTT device's state, as Zigbee2MQTT does.
type z2m struct {
	t    *testing.T
	c    paho.Client
	sent []float64
}

func newZ2M(t *testing.T, b *mosquitto.Broker) *z2m {
	c := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID("z2m"))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return &z2m{t: t, c: c}
}

// temperature publishes a temperature expose of device box-3-temp.
func (z *z2m) temperature(v float64) {
	z.t.Helper()
	tok := z.c.Publish("zigbee2mqtt/box-3-temp", 1, false, fmt.Sprintf(`{"temperature":%v,"linkquality":120}`, v))
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		z.t.Fatalf("publish: %v", tok.Error())
	}
	z.sent = append(z.sent, v)
	time.Sleep(20 * time.Millisecond)
}

// TestSensorAlertsFromMQTT: a cable temperature sensor, a Zigbee2MQTT
// device's temperature expose read through mosquitto. A reading over the
// warning threshold raises a yellow sensor.warning, one over the alarm
// threshold a red sensor.alarm (ending the warning), each carrying the
// reading, the threshold and the readings before it; a reading back
// below the thresholds ends the alarm. Every reading is queued for
// central in sensor batches, in order, and the heartbeat's status says
// where the sensor stands.
func TestSensorAlertsFromMQTT(t *testing.T) {
	broker := mosquitto.Start(t)
	zero := config.Duration(0)
	node, hooks := startSensorNode(t, conf.Config{EdgeID: "box-1", SiteID: "village/lane-3",
		Sensors: []sensors.SensorConfig{{ID: "cable-3", Name: "Box 3 cable", Kind: "cable_temperature", Location: "No. 3 Lane",
			Source: sensors.SourceRef{MQTT: &sensors.MQTTRef{Device: "box-3-temp", Field: "temperature"}}, MinDuration: &zero}},
		SensorInputs: sensors.InputsConfig{MQTT: &sensors.MQTTInputConfig{Broker: broker.URL()}},
	})
	pub := newZ2M(t, broker)
	status := func() wire.SensorStatus { return node.SensorStatus()[0] }
	// Until the edge has subscribed, nothing is heard.
	waitFor(t, "the first reading", func() bool {
		pub.temperature(30 + float64(len(pub.sent))/1000) // distinct, normal
		return status().State == string(sensors.StateNormal)
	})
	pub.temperature(50)
	pub.temperature(65) // over warning (60)
	waitFor(t, "the warning", func() bool { _, ok := hooks.sensorAlert(wire.KindSensorWarning); return ok })
	pub.temperature(72)
	pub.temperature(85) // over alarm (80)
	waitFor(t, "the alarm", func() bool { _, ok := hooks.sensorAlert(wire.KindSensorAlarm); return ok })
	if st := status(); st.State != string(sensors.StateAlarm) || st.Value != 85 || st.Unit != "°C" || st.SiteID != "village/lane-3" {
		t.Errorf("status in alarm: %+v", st)
	}
	pub.temperature(81)
	pub.temperature(40) // back below warning − hysteresis: clear

	warning, alarm := checkCableAlerts(t, hooks)
	if u, ok := hooks.ended(warning.ID); !ok || !u.Ended.Equal(alarm.Time) || u.Summary != warning.Summary+"; rose to alarm at 85 °C" {
		t.Errorf("warning not ended when the alarm rose: %+v", u)
	}
	waitFor(t, "the alarm's end", func() bool { _, ok := hooks.ended(alarm.ID); return ok })
	if u, _ := hooks.ended(alarm.ID); u.Summary != alarm.Summary+"; back to normal at 40 °C" {
		t.Errorf("all-clear summary %q", u.Summary)
	}
	if st := status(); st.State != string(sensors.StateNormal) || st.Value != 40 {
		t.Errorf("status after the clear: %+v", st)
	}
	checkQueued(t, node, pub.sent)
}

// checkCableAlerts: the warning and the alarm carry their reading, the
// threshold and the readings before them.
func checkCableAlerts(t *testing.T, hooks *sensorHooks) (warning, alarm wire.Alert) {
	t.Helper()
	warning, _ = hooks.sensorAlert(wire.KindSensorWarning)
	alarm, _ = hooks.sensorAlert(wire.KindSensorAlarm)
	for _, c := range []struct {
		a          wire.Alert
		sev        wire.Severity
		value, lim float64
		rule       string
		recent     []float64
	}{
		{warning, wire.Yellow, 65, 60, sensors.RuleWarning, []float64{50, 65}},
		{alarm, wire.Red, 85, 80, sensors.RuleAlarm, []float64{50, 65, 72, 85}},
	} {
		s := c.a.Sensor
		if c.a.Severity != c.sev || c.a.Source != "cable-3" || c.a.SiteID != "village/lane-3" || s == nil {
			t.Fatalf("%s: %+v", c.a.Kind, c.a)
		}
		if s.Value != c.value || s.Threshold != c.lim || s.Rule != c.rule || s.Kind != "cable_temperature" || s.Unit != "°C" || s.Location != "No. 3 Lane" {
			t.Errorf("%s reading %+v", c.a.Kind, s)
		}
		var recent []float64
		for _, p := range s.Recent {
			recent = append(recent, p.Value)
		}
		if len(recent) < len(c.recent) || !slices.Equal(recent[len(recent)-len(c.recent):], c.recent) {
			t.Errorf("%s recent readings %v, want them to end with %v", c.a.Kind, recent, c.recent)
		}
	}
	if want := "Cable temperature 85 °C over alarm 80 °C at Box 3 cable, No. 3 Lane"; alarm.Summary != want {
		t.Errorf("alarm summary %q, want %q", alarm.Summary, want)
	}
	return warning, alarm
}

// checkQueued: every reading heard (from the first one heard on, up to
// the last one sent) is queued for central, once, in order.
func checkQueued(t *testing.T, node *edge.Node, sent []float64) {
	t.Helper()
	var queued []float64
	waitFor(t, "every reading queued for central", func() bool {
		pts, err := node.QueuedSensorReadings()
		if err != nil {
			t.Fatal(err)
		}
		queued = queued[:0]
		for _, p := range pts {
			queued = append(queued, p.Value)
		}
		return len(queued) > 0 && queued[len(queued)-1] == sent[len(sent)-1]
	})
	i := slices.Index(sent, queued[0])
	if i < 0 || !slices.Equal(queued, sent[i:]) {
		t.Errorf("queued %v, want %v", queued, sent[max(i, 0):])
	}
}

// TestSensorSourcesModbusAndSilent: a cable temperature read from a
// Modbus TCP detector (the sensor simulator's server: the register holds
// the value × 10) reaches the verdicts and the batches for central; an
// MQTT sensor that says nothing for stale_after intervals raises a
// yellow sensor.silent, which its first reading ends.
func TestSensorSourcesModbusAndSilent(t *testing.T) {
	srv, err := sim.StartModbus(sim.ModbusConfig{Address: "127.0.0.1:0", Devices: []sim.ModbusDevice{{ID: "efd-1", UnitID: 1,
		Sensors: []sim.Sensor{{ID: "cable-a", Kind: "cable_temperature", Scenario: sim.Steady, Base: 35.2}}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	broker := mosquitto.Start(t)
	fast := config.Duration(200 * time.Millisecond)
	node, hooks := startSensorNode(t, conf.Config{EdgeID: "box-2", SiteID: "village/lane-4",
		Sensors: []sensors.SensorConfig{
			{ID: "cable-a", Kind: "cable_temperature", Source: sensors.SourceRef{Modbus: &sensors.ModbusRef{Device: "efd-1", Register: "cable-a"}}},
			{ID: "leak-1", Name: "Pump room", Kind: "water_leak", Interval: fast, StaleAfter: 2,
				Source: sensors.SourceRef{MQTT: &sensors.MQTTRef{Device: "pump-leak", Field: "water_leak"}}},
		},
		SensorInputs: sensors.InputsConfig{
			MQTT: &sensors.MQTTInputConfig{Broker: broker.URL()},
			Modbus: sensors.ModbusConfig{
				Models:  map[string][]sensors.RegisterConfig{"sim": {{Name: "cable-a", Address: 0, Type: "int16", Scale: sim.RegisterScale, Unit: "°C"}}},
				Devices: []sensors.ModbusDeviceConfig{{ID: "efd-1", Address: srv.Addr(), UnitID: 1, Model: "sim", Poll: fast}},
			},
		},
	})

	waitFor(t, "the Modbus reading", func() bool {
		st := node.SensorStatus()
		return st[0].State == string(sensors.StateNormal) && st[0].Value > 35.19 && st[0].Value < 35.21
	})
	waitFor(t, "the Modbus readings queued for central", func() bool {
		pts, err := node.QueuedSensorReadings()
		if err != nil {
			t.Fatal(err)
		}
		return len(pts) > 0 && pts[0].Sensor == "cable-a"
	})

	waitFor(t, "the leak sensor silent", func() bool { _, ok := hooks.sensorAlert(wire.KindSensorSilent); return ok })
	silent, _ := hooks.sensorAlert(wire.KindSensorSilent)
	if silent.Severity != wire.Yellow || silent.Source != "leak-1" || silent.Sensor == nil || silent.Sensor.Rule != sensors.RuleSilent ||
		silent.Summary != "Water leak sensor silent: no reading for 400ms at Pump room" {
		t.Errorf("silent alert %+v (%+v)", silent, silent.Sensor)
	}
	pub := newZ2M(t, broker)
	waitFor(t, "the silent alert ended by a reading", func() bool {
		pub.c.Publish("zigbee2mqtt/pump-leak", 1, false, `{"water_leak":false,"battery":97}`).WaitTimeout(5 * time.Second)
		_, ok := hooks.ended(silent.ID)
		return ok
	})
	if u, _ := hooks.ended(silent.ID); u.Summary != silent.Summary+"; reporting again at 0" {
		t.Errorf("end of silence: %q", u.Summary)
	}
	if _, ok := hooks.sensorAlert(wire.KindSensorAlarm); ok {
		t.Error("a dry leak sensor raised an alarm")
	}
}

// TestOpenSensorAlertsSurviveRestart: an alarm open when the node stops
// is still the open alert after a restart — a reading still over the
// alarm threshold raises nothing new, the first normal one ends it —
// and the alert of a sensor removed from the configuration ends at
// start.
func TestOpenSensorAlertsSurviveRestart(t *testing.T) {
	broker := mosquitto.Start(t)
	zero := config.Duration(0)
	cable := func(id string) sensors.SensorConfig {
		return sensors.SensorConfig{ID: id, Name: "Box 3 cable", Kind: "cable_temperature", Location: "No. 3 Lane",
			Source: sensors.SourceRef{MQTT: &sensors.MQTTRef{Device: "box-3-temp", Field: "temperature"}}, MinDuration: &zero}
	}
	cfg := conf.Config{EdgeID: "box-1", SiteID: "village/lane-3", DataDir: t.TempDir(),
		Sensors:      []sensors.SensorConfig{cable("cable-3"), cable("cable-9")},
		SensorInputs: sensors.InputsConfig{MQTT: &sensors.MQTTInputConfig{Broker: broker.URL()}}}
	node, hooks := startSensorNode(t, cfg)
	pub := newZ2M(t, broker)
	waitFor(t, "the alarm", func() bool {
		pub.temperature(85)
		_, ok := hooks.sensorAlert(wire.KindSensorAlarm)
		return ok
	})
	waitFor(t, "both sensors' alarms", func() bool {
		hooks.mu.Lock()
		defer hooks.mu.Unlock()
		return len(hooks.alerts) == 2
	})
	var alarm, gone wire.Alert // cable-9's alarm: its sensor leaves the configuration
	for _, a := range hooks.alerts {
		switch a.Source {
		case "cable-3":
			alarm = a
		case "cable-9":
			gone = a
		}
	}
	node.Close()

	cfg.Sensors = cfg.Sensors[:1]
	node, hooks = startSensorNode(t, cfg)
	if st := node.SensorStatus()[0]; st.State != string(sensors.StateAlarm) || st.Value != 85 {
		t.Errorf("status after the restart, before a reading: %+v", st)
	}
	waitFor(t, "the removed sensor's alarm ended", func() bool { _, ok := hooks.ended(gone.ID); return ok })
	if u, _ := hooks.ended(gone.ID); u.Summary != gone.Summary+"; sensor removed from the configuration" {
		t.Errorf("removed sensor's end: %q", u.Summary)
	}
	waitFor(t, "a reading after the restart", func() bool {
		pub.temperature(84)
		return node.SensorStatus()[0].Value == 84
	})
	pub.temperature(40)
	waitFor(t, "the alarm of the last run ended", func() bool { _, ok := hooks.ended(alarm.ID); return ok })
	if u, _ := hooks.ended(alarm.ID); u.Summary != alarm.Summary+"; back to normal at 40 °C" {
		t.Errorf("all-clear after the restart: %q", u.Summary)
	}
	hooks.mu.Lock()
	defer hooks.mu.Unlock()
	if len(hooks.alerts) != 0 {
		t.Errorf("alerts raised again after the restart: %+v", hooks.alerts)
	}
}
