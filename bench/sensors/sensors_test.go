// Package sensors benchmarks the safety-sensor path (issue #22): one
// edge polling 500 Modbus registers at 1 Hz (4 simulated devices of 125
// registers, sensors/sim's Modbus TCP server) plus 500 MQTT sensors
// each publishing once a second (Zigbee2MQTT-style JSON through a real
// mosquitto), for a minute, beside the same edge with no sensors.
//
// Measured per phase: the process's CPU (central, the edge, the
// simulators and the publisher all run in this test process, so the
// difference between the phases is the sensor path end to end, the
// simulators included), its RSS and Go heap after a GC; and reading →
// console latency: the time from a reading's timestamp (taken by the
// edge as it polls the register or receives the MQTT message) to the
// moment the reading is in central's history as the console's chart
// reads it (GET /api/v1/sensors/{edge}/{sensor}/history), sampled on
// sampledSensors sensors polled every pollEvery (so each figure is an
// upper bound, late by up to pollEvery).
//
// By default (go test ./...) a short run of 10 s per phase with 100 + 100
// sensors checks that the bench works and every sensor reaches central;
// VIGIL_BENCH=1 runs the full minute with 500 + 500 sensors, requires
// p99 ≤ 1 s, prints the table and writes BENCH_SENSORS_OUT (default
// bench-sensors.json at the repository root).
package sensors

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Bench sizes.
const (
	devices        = 4   // Modbus devices of registersPer registers each
	registersPer   = 125 // one Modbus read of 125 registers per device and poll
	sampledSensors = 6   // latency: half Modbus, half MQTT
	pollEvery      = 100 * time.Millisecond
	p99Target      = time.Second
)

// size is one run's scale.
type size struct {
	modbus, mqtt int
	phase        time.Duration
	full         bool
}

func sizeFromEnv() size {
	if os.Getenv("VIGIL_BENCH") != "" {
		return size{modbus: devices * registersPer, mqtt: 500, phase: time.Minute, full: true}
	}
	return size{modbus: 100, mqtt: 100, phase: 10 * time.Second}
}

// phaseResult is one phase's figures.
type phaseResult struct {
	Name          string  `json:"name"`
	ModbusSensors int     `json:"modbus_sensors"`
	MQTTSensors   int     `json:"mqtt_sensors"`
	Seconds       float64 `json:"seconds"`
	CPUPercent    float64 `json:"cpu_percent_of_one_core"`
	RSSMiB        float64 `json:"rss_mib"`
	HeapMiB       float64 `json:"go_heap_inuse_mib"`
	Readings      int     `json:"readings_sampled,omitempty"`
	P50ms         float64 `json:"latency_p50_ms,omitempty"`
	P99ms         float64 `json:"latency_p99_ms,omitempty"`
	Maxms         float64 `json:"latency_max_ms,omitempty"`
	P99ModbusMs   float64 `json:"latency_p99_modbus_ms,omitempty"`
	P99MQTTms     float64 `json:"latency_p99_mqtt_ms,omitempty"`
	// LoadAvg is the machine's 1-minute load average at the phase's end
	// (other work on the machine shows in every figure).
	LoadAvg float64 `json:"load_avg_1m"`
}

func TestSensorBench(t *testing.T) {
	sz := sizeFromEnv()
	idle := runPhase(t, "idle edge (0 sensors)", size{phase: sz.phase, full: sz.full})
	load := runPhase(t, "sensors", sz)
	if load.Readings == 0 {
		t.Fatal("no sampled reading reached central")
	}
	results := []phaseResult{idle, load}
	var b strings.Builder
	fmt.Fprintf(&b, "%-24s %7s %6s %8s %8s %8s %9s %8s %8s %8s %11s %9s %5s\n", "phase", "modbus", "mqtt", "cpu %", "rss MiB", "heap MiB",
		"readings", "p50 ms", "p99 ms", "max ms", "p99 modbus", "p99 mqtt", "load")
	for _, r := range results {
		fmt.Fprintf(&b, "%-24s %7d %6d %8.1f %8.1f %8.1f %9d %8.0f %8.0f %8.0f %11.0f %9.0f %5.1f\n", r.Name, r.ModbusSensors, r.MQTTSensors,
			r.CPUPercent, r.RSSMiB, r.HeapMiB, r.Readings, r.P50ms, r.P99ms, r.Maxms, r.P99ModbusMs, r.P99MQTTms, r.LoadAvg)
	}
	t.Logf("safety sensors, %s per phase, %d CPUs:\n%s", sz.phase, runtime.NumCPU(), b.String())
	if !sz.full {
		return
	}
	fmt.Print(b.String())
	out := os.Getenv("BENCH_SENSORS_OUT")
	if out == "" {
		out = filepath.Join("..", "..", "bench-sensors.json")
	}
	j, _ := json.MarshalIndent(map[string]any{"phase_seconds": sz.phase.Seconds(), "cpus": runtime.NumCPU(),
		"p99_target_ms": p99Target.Milliseconds(), "phases": results}, "", "  ")
	if err := os.WriteFile(out, append(j, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	if time.Duration(load.P99ms*float64(time.Millisecond)) > p99Target {
		t.Errorf("reading → console p99 %.0f ms, target ≤ %v", load.P99ms, p99Target)
	}
}

// latencies collects reading → central delays, all and by source.
type latencies struct {
	mu       sync.Mutex
	d        []time.Duration
	bySource map[string][]time.Duration
}

func (l *latencies) add(source string, d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	if l.bySource == nil {
		l.bySource = map[string][]time.Duration{}
	}
	l.bySource[source] = append(l.bySource[source], d)
	l.mu.Unlock()
}

// quantile of the sorted delays, in ms.
func quantile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(len(sorted)-1, int(q*float64(len(sorted))))
	return float64(sorted[i]) / float64(time.Millisecond)
}

// watchHistory polls one sensor's raw history at central every
// pollEvery from the newest point it has seen, recording for each new
// point how long after its reading time it was first seen, until stop.
func watchHistory(base, edgeID, sensor string, lat *latencies, stop <-chan struct{}) error {
	since := time.Now().UTC()
	seen := map[string]bool{}
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-stop:
				return nil
			case <-tick.C:
			}
		}
		q := url.Values{"from": {since.Add(-2 * time.Second).Format(time.RFC3339Nano)}, "to": {time.Now().UTC().Add(time.Minute).Format(time.RFC3339Nano)}}
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/v1/sensors/%s/%s/history?%s", base, edgeID, sensor, q.Encode()), nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		var h struct {
			Step   string `json:"step"`
			Points []struct {
				T time.Time `json:"t"`
			} `json:"points"`
		}
		err = json.NewDecoder(resp.Body).Decode(&h)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("history of %s: %d %v", sensor, resp.StatusCode, err)
		}
		now := time.Now()
		for _, p := range h.Points {
			k := p.T.Format(time.RFC3339Nano)
			if seen[k] {
				continue
			}
			seen[k] = true
			if !first { // the first answer holds readings from before the watch began
				lat.add(sourceOf(sensor), now.Sub(p.T))
			}
			if p.T.After(since) {
				since = p.T
			}
		}
	}
}

// summarise fills r's latency figures.
func summarise(r *phaseResult, lat *latencies) {
	lat.mu.Lock()
	d := slices.Clone(lat.d)
	lat.mu.Unlock()
	slices.Sort(d)
	r.Readings = len(d)
	r.P50ms, r.P99ms, r.Maxms = quantile(d, 0.5), quantile(d, 0.99), quantile(d, 1)
	lat.mu.Lock()
	defer lat.mu.Unlock()
	for src, ds := range lat.bySource {
		ds = slices.Clone(ds)
		slices.Sort(ds)
		if src == "modbus" {
			r.P99ModbusMs = quantile(ds, 0.99)
		} else {
			r.P99MQTTms = quantile(ds, 0.99)
		}
	}
}

// sourceOf: the bench's Modbus sensors are mb-*, its MQTT ones mq-*.
func sourceOf(sensor string) string {
	if strings.HasPrefix(sensor, "mb-") {
		return "modbus"
	}
	return "mqtt"
}
