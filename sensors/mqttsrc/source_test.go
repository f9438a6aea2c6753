package mqttsrc

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigil-perimeter/vigil/internal/testrig/mosquitto"
	"github.com/vigil-perimeter/vigil/sensors"
	"github.com/vigil-perimeter/vigil/sensors/sensorstest"
)

var quiet = slog.New(slog.DiscardHandler)

// TestSensorsThroughMosquitto: Zigbee2MQTT devices as they publish
// (a Tuya gas sensor, a smart plug, a temperature sensor, a leak sensor
// whose retained state predates us) and a generic device read by a JSON
// path, through a real broker; bad payloads are counted and logged once
// per topic, and the good ones around them still read.
func TestSensorsThroughMosquitto(t *testing.T) {
	broker := mosquitto.Start(t)
	pub := mosquitto.Publisher(t, broker.URL())
	mosquitto.Publish(t, pub, "zigbee2mqtt/leak-kitchen", `{"battery":97,"linkquality":120,"water_leak":true}`, true)

	refs := map[string]sensors.MQTTRef{
		"gas-kitchen":     {Device: "gas-kitchen", Field: "gas_density"},
		"gas-kitchen-det": {Device: "gas-kitchen", Field: "gas"},
		"pump-current":    {Device: "plug-pump", Field: "current"},
		"pump-voltage":    {Device: "plug-pump", Field: "voltage"},
		"pump-power":      {Device: "plug-pump", Field: "power"},
		"pump-energy":     {Device: "plug-pump", Field: "energy"},
		"box3-cable":      {Device: "temp-box3", Field: "temperature"},
		"box3-humidity":   {Device: "temp-box3", Field: "humidity"},
		"kitchen-leak":    {Device: "leak-kitchen", Field: "water_leak"},
		"tank-level":      {Topic: "site/tank/telemetry", Path: "levels[0].cm"},
		"rcm-bare":        {Topic: "site/rcm/4/ma"},
	}
	reg := prometheus.NewRegistry()
	logs := &sensorstest.LogRecorder{Min: slog.LevelWarn, Attr: "topic"}
	s, err := New(sensors.MQTTInputConfig{Broker: broker.URL(), ClientID: "vigil-sensors-test"}, refs, Options{Registerer: reg, Log: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	if n := s.Topics(); n != 6 {
		t.Fatalf("topics = %d, want 6 (one subscription per topic)", n)
	}
	started := time.Now()
	got := sensorstest.Run(t, s)
	got.WaitFor(t, map[string]float64{"kitchen-leak": 1})
	if at := got.Last["kitchen-leak"].Time; at.Before(started.Add(-time.Second)) || at.After(time.Now()) {
		t.Fatalf("retained reading at %v, want its receive time (after %v)", at, started)
	}

	mosquitto.Publish(t, pub, "zigbee2mqtt/gas-kitchen", `{"battery":100,"gas":false,"gas_density":12.5,"linkquality":80,"self_test_result":"normal"}`, false)
	mosquitto.Publish(t, pub, "zigbee2mqtt/plug-pump", `{"current":3.2,"voltage":229.8,"power":735,"energy":12.4,"state":"ON"}`, false)
	mosquitto.Publish(t, pub, "zigbee2mqtt/temp-box3", `{"temperature":61.5,"humidity":40,"battery":88}`, false)
	mosquitto.Publish(t, pub, "site/tank/telemetry", `{"id":"tank-1","levels":[{"cm":182.5},{"cm":90}]}`, false)
	mosquitto.Publish(t, pub, "site/rcm/4/ma", `312`, false)
	got.WaitFor(t, map[string]float64{
		"gas-kitchen": 12.5, "gas-kitchen-det": 0, "pump-current": 3.2, "pump-voltage": 229.8, "pump-power": 735,
		"pump-energy": 12.4, "box3-cable": 61.5, "box3-humidity": 40, "tank-level": 182.5, "rcm-bare": 312,
	})
	mosquitto.Publish(t, pub, "zigbee2mqtt/gas-kitchen", `{"gas":true,"gas_density":27}`, false)
	mosquitto.Publish(t, pub, "zigbee2mqtt/leak-kitchen", `{"water_leak":false}`, false)
	got.WaitFor(t, map[string]float64{"gas-kitchen": 27, "gas-kitchen-det": 1, "kitchen-leak": 0})

	// Bad payloads, each followed on its topic by a good one so that we
	// know they were handled.
	mosquitto.Publish(t, pub, "zigbee2mqtt/temp-box3", `not json`, false)
	mosquitto.Publish(t, pub, "zigbee2mqtt/temp-box3", `{"humidity":41}`, false)                     // no temperature; humidity still reads
	mosquitto.Publish(t, pub, "zigbee2mqtt/temp-box3", `{"temperature":"hot","humidity":42}`, false) // a string for a number
	mosquitto.Publish(t, pub, "site/tank/telemetry", `{"levels":[]}`, false)
	mosquitto.Publish(t, pub, "site/rcm/4/ma", `12,5`, false)
	mosquitto.Publish(t, pub, "zigbee2mqtt/temp-box3", `{"temperature":63,"humidity":43}`, false)
	mosquitto.Publish(t, pub, "site/tank/telemetry", `{"levels":[{"cm":181}]}`, false)
	mosquitto.Publish(t, pub, "site/rcm/4/ma", `320`, false)
	got.WaitFor(t, map[string]float64{"box3-cable": 63, "box3-humidity": 43, "tank-level": 181, "rcm-bare": 320})
	for reason, want := range map[string]float64{reasonNotJSON: 2, reasonMissing: 2, reasonNotNumber: 1, reasonEmpty: 0, reasonTooLarge: 0} {
		if n := testutil.ToFloat64(s.metrics.bad[reason]); n != want {
			t.Errorf("bad payloads{reason=%s} = %v, want %v", reason, n, want)
		}
	}
	if n := logs.Count("zigbee2mqtt/temp-box3: MQTT sensor payload"); n != 1 {
		t.Errorf("%d warnings for temp-box3's 3 bad payloads, want 1 (once a minute):\n%s", n, strings.Join(logs.Messages(), "\n"))
	}
	if n := logs.Count("site/tank/telemetry: MQTT sensor payload"); n != 1 {
		t.Errorf("%d warnings for the tank's bad payload, want 1", n)
	}
	if n, err := testutil.GatherAndCount(reg, "vigil_sensor_mqtt_bad_payloads_total"); err != nil || n != len(reasons) {
		t.Fatalf("%d bad payload series (%v), want one per reason", n, err)
	}
}

// TestBrokerRestart: the broker restarts without persistence and forgets
// our subscriptions; the source reconnects, subscribes again, and
// readings flow again.
func TestBrokerRestart(t *testing.T) {
	broker := mosquitto.Start(t)
	pub := mosquitto.Publisher(t, broker.URL())
	s, err := New(sensors.MQTTInputConfig{Broker: broker.URL(), BaseTopic: "z2m"},
		map[string]sensors.MQTTRef{"box3-cable": {Device: "temp-box3", Field: "temperature"}},
		Options{Log: quiet, ReconnectMax: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	got := sensorstest.Run(t, s)
	waitConnected(t, s)
	mosquitto.Publish(t, pub, "z2m/temp-box3", `{"temperature":30}`, false)
	got.WaitFor(t, map[string]float64{"box3-cable": 30})

	broker.Restart()
	deadline := time.Now().Add(20 * time.Second)
	for got.Last["box3-cable"].Value != 31 {
		pub.Publish("z2m/temp-box3", 1, false, `{"temperature":31}`).WaitTimeout(time.Second)
		select {
		case r := <-got.C:
			got.Last[r.Sensor] = r
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no readings 20s after the broker restart")
		}
	}
	if n := testutil.ToFloat64(s.metrics.connects); n < 2 {
		t.Fatalf("connects = %v, want a reconnect", n)
	}
}

func waitConnected(t *testing.T, s *Source) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if testutil.ToFloat64(s.metrics.connected) == 1 {
			time.Sleep(200 * time.Millisecond) // the subscription follows the connect
			return
		}
	}
	t.Fatal("not connected within 10s")
}

// TestNewRejects: reference mistakes name the sensor; the password file is read.
func TestNewRejects(t *testing.T) {
	cfg := sensors.MQTTInputConfig{Broker: "tcp://127.0.0.1:1"}
	for _, tc := range []struct {
		ref  sensors.MQTTRef
		want string
	}{
		{sensors.MQTTRef{Device: "a", Topic: "b"}, "not both"},
		{sensors.MQTTRef{Device: "a/+"}, "must not contain"},
		{sensors.MQTTRef{Device: "a"}, "field is empty"},
		{sensors.MQTTRef{Device: "a", Field: "t", Path: "x"}, "takes a field"},
		{sensors.MQTTRef{Topic: "site/#"}, "wildcards"},
		{sensors.MQTTRef{Topic: "site/x", Path: "a..b"}, "empty key"},
		{sensors.MQTTRef{Topic: "site/x", Field: "t"}, "takes a path"},
		{sensors.MQTTRef{}, "set device and field"},
	} {
		_, err := New(cfg, map[string]sensors.MQTTRef{"s1": tc.ref}, Options{Log: quiet})
		if err == nil || !strings.Contains(err.Error(), `sensor "s1"`) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.ref, err, tc.want)
		}
	}
	cfg.PasswordFile = filepath.Join(t.TempDir(), "pw")
	ok := map[string]sensors.MQTTRef{"s1": {Topic: "x"}}
	if _, err := New(cfg, ok, Options{Log: quiet}); err == nil || !strings.Contains(err.Error(), "password_file") {
		t.Fatalf("missing password file: %v", err)
	}
	if err := os.WriteFile(cfg.PasswordFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, ok, Options{Log: quiet})
	if err != nil || s.password != "s3cret" || s.cfg.ClientID != "vigil-sensors" || s.cfg.BaseTopic != "zigbee2mqtt" {
		t.Fatalf("%v %+v", err, s)
	}
}
