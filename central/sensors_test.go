package central

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

// sensorHistoryOut is GET /api/v1/sensors/{edge}/{sensor}/history.
type sensorHistoryOut struct {
	Edge   string        `json:"edge"`
	Sensor string        `json:"sensor"`
	Unit   string        `json:"unit"`
	Step   string        `json:"step"`
	Points []sensorPoint `json:"points"`
}

func readings(sensor string, from time.Time, every time.Duration, values ...float64) []wire.SensorPoint {
	var out []wire.SensorPoint
	for i, v := range values {
		out = append(out, wire.SensorPoint{Sensor: sensor, Time: from.Add(time.Duration(i) * every), Value: v})
	}
	return out
}

func sensorHistory(t *testing.T, b *browser, edge, sensor string, from, to time.Time) sensorHistoryOut {
	t.Helper()
	q := url.Values{"from": {from.Format(time.RFC3339Nano)}, "to": {to.Format(time.RFC3339Nano)}}
	resp, body := b.do(http.MethodGet, "/api/v1/sensors/"+edge+"/"+sensor+"/history?"+q.Encode(), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("history %s/%s: %d %s", edge, sensor, resp.StatusCode, body)
	}
	var h sensorHistoryOut
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// A batch is stored once however often the edge re-sends it (the ack
// was lost), and every re-send is acknowledged again.
func TestSensorBatchStoredOnce(t *testing.T) {
	s := startServer(t)
	e := connectEdge(t, s, northID, northToken)
	start := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Minute)
	b := wire.SensorBatch{ID: "sb-1", Points: readings("gas-kitchen", start, 10*time.Second, 1, 2, 3, 4, 5, 6)}
	for range 3 {
		e.send(wire.TypeSensorBatch, b)
		e.expectAck(b.ID)
	}
	// The same readings under a new batch ID are a new batch (an edge
	// never sends one twice under two IDs); here it proves the store
	// still counts after a duplicate.
	e.send(wire.TypeSensorBatch, wire.SensorBatch{ID: "sb-2", Points: readings("gas-kitchen", start.Add(time.Minute), 10*time.Second, 10, 20)})
	e.expectAck("sb-2")

	guard := signIn(t, s, "g1", RoleGuard)
	raw := sensorHistory(t, guard, northID, "gas-kitchen", start, start.Add(time.Hour))
	if raw.Step != "raw" || len(raw.Points) != 8 {
		t.Fatalf("raw history: step %s, %d points %+v; want 8 raw", raw.Step, len(raw.Points), raw.Points)
	}
	for i, want := range []float64{1, 2, 3, 4, 5, 6, 10, 20} {
		if p := raw.Points[i]; p.V != want || p.N != 1 {
			t.Errorf("raw point %d: %+v, want %v", i, p, want)
		}
	}
	mins := sensorHistory(t, guard, northID, "gas-kitchen", start.Add(-3*time.Hour), start.Add(time.Hour))
	if mins.Step != "1m" || len(mins.Points) != 2 {
		t.Fatalf("1m history: step %s %+v; want 2 minutes", mins.Step, mins.Points)
	}
	if p := mins.Points[0]; !p.T.Equal(start) || p.N != 6 || p.V != 3.5 || p.Min != 1 || p.Max != 6 {
		t.Errorf("first minute %+v: want 6 readings, mean 3.5, 1..6 (stored once)", p)
	}
	if p := mins.Points[1]; p.N != 2 || p.V != 15 {
		t.Errorf("second minute %+v: want 2 readings, mean 15", p)
	}
	if got := metricValue(t, s, "vigil_central_sensor_batches_total", "result", "duplicate"); got != 2 {
		t.Errorf("duplicate batches counted %v, want 2", got)
	}
	if got := metricValue(t, s, "vigil_central_sensor_points_total"); got != 8 {
		t.Errorf("points counted %v, want 8", got)
	}
}

// The step follows the range: raw up to 2 h, 1-minute intervals up to
// 7 days, 15-minute beyond; readings older than 24 h are kept only as
// their minutes, and the edge's own downsampled points count as many
// readings as they stand for.
func TestSensorHistorySteps(t *testing.T) {
	s := startServer(t)
	e := connectEdge(t, s, northID, northToken)
	now := time.Now().UTC()
	quarter := now.Add(-3 * time.Hour).Truncate(15 * time.Minute)
	// 30 minutes at one reading a minute: 0..29 (two quarters).
	recent := readings("cable-3", quarter, time.Minute, seq(30)...)
	// Two days ago, as the edge downsampled it: one point for 60 readings.
	old := now.Add(-48 * time.Hour).Truncate(time.Minute)
	recent = append(recent, wire.SensorPoint{Sensor: "cable-3", Time: old, Value: 40, Min: 35, Max: 47, Count: 60})
	e.send(wire.TypeSensorBatch, wire.SensorBatch{ID: "steps", Points: recent})
	e.expectAck("steps")

	viewer := signIn(t, s, "i1", RoleInstaller) // any signed-in role reads sensors
	raw := sensorHistory(t, viewer, northID, "cable-3", quarter, quarter.Add(2*time.Hour))
	if raw.Step != "raw" || len(raw.Points) != 30 || raw.Points[29].V != 29 {
		t.Errorf("2 h: step %s, %d points; want 30 raw", raw.Step, len(raw.Points))
	}
	oldRaw := sensorHistory(t, viewer, northID, "cable-3", old.Add(-time.Minute), old.Add(time.Hour))
	if len(oldRaw.Points) != 0 {
		t.Errorf("raw readings older than 24 h kept: %+v", oldRaw.Points)
	}
	mins := sensorHistory(t, viewer, northID, "cable-3", now.Add(-72*time.Hour), now)
	if mins.Step != "1m" || len(mins.Points) != 31 {
		t.Fatalf("3 d: step %s, %d points; want 1m, 31", mins.Step, len(mins.Points))
	}
	if p := mins.Points[0]; !p.T.Equal(old) || p.N != 60 || p.V != 40 || p.Min != 35 || p.Max != 47 {
		t.Errorf("downsampled minute: %+v", p)
	}
	quarters := sensorHistory(t, viewer, northID, "cable-3", now.Add(-10*24*time.Hour), now)
	if quarters.Step != "15m" || len(quarters.Points) != 3 {
		t.Fatalf("10 d: step %s, %+v; want 15m, 3 points", quarters.Step, quarters.Points)
	}
	for i, want := range []sensorPoint{
		{T: old.Truncate(15 * time.Minute), V: 40, Min: 35, Max: 47, N: 60},
		{T: quarter, V: 7, Min: 0, Max: 14, N: 15},
		{T: quarter.Add(15 * time.Minute), V: 22, Min: 15, Max: 29, N: 15},
	} {
		if p := quarters.Points[i]; !p.T.Equal(want.T) || p.V != want.V || p.Min != want.Min || p.Max != want.Max || p.N != want.N {
			t.Errorf("quarter %d: %+v, want %+v", i, p, want)
		}
	}
	resp, _ := viewer.do(http.MethodGet, "/api/v1/sensors/no-such-edge/cable-3/history", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown edge: %d, want 404", resp.StatusCode)
	}
	resp, body := viewer.do(http.MethodGet, "/api/v1/sensors/"+northID+"/cable-3/history?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", nil)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("from after to: %d %s, want 400", resp.StatusCode, body)
	}
}

func seq(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(i)
	}
	return out
}

// GET /api/v1/sensors lists each edge's sensors as its latest heartbeat
// says, with the last hour's minutes as a sparkline, filtered by site.
func TestSensorsList(t *testing.T) {
	s := startServer(t)
	e := connectEdge(t, s, northID, northToken)
	now := time.Now().UTC()
	warn, alarm := 10.0, 25.0
	e.send(wire.TypeHeartbeat, wire.Heartbeat{Time: now, Sensors: []wire.SensorStatus{
		{ID: "gas-kitchen", Name: "Kitchen gas", Kind: "gas", Unit: "%LEL", Location: "No. 3 Lane", SiteID: siteID + "/lane-3",
			State: "warning", Value: 12.5, Time: now, Warn: &warn, Alarm: &alarm},
		{ID: "leak-1", Kind: "water_leak", State: "normal", Time: now},
	}})
	start := now.Add(-5 * time.Minute).Truncate(time.Minute)
	e.send(wire.TypeSensorBatch, wire.SensorBatch{ID: "spark", Points: readings("gas-kitchen", start, 30*time.Second, 2, 4, 6, 8)})
	e.expectAck("spark") // the heartbeat before it is taken too (one reader, in order)

	police := signIn(t, s, "p1", RolePolice)
	var list struct {
		Sensors []sensorOut `json:"sensors"`
	}
	get := func(q string) {
		t.Helper()
		resp, body := police.do(http.MethodGet, "/api/v1/sensors"+q, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("sensors%s: %d %s", q, resp.StatusCode, body)
		}
		list.Sensors = nil
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatal(err)
		}
	}
	get("")
	if len(list.Sensors) != 2 {
		t.Fatalf("sensors: %+v, want 2", list.Sensors)
	}
	g := list.Sensors[0]
	if g.Edge != northID || g.ID != "gas-kitchen" || g.State != "warning" || g.Value != 12.5 || g.Unit != "%LEL" ||
		g.Warn == nil || *g.Warn != 10 || g.SiteID != siteID+"/lane-3" {
		t.Errorf("gas sensor: %+v", g)
	}
	if len(g.Spark) != 2 || g.Spark[0].V != 3 || g.Spark[1].V != 7 {
		t.Errorf("sparkline %+v, want minutes of mean 3 and 7", g.Spark)
	}
	if l := list.Sensors[1]; l.SiteID != siteID || len(l.Spark) != 0 || l.Spark == nil {
		t.Errorf("leak sensor: %+v (site: the edge's; no readings: empty sparkline)", l)
	}
	get("?site=" + url.QueryEscape(siteID+"/lane-3"))
	if len(list.Sensors) != 1 || list.Sensors[0].ID != "gas-kitchen" {
		t.Errorf("site lane-3: %+v", list.Sensors)
	}
	get("?site=elsewhere")
	if len(list.Sensors) != 0 {
		t.Errorf("site elsewhere: %+v", list.Sensors)
	}
	h := sensorHistory(t, police, northID, "gas-kitchen", start, now)
	if h.Unit != "%LEL" || len(h.Points) != 4 {
		t.Errorf("history: %+v", h)
	}
	// Its edge gone, a sensor is still listed as last heard, marked as
	// such: nobody knows its state now.
	get("")
	if !list.Sensors[0].EdgeOnline {
		t.Errorf("sensor of a connected edge: %+v", list.Sensors[0])
	}
	e.ws.Close()
	eventually(t, "the sensors marked as of an offline edge", func() bool {
		get("")
		return len(list.Sensors) == 2 && !list.Sensors[0].EdgeOnline && !list.Sensors[1].EdgeOnline && list.Sensors[0].State == "warning"
	})
}

// A sensor alert keeps its reading in the record, and a sensor's alarm
// ranks with fire and SOS.
func TestSensorAlertRecord(t *testing.T) {
	s := startServer(t)
	e := connectEdge(t, s, northID, northToken)
	now := time.Now().UTC()
	a := wire.Alert{ID: "gas-alarm-1", EdgeID: northID, SiteID: siteID, Source: "gas-kitchen", Kind: wire.KindSensorAlarm,
		Severity: wire.Red, Time: now, Summary: "Gas 27.5 %LEL over alarm 25 %LEL at Kitchen",
		Sensor: &wire.SensorAlert{Sensor: "gas-kitchen", Kind: "gas", Unit: "%LEL", Value: 27.5, Rule: "alarm", Threshold: 25,
			Recent: readings("gas-kitchen", now.Add(-time.Minute), 30*time.Second, 20, 27.5)}}
	e.sendAlert(a)
	var rec Record
	if resp := getJSON(t, s, "/api/v1/alerts/"+a.ID, &rec); resp.StatusCode != http.StatusOK {
		t.Fatalf("alert: %d", resp.StatusCode)
	}
	if rec.Sensor == nil || rec.Sensor.Value != 27.5 || rec.Sensor.Threshold != 25 || len(rec.Sensor.Recent) != 2 {
		t.Errorf("record's sensor: %+v", rec.Sensor)
	}
	if rec.Priority != 1 {
		t.Errorf("sensor.alarm priority %d, want 1", rec.Priority)
	}
}

// A malformed batch ends the connection unacknowledged, like a bad alert.
func TestSensorBatchRejected(t *testing.T) {
	s := startServer(t)
	e := connectEdge(t, s, northID, northToken)
	e.send(wire.TypeSensorBatch, wire.SensorBatch{ID: "empty"})
	if ce := e.expectClosed(); ce == nil || ce.Code != 1003 {
		t.Errorf("empty batch: close %v, want 1003 (unsupported data)", ce)
	}
}
