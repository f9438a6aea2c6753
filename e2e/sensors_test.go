package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/testrig/mosquitto"
	"github.com/vigil-perimeter/vigil/internal/testrig/rig"
	"github.com/vigil-perimeter/vigil/sensors"
	"github.com/vigil-perimeter/vigil/wire"
)

const (
	sensorEdgeID = "lane-3-box"
	sensorSiteID = "village-9/lane-3"
	gasSensor    = "gas-kitchen"
	gasTopic     = "lane3/kitchen/gas"
)

// TestSensorReadingsAcrossCentralRestart: a gas sensor read over MQTT
// (through mosquitto) by a real edge. Central stops; the edge keeps
// reading, and the gas rises through warning to alarm and falls back.
// Once central is back, every reading of the gap is in central's history
// once — none lost, none twice — and the warning and the alarm are
// alerts carrying the reading, the threshold and the minutes before,
// both ended by the all-clear.
func TestSensorReadingsAcrossCentralRestart(t *testing.T) {
	broker := mosquitto.Start(t)
	srv := rig.StartCentral(t, central.Config{Edges: []central.EdgeConfig{rig.Edge(sensorEdgeID, "village-9")}})
	warn, alarm := 20.0, 40.0
	startGasEdge(t, srv, broker, warn, alarm, time.Second, 600)
	det := newGasDetector(t, broker)

	// Until the edge is subscribed, readings go nowhere: publish until
	// one reaches central; from the first one heard on, every one must.
	since := time.Now().UTC().Add(-time.Minute)
	var first []historyPoint
	rig.Until(t, "a first reading in central's history", 20*time.Second, func() bool {
		det.publish(1 + float64(len(det.published))/1000) // distinct, normal
		first = gasHistory(t, srv, since)
		return len(first) > 0
	})

	srv.Stop()
	var gap []float64
	for i := range 40 {
		v := 5 + float64(i)/100 // normal
		switch {
		case i >= 10 && i < 20:
			v = 25 + float64(i)/100 // over warning
		case i >= 20 && i < 30:
			v = 45 + float64(i)/100 // over alarm
		}
		det.publish(v)
		gap = append(gap, v)
	}
	time.Sleep(1500 * time.Millisecond) // the edge batches them while central is down
	srv.Resume()
	i := slices.Index(det.published, first[0].V)
	if i < 0 {
		t.Fatalf("central's first reading %v was never published", first[0].V)
	}
	want := det.published[i:]

	var got []float64
	rig.Until(t, "every reading of the gap in central's history", 30*time.Second, func() bool {
		got = got[:0]
		for _, p := range gasHistory(t, srv, since) {
			got = append(got, p.V)
		}
		return len(got) >= len(want)
	})
	time.Sleep(time.Second) // a duplicate would come now
	got = got[:0]
	for _, p := range gasHistory(t, srv, since) {
		got = append(got, p.V)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("central's history after the restart:\n got %v\nwant %v", got, want)
	}

	checkSensorAlerts(t, srv, gap[10], gap[20], warn, alarm)
	checkSensorList(t, srv, gap[len(gap)-1])
}

// startGasEdge starts the edge reading the gas sensor from the broker,
// expecting a reading every interval: staleAfter intervals without one
// make the sensor silent.
func startGasEdge(t *testing.T, srv *rig.Central, broker *mosquitto.Broker, warn, alarm float64, interval time.Duration, staleAfter int) *edge.Node {
	t.Helper()
	hyst, zero := 2.0, config.Duration(0)
	node := rig.StartEdge(t, edge.Config{
		EdgeID: sensorEdgeID, SiteID: "village-9", Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: srv.Uplink(300 * time.Millisecond),
		Cameras: []edge.CameraConfig{{ID: "lane-cam", URL: "rtsp://127.0.0.1:1/lane"}},
		Sensors: []sensors.SensorConfig{{ID: gasSensor, Name: "Kitchen", Kind: "gas", Location: "No. 3 Lane", Site: sensorSiteID,
			Source:   sensors.SourceRef{MQTT: &sensors.MQTTRef{Topic: gasTopic}},
			Interval: config.Duration(interval), StaleAfter: staleAfter,
			Warn: &warn, Alarm: &alarm, Hysteresis: &hyst, MinDuration: &zero}},
		SensorInputs: sensors.InputsConfig{MQTT: &sensors.MQTTInputConfig{Broker: broker.URL()}},
	}, edge.Options{UplinkBackoffMin: 100 * time.Millisecond})
	srv.WaitEdge(sensorEdgeID, "", 10*time.Second)
	return node
}

// gasDetector publishes bare values on the gas topic.
type gasDetector struct {
	t         *testing.T
	c         paho.Client
	published []float64
}

func newGasDetector(t *testing.T, broker *mosquitto.Broker) *gasDetector {
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL()).SetClientID("gas-detector"))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect to mosquitto: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return &gasDetector{t: t, c: c}
}

func (d *gasDetector) publish(v float64) {
	d.t.Helper()
	if tok := d.c.Publish(gasTopic, 1, false, strconv.FormatFloat(v, 'f', -1, 64)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		d.t.Fatalf("publish %v: %v", v, tok.Error())
	}
	d.published = append(d.published, v)
	time.Sleep(20 * time.Millisecond)
}

type historyPoint struct {
	T time.Time `json:"t"`
	V float64   `json:"v"`
	N int       `json:"n"`
}

// gasHistory is central's raw history of the gas sensor since from.
func gasHistory(t *testing.T, srv *rig.Central, from time.Time) []historyPoint {
	t.Helper()
	var h struct {
		Step   string         `json:"step"`
		Points []historyPoint `json:"points"`
	}
	q := url.Values{"from": {from.Format(time.RFC3339Nano)}, "to": {time.Now().UTC().Add(time.Minute).Format(time.RFC3339Nano)}}
	srv.GetJSON(fmt.Sprintf("/api/v1/sensors/%s/%s/history?%s", sensorEdgeID, gasSensor, q.Encode()), &h)
	if h.Step != "raw" {
		t.Fatalf("history step %q, want raw", h.Step)
	}
	return h.Points
}

// checkSensorAlerts: the warning and the alarm reached central as alerts
// with their reading, threshold and recent readings, and the all-clear
// ended both.
func checkSensorAlerts(t *testing.T, srv *rig.Central, warnValue, alarmValue, warn, alarm float64) {
	t.Helper()
	var warning, alarmed central.Record
	rig.Until(t, "the warning and the alarm, both ended", 20*time.Second, func() bool {
		warning, alarmed = central.Record{}, central.Record{}
		for _, a := range srv.Alerts(100) {
			switch a.Kind {
			case wire.KindSensorWarning:
				warning = a
			case wire.KindSensorAlarm:
				alarmed = a
			}
		}
		return !warning.Ended.IsZero() && !alarmed.Ended.IsZero()
	})
	for _, c := range []struct {
		rec        central.Record
		sev        wire.Severity
		value, lim float64
		rule       string
	}{
		{warning, wire.Yellow, warnValue, warn, sensors.RuleWarning},
		{alarmed, wire.Red, alarmValue, alarm, sensors.RuleAlarm},
	} {
		s := c.rec.Sensor
		switch {
		case c.rec.Severity != c.sev || c.rec.Source != gasSensor || c.rec.SiteID != "village-9":
			t.Errorf("%s: severity %s source %s site %s", c.rec.Kind, c.rec.Severity, c.rec.Source, c.rec.SiteID)
		case s == nil:
			t.Errorf("%s without its reading", c.rec.Kind)
		case s.Value != c.value || s.Threshold != c.lim || s.Rule != c.rule || s.Unit != "%LEL" || len(s.Recent) == 0:
			t.Errorf("%s reading %+v, want %v over %v by %s with recent readings", c.rec.Kind, s, c.value, c.lim, c.rule)
		case s.Recent[len(s.Recent)-1].Value != c.value:
			t.Errorf("%s: recent readings end at %v, want the reading that raised it", c.rec.Kind, s.Recent[len(s.Recent)-1])
		}
		t.Logf("%s: %s", c.rec.Kind, c.rec.Summary)
	}
	if want := "Gas 45.2 %LEL over alarm 40 %LEL at Kitchen, No. 3 Lane; back to normal at 5.3 %LEL"; alarmed.Summary != want {
		t.Errorf("alarm summary %q, want %q", alarmed.Summary, want)
	}
	if alarmed.Priority != 1 {
		t.Errorf("alarm priority %d, want 1", alarmed.Priority)
	}
}

// checkSensorList: central lists the sensor as the edge's heartbeat
// reports it, back to normal, with a sparkline.
func checkSensorList(t *testing.T, srv *rig.Central, last float64) {
	t.Helper()
	var list struct {
		Sensors []struct {
			Edge, ID, State, Unit string
			SiteID                string `json:"site_id"`
			Value                 float64
			Spark                 []struct{ V float64 }
		} `json:"sensors"`
	}
	rig.Until(t, "the sensor in central's list", 30*time.Second, func() bool {
		srv.GetJSON("/api/v1/sensors?site="+url.QueryEscape(sensorSiteID), &list)
		return len(list.Sensors) == 1 && list.Sensors[0].State == string(sensors.StateNormal)
	})
	s := list.Sensors[0]
	if s.Edge != sensorEdgeID || s.ID != gasSensor || s.Unit != "%LEL" || s.SiteID != sensorSiteID || s.Value != last || len(s.Spark) == 0 {
		t.Errorf("listed sensor %+v", s)
	}
}

// TestSensorsInBrowser: the guard's console in Chromium (playwright-core,
// e2e/sensors.test.mjs with VIGIL_SENSOR_SCENARIO) against a real central
// and edge whose gas sensor, read over MQTT, went over its alarm
// threshold and then fell silent (its publisher stopped; a reading is
// expected every 250 ms and 4 missed make it silent). The script checks
// the alarm's queue card, pop-up and detail (the reading against the
// threshold, coloured, and a chart of the readings before it), the silent
// sensor on the sensor page (with when it last reported) and on the site
// map (linking to its chart), and a guard's acknowledge, dispatch and
// resolve showing in the supervisor's shift report with the reading and
// the disposal.
func TestSensorsInBrowser(t *testing.T) {
	root := repoRoot(t)
	needBrowser(t, root)
	broker := mosquitto.Start(t)
	srv := rig.StartCentral(t, central.Config{Edges: []central.EdgeConfig{rig.Edge(sensorEdgeID, "village-9")}})
	warn, alarm := 20.0, 40.0
	node := startGasEdge(t, srv, broker, warn, alarm, 250*time.Millisecond, 4)
	det := newGasDetector(t, broker)

	since := time.Now().UTC().Add(-time.Minute)
	rig.Until(t, "a first reading in central's history", 20*time.Second, func() bool {
		det.publish(2 + float64(len(det.published))/100)
		return len(gasHistory(t, srv, since)) > 0
	})
	for i := range 10 {
		det.publish(5 + float64(i)/10)
	}
	const alarmValue = 45.5
	var alarmed central.Record
	rig.Until(t, "the gas alarm in central", 20*time.Second, func() bool {
		det.publish(alarmValue)
		for _, a := range srv.Alerts(100) {
			if a.Kind == wire.KindSensorAlarm && a.Sensor != nil {
				alarmed = a
				return true
			}
		}
		return false
	})
	last := det.published[len(det.published)-1]
	// The publisher stops: the sensor falls silent, and the edge's next
	// heartbeat (sent now, not in 10 s) says so.
	var listed struct {
		Sensors []struct {
			ID, State string
			Time      time.Time
		} `json:"sensors"`
	}
	rig.Until(t, "the sensor silent in central's list", 20*time.Second, func() bool {
		node.Uplink().Beat()
		time.Sleep(100 * time.Millisecond)
		srv.GetJSON("/api/v1/sensors", &listed)
		return len(listed.Sensors) == 1 && listed.Sensors[0].State == string(sensors.StateSilent)
	})

	data := t.TempDir()
	users := map[string]map[string]string{}
	for _, role := range []string{central.RoleGuard, central.RoleSupervisor} {
		name, pw := "sensor-"+role, "password-of-sensor-"+role+"-0123456789"
		if resp, b := srv.Do(http.MethodPost, "/api/v1/users", map[string]any{"name": name, "role": role, "password": pw, "replace": true}); resp.StatusCode/100 != 2 {
			t.Fatalf("add user %s: %s %s", name, resp.Status, b)
		}
		users[role] = map[string]string{"user": name, "password": pw}
	}
	writeJSONFile(t, filepath.Join(data, "credentials.json"), map[string]any{"users": users})
	scenario, err := json.Marshal(map[string]any{"edge": sensorEdgeID, "sensor": gasSensor, "alert": alarmed.ID, "value": alarmValue,
		"warn": warn, "alarm": alarm, "last": last, "last_time": listed.Sensors[0].Time, "recent": len(alarmed.Sensor.Recent), "unit": "%LEL"})
	if err != nil {
		t.Fatal(err)
	}
	shots := os.Getenv("VIGIL_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if !filepath.IsAbs(shots) {
		shots = filepath.Join(root, shots)
	}
	ctx, cancel := context.WithTimeout(context.Background(), scriptLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("e2e", "sensors.test.mjs"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "VIGIL_URL="+srv.URL(""), "VIGIL_DATA="+data, "VIGIL_SCREENSHOTS="+shots,
		"VIGIL_SENSOR_SCENARIO="+string(scenario))
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node sensors.test.mjs: %v after %s\n%s", err, time.Since(start).Round(time.Millisecond), out)
	}
	t.Logf("node sensors.test.mjs passed in %s\n%s", time.Since(start).Round(time.Millisecond), out)
}

// needBrowser fails the test when Chromium, Node.js or playwright-core
// is missing (`make test` installs them).
func needBrowser(t *testing.T, root string) {
	t.Helper()
	var missing []string
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, chromium)
	}
	if _, err := os.Stat(filepath.Join(root, "node_modules", "playwright-core", "package.json")); err != nil {
		missing = append(missing, "node_modules/playwright-core (npm ci)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node")
	}
	if len(missing) > 0 {
		t.Fatalf("browser tests need %s; `make test` installs them", strings.Join(missing, ", "))
	}
}

func writeJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
