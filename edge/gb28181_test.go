package edge_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/gates"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/internal/testrig/kamailio"
	"github.com/vigil-perimeter/vigil/internal/testrig/mosquitto"
	"github.com/vigil-perimeter/vigil/internal/testrig/sipp"
	"github.com/vigil-perimeter/vigil/sensors"
	"github.com/vigil-perimeter/vigil/wire"
)

const (
	gbServerID = "34020000002000000001"
	gbDomain   = "3402000000"
	gbDeviceID = "34020000001180000001"
	gbCamID    = "34020000001320000001"
	gbGateID   = "34020000001340000001"
	gbSensorID = "34020000001340000002"
	gbPassword = "Vigil-12345678"
)

// gbNodeConfig is an edge with a camera (not there), an always-armed gate
// and, with a broker, a cable temperature sensor on MQTT, registering with
// the platform at server over UDP.
func gbNodeConfig(t *testing.T, server string, broker *mosquitto.Broker, keepalive time.Duration) conf.Config {
	t.Helper()
	port, err := sipp.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := conf.Config{
		EdgeID: testEdgeID, SiteID: "village/north", Entrance: "East gate", Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: conf.CentralConfig{URL: "ws://127.0.0.1:1/api/v1/edge/ws", Token: "t", BackoffMax: config.Duration(time.Second)},
		Cameras: []conf.CameraConfig{{ID: "north", Name: "North lane", URL: "rtsp://127.0.0.1:1/north"}},
		Gates:   []conf.GateConfig{{ID: "main", Name: "东门", Cameras: []string{"north"}, Arming: conf.ArmingConfig{Always: true}}},
		GB28181: &conf.GB28181Config{
			ServerID: gbServerID, ServerAddr: server, DeviceID: gbDeviceID, Password: gbPassword,
			Expires: config.Duration(time.Hour), KeepaliveInterval: config.Duration(keepalive), MaxKeepaliveMisses: 2,
			LocalAddr: fmt.Sprintf("127.0.0.1:%d", port), RetryMin: config.Duration(200 * time.Millisecond), RetryMax: config.Duration(time.Second),
			Channels: []conf.GBChannelConfig{{Camera: "north", ID: gbCamID}, {Gate: "main", ID: gbGateID}},
		},
	}
	if broker != nil {
		zero := config.Duration(0)
		cfg.Sensors = []sensors.SensorConfig{{ID: "box1-cable", Name: "Box 1 cable", Kind: "cable_temperature", Location: "No. 1 Lane",
			Source: sensors.SourceRef{MQTT: &sensors.MQTTRef{Device: "box-3-temp", Field: "temperature"}}, MinDuration: &zero}}
		cfg.SensorInputs = sensors.InputsConfig{MQTT: &sensors.MQTTInputConfig{Broker: broker.URL()}}
		cfg.GB28181.Channels = append(cfg.GB28181.Channels, conf.GBChannelConfig{Sensor: "box1-cable", ID: gbSensorID})
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	return cfg
}

// gbRaised collects a node's alerts.
type gbRaised struct {
	mu     sync.Mutex
	alerts []wire.Alert
}

func (r *gbRaised) kind(k string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.alerts, func(a wire.Alert) bool { return a.Kind == k })
}

func startGBNode(t *testing.T, cfg conf.Config) (*edge.Node, *gbRaised) {
	t.Helper()
	r := &gbRaised{}
	node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t),
		OnAlert: func(a wire.Alert) { r.mu.Lock(); r.alerts = append(r.alerts, a); r.mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	return node, r
}

// gbHealth is what /api/v1/healthz says of the registration.
type gbHealth struct {
	Reasons []string       `json:"reasons"`
	Online  *bool          `json:"gb28181_online"`
	GB      *wire.GBStatus `json:"gb28181"`
}

func healthOf(t *testing.T, node *edge.Node) gbHealth {
	t.Helper()
	var h gbHealth
	getJSON(t, "http://"+node.Addr()+"/api/v1/healthz", &h)
	return h
}

func forceGate(t *testing.T, node *edge.Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := node.SubmitGateEvent(ctx, gates.Event{Gate: "main", Device: "contact", Kind: gates.Opened, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

// TestGB28181RegistersThroughKamailio: a node with a gb28181 section
// registers with the platform (Kamailio, digest auth) and says so in its
// health and its heartbeat; when the platform goes away the node is
// degraded, a forced gate's alarm waits, and once the platform is back the
// node registers again and the alarm goes out.
func TestGB28181RegistersThroughKamailio(t *testing.T) {
	k := kamailio.Start(t, kamailio.Options{ServerID: gbServerID, Domain: gbDomain, Password: gbPassword, TZ: "Asia/Shanghai"})
	node, raised := startGBNode(t, gbNodeConfig(t, k.Addr(), nil, 300*time.Millisecond))
	waitFor(t, "the node registered at Kamailio", func() bool { return k.Registered(gbDeviceID) })
	waitFor(t, "online in the health", func() bool { h := healthOf(t, node); return h.GB != nil && h.GB.Online })
	h := healthOf(t, node)
	if h.Online == nil || !*h.Online || h.GB.State != "online" || h.GB.DeviceID != gbDeviceID || h.GB.Server != k.Addr() ||
		h.GB.RegisteredSince.IsZero() || h.GB.ClockSampledAt.IsZero() || h.GB.ClockOffsetMS > 1500 || h.GB.ClockOffsetMS < -1500 {
		t.Errorf("health while registered: %+v %+v", h, h.GB)
	}
	for _, r := range h.Reasons {
		if strings.Contains(r, "GB/T 28181") {
			t.Errorf("registered, yet a reason: %q", r)
		}
	}
	hb := node.Heartbeat()
	if hb.GB28181 == nil || !hb.GB28181.Online || hb.GB28181.DeviceID != gbDeviceID {
		t.Fatalf("heartbeat: %+v", hb.GB28181)
	}
	// Every series is there at 0 from the start, on the node's registry.
	metrics := getText(t, "http://"+node.Addr()+"/metrics")
	for _, want := range []string{`vigil_gb28181_registered 1`, `vigil_edge_gb28181_alarms_dropped_total{reason="queue_full"} 0`,
		`vigil_edge_gb28181_alarms_dropped_total{reason="expired"} 0`, `vigil_edge_gb28181_alarms_pending 0`} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// The platform goes away: keepalives go unanswered, the node says so.
	k.Stop()
	waitFor(t, "offline in the health", func() bool { h := healthOf(t, node); return h.Online != nil && !*h.Online })
	h = healthOf(t, node)
	if !slices.ContainsFunc(h.Reasons, func(r string) bool { return strings.HasPrefix(r, "GB/T 28181 platform: not registered: ") }) {
		t.Errorf("offline, reasons %q", h.Reasons)
	}
	if hb := node.Heartbeat(); hb.GB28181.Online || hb.GB28181.LastError == "" {
		t.Errorf("heartbeat while offline: %+v", hb.GB28181)
	}
	// A forced gate while offline waits for the platform ...
	forceGate(t, node)
	waitFor(t, "the forced gate's alert", func() bool { return raised.kind("gate.forced") })
	waitFor(t, "the alarm waiting", func() bool { return node.Heartbeat().GB28181.PendingAlarms == 1 })
	// ... and goes out once the node is registered again.
	k.Start()
	waitFor(t, "registered again and the alarm sent", func() bool {
		st := node.Heartbeat().GB28181
		return st.Online && st.PendingAlarms == 0
	})
	waitFor(t, "Kamailio took the alarm", func() bool { return strings.Contains(k.Log(), "platform MESSAGE from "+gbDeviceID) })
	metrics = getText(t, "http://"+node.Addr()+"/metrics")
	if !strings.Contains(metrics, `vigil_gb28181_alarms_total{result="ok"} 1`+"\n") || node.Heartbeat().GB28181.DroppedAlarms != 0 {
		t.Errorf("alarm not delivered once:\n%s", grepLines(metrics, "gb28181_alarms"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestGB28181CatalogAndAlarmSIPp: SIPp plays the platform, straight to the
// node's SIP port. Its Catalog query gets the configured camera, gate and
// sensor with their names (the gate's in Chinese) and status; a forced
// gate arrives as a Notify Alarm on the gate's channel: priority 1 (red),
// method 2 (device alarm).
func TestGB28181CatalogAndAlarmSIPp(t *testing.T) {
	broker := mosquitto.Start(t)
	port, err := sipp.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := gbNodeConfig(t, fmt.Sprintf("127.0.0.1:%d", port), broker, time.Hour)
	// Registration, 3 catalog items (one MESSAGE each over UDP), 1 alarm.
	p := sipp.Start(t, sipp.Options{Scenario: "../gb28181/device/testdata/edge_platform.xml", Port: port, Remote: cfg.GB28181.LocalAddr,
		Calls: 5, Timeout: 20 * time.Second, Keys: map[string]string{"dev": gbDeviceID, "srv": gbServerID, "domain": gbDomain}})
	node, raised := startGBNode(t, cfg)
	pub := newZ2M(t, broker)
	waitFor(t, "the sensor's first reading", func() bool {
		pub.temperature(30)
		return node.SensorStatus()[0].State == string(sensors.StateNormal)
	})
	waitFor(t, "registered", func() bool { return node.Heartbeat().GB28181.Online })
	forceGate(t, node)
	waitFor(t, "the forced gate's alert", func() bool { return raised.kind("gate.forced") })
	res := p.Wait()
	if res.ExitCode != 0 {
		t.Fatalf("sipp exit %d\nerrors:\n%s\nlog:\n%s\nmessages:\n%s", res.ExitCode, res.Errors, res.Logs, res.Messages)
	}
	t.Logf("platform's log:\n%s", res.Logs)
	for _, want := range []string{
		"item channel=" + gbCamID + " name=North lane status=OFF", // the camera is not there
		"item channel=" + gbGateID + " name=东门 status=ON",
		"item channel=" + gbSensorID + " name=Box 1 cable status=ON",
		"alarm device=" + gbGateID + " priority=1 method=2 type= time=",
	} {
		if !strings.Contains(res.Logs, want) {
			t.Errorf("no %q in the platform's log:\n%s", want, res.Logs)
		}
	}
}
