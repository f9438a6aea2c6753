package sensors

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/bench/procstat"
	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/testrig/mosquitto"
	"github.com/vigil-perimeter/vigil/internal/testrig/rig"
	"github.com/vigil-perimeter/vigil/sensors"
	"github.com/vigil-perimeter/vigil/sensors/sim"
)

const (
	edgeID     = "bench-sensors"
	siteID     = "bench-village"
	adminToken = rig.AdminToken
	baseTopic  = "zigbee2mqtt"
)

// quiet logs errors only (the test's log stays readable).
func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{}, &slog.HandlerOptions{Level: slog.LevelError}))
}

type testWriter struct{}

func (testWriter) Write(p []byte) (int, error) { fmt.Print(string(p)); return len(p), nil }

// modbusDevices are sz.modbus registers over devices of registersPer:
// cable temperatures holding steady around 30 °C.
func modbusDevices(n int) []sim.ModbusDevice {
	var out []sim.ModbusDevice
	for d := 0; n > 0; d++ {
		k := min(n, registersPer)
		dev := sim.ModbusDevice{ID: fmt.Sprintf("box-%d", d+1), UnitID: uint8(d + 1)}
		for i := range k {
			dev.Sensors = append(dev.Sensors, sim.Sensor{ID: fmt.Sprintf("mb-%d-%03d", d+1, i), Kind: "cable_temperature",
				Scenario: sim.Steady, Base: 25 + float64(i%10)})
		}
		out = append(out, dev)
		n -= k
	}
	return out
}

// mqttSensors are n residual-current monitors holding steady.
func mqttSensors(n int) []sim.Sensor {
	out := make([]sim.Sensor, n)
	for i := range out {
		out[i] = sim.Sensor{ID: fmt.Sprintf("mq-%03d", i), Kind: "residual_current", Scenario: sim.Steady, Base: 50 + float64(i%100)}
	}
	return out
}

// runPhase runs central, one edge and sz's simulated sensors, waits
// until readings reach central, then measures for sz.phase.
func runPhase(t *testing.T, name string, sz size) phaseResult {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := rig.StartCentral(t, central.Config{Edges: []central.EdgeConfig{rig.Edge(edgeID, siteID)}})
	cfg := edge.Config{
		EdgeID: edgeID, SiteID: siteID, Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: srv.Uplink(500 * time.Millisecond),
		// A camera nobody serves: an edge needs one; both phases have it.
		Cameras: []edge.CameraConfig{{ID: "cam", URL: "rtsp://127.0.0.1:1/none"}},
	}
	var sample []string
	if sz.modbus > 0 {
		mb, err := sim.StartModbus(sim.ModbusConfig{Address: "127.0.0.1:0", Devices: modbusDevices(sz.modbus)})
		if err != nil {
			t.Fatal(err)
		}
		defer mb.Close()
		list, mc := mb.EdgeConfig(time.Second)
		cfg.Sensors = append(cfg.Sensors, list...)
		cfg.SensorInputs.Modbus = mc
		for i := range sampledSensors / 2 {
			sample = append(sample, list[i*len(list)/(sampledSensors/2)].ID)
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	if sz.mqtt > 0 {
		b := mosquitto.Start(t)
		list := mqttSensors(sz.mqtt)
		for i, s := range list {
			cfg.Sensors = append(cfg.Sensors, s.SensorConfig(sensors.SourceRef{MQTT: &sensors.MQTTRef{Device: s.ID, Field: s.MQTTField()}}, time.Second))
			if i%(len(list)/(sampledSensors/2)) == 0 && len(sample) < sampledSensors {
				sample = append(sample, s.ID)
			}
		}
		cfg.SensorInputs.MQTT = &sensors.MQTTInputConfig{Broker: b.URL(), BaseTopic: baseTopic}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sim.RunMQTT(ctx, sim.MQTTConfig{Broker: b.URL(), BaseTopic: baseTopic, Sensors: list, Interval: time.Second}); err != nil {
				t.Error(err)
			}
		}()
	}
	zero := config.Duration(0)
	for i := range cfg.Sensors {
		cfg.Sensors[i].MinDuration = &zero
	}
	node := rig.StartEdge(t, cfg, edge.Options{Log: quiet(), UplinkBackoffMin: 100 * time.Millisecond})
	defer node.Close()
	srv.WaitEdge(edgeID, "", 20*time.Second)
	if len(sample) > 0 {
		rig.Until(t, "every sampled sensor's readings at central", 60*time.Second, func() bool {
			for _, id := range sample {
				if !hasHistory(srv, id) {
					return false
				}
			}
			return true
		})
	} else {
		time.Sleep(5 * time.Second) // settle as the loaded phase does
	}

	lat := &latencies{}
	stop := make(chan struct{})
	var watchers sync.WaitGroup
	for _, id := range sample {
		watchers.Add(1)
		go func() {
			defer watchers.Done()
			if err := watchHistory(srv.URL(""), edgeID, id, lat, stop); err != nil {
				t.Error(err)
			}
		}()
	}
	cpu0, at0 := procstat.SelfCPU(), time.Now()
	time.Sleep(sz.phase)
	close(stop)
	watchers.Wait()
	r := phaseResult{Name: name, ModbusSensors: sz.modbus, MQTTSensors: sz.mqtt}
	r.Seconds = time.Since(at0).Seconds()
	r.CPUPercent = 100 * (procstat.SelfCPU() - cpu0).Seconds() / r.Seconds
	r.RSSMiB, r.HeapMiB, r.LoadAvg = procstat.RSSMiB(), procstat.HeapMiB(), procstat.LoadAvg()
	summarise(&r, lat)
	if len(sample) > 0 {
		checkAllArrived(t, srv, cfg.Sensors)
	}
	return r
}

// hasHistory: central holds readings of the sensor from the last minute.
func hasHistory(srv *rig.Central, id string) bool {
	var h struct {
		Points []struct{} `json:"points"`
	}
	from := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339Nano)
	to := time.Now().UTC().Add(time.Minute).Format(time.RFC3339Nano)
	srv.GetJSON(fmt.Sprintf("/api/v1/sensors/%s/%s/history?from=%s&to=%s", edgeID, id, from, to), &h)
	return len(h.Points) > 0
}

// checkAllArrived: every sensor, not only the sampled ones, has readings
// at central and reports a fresh value in the console's list.
func checkAllArrived(t *testing.T, srv *rig.Central, list []sensors.SensorConfig) {
	var ans struct {
		Sensors []struct {
			ID    string    `json:"id"`
			State string    `json:"state"`
			Time  time.Time `json:"time"`
		} `json:"sensors"`
	}
	srv.GetJSON("/api/v1/sensors", &ans)
	fresh := map[string]bool{}
	for _, s := range ans.Sensors {
		if time.Since(s.Time) < 30*time.Second && s.State == "normal" {
			fresh[s.ID] = true
		}
	}
	missing := 0
	for _, s := range list {
		if !fresh[s.ID] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d sensors without a fresh normal reading in central's list", missing, len(list))
	}
}
