package modbus

import (
	"fmt"
	"log/slog"
	"math"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/sensors"
	"github.com/vigil-perimeter/vigil/sensors/sensorstest"
)

var quiet = slog.New(slog.DiscardHandler)

// sensorsFor maps every register but those in skip to sensor "s-<name>".
func sensorsFor(model []sensors.RegisterConfig, skip ...string) map[string]string {
	out := map[string]string{}
	for _, r := range model {
		if !strings.Contains(" "+strings.Join(skip, " ")+" ", " "+r.Name+" ") {
			out[r.Name] = "s-" + r.Name
		}
	}
	return out
}

func device(addr string, poll, timeout time.Duration) sensors.ModbusDeviceConfig {
	return sensors.ModbusDeviceConfig{ID: "meter", Address: addr, UnitID: 1, Model: "test",
		Poll: config.Duration(poll), Timeout: config.Duration(timeout)}
}

func split32(v uint32) (hi, lo uint16) { return uint16(v >> 16), uint16(v) }

// TestValuesAgainstPymodbus: every type, scale and offset, both word
// orders and all four tables, read from pymodbus; values the test
// changes show up in the next polls.
func TestValuesAgainstPymodbus(t *testing.T) {
	srv := startPymodbus(t)
	model := []sensors.RegisterConfig{
		{Name: "rc", Address: 0, Scale: 0.1, Unit: "mA"},
		{Name: "neg", Address: 1, Type: "int16"},
		{Name: "neg_scaled", Address: 1, Type: "int16", Scale: 0.5, Offset: 2},
		{Name: "u32", Address: 2, Type: "uint32"},
		{Name: "i32le", Address: 4, Type: "int32", WordOrder: "little"},
		{Name: "f32", Address: 6, Type: "float32"},
		{Name: "f32le", Address: 8, Type: "float32", WordOrder: "little", Scale: 2, Offset: 1},
		{Name: "far", Address: 200},
		{Name: "unused", Address: 300},
		{Name: "lel", Table: "input", Address: 10, Scale: 0.1},
		{Name: "relay", Table: "coil", Address: 3},
		{Name: "smoke", Table: "discrete", Address: 7},
	}
	reg := prometheus.NewRegistry()
	d, err := New(device(srv.addr(), 100*time.Millisecond, time.Second), model, sensorsFor(model, "unused"), Options{Registerer: reg, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if n := d.Requests(); n != 5 { // holding 0-9, holding 200, input 10, coil 3, discrete 7
		t.Fatalf("requests per poll = %d, want 5", n)
	}

	c := srv.client()
	u32hi, u32lo := split32(70000)
	i32hi, i32lo := split32(uint32(0xFFFE7960)) // -100000
	f32hi, f32lo := split32(math.Float32bits(61.5))
	lehi, lelo := split32(math.Float32bits(12.25))
	if err := c.WriteRegisters(0, []uint16{345, 0xFFF6, u32hi, u32lo, i32lo, i32hi, f32hi, f32lo, lelo, lehi}); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteRegister(200, 4242); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteCoil(3, true); err != nil {
		t.Fatal(err)
	}
	srv.set("ir", 10, 123)
	srv.set("di", 7, 1)

	tenth := 0.1 // computed at run time, as the decoder does
	got := sensorstest.Run(t, d)
	got.WaitFor(t, map[string]float64{
		"s-rc": 345 * tenth, "s-neg": -10, "s-neg_scaled": -3, "s-u32": 70000, "s-i32le": -100000,
		"s-f32": 61.5, "s-f32le": 25.5, "s-far": 4242, "s-lel": 123 * tenth, "s-relay": 1, "s-smoke": 1,
	})
	if _, read := got.Last["s-unused"]; read {
		t.Fatal("a register no sensor uses was read")
	}

	// Changes by Modbus writes and behind pymodbus's back.
	if err := c.WriteRegister(0, 612); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteCoil(3, false); err != nil {
		t.Fatal(err)
	}
	srv.set("ir", 10, 250)
	srv.set("di", 7, 0)
	got.WaitFor(t, map[string]float64{"s-rc": 612 * tenth, "s-lel": 250 * tenth, "s-relay": 0, "s-smoke": 0})

	// One poll's readings (11 sensors) share its time, in UTC.
	got.Drain()
	perTime := map[time.Time]int{}
	for complete := false; !complete; {
		r := <-got.C
		if r.Time.Location() != time.UTC {
			t.Fatalf("reading time %v is not UTC", r.Time)
		}
		perTime[r.Time]++
		if perTime[r.Time] > 11 || len(perTime) > 3 {
			t.Fatalf("readings per poll time: %v, want 11 at one time", perTime)
		}
		complete = perTime[r.Time] == 11
	}
	for _, k := range kinds {
		if n := testutil.ToFloat64(d.metrics.errors[k]); n != 0 {
			t.Errorf("errors{kind=%s} = %v, want 0", k, n)
		}
	}
	if testutil.ToFloat64(d.metrics.polls) < 3 || testutil.ToFloat64(d.metrics.up) != 1 {
		t.Fatalf("polls %v, up %v", testutil.ToFloat64(d.metrics.polls), testutil.ToFloat64(d.metrics.up))
	}

}

// TestExceptionCostsOnlyItsRequest: a device whose map names a register
// pymodbus does not have answers that request with an exception; the
// other request still reads, and the device is up. Two devices share one
// registry, each with its own series.
func TestExceptionCostsOnlyItsRequest(t *testing.T) {
	srv := startPymodbus(t)
	srv.set("hr", 200, 4242)
	reg := prometheus.NewRegistry()
	good := []sensors.RegisterConfig{{Name: "far", Address: 200}}
	d, err := New(device(srv.addr(), 100*time.Millisecond, time.Second), good, sensorsFor(good), Options{Registerer: reg, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	sensorstest.Run(t, d).WaitFor(t, map[string]float64{"s-far": 4242})

	broken := []sensors.RegisterConfig{{Name: "ok", Address: 200}, {Name: "missing", Address: 1500}}
	dev := device(srv.addr(), 100*time.Millisecond, time.Second)
	dev.ID = "meter-b"
	d2, err := New(dev, broken, sensorsFor(broken), Options{Registerer: reg, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	got2 := sensorstest.Run(t, d2)
	got2.WaitFor(t, map[string]float64{"s-ok": 4242})
	waitUntil(t, "exceptions counted", func() bool { return testutil.ToFloat64(d2.metrics.errors[kindException]) >= 2 })
	got2.Drain()
	if r := <-got2.C; r.Sensor != "s-ok" || r.Value != 4242 {
		t.Fatalf("after exceptions: %+v", r)
	}
	if testutil.ToFloat64(d2.metrics.up) != 1 {
		t.Fatal("a device that answers with exceptions is not down")
	}
	if _, read := got2.Last["s-missing"]; read {
		t.Fatal("a reading for a register the device refused")
	}
	if n := testutil.ToFloat64(d.metrics.errors[kindException]); n != 0 {
		t.Fatalf("the good device counted %v exceptions", n)
	}
	if n, err := testutil.GatherAndCount(reg, "vigil_sensor_modbus_errors_total"); err != nil || n != 2*len(kinds) {
		t.Fatalf("%d error series (%v), want %d: one per device and kind", n, err, 2*len(kinds))
	}
}

// TestTwoRequests: 130 neighbouring registers take two requests (the
// protocol allows 125 per read), and every value arrives.
func TestTwoRequests(t *testing.T) {
	srv := startPymodbus(t)
	var model []sensors.RegisterConfig
	var values []uint16
	want := map[string]float64{}
	for i := 0; i < 130; i++ {
		name := fmt.Sprintf("r%d", i)
		model = append(model, sensors.RegisterConfig{Name: name, Address: uint16(i)})
		values = append(values, uint16(3*i+1))
		want["s-"+name] = float64(3*i + 1)
	}
	d, err := New(device(srv.addr(), 100*time.Millisecond, time.Second), model, sensorsFor(model), Options{Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if n := d.Requests(); n != 2 {
		t.Fatalf("requests per poll = %d, want 2", n)
	}
	c := srv.client()
	if err := c.WriteRegisters(0, values[:100]); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteRegisters(100, values[100:]); err != nil {
		t.Fatal(err)
	}
	sensorstest.Run(t, d).WaitFor(t, want)
}

// TestTimeoutAndComeBack: a device that stops answering (SIGSTOP: its
// socket stays open, requests time out) and one that goes away (killed,
// then started again on the same port). Both times errors are counted
// by kind, no readings come, the outage is logged once, reconnects back
// off, and readings resume when the device is back.
func TestTimeoutAndComeBack(t *testing.T) {
	srv := startPymodbus(t)
	model := []sensors.RegisterConfig{{Name: "lel", Table: "input", Address: 10}}
	logs := &sensorstest.LogRecorder{Min: slog.LevelInfo}
	d, err := New(device(srv.addr(), 50*time.Millisecond, 500*time.Millisecond), model, sensorsFor(model),
		Options{Log: slog.New(logs), MinBackoff: 100 * time.Millisecond, MaxBackoff: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv.set("ir", 10, 7)
	got := sensorstest.Run(t, d)
	got.WaitFor(t, map[string]float64{"s-lel": 7})

	// Frozen: the connection stays, the answers stop.
	srv.signal(syscall.SIGSTOP)
	waitUntil(t, "timeouts counted", func() bool {
		return testutil.ToFloat64(d.metrics.errors[kindTimeout]) >= 2 && testutil.ToFloat64(d.metrics.up) == 0
	})
	got.Drain()
	got.None(t, 600*time.Millisecond)
	srv.signal(syscall.SIGCONT)
	srv.set("ir", 10, 8)
	got.WaitFor(t, map[string]float64{"s-lel": 8})
	waitUntil(t, "up again", func() bool { return testutil.ToFloat64(d.metrics.up) == 1 })

	// Gone: connections refused until it comes back on the same port.
	srv.kill()
	waitUntil(t, "connect errors counted", func() bool { return testutil.ToFloat64(d.metrics.errors[kindConnect]) >= 1 })
	got.Drain()
	before := testutil.ToFloat64(d.metrics.errors[kindConnect])
	got.None(t, 2*time.Second)
	// Polling every 50 ms would try 40 times in 2 s; the backoff (100 ms
	// doubling to 400 ms, jittered into its upper half) allows at most 11.
	if tries := testutil.ToFloat64(d.metrics.errors[kindConnect]) - before; tries < 3 || tries > 11 {
		t.Fatalf("%v connection attempts in 2s, want 3-11 (backoff)", tries)
	}
	srv.start()
	srv.set("ir", 10, 9)
	got.WaitFor(t, map[string]float64{"s-lel": 9})
	waitUntil(t, "the recovery logged", func() bool { return logs.Count("Modbus device answering again") >= 2 })

	if n := logs.Count("Modbus device not answering"); n != 2 {
		t.Errorf("%d outage warnings for 2 outages:\n%s", n, strings.Join(logs.Messages(), "\n"))
	}
	if n := logs.Count("Modbus device answering again"); n != 2 {
		t.Errorf("%d recoveries logged for 2 outages", n)
	}
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("not %s within 10s", what)
}
